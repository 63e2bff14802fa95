"""Generators (records made from a query for a period): one record per record found, its
lines made from other queries, nothing made twice for the same key, and definitions that
name what does not exist reported where they are written."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.application import load_application
from deskbase.rules.process.generators import GeneratorError, month, run_generator

TASKS_APP = Path(__file__).parents[1] / "objects" / "tasks_app"

GENERATOR = """
generators:
  monthly_reviews:
    period: previous_month
    for_each: {type: team, filter: {name: {ne: Closed team}}}
    create:
      type: task
      key: [team, due]
      values: {title: $each.name, team: $each.id, due: $period.end}
    lines:
      - type: work
        from: {type: task, filter: {team: $record.team, due: {lte: $record.due}, done: false}, when: "source.id != record.id"}
        values: {task: $record.id, duration: "= 15 if source.priority == 'high' else 5"}    # minutes, as typed
"""


def app(tmp_path: Path, text: str = GENERATOR) -> Path:
    folder = tmp_path / "app"
    shutil.copytree(TASKS_APP, folder)
    (folder / "generators.yaml").write_text(text)
    return folder


def test_one_record_per_record_found_with_lines_from_a_query_and_nothing_twice(app_store, tmp_path):
    with app_store(app(tmp_path)) as store:
        teams = store.run(lambda s: {name: s.create("team", {"name": name}).id for name in ("Support", "Field",
                                                                                           "Closed team")})
        store.run(lambda s: [s.create("task", {"title": title, "team": teams["Support"], "priority": priority,
                                               "due": "2026-10-20"})
                             for title, priority in (("Toner", "high"), ("Cables", "low"))])
        made = run_generator(store, "monthly_reviews", period=month("2026-10"))
        assert len(made.made) == 2 and made.existing == 0 and not made.failed
        again = run_generator(store, "monthly_reviews", period=month("2026-10"))
        assert again.made == [] and again.existing == 2
        review = store.read(lambda s: dict(s.query("task", {"all": [{"team": teams["Support"]},
                                                                    {"due": {"gte": "2026-10-31"}}]})
                                           .records[0].values))
        assert review["title"] == "Support" and str(review["due"]) == "2026-10-31"
        assert review["spent"] == (15 + 5) * 60                       # one line per open task of the team, by priority


@pytest.mark.parametrize("change, message", [
    ("key: [team, due]", "key: [team, notes]", ),
    ("values: {title: $each.name", "values: {title: $each.nothing"),
    ("type: work\n", "type: nowhere\n"),
    ("source.id != record.id", "source.id !="),
])
def test_a_generator_that_names_what_does_not_exist_is_reported_where_it_is_written(tmp_path, change, message):
    with pytest.raises(DefinitionErrors) as raised:
        load_application(app(tmp_path, GENERATOR.replace(change, message)))
    assert "generators.yaml" in str(raised.value) and "generators.monthly_reviews" in str(raised.value)


def test_an_unknown_generator_or_month_says_so(app_store, tmp_path):
    with app_store(app(tmp_path)) as store, pytest.raises(GeneratorError, match="there is no generator `weekly`"):
        run_generator(store, "weekly")
    with pytest.raises(GeneratorError, match="write it like 2026-10"):
        month("October")
