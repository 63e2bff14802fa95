"""Fixtures of the object layer's tests."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from deskbase.objects.fields import (
    BooleanKind,
    DateKind,
    DateTimeKind,
    DecimalKind,
    EnumKind,
    IntegerKind,
    RefKind,
    RefsKind,
    StringKind,
    TagsKind,
    TextKind,
    UserKind,
)
from deskbase.objects.indexes import TypeIndexes
from deskbase.objects.model import SYSTEM_INDEXES, FieldDef, IndexDef, TypeDef, system_fields

CREATED = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def build_item_type(*, text: bool = True, **changes) -> TypeDef:
    """An `item` type with a field of every indexable kind, each indexed."""
    kinds = {
        "status": EnumKind(values=("new", "open", "waiting", "done")),
        "priority": EnumKind(values=("urgent", "high", "medium", "low")),
        "title": StringKind(),
        "notes": TextKind(),
        "size": IntegerKind(minimum=0, maximum=100),
        "price": DecimalKind(),
        "due": DateKind(),
        "start": DateTimeKind(),
        "flag": BooleanKind(),
        "owner": UserKind(),
        "team": RefKind(to="team"),
        "watchers": RefsKind(to="person"),
        "tags": TagsKind(),
        "remark": StringKind(),   # not indexed
    }
    kinds.update(changes)
    fields = dict(system_fields("UTC"))
    fields.update({name: FieldDef(name, kind) for name, kind in kinds.items()})
    indexes = {index.name: index for index in SYSTEM_INDEXES}
    for name in ("status", "priority", "title", "flag", "owner", "team"):
        indexes[name] = IndexDef(name, "field", (name,))
    for name in ("size", "price", "due", "start"):
        indexes[name] = IndexDef(name, "range", (name,))
    for name in ("watchers", "tags"):
        indexes[name] = IndexDef(name, "keyword", (name,))
    indexes["notes"] = IndexDef("notes", "field", ("notes",))   # long text: indexed, yet unordered
    if text:
        indexes["text"] = IndexDef("text", "text", ("title", "notes"))
    return TypeDef("item", {"en": "Item"}, "IT-{seq:04d}", fields, indexes, title_field="title")


def item_values(record_id: int, **values) -> dict:
    """Stored values of an item: the system fields plus `values` (absent fields empty)."""
    stored = {"id": record_id, "created_at": CREATED, "created_by": "admin",
              "modified_at": CREATED, "modified_by": "admin", "version": 1}
    stored.update(values)
    return stored


@pytest.fixture
def item_type() -> TypeDef:
    return build_item_type()


@pytest.fixture
def items(item_type):
    """A function that indexes some item values and returns the TypeIndexes."""
    def index(*records: dict) -> TypeIndexes:
        indexes = TypeIndexes()
        indexes.sync(item_type)
        for values in records:
            indexes.add(item_type, values["id"], values)
        return indexes
    return index


@pytest.fixture
def values():
    """`values(3, status="open")`: the stored values of item 3."""
    return item_values


@pytest.fixture
def item_type_with():
    """`item_type_with(text=False, size=DecimalKind())`: the item type, changed."""
    return build_item_type
