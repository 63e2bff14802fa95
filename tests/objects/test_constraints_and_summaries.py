"""Options of types, fields and views that other layers read: `no_overlap` constraints
refused by the write path, averages by a field through the indexes, `summaries`,
`suggest` and `chart: {by, average}` checked when the definitions load, and aggregates
counted through a refs field."""
from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from deskbase.objects.definitions import load_definitions
from deskbase.objects.errors import DefinitionErrors, ValidationError
from deskbase.objects.store import Store

APP = """
settings: {timezone: UTC}
types:
  team:
    title: name
    fields:
      name: {kind: string, required: true}
    index: [name]
    summaries:
      - {of: visit, via: team, by: state}
  leave:
    fields:
      person: {kind: user, required: true}
      starts: {kind: datetime, required: true}
      ends:   {kind: datetime}
    index: [person, {range: starts}, {range: ends}]
  note:
    title: title
    fields:
      title: {kind: string, required: true}
      body:  {kind: text}
      shown: {kind: boolean, default: true}
    index: [shown, {text: [title, body]}]
  visit:
    title: purpose
    fields:
      purpose: {kind: string, required: true, suggest: {type: note, filter: {shown: true}}}
      who:     {kind: user, required: true}
      starts:  {kind: datetime, required: true}
      ends:    {kind: datetime, required: true}
      state:   {kind: enum, values: [planned, done, cancelled], default: planned}
      team:    {kind: ref, to: team}
      score:   {kind: integer}
      cost:    {kind: money}
      notes:   {kind: refs, to: note}
    index: [who, {range: starts}, {range: ends}, state, team, {range: score}, {range: cost}, {keyword: notes}]
    constraints:
      - no_overlap:
          type: leave
          match: {person: who}
          period: [starts, ends]
          during: [starts, ends]
          message: {en: "{value} is away from {from} to {until} ({number})"}
      - no_overlap:
          type: visit
          match: {who: who}
          period: [starts, ends]
          during: [starts, ends]
          where: {state: planned}
"""


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=timezone.utc)


@pytest.fixture
def app(tmp_path: Path):
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "app.yaml").write_text(APP)
    store = Store.open("memory://", load_definitions(folder))
    yield store
    store.close()


def problems(tmp_path: Path, text: str) -> str:
    folder = tmp_path / "broken"
    folder.mkdir(exist_ok=True)
    (folder / "app.yaml").write_text(textwrap.dedent(text))
    with pytest.raises(DefinitionErrors) as raised:
        load_definitions(folder)
    return str(raised.value)


def test_a_visit_during_an_absence_is_refused_with_the_absence_in_the_sentence(app):
    with app.session(user="disp") as s:
        s.create("leave", {"person": "ann", "starts": at(10, 0), "ends": at(12, 0)})
    with pytest.raises(ValidationError) as refused, app.session(user="disp") as s:
        s.create("visit", {"purpose": "Printer", "who": "ann", "starts": at(11, 9), "ends": at(11, 10)})
    assert refused.value.errors == {"who": "ann is away from 2026-03-10 00:00 to 2026-03-12 00:00 (LEAVE-000001)"}


def test_periods_that_only_touch_or_concern_someone_else_do_not_overlap(app):
    with app.session(user="disp") as s:
        s.create("leave", {"person": "ann", "starts": at(10, 0), "ends": at(12, 0)})
        s.create("visit", {"purpose": "Before", "who": "ann", "starts": at(9, 20), "ends": at(10, 0)})
        s.create("visit", {"purpose": "After", "who": "ann", "starts": at(12, 0), "ends": at(12, 2)})
        s.create("visit", {"purpose": "Other", "who": "bob", "starts": at(11, 9), "ends": at(11, 10)})
        assert s.count("visit") == 3


def test_an_absence_without_an_end_lasts_until_it_is_given_one(app):
    with app.session(user="disp") as s:
        s.create("leave", {"person": "ann", "starts": at(10, 0)})
    with pytest.raises(ValidationError), app.session(user="disp") as s:
        s.create("visit", {"purpose": "Late", "who": "ann", "starts": at(28, 9), "ends": at(28, 10)})


def test_a_visit_may_not_overlap_another_planned_one_but_may_move_within_its_own_time(app):
    with app.session(user="disp") as s:
        first = s.create("visit", {"purpose": "One", "who": "ann", "starts": at(5, 9), "ends": at(5, 12)})
        s.update(first.number, {"ends": at(5, 11)})        # overlaps only itself
    with pytest.raises(ValidationError) as refused, app.session(user="disp") as s:
        s.create("visit", {"purpose": "Two", "who": "ann", "starts": at(5, 10), "ends": at(5, 13)})
    assert "VISIT-000001" in refused.value.errors["who"]
    with app.session(user="disp") as s:
        s.update(first.number, {"state": "cancelled"})    # a cancelled visit frees the time
        s.create("visit", {"purpose": "Two", "who": "ann", "starts": at(5, 10), "ends": at(5, 13)})


def test_moving_a_visit_into_an_absence_is_refused_too(app):
    with app.session(user="disp") as s:
        s.create("leave", {"person": "ann", "starts": at(10, 0), "ends": at(12, 0)})
        visit = s.create("visit", {"purpose": "One", "who": "ann", "starts": at(5, 9), "ends": at(5, 12)})
    with pytest.raises(ValidationError), app.session(user="disp") as s:
        s.update(visit.number, {"starts": at(11, 9), "ends": at(11, 12)})


def test_averages_by_a_field_equal_the_averages_computed_from_the_records(app):
    scores = {"Support": [5, 4, 4, None], "Field": [2, 3], None: [1]}
    with app.session(user="disp") as s:
        day = 1
        for team_name, values in scores.items():
            team = s.create("team", {"name": team_name}).id if team_name else None
            for score in values:
                day += 1
                s.create("visit", {"purpose": "x", "who": f"p{day}", "starts": at(day, 8), "ends": at(day, 9),
                                   "team": team, "score": score, "cost": Decimal(score or 0) * 10})
    found = app.read(lambda s: {s.get("team", value)["name"]: (average, count)
                                for value, average, count in s.average_by("visit", "team", "score")})
    assert found == {"Support": (13 / 3, 3), "Field": (2.5, 2)}
    planned = app.read(lambda s: s.average_by("visit", "state", "cost", {"score": {"gte": 3}}))
    costs = [Decimal(score) * 10 for values in scores.values() for score in values if score and score >= 3]
    assert planned == [("planned", sum(costs) / len(costs), len(costs))]


def test_a_count_through_a_refs_field_follows_each_item_added_and_removed(tmp_path):
    folder = tmp_path / "refs"
    folder.mkdir()
    (folder / "app.yaml").write_text(APP.replace(
        "      shown: {kind: boolean, default: true}\n",
        "      shown: {kind: boolean, default: true}\n"
        "      used: {kind: computed, result: integer, aggregate: {function: count, of: visit, via: notes}}\n"))
    store = Store.open("memory://", load_definitions(folder))
    with store.session(user="a") as s:
        one, two = s.create("note", {"title": "One"}), s.create("note", {"title": "Two"})
        visit = s.create("visit", {"purpose": "x", "who": "a", "starts": at(1, 8), "ends": at(1, 9),
                                   "notes": [one.id, two.id]})
        s.create("visit", {"purpose": "y", "who": "b", "starts": at(1, 8), "ends": at(1, 9), "notes": [one.id]})
        s.update(visit.number, {"notes": [two.id]})
    assert store.read(lambda s: (s.get("note", one.id)["used"], s.get("note", two.id)["used"])) == (1, 1)
    store.close()


def test_a_constraint_naming_unknown_or_unindexed_fields_is_reported_at_its_place(tmp_path):
    text = problems(tmp_path, APP.replace("match: {person: who}", "match: {persn: who}")
                    .replace("period: [starts, ends]\n          during: [starts, ends]\n          message",
                             "period: [starts, ends]\n          during: [starts, finish]\n          message"))
    assert "`persn` is not an indexed field of `leave`" in text
    assert "`finish` is not a field of `visit`" in text


def test_a_summary_and_a_suggestion_are_checked_when_the_definitions_load(tmp_path):
    text = problems(tmp_path, APP.replace("{of: visit, via: team, by: state}", "{of: visit, via: who, by: purpose}")
                    .replace("suggest: {type: note, filter: {shown: true}}", "suggest: {type: team}"))
    assert "`who` is not an indexed ref field of `visit` pointing at `team`" in text
    assert "a summary counts the values of an indexed" in text
    assert "`team` has no text index to search as people type" in text


def test_a_list_where_a_summary_names_a_field_is_reported(tmp_path):
    text = problems(tmp_path, APP.replace("{of: visit, via: team, by: state}", "{of: visit, via: [team], by: [state]}"))
    assert "`['team']` is not an indexed ref field of `visit`" in text      # not a TypeError (unhashable)
    assert "`['state']` is not one" in text


def test_a_chart_averages_only_an_indexed_number(tmp_path):
    view = "views:\n  visits:\n    type: visit\n    columns: [purpose]\n    chart: {by: team, average: purpose}\n"
    assert "a chart averages an indexed number field" in problems(tmp_path, APP + view)
    folder = tmp_path / "fine"
    folder.mkdir()
    (folder / "app.yaml").write_text(APP + view.replace("average: purpose", "average: score"))
    assert load_definitions(folder).views["visits"].chart_average == "score"
