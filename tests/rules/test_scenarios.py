"""Scenario tests in YAML, on the timer tests' small service desk (tests/rules/sla_app): a
scenario's steps go through the product's write path as the named account at the
scenario's moment, `time passes` runs the due jobs, and whatever does not go as written is
said with its file, line and step, what was expected and what was found."""
from __future__ import annotations

import shutil
from pathlib import Path
from textwrap import dedent

import pytest

from deskbase.cli import main
from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.application import load_application
from deskbase.rules.scenarios.playing import ScenarioResult, run_scenario
from deskbase.rules.scenarios.reading import read_scenario

SLA_APP = Path(__file__).parent / "sla_app"

GIVEN = """\
scenario: the owner of a request is warned at 80 % of its resolution target
given:
  now: 2026-03-02 09:00
  records:
    gold: {plan: {name: Gold, level: gold, calendar: always}}
  accounts:
    ann: {roles: [agent], email: ann@desk.example}
    max: {roles: [manager], email: max@desk.example}
steps:
  - as: ann
    create: request
    values: {title: Scanner broken, plan: gold, priority: high}
    name: scanner
  - as: ann
    fire: take
    record: scanner
"""


@pytest.fixture(scope="module")
def definitions():
    return load_application(SLA_APP)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A copy of the small application, with an empty `scenarios/` beside its definitions."""
    folder = tmp_path / "desk"
    shutil.copytree(SLA_APP, folder)
    (folder / "scenarios").mkdir()
    return folder


def played(definitions, folder: Path, text: str, name: str = "warning.yaml") -> ScenarioResult:
    path = folder / "scenarios" / name
    path.write_text(dedent(text))
    return run_scenario(read_scenario(path), definitions)


def failures(result: ScenarioResult) -> list[str]:
    return [str(failure) for failure in result.failures]


def test_time_passing_runs_the_timer_job_and_the_warning_reaches_the_owner(definitions, app):
    result = played(definitions, app, GIVEN + """\
  - time passes: 3h15m                   # 80 % of the 4 h of a gold plan's high request
  - expect:
      record: scanner
      fields: {status: working, owner: ann, escalated: null}
      clocks: {resolution: running, first_answer: met}
      history: [timer resolution 80% (warning)]
      messages:
        - {to: ann, subject: "Scanner broken: 80% of Resolution used"}
      no messages:
        - {to: max}
  - time passes: 1h
  - expect:
      record: scanner
      fields: {escalated: true, resolution_sla: breached}
      messages: [{to: max, containing: "{scanner}"}]
""")
    assert result.passed, failures(result)


def test_a_field_not_as_expected_names_the_step_its_line_the_value_expected_and_the_value_found(definitions, app):
    result = played(definitions, app, GIVEN + """\
  - expect:
      record: scanner
      fields:
        owner: ann
        status: done
""")
    path = app / "scenarios" / "warning.yaml"
    assert failures(result) == [f"{path}:21: step 3 expects `status` of scanner to be `done`, found `working`"]


def test_every_mismatch_of_a_step_is_told_each_at_its_line(definitions, app):
    result = played(definitions, app, GIVEN + """\
  - expect:
      record: scanner
      clocks: {resolution: paused}
      messages: [{to: max}]
""")
    path = app / "scenarios" / "warning.yaml"
    assert failures(result) == [
        f"{path}:19: step 3 expects the clock `resolution` of scanner to be paused, found running",
        f"{path}:20: step 3 expects a message to max (max@desk.example); the messages queued since the last look "
        "were: none"]


def test_a_transition_the_engine_refuses_is_told_with_the_engines_sentence_at_its_step(definitions, app):
    result = played(definitions, app, GIVEN.replace("fire: take", "fire: finish"))
    path = app / "scenarios" / "warning.yaml"
    assert failures(result) == [
        f"{path}:15: step 2 could not fire `finish` on scanner as ann: `finish` cannot be fired while the request "
        "RQ-00001 is `new` (new); it is allowed only from `working`, `waiting`"]


def test_a_refusal_written_in_the_scenario_passes_and_one_that_does_not_come_fails(definitions, app):
    refused = played(definitions, app, GIVEN + """\
  - as: ann
    fire: take
    record: scanner
    refused: cannot be fired while the request
""")
    assert refused.passed, failures(refused)
    done = played(definitions, app, GIVEN + """\
  - as: ann
    fire: wait
    record: scanner
    refused: true
""")
    path = app / "scenarios" / "warning.yaml"
    assert failures(done) == [f"{path}:20: step 3 expects fire `wait` on scanner as ann to be refused, but it was "
                              "done (RQ-00001)"]


def test_an_unknown_field_is_told_at_its_line_in_the_values(definitions, app):
    result = played(definitions, app, GIVEN.replace("priority: high}", "priority: high,\n             colour: red}"))
    path = app / "scenarios" / "warning.yaml"
    assert failures(result) == [f"{path}:13: step 1 could not create a request as ann: colour: is not a field of "
                                "request"]


def test_a_person_unknown_to_the_store_is_told_at_the_as_of_the_step(definitions, app):
    result = played(definitions, app, GIVEN.replace("  - as: ann\n    fire", "  - as: anne\n    fire"))
    path = app / "scenarios" / "warning.yaml"
    assert failures(result) == [f"{path}:14: step 2: `anne` is not an account; did you mean `ann`? (accounts come "
                                "from the demo or `given: accounts`)"]


def test_a_scenario_starts_at_its_moment_and_time_passes_until_a_moment(definitions, app):
    result = played(definitions, app, GIVEN + """\
  - time passes: until 2026-03-02 12:40 Europe/Paris
  - expect:
      record: scanner
      fields: {answer_due: 2026-03-02 09:15, resolution_due: 2026-03-02 13:00}
      history: [timer resolution 80% (warning)]
  - time passes: until 2026-03-01 09:00
""")
    path = app / "scenarios" / "warning.yaml"
    assert failures(result) == [f"{path}:22: step 5: 2026-03-01 09:00 is before the scenario's moment, "
                                "2026-03-02 12:40: time passes forward only"]


@pytest.mark.parametrize(("text", "where", "message"), [
    ("scenario: x\nsteps:\n  - as: ann\n    fires: take\n", 4, "steps[0].fires: `fires` is not a keyword of a step"),
    ("scenario: x\nsteps:\n  - create: request\n    fire: take\n    record: r\n", 3,
     "steps[0]: this step does 2 things (create, fire): a step does one of create, update, fire, approve, reject, "
     "time passes, mail arrives, expect; write one step per action"),
    ("scenario: x\nsteps:\n  - expect: {fields: {status: new}}\n", 3,
     "steps[0].expect.fields: `fields` needs `record`: the record it is about"),
    ("scenario: x\nsteps:\n  - update: r\n    inputs: {a: 1}\n", 4, "steps[0].inputs: `inputs` does not go with "
     "`update`; `update` takes as, refused, values"),
    ("scenario: x\nsteps:\n  - expect: {record: r\n", 4, "this is not valid YAML"),
    ("scenario: x\nsteps:\n  - expect:\n      record: r\n      approval: aproved\n", 5,
     "steps[0].expect.approval: `aproved` is not an approval state: pending, approved, rejected, expired, none; "
     "did you mean `approved`?"),
])
def test_a_malformed_scenario_file_is_refused_naming_its_file_and_line(tmp_path, text, where, message):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(DefinitionErrors) as refused:
        read_scenario(path)
    first = refused.value.errors[0]
    assert (first.file, first.line) == (str(path), where)
    assert message in str(first)


def test_deskbase_test_plays_the_scenarios_beside_the_definitions_and_exits_1_when_one_fails(app, capsys):
    (app / "scenarios" / "good.yaml").write_text(GIVEN)
    (app / "scenarios" / "bad.yaml").write_text(GIVEN.replace("fire: take", "fire: finish"))
    code = main(["--definitions", str(app), "test"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"FAILED  {app}/scenarios/bad.yaml  the owner of a request is warned" in out
    assert f"    {app}/scenarios/bad.yaml:15: step 2 could not fire `finish` on scanner as ann:" in out
    assert f"ok      {app}/scenarios/good.yaml  the owner of a request is warned" in out
    assert "2 scenarios: 1 passed, 1 failed" in out
    assert main(["--definitions", str(app), "test", str(app / "scenarios" / "good.yaml")]) == 0


def test_deskbase_test_selects_by_word_and_says_when_there_is_nothing_to_play(app, capsys):
    (app / "scenarios" / "good.yaml").write_text(GIVEN)
    assert main(["--definitions", str(app), "test", "-k", "WARNED"]) == 0
    assert "1 scenario: 1 passed, 0 failed" in capsys.readouterr().out
    assert main(["--definitions", str(app), "test", "-k", "invoice"]) == 1
    assert "error: no scenario holds `invoice`" in capsys.readouterr().err
    (app / "scenarios" / "good.yaml").unlink()
    assert main(["--definitions", str(app), "test"]) == 1
    assert f"error: there is no scenario to play: write them as .yaml files in {app}/scenarios" in \
        capsys.readouterr().err


def test_deskbase_test_shows_a_malformed_file_as_an_error_with_its_place(app, capsys):
    (app / "scenarios" / "typo.yaml").write_text(GIVEN.replace("fire: take", "fir: take"))
    assert main(["--definitions", str(app), "test"]) == 1
    out = capsys.readouterr().out
    assert f"ERROR   {app}/scenarios/typo.yaml" in out
    assert f"{app}/scenarios/typo.yaml:15:5: steps[1].fir: `fir` is not a keyword of a step" in out


@pytest.mark.parametrize(("old", "new", "told"), [
    ("now: 2026-03-02 09:00", "now: next monday", ":3: `next monday` is not a moment: write it like 2026-03-02 09:00"),
    ("now: 2026-03-02 09:00", "now: 2026-03-02 09:00 Mars/Olympus",
     ":3: `2026-03-02 09:00 Mars/Olympus`: the time zone is not known (write one such as Europe/Paris)"),
    ("{roles: [agent], email: ann@desk.example}", "{roles: [agent], groups: [support]}",
     ":7: `support` is not a record of `given: records`"),
    ("level: gold,", "level: platinum,", ":5: `given: records` could not be made: level: `platinum` is not one of "
                                         "gold, silver"),
])
def test_what_cannot_be_given_is_told_at_its_line(definitions, app, old, new, told):
    result = played(definitions, app, GIVEN.replace(old, new))
    assert failures(result) == [f"{app / 'scenarios' / 'warning.yaml'}{told}"]
