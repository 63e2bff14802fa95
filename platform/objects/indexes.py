"""The indexes of one type, kept in BTrees beside its records: the set of all ids, a
count, one index per `IndexDef` (field, range, keyword or text) mapping keys to ids, and
one tree of every record's sort keys. Filters and sorting read them; the write path keeps
them current through `add`, `update` and `remove`.

The sort keys of a record (the keys of all its field and range indexes) sit together in
one tuple under its id in `keys`, rather than in a reverse tree per index: a write then
changes one reverse bucket instead of one per index, which is most of the cost of
indexing a record (measured: a single create with 26 indexes went from 6.5 to 4.4 ms).
Keyword and text indexes keep no reverse at all; `update` and `remove` are given the
values the record had, and the write path is the only writer.

Conflicts (two transactions writing records of the same type at once). A record write
touches, per index whose key changed, the forward BTree's bucket holding the key (or the
set of ids under it, or the set of empty ids), and once the bucket of `keys` holding the
record; a creation or deletion also touches `all_ids` and the count. These are BTrees and
`Length`, which resolve concurrent changes to *different* keys of one bucket (`Length`
resolves any). What still conflicts, and is retried by the caller's
`transaction.manager.attempts()`: two writers changing the same key of a bucket (the same
record, or the first two records given a new key value), a bucket that splits (often at
the end of `all_ids` and `keys`, since new ids are the largest; `keys` has small buckets
and splits every ~8 creations) and a bucket emptied by a removal. Within a process the
writes take turns (`Store._transaction`), so these arise only between processes. `TypeIndexes` itself is written only by
`sync`, `clear` and `rebuild`, which are migrations and run alone.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, TypeAlias

from BTrees.IIBTree import IIBTree, IISet, IITreeSet, multiunion
from BTrees.IOBTree import IOBTree
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from persistent import Persistent

from .errors import MigrationError
from .fields import ComputedKind, EnumKind, Kind
from .idsets import IdTreeSet
from .model import IndexDef, TypeDef
from .textsearch import words_of


class RowsTree(IOBTree):
    """An IOBTree with small buckets, for rows (tuples of many values) kept per record id
    and rewritten by the writes of that record: the sort keys of the indexes, or what upper
    layers keep beside records (the clocks of a record, the decisions of its notifications).

    A write re-pickles the whole bucket that holds its record, and new ids all land in the
    last one, which holds up to 60 rows in an IOBTree: with at most 16 a create pickles far
    fewer values (measured for the sort keys, ~26 a row: single create 3.9 → 3.1 ms; reading
    286 rows for an in-memory sort costs +0.03 ms warm). Internal nodes are small too,
    because each split of the last bucket rewrites its parent. Pickles name this class:
    keep it here, under this name."""

    max_leaf_size = 16
    max_internal_size = 128


class KeysTree(RowsTree):
    """The tree of sort keys (`TypeIndexes.keys`). Trees stored before this class stay
    IOBTrees until `clear` (a full reindex). Pickles name this class: keep it here, under
    this name."""


IdSet: TypeAlias = IISet | IITreeSet
"""A set of record ids as BTrees set operations return it; treat it as read-only."""

_MISSING = object()
KEPT_OPEN = 0   # the key `TypeIndexes.waiting` always holds: no record has id 0
ESTIMATES_KEPT = 30.0   # seconds a set's size is trusted for planning
# No text word contains this character (it is not a letter), so every word that starts
# with a prefix sorts below prefix + LAST_LETTER.
LAST_LETTER = "\U0010ffff"


# A forward BTree maps a key to the one id that has it (a bare int), or to an IITreeSet
# once several ids share it: unique keys such as timestamps then cost no persistent
# object per record, and a range over them is a multiunion of ints. New sets are
# `IdTreeSet`s, which pickle their ids packed (`idsets.py`).

def _insert(tree: OOBTree, key: Any, record_id: int) -> None:
    ids = tree.get(key)
    if ids is None:
        tree[key] = record_id
    elif ids.__class__ is int:
        if ids != record_id:
            tree[key] = IdTreeSet((ids, record_id))
    else:
        ids.add(record_id)


def _discard(tree: OOBTree, key: Any, record_id: int) -> None:
    ids = tree.get(key)
    if ids is None:
        return
    if ids.__class__ is int:
        if ids == record_id:
            del tree[key]
    else:
        ids.discard(record_id)
        if not ids:   # an empty set under a key would still be walked by sorting
            del tree[key]


def as_set(ids: Any) -> IdSet:
    """A forward BTree value (None, an id or a set of ids) as a set of ids."""
    if ids is None:
        return IISet()
    if ids.__class__ is int:
        return IISet((ids,))
    return ids


def _descending(tree: Any, items: bool = True) -> Iterator[Any]:
    """The items (or, for a tree set, the ids) of a BTree from the largest key down,
    without reading the keys before.

    BTrees only iterate upwards and step backwards by re-walking from the first bucket,
    so this descends the tree's own nodes (their pickled state) from the right."""
    state = tree.__getstate__()
    if state is None:
        return
    if len(state) == 1:   # a single bucket, kept inside the tree node
        yield from reversed(list(tree.items() if items else tree.keys()))
        return
    tree_type = type(tree)
    for child in reversed(state[0][::2]):
        if type(child) is tree_type:
            yield from _descending(child, items)
        else:
            yield from reversed(child.items() if items else child.keys())


def descending_ids(ids: IITreeSet) -> Iterator[int]:
    """The ids of a tree set, largest first."""
    return _descending(ids, items=False)


def size_of(holders: list) -> int:
    """How many ids some forward values (ids and sets of ids) hold together, none twice."""
    return sum(1 if held.__class__ is int else len(held) for held in holders)


def in_any(record_id: int, holders: list) -> bool:
    """Whether one of some forward values (ids and sets of ids) holds `record_id`."""
    return any(record_id == held if held.__class__ is int else record_id in held for held in holders)


def union_of(holders: list) -> IdSet:
    """The ids some forward BTree values hold, as one set."""
    if len(holders) == 1:
        return as_set(holders[0])
    return multiunion(holders) if holders else IISet()


class _KeyedIndex(Persistent):
    """What every index holds: key → ids (`forward`), and the ids without a key (`empty`)."""

    _v_counts: dict[int, tuple[Any, int, float]]    # id of a set → (the set, its size, when counted); volatile

    def __init__(self, signature: tuple):
        self.signature = signature
        self.clear()

    def clear(self) -> None:
        """Forget every record (new trees: nothing old has to be loaded to drop them)."""
        self.forward = OOBTree()
        self.empty = IdTreeSet()

    def ids(self, key: Any) -> IdSet:
        """The ids under one key."""
        return as_set(self.forward.get(key))

    def ids_any(self, keys: Iterable[Any]) -> IdSet:
        """The ids under any of the keys."""
        return union_of(self.holders(keys))

    def between(self, low: Any = None, high: Any = None, *,
                exclude_low: bool = False, exclude_high: bool = False) -> IdSet:
        """The ids whose key lies between two bounds (None: unbounded); never the empties."""
        return multiunion(self._values(low, high, exclude_low, exclude_high))

    def holders(self, keys: Iterable[Any]) -> list:
        """The forward values (an id, or an IITreeSet of ids) of those keys that are held."""
        forward = self.forward
        return [ids for ids in (forward.get(key) for key in keys) if ids is not None]

    def holders_between(self, low: Any = None, high: Any = None, *, exclude_low: bool = False,
                        exclude_high: bool = False, limit: int | None = None) -> list | None:
        """The forward values of the keys between two bounds; None when there are more
        than `limit` of them."""
        values = self._values(low, high, exclude_low, exclude_high)
        if limit is None:
            return list(values)
        found = list(islice(values, limit + 1))
        return None if len(found) > limit else found

    def holders_within(self, low: Any = None, high: Any = None, *, exclude_low: bool = False,
                       exclude_high: bool = False) -> Iterator[Any]:
        """The forward values of the keys between two bounds, read as they are needed."""
        return iter(self._values(low, high, exclude_low, exclude_high))

    def _values(self, low, high, exclude_low, exclude_high):
        return self.forward.values(low, high, excludemin=exclude_low and low is not None,
                                   excludemax=exclude_high and high is not None)

    def estimate(self, ids: Any) -> int:
        """How many ids a forward value holds, for planning a query: counting a large set
        walks all its buckets, so a count is kept for a few seconds and may be stale."""
        if ids.__class__ is int:
            return 1
        counts = getattr(self, "_v_counts", None)
        if counts is None or len(counts) > 4096:
            counts = self._v_counts = {}
        now = time.monotonic()
        known = counts.get(id(ids))
        if known is not None and known[0] is ids and now - known[2] < ESTIMATES_KEPT:
            return known[1]
        size = len(ids)
        if size > 2000:   # smaller sets are counted faster than looked up
            counts[id(ids)] = (ids, size, now)
        return size

    def items(self, descending: bool = False) -> Iterator[tuple[Any, Any]]:
        """(key, id or IITreeSet of ids) in key order."""
        return _descending(self.forward) if descending else iter(self.forward.items())


class FieldIndex(_KeyedIndex):
    """One sortable key per record (`field` and `range` indexes); its keys are also kept
    at position `slot` of each record's tuple in `TypeIndexes.keys`."""

    def __init__(self, signature: tuple, slot: int = 0):
        super().__init__(signature)
        self.slot = slot

    def move(self, record_id: int, old: Any, new: Any) -> None:
        """File `record_id` under `new` instead of `old` (None: empty; _MISSING: nowhere)."""
        if old is not _MISSING:
            self.remove(record_id, old)
        if new is None:
            self.empty.add(record_id)
        else:
            _insert(self.forward, new, record_id)

    def remove(self, record_id: int, key: Any) -> None:
        """Take `record_id` from under `key`."""
        if key is None:
            self.empty.discard(record_id)
        else:
            _discard(self.forward, key, record_id)


class KeywordIndex(_KeyedIndex):
    """Several keys per record (refs, tags); records without any are kept apart."""

    def move(self, record_id: int, old: Any, new: tuple) -> None:   # old: a tuple of keys, or _MISSING
        """File `record_id` under the keys `new` instead of `old` (_MISSING: nowhere)."""
        if old is _MISSING:
            old = None
        elif old == new:
            return
        elif not old:
            self.empty.discard(record_id)
        forward = self.forward
        for key in old or ():
            if key not in new:
                _discard(forward, key, record_id)
        for key in new:
            if old is None or key not in old:
                _insert(forward, key, record_id)
        if not new:
            self._no_keys(record_id)

    def remove(self, record_id: int, keys: tuple) -> None:
        """Take `record_id` from under each of `keys`."""
        if not keys:
            self.empty.discard(record_id)
        for key in keys:
            _discard(self.forward, key, record_id)

    def _no_keys(self, record_id: int) -> None:
        self.empty.add(record_id)


class TextIndex(KeywordIndex):
    """Folded words of some fields → ids; `prefix` finds the words that start alike.
    Records without words are not kept apart: no filter asks for them."""

    def prefix(self, start: str) -> IdSet:
        """The ids of records with a word that starts with `start` (already folded)."""
        return self.between(start, start + LAST_LETTER)

    def _no_keys(self, record_id: int) -> None:
        pass


def _key_signature(kind: Kind) -> tuple:
    # What decides the keys of a kind: an enum's keys are positions in its list.
    if isinstance(kind, ComputedKind):
        return ("computed", _key_signature(kind.result))
    if isinstance(kind, EnumKind):
        return (kind.name, tuple(kind.values))
    return (kind.name,)


def _structure(index: IndexDef, typedef: TypeDef) -> str:
    if index.kind == "text":
        return "text"
    field = typedef.fields.get(index.fields[0])
    if index.kind == "keyword" or (field is not None and field.kind.multiple):
        return "keyword"
    return "field"


def signature(index: IndexDef, typedef: TypeDef) -> tuple:
    """What an index's content depends on; a stored index with another one is rebuilt."""
    kinds = tuple(_key_signature(typedef.fields[name].kind) if name in typedef.fields else None
                  for name in index.fields)
    return (_structure(index, typedef), index.kind, tuple(index.fields), kinds)


_CLASSES = {"field": FieldIndex, "keyword": KeywordIndex, "text": TextIndex}


def _key_function(index: IndexDef, typedef: TypeDef):
    """values → what the index stores for a record."""
    structure = _structure(index, typedef)
    if structure == "text":
        names = tuple(index.fields)
        return lambda values: tuple(sorted(words_of(values, names)))
    name = index.fields[0]
    key = typedef.fields[name].kind.key
    if structure == "field":
        return lambda values: key(values.get(name))

    def keys(values):
        found = key(values.get(name))
        if found is None:
            return ()
        if not isinstance(found, tuple):   # a keyword index over a single-valued field
            return (found,)
        return tuple(dict.fromkeys(k for k in found if k is not None))
    return keys


class TypeIndexes(Persistent):
    """Every index of one type. Holds no definitions: each method is given the TypeDef.

    Indexing after the commit. A record created by a person's write is counted in (`all_ids`,
    the count) but not filed under its keys: `wait` notes its id in `waiting`, and
    `catch_up` files the records waiting, many at once, in a transaction of its own after
    the creating one has committed (the store's `Indexer`). A create then writes a handful
    of objects instead of one per index (measured in docs/benchmarks.md). Until it is filed,
    the queries find such a record by its values (`Filter.ids` and `query.search` are given
    the waiting records' values), so its author and everybody else see it at once.

    `waiting` maps an id to a count of the writes it has had while waiting: an `update` of a
    waiting record changes nothing else but raises its count, so that a `catch_up` of
    another process that read the older values conflicts (its removal of the id meets the
    changed count in the same bucket) and runs again, instead of filing stale keys. It
    always holds the key 0 (no record's id), so that its bucket never empties: BTrees
    cannot merge a removal that empties a bucket with another process's insert into it,
    and every create and every filing write this bucket."""

    _v_plan: tuple[TypeDef, tuple] | None         # (the TypeDef planned for, its plan); volatile
    waiting: IIBTree | None = None   # id → writes while waiting; None until the first (and in stores made before)

    def __init__(self) -> None:
        self.all_ids = IdTreeSet()
        self.length = Length()
        self.indexes: dict[str, _KeyedIndex] = {}   # replaced, never changed in place
        self.keys = KeysTree()   # id → (key of each field and range index, by its slot)
        self.slots = 0          # positions given out in the tuples of `keys`

    @property
    def count(self) -> int:
        """How many records the type holds (without walking `all_ids`)."""
        return self.length()

    def get(self, name: str) -> _KeyedIndex | None:
        """The stored index called `name`."""
        return self.indexes.get(name)

    def for_field(self, typedef: TypeDef, field_name: str) -> _KeyedIndex | None:
        """The field, range or keyword index over a field, if the type declares one."""
        index = typedef.index_for(field_name)
        return self.indexes.get(index.name) if index is not None else None

    def text(self, typedef: TypeDef) -> TextIndex | None:
        """The text index, if the type declares one."""
        index = typedef.text_index
        return self.indexes.get(index.name) if index is not None else None

    def key_of(self, index: FieldIndex, record_id: int, default: Any = None) -> Any:
        """The key a field or range index holds for a record (None: empty)."""
        row = self.keys.get(record_id)
        if row is None or index.slot >= len(row):
            return default
        return row[index.slot]

    def sync(self, typedef: TypeDef) -> list[str]:
        """Make the stored indexes those `typedef` declares; the names that are new or
        changed, and so must be rebuilt from the records."""
        current = dict(self.indexes)
        changed = []
        for name, index in typedef.indexes.items():
            wanted = signature(index, typedef)
            stored = current.get(name)
            if stored is None or stored.signature != wanted:
                if wanted[0] == "field":
                    current[name] = FieldIndex(wanted, self.slots)
                    self.slots += 1   # a slot given up by a dropped index stays unused
                else:
                    current[name] = _CLASSES[wanted[0]](wanted)
                changed.append(name)
        for name in set(current) - set(typedef.indexes):
            del current[name]
        if changed or len(current) != len(self.indexes):
            self.indexes = current
        self._v_plan = None
        return changed

    def _plan(self, typedef: TypeDef) -> tuple:
        # (index, fields, key function, slot or None) per declared index, cached for one
        # TypeDef object because add and update run thousands of times a second.
        cached = getattr(self, "_v_plan", None)
        if cached is not None and cached[0] is typedef:
            return cached[1]
        stored = self.indexes
        stale = [name for name, index in typedef.indexes.items()
                 if name not in stored or stored[name].signature != signature(index, typedef)]
        if stale:
            if self.length() or self.all_ids:
                raise MigrationError(
                    f"the indexes {', '.join(sorted(stale))} of `{typedef.name}` do not match "
                    f"the definitions; run `deskbase migrate`")
            self.sync(typedef)   # nothing stored yet, so nothing to rebuild
            stored = self.indexes
        plan = tuple((stored[name], tuple(index.fields), _key_function(index, typedef),
                      getattr(stored[name], "slot", None))
                     for name, index in typedef.indexes.items())
        self._v_plan = (typedef, plan)
        return plan

    def add(self, typedef: TypeDef, record_id: int, values: Mapping[str, Any]) -> None:
        """Index a new record from its stored values."""
        plan = self._plan(typedef)
        self._count_in(typedef, record_id)
        self._file(plan, record_id, values)

    def wait(self, typedef: TypeDef, record_id: int) -> None:
        """Count a new record in, and leave filing it under its keys to `catch_up`."""
        self._plan(typedef)   # the indexes made first, if this is the type's first record
        self._count_in(typedef, record_id)
        if self.waiting is None:
            self.waiting = IIBTree({KEPT_OPEN: 0})
        self.waiting[record_id] = 0

    @property
    def has_waiting(self) -> bool:
        """Whether records wait to be filed."""
        waiting = self.waiting
        return waiting is not None and waiting.maxKey() > KEPT_OPEN   # never empty: it holds KEPT_OPEN

    def waiting_ids(self) -> list[int]:
        """The ids of the records waiting to be filed, in order."""
        waiting = self.waiting
        return list(waiting.keys(KEPT_OPEN + 1)) if waiting is not None and self.has_waiting else []

    def is_waiting(self, record_id: int) -> bool:
        waiting = self.waiting
        return waiting is not None and record_id in waiting

    def catch_up(self, typedef: TypeDef, records: Mapping[int, Any], limit: int | None = None,
                 ids: Iterable[int] | None = None) -> int:
        """File the records waiting (their current values, from `records`: id → Record),
        the oldest first and at most `limit`, or those of `ids` still waiting; how many
        were filed."""
        waiting = self.waiting
        if waiting is None or not self.has_waiting:
            return 0
        plan = self._plan(typedef)
        filed = 0
        chosen = list(islice(waiting.keys(KEPT_OPEN + 1), limit)) if ids is None \
            else [i for i in ids if i > KEPT_OPEN and i in waiting]
        for record_id in chosen:
            record = records.get(record_id)
            if record is not None:
                self._file(plan, record_id, record.values)
            del waiting[record_id]
            filed += 1
        return filed

    def row_of(self, typedef: TypeDef, values: Mapping[str, Any]) -> tuple:
        """The sort keys `keys` holds for a record with these values, worked out from them
        (for a record still waiting to be filed)."""
        row = [None] * self.slots
        for _, _, key, slot in self._plan(typedef):
            if slot is not None:
                row[slot] = key(values)
        return tuple(row)

    def _count_in(self, typedef: TypeDef, record_id: int) -> None:
        if not self.all_ids.add(record_id):
            raise ValueError(f"record {record_id} of `{typedef.name}` is indexed already; update it")
        self.length.change(1)

    def _file(self, plan: tuple, record_id: int, values: Mapping[str, Any]) -> None:
        row = [None] * self.slots
        for index, _, key, slot in plan:
            found = key(values)
            index.move(record_id, _MISSING, found)
            if slot is not None:
                row[slot] = found
        self.keys[record_id] = tuple(row)

    def remove(self, typedef: TypeDef, record_id: int, values: Mapping[str, Any]) -> None:
        """Forget a deleted record; `values` are those it had."""
        waiting = self.waiting
        if waiting is not None and record_id in waiting:   # filed nowhere yet
            del waiting[record_id]
            self.all_ids.remove(record_id)
            self.length.change(-1)
            return
        plan = self._plan(typedef)
        row = self.keys.pop(record_id, None)
        for index, _, key, slot in plan:
            if slot is not None and row is not None and slot < len(row):
                index.remove(record_id, row[slot])
            else:
                index.remove(record_id, key(values))
        if record_id in self.all_ids:
            self.all_ids.remove(record_id)
            self.length.change(-1)

    def update(self, typedef: TypeDef, record_id: int, old_values: Mapping[str, Any],
               new_values: Mapping[str, Any]) -> None:
        """Re-index a changed record; indexes over unchanged fields are not touched."""
        waiting = self.waiting
        if waiting is not None and record_id in waiting:   # `catch_up` files its values then
            waiting[record_id] = waiting[record_id] + 1
            return
        row = None
        for index, fields, key, slot in self._plan(typedef):
            for name in fields:
                if old_values.get(name) != new_values.get(name):
                    break
            else:
                continue
            new = key(new_values)
            if slot is None:
                index.move(record_id, key(old_values), new)
                continue
            if row is None:
                stored = self.keys.get(record_id)
                row = list(stored) if stored is not None else []
                row.extend([_MISSING] * (self.slots - len(row)))
            old = row[slot]
            if old is _MISSING:   # not kept yet (an index added since): the old values say
                old = key(old_values)
            if old != new:
                index.move(record_id, old, new)
            row[slot] = new
        if row is not None:
            self.keys[record_id] = tuple(None if key is _MISSING else key for key in row)

    def rebuild(self, typedef: TypeDef, items: Iterable[tuple[int, Mapping[str, Any]]],
                names: Iterable[str] | None = None) -> None:
        """Refill indexes from (id, values) of every record: all of them, the ids and the
        sort keys when `names` is None; else those named, any that `sync` finds new or
        changed, and the sort keys of every record (of those filed: `catch_up` files the
        records waiting whole)."""
        renew = set(self.sync(typedef))
        if names is None:
            self.clear()
            self.slots = 0   # give the slots out again, without the holes of dropped indexes
            for name, index in self.indexes.items():
                if isinstance(index, FieldIndex):
                    index.slot = self.slots
                    self.slots += 1
            self._v_plan = None
        else:
            renew.update(names)
            for name in renew:
                if name in self.indexes:
                    self.indexes[name].clear()
        plan = self._plan(typedef)
        refill = [(index, key) for (index, _, key, _), name in zip(plan, typedef.indexes)
                  if names is None or name in renew]
        slotted = [(slot, key) for _, _, key, slot in plan if slot is not None]
        added = 0
        all_ids, keys, width = self.all_ids, self.keys, self.slots
        waiting = self.waiting or ()   # None once cleared
        for record_id, values in items:
            if record_id in waiting:
                continue
            if names is None and all_ids.add(record_id):
                added += 1
            for index, key in refill:
                index.move(record_id, _MISSING, key(values))
            row = [None] * width
            for slot, key in slotted:
                row[slot] = key(values)
            keys[record_id] = tuple(row)
        if added:
            self.length.change(added)

    def clear(self) -> None:
        """Forget every record, keeping the indexes themselves."""
        self.waiting = None
        self.all_ids = IdTreeSet()
        self.length = Length()
        self.keys = KeysTree()
        for index in self.indexes.values():
            index.clear()
