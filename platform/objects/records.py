"""The persistent objects of the store: records, their history, attachments, and the
per-type container that holds them with their numbering and indexes.

Records change only through the write path (`session.py`). A record's values are a plain
dict that is replaced, never mutated in place, so ZODB always notices a change.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from BTrees.IOBTree import IOBTree
from persistent import Persistent
from ZODB.blob import Blob

from .indexes import TypeIndexes
from .model import TypeDef


class History(Persistent):
    """The audit trail of one record, kept apart so lists do not load it."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def append(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)
        self._p_changed = True


class Record(Persistent):
    """One record of a type. `values` holds every field, system fields included, and keeps
    the values of fields that definitions no longer name (hidden, never lost)."""

    def __init__(self, type_name: str, number: str, values: dict[str, Any]):
        self.type_name = type_name
        self.number = number
        self._values = values
        self.history = History()

    @property
    def id(self) -> int:
        return self._values["id"]

    @property
    def version(self) -> int:
        return self._values["version"]

    @property
    def values(self) -> Mapping[str, Any]:
        return self._values

    def __getitem__(self, name: str) -> Any:
        return self._values.get(name)

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def replace_values(self, values: dict[str, Any]) -> None:
        """Swap in new values; only the write path and migrations call this."""
        self._values = values

    def __repr__(self) -> str:
        return f"<Record {self.number}>"


class Attachment(Persistent):
    """A file kept as a ZODB blob, with what is needed to serve it safely."""

    def __init__(self, attachment_id: str, filename: str, content_type: str, content: bytes,
                 uploaded_at: datetime, uploaded_by: str):
        self.blob_id = attachment_id
        self.filename = filename
        self.content_type = content_type
        self.size = len(content)
        self.uploaded_at = uploaded_at
        self.uploaded_by = uploaded_by
        self.blob = Blob()
        with self.blob.open("w") as stream:
            stream.write(content)

    def read(self) -> bytes:
        with self.blob.open("r") as stream:
            return stream.read()

    def __repr__(self) -> str:
        return f"<Attachment {self.filename} {self.size} bytes>"


class Sequence(Persistent):
    """A per-type counter: `value` is the last record number given. Numbers are taken from
    it in transactions of their own (`numbering.NumberAllocator`), so that concurrent
    creations of a type do not conflict on it."""

    def __init__(self) -> None:
        self.value = 0


class TypeContainer(Persistent):
    """All records of one type: live ones by id, deleted ones kept in `trash`."""

    def __init__(self, type_name: str):
        self.type_name = type_name
        self.records = IOBTree()
        self.trash = IOBTree()
        self.sequence = Sequence()
        self.indexes = TypeIndexes()

    def unindexed(self) -> dict[int, Mapping[str, Any]]:
        """The values of the records not filed in the indexes yet, by id (`TypeIndexes.wait`)."""
        if not self.indexes.has_waiting:
            return {}
        records = self.records
        return {i: record.values for i, record in ((i, records.get(i)) for i in self.indexes.waiting_ids())
                if record is not None}

    def filed(self, typedef: TypeDef) -> TypeIndexes:
        """The indexes with every record filed in them: those waiting are filed now, in this
        transaction (a read forgets it; `catch_up` of the store's indexer does it for good).
        For what walks the indexes' keys themselves (statistics) rather than a filter."""
        self.indexes.catch_up(typedef, self.records)
        return self.indexes
