"""Notification rules (P5): on a record's events, messages rendered from templates and queued
in the outbox in the same transaction as the change — one per recipient, threaded by record.
The `notifications:` section of the definitions holds the rules."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field as _field
from datetime import datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from BTrees.OOBTree import OOBTree
from jinja2 import TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from deskbase.objects.compiling import Section, definition_error, filter_errors
from deskbase.objects.errors import DefinitionError, hint_for
from deskbase.objects.fields import AttachmentsKind, EnumKind, RefKind, StringKind, UserKind, UsersKind
from deskbase.objects.filters import Checked
from deskbase.objects.indexes import RowsTree
from deskbase.objects.kept_objects import kept_object
from deskbase.objects.model import Definitions, TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session
from deskbase.objects.write_path import Change
from deskbase.rules.access.identity import ACCOUNTS_KEY, identity_for_account, identity_settings
from deskbase.rules.access.scopes import decide, hidden_fields
from deskbase.rules.access.substitution import with_deputies

from . import links
from .outbox import queue_message, record_thread

EVENTS = ("create", "update", "transition", "delete", "timer")
CHANNELS = ("email", "sms")
_TRANSITION = "transition "       # how workflows.fire begins the reason of its update

# Text templates: no HTML escaping; None renders as nothing rather than "None".
_TEMPLATES = SandboxedEnvironment(autoescape=False, finalize=lambda value: "" if value is None else value)


# -- compiled definitions ------------------------------------------------------------------

@dataclass(frozen=True)
class Recipient:
    """Who hears of an event: `path`, a user or address field of the record or of a record
    its refs lead to, at any depth (`assignee`, `order.customer.email`; a field holding
    several people or a ref to several records reaches them all); `members`, the accounts in
    the group a ref (or a path of refs) points at; `roles`, every active account with one of
    them; or a fixed `address`."""

    path: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    address: str | None = None        # a fixed address or phone number, such as a duty phone


@dataclass(frozen=True)
class Notification:
    """One rule: on which events of which type, for which records, to whom, and what it says."""

    name: str
    type: str
    events: tuple[str, ...]
    when: Any
    timer_events: tuple[str, ...]     # with the `timer` event: the threshold events heard (all when empty)
    recipients: tuple[Recipient, ...]
    channel: str
    subject: Mapping[str, str]        # language → template source
    body: Mapping[str, str]
    attach: str | None = None         # an attachments field whose files travel with the email
    thread: str | None = None         # a ref: messages join the conversation of the record it points at
    fallback: tuple[Recipient, ...] = ()   # who hears when `recipients` reach nobody


@dataclass(frozen=True)
class Notifications:
    """The compiled `notifications:` section, with the rules of each type in YAML order."""

    by_type: Mapping[str, tuple[Notification, ...]] = _field(default_factory=lambda: MappingProxyType({}))


_TEXT = {"type": ["string", "object"], "additionalProperties": {"type": "string", "x-noun": "a template"},
         "x-noun": "a template, or a map of languages to templates such as {en: …, fr: …}"}

_RECIPIENT = {"type": "object", "minProperties": 1, "maxProperties": 1,
              "x-noun": "a recipient such as {field: assignee}, {path: customer.email}, "
                        "{members: group}, {users: {roles: [manager]}} or {address: '+33600000000'}",
              "x-member": "a kind of recipient",
              "properties": {"field": {"type": "string", "x-noun": "a field name",
                                       "description": "a user field (that account's address) or an address field"},
                             "address": {"type": "string", "x-noun": "an e-mail address or a phone number",
                                         "description": "a fixed e-mail address or phone number"},
                             "path": {"type": "string",
                                      "x-noun": "refs then a field, such as order.customer.email",
                                      "description": "refs, then a field of the record they lead to, such as "
                                                     "requester.email"},
                             "members": {"type": "string",
                                         "x-noun": "a ref to a group, or refs leading to one, such as "
                                                   "order.team",
                                         "description": "the accounts in the group a ref (or refs) leads to"},
                             "users": {"type": "object", "required": ["roles"],
                                       "x-noun": "a map such as {roles: [manager]}",
                                       "x-member": "a setting of `users`",
                                       "description": "every active account with one of the roles",
                                       "properties": {"roles": {"type": "array", "minItems": 1,
                                                                "items": {"type": "string"},
                                                                "x-noun": "a list of role names",
                                                                "description": "the roles of the accounts told"}},
                                       "additionalProperties": False}},
              "additionalProperties": False}

_SCHEMA = {
    "type": ["object", "null"],
    "x-noun": "a map of notification rules",
    "description": "messages sent on records' events, by name",
    "additionalProperties": {
        "type": "object",
        "x-noun": "a notification rule: a map with on, to, channel, subject and body",
        "x-member": "a setting of a notification rule",
        "required": ["on", "to", "subject", "body"],
        "properties": {
            "on": {"type": "object", "x-noun": "a map such as {type: order, events: [create, transition]}",
                   "x-member": "a setting of `on`", "required": ["type", "events"],
                   "description": "the records and events it hears",
                   "properties": {"type": {"type": "string", "x-noun": "a type name",
                                           "description": "the type of the records"},
                                  "events": {"type": "array", "minItems": 1, "x-noun": "a list of events",
                                             "items": {"enum": list(EVENTS), "x-noun": "one of " + ", ".join(EVENTS)},
                                             "description": "the events: " + ", ".join(EVENTS)},
                                  "timers": {"type": "array", "minItems": 1, "items": {"type": "string"},
                                             "x-noun": "a list of threshold events such as [warning, breach]",
                                             "description": "for the timer event, only these threshold events, "
                                                            "such as [warning, breach]"}},
                   "additionalProperties": False},
            "when": {"x-noun": "a filter on the record",
                     "description": "a filter on the record: only the records it matches"},
            "to": {"type": "array", "minItems": 1, "x-noun": "a list of recipients",
                   "description": "who is told: {field}, {path}, {members}, {users: {roles}} or {address}",
                   "items": _RECIPIENT},
            "fallback": {"type": "array", "minItems": 1,
                         "x-noun": "a list of recipients told when those of `to` are nobody",
                         "description": "who is told when `to` reaches nobody",
                         "items": _RECIPIENT},
            "channel": {"type": "string", "x-noun": "a channel such as email",
                        "description": "the channel the messages leave by: email (default) or sms"},
            "subject": _TEXT | {"description": "the subject: a Jinja2 template, or one per language"},
            "body": _TEXT | {"description": "the text: a Jinja2 template, or one per language"},
            "attach": {"type": "string", "x-noun": "an attachments field of the record, such as documents",
                       "description": "an attachments field whose files the e-mail carries"},
            "thread": {"type": "string", "x-noun": "a ref field of the record, such as order, whose conversation "
                                                   "the messages join",
                       "description": "a ref field: the messages join the conversation of the record it points at"},
        },
        "additionalProperties": False,
    },
}

def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[Notifications, list[DefinitionError]]:
    errors: list[DefinitionError] = []
    by_type: dict[str, list[Notification]] = {}
    for name, spec in (document.get("notifications") or {}).items():
        rule = _compile_rule(name, spec, positions, definitions, errors)
        if rule is not None:
            by_type.setdefault(rule.type, []).append(rule)
    return Notifications(MappingProxyType({k: tuple(v) for k, v in by_type.items()})), errors


def _compile_rule(name: str, spec: Mapping[str, Any], positions, definitions: Definitions,
                  errors: list[DefinitionError]) -> Notification | None:
    path = ("notifications", name)
    before = len(errors)
    type_name = spec["on"]["type"]
    typedef = definitions.types.get(type_name)
    if typedef is None:
        errors.append(definition_error(positions, path + ("on", "type"), f"`{type_name}` is not a type",
                                       hint_for(type_name, definitions.types)))
        return None
    if spec.get("when") is not None:
        errors += filter_errors(spec["when"], typedef, path + ("when",), positions)
    recipients = tuple(_recipient(item, typedef, path + ("to", position), positions, definitions, errors)
                       for position, item in enumerate(spec["to"]))
    fallback = tuple(_recipient(item, typedef, path + ("fallback", position), positions, definitions, errors)
                     for position, item in enumerate(spec.get("fallback") or ()))
    channel = spec.get("channel", "email")
    if channel not in CHANNELS:
        errors.append(definition_error(positions, path + ("channel",), f"`{channel}` is not a channel: "
                                       f"{', '.join(CHANNELS)}", hint_for(channel, CHANNELS)))
    texts = {}
    for key in ("subject", "body"):
        raw = spec[key]
        texts[key] = MappingProxyType(dict(raw) if isinstance(raw, Mapping) else {"": raw})
        for language, source in texts[key].items():
            where = path + (key,) + ((language,) if language else ())
            try:
                read = meta.find_undeclared_variables(_TEMPLATES.parse(source))
            except TemplateSyntaxError as error:
                errors.append(definition_error(positions, where, f"the template does not read: {error.message} "
                                                                 f"(its line {error.lineno})"))
                continue
            if "parent" in read and not spec.get("thread"):
                errors.append(definition_error(positions, where, "the template reads `parent`, the record of the "
                                               "conversation: only a rule with `thread:` has one",
                                               "add `thread: <a ref field>` to the rule"))
    attach = spec.get("attach")
    if attach is not None:
        field = typedef.fields.get(attach)
        if field is None or not isinstance(field.kind, AttachmentsKind):
            usable = [n for n, f in typedef.fields.items() if isinstance(f.kind, AttachmentsKind)]
            errors.append(definition_error(positions, path + ("attach",), f"`{attach}` is not an attachments field "
                                           f"of `{type_name}`", hint_for(attach, usable)))
        elif channel != "email":
            errors.append(definition_error(positions, path + ("attach",), f"files travel by email only, not by "
                                           f"{channel}"))
    thread = spec.get("thread")
    if thread is not None:
        field = typedef.fields.get(thread)
        if field is None or not isinstance(field.kind, RefKind) or field.kind.multiple:
            refs = [n for n, f in typedef.fields.items() if isinstance(f.kind, RefKind) and not f.kind.multiple]
            errors.append(definition_error(positions, path + ("thread",), f"`{thread}` is not a ref field of "
                                           f"`{type_name}` pointing at one record", hint_for(thread, refs)))
    timer_events = tuple(spec["on"].get("timers") or ())
    if timer_events and "timer" not in spec["on"]["events"]:
        errors.append(definition_error(positions, path + ("on", "timers"), "`timers` names threshold events, "
                                       "heard only with the `timer` event: add it to `events`"))
    if len(errors) > before:
        return None
    return Notification(name, type_name, tuple(spec["on"]["events"]), spec.get("when"), timer_events, recipients,
                        channel, texts["subject"], texts["body"], attach, thread, fallback)


def _recipient(spec: Mapping[str, Any], typedef: TypeDef, path: tuple, positions, definitions: Definitions,
               errors: list[DefinitionError]) -> Recipient:
    if "address" in spec:
        return Recipient(address=spec["address"])
    if "users" in spec:
        roles = tuple(spec["users"]["roles"])
        for position, role in enumerate(roles):
            if role not in definitions.roles:
                errors.append(definition_error(positions, path + ("users", "roles", position),
                                               f"role `{role}` is not defined in `roles`",
                                               hint_for(role, definitions.roles)))
        return Recipient(roles=roles)
    if "members" in spec:
        group_type = identity_settings(definitions).group_type
        steps = _walk(spec["members"], typedef, definitions, path + ("members",), positions, errors,
                      last=lambda f: isinstance(f.kind, RefKind) and f.kind.to == group_type,
                      noun=f"a ref to a group (`{group_type}`)" if group_type else "a ref to a group")
        if group_type is None and steps:
            errors.append(definition_error(positions, path + ("members",), "the definitions name no group type: "
                                           "`identity: {group_type: …}` says which records are groups"))
        return Recipient(members=steps)
    key = "field" if "field" in spec else "path"
    steps = _walk(spec[key], typedef, definitions, path + (key,), positions, errors,
                  last=lambda f: isinstance(f.kind, (UserKind, UsersKind, StringKind)), noun="a user or address field")
    return Recipient(path=steps)


def _walk(text: str, typedef: TypeDef, definitions: Definitions, path: tuple, positions,
          errors: list[DefinitionError], *, last, noun: str) -> tuple[str, ...]:
    """The steps of a recipient's path: refs (to one record or several) from `typedef`, then
    a field that `last` accepts; each step checked, a problem reported with its step and a
    "did you mean" among the fields that would fit there."""
    steps = tuple(str(text).split("."))
    owner = typedef
    for position, step in enumerate(steps):
        field = owner.fields.get(step)
        final = position == len(steps) - 1
        if final and field is not None and last(field):
            return steps
        if not final and field is not None and isinstance(field.kind, RefKind):
            owner = definitions.types[field.kind.to]
            continue
        walked = ".".join(steps[:position])
        where = f"`{walked}` leads to `{owner.name}`, where " if walked else ""
        if final:
            usable = [n for n, f in owner.fields.items() if last(f)]
            message = (f"`{step}` is not a field of type `{owner.name}`" if field is None and not walked else
                       f"{where}`{step}` is not {noun} of `{owner.name}`")
        else:
            usable = [n for n, f in owner.fields.items() if isinstance(f.kind, RefKind)]
            message = f"{where}`{step}` is not a ref field of `{owner.name}` to go on from"
        errors.append(definition_error(positions, path, message, hint_for(step, usable)))
        return ()
    return steps


NOTIFICATIONS_SECTION = Section("notifications", "top", _SCHEMA, _compile)


def notifications(definitions: Definitions) -> Notifications:
    """The compiled notification rules of definitions (none when loaded without the section)."""
    return definitions.extensions.get("notifications") or Notifications()


# -- queueing ------------------------------------------------------------------------------

def event_of(change: Change) -> str:
    """The event a change is: create, update, delete, or transition for an update a workflow made."""
    if change.action == "update" and (change.reason or "").startswith(_TRANSITION):
        return "transition"
    return change.action


def notify(session: Session, change: Change) -> None:
    """The write-path effect: queue the messages of the rules this change matches (none in a
    session opened with notify=False)."""
    if not session.notify:
        return
    announce(session, change.typedef, change.record, event_of(change), change.new or change.old,
             {"inputs": dict(change.details)})


def announce(session: Session, typedef: TypeDef, record: Record, event: str, values: Mapping[str, Any],
             details: Mapping[str, Any] | None = None) -> int:
    """Queue the messages of the rules heard on `event` of a record with these values; `details`
    (a timer's threshold, under the key `timer`) are offered to the templates. The number queued.
    What each rule decided is kept beside the record (`decisions_of`)."""
    rules = notifications(session.definitions).by_type.get(typedef.name)
    queued = 0
    outcomes: list[RuleOutcome] = []
    for rule in rules or ():
        if event not in rule.events:
            outcomes.append(RuleOutcome(rule.name, NOT_HEARD))
            continue
        if event == "timer" and rule.timer_events and (details or {}).get("timer", {}).get("event") not in rule.timer_events:
            outcomes.append(RuleOutcome(rule.name, OTHER_THRESHOLD, conditions=(
                ("", "timer", "in", rule.timer_events, (details or {}).get("timer", {}).get("event")),)))
            continue
        if rule.when is not None:
            when = session.store.compiled_filter(rule.when, rule.type)
            checked: list[Checked] = []
            if not when.matches(values, typedef, session.context(values), checked):
                outcomes.append(RuleOutcome(rule.name, CONDITION_FALSE, conditions=_failed(checked[0])))
                continue
        parent = _thread_record(session, rule, typedef, values)
        passed: list[tuple[str, str]] = []
        reached = list(_recipients(session, rule, rule.recipients, typedef, values, parent, passed))
        fallback = not reached and bool(rule.fallback)
        if fallback:
            reached = list(_recipients(session, rule, rule.fallback, typedef, values, parent, passed))
        conversation = parent or record
        messages = []
        for address, language, account in reached:
            messages.append(_queue(session, rule, typedef, record, conversation, event, values, address, language,
                                   details, attach=rule.attach is not None and (account is None or rule.attach not in
                                   hidden_fields(identity_for_account(session, account), typedef,
                                                 session.definitions))))
            queued += 1
        told = tuple((account.login if account is not None else address, message)
                     for (address, _, account), message in zip(reached, messages))
        outcomes.append(RuleOutcome(rule.name, NOBODY if not told else FALLBACK if fallback else SENT, told,
                                    tuple(passed[:PASSED_KEPT]), len(passed) - PASSED_KEPT))
    if outcomes:
        _keep_decisions(session, typedef, record, event, outcomes)
    return queued


# -- what the rules decided, kept ------------------------------------------------------------
# Why someone was or was not told depends on what held when the change was made (their
# roles, their address, the record's values then), so it is kept when the rules run rather
# than worked out again later from what holds now: per record, the last NOTIFIED_KEPT
# changes heard, each with every rule's outcome, as plain tuples.

NOTIFIED_KEY = "deskbase.notified"
NOTIFIED_KEPT = 10             # changes kept per record
PASSED_KEPT = 20               # people passed over kept per rule and change

SENT, FALLBACK, NOBODY = "sent", "fallback", "nobody"
NOT_HEARD, OTHER_THRESHOLD, CONDITION_FALSE = "not heard", "other threshold", "condition false"
AUTHOR, MAY_NOT_READ, NO_ADDRESS, DISABLED, UNKNOWN, NO_CHANNEL, ALREADY = (
    "author", "may not read", "no address", "disabled", "unknown", "no channel", "already told")


@dataclass(frozen=True)
class RuleOutcome:
    """What one rule did with one change: `outcome` (sent, fallback, nobody, not heard, other
    threshold, condition false); `told`, (login or address, outbox message id) of each person
    told; `passed`, (login or address, why) of those passed over, and how many more were;
    `conditions`, the conditions of `when` that failed, as (path, field, op, the values
    compared with, the value found)."""

    rule: str
    outcome: str
    told: tuple[tuple[str, int], ...] = ()
    passed: tuple[tuple[str, str], ...] = ()
    more_passed: int = 0
    conditions: tuple[tuple[str, str | None, str, tuple, Any], ...] = ()


@dataclass(frozen=True)
class Decisions:
    """The rules' outcomes on one change of a record: when, the record's version then, the event."""

    at: datetime
    version: int
    event: str
    outcomes: tuple[RuleOutcome, ...]


def _failed(checked: Checked, negated: bool = False) -> tuple[tuple[str, str | None, str, tuple, Any], ...]:
    """The conditions that made a filter fail, as plain tuples (a `not`'s part that held, too)."""
    if checked.parts:
        inner = not negated if checked.op == "not" else negated
        return tuple(item for part in checked.parts for item in _failed(part, inner))
    if checked.held == negated:
        return ((checked.path, checked.field, ("not " if negated else "") + checked.op, checked.wanted,
                 checked.found),)
    return ()


def _keep_decisions(session: Session, typedef: TypeDef, record: Record, event: str,
                    outcomes: list[RuleOutcome]) -> None:
    kept = kept_object(session.connection, NOTIFIED_KEY, OOBTree)
    by_record = kept.get(typedef.name)
    if by_record is None:
        by_record = kept[typedef.name] = RowsTree()     # small buckets: a write rewrites one
    entry = (session.now, record.version, event,
             tuple((o.rule, o.outcome, o.told, o.passed, o.more_passed, o.conditions) for o in outcomes))
    by_record[record.id] = (tuple(by_record.get(record.id, ())) + (entry,))[-NOTIFIED_KEPT:]


def decisions_of(session: Session, record: Record) -> list[Decisions]:
    """What the notification rules decided on the last changes of a record, oldest first (the
    changes made while notifications were off, such as demo data, left nothing)."""
    kept = kept_object(session.connection, NOTIFIED_KEY)
    by_record = kept.get(record.type_name) if kept is not None else None
    return [Decisions(at, version, event, tuple(RuleOutcome(*outcome) for outcome in outcomes))
            for at, version, event, outcomes in (by_record.get(record.id, ()) if by_record is not None else ())]


def _queue(session: Session, rule: Notification, typedef: TypeDef, record: Record, conversation: Record,
           event: str, values: Mapping[str, Any], address: str, language: str,
           details: Mapping[str, Any] | None, *, attach: bool = False) -> int:
    settings = session.definitions.settings
    base = str(settings.get("base_url") or "").rstrip("/")
    context = {"inputs": {}, **(details or {}), "record": _record_view(typedef, record.number, values, language),
               "link": f"{base}/r/{conversation.number}", "event": event, "actor": session.user,
               "type": typedef.title(language),
               # Signed links for this recipient: act without signing in (see links.py).
               "action_link": lambda transition: f"{base}/a/{links.fire_link(session, record.number, transition, address)}",
               "answer_link": lambda type_name, **fixed:
                   f"{base}/a/{links.create_link(session, type_name, fixed, address)}"}
    if rule.thread is not None:          # the record itself while its ref is empty
        parent_type = session.definitions.type(conversation.type_name)
        context["parent"] = _record_view(parent_type, conversation.number, conversation.values, language)
    subject = _render(_pick(rule.subject, language), context)
    if conversation.number not in subject:
        subject = f"[{conversation.number}] {subject}"    # a reply is matched to its record by the number
    mail = settings.get("mail") or {}
    headers = {"Reply-To": mail["reply_to"]} if rule.channel == "email" and mail.get("reply_to") else None
    return queue_message(session, rule.channel, [address], subject, _render(_pick(rule.body, language), context),
                  headers=headers, thread=record_thread(session, conversation), record=conversation,
                  # the field's files as they are once this change commits, read when the email is sent
                  attachments=((record.number, rule.attach),) if attach and rule.attach is not None else ())


def _thread_record(session: Session, rule: Notification, typedef: TypeDef, values: Mapping[str, Any]) -> Record | None:
    """The record whose conversation a message joins (`thread:`): its Message-IDs, its number
    in the subject, so that a reply comes back to it. None: the record's own."""
    if rule.thread is None or values.get(rule.thread) is None:
        return None
    target_type = typedef.fields[rule.thread].kind.to
    return session.container(target_type).records.get(values[rule.thread])


def _reached(session: Session, typedef: TypeDef, values: Mapping[str, Any],
             refs: tuple[str, ...]) -> list[tuple[TypeDef, Mapping[str, Any]]]:
    """The records (type, values) a chain of refs leads to from these values; a ref holding
    several records leads to each."""
    found = [(typedef, values)]
    for step in refs:
        following = []
        for owner, source in found:
            kind = owner.fields[step].kind
            target = session.definitions.type(kind.to)
            records = session.container(target.name).records
            ids = source.get(step)
            for target_id in (ids if isinstance(ids, (list, tuple)) else (ids,)):
                reached = records.get(target_id) if target_id is not None else None
                if reached is not None:
                    following.append((target, reached.values))
        found = following
    return found


def _recipients(session: Session, rule: Notification, recipients: tuple[Recipient, ...], typedef: TypeDef,
                values: Mapping[str, Any], parent: Record | None = None, passed: list[tuple[str, str]] | None = None):
    """(address, language, account or None) of each recipient, without the actor and without
    repeats. Read as the system: the rule decides who hears, not what the actor may see. An
    account hears only of a record it may read, and of a threaded one only if it may also
    read the record whose conversation it joins (`parent`): the message shows both. Those
    passed over are appended to `passed` as (login or address, why)."""
    accounts = kept_object(session.connection, ACCOUNTS_KEY) or {}
    default_language = (session.definitions.settings.get("languages") or ["en"])[0]
    # An address written in a record (a contact's e-mail) is read in the language of the
    # account holding it, when there is one.
    spoken = {a.email.strip().lower(): a.language for a in accounts.values() if a.email and a.language}

    def language_of(address: str) -> str:
        return spoken.get(address.strip().lower()) or default_language
    actor = accounts.get(session.user)
    seen: set[str] = set()
    if actor is not None and actor.email:
        seen.add(actor.email.lower())            # the actor knows what they did
    skipped: list[tuple[str, str]] = [] if passed is None else passed

    def account(login: Any):
        found = accounts.get(str(login)) if login else None
        why = (NO_CHANNEL if rule.channel != "email"      # accounts hold an e-mail address, no phone number
               else UNKNOWN if found is None else DISABLED if not found.active
               else AUTHOR if found.login == session.user else NO_ADDRESS if not found.email
               else refusal(found))
        if why or found is None:
            skipped.append((str(login), why or UNKNOWN))
            return None
        return found.email, found.language or default_language, found

    def refusal(found) -> str | None:
        # A message tells what the record holds: only to whom its access rules let read it.
        reader = identity_for_account(session, found)
        if parent is not None:
            parent_type = session.definitions.type(parent.type_name)
            decision = decide(reader, "read", parent_type, parent.values, definitions=session.definitions,
                              context=session.context(parent.values))
            if not decision.allowed:
                return f"{MAY_NOT_READ} {parent.number}: {decision.reason}"
        decision = decide(reader, "read", typedef, values, definitions=session.definitions,
                          context=session.context(values))
        return None if decision.allowed else f"{MAY_NOT_READ}: {decision.reason}"

    found: list[tuple[str, str, Any] | None] = []
    for recipient in recipients:
        if recipient.address:
            found.append((recipient.address, language_of(recipient.address), None))
            continue
        if recipient.roles:
            found += [account(a.login) for a in accounts.values() if set(a.roles) & set(recipient.roles)]
            continue
        if recipient.members:
            groups = {group_id for _, source in _reached(session, typedef, values, recipient.members[:-1])
                      for group_id in _ids(source.get(recipient.members[-1]))}
            members = [a.login for a in accounts.values() if groups & set(a.groups or ())]
            found += [account(login) for login in with_deputies(session, members)]
            continue
        *refs, field_name = recipient.path
        for owner, source in _reached(session, typedef, values, tuple(refs)):
            items = _ids(source.get(field_name))
            if isinstance(owner.fields[field_name].kind, (UserKind, UsersKind)):
                found += [account(item) for item in with_deputies(session, items)]   # and whoever stands in
            else:
                found += [(str(item).strip(), language_of(str(item)), None) for item in items if item and str(item).strip()]
    for entry in found:
        if entry is None:
            continue
        if entry[0].lower() not in seen:
            seen.add(entry[0].lower())
            yield entry
        else:
            who = entry[2].login if entry[2] is not None else entry[0]
            author = actor is not None and (actor.email or "").lower() == entry[0].lower()
            skipped.append((who, AUTHOR if author else ALREADY))


def _ids(value: Any) -> tuple:
    """The values a field holds: several for a multi-valued one, else none or one."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _record_view(typedef: TypeDef, number: str, values: Mapping[str, Any], language: str) -> dict[str, Any]:
    """What templates see as `record`: its values, its number, and `<field>_label` for enums."""
    view = dict(values)
    view["number"] = number
    for name, field in typedef.fields.items():
        if isinstance(field.kind, EnumKind):
            view[f"{name}_label"] = field.kind.text(values.get(name), language)
    return view


def _pick(texts: Mapping[str, str], language: str) -> str:
    return texts.get(language) or texts.get("en") or texts.get("") or next(iter(texts.values()))


@lru_cache(maxsize=256)
def _template(source: str):
    return _TEMPLATES.from_string(source)


def _render(source: str, context: Mapping[str, Any]) -> str:
    return _template(source).render(context)
