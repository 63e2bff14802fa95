"""Why, in sentences: whether an account may read and change a record (which role, which
scope, which condition held or failed with the value the record has), which timer policy
applies to it and how its clocks ran, and what the notification rules did on its last
changes. Every answer comes from the engine's own evaluation — `decide` with a trace, the
policy choice and clock conditions of the timers, the refusals of the workflow, the
decisions the notification rules kept when they ran — never from rules written again here;
this module only puts what they found into words, for `deskbase explain` and the
administrator's panel of a record's page."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from deskbase.objects.fields import format_duration
from deskbase.objects.filters import Checked
from deskbase.objects.model import TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session
from deskbase.objects.store import Store
from deskbase.rules.access.identity import Identity, identity_of
from deskbase.rules.access.scopes import GrantChecked, decide, hidden_fields, readonly_fields
from deskbase.rules.messages import notifications as rules_of_messages
from deskbase.rules.messages.outbox import get_message
from deskbase.rules.process.timers import clock_reasons, clocks_of, phase_changes, policy_reasons, timers
from deskbase.rules.process.workflows import transition_refusals

from .display import ref_text

CHANGES_SHOWN = 5            # the history entries whose notifications are explained, by default


@dataclass(frozen=True)
class Line:
    """One sentence of an explanation, `depth` levels under the sentence it details."""

    text: str
    depth: int = 0


@dataclass(frozen=True)
class Part:
    """One part of an explanation (access, timers, notifications) and its sentences."""

    title: str
    lines: tuple[Line, ...]


def explain(store: Store, number: str, login: str, *, reader: Identity | None = None, now: datetime | None = None,
            changes: int = CHANGES_SHOWN) -> list[Part]:
    """Why the account `login` may or may not read and change the record numbered `number`,
    how the record's timers count, and what the notification rules did on its last `changes`
    changes; values are shown as `reader` may read them (None: the system, as the command
    line). NotFound and AccountError say what does not exist."""
    person = identity_of(store, login)
    # The workflow weighs a transition for the person who would fire it (their `$me`).
    refusals = store.read(lambda session: transition_refusals(session, session.find(number)),
                          identity=person, now=now)

    def work(session: Session) -> list[Part]:
        record = session.find(number)
        words = _Words(session)
        return [_access(words, person, record, refusals), _timers(words, record),
                _notifications(words, record, max(1, changes))]
    return store.read(work, identity=reader, now=now)


def as_text(parts: list[Part]) -> str:
    """An explanation as indented text, as the command line prints it."""
    lines = []
    for part in parts:
        lines.append(part.title)
        lines += ["  " * (line.depth + 1) + line.text for line in part.lines]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# -- words -----------------------------------------------------------------------------------

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_PHASES = {"running": "ran", "paused": "paused", "stopped": "stopped", "waiting": "waited to start",
           "restarted": "restarted"}


def _flow(value: Any) -> str:
    """A value as it is written in the definitions (YAML's flow style)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {_flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _written(spec: Any, path: str, field: str | None) -> str:
    """The condition at `path` of a filter, as written: `status: [new, unassigned]`."""
    node, held = spec, None
    for name, index in _STEP.findall(path):
        try:
            node = node[int(index)] if index else node[name]
        except (KeyError, IndexError, TypeError):
            return path
        if name and name == (field or "text"):
            held = node
    return f"{field or 'text'}: {_flow(held if held is not None else node)}"


class _Words:
    """Values, moments and conditions of one session's records as sentences say them."""

    def __init__(self, session: Session):
        self.session = session
        self.zone = ZoneInfo(session.definitions.zone)

    def moment(self, value: datetime) -> str:
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def kind(self, typedef: TypeDef, name: str | None) -> Any:
        field = typedef.fields.get(name) if name else None
        kind = field.kind if field is not None else None
        return getattr(kind, "result", None) or kind

    def value(self, typedef: TypeDef, name: str | None, value: Any) -> str:
        """A value a record holds, as people read it."""
        if value is None or value == () or value == []:
            return "empty"
        kind = self.kind(typedef, name)
        items = value if isinstance(value, (list, tuple)) else (value,)
        if kind is not None and kind.name in ("ref", "refs"):
            return ", ".join(ref_text(self.session, kind.to, item) for item in items)
        if isinstance(value, datetime):
            return self.moment(value)
        return ", ".join(_flow(item) for item in items)

    def keys(self, typedef: TypeDef, name: str | None, keys: tuple) -> str:
        """The values a condition compared with, from the keys the filter compares (an enum's
        position, a ref's id)."""
        kind = self.kind(typedef, name)
        shown = []
        for key in keys:
            if kind is not None and kind.name == "enum" and isinstance(key, int) and key < len(kind.values):
                shown.append(kind.values[key])
            elif kind is not None and kind.name == "boolean":
                shown.append("true" if key else "false")
            elif kind is not None and kind.name in ("ref", "refs"):
                shown.append(ref_text(self.session, kind.to, key))
            else:
                shown.append(self.moment(key) if isinstance(key, datetime) else _flow(key))
        return " or ".join(shown)

    def leaf(self, typedef: TypeDef, spec: Any, checked: Checked, depth: int, *, negated: bool = False,
             held: bool | None = None) -> Line:
        """One condition: as written, whether it holds, and the value the record has."""
        held = checked.held if held is None else held
        said = f"`{_written(spec, checked.path, checked.field)}` {'holds' if held else 'fails'}"
        if checked.field is None:
            return Line(f"{said}: the record's words {'contain' if checked.held else 'do not contain'} "
                        f"{', '.join(map(str, checked.wanted))}", depth)
        said += f": {checked.field} is {self.value(typedef, checked.field, checked.found)}"
        if not held and not negated and checked.op in ("eq", "in"):
            said += (f", not {self.keys(typedef, checked.field, checked.wanted)}" if checked.wanted else
                     ", and what it is compared with has no value here, so nothing matches")
        return Line(said, depth)

    def conditions(self, typedef: TypeDef, spec: Any, checked: Checked, depth: int) -> list[Line]:
        """A filter as evaluated on a record: each condition, with the combinations above them."""
        if not checked.parts:
            return [self.leaf(typedef, spec, checked, depth)]
        inner = checked.parts[0]
        if checked.op == "not" and len(checked.parts) == 1 and not inner.parts \
                and inner.path.endswith((".ne", ".not_in")):     # `{ne: …}`, `{not_in: …}` as written
            return [self.leaf(typedef, spec, inner, depth, negated=True, held=checked.held)]
        heading = {"any": ("one of these must hold", "one does", "none does"),
                   "all": ("all of these must hold", "they do", "not all do"),
                   "not": ("this must not hold", "it does not", "it does")}[checked.op]
        lines = [Line(f"{heading[0]}, and {heading[1] if checked.held else heading[2]}:", depth)]
        for part in checked.parts:
            lines += self.conditions(typedef, spec, part, depth + 1)
        return lines


# -- access ----------------------------------------------------------------------------------

def _who(person: Identity) -> str:
    roles = ", ".join(person.roles) or "none"
    return f"{person.id} ({person.name or person.id}; roles: {roles})"


def _grant_lines(words: _Words, typedef: TypeDef, action: str, grant: GrantChecked) -> list[Line]:
    role = f"role {grant.role}"
    if grant.grant == "superuser":
        return [Line(f"{role} is a superuser: it may do everything" if grant.role else
                     "the system may do everything", 1)]
    if grant.grant is None:
        return [Line(f"{role} has no access rule on {typedef.title()} records", 1)]
    if grant.grant is False:
        return [Line(f"{role} may not {action} {typedef.title()} records at all", 1)]
    if grant.grant is True:
        return [Line(f"{role} may {action} every {typedef.title()} record", 1)]
    lines = [Line(f"{role}: {action} scope `{_flow(grant.grant)}` {'holds' if grant.held else 'fails'}", 1)]
    if grant.conditions is not None:
        lines += words.conditions(typedef, grant.grant, grant.conditions, 2)
    if grant.through is not None:
        via = grant.grant["via"]
        lines.append(Line(f"the record its {via} points at is {'one' if grant.through else 'not one'} "
                          f"they may read", 2))
    return lines


def _access(words: _Words, person: Identity, record: Record,
            refusals: list[tuple[str, str, str | None]]) -> Part:
    session = words.session
    typedef = session.definitions.type(record.type_name)
    lines: list[Line] = []
    for action in ("read", "update"):
        trace: list[GrantChecked] = []
        decision = decide(person, action, typedef, record, definitions=session.definitions,
                          context=session.context(record.values), trace=trace)
        lines.append(Line(f"{_who(person) if action == 'read' else person.id} "
                          f"{'may' if decision.allowed else 'may not'} {action} {record.number}."))
        for grant in trace:
            lines += _grant_lines(words, typedef, action, grant)
    hidden = sorted(hidden_fields(person, typedef, session.definitions))
    readonly = sorted(readonly_fields(person, typedef, session.definitions))
    lines.append(Line(f"Fields hidden from them: {', '.join(hidden)}." if hidden else "No field is hidden from them."))
    if readonly:
        lines.append(Line(f"Fields they see but may not change: {', '.join(readonly)}."))
    allowed = [f"{name} ({label})" for name, label, why in refusals if why is None]
    if refusals:
        lines.append(Line(f"Transitions they may fire now: {', '.join(allowed)}." if allowed else
                          "They may fire no transition now."))
        refused = [(name, label, why) for name, label, why in refusals if why is not None]
        if refused:
            lines.append(Line("Transitions they may not fire now:"))
            lines += [Line(f"{name} ({label}): {why}", 1) for name, label, why in refused]
    return Part(f"Access of {person.id} to {record.number}", tuple(lines))


# -- timers ----------------------------------------------------------------------------------

def _duration(value: timedelta | None) -> str:
    return format_duration(int(value.total_seconds())) if value is not None else "no target"


def _timers(words: _Words, record: Record) -> Part:
    session = words.session
    typedef = session.definitions.type(record.type_name)
    title = f"Timers of {record.number}"
    type_timers = timers(session.definitions).by_type.get(record.type_name)
    if type_timers is None:
        return Part(title, (Line(f"{typedef.title()} records have no timers."),))
    chosen, trace = policy_reasons(session, record)
    lines = [Line("The policies are tried in order; the first that applies sets the clocks' targets.")]
    for checked in trace:
        policy = checked.policy
        lines.append(Line(f"policy {policy.name} {'applies' if checked.held else 'does not apply'}"
                          + ("" if checked.when or checked.through else ": it has no condition"), 1))
        if checked.when is not None:
            lines += words.conditions(typedef, policy.when, checked.when, 2)
        for ref, target_id, found in checked.through:
            target_type = session.definitions.type(typedef.fields[ref].kind.to)
            where = dict(policy.through)[ref]
            if found is None:
                lines.append(Line(f"its {ref} must match `{_flow(where)}`, and it is empty", 2))
                continue
            lines.append(Line(f"its {ref} {ref_text(session, target_type.name, target_id)} must match "
                              f"`{_flow(where)}`:", 2))
            lines += words.conditions(target_type, where, found, 3)
    if chosen is None:
        lines.append(Line("No policy applies, so the clocks have no target."))
    else:
        targets = ", ".join(f"{type_timers.clocks[name].title()} {format_duration(seconds)}"
                            for name, seconds in chosen.targets.items())
        lines.append(Line(f"So the policy {chosen.name} applies: {targets}."))
    reasons = clock_reasons(session, record)
    changes = phase_changes(session, record)
    verbs = {"start": "starts once", "pause": "pauses while", "stop": "stops once"}
    for clock in clocks_of(session, record):
        due = f"; due {words.moment(clock.deadline)}" if clock.deadline is not None else ""
        counted_under = "" if chosen is not None and clock.policy == chosen.name else \
            f" (counted under the policy {clock.policy or 'none'} since its last change)"
        lines.append(Line(f"{clock.label}: {clock.state}, {_duration(clock.elapsed)} counted of "
                          f"{_duration(clock.target)}{due}{counted_under}."))
        for what, spec, checked in reasons.get(clock.name, ()):
            lines.append(Line(f"it {verbs[what]} `{_flow(spec)}`: "
                              f"{'this holds now' if checked.held else 'this does not hold now'}", 1))
            lines += words.conditions(typedef, spec, checked, 2)
        moved = [change for change in changes if change[1] == clock.name]
        if moved:
            lines.append(Line("its phases, as the engine moved it:", 1))
            lines += [Line(f"{words.moment(at)} {_PHASES.get(phase, phase)} ({_duration(elapsed)} counted "
                           f"then)", 2) for at, _, phase, elapsed in moved]
    return Part(title, tuple(lines))


# -- notifications -----------------------------------------------------------------------------

_PASSED = {rules_of_messages.AUTHOR: "they made the change",
           rules_of_messages.NO_ADDRESS: "their account has no e-mail address",
           rules_of_messages.DISABLED: "their account is disabled",
           rules_of_messages.UNKNOWN: "there is no such account",
           rules_of_messages.NO_CHANNEL: "the rule sends by SMS, and an account has no phone number",
           rules_of_messages.ALREADY: "they were told once already by this rule"}


def _passed_reason(why: str) -> str:
    if why.startswith(rules_of_messages.MAY_NOT_READ):
        return f"they may not read it{why[len(rules_of_messages.MAY_NOT_READ):]}"
    return _PASSED.get(why, why)


def _entry_heading(words: _Words, entry: Mapping[str, Any]) -> str:
    who = entry["by"] + (f" for {entry['acting_for']}" if entry.get("acting_for") else "")
    action = entry["action"] + (f": {entry['reason']}" if entry.get("reason") else "")
    return f"{words.moment(entry['at'])}, version {entry.get('version')}, by {who}: {action}"


def _outcome_lines(words: _Words, typedef: TypeDef, outcome: rules_of_messages.RuleOutcome,
                   rule: rules_of_messages.Notification | None) -> list[Line]:
    name = f"rule {outcome.rule}"
    lines = []
    if outcome.outcome == rules_of_messages.CONDITION_FALSE:
        lines.append(Line(f"{name} did not run: its condition `{_flow(rule.when if rule else '?')}` fails", 2))
        for path, field, op, wanted, found in outcome.conditions:
            checked = Checked(path, False, op.removeprefix("not "), field, wanted, found)
            lines.append(words.leaf(typedef, rule.when if rule else {}, checked, 3, negated=op.startswith("not "),
                                    held=False))
    elif outcome.outcome == rules_of_messages.OTHER_THRESHOLD:
        heard = outcome.conditions[0] if outcome.conditions else ("", "", "", (), None)
        lines.append(Line(f"{name} did not run: it hears the thresholds {', '.join(heard[3])}, "
                          f"not {heard[4]}", 2))
    elif outcome.outcome == rules_of_messages.NOBODY:
        lines.append(Line(f"{name} ran and told nobody"
                          + (": those it names were passed over" if outcome.passed else
                             ": its recipients name nobody on this record"), 2))
    else:
        told = []
        for who, message_id in outcome.told:
            message = get_message(words.session, message_id)
            told.append(f"{who} (message {message_id}, {message.state if message is not None else 'purged'})")
        fallback = " (its fallback: those it names first were nobody)" \
            if outcome.outcome == rules_of_messages.FALLBACK else ""
        lines.append(Line(f"{name} told {', '.join(told)}{fallback}", 2))
    for who, why in outcome.passed:
        lines.append(Line(f"{name} did not tell {who}: {_passed_reason(why)}", 2))
    if outcome.more_passed > 0:
        lines.append(Line(f"{name} passed over {outcome.more_passed} more people", 2))
    return lines


def _notifications(words: _Words, record: Record, count: int) -> Part:
    session = words.session
    typedef = session.definitions.type(record.type_name)
    rules = {rule.name: rule for rule in rules_of_messages.notifications(session.definitions).by_type.get(
        record.type_name, ())}
    title = f"Notifications on the last {count} changes of {record.number}"
    if not rules:
        return Part(title, (Line(f"No notification rule is about {typedef.title()} records."),))
    decided: dict[tuple[int, datetime], list[rules_of_messages.Decisions]] = {}
    for decision in rules_of_messages.decisions_of(session, record):
        decided.setdefault((decision.version, decision.at), []).append(decision)
    lines: list[Line] = []
    for entry in record.history.entries[-count:]:
        lines.append(Line(_entry_heading(words, entry)))
        kept = decided.get((entry.get("version"), entry["at"]), [])
        if not kept:
            lines.append(Line("no decision of the notification rules is kept for this change: it was made with "
                              "notifications off (demo data, an import), or before they were kept", 1))
        for decision in kept:
            lines.append(Line(f"on the event {decision.event}:", 1))
            unheard = [o.rule for o in decision.outcomes if o.outcome == rules_of_messages.NOT_HEARD]
            for outcome in decision.outcomes:
                if outcome.outcome != rules_of_messages.NOT_HEARD:
                    lines += _outcome_lines(words, typedef, outcome, rules.get(outcome.rule))
            if unheard:
                lines.append(Line(f"not listening to {decision.event}: {', '.join(unheard)}", 2))
    return Part(title, tuple(lines))
