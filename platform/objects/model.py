"""Compiled definitions: the frozen objects the engine works with once YAML has been
loaded, merged, validated and cross-checked (see `definitions.py`)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from .fields import DateTimeKind, IntegerKind, Kind, UserKind, label_text

FROZEN_EMPTY: Mapping[str, Any] = MappingProxyType({})

# Fields every type has; kept by the engine, never set through a form.
SYSTEM_FIELDS = ("id", "created_at", "created_by", "modified_at", "modified_by", "version")


@dataclass(frozen=True)
class FieldDef:
    """One field of a type."""

    name: str
    kind: Kind
    label: Any = None
    required: bool = False
    default: Any = None
    help: Any = None
    renamed_from: str | None = None
    system: bool = False
    required_when: Any = None     # a filter on the record: required only when it matches
    shown_when: Any = None        # a filter on the record: offered in forms only when it matches
    copied_from: tuple[tuple[str, str], ...] = ()   # (ref field, field of its target): the first with a value
    suggest: Any = None           # {type, filter}: records of that type offered while the field is typed
    join: Any = None              # {roles, label, leave_label}: who may add themselves to a users field
    offer: Any = None             # {roles, count}: whom a user field offers as a name is typed, with a figure
    snippets: Any = None          # {type, via, text, copy, where}: texts inserted into a text field
    colors: Any = None            # an enum's {value: colour}: how its badges look
    format: str = "plain"         # a text's: plain, or markdown (pages show it as CommonMark, cleaned)

    def title(self, language: str = "en") -> str:
        return label_text(self.label, language, self.name.replace("_", " "))


@dataclass(frozen=True)
class IndexDef:
    """An index of a type. `field` and `range` indexes keep one sortable key per record,
    `keyword` indexes several (multi-valued fields), `text` indexes folded words of fields."""

    name: str
    kind: str            # field | range | keyword | text
    fields: tuple[str, ...]


# The labels of the fields every record has, in the languages the interface speaks.
_SYSTEM_LABELS = {
    "id": {"en": "Number", "fr": "Numéro", "cs": "Číslo", "pt": "Número", "hr": "Broj"},
    "created_at": {"en": "Created", "fr": "Créé le", "cs": "Vytvořeno", "pt": "Criado em", "hr": "Stvoreno"},
    "created_by": {"en": "Created by", "fr": "Créé par", "cs": "Vytvořil(a)", "pt": "Criado por", "hr": "Stvorio/la"},
    "modified_at": {"en": "Modified", "fr": "Modifié le", "cs": "Změněno", "pt": "Alterado em", "hr": "Izmijenjeno"},
    "modified_by": {"en": "Modified by", "fr": "Modifié par", "cs": "Změnil(a)", "pt": "Alterado por",
                    "hr": "Izmijenio/la"},
    "version": {"en": "Version", "fr": "Version", "cs": "Verze", "pt": "Versão", "hr": "Verzija"},
}


def system_fields(zone: str) -> dict[str, FieldDef]:
    """The fields the engine keeps on every record."""
    return {
        "id": FieldDef("id", IntegerKind(), _SYSTEM_LABELS["id"], system=True),
        "created_at": FieldDef("created_at", DateTimeKind(zone=zone), _SYSTEM_LABELS["created_at"], system=True),
        "created_by": FieldDef("created_by", UserKind(), _SYSTEM_LABELS["created_by"], system=True),
        "modified_at": FieldDef("modified_at", DateTimeKind(zone=zone), _SYSTEM_LABELS["modified_at"], system=True),
        "modified_by": FieldDef("modified_by", UserKind(), _SYSTEM_LABELS["modified_by"], system=True),
        "version": FieldDef("version", IntegerKind(), _SYSTEM_LABELS["version"], system=True),
    }


SYSTEM_INDEXES = (
    IndexDef("created_at", "range", ("created_at",)),
    IndexDef("modified_at", "range", ("modified_at",)),
    IndexDef("created_by", "field", ("created_by",)),
)


@dataclass(frozen=True)
class TypeDef:
    """An object type: its fields (own and system), indexes and numbering."""

    name: str
    label: Any
    number_format: str
    fields: Mapping[str, FieldDef]
    indexes: Mapping[str, IndexDef]
    title_field: str | None = None
    plural: Any = None
    # {no_overlap: {type, match, period, during, where, message}} or {ordered: {fields, message}}:
    # writes the engine refuses.
    constraints: tuple[Mapping[str, Any], ...] = ()
    # {of, via, by, filter, limit, label}: counts of related records shown on a record's page.
    summaries: tuple[Mapping[str, Any], ...] = ()
    # {badges, main, panel}: how a record's page is laid out (None: every field in one panel).
    page: Mapping[str, Any] | None = None
    # role → {fields: the fields its form asks when it makes a record, in order; set: values it sets}.
    forms: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: FROZEN_EMPTY)
    # role → the fields whose changes it reads in a record's history (roles not named: all they may read).
    history: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: FROZEN_EMPTY)
    _by_field: Mapping[str, IndexDef] = field(default_factory=lambda: FROZEN_EMPTY, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_field: dict[str, IndexDef] = {}
        for index in self.indexes.values():
            if index.kind != "text":
                by_field.setdefault(index.fields[0], index)
        object.__setattr__(self, "_by_field", MappingProxyType(by_field))

    def title(self, language: str = "en") -> str:
        return label_text(self.label, language, self.name.replace("_", " "))

    @property
    def own_fields(self) -> dict[str, FieldDef]:
        return {name: f for name, f in self.fields.items() if not f.system}

    def index_for(self, field_name: str) -> IndexDef | None:
        """The field, range or keyword index over a field, if there is one."""
        return self._by_field.get(field_name)

    @property
    def text_index(self) -> IndexDef | None:
        return self.indexes.get("text")

    @property
    def copies(self) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
        """(field, its paths) for each field the engine copies: each path a ref of this type
        and a field of its target; the first path that gives a value wins."""
        return tuple((name, f.copied_from) for name, f in self.fields.items() if f.copied_from)

    def number(self, record_id: int) -> str:
        """The number people see, such as `T-000123`."""
        return self.number_format.format(seq=record_id)

    def parse_number(self, text: str) -> int | None:
        """The record id inside a number of this type, or None if it is not one."""
        match = self._number_pattern().fullmatch(text.strip())
        return int(match.group(1)) if match else None

    def _number_pattern(self) -> re.Pattern:
        head, _, rest = self.number_format.partition("{seq")
        tail = rest.partition("}")[2]
        return re.compile(re.escape(head) + r"(\d+)" + re.escape(tail), re.I)


@dataclass(frozen=True)
class ViewDef:
    """A list view: which records of a type, which columns, in which order, for which roles."""

    name: str
    type: str
    label: Any
    columns: tuple[str, ...]
    filter: Any = None
    sort: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    chart: str | None = None      # the field whose values a dashboard counts
    chart_average: str | None = None   # with it, the dashboard shows this number's average per value
    chart_sum: str | None = None       # … or this number's sum
    chart_open: str | None = None      # … or the records still open at each period's end: this date ends them
    chart_over: str | None = None      # the date field whose periods make the columns
    chart_every: str = "month"         # day, week, month, quarter, year
    chart_periods: int = 12            # how many, the current one last
    bulk: tuple[Mapping[str, Any], ...] = ()   # {create, via, split, label}: records made for the ticked ones


@dataclass(frozen=True)
class Definitions:
    """Everything compiled from a definitions folder and its overlays."""

    types: Mapping[str, TypeDef]
    views: Mapping[str, ViewDef] = field(default_factory=lambda: FROZEN_EMPTY)
    roles: Mapping[str, Any] = field(default_factory=lambda: FROZEN_EMPTY)
    settings: Mapping[str, Any] = field(default_factory=lambda: FROZEN_EMPTY)
    document: Mapping[str, Any] = field(default_factory=lambda: FROZEN_EMPTY)   # the merged plain document, snapshotted for migrations
    sources: tuple[str, ...] = ()
    # What upper layers compiled from their own sections (see `definitions.Section`), by name.
    extensions: Mapping[str, Any] = field(default_factory=lambda: FROZEN_EMPTY)

    def type(self, name: str) -> TypeDef:
        try:
            return self.types[name]
        except KeyError:
            # imported here, not on every call: the write path asks for types thousands of times a second
            from .errors import NotFound, hint_for
            hint = hint_for(name, self.types)
            raise NotFound(f"there is no type `{name}`" + (f"; {hint}" if hint else "")) from None

    @property
    def zone(self) -> str:
        return self.settings.get("timezone", "UTC")

    @cached_property
    def snippet_texts(self) -> Mapping[str, tuple[str, ...]]:
        """By type, its fields whose text some field's `snippets:` inserts (computed once)."""
        found: dict[str, tuple[str, ...]] = {}
        for typedef in self.types.values():
            for field_def in typedef.own_fields.values():
                if field_def.snippets is not None:
                    source, text = field_def.snippets["type"], field_def.snippets["text"]
                    found[source] = tuple(dict.fromkeys(found.get(source, ()) + (text,)))
        return MappingProxyType(found)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.settings.get("languages", ("en",)))
