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
from .indexes import IdSet, TypeIndexes, as_set, descending_ids
from .model import TypeDef

SortOrder = tuple[tuple[str, bool], ...]
"""(field, descending) pairs, the first deciding most."""

# Below this many ids a result is always sorted in memory.
SMALL_RESULT = 2000


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


def _first(indexes: TypeIndexes, typedef: TypeDef, ids: IdSet, size: int,
           keys: SortOrder, need: int) -> list[int]:
    """The first `need` of `ids` (which holds `size` ids) in the order of `keys`."""
    if size <= 1:
        return list(ids)
    need = min(need, size)
    if not keys or keys[0][0] == "id":
        return _by_id(ids, size, need, bool(keys) and keys[0][1])
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


def _by_id(ids: Any, size: int, need: int, descending: bool) -> list[int]:
    if isinstance(ids, list):
        return sorted(ids, reverse=descending)[:need]
    if not descending:
        return list(islice(ids, need))
    if isinstance(ids, IISet):   # a flat set: indexing is direct
        return [ids[size - 1 - i] for i in range(need)]
    return list(islice(descending_ids(ids), need))


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
