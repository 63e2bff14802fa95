"""The indexes of one type, kept in BTrees beside its records: the set of all ids, a
count, and one index per `IndexDef` (field, range, keyword or text). Filters and sorting
read them; the write path keeps them current through `add`, `update` and `remove`.

Conflicts (two transactions writing records of the same type at once). Each record
write touches, per index whose key changed, only: the forward BTree's bucket holding the
key (or the set of ids under it), the reverse BTree's bucket holding the record id, and
for empty values the set of empty ids; a creation or deletion also touches `all_ids` and
the count. All of these are BTrees or `Length`, which resolve concurrent changes to
*different* keys of the same bucket, and `Length` resolves any concurrent changes. What
still conflicts, and is retried by the caller's `transaction.manager.attempts()`:
two writers changing the same key of a bucket (the same record, or the first record
given a new key value, which turns a lone id into a set of ids), a bucket that splits
(frequent at the end of `all_ids` and of the reverse trees, since new ids are always
the largest) and a bucket emptied by a removal. `TypeIndexes` itself is written only by
`sync`, `clear` and `rebuild`, which are migrations and run alone.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from BTrees.IIBTree import IISet, IITreeSet, multiunion
from BTrees.IOBTree import IOBTree
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from persistent import Persistent

from .errors import MigrationError
from .fields import ComputedKind, EnumKind, Kind
from .model import IndexDef, TypeDef
from .textsearch import words_of

IdSet = IISet | IITreeSet
"""A set of record ids as BTrees set operations return it; treat it as read-only."""

_MISSING = object()
# No text word contains this character (it is not a letter), so every word that starts
# with a prefix sorts below prefix + LAST_LETTER.
LAST_LETTER = "\U0010ffff"


# A forward BTree maps a key to the one id that has it (a bare int), or to an IITreeSet
# once several ids share it: unique keys such as timestamps then cost no persistent
# object per record, and a range over them is a multiunion of ints.

def _insert(tree: OOBTree, key: Any, record_id: int) -> None:
    ids = tree.get(key)
    if ids is None:
        tree[key] = record_id
    elif ids.__class__ is int:
        if ids != record_id:
            tree[key] = IITreeSet((ids, record_id))
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


def _descending(tree: OOBTree) -> Iterator[tuple[Any, Any]]:
    """The items of a BTree from the largest key down, without reading the keys before.

    BTrees only iterate upwards and step backwards by re-walking from the first bucket,
    so this descends the tree's own nodes (their pickled state) from the right."""
    state = tree.__getstate__()
    if state is None:
        return
    if len(state) == 1:   # a single bucket, kept inside the tree node
        yield from reversed(tree.items())
        return
    tree_type = type(tree)
    for child in reversed(state[0][::2]):
        if type(child) is tree_type:
            yield from _descending(child)
        else:
            yield from reversed(child.items())


class _KeyedIndex(Persistent):
    """What every index holds: key → ids (`forward`) and id → key(s) (`reverse`)."""

    def __init__(self, signature: tuple):
        self.signature = signature
        self.clear()

    def clear(self) -> None:
        """Forget every record (new trees: nothing old has to be loaded to drop it)."""
        self.forward = OOBTree()
        self.reverse = IOBTree()

    def ids(self, key: Any) -> IdSet:
        """The ids under one key."""
        return as_set(self.forward.get(key))

    def ids_any(self, keys: Iterable[Any]) -> IdSet:
        """The ids under any of the keys."""
        forward = self.forward
        found = [ids for ids in (forward.get(key) for key in keys) if ids is not None]
        if len(found) == 1:
            return as_set(found[0])
        return multiunion(found) if found else IISet()

    def size(self, key: Any) -> int:
        """How many ids one key holds."""
        ids = self.forward.get(key)
        return 0 if ids is None else 1 if ids.__class__ is int else len(ids)

    def size_between(self, low: Any = None, high: Any = None, *, exclude_low: bool = False,
                     exclude_high: bool = False, keys: int = 64) -> int | None:
        """How many ids lie between two keys, or None when more than `keys` keys do
        (counting them would cost about what finding them does)."""
        total = 0
        values = self.forward.values(low, high, excludemin=exclude_low and low is not None,
                                     excludemax=exclude_high and high is not None)
        for position, ids in enumerate(values):
            if position == keys:
                return None
            total += 1 if ids.__class__ is int else len(ids)
        return total

    def items(self, descending: bool = False) -> Iterator[tuple[Any, Any]]:
        """(key, id or IITreeSet of ids) in key order."""
        return _descending(self.forward) if descending else iter(self.forward.items())

    def key_of(self, record_id: int, default: Any = None) -> Any:
        """What the index holds for one record."""
        return self.reverse.get(record_id, default)


class FieldIndex(_KeyedIndex):
    """One sortable key per record (`field` and `range` indexes); empty values apart."""

    def clear(self) -> None:
        super().clear()
        self.empty = IITreeSet()

    def set(self, record_id: int, key: Any) -> None:
        """Index `record_id` under `key` (None: empty), replacing what it had."""
        old = self.reverse.get(record_id, _MISSING)
        if old is not _MISSING:
            if old == key:
                return
            if old is None:
                self.empty.discard(record_id)
            else:
                _discard(self.forward, old, record_id)
        if key is None:
            self.empty.add(record_id)
        else:
            _insert(self.forward, key, record_id)
        self.reverse[record_id] = key

    def discard(self, record_id: int) -> None:
        """Forget one record."""
        old = self.reverse.pop(record_id, _MISSING)
        if old is None:
            self.empty.discard(record_id)
        elif old is not _MISSING:
            _discard(self.forward, old, record_id)

    def between(self, low: Any = None, high: Any = None, *,
                exclude_low: bool = False, exclude_high: bool = False) -> IdSet:
        """The ids whose key lies between two bounds (None: unbounded); never the empties."""
        values = self.forward.values(low, high, excludemin=exclude_low and low is not None,
                                     excludemax=exclude_high and high is not None)
        return multiunion(values)


class KeywordIndex(_KeyedIndex):
    """Several keys per record (refs, tags); records without any are kept apart."""

    def clear(self) -> None:
        super().clear()
        self.empty = IITreeSet()

    def set(self, record_id: int, keys: tuple) -> None:
        """Index `record_id` under each of `keys` (distinct), replacing what it had."""
        old = self.reverse.get(record_id, _MISSING)
        if old is _MISSING:
            old = ()
        elif old == keys:
            return
        elif not old:
            self.empty.discard(record_id)
        forward = self.forward
        for key in old:
            if key not in keys:
                _discard(forward, key, record_id)
        for key in keys:
            if key not in old:
                _insert(forward, key, record_id)
        if not keys:
            self.empty.add(record_id)
        self.reverse[record_id] = keys

    def discard(self, record_id: int) -> None:
        """Forget one record."""
        old = self.reverse.pop(record_id, _MISSING)
        if old is _MISSING:
            return
        if not old:
            self.empty.discard(record_id)
        for key in old:
            _discard(self.forward, key, record_id)


class TextIndex(KeywordIndex):
    """Folded words of some fields → ids; `prefix` finds the words that start alike."""

    def prefix(self, start: str) -> IdSet:
        """The ids of records with a word that starts with `start` (already folded)."""
        return multiunion(self.forward.values(start, start + LAST_LETTER))


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
    """Every index of one type. Holds no definitions: each method is given the TypeDef."""

    def __init__(self) -> None:
        self.all_ids = IITreeSet()
        self.length = Length()
        self.indexes: dict[str, _KeyedIndex] = {}   # replaced, never changed in place

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

    def sync(self, typedef: TypeDef) -> list[str]:
        """Make the stored indexes those `typedef` declares; the names that are new or
        changed, and so must be rebuilt from the records."""
        current = dict(self.indexes)
        changed = []
        for name, index in typedef.indexes.items():
            wanted = signature(index, typedef)
            stored = current.get(name)
            if stored is None or stored.signature != wanted:
                current[name] = _CLASSES[wanted[0]](wanted)
                changed.append(name)
        for name in set(current) - set(typedef.indexes):
            del current[name]
        if changed or len(current) != len(self.indexes):
            self.indexes = current
        self._v_plan = None
        return changed

    def _plan(self, typedef: TypeDef) -> tuple:
        # (index, fields, key function) per declared index, cached for one TypeDef object
        # because add and update run thousands of times a second.
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
        plan = tuple((stored[name], tuple(index.fields), _key_function(index, typedef))
                     for name, index in typedef.indexes.items())
        self._v_plan = (typedef, plan)
        return plan

    def add(self, typedef: TypeDef, record_id: int, values: Mapping[str, Any]) -> None:
        """Index a new record from its stored values."""
        plan = self._plan(typedef)
        if self.all_ids.add(record_id):
            self.length.change(1)
        for index, _, key in plan:
            index.set(record_id, key(values))

    def remove(self, typedef: TypeDef, record_id: int, values: Mapping[str, Any]) -> None:
        """Forget a deleted record."""
        plan = self._plan(typedef)
        if record_id in self.all_ids:
            self.all_ids.remove(record_id)
            self.length.change(-1)
        for index, _, _ in plan:
            index.discard(record_id)

    def update(self, typedef: TypeDef, record_id: int, old_values: Mapping[str, Any],
               new_values: Mapping[str, Any]) -> None:
        """Re-index a changed record; indexes over unchanged fields are not touched."""
        for index, fields, key in self._plan(typedef):
            for name in fields:
                if old_values.get(name) != new_values.get(name):
                    index.set(record_id, key(new_values))
                    break

    def rebuild(self, typedef: TypeDef, items: Iterable[tuple[int, Mapping[str, Any]]],
                names: Iterable[str] | None = None) -> None:
        """Refill indexes from (id, values) of every record: all of them and the id set
        when `names` is None, else those named plus any `sync` finds new or changed."""
        renew = set(self.sync(typedef))
        if names is None:
            self.clear()
        else:
            renew.update(names)
            for name in renew:
                if name in self.indexes:
                    self.indexes[name].clear()
        plan = [(index, key) for (index, _, key), name in zip(self._plan(typedef), typedef.indexes)
                if names is None or name in renew]
        added = 0
        all_ids = self.all_ids
        for record_id, values in items:
            if names is None and all_ids.add(record_id):
                added += 1
            for index, key in plan:
                index.set(record_id, key(values))
        if added:
            self.length.change(added)

    def clear(self) -> None:
        """Forget every record, keeping the indexes themselves."""
        self.all_ids = IITreeSet()
        self.length = Length()
        for index in self.indexes.values():
            index.clear()
