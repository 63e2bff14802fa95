"""Approval chains (P7): a record that comes to match a chain's filter waits for people to
approve it — step after step, one approver or all of a step — before effects apply; approvers
decide, comment and discuss a price; a job reminds them and lets unanswered chains expire.

Where things live. A chain's progress (its step, who must still decide, every decision) is
the engine's, kept beside the records in one `ApprovalBook` under the ZODB root, not in the
record: a comment or an approval that is not the last is not an edit of the record. What
people filter and sort by — pending, approved, rejected, expired — is the type's own enum
field (`state_field`), written through the write path by the engine alone, so it is indexed
and in the history; decisions that change no field are noted in the record's history too.

Who decides. Approvers are resolved to logins when their step starts (a user field, a path
through a ref to a user field, fixed logins, the accounts holding a role), so "what awaits my
approval" is a keyed range read in `pending` and a step does not change under its approvers'
feet. Whoever stands in for an absent approver (substitution.py) may decide in their name;
a superuser may decide any step, which is also how a step without anybody to approve moves.

Why a book and not records. Reminders and expiry are read from an ordered set of due moments
(whole seconds, then the chain's key), like timers: the job reads only what is due. Only the
start of a chain and its decisions write the book, never an ordinary edit, so it is no hot
spot; concurrent writes add different keys, which BTrees resolve, and `Store.run` retries the
rare conflict left. A chain once started runs to its end: editing the record back below a
threshold does not withdraw it, or lowering a price would skip the approval."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field as _field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Literal, overload

from BTrees.OOBTree import OOBTree, OOTreeSet
from persistent import Persistent

from deskbase.objects.compiling import Section, check_ref_path, definition_error, filter_errors
from deskbase.objects.errors import DefinitionError, DeskbaseError, FieldError, hint_for
from deskbase.objects.fields import (
    DecimalKind,
    EnumKind,
    IntegerKind,
    UserKind,
    format_duration,
    label_text,
    parse_duration,
)
from deskbase.objects.kept_objects import kept_object
from deskbase.objects.model import FROZEN_EMPTY, Definitions, TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session
from deskbase.objects.store import Store
from deskbase.objects.words import N_
from deskbase.objects.write_path import Change
from deskbase.rules.access.identity import ACCOUNTS_KEY
from deskbase.rules.access.scopes import AccessDenied, decide
from deskbase.rules.access.substitution import with_deputies
from deskbase.rules.messages.outbox import queue_message, record_thread

from .workflows import fire_as_system, workflow_of

UTC = timezone.utc
APPROVALS_KEY = "deskbase.approvals"      # beside the StoreRoot in the ZODB root mapping
STATES = (N_("pending"), N_("approved"), N_("rejected"), N_("expired"))      # the pages say them translated
DECISIONS = (N_("approve"), N_("reject"), N_("comment"), N_("propose"))
OUTCOMES = ("on_approved", "on_rejected", "on_expired")
MODES = ("any", "all")
_REASON = "approval "                     # how the engine's own writes begin their reason
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST = "\uffff"                          # sorts after every name in a range read


class ApprovalRefused(DeskbaseError):
    """A decision that cannot be taken: not an approver of the step, the chain finished, a
    price missing; `reason` is the sentence."""

    def __init__(self, chain: str, reason: str):
        self.chain, self.reason = chain, reason
        super().__init__(reason)


# -- compiled definitions ------------------------------------------------------------------

@dataclass(frozen=True)
class Approvers:
    """Who approves a step: a user `field` of the record, a `path` (a ref, then a user field of
    the record it points at), fixed `users` (logins) or the accounts holding one of `roles`."""

    field: str | None = None
    path: tuple[str, str] | None = None
    users: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One step: its approvers and whether one of them (`any`) or all of them (`all`) approve."""

    name: str
    label: Any
    approvers: tuple[Approvers, ...]
    mode: str = "any"

    def title(self, language: str = "en") -> str:
        return label_text(self.label, language, self.name.replace("_", " "))


@dataclass(frozen=True)
class Outcome:
    """What a chain's end does to the record: fields set, then a transition fired as the system."""

    set: Mapping[str, Any] = _field(default_factory=lambda: FROZEN_EMPTY)
    transition: str | None = None
    inputs: Mapping[str, Any] = _field(default_factory=lambda: FROZEN_EMPTY)


@dataclass(frozen=True)
class Chain:
    """One approval chain of a type."""

    name: str
    label: Any
    type: str
    when: Any
    steps: tuple[Step, ...]
    state_field: str
    quote: str | None = None
    remind_after: int | None = None       # seconds after a step starts
    expire_after: int | None = None       # seconds after a step starts
    outcomes: Mapping[str, Outcome] = _field(default_factory=lambda: FROZEN_EMPTY)   # approved | rejected | expired
    blocks: tuple[str, ...] = ()

    def title(self, language: str = "en") -> str:
        return label_text(self.label, language, self.name.replace("_", " "))


@dataclass(frozen=True)
class ApprovalChains:
    """The compiled `approvals:` section: chains by name, and by type in YAML order."""

    by_name: Mapping[str, Chain] = _field(default_factory=lambda: FROZEN_EMPTY)
    by_type: Mapping[str, tuple[Chain, ...]] = _field(default_factory=lambda: FROZEN_EMPTY)


_LABEL = {"type": ["string", "object"], "x-noun": "a label: a text or a map of languages such as {en: Manager}",
          "description": "what people read for it"}
_NAMES = {"type": "array", "minItems": 1, "items": {"type": "string"}, "x-noun": "a list of names"}
_OUTCOME = {
    "type": "object", "x-noun": "what the end of the chain does: a map such as {set: {...}, transition: reject}",
    "x-member": "a setting of an outcome (set, transition, inputs)",
    "properties": {"set": {"type": "object", "x-noun": "a map of field values",
                           "description": "fields written with the outcome ($me, $now, $today)"},
                   "transition": {"type": "string", "x-noun": "a transition name",
                                  "description": "a transition then fired as the system"},
                   "inputs": {"type": "object", "x-noun": "a map of the transition's inputs",
                              "description": "the inputs of that transition"}},
    "additionalProperties": False,
}
_APPROVER = {
    "type": "object", "minProperties": 1, "maxProperties": 1,
    "x-noun": "approvers such as {path: organization.approver}, {field: manager}, {users: [alice]} or {roles: [boss]}",
    "x-member": "a kind of approvers",
    "properties": {"field": {"type": "string", "x-noun": "a user field",
                             "description": "a user field of the record"},
                   "path": {"type": "string", "x-noun": "a ref then a user field, such as organization.approver",
                            "description": "a ref then a user field of its target, such as organization.approver"},
                   "users": {**_NAMES, "x-noun": "a list of logins", "description": "fixed logins"},
                   "roles": {**_NAMES, "x-noun": "a list of role names",
                             "description": "every active account with one of these roles"}},
    "additionalProperties": False,
}
_STEP = {
    "type": "object", "x-noun": "a step: a map with name, approvers and mode",
    "x-member": "a setting of a step (name, label, approvers, mode)",
    "required": ["name", "approvers"],
    "properties": {"name": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "a step name",
                            "description": "the name of the step"},
                   "label": _LABEL,
                   "approvers": {"type": "array", "minItems": 1, "items": _APPROVER, "x-noun": "a list of approvers",
                                 "description": "who decides, found when the step starts"},
                   "mode": {"enum": list(MODES), "x-noun": "any or all",
                            "description": "any (default): one approver decides; all: every one must approve"}},
    "additionalProperties": False,
}
_DURATION = {"type": "string", "x-noun": "a duration such as 1d or 4h"}
_OUTCOME_WORDS = {"on_approved": "what an approved chain does", "on_rejected": "what a rejected chain does",
                  "on_expired": "what an expired chain does"}
_SCHEMA = {
    "type": ["object", "null"],
    "x-noun": "a map of approval chains",
    "description": "approval chains that hold a record until people approve it, step after step, by name",
    "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "a chain name"},
    "additionalProperties": {
        "type": "object",
        "x-noun": "an approval chain: a map with type, when, steps and state_field",
        "x-member": "a setting of an approval chain",
        "required": ["type", "steps", "state_field"],
        "properties": {"label": _LABEL,
                       "type": {"type": "string", "x-noun": "a type name",
                                "description": "the type of the records it holds"},
                       "when": {"x-noun": "a filter on the record",
                                "description": "a filter: the chain starts when a record comes to match it"},
                       "steps": {"type": "array", "minItems": 1, "items": _STEP, "x-noun": "a list of steps",
                                 "description": "the steps, in order: each starts once the one before is approved"},
                       "quote": {"type": "string", "x-noun": "a number field",
                                 "description": "a number or money field whose price approvers may discuss"},
                       "remind_after": _DURATION | {"description": "when the approvers are reminded, once"},
                       "expire_after": _DURATION | {"description": "when the chain ends as expired"},
                       "state_field": {"type": "string", "x-noun": "an enum field",
                                       "description": "an enum field with pending, approved, rejected, expired"},
                       **{name: _OUTCOME | {"description": _OUTCOME_WORDS[name]} for name in OUTCOMES},
                       "blocks": {**_NAMES, "x-noun": "a list of transitions",
                                  "description": "transitions refused while the chain is pending"}},
        "additionalProperties": False,
    },
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[ApprovalChains, list[DefinitionError]]:
    errors: list[DefinitionError] = []
    by_name: dict[str, Chain] = {}
    for name, spec in (document.get("approvals") or {}).items():
        chain = _compile_chain(name, spec, positions, definitions, errors)
        if chain is not None:
            by_name[name] = chain
    by_type: dict[str, list[Chain]] = {}
    for chain in by_name.values():
        by_type.setdefault(chain.type, []).append(chain)
    chains = ApprovalChains(MappingProxyType(by_name), MappingProxyType({k: tuple(v) for k, v in by_type.items()}))
    return chains, errors


def _compile_chain(name: str, spec: Mapping[str, Any], positions, definitions: Definitions,
                   errors: list[DefinitionError]) -> Chain | None:
    path = ("approvals", name)
    before = len(errors)

    def problem(where: tuple, message: str, hint: str | None = None) -> None:
        errors.append(definition_error(positions, path + where, message, hint))

    typedef = definitions.types.get(spec["type"])
    if typedef is None:
        problem(("type",), f"`{spec['type']}` is not a type", hint_for(spec["type"], definitions.types))
        return None
    if spec.get("when") is not None:
        errors += filter_errors(spec["when"], typedef, path + ("when",), positions)
    state_field = typedef.own_fields.get(spec["state_field"])
    enums = [n for n, f in typedef.own_fields.items() if isinstance(f.kind, EnumKind)]
    if state_field is None or not isinstance(state_field.kind, EnumKind):
        problem(("state_field",), f"`{spec['state_field']}` is not an enum field of type `{typedef.name}`",
                hint_for(spec["state_field"], enums))
    else:
        missing = [state for state in STATES if state not in state_field.kind.values]
        if missing:
            problem(("state_field",), f"the enum `{state_field.name}` lacks the value"
                                      f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}: an approval's "
                                      f"state is one of {', '.join(STATES)}")
    quote = spec.get("quote")
    if quote is not None:
        field = typedef.own_fields.get(quote)
        if field is None or not isinstance(field.kind, (DecimalKind, IntegerKind)):
            numbers = [n for n, f in typedef.own_fields.items() if isinstance(f.kind, (DecimalKind, IntegerKind))]
            problem(("quote",), f"`{quote}` is not a number or money field of type `{typedef.name}`",
                    hint_for(quote, numbers))
    steps = []
    seen_steps: set[str] = set()
    for position, step in enumerate(spec["steps"]):
        where = ("steps", position)
        if step["name"] in seen_steps:
            problem(where + ("name",), f"the step `{step['name']}` is named twice")
        seen_steps.add(step["name"])
        approvers = tuple(_approvers(item, typedef, path + where + ("approvers", index), positions, definitions, errors)
                          for index, item in enumerate(step["approvers"]))
        steps.append(Step(step["name"], step.get("label"), approvers, step.get("mode", "any")))
    durations = {}
    for key in ("remind_after", "expire_after"):
        if spec.get(key) is not None:
            try:
                durations[key] = parse_duration(spec[key])
            except FieldError as error:
                problem((key,), str(error))
    workflow = workflow_of(definitions, typedef.name)
    transitions = workflow.transitions if workflow is not None else {}
    outcomes = {}
    for key in OUTCOMES:
        if spec.get(key) is not None:
            outcomes[key.removeprefix("on_")] = _outcome(spec[key], typedef, transitions, path + (key,), positions,
                                                         spec["state_field"], errors)
    for position, transition in enumerate(spec.get("blocks") or ()):
        if transition not in transitions:
            problem(("blocks", position), f"`{transition}` is not a transition of `{typedef.name}`",
                    hint_for(transition, transitions) or ("the type has no workflow" if workflow is None else None))
    if len(errors) > before:
        return None
    return Chain(name, spec.get("label"), typedef.name, spec.get("when"), tuple(steps), spec["state_field"], quote,
                 durations.get("remind_after"), durations.get("expire_after"), MappingProxyType(outcomes),
                 tuple(spec.get("blocks") or ()))


def _approvers(spec: Mapping[str, Any], typedef: TypeDef, path: tuple, positions, definitions: Definitions,
               errors: list[DefinitionError]) -> Approvers:
    users = [n for n, f in typedef.fields.items() if isinstance(f.kind, UserKind)]
    if "field" in spec:
        field = typedef.fields.get(spec["field"])
        if field is None or not isinstance(field.kind, UserKind):
            errors.append(definition_error(positions, path + ("field",), f"`{spec['field']}` is not a user field of "
                                           f"type `{typedef.name}`", hint_for(spec["field"], users)))
        return Approvers(field=spec["field"])
    if "path" in spec:
        found = check_ref_path(spec["path"], typedef, definitions, lambda f: isinstance(f.kind, UserKind),
                               "a user field", path + ("path",), positions, errors)
        return Approvers(path=found or tuple(spec["path"].partition(".")[::2]))
    if "users" in spec:
        return Approvers(users=tuple(spec["users"]))
    for position, role in enumerate(spec["roles"]):
        if role not in definitions.roles:
            errors.append(definition_error(positions, path + ("roles", position), f"role `{role}` is not defined in "
                                           f"`roles`", hint_for(role, definitions.roles)))
    return Approvers(roles=tuple(spec["roles"]))


def _outcome(spec: Mapping[str, Any], typedef: TypeDef, transitions: Mapping[str, Any], path: tuple, positions,
             state_field: str, errors: list[DefinitionError]) -> Outcome:
    for name, value in (spec.get("set") or {}).items():
        field = typedef.own_fields.get(name)
        if field is None or name == state_field:
            message = (f"`{name}` is not a field of type `{typedef.name}`" if field is None else
                       f"`{name}` is the chain's state field: the engine sets it")
            errors.append(definition_error(positions, path + ("set", name), message,
                                           hint_for(name, typedef.own_fields), on_key=True))
        elif not (isinstance(value, str) and value.startswith("$")):
            try:
                field.kind.coerce(value)
            except FieldError as error:
                errors.append(definition_error(positions, path + ("set", name), f"`{name}` {error}"))
        elif value not in ("$me", "$now", "$today"):
            errors.append(definition_error(positions, path + ("set", name), f"`{value}` is not a value an outcome "
                                           f"knows", "use $me, $now or $today"))
    transition = spec.get("transition")
    if transition is not None:
        found = transitions.get(transition)
        if found is None:
            errors.append(definition_error(positions, path + ("transition",), f"`{transition}` is not a transition "
                                           f"of `{typedef.name}`", hint_for(transition, transitions)))
        else:
            for name in spec.get("inputs") or {}:
                if name not in found.inputs:
                    errors.append(definition_error(positions, path + ("inputs", name), f"`{name}` is not an input of "
                                                   f"`{transition}`", hint_for(name, found.inputs), on_key=True))
    elif spec.get("inputs"):
        errors.append(definition_error(positions, path + ("inputs",), "`inputs` are given to a transition: name it "
                                                                      "with `transition`"))
    return Outcome(MappingProxyType(dict(spec.get("set") or {})), transition,
                   MappingProxyType(dict(spec.get("inputs") or {})))


APPROVALS_SECTION = Section("approvals", "top", _SCHEMA, _compile)


def approval_chains(definitions: Definitions) -> ApprovalChains:
    """The compiled approval chains of definitions (none when loaded without the section)."""
    return definitions.extensions.get("approvals") or ApprovalChains()


# -- the book --------------------------------------------------------------------------------

class ChainRun(Persistent):
    """The progress of one chain on one record. Its tuples are replaced, never mutated, so
    ZODB sees every change."""

    def __init__(self, type_name: str, record_id: int, number: str, chain: str, started_at: datetime):
        self.type_name, self.record_id, self.number, self.chain = type_name, record_id, number, chain
        self.state = "pending"
        self.step = 0
        self.approvers: tuple[str, ...] = ()     # who may decide the current step
        self.approved_by: tuple[str, ...] = ()   # those of them who approved it (mode `all`)
        self.started_at = started_at
        self.step_started_at = started_at
        self.reminded = False
        self.due: tuple | None = None            # its key in ApprovalBook.due
        self.decisions: tuple[Mapping[str, Any], ...] = ()   # who, when, step, decision, comment, price
        self.price: Any = None                   # the last price proposed in the discussion

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.type_name, self.record_id, self.chain)


class ApprovalBook(Persistent):
    """Every chain run by (type, record id, chain); `pending` holds (login, type, record id,
    chain) for each approver still awaited; `due` holds (moment in seconds, type, record id,
    chain) of the next reminder or expiry."""

    def __init__(self) -> None:
        self.runs = OOBTree()
        self.pending = OOTreeSet()
        self.due = OOTreeSet()


@overload
def _book(session: Session, *, create: Literal[True]) -> ApprovalBook: ...


@overload
def _book(session: Session, *, create: bool = False) -> ApprovalBook | None: ...


def _book(session: Session, *, create: bool = False) -> ApprovalBook | None:
    """The book of the chains' runs; with `create`, made when missing."""
    return kept_object(session.connection, APPROVALS_KEY, ApprovalBook if create else None)


def _seconds(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds())


@dataclass(frozen=True)
class ChainView:
    """A chain on a record as people see it."""

    number: str
    chain: str
    label: str
    state: str
    step: str | None                  # the current step while pending
    awaiting: tuple[str, ...]         # the approvers still awaited
    decisions: tuple[Mapping[str, Any], ...]
    price: Any = None


@dataclass(frozen=True)
class PendingApproval:
    """A record awaiting someone's approval: `approver` is that person or the one they stand in for."""

    number: str
    type_name: str
    record_id: int
    chain: str
    label: str
    step: str
    approver: str
    since: datetime


# -- starting and moving chains ---------------------------------------------------------------

def _matches(session: Session, chain: Chain, typedef: TypeDef, values: Mapping[str, Any]) -> bool:
    if chain.when is None:
        return True
    return session.store.compiled_filter(chain.when, chain.type).matches(values, typedef, session.context(values))


def start_chains(session: Session, change: Change) -> None:
    """The write-path effect: start the chains a created or changed record comes to match."""
    chains = approval_chains(session.definitions).by_type.get(change.typedef.name)
    if not chains or change.action not in ("create", "update") or (change.reason or "").startswith(_REASON):
        return
    for chain in chains:
        if not _matches(session, chain, change.typedef, change.new):
            continue
        if change.action == "update" and _matches(session, chain, change.typedef, change.old):
            continue                     # it matched already: it does not come to match now
        book = _book(session, create=True)
        run = book.runs.get((chain.type, change.record.id, chain.name))
        if run is not None and run.state == "pending":
            continue
        run = ChainRun(chain.type, change.record.id, change.record.number, chain.name, session.now)
        book.runs[run.key] = run
        _write(session, chain, change.record, {chain.state_field: "pending"}, "started", system=True)
        _enter_step(session, chain, run, change.record, 0)


def _write(session: Session, chain: Chain, record: Record, values: Mapping[str, Any], what: str, *,
           system: bool) -> None:
    """A change the chain makes to its record, with the chain's authority; the history says
    `approval <chain>: <what>`. A write that changes nothing is noted instead."""
    with session.as_engine(system=system):
        before = record.version
        session.update(record, values, reason=f"{_REASON}{chain.name}: {what}")
        if record.version == before:
            session.note(record, f"{_REASON}{chain.name}: {what}")


def _resolve_approvers(session: Session, chain: Chain, step: Step, record: Record) -> tuple[str, ...]:
    accounts = kept_object(session.connection, ACCOUNTS_KEY) or {}
    found: list[Any] = []                  # values of the record's fields too: cleaned below
    for source in step.approvers:
        if source.field is not None:
            found.append(record.get(source.field))
        elif source.path is not None:
            ref_name, field_name = source.path
            target_id = record.get(ref_name)
            target_type = session.definitions.type(chain.type).fields[ref_name].kind.to
            target = session.container(target_type).records.get(target_id) if target_id is not None else None
            found.append(target.get(field_name) if target is not None else None)
        elif source.users:
            found += source.users
        else:
            found += [a.login for a in accounts.values() if a.active and set(a.roles) & set(source.roles)]
    logins: list[str] = []
    for login in found:
        if login and login not in logins:
            logins.append(str(login))
    return tuple(logins)



def _enter_step(session: Session, chain: Chain, run: ChainRun, record: Record, index: int) -> None:
    step = chain.steps[index]
    run.step, run.approved_by, run.step_started_at, run.reminded = index, (), session.now, False
    run.approvers = _resolve_approvers(session, chain, step, record)
    book = _book(session, create=True)
    for login in run.approvers:
        book.pending.add((login, *run.key))
    _schedule(book, chain, run)
    if run.approvers:
        if index:
            session.note(record, f"{_REASON}{chain.name}: step {step.name} awaits {', '.join(run.approvers)}")
        _tell(session, chain, run, record, run.approvers, "request")
    else:
        session.note(record, f"{_REASON}{chain.name}: step {step.name} has no approver; an administrator decides it")


def _schedule(book: ApprovalBook, chain: Chain, run: ChainRun) -> None:
    if run.due is not None:
        book.due.remove(run.due)
        run.due = None
    if run.state != "pending":
        return
    if chain.remind_after is not None and not run.reminded and \
            (chain.expire_after is None or chain.remind_after < chain.expire_after):
        after = chain.remind_after
    elif chain.expire_after is not None:
        after = chain.expire_after
    else:
        return
    run.due = (_seconds(run.step_started_at + timedelta(seconds=after)), *run.key)
    book.due.add(run.due)


def _leave_step(book: ApprovalBook, run: ChainRun) -> None:
    for login in run.approvers:
        if (login, *run.key) in book.pending:
            book.pending.remove((login, *run.key))


def _finish(session: Session, chain: Chain, run: ChainRun, record: Record, state: str, what: str, *,
            system: bool, priced: Mapping[str, Any] = FROZEN_EMPTY) -> None:
    """End a chain: its state on the record with the outcome's fields (and the price approved),
    then its transition."""
    book = _book(session, create=True)
    _leave_step(book, run)
    run.state = state
    _schedule(book, chain, run)
    outcome = chain.outcomes.get(state) or Outcome()
    words = {"$me": session.user, "$now": session.now, "$today": session.today}
    values = {name: words.get(value, value) if isinstance(value, str) else value for name, value in outcome.set.items()}
    _write(session, chain, record, {**values, **priced, chain.state_field: state}, what, system=system)
    if outcome.transition is None:
        return
    workflow = workflow_of(session.definitions, chain.type)
    assert workflow is not None                 # an outcome's transition was checked to be one of its workflow
    if record.get(workflow.field) in workflow.transitions[outcome.transition].sources:
        fire_as_system(session, record, outcome.transition, outcome.inputs)
    else:
        session.note(record, f"{_REASON}{chain.name}: `{outcome.transition}` was not fired: the record is "
                             f"`{record.get(workflow.field)}` by now")


# -- deciding ----------------------------------------------------------------------------------

def _chain_on(session: Session, record: Record, chain: str | None) -> tuple[Chain, ChainRun]:
    """The chain named (or the only one run on the record) with its run."""
    chains = approval_chains(session.definitions)
    book = _book(session)
    found = {c.name: book.runs.get((c.type, record.id, c.name)) if book is not None else None
             for c in chains.by_type.get(record.type_name, ())}
    runs = {name: run for name, run in found.items() if run is not None}
    if chain is None:
        pending = [name for name, run in runs.items() if run.state == "pending"] or list(runs)
        if not pending:
            raise ApprovalRefused("", f"{record.number} has no approval chain")
        if len(pending) > 1:
            raise ApprovalRefused("", f"{record.number} has several approval chains ({', '.join(pending)}): name one")
        chain = pending[0]
    if chain not in runs:
        known = [c.name for c in chains.by_type.get(record.type_name, ())]
        hint = hint_for(chain, known)
        raise ApprovalRefused(chain, f"{record.number} has no approval `{chain}`" + (f"; {hint}" if hint else ""))
    return chains.by_name[chain], runs[chain]


def _deciding_for(session: Session, run: ChainRun) -> str | None:
    """The awaited approver the session decides for: its own login, or one it stands in for."""
    awaited = [login for login in run.approvers if login not in run.approved_by]
    identity = session.identity
    mine = [session.user] + list(getattr(identity, "acting_for", None) or ())
    for login in mine:
        if login in awaited:
            return login
    return None


def _superuser(session: Session) -> bool:
    identity = session.identity
    return identity is None or bool(getattr(identity, "superuser", False))


def decide_approval(session: Session, record: Record | str, decision: str, *, chain: str | None = None,
                    comment: str | None = None, price: Any = None) -> ChainView:
    """Approve, reject, comment on or propose a price for a record's pending chain (the only
    one, or `chain`), as the session's person; ApprovalRefused says why not."""
    record = session.resolve(record)
    compiled, run = _chain_on(session, record, chain)
    if decision not in DECISIONS:
        hint = hint_for(decision, DECISIONS)
        raise ApprovalRefused(compiled.name, f"`{decision}` is not a decision: {', '.join(DECISIONS)}"
                              + (f"; {hint}" if hint else ""))
    if run.state != "pending":
        raise ApprovalRefused(compiled.name, f"the approval `{compiled.name}` of {record.number} is over: "
                                             f"it was {run.state}")
    step = compiled.steps[run.step]
    approver = _deciding_for(session, run)
    if approver is None and not _superuser(session):
        if decision in ("comment", "propose") and (session.user in run.approvers or _may_update(session, record)):
            approver = None          # an approver who has approved, or the other side: whoever handles the record
        elif session.user in run.approved_by:
            raise ApprovalRefused(compiled.name, f"you have approved step `{step.name}` of {record.number} already; "
                                                 f"it awaits {', '.join(_awaited(run))}")
        else:
            raise ApprovalRefused(compiled.name, f"you are not an approver of step `{step.name}` of the approval "
                                                 f"`{compiled.name}` on {record.number}: it awaits "
                                                 f"{', '.join(_awaited(run)) or 'an administrator'}")
    price = _price(session, compiled, record, decision, price)
    who = session.user + (f" for {approver}" if approver and approver != session.user else "")
    entry = {"at": session.now, "by": session.user, "for": approver, "step": step.name, "decision": decision,
             "comment": comment or None, "price": price}
    run.decisions = run.decisions + (entry,)
    said = "".join([f" at {price}" if price is not None else "", f": {comment}" if comment else ""])
    if decision in ("comment", "propose"):
        if price is not None:
            run.price = price
        verb = "proposes" if decision == "propose" else "comments"
        session.note(record, f"{_REASON}{compiled.name}: {who} {verb}{said}")
        if approver is None and decision == "propose":
            _tell(session, compiled, run, record, _awaited(run), "proposal", f"{session.user} proposes {price}"
                  + (f": {comment}" if comment else ""))
        return view_of(session, record, compiled.name)
    if decision == "reject":
        _finish(session, compiled, run, record, "rejected", f"rejected by {who}{said}", system=False)
        return view_of(session, record, compiled.name)
    priced: dict[str, Any] = {}
    if price is not None:                       # an approval at a price sets it
        assert compiled.quote is not None       # _price refuses a price to a chain without a quote
        priced = {compiled.quote: price}
    run.approved_by = run.approved_by + tuple(login for login in {approver or session.user} if login)
    book = _book(session, create=True)
    if approver and (approver, *run.key) in book.pending:
        book.pending.remove((approver, *run.key))
    if step.mode == "all" and _awaited(run) and not _superuser(session):
        _write(session, compiled, record, priced, f"step {step.name} approved by {who}{said}; "
                                                   f"awaiting {', '.join(_awaited(run))}", system=False)
        return view_of(session, record, compiled.name)
    if run.step + 1 < len(compiled.steps):
        _write(session, compiled, record, priced, f"step {step.name} approved by {who}{said}", system=False)
        _leave_step(book, run)
        _enter_step(session, compiled, run, record, run.step + 1)
    else:
        _finish(session, compiled, run, record, "approved", f"approved by {who}{said}", system=False, priced=priced)
    return view_of(session, record, compiled.name)


def _awaited(run: ChainRun) -> list[str]:
    return [login for login in run.approvers if login not in run.approved_by]


def _may_update(session: Session, record: Record) -> bool:
    typedef = session.definitions.type(record.type_name)
    return decide(session.identity, "update", typedef, record, definitions=session.definitions,
                  context=session.context(record.values)).allowed


def _price(session: Session, chain: Chain, record: Record, decision: str, price: Any) -> Any:
    if price in (None, ""):
        if decision == "propose":
            raise ApprovalRefused(chain.name, "a proposal needs a price")
        return None
    if chain.quote is None:
        raise ApprovalRefused(chain.name, f"the approval `{chain.name}` has no price to discuss")
    if decision not in ("approve", "propose"):
        raise ApprovalRefused(chain.name, f"a price goes with approve or propose, not {decision}")
    field = session.definitions.type(record.type_name).fields[chain.quote]
    try:
        return field.kind.coerce(price)
    except FieldError as error:
        raise ApprovalRefused(chain.name, f"the price {error}") from None


# -- reading -----------------------------------------------------------------------------------

def view_of(session: Session, record: Record | str, chain: str) -> ChainView:
    """How a chain stands on a record."""
    record = session.resolve(record)
    compiled, run = _chain_on(session, record, chain)
    language = getattr(session.identity, "language", None) or session.definitions.languages[0]
    return ChainView(record.number, compiled.name, compiled.title(language), run.state,
                     compiled.steps[run.step].name if run.state == "pending" else None,
                     tuple(_awaited(run)) if run.state == "pending" else (),
                     tuple(MappingProxyType(dict(entry)) for entry in run.decisions), run.price)


def chains_on(session: Session, record: Record | str) -> list[ChainView]:
    """Every chain run on a record, pending or over."""
    record = session.resolve(record)
    book = _book(session)
    if book is None:
        return []
    return [view_of(session, record, chain.name)
            for chain in approval_chains(session.definitions).by_type.get(record.type_name, ())
            if (chain.type, record.id, chain.name) in book.runs]


def pending_for(source: Store | Session, identity: Any) -> list[PendingApproval]:
    """The records awaiting `identity`'s approval (or that of the people they stand in for),
    oldest first: a range read of the pending index per login."""
    if isinstance(source, Store):
        return source.read(lambda session: pending_for(session, identity))
    session = source
    book = _book(session)
    if book is None:
        return []
    chains = approval_chains(session.definitions).by_name
    language = getattr(identity, "language", None) or session.definitions.languages[0]
    found = []
    for login in [identity.id, *(identity.acting_for or ())]:
        for _, type_name, record_id, chain in book.pending.keys((login,), (login, _LAST)):
            run = book.runs[(type_name, record_id, chain)]
            compiled = chains.get(chain)
            if compiled is None:
                continue             # a chain removed from the definitions
            found.append(PendingApproval(run.number, type_name, record_id, chain, compiled.title(language),
                                         compiled.steps[run.step].name, login, run.step_started_at))
    return sorted(found, key=lambda item: (item.since, item.number))


# -- blocked transitions, the state field ------------------------------------------------------

def blocked_transition(session: Session, record: Record, transition: str) -> str | None:
    """Why a person may not fire `transition` now: a chain that blocks it is pending."""
    chains = approval_chains(session.definitions).by_type.get(record.type_name, ())
    book = _book(session) if chains else None
    for chain in chains:
        if transition not in chain.blocks or book is None:
            continue
        run = book.runs.get((chain.type, record.id, chain.name))
        if run is not None and run.state == "pending":
            return (f"`{transition}` waits for the approval `{chain.name}` of {record.number}: awaiting approval "
                    f"by {', '.join(_awaited(run)) or 'an administrator'} (step {chain.steps[run.step].name})")
    return None


def check_state_field(session: Session, action: str, typedef: TypeDef, record: Record | None,
                      values: Mapping[str, Any]) -> None:
    """The write-path check: a person does not set a chain's state field; the chain does."""
    chains = approval_chains(session.definitions).by_type.get(typedef.name)
    if not chains or session.identity is None or getattr(session.identity, "superuser", False):
        return
    for chain in chains:
        if chain.state_field not in values:
            continue
        try:    # a form sends every field back: an empty or unchanged value is no change
            wanted = typedef.fields[chain.state_field].kind.coerce(values[chain.state_field])
        except FieldError:
            continue    # validation reports it
        if wanted != (record.get(chain.state_field) if record is not None else None):
            raise AccessDenied(action, f"the {chain.state_field} of a {typedef.title()} is kept by its approval "
                                       f"`{chain.name}`", {chain.state_field: "changes only through its approval"})


# -- telling approvers, reminders and expiry ---------------------------------------------------

def _tell(session: Session, chain: Chain, run: ChainRun, record: Record, logins: Iterable[str], what: str,
          extra: str = "") -> int:
    """Queue a message to each account among `logins` (and whoever stands in for them)."""
    accounts = kept_object(session.connection, ACCOUNTS_KEY) or {}
    typedef = session.definitions.type(record.type_name)
    base = str(session.definitions.settings.get("base_url") or "").rstrip("/")
    title = record.get(typedef.title_field) if typedef.title_field else ""
    mail = session.definitions.settings.get("mail") or {}
    queued = 0
    for login in with_deputies(session, logins):
        account = accounts.get(str(login))
        if account is None or not account.active or not account.email or account.login == session.user:
            continue
        language = account.language or session.definitions.languages[0]
        subject = {"request": "Approval requested", "reminder": "Reminder: approval awaited",
                   "proposal": "New price proposed"}[what]
        body = (f"The {typedef.title(language)} {record.number} ({title}) awaits your approval: "
                f"{chain.title(language)}, step {chain.steps[run.step].title(language)}."
                + (f"\n{extra}" if extra else "") + f"\n{base}/r/{record.number}")
        queue_message(session, "email", [account.email], f"[{record.number}] {subject}: {title}", body,
                      headers={"Reply-To": mail["reply_to"]} if mail.get("reply_to") else None,
                      thread=record_thread(session, record), record=record)
        queued += 1
    return queued


@dataclass
class ApprovalReport:
    """What one run of the reminder job did."""

    reminded: list[str] = _field(default_factory=list)   # "T-000012 costly_request"
    expired: list[str] = _field(default_factory=list)

    def __str__(self) -> str:
        return f"{len(self.reminded)} reminded, {len(self.expired)} expired"


def remind_and_expire(store: Store, now: datetime | None = None, *, batch: int = 200) -> ApprovalReport:
    """Remind the approvers of the steps whose `remind_after` passed, and end as `expired` the
    chains whose `expire_after` passed; reads only the due moments up to now."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    report = ApprovalReport()

    def due(session: Session) -> list[tuple]:
        book = _book(session)
        return [] if book is None else list(book.due.keys(max=(_seconds(now), _LAST)))[:batch]

    for key in store.read(due):
        store.run(lambda session, key=key: _handle_due(session, key, report), now=now)
    return report


def next_reminder(store: Store) -> datetime | None:
    """The soonest moment an approver is to be reminded or a chain to expire, or None."""
    def work(session: Session) -> datetime | None:
        book = _book(session)
        return _EPOCH + timedelta(seconds=book.due.minKey()[0]) if book is not None and book.due else None
    return store.read(work)


def _handle_due(session: Session, key: tuple, report: ApprovalReport) -> None:
    book = _book(session)
    assert book is not None                     # the key was read from it
    _, type_name, record_id, chain_name = key
    run = book.runs.get((type_name, record_id, chain_name))
    chain = approval_chains(session.definitions).by_name.get(chain_name)
    if run is None or run.due != key or chain is None:
        if key in book.due:
            book.due.remove(key)        # stale: a decision moved it, or the chain left the definitions
        return
    record = session.get(type_name, record_id)
    elapsed = (session.now - run.step_started_at).total_seconds()
    if chain.expire_after is not None and elapsed >= chain.expire_after:
        report.expired.append(f"{run.number} {chain_name}")
        _finish(session, chain, run, record, "expired", f"expired after {_days(chain.expire_after)} without a "
                                                         f"decision", system=True)
        return
    run.reminded = True
    _schedule(book, chain, run)
    if _tell(session, chain, run, record, _awaited(run), "reminder"):
        report.reminded.append(f"{run.number} {chain_name}")
    session.note(record, f"{_REASON}{chain_name}: {', '.join(_awaited(run)) or 'nobody'} reminded")


def _days(seconds: int) -> str:
    return f"{seconds // 86400}d" if seconds % 86400 == 0 else format_duration(seconds)
