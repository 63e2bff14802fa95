"""The two filter evaluators agree, and search orders as a plain sort does, on generated
records and filters (docs/definitions.md, "Filters")."""
from datetime import date, datetime, timedelta, timezone
from unittest import mock

from BTrees.IIBTree import IISet
from hypothesis import HealthCheck, given, settings, strategies as st
from sort_reference import reference_order

from deskbase.objects import filters, query
from deskbase.objects.fields import (
    BooleanKind,
    DateKind,
    DateTimeKind,
    EnumKind,
    IntegerKind,
    RefKind,
    RefsKind,
    StringKind,
    TagsKind,
    TextKind,
    UserKind,
)
from deskbase.objects.filters import compile_filter
from deskbase.objects.indexes import TypeIndexes, as_set
from deskbase.objects.model import SYSTEM_INDEXES, FieldDef, IndexDef, TypeDef, system_fields
from deskbase.objects.query import parse_sort, search

UTC = timezone.utc
NOW = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
KINDS = {
    "status": EnumKind(values=("new", "open", "waiting", "done")),
    "size": IntegerKind(minimum=0, maximum=100),
    "title": StringKind(),
    "notes": TextKind(),
    "due": DateKind(),
    "start": DateTimeKind(),
    "flag": BooleanKind(),
    "team": RefKind(to="team"),
    "owner": UserKind(),
    "watchers": RefsKind(to="person"),
    "tags": TagsKind(),
}
SORTABLE = ("id", "status", "size", "title", "due", "start", "flag", "team", "owner")


def task_type() -> TypeDef:
    fields = dict(system_fields("UTC"))
    fields.update({name: FieldDef(name, kind) for name, kind in KINDS.items()})
    indexes = {index.name: index for index in SYSTEM_INDEXES}
    for name in ("status", "title", "flag", "team", "owner"):
        indexes[name] = IndexDef(name, "field", (name,))
    for name in ("size", "due", "start"):
        indexes[name] = IndexDef(name, "range", (name,))
    for name in ("watchers", "tags"):
        indexes[name] = IndexDef(name, "keyword", (name,))
    indexes["text"] = IndexDef("text", "text", ("title", "notes"))
    return TypeDef("task", "Task", "TASK-{seq:04d}", fields, indexes)


TASK = task_type()
WORDS = ["Printer", "printers", "Paris", "paříž", "Écran", "ecran", "Tiskárna", "Đuro", "duro", "ink", "prix"]
OWNERS = ["alice", "bob", "carol"]

# Stored values, from small domains so that filters and records meet.
stored = {
    "status": st.sampled_from([None, "new", "open", "waiting", "done"]),
    "size": st.none() | st.integers(0, 5),
    "title": st.none() | st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
    "notes": st.none() | st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
    "due": st.none() | st.integers(0, 4).map(lambda d: date(2026, 1, 1) + timedelta(days=d)),
    "start": st.none() | st.integers(0, 8).map(lambda h: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h * 9)),
    "flag": st.sampled_from([None, True, False]),
    "team": st.none() | st.integers(1, 4),
    "owner": st.sampled_from([None, *OWNERS]),
    "watchers": st.lists(st.integers(1, 4), unique=True, max_size=3).map(tuple),
    "tags": st.lists(st.sampled_from(["red", "blue", "green"]), unique=True, max_size=2).map(tuple),
}
values_strategy = st.fixed_dictionaries(stored)

# Operands as a person writes them in a filter.
literal = {
    "id": st.integers(0, 30),
    "status": st.sampled_from(["new", "open", "Waiting", "done"]),
    "size": st.integers(0, 6),
    "title": st.sampled_from(["Paris", "ink", "Printer Paris", "duro"]),
    "due": st.sampled_from(["2026-01-02", date(2026, 1, 4), "03.01.2026"]),
    "start": st.sampled_from(["2026-01-01 09:00", "2026-01-02T06:00+00:00", datetime(2026, 1, 3, 3, tzinfo=UTC)]),
    "flag": st.sampled_from([True, False, "yes", "no"]),
    "team": st.integers(1, 5),
    "owner": st.sampled_from(OWNERS),
    "watchers": st.integers(1, 5),
    "tags": st.sampled_from(["red", "blue", "green"]),
}
references = {
    "owner": ["$me", "$me.groups", "$me.missing"],
    "team": ["$record.team", "$record.watchers", "$me.missing"],
    "watchers": ["$record.watchers", "$record.team"],
    "due": ["$today", "$today-1d", "$now+1d"],
    "start": ["$now", "$now-1d", "$today-2d", "$now+4h", "$now-90m"],
}
single_references = {   # those that give one value at most: fit for gt … lte
    "team": ["$record.team", "$me.missing"],
    "due": ["$today", "$today-1d", "$now+1d"],
    "start": ["$now", "$now-1d", "$today-2d", "$now+4h", "$now-90m"],
}


@st.composite
def comparisons(draw):
    field = draw(st.sampled_from(sorted(literal)))
    value = literal[field]
    with_refs = value | st.sampled_from(references[field]) if field in references else value
    ranged = field in SORTABLE
    op = draw(st.sampled_from(["short", "list", "eq", "ne", "in", "not_in", "empty", "null",
                               *(["gt", "gte", "lt", "lte"] * 2 if ranged else [])]))
    if op == "short":
        return {field: draw(with_refs)}
    if op == "null":
        return {field: None}
    if op == "empty":
        return {field: {"empty": draw(st.booleans())}}
    if op in ("list", "in", "not_in"):
        if field in references and draw(st.booleans()):
            operand = draw(st.sampled_from(references[field]))
        else:
            operand = draw(st.lists(st.none() | with_refs, max_size=3))
        return {field: operand} if op == "list" else {field: {op: operand}}
    if op in ("eq", "ne"):
        return {field: {op: draw(st.none() | with_refs)}}
    bound = value | st.sampled_from(single_references[field]) if field in single_references else value
    return {field: {op: draw(bound)}}


texts = st.lists(st.sampled_from([*WORDS, "pri*", "ec*", "p*", "tisk*", "zzz"]), min_size=1, max_size=2).map(
    lambda words: {"text": " ".join(words)})
# A ref compared with a set of ids worked out before (the records of another type one reads).
among = st.lists(st.integers(1, 5), unique=True, max_size=4).map(
    lambda ids: {"team": filters.IdsAmong(IISet(sorted(ids)))})
leaves = comparisons() | texts | among


def combine(children):
    return (st.lists(children, max_size=3).map(lambda items: {"all": items})
            | st.lists(children, max_size=3).map(lambda items: {"any": items})
            | children.map(lambda item: {"not": item})
            | st.tuples(children, children).map(lambda pair: {**pair[0], **pair[1]}))


filter_specs = st.recursive(leaves, combine, max_leaves=6)
contexts = st.fixed_dictionaries({
    "me": st.fixed_dictionaries({"id": st.sampled_from(OWNERS),
                                 "groups": st.lists(st.sampled_from(OWNERS), max_size=2)}),
    "record": st.fixed_dictionaries({"team": stored["team"], "watchers": stored["watchers"]}),
    "now": st.just(NOW),
})


class Stored(tuple):
    """(indexes, final values by id) of generated records; `unindexed`, the values of those
    left waiting to be filed (`TypeIndexes.wait`), which the queries are given."""

    unindexed: dict


@st.composite
def stores(draw, waiting: bool = True):
    """Records written, some left waiting to be filed in the indexes (unless not `waiting`),
    some changed and some deleted afterwards: (indexes, final values), with `.unindexed`."""
    created = draw(st.lists(values_strategy, min_size=4, max_size=30))
    waits = draw(st.lists(st.booleans(), min_size=len(created), max_size=len(created))) if waiting \
        else [False] * len(created)
    indexes = TypeIndexes()
    final = {}
    for record_id, values in enumerate(created, start=1):
        values = {"id": record_id, "created_at": NOW, "created_by": "alice", "modified_at": NOW,
                  "modified_by": "alice", "version": 1, **values}
        if waits[record_id - 1]:
            indexes.wait(TASK, record_id)
        else:
            indexes.add(TASK, record_id, values)
        final[record_id] = values
    for record_id in draw(st.lists(st.sampled_from(sorted(final)), unique=True)) if final else []:
        old = final[record_id]
        if draw(st.booleans()):
            indexes.remove(TASK, record_id, old)
            del final[record_id]
        else:
            new = {**old, **draw(st.fixed_dictionaries({}, optional=stored)), "version": old["version"] + 1}
            indexes.update(TASK, record_id, old, new)
            final[record_id] = new
    stored_ = Stored((indexes, final))
    stored_.unindexed = {i: values for i, values in final.items() if indexes.is_waiting(i)}
    return stored_


NARROWING = {"as planned": filters._narrows, "always": lambda found, probe: True,
             "never": lambda found, probe: False}
sorts = st.lists(st.tuples(st.sampled_from(SORTABLE), st.booleans()), max_size=3).map(
    lambda keys: ",".join(("-" if descending else "") + name for name, descending in keys))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores(), filter_specs, contexts, st.sampled_from(sorted(NARROWING)), st.booleans())
def test_the_index_and_the_in_memory_evaluators_agree(data, spec, context, narrowing, outside):
    # `outside`: every range over more keys than lie beyond it is found through the records
    # it leaves out (`Compare.outside`), as at a million records.
    indexes, records = data
    compiled = compile_filter(spec, TASK)
    with mock.patch.object(filters, "_narrows", NARROWING[narrowing]), \
            mock.patch.object(filters, "FEW_KEYS", 0 if outside else filters.FEW_KEYS), \
            mock.patch.object(filters, "_holds_more", (lambda values, count: True) if outside else filters._holds_more):
        by_index = sorted(compiled.ids(indexes, TASK, context, data.unindexed))
    in_memory = [i for i, values in sorted(records.items()) if compiled.matches(values, TASK, context)]
    assert by_index == in_memory


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores(), filter_specs, contexts)
def test_records_filed_after_their_commit_are_found_the_same_before_and_after(data, spec, context):
    indexes, records = data
    compiled = compile_filter(spec, TASK)
    before = sorted(compiled.ids(indexes, TASK, context, data.unindexed))
    filed = indexes.catch_up(TASK, {i: mock.Mock(values=values) for i, values in records.items()})
    assert filed == len(data.unindexed) and not indexes.has_waiting
    assert sorted(compiled.ids(indexes, TASK, context)) == before
    rebuilt = TypeIndexes()
    rebuilt.rebuild(TASK, records.items())
    def content(index):
        return {key: set(as_set(ids)) for key, ids in index.forward.items()}, set(index.empty)
    for name, index in rebuilt.indexes.items():   # filed late, the indexes are as if filed at once
        assert content(indexes.get(name)) == content(index), name
    assert dict(indexes.keys.items()) == dict(rebuilt.keys.items()) and list(indexes.all_ids) == list(rebuilt.all_ids)


def _agrees_with_its_parts(checked, values) -> bool:
    """A combination holds as its parts say; a condition reports the value the record has."""
    if not checked.parts:
        return checked.op == "text" or checked.found == values.get(checked.field)
    held = [part.held for part in checked.parts]
    expected = all(held) if checked.op == "all" else any(held) if checked.op == "any" else not held[0]
    return checked.held == expected and all(_agrees_with_its_parts(part, values) for part in checked.parts)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores(), filter_specs, contexts)
def test_a_traced_evaluation_answers_the_same_and_its_reasons_add_up(data, spec, context):
    _, records = data
    compiled = compile_filter(spec, TASK)
    for values in records.values():
        trace: list = []
        answer = compiled.matches(values, TASK, context, trace)
        assert answer == compiled.matches(values, TASK, context)
        assert len(trace) == 1 and trace[0].held == answer
        assert _agrees_with_its_parts(trace[0], values)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores(), filter_specs, contexts, sorts, st.booleans(), st.integers(0, 12), st.integers(1, 15),
       st.sampled_from([0, 3, 12, 2000]))
def test_search_pages_follow_a_plain_sort_of_the_matching_records(data, spec, context, sort, walks,
                                                                 offset, limit, steps):
    # `steps`: what a walk over a result given as parts may spend (0: merged at once; 3 and
    # 12: the walk gives up on the way and the parts are merged; 2000: walked to the end).
    indexes, records = data
    compiled = compile_filter(spec, TASK)
    order = parse_sort(sort, TASK)
    matching = [values for values in records.values() if compiled.matches(values, TASK, context)]
    expected = reference_order(matching, order, TASK)
    with mock.patch.object(query, "_walks", lambda size, need, population: walks), \
            mock.patch.object(query, "MIN_STEPS", steps), mock.patch.object(query, "WALK_SHARE", 10 ** 9):
        total, ids = search(indexes, TASK, compiled, order, offset=offset, limit=limit, context=context,
                            unindexed=data.unindexed)
    assert total == len(expected)
    assert ids == expected[offset:offset + limit]


# Filters shaped like a read scope within a list's filter, `all: [any: […], status …]`, or an
# `any` with conditions on the status among others: those `Filter.parts` answers.
status_leaves = (st.lists(st.none() | literal["status"], max_size=3).map(lambda keys: {"status": keys})
                 | st.lists(st.none() | literal["status"], max_size=3).map(lambda keys: {"status": {"not_in": keys}})
                 | (st.none() | literal["status"]).map(lambda key: {"status": {"ne": key}}))
scoped_specs = (st.tuples(st.lists(leaves | status_leaves, min_size=1, max_size=3),
                          st.lists(status_leaves, min_size=1, max_size=2)).map(
                    lambda pair: {"all": [{"any": pair[0]}, *pair[1]]})
                | st.lists(leaves | status_leaves, min_size=1, max_size=4).map(lambda items: {"any": items}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores(waiting=False), scoped_specs, contexts, sorts, st.integers(0, 12), st.integers(1, 15),
       st.sampled_from([3, 12, 2000]))
def test_the_parts_of_a_filter_share_no_id_and_page_as_a_plain_sort(data, spec, context, sort, offset, limit,
                                                                    steps):
    indexes, records = data
    compiled = compile_filter(spec, TASK)
    matching = {i for i, values in records.items() if compiled.matches(values, TASK, context)}
    with mock.patch.object(filters, "PARTS_FROM", 0):
        parts = compiled.parts(indexes, TASK, context)
    if parts is not None:
        held = [set(as_set(part)) for part in parts]
        assert sum(len(ids) for ids in held) == len(set().union(*held))     # no id in two parts
        assert set().union(*held) == matching
    order = parse_sort(sort, TASK)
    expected = reference_order([records[i] for i in matching], order, TASK)
    with mock.patch.object(query, "MIN_STEPS", steps), mock.patch.object(query, "WALK_SHARE", 10 ** 9), \
            mock.patch.object(filters, "PARTS_FROM", 0):
        assert search(indexes, TASK, compiled, order, offset=offset, limit=limit, context=context) == \
            (len(expected), expected[offset:offset + limit])
