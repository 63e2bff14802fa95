"""Forms generated from type definitions: one widget per field by its kind, values shown as
a person types them, choices of refs limited by their `where` (a subcategory offered only
under its category) and reloaded when a field they read changes, and the fields a person
may not see or change left out or shown read-only."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import UploadFile

from deskbase.objects.errors import DeskbaseError
from deskbase.objects.fields import (
    AttachmentsKind,
    BooleanKind,
    ComputedKind,
    DateKind,
    DateTimeKind,
    DecimalKind,
    DurationKind,
    EnumKind,
    IntegerKind,
    RefKind,
    RefsKind,
    TagsKind,
    TextKind,
    UserKind,
    UsersKind,
    format_duration,
)
from deskbase.objects.model import TypeDef

from .people import people

MAX_CHOICES = 300      # more records than this: a text box taking a number or an exact title


@dataclass
class Widget:
    """One field of a form as the template draws it."""

    name: str
    title: str
    control: str                  # text | textarea | number | checkbox | date | datetime | select | multiselect | file
    value: Any = ""
    required: bool = False
    readonly: bool = False
    help: str = ""
    error: str = ""
    choices: list[tuple[str, str]] = field(default_factory=list)    # (value, label)
    selected: frozenset[str] = frozenset()
    depends_on: tuple[str, ...] = ()       # fields whose change reloads this one's choices
    reloads: tuple[str, ...] = ()          # fields whose choices depend on this one
    step: str = ""
    suggest: bool = False                  # records are suggested under it as it is typed
    snippets: list[tuple[str, str]] = field(default_factory=list)   # texts it may insert: (id, title)
    snippet_url: str = ""                  # where an inserted text is filled in
    snippet_label: str = ""                # what they are, such as "Canned reply"
    pick: str = ""                         # too many to list: where the records matching what is typed are found


def form_value(session, kind, value: Any) -> Any:
    """A stored value as a person types it back."""
    if value is None or value == ():
        return ""
    if isinstance(kind, DateTimeKind) and isinstance(value, datetime):
        return value.astimezone(ZoneInfo(kind.zone)).strftime("%Y-%m-%dT%H:%M")
    if isinstance(kind, DateKind) and isinstance(value, date):
        return value.isoformat()
    if isinstance(kind, DurationKind):
        return format_duration(value)
    if isinstance(kind, (DecimalKind,)) and isinstance(value, Decimal):
        return str(value)
    if isinstance(kind, (TagsKind, UsersKind)):
        return ", ".join(value)
    if isinstance(kind, RefsKind):
        return [str(item) for item in value]
    return str(value) if not isinstance(value, bool) else value


def dependencies(store, typedef: TypeDef) -> dict[str, tuple[str, ...]]:
    """For each ref field whose `where` reads the edited record, the fields it reads."""
    found = {}
    for name, definition in typedef.fields.items():
        kind = definition.kind
        if isinstance(kind, RefKind) and kind.where:
            reads = store.compiled_filter(kind.where, kind.to, typedef.name).record_fields
            if reads:
                found[name] = tuple(sorted(reads))
    return found


def widgets(session, typedef: TypeDef, values: Mapping[str, Any], *, language: str, hidden: frozenset[str],
            readonly: frozenset[str], errors: Mapping[str, str] | None = None, typed: Mapping[str, Any] | None = None,
            only: tuple[str, ...] | None = None, creating: bool = True) -> list[Widget]:
    """The widgets of a form over a record's `values`; `typed` is what the person sent back
    (shown again after a refusal), `errors` the message per field."""
    errors, typed = errors or {}, typed or {}
    depends = dependencies(session.store, typedef)
    reloads: dict[str, list[str]] = {}
    for dependent, reads in depends.items():
        for read in reads:
            reloads.setdefault(read, []).append(dependent)
    current = _current(session, typedef, values, typed)
    for name, definition in typedef.fields.items():       # conditions reload the fields they govern
        for condition in (definition.shown_when, definition.required_when):
            if condition is not None:
                reads = session.store.compiled_filter(condition, typedef.name).fields
                depends[name] = tuple(sorted(set(depends.get(name, ())) | set(reads)))
    found = []
    for name, definition in typedef.fields.items():
        kind = definition.kind
        if definition.system or name in hidden or isinstance(kind, ComputedKind):
            continue
        if only is not None and name not in only:
            continue
        stored = values.get(name)
        if creating and stored is None and definition.default is not None:
            stored = _default(session, kind, definition.default)     # what the record gets if left alone
        shown = typed[name] if name in typed else form_value(session, kind, stored)
        widget = Widget(name, definition.title(language), _control(kind), shown,
                        required=definition.required, readonly=name in readonly,
                        help=_text(definition.help, language), error=errors.get(name, ""),
                        depends_on=depends.get(name, ()), reloads=tuple(reloads.get(name, ())),
                        suggest=definition.suggest is not None and name not in readonly)
        if isinstance(kind, EnumKind):
            widget.choices = [(value, kind.text(value, language)) for value in kind.values]
        elif isinstance(kind, UserKind):
            widget.choices = people(session, definition.offer, language)   # offered by name as typed
        elif isinstance(kind, RefKind):
            _ref_choices(session, typedef, kind, widget, {**values, **_typed_ids(typedef, typed)})
        elif isinstance(kind, (DecimalKind, IntegerKind)):
            widget.step = "1" if isinstance(kind, IntegerKind) else "any"
        if isinstance(shown, list):
            widget.selected = frozenset(shown)
        if definition.shown_when is not None and not _holds(session, typedef, definition.shown_when, current):
            widget.control = "absent"                    # not asked for these values; comes back when they change
        if definition.required_when is not None and _holds(session, typedef, definition.required_when, current):
            widget.required = True
        found.append(widget)
    return found


def _current(session, typedef: TypeDef, values: Mapping[str, Any], typed: Mapping[str, Any]) -> dict[str, Any]:
    """The record's values as the form now has them: stored ones, then what was typed."""
    current = dict(values)
    for name, raw in typed.items():
        definition = typedef.fields.get(name)
        if definition is None:
            continue
        try:
            current[name] = definition.kind.coerce(raw, session.lookup) if raw not in (None, "") else None
        except (DeskbaseError, ValueError):
            pass
    return current


def _holds(session, typedef: TypeDef, condition: Any, current: Mapping[str, Any]) -> bool:
    return session.store.compiled_filter(condition, typedef.name).matches(current, typedef, session.context(current))


CONTROLS = ((UserKind, "person"), (AttachmentsKind, "file"), (BooleanKind, "checkbox"), (TextKind, "textarea"), (EnumKind, "select"),
            (RefsKind, "multiselect"), (RefKind, "select"), (DateTimeKind, "datetime"), (DateKind, "date"),
            ((IntegerKind, DecimalKind), "number"))     # the first that fits; a kind not named is a text box


def _default(session, kind, default: Any) -> Any:
    word = {"$now": session.now, "$today": session.today, "$me": session.user,
            "$me.person": (session.me or {}).get("person")}.get(default, default)
    if word is None:
        return None
    try:
        return kind.coerce(word, session.lookup)
    except (DeskbaseError, ValueError):
        return None


def _control(kind) -> str:
    return next((control for kinds, control in CONTROLS if isinstance(kind, kinds)), "text")


def _text(value: Any, language: str) -> str:
    if isinstance(value, Mapping):
        return str(value.get(language) or value.get("en") or next(iter(value.values()), ""))
    return "" if value is None else str(value)


def _typed_ids(typedef: TypeDef, typed: Mapping[str, Any]) -> dict[str, Any]:
    """What the person chose in ref fields, as ids, so dependent choices follow them."""
    ids = {}
    for name, raw in typed.items():
        definition = typedef.fields.get(name)
        if definition is not None and isinstance(definition.kind, RefKind) and not definition.kind.multiple:
            ids[name] = int(raw) if str(raw).isdigit() else None
    return ids


def _ref_choices(session, typedef: TypeDef, kind: RefKind, widget: Widget, values: Mapping[str, Any]) -> None:
    """The records a ref may point at, as the person may read them; a `where` reading the
    record follows its current values (none chosen yet: nothing offered)."""
    try:
        page = session.query(kind.to, kind.where, _title_sort(session, kind.to), limit=MAX_CHOICES + 1,
                             context=session.context(values), record_type=typedef.name)
    except DeskbaseError:
        return
    if page.total > MAX_CHOICES:
        widget.control = "text"                       # too many to list: a number or an exact title,
        if session.definitions.type(kind.to).text_index is not None:     # found as it is typed
            widget.pick = f"/forms/{typedef.name}/pick/{widget.name}"
        if widget.value and str(widget.value).isdigit():
            widget.value = session.definitions.type(kind.to).number(int(widget.value))
        return
    target = session.definitions.type(kind.to)
    widget.choices = [(str(record.id), " ".join(str(part) for part in (record.number, record.get(target.title_field))
                                                 if part)) for record in page.records]


def _title_sort(session, type_name: str) -> str | None:
    typedef = session.definitions.type(type_name)
    title = typedef.title_field
    if title and typedef.index_for(title) is not None and typedef.fields[title].kind.sortable:
        return title
    return None


def submitted(typedef: TypeDef, form: Mapping[str, Any], multi: Mapping[str, Sequence[str | UploadFile]], *,
              allowed: set[str]) -> dict[str, Any]:
    """The values a form sent for the fields it showed: empty inputs clear a field, an
    unticked checkbox is false, several choices are a list."""
    values: dict[str, Any] = {}
    for name in allowed:
        definition = typedef.fields[name]
        kind = definition.kind
        if isinstance(kind, AttachmentsKind):
            continue
        if isinstance(kind, BooleanKind):
            values[name] = name in form
        elif isinstance(kind, RefsKind):
            values[name] = [item for item in multi.get(name, []) if item]
        elif name in form:
            raw = form[name]
            values[name] = None if isinstance(raw, str) and raw.strip() == "" else raw
    return values
