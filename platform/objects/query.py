"""Queries over one type: a filter's ids, sorted and paged from the indexes.

Order: the sort keys in turn, each ascending or descending, with records whose value is
empty *last in both directions* (an unset due date is never "the most urgent"); ties
fall to the next key and finally to the id, ascending. A small result is sorted in
memory from the records' sort keys; a large one walks the first key's index in order and
keeps the ids the result holds until the page is full, so a page costs about the same
whatever the number of records.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import islice
from operator import itemgetter
from typing import Any, cast

from BTrees.IIBTree import IISet, difference, intersection

from .errors import QueryError, hint_for
from .filters import Filter
from .indexes import IdSet, TypeIndexes, as_set, descending_ids, union_of
from .model import TypeDef

SortOrder = tuple[tuple[str, bool], ...]
"""(field, descending) pairs, the first deciding most."""

# Below this many ids a result is always sorted in memory.
SMALL_RESULT = 2000
# A result given as parts (`_from_parts`) is paged by a walk of at most one step per this
# many of its ids, and at least MIN_STEPS: merging the parts costs about 25 ns an id and a
# step about 0.8 µs, so a walk that gives up has cost about what the merge it falls back
# to costs (measured at a million: 18,750 steps in 15 ms, the merge and page 17–32 ms).
WALK_SHARE = 32
MIN_STEPS = 2000


def _sortable(typedef: TypeDef, name: str) -> bool:
    field = typedef.fields.get(name)
    index = typedef.index_for(name)
    return (field is not None and index is not None and index.kind in ("field", "range")
            and field.kind.sortable and not field.kind.multiple)


def parse_sort(spec: str | Sequence[str] | None, typedef: TypeDef) -> SortOrder:
    """`"-priority,created_at"` or `["-priority", "created_at"]` as (field, descending)
    pairs; `-` sorts descending. Only `id` and fields with a field or range index sort."""
    if not spec:
        return ()
    parts = spec.split(",") if isinstance(spec, str) else [p for item in spec for p in str(item).split(",")]
    order: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for position, part in enumerate(parts):
        text = part.strip()
        if not text:
            continue
        descending = text.startswith("-")
        name = text.lstrip("+-").strip()
        path = f"sort[{position}]"
        if name != "id" and not _sortable(typedef, name):
            choices = ["id", *(n for n in typedef.fields if _sortable(typedef, n))]
            if name not in typedef.fields:
                raise QueryError(f"`{name}` is not a field of `{typedef.name}`", path, hint_for(name, choices))
            kind = typedef.fields[name].kind
            if kind.multiple or not kind.sortable:
                raise QueryError(f"`{name}` ({kind.name}) cannot sort `{typedef.name}`: "
                                 f"{'it holds several values' if kind.multiple else 'it has no order'}",
                                 path, f"sort by one of {', '.join(choices)}")
            raise QueryError(f"`{name}` cannot sort `{typedef.name}`: it has no field or range index",
                             path, f"add it to `index:` of `{typedef.name}`")
        if name in seen:
            continue
        seen.add(name)
        order.append((name, descending))
        if name == "id":   # ids are unique: nothing after them can matter
            break
    return tuple(order)


def search(indexes: TypeIndexes, typedef: TypeDef, filter: Filter | None,
           sort: SortOrder | str | Sequence[str] = (), *, offset: int = 0, limit: int | None = 50,
           context: Mapping[str, Any] | None = None,
           unindexed: Mapping[int, Mapping[str, Any]] | None = None) -> tuple[int, list[int]]:
    """(how many records match, the ids of the page `offset` … `offset + limit`);
    `limit=None` returns every match, `limit=0` only counts. `unindexed`: the values of the
    records not filed in the indexes yet, by id (`TypeIndexes.catch_up`), which are judged
    and sorted by their values."""
    order: SortOrder
    if isinstance(sort, str) or any(isinstance(item, str) for item in sort):
        order = parse_sort(cast("str | Sequence[str]", sort), typedef)
    else:
        order = tuple(cast(SortOrder, sort))     # (field, descending) pairs already
    unindexed = unindexed or {}
    parts = filter.parts(indexes, typedef, context) if filter is not None and not unindexed else None
    if parts is not None:
        page = _from_parts(indexes, typedef, parts, order, offset, limit)
        if page is not None:
            return page
        result = union_of(parts)                 # the walk gave way: the parts merged are the ids
    else:
        result = filter.ids(indexes, typedef, context, unindexed) if filter is not None else indexes.all_ids
    total = indexes.count if result is indexes.all_ids else len(result)
    offset = max(0, offset)
    if (limit is not None and limit <= 0) or offset >= total:
        return total, []
    stop = total if limit is None else min(total, offset + limit)
    keys = order
    if keys and keys[-1] == ("id", False):
        keys = keys[:-1]   # ids come ascending anyway
    waiting = [i for i in unindexed if i in result] if keys and keys[0][0] != "id" else []
    if not waiting:
        return total, _first(indexes, typedef, result, total, keys, stop)[offset:stop]
    # The records not filed yet are under no key of the sort index: the first of the others,
    # sorted with them by the keys their values give.
    filed = difference(result, IISet(waiting))
    rows = {i: indexes.keys.get(i) or () for i in _first(indexes, typedef, filed, len(filed), keys, stop)}
    rows.update((i, indexes.row_of(typedef, unindexed[i])) for i in waiting)
    return total, _in_order(indexes, typedef, rows, keys)[offset:stop]


class _Walked(Exception):
    """A walk took the steps that merging the parts into one set would cost."""


class _Steps:
    """What a walk may still spend: one step a key of a sort index read, one an id checked."""

    __slots__ = ("left",)

    def __init__(self, left: int):
        self.left = left

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _Walked


class _InParts:
    """Membership in ids held as parts that share no id, and in every set of `within`."""

    __slots__ = ("sets", "singles", "within", "steps")

    def __init__(self, parts: list, steps: _Steps, within: tuple = ()):
        self.sets = tuple(part for part in parts if part.__class__ is not int)
        self.singles = frozenset(part for part in parts if part.__class__ is int)
        self.steps, self.within = steps, within

    def __contains__(self, record_id: int) -> bool:
        steps = self.steps
        steps.left -= 1
        if steps.left < 0:
            raise _Walked
        for ids in self.within:
            if record_id not in ids:
                return False
        for ids in self.sets:
            if record_id in ids:
                return True
        return record_id in self.singles

    def among(self, ids: Any) -> _InParts:
        """The same membership, within `ids` too."""
        held = _InParts([], self.steps, self.within + (ids,))
        held.sets, held.singles = self.sets, self.singles
        return held


def _from_parts(indexes: TypeIndexes, typedef: TypeDef, parts: list, keys: SortOrder,
                offset: int, limit: int | None) -> tuple[int, list[int]] | None:
    """(total, page) of a result given as parts that share no id (`Filter.parts`: the
    statuses of `status not_in [closed, …]`), without merging them into one set: the total
    adds the parts' sizes, and the page walks the sort order checking each id it meets
    against the parts. At a million records, merging the statuses of 600,000 open ones
    costs 14–16 ms and finding the first priority's among them 7 ms more, where the walk
    checks a few hundred ids. A walk is given as many steps as merging would cost (about
    one per WALK_SHARE ids); one that needs more (a page far down, a sort key whose first
    values the result hardly holds) gives up, and the caller merges as before: None."""
    sizes = [1 if part.__class__ is int else len(part) for part in parts]
    total = sum(sizes)
    offset = max(0, offset)
    if (limit is not None and limit <= 0) or offset >= total:
        return total, []
    stop = total if limit is None else min(total, offset + limit)
    steps = _Steps(max(MIN_STEPS, total // WALK_SHARE))
    if stop * indexes.count > steps.left * total:        # even the expected walk is too long
        return None
    ordered = [part for _, part in sorted(zip(sizes, parts, strict=True), key=itemgetter(0), reverse=True)]
    if keys and keys[-1] == ("id", False):
        keys = keys[:-1]
    try:
        found = _walk(indexes, typedef, _InParts(ordered, steps), total, keys, stop)
    except _Walked:
        return None
    return total, found[offset:stop]


def _walk(indexes: TypeIndexes, typedef: TypeDef, members: _InParts, estimate: float,
          keys: SortOrder, need: int) -> list[int]:
    """The first `need` ids that `members` holds (about `estimate` of them), in the order of
    `keys`, by walking the first key's index (or the ids) in order."""
    if not keys or keys[0][0] == "id":
        ids = _in_id_order(indexes.all_ids, bool(keys) and keys[0][1])
        return list(islice((i for i in ids if i in members), need))
    name, descending = keys[0]
    index = _index(indexes, typedef, name)
    density = estimate / max(1, indexes.count)
    found: list[int] = []
    for _, holders in index.items(descending):
        members.steps.spend()
        found.extend(_held(indexes, typedef, holders, members, density, keys[1:], need - len(found)))
        if len(found) >= need:
            return found
    found.extend(_held(indexes, typedef, index.empty, members, density, keys[1:], need - len(found)))
    return found


def _held(indexes: TypeIndexes, typedef: TypeDef, holders: Any, members: _InParts, density: float,
          keys: SortOrder, need: int) -> list[int]:
    """The first `need` of the ids under one key of a sort index (`holders`) that `members`
    holds, in the order of the remaining `keys`: the few are checked one by one and sorted
    as usual; among many, the next key's index is walked in turn."""
    if holders.__class__ is int:
        return [holders] if holders in members else []
    if not holders:
        return []
    if not keys or keys[0][0] == "id":           # in the order of their ids: the first that are held
        return list(islice((i for i in _in_id_order(holders, bool(keys) and keys[0][1]) if i in members), need))
    size = len(holders)
    if size * size * density <= need * indexes.count:   # checking them all costs less than walking
        group = IISet([i for i in holders if i in members])
        return _first(indexes, typedef, group, len(group), keys, need)
    return _walk(indexes, typedef, members.among(holders), size * density, keys, need)


def _in_id_order(ids: Any, descending: bool) -> Any:
    if not descending:
        return iter(ids)
    if isinstance(ids, IISet):                   # a flat set: indexing is direct
        return (ids[position] for position in range(len(ids) - 1, -1, -1))
    return descending_ids(ids)


def _first(indexes: TypeIndexes, typedef: TypeDef, ids: IdSet, size: int,
           keys: SortOrder, need: int) -> list[int]:
    """The first `need` of `ids` (which holds `size` ids) in the order of `keys`."""
    if size <= 1:
        return list(ids)
    need = min(need, size)
    if not keys or keys[0][0] == "id":
        return _by_id(ids, need, bool(keys) and keys[0][1])
    if not _walks(size, need, indexes.count):
        return _sorted(indexes, typedef, ids, keys)[:need]
    name, descending = keys[0]
    index = _index(indexes, typedef, name)
    rest = keys[1:]
    everything = size >= indexes.count   # every record matches: nothing to intersect
    found: list[int] = []
    for _, holders in index.items(descending):
        group = as_set(holders) if everything else _within(holders, ids, size)
        if group:
            found.extend(_first(indexes, typedef, group, len(group), rest, need - len(found)))
            if len(found) >= need:
                return found
    empties = index.empty if everything else intersection(index.empty, ids)
    if empties:
        found.extend(_first(indexes, typedef, empties, len(empties), rest, need - len(found)))
    return found


def _index(indexes: TypeIndexes, typedef: TypeDef, name: str):
    index = indexes.for_field(typedef, name)
    if index is None:
        raise QueryError(f"the index of `{name}` of `{typedef.name}` is missing", "sort",
                         "run `deskbase migrate`")
    return index


def _walks(size: int, need: int, population: int) -> bool:
    """Whether walking the sort index beats sorting `size` ids in memory: a walk reads
    about need × population / size keys before the page is full."""
    return size > SMALL_RESULT and need * population < size * size


def _within(holders: Any, ids: IdSet, size: int) -> IdSet | list[int]:
    """The ids under one key of the sort index that the result holds."""
    if holders.__class__ is int:
        return [holders] if holders in ids else []
    if len(holders) * 16 < size:   # a merge would walk all of `ids`: look each one up instead
        return IISet([i for i in holders if i in ids])
    return intersection(holders, ids)


def _by_id(ids: Any, need: int, descending: bool) -> list[int]:
    if isinstance(ids, list):
        return sorted(ids, reverse=descending)[:need]
    return list(islice(_in_id_order(ids, descending), need))


def _sorted(indexes: TypeIndexes, typedef: TypeDef, ids: Any, keys: SortOrder) -> list[int]:
    """`ids` fully sorted in memory, one stable pass per key from the last to the first,
    reading each record's sort keys once from `indexes.keys`."""
    held = indexes.keys.get
    return _in_order(indexes, typedef, {i: held(i) or () for i in ids}, keys)


def _in_order(indexes: TypeIndexes, typedef: TypeDef, rows: Mapping[int, tuple], keys: SortOrder) -> list[int]:
    """The ids of `rows` (id → its sort keys) sorted by `keys`, then by id."""
    order = sorted(rows)
    for name, descending in reversed(keys):
        if name == "id":
            order.sort(reverse=descending)
            continue
        slot = _index(indexes, typedef, name).slot
        pairs = [(row[slot] if slot < len(row) else None, i) for i, row in ((i, rows[i]) for i in order)]
        present = [pair for pair in pairs if pair[0] is not None]
        present.sort(key=itemgetter(0), reverse=descending)
        order = [i for _, i in present] + [i for key, i in pairs if key is None]
    return order
