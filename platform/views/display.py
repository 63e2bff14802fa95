"""How a record's values read for people, in their language: titles of the records refs
point at, labels for enums, durations as 1h30m. The command line and the web pages both
show values through here. A ref to a record the reader may not read shows its number
only: a title is the record's content, and is read under the record's own access rules."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from deskbase.objects.fields import ComputedKind, DateKind, DateTimeKind, DecimalKind
from deskbase.objects.model import TypeDef
from deskbase.rules.access.scopes import may_read
from deskbase.rules.documents.formatting import plain_text


def ref_text(session, type_name: str, record_id: int) -> str:
    """The title of the record a ref points at, or its number when its type has no title or
    the session's reader may not read it."""
    typedef = session.definitions.type(type_name)
    target = session.container(type_name).records.get(record_id)
    if target is None:
        return typedef.number(record_id)
    title = target.get(typedef.title_field) if typedef.title_field else None
    shown = title not in (None, "") and may_read(session, session.identity, typedef, target)
    return str(title) if shown else target.number


def moment_of(value: Any) -> str | None:
    """A time's ISO form, for the page to show it in the reader's own zone; None for other values."""
    return value.isoformat() if isinstance(value, datetime) else None


def field_text(session, typedef: TypeDef, values: Mapping[str, Any], name: str, language: str = "en",
               number: str | None = None, *, localized: bool = True) -> str:
    """The text of one field of a record; `id` is its number. Money, numbers, dates and times
    read as the reader's language writes them (`1 234,50 €`, `20. 11. 2026`), as on the
    record's page and in documents; `localized=False` keeps the plain forms a terminal or a
    script reads (`1234.50 EUR`, `2026-11-20 14:00`)."""
    if name == "id":
        return number or typedef.number(values["id"])
    field = typedef.fields.get(name)
    value = values.get(name)
    if field is None:
        return "" if value is None else str(value)
    if field.kind.name == "ref" and value is not None:
        return ref_text(session, field.kind.to, value)
    if field.kind.name == "refs" and value:
        return ", ".join(ref_text(session, field.kind.to, v) for v in value)
    if localized and value is not None and value != "":
        kind = field.kind.result if isinstance(field.kind, ComputedKind) else field.kind
        if isinstance(kind, (DecimalKind, DateKind, DateTimeKind)):     # money is a decimal
            zone = ZoneInfo(getattr(kind, "zone", None) or session.definitions.zone)
            return plain_text(kind, value, zone, language)
    return field.kind.text(value, language)
