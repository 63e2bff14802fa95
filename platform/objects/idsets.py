"""Sets of record ids that pickle their ids as one string of bytes.

The indexes keep, under each key, the ids of the records that have it: BTrees' `IITreeSet`,
whose buckets each hold up to 120 ids. A write re-pickles every bucket it changes, one
per index whose key it touches (about 50 for a record with 44 indexes), and ZODB's
pickler calls its `persistent_id` hook once for every value in a pickle — once per id:
8,300 calls for one such create, 23 % of its time (`bench/write_profile.py`). These
classes are those sets with one difference: their state is the ids packed as 32-bit
integers (the width BTrees' `II` types hold), so a bucket is one value to the pickler.
Measured with ZODB's `ObjectWriter`: a bucket of 120 ids pickles in 11 µs instead of
25 µs; its pickle is a little larger while ids are below 65,536 (4 bytes an id instead of
2–3) and smaller above (instead of 5).

Everything else is BTrees' own code: set operations, iteration, splitting, and conflict
resolution (the three states of a conflict are unpacked for it, its answer packed). Sets
stored before, as plain `IITreeSet`, stay readable and are used as they are; only new
sets are of these classes. Pickles name these classes: keep them here, under these names.
"""
from __future__ import annotations

import struct
from typing import Any

from BTrees.IIBTree import IISet, IITreeSet

# 32-bit signed integers, the width BTrees' II keys hold, little-endian whatever the machine
# (a database moves between machines); `struct` packs 120 ids in 1.9 µs, `array` in 3.5 µs.


def _packed(keys: tuple[int, ...]) -> bytes:
    return struct.pack(f"<{len(keys)}i", *keys)


def _unpacked(data: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(data) // 4}i", data)


def _pack_bucket(state: Any) -> Any:
    """A bucket's state `((ids…),)` or `((ids…), next bucket)` with its ids packed."""
    if state is None or type(state[0]) is bytes:
        return state
    return (_packed(state[0]),) + tuple(state[1:])


def _unpack_bucket(state: Any) -> Any:
    if state is None or type(state[0]) is not bytes:
        return state
    return (_unpacked(state[0]),) + tuple(state[1:])


class IdBucket(IISet):
    """A bucket of an `IdTreeSet` (or a small set on its own)."""

    def __getstate__(self) -> Any:
        return _pack_bucket(super().__getstate__())

    def __setstate__(self, state: Any) -> None:
        super().__setstate__(_unpack_bucket(state))

    def _p_resolveConflict(self, old: Any, committed: Any, new: Any) -> Any:
        return _pack_bucket(super()._p_resolveConflict(
            _unpack_bucket(old), _unpack_bucket(committed), _unpack_bucket(new)))


def _pack_tree(state: Any) -> Any:
    """A tree set's state: when small, its one bucket is kept inline, `((bucket state,),)`,
    and packed; a larger tree's state names its buckets (packed on their own) and the ids
    that separate them, left as they are."""
    if state is not None and len(state) == 1 and len(state[0]) == 1:
        return ((_pack_bucket(state[0][0]),),)
    return state


def _unpack_tree(state: Any) -> Any:
    if state is not None and len(state) == 1 and len(state[0]) == 1:
        return ((_unpack_bucket(state[0][0]),),)
    return state


class IdTreeSet(IITreeSet):
    """A set of record ids, packed when pickled (see the module's text)."""

    _bucket_type = IdBucket

    def __getstate__(self) -> Any:
        return _pack_tree(super().__getstate__())

    def __setstate__(self, state: Any) -> None:
        super().__setstate__(_unpack_tree(state))

    def _p_resolveConflict(self, old: Any, committed: Any, new: Any) -> Any:
        return _pack_tree(super()._p_resolveConflict(_unpack_tree(old), _unpack_tree(committed), _unpack_tree(new)))
