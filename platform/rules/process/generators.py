"""The `generators:` section: records made from a query for a period — for each record a
filter finds (every current agreement), one record (its report for last month) with
lines made from other queries (the work of the month). A record already made for the same
key is left alone, so running a generator again for a period makes nothing twice."""
from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from deskbase.objects.compiling import Section, check_expression, definition_error, filter_errors
from deskbase.objects.errors import DefinitionError, DeskbaseError, hint_for
from deskbase.objects.expressions import evaluate
from deskbase.objects.frozen import freeze_plain
from deskbase.objects.model import Definitions
from deskbase.objects.sourcemap import format_path
from deskbase.objects.store import Store

from .workflows import EFFECTS, RecordToCreate, _CheckContext, create_records, stored_as_given

PERIODS = ("previous_month", "current_month")


class GeneratorError(DeskbaseError):
    """A generator that cannot run as asked (unknown name, a month that does not read)."""


@dataclass(frozen=True)
class Period:
    """The days a run covers, both included."""

    start: date
    end: date

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m}"


@dataclass(frozen=True)
class Generator:
    """For each record of `each_type` matching `each_filter` (and `each_when`, an expression
    over `each` and `period`, such as a frequency of its own), a record of `type` with
    `values` (`$each.<field>`, `$period.start`, `$period.end`) unless one with the same
    `key` values exists, then its `lines` (a `create` effect run on the new record)."""

    name: str
    label: Any
    period: str
    each_type: str
    each_filter: Any
    each_when: str | None
    type: str
    key: tuple[str, ...]
    values: Mapping[str, Any]
    lines: tuple[RecordToCreate, ...]


@dataclass
class GeneratorReport:
    """What a run made: the numbers of the records made, how many were there already, and
    the sentence of each record that could not be made (the others are made all the same)."""

    name: str
    period: Period
    made: list[str]
    existing: int = 0
    failed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.name} {self.period.label}: {len(self.made)} made, {self.existing} already there"
        return text + (f", {len(self.failed)} failed: {'; '.join(self.failed)}" if self.failed else "")


_PERIOD_WORDS = ("$period.start", "$period.end")

_SCHEMA = {
    "type": ["object", "null"],
    "x-noun": "a map of generators such as {monthly_reports: {for_each: {...}, create: {...}}}",
    "description": "records made from a query for a period (monthly reports), by name",
    "additionalProperties": {
        "type": "object",
        "x-noun": "a generator: a map with label, period, for_each, create and lines",
        "x-member": "a setting of a generator (label, period, for_each, create, lines)",
        "required": ["for_each", "create"],
        "properties": {
            "label": {"type": ["string", "object"], "x-noun": "a label", "description": "what people read for it"},
            "period": {"enum": list(PERIODS), "x-noun": "previous_month or current_month",
                       "description": "the period it makes records for"},
            "for_each": {"type": "object", "required": ["type"], "x-noun": "{type: <type>, filter: {...}}",
                         "x-member": "a setting of for_each (type, filter, when)",
                         "description": "the records it makes one record for",
                         "properties": {"type": {"type": "string", "x-noun": "a type name",
                                                 "description": "their type"},
                                        "filter": {"type": "object", "x-noun": "a filter",
                                                   "description": "a filter on them"},
                                        # e.g. due this period by its own frequency
                                        "when": {"type": "string", "x-noun": "an expression over each and period",
                                                 "description": "an expression over each and period: only those "
                                                                "for which it is true"}},
                         "additionalProperties": False},
            "create": {"type": "object", "required": ["type", "key"], "x-noun": "{type: <type>, key: [...], values: {...}}",
                       "x-member": "a setting of create (type, key, values)",
                       "description": "the record made for each",
                       "properties": {"type": {"type": "string", "x-noun": "a type name",
                                               "description": "its type"},
                                      "key": {"type": "array", "minItems": 1, "x-noun": "a list of field names",
                                              "items": {"type": "string", "x-noun": "a field name"},
                                              "description": "the fields that identify it, so that a second run "
                                                             "makes it once"},
                                      "values": {"type": "object", "x-noun": "a map of field values",
                                                 "description": "its field values"}},
                       "additionalProperties": False},
            "lines": {**EFFECTS["create"].schema, "description": "records made with each, such as the lines of "
                                                                 "a monthly report"},
        },
        "additionalProperties": False,
    },
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[Mapping[str, Generator], list[DefinitionError]]:
    errors: list[DefinitionError] = []
    generators: dict[str, Generator] = {}
    for name, spec in (document.get("generators") or {}).items():
        path = ("generators", name)
        each, create = spec["for_each"], spec["create"]
        problems = []
        for where, type_name in ((path + ("for_each", "type"), each["type"]), (path + ("create", "type"), create["type"])):
            if type_name not in definitions.types:
                problems.append(definition_error(positions, where, f"`{type_name}` is not a type",
                                                 hint_for(type_name, definitions.types)))
        if problems:
            errors += problems
            continue
        each_type, made_type = definitions.types[each["type"]], definitions.types[create["type"]]
        if each.get("filter") is not None:
            errors += filter_errors(_with_period(each["filter"], _SAMPLE), each_type, path + ("for_each", "filter"),
                                    positions)
        if each.get("when") is not None:
            try:
                check_expression(each["when"], names=("each", "period"), at=positions.locate(path + ("for_each", "when")),
                                 path=format_path(path + ("for_each", "when")))
            except DefinitionError as error:
                errors.append(error)
        for position, key in enumerate(create["key"]):
            if key not in made_type.fields or made_type.index_for(key) is None:
                errors.append(definition_error(positions, path + ("create", "key", position),
                                               f"`{key}` is not an indexed field of `{made_type.name}`: the key is "
                                               "looked up to make nothing twice", hint_for(key, made_type.fields)))
        values = dict(create.get("values") or {})
        for field_name, value in values.items():
            if field_name not in made_type.own_fields:
                errors.append(definition_error(positions, path + ("create", "values", field_name),
                                               f"`{field_name}` is not a field of `{made_type.name}`",
                                               hint_for(field_name, made_type.own_fields), on_key=True))
            head, _, read = value.partition(".") if isinstance(value, str) else ("", "", "")
            if head == "$each" and read not in each_type.fields:
                errors.append(definition_error(positions, path + ("create", "values", field_name),
                                               f"`{read}` is not a field of `{each_type.name}`",
                                               hint_for(read, each_type.fields)))
            elif head.startswith("$") and value not in _PERIOD_WORDS and head != "$each":
                errors.append(definition_error(positions, path + ("create", "values", field_name),
                                               f"`{value}` is not a value a generator knows",
                                               "use $each.<field>, $period.start or $period.end"))
        lines: tuple[RecordToCreate, ...] = ()
        if spec.get("lines"):
            context = _CheckContext(definitions, positions, path + ("lines",), made_type, MappingProxyType({}))
            lines, problems = EFFECTS["create"].check(spec["lines"], context)
            errors += problems
        generators[name] = Generator(name, spec.get("label"), spec.get("period", "previous_month"), each_type.name,
                                     freeze_plain(each.get("filter")) if each.get("filter") is not None else None,
                                     each.get("when"), made_type.name, tuple(create["key"]), MappingProxyType(values), lines)
    return MappingProxyType(generators), errors


GENERATORS_SECTION = Section("generators", "top", _SCHEMA, _compile)
_SAMPLE = Period(date(2026, 1, 1), date(2026, 1, 31))


def generators(definitions: Definitions) -> Mapping[str, Generator]:
    """The compiled generators of definitions, by name."""
    return definitions.extensions.get("generators") or MappingProxyType({})


def period_of(kind: str, moment: datetime | date, zone: str) -> Period:
    """The month a run at `moment` covers: the one before (`previous_month`) or its own."""
    day = moment.astimezone(ZoneInfo(zone)).date() if isinstance(moment, datetime) else moment
    first = day.replace(day=1)
    if kind == "previous_month":
        first = (first - timedelta(days=1)).replace(day=1)
    return Period(first, first.replace(day=calendar.monthrange(first.year, first.month)[1]))


def month(text: str) -> Period:
    """The period of a month written `2026-10`."""
    try:
        first = datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise GeneratorError(f"`{text}` is not a month: write it like 2026-10") from None
    return period_of("current_month", first, "UTC")


def _with_period(spec: Any, period: Period) -> Any:
    """A filter or value with `$period.start` and `$period.end` read."""
    if isinstance(spec, Mapping):
        return {key: _with_period(value, period) for key, value in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_with_period(item, period) for item in spec]
    if spec == "$period.start":
        return period.start
    if spec == "$period.end":
        return period.end
    return spec


def run_generator(store: Store, name: str, *, period: Period | None = None,
                  now: datetime | None = None, notify: bool = True) -> GeneratorReport:
    """Run one generator for a period (by default the one its `period` gives for now): one
    transaction per record made, so one that fails leaves the others made. `notify=False`:
    the records made tell nobody (demo data)."""
    found = generators(store.definitions).get(name)
    if found is None:
        known = ", ".join(generators(store.definitions)) or "none are defined"
        raise GeneratorError(f"there is no generator `{name}` ({known})")
    period = period or period_of(found.period, now or datetime.now(ZoneInfo("UTC")), store.definitions.zone)
    each_filter = _with_period(found.each_filter, period) if found.each_filter is not None else None
    sources = store.read(lambda session: [r.id for r in session.query(found.each_type, each_filter, "id",
                                                                       limit=None).records])
    report = GeneratorReport(name, period, [], failed=[])
    for source_id in sources:
        def work(session) -> str | None:
            each = session.get(found.each_type, source_id)
            if found.each_when and not evaluate(found.each_when, {"each": each.values, "period": period}):
                return ""
            values = {field: _value(session, value, each, period) for field, value in found.values.items()}
            key = {field: values.get(field) for field in found.key}
            if session.query(found.type, key, limit=0, scoped=False).total:
                return None
            record = session.create(found.type, values)
            create_records(session, record, found.lines, lambda value: _value(session, value, each, period, record))
            return record.number
        try:
            number = store.run(work, now=now, notify=notify)     # as the system
        except DeskbaseError as error:
            report.failed.append(f"{store.definitions.type(found.each_type).number(source_id)}: {error}")
            continue
        if number is None:
            report.existing += 1
        elif number:
            report.made.append(number)
    return report


def _value(session, value: Any, each, period: Period, record=None) -> Any:
    if not isinstance(value, str) or not value.startswith("$"):
        return value
    if value in _PERIOD_WORDS:
        return _with_period(value, period)
    head, _, name = value.partition(".")
    if head == "$each":
        return stored_as_given(session, each, name)
    if head == "$record" and record is not None:
        return stored_as_given(session, record, name)
    return value


def run_demo_generators(store: Store, entries, keys, place: str, *, notify: bool = True,
                        now: datetime | None = None) -> int:
    """The `run_generators:` list of a demo file: each `{generator: NAME, month: previous |
    current | 2026-10}` run now (or at the moment the demo is loaded as of), after the file's
    records. Returns how many records were made."""
    made = 0
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "generator" not in entry:
            raise GeneratorError(f"{place}: run_generators[{index}] is a map such as "
                                 "{generator: monthly_reports, month: previous}")
        when = str(entry.get("month", "previous"))
        moment = now or datetime.now(ZoneInfo("UTC"))
        if when in ("previous", "current"):
            period = period_of(f"{when}_month", moment, store.definitions.zone)
        else:
            period = month(when)
        report = run_generator(store, str(entry["generator"]), period=period, notify=notify, now=now)
        if report.failed:
            raise GeneratorError(f"{place}: run_generators[{index}]: {'; '.join(report.failed)}")
        made += len(report.made)
    return made
