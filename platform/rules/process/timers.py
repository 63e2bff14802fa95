"""Timers (P17): clocks that count business time on a record — started, paused and stopped
by what the record's values match — against targets that policies choose, with thresholds
(80 %, 100 %, 150 %) that fire events, and deadlines kept in fields of the record.

Where things live. A type's `timers:` key declares its clocks, policies and thresholds. The
state of each record's clocks is kept by the engine beside the records (`TimerBook`, one per
type), not in the record: a threshold passing is not an edit of the record. What people see
and sort by — a clock's deadline and its state (running, paused, met, breached) — is written
into fields the type declares, through the write path, so it is indexed and in the history.

How time is counted. On every write of a record its running clocks are settled (the business
time since they last started is added to what they had), then each clock moves on by what the
new values match: `start` (default: from creation), `pause`, `stop` (final, unless the clock
`resumes` once the record leaves the stopped states), and `restart_on` a related record
created (a reply restarts the time allowed for the next update). The policy is chosen again
on every write, so a change of priority or of the agreement moves the deadline; thresholds already
passed are not passed again.

Why the job reads only what is due. Every running clock with a target has a next checkpoint
(its next threshold, or its target when a state field shows breaches): the moment is computed
with the clock's calendar and kept in one ordered set per type, keyed by that moment in whole
seconds, then the record id. The timer job reads the keys up to now, and nothing else.
Concurrent writes add keys near one another; BTrees resolve inserts of different keys in one
bucket, and the rare conflict left (a bucket split) is retried by `Store.run`."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field as _field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from BTrees.IOBTree import IOBTree
from BTrees.LLBTree import LLTreeSet
from BTrees.OOBTree import OOBTree
from persistent import Persistent

from deskbase.objects.compiling import Section, check_ref_path, definition_error, filter_errors
from deskbase.objects.errors import DefinitionError, DeskbaseError, FieldError, hint_for
from deskbase.objects.fields import (
    DateTimeKind,
    DurationKind,
    EnumKind,
    RefKind,
    StringKind,
    format_duration,
    label_text,
    parse_duration,
)
from deskbase.objects.filters import Checked
from deskbase.objects.indexes import RowsTree
from deskbase.objects.kept_objects import kept_object
from deskbase.objects.model import Definitions, TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session
from deskbase.objects.store import Store
from deskbase.objects.words import N_
from deskbase.objects.write_path import Change
from deskbase.rules.access.identity import is_system
from deskbase.rules.access.scopes import AccessDenied
from deskbase.rules.messages.notifications import announce

from .calendars import BusinessCalendar, calendars_of
from .triggers import Trigger, compile_trigger, triggered

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ROOT_KEY = "deskbase.timers"
STATES = (N_("waiting"), N_("running"), N_("paused"), N_("met"), N_("breached"))   # what a state field shows
_ID_BITS = 31                                                  # record ids fit below 2**31


class TimerError(DeskbaseError):
    """A timer that cannot be worked out for a record, such as a calendar named by a record
    that the definitions do not have."""


# -- compiled definitions ------------------------------------------------------------------

@dataclass(frozen=True)
class Threshold:
    """At `percent` of a clock's target, the event `event` fires once, setting `set`."""

    percent: int
    event: str
    set: Mapping[str, Any] = _field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Clock:
    """One clock of a type: when it starts, pauses, stops and restarts, its thresholds, and
    the fields that show its deadline and state."""

    name: str
    label: Any
    start: Any = None                  # a filter; None: from creation
    pause: Any = None
    stop: Any = None
    resumes: bool = False
    restart_on: Trigger | None = None
    deadline_field: str | None = None
    state_field: str | None = None
    thresholds: tuple[Threshold, ...] = ()
    counts_from: str | None = None     # a datetime field: a clock started on creation counts from it
    elapsed_field: str | None = None   # a duration field: the business time counted, once the clock stopped

    def title(self, language: str = "en") -> str:
        return label_text(self.label, language, self.name.replace("_", " "))

    @property
    def checkpoints(self) -> tuple[int, ...]:
        """The percents at which the job looks at the clock: its thresholds, and 100 when a
        state field shows that the target was passed."""
        found = {threshold.percent for threshold in self.thresholds}
        if self.state_field:
            found.add(100)
        return tuple(sorted(found))


@dataclass(frozen=True)
class Policy:
    """Targets for the records that match `when` and, through their refs, `through`."""

    name: str
    when: Any
    through: tuple[tuple[str, Any], ...]     # (ref field, filter on its target)
    targets: Mapping[str, int]               # clock → seconds of business time


@dataclass(frozen=True)
class PolicyChecked:
    """How the choice of a policy weighed one policy on a record, kept when asked why: its
    `when` as evaluated, and each `through` ref (the ref, the id it holds, its target's filter
    as evaluated; None when it points at nothing)."""

    policy: Policy
    held: bool
    when: Checked | None = None
    through: tuple[tuple[str, Any, Checked | None], ...] = ()


@dataclass(frozen=True)
class TypeTimers:
    """The `timers:` of one type."""

    type_name: str
    calendar: str | None                      # a calendar's name, or the default of `calendar_path`
    calendar_path: tuple[str, str] | None     # (ref field, field of its target naming a calendar)
    clocks: Mapping[str, Clock]
    policies: tuple[Policy, ...]


@dataclass(frozen=True)
class Timers:
    """Every type's timers, and the clocks restarted when a record of a type is created."""

    by_type: Mapping[str, TypeTimers] = _field(default_factory=lambda: MappingProxyType({}))
    restarts: Mapping[str, tuple[tuple[TypeTimers, Clock], ...]] = _field(default_factory=lambda: MappingProxyType({}))


_FILTER = {"type": "object", "x-noun": "a filter on the record"}
_THRESHOLD = {
    "type": "object", "x-noun": "a threshold such as {at: 80, event: warning}",
    "x-member": "a setting of a threshold (at, event, set)", "required": ["at", "event"],
    "properties": {"at": {"type": "integer", "minimum": 1, "maximum": 1000, "x-noun": "a percent of the target",
                          "description": "the percent of the target at which it passes, such as 80"},
                   "event": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "an event name",
                             "description": "the name of the `timer` event notification rules react to"},
                   "set": {"type": "object", "x-noun": "a map of field values",
                           "description": "fields written when it passes, such as {escalated: true}"}},
    "additionalProperties": False,
}
_THRESHOLDS = {"type": "array", "items": _THRESHOLD, "x-noun": "a list of thresholds",
               "description": "percents of the target the check_timers job passes, each once, in order"}
_SCHEMA = {
    "type": "object",
    "x-noun": "timers: a map with calendar, clocks, policies and thresholds",
    "description": "clocks that count business time on each record, their targets and thresholds",
    "x-member": "a setting of timers (calendar, clocks, policies, thresholds)",
    "required": ["clocks", "policies"],
    "properties": {
        "calendar": {"type": ["string", "object"], "x-noun": "a calendar name, or {path: ref.field, default: name}",
                     "description": "the business hours the clocks count in: a calendar's name, or read through a "
                                    "ref",
                     "properties": {"path": {"type": "string", "description": "a ref then a field of its target "
                                                                             "naming a calendar, such as "
                                                                             "agreement.calendar"},
                                    "default": {"type": "string", "description": "the calendar when the path "
                                                                                "gives none"}},
                     "additionalProperties": False},
        "clocks": {"type": "object", "x-noun": "a map of clocks", "minProperties": 1,
                   "description": "the clocks, by name",
                   "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "a clock name"},
                   "additionalProperties": {
                       "type": "object", "x-noun": "a clock: a map with start, pause, stop, deadline, state",
                       "x-member": "a setting of a clock (label, start, pause, stop, resumes, restart_on, "
                                   "deadline, state, thresholds)",
                       "properties": {"label": {"x-noun": "a label", "description": "what people read for the clock"},
                                      "start": _FILTER | {"description": "a filter: it counts once the record first "
                                                                         "matches (default: from creation)"},
                                      "pause": _FILTER | {"description": "a filter: not counted while the record "
                                                                         "matches"},
                                      "stop": _FILTER | {"description": "a filter: it stops for good when the record "
                                                                        "matches"},
                                      "resumes": {"type": "boolean", "x-noun": "true or false",
                                                  "description": "true: it counts on if the record leaves the "
                                                                 "stopped states (reopened)"},
                                      "restart_on": {"type": "object", "required": ["create", "via"],
                                                     "description": "a record created that starts it again from "
                                                                    "zero",
                                                     "x-noun": "an event such as {create: reply, via: request}",
                                                     "x-member": "a setting of an event (create, via, where)",
                                                     "properties": {
                                                         "create": {"type": "string",
                                                                    "description": "the type of the record created"},
                                                         "via": {"type": "string",
                                                                 "description": "its ref field pointing at this type"},
                                                         "where": _FILTER | {"description": "a filter the created "
                                                                                            "record must match"}},
                                                     "additionalProperties": False},
                                      "deadline": {"type": "string", "x-noun": "a datetime field name",
                                                   "description": "a datetime field the engine keeps at the moment "
                                                                  "the target is reached"},
                                      "counts_from": {"type": "string", "x-noun": "a datetime field name",
                                                      "description": "a datetime field a clock started at creation "
                                                                     "counts from"},
                                      "elapsed": {"type": "string", "x-noun": "a duration field name",
                                                  "description": "a duration field the engine keeps: the business "
                                                                 "time the clock counted, once it stopped (for "
                                                                 "statistics: the average time to first response)"},
                                      "state": {"type": "string", "x-noun": "an enum field name",
                                                "description": "an enum field the engine keeps: waiting, running, "
                                                               "paused, met, breached"},
                                      "thresholds": _THRESHOLDS | {"description": "this clock's own thresholds"}},
                       "additionalProperties": False}},
        "policies": {"type": "array", "minItems": 1, "x-noun": "a list of policies",
                     "description": "the targets of the clocks; the first policy that matches sets them",
                     "items": {"type": "object", "required": ["name", "targets"],
                               "x-noun": "a policy: a map with name, when, through and targets",
                               "x-member": "a setting of a policy (name, when, through, targets)",
                               "properties": {"name": {"type": "string", "description": "the name of the policy"},
                                              "when": _FILTER | {"description": "a filter on the record"},
                                              "through": {"type": "object", "x-noun": "a map of ref fields to filters",
                                                          "description": "filters on the records the refs point at, "
                                                                         "such as {agreement: {level: premium}}"},
                                              "targets": {"type": "object", "x-noun": "a map of clocks to durations",
                                                          "description": "each clock's target in business time, "
                                                                         "such as {resolution: 4h}",
                                                          "additionalProperties": {"type": ["string", "integer"],
                                                                                   "x-noun": "a duration such as 4h"}}},
                               "additionalProperties": False}},
        "thresholds": _THRESHOLDS | {"description": "every clock's thresholds, unless it has its own"},
    },
    "additionalProperties": False,
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[Timers, list[DefinitionError]]:
    errors: list[DefinitionError] = []
    by_type: dict[str, TypeTimers] = {}
    restarts: dict[str, list[tuple[TypeTimers, Clock]]] = {}
    calendars = calendars_of(definitions)
    for type_name, spec in (document.get("types") or {}).items():
        timers_spec = spec.get("timers") if isinstance(spec, Mapping) else None
        if not timers_spec:
            continue
        compiled = _compile_type(definitions.types[type_name], timers_spec, positions, definitions, calendars, errors)
        if compiled is None:
            continue
        by_type[type_name] = compiled
        for clock in compiled.clocks.values():
            if clock.restart_on is not None:
                restarts.setdefault(clock.restart_on.type, []).append((compiled, clock))
    return Timers(MappingProxyType(by_type), MappingProxyType({k: tuple(v) for k, v in restarts.items()})), errors


def _compile_type(typedef: TypeDef, spec: Mapping[str, Any], positions, definitions: Definitions,
                  calendars: Mapping[str, BusinessCalendar], errors: list[DefinitionError]) -> TypeTimers | None:
    path = ("types", typedef.name, "timers")
    before = len(errors)

    def calendar_name(name: Any, where: tuple) -> None:
        if name not in calendars:
            known = ", ".join(calendars) or "none: add a `calendars:` section"
            errors.append(definition_error(positions, where, f"`{name}` is not a calendar (calendars: {known})",
                                           hint_for(name, calendars)))

    raw_calendar = spec.get("calendar")
    calendar, calendar_path = None, None
    if isinstance(raw_calendar, Mapping):
        calendar = raw_calendar.get("default")
        if calendar is None:
            errors.append(definition_error(positions, path + ("calendar",), "a calendar read from a record "
                                           "needs a `default` for records that name none"))
        else:
            calendar_name(calendar, path + ("calendar", "default"))
        calendar_path = _calendar_path(typedef, raw_calendar.get("path") or "", path + ("calendar", "path"),
                                       positions, definitions, calendars, errors)
    else:
        calendar = raw_calendar
        if calendar is None:
            if len(calendars) != 1:
                errors.append(definition_error(positions, path, "name the calendar the clocks count in, "
                                               "such as `calendar: office_hours`", on_key=True))
            else:
                calendar = next(iter(calendars))
        else:
            calendar_name(calendar, path + ("calendar",))

    shared = _thresholds(typedef, spec.get("thresholds") or (), path + ("thresholds",), positions, errors)
    clocks: dict[str, Clock] = {}
    for name, clock_spec in spec["clocks"].items():
        clock_path = path + ("clocks", name)
        for key in ("start", "pause", "stop"):
            if clock_spec.get(key) is not None:
                errors.extend(filter_errors(clock_spec[key], typedef, clock_path + (key,), positions))
        restart = None
        if clock_spec.get("restart_on"):
            restart = compile_trigger(typedef, clock_spec["restart_on"], clock_path + ("restart_on",), positions,
                                       definitions, errors)
        for key in ("deadline", "counts_from"):
            named = clock_spec.get(key)
            field = typedef.own_fields.get(named) if named is not None else None
            if named is not None and (field is None or not isinstance(field.kind, DateTimeKind)):
                usable = [n for n, f in typedef.own_fields.items() if isinstance(f.kind, DateTimeKind)]
                errors.append(definition_error(positions, clock_path + (key,),
                                               f"`{named}` is not a datetime field of `{typedef.name}`",
                                               hint_for(named, usable)))
        deadline = clock_spec.get("deadline")
        state = clock_spec.get("state")
        if state is not None:
            field = typedef.own_fields.get(state)
            if field is None or not isinstance(field.kind, (EnumKind, StringKind)):
                errors.append(definition_error(positions, clock_path + ("state",),
                                               f"`{state}` is not an enum field of `{typedef.name}`",
                                               hint_for(state, typedef.own_fields)))
            elif isinstance(field.kind, EnumKind) and set(STATES) - set(field.kind.values):
                missing = ", ".join(s for s in STATES if s not in field.kind.values)
                errors.append(definition_error(positions, clock_path + ("state",),
                                               f"the enum `{state}` shows a clock's state, so it needs the values "
                                               f"{', '.join(STATES)}; it lacks {missing}"))
        elapsed = clock_spec.get("elapsed")
        if elapsed is not None:
            field = typedef.own_fields.get(elapsed)
            if field is None or not isinstance(field.kind, DurationKind):
                errors.append(definition_error(positions, clock_path + ("elapsed",),
                                               f"`{elapsed}` is not a duration field of `{typedef.name}`",
                                               hint_for(elapsed, [n for n, f in typedef.own_fields.items()
                                                                  if isinstance(f.kind, DurationKind)])))
        own = clock_spec.get("thresholds")
        thresholds = (_thresholds(typedef, own, clock_path + ("thresholds",), positions, errors)
                      if own is not None else shared)
        clocks[name] = Clock(name, clock_spec.get("label"), clock_spec.get("start"), clock_spec.get("pause"),
                             clock_spec.get("stop"), bool(clock_spec.get("resumes")), restart, deadline, state,
                             thresholds, clock_spec.get("counts_from"), elapsed)

    policies = []
    for position, policy_spec in enumerate(spec["policies"]):
        policy_path = path + ("policies", position)
        if policy_spec.get("when") is not None:
            errors.extend(filter_errors(policy_spec["when"], typedef, policy_path + ("when",), positions))
        through = []
        for ref_name, where in (policy_spec.get("through") or {}).items():
            ref = typedef.own_fields.get(ref_name)
            if ref is None or not isinstance(ref.kind, RefKind) or ref.kind.multiple:
                refs = [n for n, f in typedef.own_fields.items() if isinstance(f.kind, RefKind) and not f.kind.multiple]
                errors.append(definition_error(positions, policy_path + ("through", ref_name),
                                               f"`{ref_name}` is not a ref field of `{typedef.name}`",
                                               hint_for(ref_name, refs), on_key=True))
                continue
            errors.extend(filter_errors(where, definitions.types[ref.kind.to], policy_path + ("through", ref_name),
                                        positions))
            through.append((ref_name, where))
        targets = {}
        for clock_name, raw in policy_spec["targets"].items():
            if clock_name not in clocks:
                errors.append(definition_error(positions, policy_path + ("targets", clock_name),
                                               f"`{clock_name}` is not a clock of `{typedef.name}`",
                                               hint_for(clock_name, clocks), on_key=True))
                continue
            try:
                targets[clock_name] = parse_duration(raw)
            except FieldError as error:
                errors.append(definition_error(positions, policy_path + ("targets", clock_name), str(error)))
        policies.append(Policy(policy_spec["name"], policy_spec.get("when"), tuple(through),
                               MappingProxyType(targets)))
    if len(errors) > before:
        return None
    return TypeTimers(typedef.name, calendar, calendar_path, MappingProxyType(clocks), tuple(policies))


def _calendar_path(typedef: TypeDef, text: str, path: tuple, positions, definitions: Definitions,
                   calendars: Mapping[str, BusinessCalendar], errors: list[DefinitionError]) -> tuple[str, str] | None:
    found = check_ref_path(text, typedef, definitions, lambda f: isinstance(f.kind, (EnumKind, StringKind)),
                           "an enum or string field", path, positions, errors)
    if found is None:
        return None
    target = definitions.types[typedef.fields[found[0]].kind.to]
    kind = target.fields[found[1]].kind
    for value in kind.values if isinstance(kind, EnumKind) else ():
        if value not in calendars:
            errors.append(definition_error(positions, path, f"the value `{value}` of `{target.name}.{found[1]}` "
                                           f"is not a calendar", hint_for(value, calendars)))
    return found


def _thresholds(typedef: TypeDef, specs: Any, path: tuple, positions,
                errors: list[DefinitionError]) -> tuple[Threshold, ...]:
    found = []
    for position, spec in enumerate(specs):
        for name in spec.get("set") or {}:
            if name not in typedef.own_fields:
                errors.append(definition_error(positions, path + (position, "set", name),
                                               f"`{name}` is not a field of `{typedef.name}`",
                                               hint_for(name, typedef.own_fields), on_key=True))
        found.append(Threshold(spec["at"], spec["event"], MappingProxyType(dict(spec.get("set") or {}))))
    percents = [t.percent for t in found]
    if len(set(percents)) != len(percents):
        errors.append(definition_error(positions, path, "two thresholds are at the same percent"))
    return tuple(sorted(found, key=lambda t: t.percent))


TIMERS_SECTION = Section("timers", "type", _SCHEMA, _compile)


def timers(definitions: Definitions) -> Timers:
    """The compiled timers of definitions (none when loaded without the section)."""
    return definitions.extensions.get("timers") or Timers()


# -- state -------------------------------------------------------------------------------------

class ClockState(NamedTuple):
    """Where one clock of one record stands. Times are microseconds since 1970 (UTC)."""

    state: str                 # waiting | running | paused | stopped
    since: int | None          # when running: since when (what came before is in `elapsed`)
    elapsed: int               # business time counted, in microseconds
    target: int | None         # microseconds, from the policy; None: no target
    reached: int               # the highest percent of the target the job has seen passed
    policy: str | None
    calendar: str
    deadline: int | None       # when the target is (or was) reached

    def percent(self) -> int:
        return self.elapsed * 100 // self.target if self.target else 0

    def shown_state(self) -> str:
        """What a state field shows: waiting, running, paused, met or breached."""
        over = self.target is not None and self.elapsed >= self.target and self.state != "waiting"
        if self.state == "stopped":
            return "breached" if self.target is not None and self.elapsed > self.target else "met"
        return "breached" if over and self.state == "running" else self.state


class PhaseChange(NamedTuple):
    """A clock of a record that started, paused, stopped or restarted, as the engine moved it:
    when (microseconds since 1970), which clock, its new phase, and the business time it had
    counted then."""

    at: int
    clock: str
    phase: str                 # running | paused | stopped | waiting | restarted
    elapsed: int


PHASES_KEPT = 40               # the last phase changes kept per record, for `deskbase explain`


class TimerBook(Persistent):
    """The clocks of one type's records and their next checkpoints, in the order they fall due;
    and the last phase changes of each record's clocks, so that one can tell when they ran."""

    def __init__(self) -> None:
        # Rows per record in small buckets: a create rewrites the last bucket of each
        # (`RowsTree`); books kept before stay IOBTrees.
        self.clocks = RowsTree()     # record id → ((clock name, *ClockState), …)
        self.due = LLTreeSet()       # (second << 31) | record id
        self.next = IOBTree()        # record id → its key in `due`
        self.phases = RowsTree()     # record id → (PhaseChange, …), the last PHASES_KEPT

    def load(self, record_id: int) -> dict[str, ClockState]:
        return {entry[0]: ClockState(*entry[1:]) for entry in self.clocks.get(record_id, ())}

    def changes(self, record_id: int) -> tuple[PhaseChange, ...]:
        """The phase changes kept of a record's clocks, oldest first."""
        return tuple(PhaseChange(*entry) for entry in getattr(self, "phases", {}).get(record_id, ()))

    def save(self, record_id: int, states: Mapping[str, ClockState], due: datetime | None,
             now: int | None = None) -> None:
        stored = tuple((name, *state) for name, state in states.items())
        previous = self.clocks.get(record_id)
        if previous != stored:
            self.clocks[record_id] = stored
            if now is not None:
                self._keep_phases(record_id, previous or (), states, now)
        key = None if due is None else (_ceil_seconds(due) << _ID_BITS) | record_id
        old = self.next.get(record_id)
        if old == key:
            return
        if old is not None:
            self.due.remove(old)
            del self.next[record_id]
        if key is not None:
            self.due.insert(key)
            self.next[record_id] = key

    def due_ids(self, now: datetime, limit: int) -> list[int]:
        """The ids of records with a checkpoint at or before `now`, soonest first."""
        top = (int((now - EPOCH).total_seconds()) << _ID_BITS) | ((1 << _ID_BITS) - 1)
        found = []
        for key in self.due.keys(max=top):
            found.append(key & ((1 << _ID_BITS) - 1))
            if len(found) >= limit:
                break
        return found

    def _keep_phases(self, record_id: int, previous: tuple, states: Mapping[str, ClockState], now: int) -> None:
        before = {entry[0]: ClockState(*entry[1:]) for entry in previous}
        moved = []
        for name, state in states.items():
            old = before.get(name)
            if old is not None and state.elapsed < old.elapsed:
                moved.append(PhaseChange(now, name, "restarted", state.elapsed))
            elif old is None or old.state != state.state:
                moved.append(PhaseChange(now, name, state.state, state.elapsed))
        if not moved:
            return
        if getattr(self, "phases", None) is None:    # a book kept before phases were
            self.phases = RowsTree()
        self.phases[record_id] = (tuple(self.phases.get(record_id, ())) + tuple(moved))[-PHASES_KEPT:]

    def forget(self, record_id: int) -> None:
        self.save(record_id, {}, None)
        self.clocks.pop(record_id, None)
        if getattr(self, "phases", None) is not None:
            self.phases.pop(record_id, None)


def _ceil_seconds(moment: datetime) -> int:
    delta = moment - EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return seconds + (1 if delta.microseconds else 0)


def _book(session: Session, type_name: str) -> TimerBook:
    books = kept_object(session.connection, ROOT_KEY, OOBTree)
    book = books.get(type_name)
    if book is None:
        book = books[type_name] = TimerBook()
    return book


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _moment(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


# -- moving clocks on ------------------------------------------------------------------------

class _Evaluation:
    """What one record's values say to its clocks, at one moment."""

    def __init__(self, session: Session, typedef: TypeDef, timers_: TypeTimers, values: Mapping[str, Any]):
        self.session, self.typedef, self.timers, self.values = session, typedef, timers_, values
        self.context = session.context(values)

    def matches(self, spec: Any, typedef: TypeDef | None = None, values: Mapping[str, Any] | None = None,
                trace: list[Checked] | None = None) -> bool:
        typedef = typedef or self.typedef
        values = self.values if values is None else values
        compiled = self.session.store.compiled_filter(spec, typedef.name)
        return compiled.matches(values, typedef, self.context if values is self.values else
                                self.session.context(values), trace)

    def _target_record(self, ref_name: str) -> tuple[TypeDef, Mapping[str, Any]] | None:
        target_id = self.values.get(ref_name)
        if target_id is None:
            return None
        target_type = self.session.definitions.type(self.typedef.fields[ref_name].kind.to)
        record = self.session.container(target_type.name).records.get(target_id)
        return (target_type, record.values) if record is not None else None

    def policy(self, trace: list[PolicyChecked] | None = None) -> Policy | None:
        """The first policy whose `when` and `through` the record matches; with `trace`, each
        policy weighed up to that one is appended with what was found."""
        for policy in self.timers.policies:
            when: list[Checked] | None = [] if trace is not None else None
            if policy.when is not None and not self.matches(policy.when, trace=when):
                if trace is not None:
                    trace.append(PolicyChecked(policy, False, when[0] if when else None))
                continue
            held, through = True, []
            for ref, where in policy.through:
                found = self._target_record(ref)
                checked: list[Checked] | None = [] if trace is not None else None
                held = found is not None and self.matches(where, *found, trace=checked)
                if trace is not None:
                    through.append((ref, self.values.get(ref), checked[0] if checked else None))
                if not held:
                    break
            if trace is not None:
                trace.append(PolicyChecked(policy, held, when[0] if when else None, tuple(through)))
            if held:
                return policy
        return None

    def calendar(self) -> tuple[str, BusinessCalendar]:
        calendars = calendars_of(self.session.definitions)
        name = self.timers.calendar
        if self.timers.calendar_path is not None:
            found = self._target_record(self.timers.calendar_path[0])
            named = found[1].get(self.timers.calendar_path[1]) if found else None
            if named:
                name = named
        if name is None or name not in calendars:
            raise TimerError(f"the calendar `{name}` named by this {self.typedef.title()} is not defined; "
                             f"calendars: {', '.join(calendars)}")
        return name, calendars[name]


def _settle(state: ClockState, now: int, calendars: Mapping[str, BusinessCalendar]) -> ClockState:
    """The clock with the business time up to `now` counted in."""
    if state.state != "running" or state.since is None or now <= state.since:
        return state
    calendar = calendars[state.calendar]
    gained = calendar.between(_moment(state.since), _moment(now)) // timedelta(microseconds=1)
    return state._replace(since=now, elapsed=state.elapsed + gained)


def _step(clock: Clock, state: ClockState | None, evaluation: _Evaluation, policy: Policy | None,
          calendar: tuple[str, BusinessCalendar], now: int, *, restart: bool = False) -> ClockState:
    """The clock once the record's new values are taken into account."""
    calendars = calendars_of(evaluation.session.definitions)
    target = policy.targets.get(clock.name) if policy is not None else None
    target_us = target * 1_000_000 if target is not None else None
    created = state is None
    if state is None or restart:
        state = ClockState("waiting", None, 0, target_us, 0, None, calendar[0], None)
    state = _settle(state, now, calendars)
    state = state._replace(target=target_us, policy=policy.name if policy else None, calendar=calendar[0])
    stopped = clock.stop is not None and evaluation.matches(clock.stop)
    paused = clock.pause is not None and evaluation.matches(clock.pause)
    phase = state.state
    if phase == "waiting":
        if clock.start is None or evaluation.matches(clock.start):
            phase = "stopped" if stopped else "paused" if paused else "running"
    elif phase == "stopped":
        if clock.resumes and not stopped:
            phase = "paused" if paused else "running"
    else:
        phase = "stopped" if stopped else "paused" if paused else "running"
    state = state._replace(state=phase, since=now if phase == "running" else None)
    origin = evaluation.values.get(clock.counts_from) if created and clock.counts_from else None
    if phase == "running" and isinstance(origin, datetime) and _micros(origin) < now:
        # Reported before it was entered: the time since counts (and thresholds already passed fire).
        state = _settle(state._replace(since=_micros(origin)), now, calendars)
        if state.target is not None and state.elapsed >= state.target:
            reached = calendar[1].add(origin, timedelta(microseconds=state.target))
            return state._replace(deadline=_micros(reached))
    return state._replace(deadline=_deadline(state, calendar[1], now))


def _deadline(state: ClockState, calendar: BusinessCalendar, now: int) -> int | None:
    if state.target is None or state.state in ("waiting",):
        return None
    if state.state in ("paused", "stopped"):
        return state.deadline if state.state == "stopped" else None
    if state.elapsed < state.target:
        return _micros(calendar.add(_moment(now), timedelta(microseconds=state.target - state.elapsed)))
    return state.deadline if state.deadline is not None and state.deadline <= now else now


def _next_checkpoint(clock: Clock, state: ClockState, calendars: Mapping[str, BusinessCalendar]) -> datetime | None:
    if state.state != "running" or not state.target or state.since is None:   # running has its since
        return None
    for percent in clock.checkpoints:
        if percent > state.reached:
            budget = state.target * percent // 100 - state.elapsed
            start = _moment(state.since)
            if budget <= 0:
                return start
            return calendars[state.calendar].add(start, timedelta(microseconds=budget))
    return None


def _field_values(timers_: TypeTimers, states: Mapping[str, ClockState]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for clock in timers_.clocks.values():
        state = states.get(clock.name)
        if state is None:
            continue
        if clock.deadline_field:
            values[clock.deadline_field] = _moment(state.deadline) if state.deadline is not None else None
        if clock.state_field:
            values[clock.state_field] = state.shown_state()
        if clock.elapsed_field:
            values[clock.elapsed_field] = state.elapsed // 1_000_000 if state.state == "stopped" else None
    return values


def _store_states(session: Session, timers_: TypeTimers, book: TimerBook, record_id: int,
                  states: Mapping[str, ClockState]) -> None:
    calendars = calendars_of(session.definitions)
    moments = [m for clock in timers_.clocks.values() if clock.name in states
               for m in [_next_checkpoint(clock, states[clock.name], calendars)] if m is not None]
    book.save(record_id, states, min(moments) if moments else None, _micros(session.now))


def derive(session: Session, typedef: TypeDef, record: Record | None, old: Mapping[str, Any],
           new: dict[str, Any]) -> Mapping[str, Any]:
    """The write-path hook: move the record's clocks on and return their deadline and state fields."""
    timers_ = timers(session.definitions).by_type.get(typedef.name)
    if timers_ is None:
        return {}
    book = _book(session, typedef.name)
    moved = _moved(session, typedef, timers_, new, book.load(new["id"]))
    _store_states(session, timers_, book, new["id"], moved)
    return {name: value for name, value in _field_values(timers_, moved).items() if new.get(name) != value}


def _moved(session: Session, typedef: TypeDef, timers_: TypeTimers, values: Mapping[str, Any],
           states: Mapping[str, ClockState]) -> dict[str, ClockState]:
    evaluation = _Evaluation(session, typedef, timers_, values)
    policy, calendar, now = evaluation.policy(), evaluation.calendar(), _micros(session.now)
    return {clock.name: _step(clock, states.get(clock.name), evaluation, policy, calendar, now)
            for clock in timers_.clocks.values()}


def start_missing(store: Store, type_names: list[str] | None = None, *, batch: int = 1000,
                  progress: Callable[[str, int], None] | None = None) -> int:
    """Give clocks to the records that have none — created before their type had timers — as
    if they were created now (a `counts_from` field still counts); how many were started."""
    started = 0
    for type_name in type_names or list(timers(store.definitions).by_type):
        timers_ = timers(store.definitions).by_type.get(type_name)
        if timers_ is None:
            raise TimerError(f"`{type_name}` has no timers; types with timers: "
                             f"{', '.join(timers(store.definitions).by_type) or 'none'}")
        typedef = store.definitions.type(type_name)
        missing = store.read(lambda s: [i for i in s.container(type_name).records.keys()
                                        if i not in _book(s, type_name).clocks])
        for first in range(0, len(missing), batch):
            def work(session: Session, chunk=missing[first:first + batch]) -> int:
                book, done = _book(session, type_name), 0
                for record_id in chunk:
                    record = session.container(type_name).records.get(record_id)
                    if record is None or record_id in book.clocks:
                        continue
                    moved = _moved(session, typedef, timers_, record.values, {})
                    _store_states(session, timers_, book, record_id, moved)
                    changes = {n: v for n, v in _field_values(timers_, moved).items() if record.get(n) != v}
                    if changes:
                        session.update(record, changes, reason="timers started")
                    done += 1
                return done
            started += store.run(work)
            if progress is not None:
                progress(type_name, started)
    return started


def clock_fields(definitions: Definitions, type_name: str) -> Mapping[str, Any]:
    """The fields of a type its clocks keep (deadlines and states), each with its clock."""
    timers_ = timers(definitions).by_type.get(type_name)
    return {name: clock for clock in (timers_.clocks.values() if timers_ else ())
            for name in (clock.deadline_field, clock.state_field, clock.elapsed_field) if name}


def refuse_kept_fields(session: Session, action: str, typedef: TypeDef, record: Record | None,
                       values: Mapping[str, Any]) -> None:
    """The write-path check: deadlines and states are the clocks' to keep, not a person's to type."""
    if is_system(session) or action == "delete":
        return
    kept = clock_fields(session.definitions, typedef.name)
    typed = [name for name in values if name in kept]
    if typed:
        raise AccessDenied(action, f"{', '.join(typed)} " + ("is" if len(typed) == 1 else "are") +
                           " kept by the timers and cannot be set by hand",
                           {name: f"kept by the timer `{kept[name].name}`" for name in typed})


def restart(session: Session, change: Change) -> None:
    """The write-path effect: restart the clocks that a newly created related record restarts."""
    if change.action != "create":
        return
    for timers_, clock in timers(session.definitions).restarts.get(change.typedef.name, ()):
        typedef = session.definitions.type(timers_.type_name)
        assert clock.restart_on is not None         # `restarts` holds the clocks that have one
        target = triggered(session, clock.restart_on, change, typedef.name)
        if target is None:
            continue
        book = _book(session, typedef.name)
        states = book.load(target.id)
        evaluation = _Evaluation(session, typedef, timers_, target.values)
        states[clock.name] = _step(clock, states.get(clock.name), evaluation, evaluation.policy(),
                                   evaluation.calendar(), _micros(session.now), restart=True)
        _store_states(session, timers_, book, target.id, states)
        changes = {name: value for name, value in _field_values(timers_, states).items()
                   if target.get(name) != value}
        if changes:
            with session.as_engine(system=True):
                session.update(target, changes, reason=f"timer {clock.name} restarted")


def forget(session: Session, change: Change) -> None:
    """The write-path effect: a deleted record's clocks stop being checked."""
    if change.action == "delete" and change.typedef.name in timers(session.definitions).by_type:
        _book(session, change.typedef.name).forget(change.record.id)


# -- the timer job ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ThresholdPassed:
    """One threshold a clock passed, as the job reports it."""

    number: str
    clock: str
    percent: int
    event: str


@dataclass
class TimerReport:
    """What one run of the timer job did."""

    checked: int = 0
    passed: list[ThresholdPassed] = _field(default_factory=list)
    messages: int = 0

    def __str__(self) -> str:
        return f"{self.checked} records checked, {len(self.passed)} thresholds passed, {self.messages} messages queued"


def check_due(store: Store, now: datetime | None = None, *, batch: int = 200) -> TimerReport:
    """Fire the thresholds passed by `now` (default: the current time), reading only the records
    whose next checkpoint has come, in transactions of at most `batch` records."""
    now = now or datetime.now(UTC)
    report = TimerReport()
    seen: set[tuple[str, int]] = set()
    for type_name in timers(store.definitions).by_type:
        while True:
            def work(session: Session) -> int:
                book = _book(session, type_name)
                ids = [i for i in book.due_ids(now, batch + len(seen)) if (type_name, i) not in seen][:batch]
                for record_id in ids:
                    seen.add((type_name, record_id))
                    _check_record(session, type_name, book, record_id, report)
                return len(ids)
            done = store.run(work, now=now)
            if done < batch:
                break
    return report


def next_checkpoint(store: Store) -> datetime | None:
    """The soonest moment a clock of some record passes a threshold (what `check_due` acts on
    next), or None when no clock runs towards one."""
    def work(session: Session) -> datetime | None:
        books = kept_object(session.connection, ROOT_KEY) or {}
        seconds = [book.due.minKey() >> _ID_BITS for book in books.values() if book.due]
        return EPOCH + timedelta(seconds=min(seconds)) if seconds else None
    return store.read(work)


def _check_record(session: Session, type_name: str, book: TimerBook, record_id: int, report: TimerReport) -> None:
    typedef = session.definitions.type(type_name)
    timers_ = timers(session.definitions).by_type[type_name]
    record = session.container(type_name).records.get(record_id)
    if record is None:
        book.forget(record_id)
        return
    report.checked += 1
    calendars = calendars_of(session.definitions)
    now = _micros(session.now)
    states = book.load(record_id)
    passed: list[tuple[Clock, Threshold, ClockState]] = []
    for clock in timers_.clocks.values():
        state = states.get(clock.name)
        if state is None or state.state != "running" or not state.target:
            continue
        state = _settle(state, now, calendars)
        percent = state.percent()
        passed += [(clock, t, state) for t in clock.thresholds if state.reached < t.percent <= percent]
        states[clock.name] = state._replace(reached=max(state.reached, percent))
    _store_states(session, timers_, book, record_id, states)
    changes: dict[str, Any] = {}
    for clock, threshold, _ in passed:
        changes.update(threshold.set)
    changes.update(_field_values(timers_, states))
    changes = {name: value for name, value in changes.items() if record.get(name) != value}
    reason = "; ".join(f"{clock.name} {threshold.percent}% ({threshold.event})" for clock, threshold, _ in passed)
    if changes:
        session.update(record, changes, reason=f"timer {reason or 'target passed'}")
    elif reason:
        session.note(record, f"timer {reason}")
    for clock, threshold, state in passed:
        report.passed.append(ThresholdPassed(record.number, clock.name, threshold.percent, threshold.event))
        report.messages += announce(session, typedef, record, "timer", record.values,
                                    {"timer": _timer_view(clock, threshold, state, calendars, session)})


def _timer_view(clock: Clock, threshold: Threshold, state: ClockState, calendars, session: Session) -> dict[str, Any]:
    language = session.definitions.languages[0]
    zone = calendars[state.calendar].zone
    deadline = _moment(state.deadline).astimezone(ZoneInfo(zone)) if state.deadline is not None else None
    return {"name": clock.name, "label": clock.title(language), "event": threshold.event,
            "percent": threshold.percent, "target": format_duration((state.target or 0) // 1_000_000),
            "elapsed": format_duration(state.elapsed // 1_000_000),
            "deadline": deadline.strftime("%Y-%m-%d %H:%M") if deadline else ""}


# -- reading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClockView:
    """A clock of a record as people read it."""

    name: str
    label: str
    state: str                 # waiting, running, paused, met, breached
    policy: str | None
    target: timedelta | None
    elapsed: timedelta
    deadline: datetime | None


def clocks_of(session: Session, record: Record, language: str = "en") -> list[ClockView]:
    """The clocks of a record, counted up to the session's now."""
    timers_ = timers(session.definitions).by_type.get(record.type_name)
    if timers_ is None:
        return []
    calendars = calendars_of(session.definitions)
    states = _book(session, record.type_name).load(record.id)
    now = _micros(session.now)
    found = []
    for clock in timers_.clocks.values():
        state = states.get(clock.name)
        if state is None:
            continue
        state = _settle(state, now, calendars)
        found.append(ClockView(clock.name, clock.title(language), state.shown_state(), state.policy,
                               timedelta(microseconds=state.target) if state.target is not None else None,
                               timedelta(microseconds=state.elapsed),
                               _moment(state.deadline) if state.deadline is not None else None))
    return found


def policy_reasons(session: Session, record: Record) -> tuple[Policy | None, list[PolicyChecked]]:
    """The policy a record's values choose now, as every write chooses it, and each policy
    weighed on the way (the first that matches is chosen)."""
    timers_ = timers(session.definitions).by_type.get(record.type_name)
    if timers_ is None:
        return None, []
    trace: list[PolicyChecked] = []
    typedef = session.definitions.type(record.type_name)
    return _Evaluation(session, typedef, timers_, record.values).policy(trace), trace


def phase_changes(session: Session, record: Record) -> list[tuple[datetime, str, str, timedelta]]:
    """When the clocks of a record started, paused, stopped or restarted, oldest first, as
    the engine kept it: (when, clock, phase, business time counted then)."""
    if record.type_name not in timers(session.definitions).by_type:
        return []
    return [(_moment(change.at), change.clock, change.phase, timedelta(microseconds=change.elapsed))
            for change in _book(session, record.type_name).changes(record.id)]


def clock_reasons(session: Session, record: Record) -> dict[str, list[tuple[str, Any, Checked]]]:
    """For each clock of a record, its conditions (start, pause, stop) as the engine evaluates
    them on the record's values now: clock → [(condition, its filter, what was found)]."""
    timers_ = timers(session.definitions).by_type.get(record.type_name)
    if timers_ is None:
        return {}
    evaluation = _Evaluation(session, session.definitions.type(record.type_name), timers_, record.values)
    found: dict[str, list[tuple[str, Any, Checked]]] = {}
    for clock in timers_.clocks.values():
        for what in ("start", "pause", "stop"):
            spec = getattr(clock, what)
            if spec is not None:
                checked: list[Checked] = []
                evaluation.matches(spec, trace=checked)
                found.setdefault(clock.name, []).append((what, spec, checked[0]))
    return found
