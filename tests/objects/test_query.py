import random
from datetime import date, datetime, timedelta, timezone

import pytest
from sort_reference import reference_order

from deskbase.objects import filters, query
from deskbase.objects.errors import QueryError
from deskbase.objects.filters import compile_filter
from deskbase.objects.query import parse_sort, search

UTC = timezone.utc


@pytest.fixture
def records(values):
    rows = [
        (1, "low", date(2026, 3, 1), 5), (2, "urgent", None, 5), (3, None, date(2026, 1, 1), None),
        (4, "high", date(2026, 3, 1), 1), (5, "urgent", date(2026, 2, 1), 9), (6, "low", None, 5),
        (7, None, None, 2), (8, "high", date(2026, 1, 1), 5), (9, "medium", date(2026, 3, 1), 7),
    ]
    return [values(i, priority=p, due=d, size=s) for i, p, d, s in rows]


@pytest.fixture
def listed(items, records, item_type):
    """`listed(sort, spec=None, **options)`: (total, ids) of a search over the records."""
    indexes = items(*records)

    def run(sort=(), spec=None, **options):
        compiled = compile_filter(spec, item_type) if spec is not None else None
        return search(indexes, item_type, compiled, parse_sort(sort, item_type), **options)
    return run


# -- parse_sort ---------------------------------------------------------------------------

def test_sort_reads_comma_separated_fields_with_a_minus_for_descending(item_type):
    assert parse_sort("-priority, created_at", item_type) == (("priority", True), ("created_at", False))
    assert parse_sort(["-priority", "due,+size"], item_type) == (("priority", True), ("due", False), ("size", False))
    assert parse_sort("", item_type) == () and parse_sort(None, item_type) == ()


def test_sort_keeps_the_first_mention_of_a_field_and_nothing_after_id(item_type):
    assert parse_sort("due,-due,id,size", item_type) == (("due", False), ("id", False))


def test_sort_by_an_unknown_field_names_its_place_and_a_suggestion(item_type):
    with pytest.raises(QueryError) as caught:
        parse_sort("size,prority", item_type)
    assert caught.value.path == "sort[1]"
    assert caught.value.message == "`prority` is not a field of `item`"
    assert caught.value.hint == "did you mean `priority`?"


def test_sort_by_a_field_without_a_field_or_range_index_says_where_to_add_one(item_type):
    with pytest.raises(QueryError) as caught:
        parse_sort("remark", item_type)
    assert caught.value.message == "`remark` cannot sort `item`: it has no field or range index"
    assert caught.value.hint == "add it to `index:` of `item`"


def test_sort_by_a_multi_valued_or_unordered_field_is_refused(item_type):
    with pytest.raises(QueryError, match="`tags` \\(tags\\) cannot sort `item`: it holds several values"):
        parse_sort("tags", item_type)
    with pytest.raises(QueryError, match="`notes` \\(text\\) cannot sort `item`: it has no order"):
        parse_sort("-notes", item_type)


# -- search -------------------------------------------------------------------------------

def test_without_a_sort_records_come_by_ascending_id(listed):
    assert listed() == (9, [1, 2, 3, 4, 5, 6, 7, 8, 9])


def test_minus_id_lists_the_newest_first(listed):
    assert listed("-id") == (9, [9, 8, 7, 6, 5, 4, 3, 2, 1])
    assert listed("-id", offset=2, limit=3) == (9, [7, 6, 5])


def test_records_without_a_value_come_last_in_both_directions(listed):
    assert listed("priority")[1] == [2, 5, 4, 8, 9, 1, 6, 3, 7]
    assert listed("-priority")[1] == [1, 6, 9, 4, 8, 2, 5, 3, 7]


def test_ties_fall_to_the_next_key_and_finally_to_the_id(listed):
    assert listed("size")[1] == [4, 7, 1, 2, 6, 8, 9, 5, 3]
    assert listed("size,-due")[1] == [4, 7, 1, 8, 2, 6, 9, 5, 3]
    assert listed("-due,priority,-size")[1] == [4, 9, 1, 5, 8, 3, 2, 6, 7]


def test_pages_cut_the_same_order_and_the_total_counts_every_match(listed):
    full = listed("-priority,size")[1]
    assert listed("-priority,size", offset=0, limit=4) == (9, full[:4])
    assert listed("-priority,size", offset=4, limit=4) == (9, full[4:8])
    assert listed("-priority,size", offset=8, limit=4) == (9, full[8:])
    assert listed("-priority,size", offset=20) == (9, [])
    assert listed("-priority,size", limit=None) == (9, full)
    assert listed("-priority,size", limit=0) == (9, [])


def test_a_filter_and_a_sort_work_together(listed):
    assert listed("-due", {"size": 5}) == (4, [1, 8, 2, 6])
    assert listed("-due", {"size": 99}) == (0, [])


def test_search_reads_a_sort_given_as_text(items, records, item_type):
    indexes = items(*records)
    assert search(indexes, item_type, None, "-size", limit=3) == (9, [5, 9, 1])


def test_search_of_a_type_without_records_finds_nothing(item_type):
    from deskbase.objects.indexes import TypeIndexes
    compiled = compile_filter({"status": "open"}, item_type)
    assert search(TypeIndexes(), item_type, compiled, parse_sort("-due", item_type)) == (0, [])


def build_many(values, count=3000, seed=11):
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(1, count + 1):
        rows.append(values(
            i,
            status=rng.choice(["new", "open", "waiting", "done", None]),
            priority=rng.choice(["urgent", "high", "medium", "low", None]),
            size=rng.choice([None, *range(0, 100, 7)]),
            start=None if rng.random() < 0.1 else start + timedelta(minutes=rng.randrange(count)),
            due=None if rng.random() < 0.3 else date(2026, 1, 1) + timedelta(days=rng.randrange(60)),
        ))
    return rows


ORDERS = ["priority", "-priority", "start", "-start", "-priority,start", "status,-size,due",
          "-due,-start", "size,-id", "-status,priority,-size"]


@pytest.mark.parametrize("sort", ORDERS)
def test_walking_the_sort_index_and_sorting_in_memory_give_the_same_pages(sort, values, item_type, items,
                                                                          monkeypatch):
    rows = build_many(values)
    indexes = items(*rows)
    order = parse_sort(sort, item_type)
    for spec in (None, {"status": ["open", "new"]}, {"size": {"lt": 30}, "not": {"priority": "low"}}):
        compiled = compile_filter(spec, item_type) if spec else None
        expected = reference_order([r for r in rows if not compiled or compiled.matches(r, item_type)],
                                   order, item_type)
        for walks in (True, False):
            monkeypatch.setattr(query, "_walks", lambda size, need, population, walks=walks: walks)
            for offset, limit in ((0, 50), (37, 20), (len(expected) - 5, 50)):
                total, ids = search(indexes, item_type, compiled, order, offset=offset, limit=limit)
                assert total == len(expected)
                assert ids == expected[offset:offset + limit], (walks, offset)


PARTS = ({"status": ["open", "new"]}, {"status": {"not_in": ["done", "waiting"]}}, {"priority": {"ne": "low"}},
         {"priority": [None, "urgent"]})


@pytest.mark.parametrize("sort", ORDERS)
@pytest.mark.parametrize("steps", [0, 40, 400, 100_000])
def test_a_result_given_as_parts_is_paged_as_the_merged_one(sort, steps, values, item_type, items, monkeypatch):
    """A filter on a field of one value per record is counted part by part and paged by
    walking the sort order; a walk that runs out of steps gives way to merging the parts:
    the pages are the same either way."""
    rows = build_many(values)
    indexes = items(*rows)
    order = parse_sort(sort, item_type)
    monkeypatch.setattr(query, "MIN_STEPS", steps)
    monkeypatch.setattr(query, "WALK_SHARE", 10 ** 9)
    for spec in PARTS:
        compiled = compile_filter(spec, item_type)
        assert compiled.parts(indexes, item_type) is not None
        expected = reference_order([r for r in rows if compiled.matches(r, item_type)], order, item_type)
        for offset, limit in ((0, 25), (37, 20), (len(expected) - 5, 50), (0, 0)):
            total, ids = search(indexes, item_type, compiled, order, offset=offset, limit=limit)
            assert total == len(expected)
            assert ids == expected[offset:offset + limit], (spec, offset)


def test_a_page_of_many_matches_of_a_status_is_found_without_merging_them(values, item_type, items, monkeypatch):
    """`status not_in [done]` over 3,000 records: the total adds the sizes of the other
    statuses, the first page walks the sort index; no set of every match is built."""
    rows = build_many(values)
    indexes = items(*rows)
    monkeypatch.setattr(filters, "multiunion", lambda *args: pytest.fail("merged the statuses"))
    monkeypatch.setattr(query, "intersection", lambda *args: pytest.fail("intersected a whole key"))
    compiled = compile_filter({"status": {"not_in": ["done"]}}, item_type)
    for sort in ("priority,start", "-id", "-start"):
        order = parse_sort(sort, item_type)
        expected = reference_order([r for r in rows if r["status"] != "done"], order, item_type)
        assert search(indexes, item_type, compiled, order, limit=25) == (len(expected), expected[:25])


SCOPED = ({"all": [{"any": [{"status": ["new", "open"]}, {"size": 7}, {"priority": "low"}]},
                   {"not": {"status": ["done"]}}]},                       # a read scope and a list's filter
          {"all": [{"any": [{"status": "waiting"}, {"size": {"lt": 20}}]}, {"status": ["waiting", "new", None]}]},
          {"any": [{"status": {"not_in": ["done", "open"]}}, {"priority": [None, "urgent"]}, {"size": 14}]},
          {"any": [{"size": 21}, {"status": "new"}]})


@pytest.mark.parametrize("spec", SCOPED)
def test_a_scope_of_status_or_other_conditions_is_counted_and_paged_by_parts(spec, values, item_type, items,
                                                                             monkeypatch):
    """`any` of conditions one of which has parts, within `not` of some statuses: the
    parts share no id, add up to the matches, and give the pages a plain sort gives."""
    rows = build_many(values)
    indexes = items(*rows)
    monkeypatch.setattr(filters, "PARTS_FROM", 0)
    compiled = compile_filter(spec, item_type)
    parts = compiled.parts(indexes, item_type)
    held = [set(query.as_set(part)) for part in parts]
    assert sum(map(len, held)) == len(set().union(*held))                   # no id in two parts
    expected_ids = {r["id"] for r in rows if compiled.matches(r, item_type)}
    assert set().union(*held) == expected_ids
    monkeypatch.setattr(query, "MIN_STEPS", 100_000)
    for sort in ORDERS:
        order = parse_sort(sort, item_type)
        expected = reference_order([r for r in rows if r["id"] in expected_ids], order, item_type)
        assert search(indexes, item_type, compiled, order, offset=3, limit=25) == (len(expected), expected[3:28])


def test_a_scope_that_leaves_few_records_has_no_parts(values, item_type, items):
    """Within one requester's records (few), the scope's other conditions are checked on
    them rather than found in full: the filter is left to `And`."""
    indexes = items(*build_many(values))
    spec = {"all": [{"any": [{"status": "new"}, {"size": 7}]}, {"priority": "urgent"}]}
    assert filters.PARTS_FROM > 3000 and compile_filter(spec, item_type).parts(indexes, item_type) is None


def test_filters_without_a_field_of_one_value_per_record_have_no_parts(item_type, items, values, monkeypatch):
    monkeypatch.setattr(filters, "PARTS_FROM", 0)
    indexes = items(*build_many(values))
    for spec in ({"size": {"lt": 30}}, {"status": "open", "priority": "low"}, {"id": [1, 2]},
                 {"any": [{"size": {"lt": 30}}, {"start": None}]},
                 {"all": [{"any": [{"status": "new"}, {"size": 7}]}, {"any": [{"status": "open"}, {"size": 14}]},
                          {"not": {"status": "done"}}]}):
        assert compile_filter(spec, item_type).parts(indexes, item_type) is None, spec


def test_a_range_over_most_keys_is_found_through_the_records_it_leaves_out(values, item_type, items, monkeypatch):
    """`start lte <near the last>` over 3,000 moments holds nearly every key: the records
    it leaves out (the few keys beyond and the empties) are subtracted instead of the
    range being merged, alone, within `not` of a status, and in an `any`; the matches are
    those a record-by-record check finds."""
    rows = build_many(values)
    indexes = items(*rows)
    last = max(r["start"] for r in rows if r["start"] is not None)
    first = min(r["start"] for r in rows if r["start"] is not None)
    monkeypatch.setattr(type(indexes.for_field(item_type, "start")), "between",
                        lambda *args, **kwargs: pytest.fail("merged the whole range"))
    for spec in ({"start": {"lte": last - timedelta(minutes=5)}}, {"start": {"lt": last}},
                 {"start": {"gt": first + timedelta(minutes=3)}, "not": {"status": "done"}},
                 {"start": {"gte": first}, "priority": ["urgent", None]},
                 {"any": [{"start": {"lte": last - timedelta(minutes=9)}}, {"size": 7}]}):
        compiled = compile_filter(spec, item_type)
        expected = {r["id"] for r in rows if compiled.matches(r, item_type)}
        assert expected and set(compiled.ids(indexes, item_type)) == expected, spec
        order = parse_sort("-start", item_type)
        ordered = reference_order([r for r in rows if r["id"] in expected], order, item_type)
        assert search(indexes, item_type, compiled, order, limit=25) == (len(expected), ordered[:25])


def test_a_range_over_few_keys_is_merged_as_it_stands(values, item_type, items, monkeypatch):
    rows = build_many(values)
    indexes = items(*rows)
    first = min(r["start"] for r in rows if r["start"] is not None)
    monkeypatch.setattr(filters, "difference", lambda *args: pytest.fail("subtracted the other side"))
    compiled = compile_filter({"start": {"lte": first + timedelta(minutes=200)}}, item_type)
    assert set(compiled.ids(indexes, item_type)) == {r["id"] for r in rows if compiled.matches(r, item_type)}


def test_a_large_result_is_paged_by_walking_the_sort_index(values, item_type, items, monkeypatch):
    indexes = items(*build_many(values))

    def refuse(*args):
        raise AssertionError("sorted in memory")
    monkeypatch.setattr(query, "_sorted", refuse)
    total, ids = search(indexes, item_type, None, parse_sort("-start", item_type), limit=10)
    assert total == 3000 and len(ids) == 10


def test_a_small_result_is_sorted_in_memory(values, item_type, items, monkeypatch):
    indexes = items(*build_many(values))
    monkeypatch.setattr(query, "_within", lambda *args: pytest.fail("walked the index"))
    compiled = compile_filter({"size": 7, "status": "open"}, item_type)
    total, ids = search(indexes, item_type, compiled, parse_sort("-start", item_type))
    assert 0 < total < query.SMALL_RESULT and len(ids) == min(total, 50)


def test_count_by_counts_each_value_of_an_indexed_field_and_the_empty_ones(store):
    def work(session):
        for priority, count in (("high", 3), ("low", 2)):
            for n in range(count):
                session.create("task", {"title": f"{priority} {n}", "priority": priority})
        session.create("task", {"title": "owned", "owner": "ann", "done": True})
        return (session.count_by("task", "priority"), session.count_by("task", "owner"),
                session.count_by("task", "priority", {"done": {"ne": True}}))
    by_priority, by_owner, filtered = store.run(work)
    assert by_priority == [("high", 3), ("medium", 1), ("low", 2)]          # in the enum's order
    assert by_owner == [("ann", 1), (None, 5)]
    assert filtered == [("high", 3), ("low", 2)]


def test_count_by_a_field_without_an_index_says_so(store):
    with pytest.raises(QueryError, match="`notes` of `task` has no index"):
        store.read(lambda s: s.count_by("task", "notes"))
