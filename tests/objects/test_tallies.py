"""Statistics through the indexes (`Session.tally`): counts, sums and averages per value of a
field, per period of a date, or both — held equal, on generated data, to the same figures
worked out record by record."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from deskbase.objects import filters, tallies
from deskbase.objects.definitions import load_definitions
from deskbase.objects.errors import QueryError
from deskbase.objects.store import Store
from deskbase.objects.tallies import periods_ending

TASKS_APP = Path(__file__).parent / "tasks_app"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
PRIORITIES = ("high", "medium", "low")


@pytest.fixture(scope="module")
def definitions(tmp_path_factory):
    """The tasks app with its estimate and cost indexed (the numbers statistics add up)."""
    folder = tmp_path_factory.mktemp("tallies") / "app"
    folder.mkdir()
    text = (TASKS_APP / "tasks.yaml").read_text()
    text = text.replace("index: [priority, team, category, subcategory, due, owner, done, labels,",
                        "index: [priority, team, category, subcategory, due, owner, done, labels, estimate, cost, "
                        "finished,")
    text = text.replace("      due:         {kind: date}\n", "      due:         {kind: date}\n      finished:    {kind: date}\n")
    (folder / "tasks.yaml").write_text(text)
    return load_definitions(folder)


def fill(store, rows) -> None:
    def work(session):
        teams = [session.create("team", {"name": name}).id for name in ("Blue", "Green")]
        for due, priority, minutes, cost, team in rows:
            session.create("task", {"title": "t", "due": due, "priority": priority, "estimate": f"{minutes}m",
                                    "cost": cost, "team": teams[team] if team is not None else None})
    store.run(work, now=NOW)


def test_the_last_months_end_with_the_current_one():
    assert periods_ending(date(2026, 11, 20), "month", 3) == [
        (date(2026, 9, 1), date(2026, 10, 1)), (date(2026, 10, 1), date(2026, 11, 1)),
        (date(2026, 11, 1), date(2026, 12, 1))]
    assert periods_ending(date(2027, 1, 5), "quarter", 2) == [(date(2026, 10, 1), date(2027, 1, 1)),
                                                              (date(2027, 1, 1), date(2027, 4, 1))]
    assert periods_ending(date(2026, 11, 20), "week", 1) == [(date(2026, 11, 16), date(2026, 11, 23))]
    with pytest.raises(ValueError, match="`fortnight` is not a period"):
        periods_ending(date(2026, 11, 20), "fortnight", 1)


def test_tasks_counted_per_month_and_priority_and_their_hours_summed(definitions):
    with Store.open("memory://", definitions) as store:
        fill(store, [(date(2026, 11, 2), "high", 30, "10.50", 0), (date(2026, 11, 30), "high", 60, "4", 1),
                     (date(2026, 10, 31), "low", 15, "1", 0), (date(2026, 8, 1), "low", 15, "1", 0),
                     (None, "medium", 45, None, None)])
        by_month = store.read(lambda s: s.tally("task", over="due", periods=3), now=NOW)
        assert [by_month.cell(position).value for position in range(3)] == [0, 1, 2]
        crossed = store.read(lambda s: s.tally("task", by="priority", over="due", periods=2), now=NOW)
        assert crossed.values == ("high", "low")
        assert crossed.cell(1, "high").value == 2 and crossed.cell(0, "low").value == 1
        hours = store.read(lambda s: s.tally("task", by="team", measure="sum", of="estimate"), now=NOW)
        blue, green = store.read(lambda s: [r.id for r in s.query("team", sort="name").records])
        assert hours.cell(None, blue).value == (30 + 15 + 15) * 60 and hours.cell(None, green).value == 3600
        assert hours.cell(None, None).value == 45 * 60                       # no team
        cost = store.read(lambda s: s.tally("task", measure="average", of="cost", filter={"priority": "high"}),
                          now=NOW)
        assert cost.cell(None).value == (10.5 + 4) / 2 and cost.cell(None).records == 2


def test_a_field_without_an_index_or_a_wrong_measure_is_refused(definitions):
    with Store.open("memory://", definitions) as store:
        with pytest.raises(QueryError, match="`title` of `task` has no index to count by"):
            store.read(lambda s: s.tally("task", by="title"))
        with pytest.raises(QueryError, match="`median` is not a measure"):
            store.read(lambda s: s.tally("task", measure="median", of="estimate"))
        with pytest.raises(QueryError, match="between 1 and 400 periods"):
            store.read(lambda s: s.tally("task", over="due", periods=0))


rows = st.lists(st.tuples(
    st.one_of(st.none(), st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31))),
    st.sampled_from(PRIORITIES), st.integers(min_value=0, max_value=20).map(lambda n: n * 15),
    st.one_of(st.none(), st.decimals(min_value=0, max_value=500, places=2).map(str)),
    st.one_of(st.none(), st.integers(min_value=0, max_value=1))), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, measure=st.sampled_from(["count", "sum", "average"]), by=st.sampled_from([None, "priority", "team"]),
       every=st.sampled_from(["month", "quarter", "week", None]),
       only=st.sampled_from([None, "high", "low", {"ne": "low"}, {"not_in": ["high", None]}, ["medium", None]]),
       few_keys=st.sampled_from([tallies.FEW_KEYS, 0]))
def test_the_indexes_give_the_figures_the_records_give(definitions, rows, measure, by, every, only, few_keys):
    # `every` None: no periods, the figures of every record (a sum then reads the number index by key);
    # by priority within a filter on the priority: counted from the sizes of its sets (`by_parts`);
    # a count by a field of few values, one set intersection a value, or (`few_keys` 0) from the rows
    with Store.open("memory://", definitions) as store, mock.patch.object(tallies, "FEW_KEYS", few_keys):
        fill(store, rows)
        filter = {"priority": only} if only else None
        of = "estimate" if measure != "count" else None
        found = store.read(lambda s: s.tally("task", filter, by=by, over="due" if every else None,
                                             every=every or "month", periods=6, measure=measure, of=of), now=NOW)
        records = store.read(lambda s: [dict(r.values) for r in s.query("task", filter, limit=None).records])
    spans = periods_ending(NOW.date(), every, 6) if every else []
    expected: dict = defaultdict(list)
    for values in records:
        due, value = values.get("due"), values.get(by) if by else None
        if not every:
            expected[(None, value)].append(values.get("estimate"))
        for position, (start, end) in enumerate(spans):
            if due is not None and start <= due < end:
                expected[(position, value)].append(values.get("estimate"))
    for key, numbers in expected.items():
        cell = found.cell(*key)
        if measure == "count":
            assert cell.value == len(numbers), key
        elif measure == "sum":
            assert cell.value == sum(numbers), key
        else:
            assert cell.value == pytest.approx(sum(numbers) / len(numbers)), key
    assert {key for key in found.cells} == set(expected)


def test_a_reader_counts_only_what_their_scope_lets_them_read(app_store, tmp_path):
    from deskbase.rules.access.identity import Identity
    with app_store() as desk:
        def work(session):
            mine = session.create("organization", {"name": "Mine", "code": "MINE"}).id
            other = session.create("organization", {"name": "Other", "code": "OTHR"}).id
            for organization, count in ((mine, 3), (other, 5)):
                for _ in range(count):
                    session.create("ticket", {"title": "x", "organization": organization})
            return mine
        mine = desk.run(work)
        customer = Identity("cu", "Cu", ("customer_user",), organization=mine)
        seen = desk.read(lambda s: s.tally("ticket", over="reported_at", periods=1), identity=customer)
        everyone = desk.read(lambda s: s.tally("ticket", over="reported_at", periods=1))
    assert seen.cell(0).value == 3 and everyone.cell(0).value == 8


def test_a_field_of_several_values_counts_a_record_under_each_of_them(definitions):
    # tags keep no sort key per record: the figures come from intersecting the index's sets
    with Store.open("memory://", definitions) as store:
        store.run(lambda s: [s.create("task", {"title": "t", "labels": labels, "estimate": "30m"})
                             for labels in (["printer", "urgent"], ["urgent"], [])], now=NOW)
        counted = store.read(lambda s: s.tally("task", by="labels"), now=NOW)
        summed = store.read(lambda s: s.tally("task", by="labels", measure="sum", of="estimate"), now=NOW)
    assert {value: counted.cell(None, value).value for value in counted.values} == {
        "printer": 1, "urgent": 2, None: 1}
    assert summed.cell(None, "urgent").value == 3600


spans_of_work = st.lists(st.tuples(
    st.one_of(st.none(), st.dates(min_value=date(2026, 3, 1), max_value=date(2026, 12, 31))),
    st.one_of(st.none(), st.integers(min_value=0, max_value=200)),
    st.sampled_from(PRIORITIES)), max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spans=spans_of_work, by=st.sampled_from([None, "priority"]), every=st.sampled_from(["month", "week"]))
def test_the_backlog_at_each_periods_end_is_what_was_begun_and_not_yet_finished(definitions, spans, by, every):
    with Store.open("memory://", definitions) as store:
        store.run(lambda s: [s.create("task", {"title": "t", "due": begun, "priority": priority,
                                               "finished": begun + timedelta(days=days) if begun and days is not None
                                               else None})
                             for begun, days, priority in spans], now=NOW)
        found = store.read(lambda s: s.tally("task", by=by, over="due", every=every, periods=6, measure="open",
                                             of="finished"), now=NOW)
    expected: dict = defaultdict(int)
    for position, (_, end) in enumerate(periods_ending(NOW.date(), every, 6)):
        for begun, days, priority in spans:
            finished = begun + timedelta(days=days) if begun and days is not None else None
            if begun is not None and begun < end and (finished is None or finished >= end):
                expected[(position, priority if by else None)] += 1
    assert {key: cell.value for key, cell in found.cells.items()} == dict(expected)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, only=st.sampled_from([{"ne": "low"}, {"not_in": ["high", None]}, ["medium", None], "high"]))
def test_a_count_by_the_field_a_filter_names_is_the_sizes_of_its_sets(definitions, rows, only):
    """The open tickets counted by status: the same figures, in the same order, as counted
    record by record from their sort keys, without reading one."""
    with Store.open("memory://", definitions) as store:
        fill(store, rows)
        count = lambda s: s.tally("task", {"priority": only}, by="priority")   # noqa: E731
        with mock.patch.object(tallies, "_by_rows", lambda *args: pytest.fail("read the records' keys")):
            by_sets = store.read(count, now=NOW)
        with mock.patch.object(filters.Filter, "parts", lambda *args: None), mock.patch.object(tallies, "FEW_KEYS", 0):
            by_rows = store.read(count, now=NOW)
    assert by_sets == by_rows


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, only=st.sampled_from(["high", {"ne": "low"}, ["medium", None]]))
def test_a_count_by_a_field_of_few_values_is_one_set_intersection_a_value(definitions, rows, only):
    """The tickets due this week counted by their SLA state: a set intersection per state
    gives the figures counting the records' sort keys one by one gives."""
    with Store.open("memory://", definitions) as store:
        fill(store, rows)
        count = lambda s: s.tally("task", {"priority": only}, by="team")   # noqa: E731
        with mock.patch.object(tallies, "_by_rows", lambda *args: pytest.fail("read the records' keys")):
            by_sets = store.read(count, now=NOW)
        with mock.patch.object(tallies, "FEW_KEYS", 0):
            by_rows = store.read(count, now=NOW)
    assert by_sets == by_rows
