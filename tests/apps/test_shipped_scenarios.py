"""The scenarios shipped with the helpdesk (`definitions/scenarios/`) and with the example
overlay (`examples/customers/acme/scenarios/`) hold, one test each; the helpdesk's mail
intake, approvals and demo as a scenario reaches them; and `deskbase test` finds them."""
from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from deskbase.cli import main
from deskbase.rules.application import load_application
from deskbase.rules.scenarios.playing import run_scenario
from deskbase.rules.scenarios.reading import read_scenario, scenario_files

ROOT = Path(__file__).resolve().parents[2]
HELPDESK = ROOT / "definitions"
ACME = ROOT / "examples" / "customers" / "acme"
SHIPPED = scenario_files([HELPDESK])
OVERLAY = scenario_files([ACME])


@pytest.fixture(scope="module")
def acme_definitions():
    return load_application(HELPDESK, [ACME])


def test_the_helpdesk_ships_a_scenario_for_each_key_promise():
    assert [path.name for path in SHIPPED] == ["approval_above_500.yaml", "monthly_report.yaml", "sla_pause.yaml",
                                              "substitution.yaml", "t7_visibility.yaml"]
    assert [path.name for path in OVERLAY] == ["earlier_warning.yaml"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_a_shipped_scenario_holds(path: Path, helpdesk_definitions):
    result = run_scenario(read_scenario(path), helpdesk_definitions, demo=HELPDESK / "demo")
    assert result.passed, "\n".join(str(failure) for failure in result.failures)


@pytest.mark.parametrize("path", OVERLAY, ids=lambda path: path.stem)
def test_the_overlays_scenario_holds_with_the_overlay(path: Path, acme_definitions):
    result = run_scenario(read_scenario(path), acme_definitions, demo=HELPDESK / "demo")
    assert result.passed, "\n".join(str(failure) for failure in result.failures)


def test_the_overlays_scenario_fails_on_the_shipped_helpdesk_which_warns_later(helpdesk_definitions):
    path = ACME / "scenarios" / "earlier_warning.yaml"
    result = run_scenario(read_scenario(path), helpdesk_definitions)
    assert [str(failure) for failure in result.failures] == [
        f"{path}:25: step 4 expects a message to tina (tina@support.example) whose subject says `Resolution` "
        "containing `70% of the time allowed`; the messages queued since the last look were: “[T-000001] Target "
        "passed: Next update – Conveyor 2 stopped” to tina@support.example"]


@pytest.fixture
def played(tmp_path: Path, helpdesk_definitions):
    """`played(text)`: the path of a scenario written in a file, and how it went on the helpdesk."""
    def play(text: str):
        path = tmp_path / "scenario.yaml"
        path.write_text(dedent(text))
        return path, run_scenario(read_scenario(path), helpdesk_definitions, demo=HELPDESK / "demo")
    return play


def test_mail_from_a_stranger_is_held_and_a_scenario_may_say_so(played):
    path, result = played("""\
        scenario: a stranger's message opens no ticket
        steps:
          - mail arrives: {from: someone@elsewhere.example, subject: Buy our printers}
            refused: unknown sender
          - expect:
              count: {ticket: 0}
              messages: [{to: someone@elsewhere.example, containing: could not register it}]
          - mail arrives: {from: someone@elsewhere.example, subject: Buy them now}
        """)
    assert [str(failure) for failure in result.failures] == [
        f"{path}:8: step 3 could not take in the message from someone@elsewhere.example: the message from "
        "someone@elsewhere.example was ignored: unknown sender someone@elsewhere.example"]


def test_a_message_to_the_support_address_opens_a_ticket_named_for_later_steps(played):
    path, result = played("""\
        scenario: a customer's message opens a ticket of their organization
        given:
          records:
            acme: {organization: {name: Acme, code: ACME}}
            carl: {contact: {name: Carl Weber, email: carl@acme.example, organization: acme}}
        steps:
          - update: acme
            values: {authorized_requesters: [carl]}
          - mail arrives:
              from: Carl Weber <carl@acme.example>
              subject: The label printer is offline
              body: Since this morning.
              name: offline
          - expect:
              record: offline
              fields: {title: The label printer is offline, organization: acme, requester: carl, channel: email}
              messages: [{to: carl@acme.example, subject: "{offline}"}]
        """)
    assert result.passed, [str(failure) for failure in result.failures]


def test_a_scenario_on_the_demo_loads_it_as_of_the_scenarios_moment(played):
    path, result = played("""\
        scenario: the demo's costly request waits for Jean Dupont, and Sophie stands in for Karim
        given: {demo: true, now: 2026-03-02 09:00}
        steps:
          - expect:
              record: T-000001
              approval: {state: pending, awaiting: jdupont}
          - as: sbernard
            fire: take
            record: T-000001
            inputs: {time_spent: 5m}
            refused: awaiting approval by jdupont
          - expect:
              record: {absence: {operator: khaddad, reason: leave}}
              fields: {starts: 2026-02-28 00:00, deputy: sbernard}
          - expect: {as: sbernard, can_read: T-000009}      # Karim's
          - expect: {as: tdvorak, cannot_read: T-000009}
        """)
    assert [str(failure) for failure in result.failures] == []


def test_deskbase_test_plays_the_shipped_scenarios_and_those_of_an_overlay(capsys):
    assert main(["--definitions", str(HELPDESK), "test"]) == 0
    out = capsys.readouterr().out
    assert "5 scenarios: 5 passed, 0 failed" in out and "earlier_warning" not in out
    assert main(["--definitions", str(HELPDESK), "test", "--overlay", str(ACME), "-k", "70 %"]) == 0
    out = capsys.readouterr().out
    assert f"ok      {ACME}/scenarios/earlier_warning.yaml  Acme (overlay): the assignee" in out
    assert "1 scenario: 1 passed, 0 failed" in out
