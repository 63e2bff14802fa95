"""The `expect:` step of a scenario: a record's fields, clocks, approval and history; who may
read what; how many records there are; the messages queued. Each is read through the engine
itself (the access rules, the timers, the approval chains, the outbox) at the scenario's
moment, and each mismatch says what was expected and what was found."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deskbase.objects.errors import DeskbaseError, FieldError, hint_for
from deskbase.objects.fields import ComputedKind, RefKind
from deskbase.objects.model import FieldDef, TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session
from deskbase.rules.access.identity import find_account
from deskbase.rules.access.scopes import hidden_fields, may_read
from deskbase.rules.messages.outbox import Message, list_messages
from deskbase.rules.process.approvals import ChainView, chains_on
from deskbase.rules.process.timers import clocks_of

from .reading import Step, StepFailed

if TYPE_CHECKING:
    from .playing import Play

ALL_MESSAGES = 1_000_000      # as many messages of the outbox as a scenario may queue
_ISO_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT")


def check(play: Play, step: Step) -> None:
    """Check every expectation of an `expect:` step; StepFailed with every mismatch."""
    expect = step.data["expect"]
    login = expect.get("as")
    mismatches: list[tuple[tuple, str]] = []

    def work(session: Session) -> None:
        reading = _Reading(play, session, login, mismatches)
        if "record" in expect:
            reading.record_expectations(expect)
        for key, readable in (("can_read", True), ("cannot_read", False)):
            if key in expect:
                reading.readable(key, expect[key], readable)
        if "count" in expect:
            reading.counts(expect["count"])
        if "messages" in expect or "no messages" in expect:
            reading.messages(expect)
    play.read(work, login)
    if mismatches:
        (path, message), *others = mismatches
        raise StepFailed(step.line("expect", *path), message,
                         tuple((step.line("expect", *where), text) for where, text in others))


class _Reading:
    """The expectations of one step, read in one session (as `login`, or as the system)."""

    def __init__(self, play: Play, session: Session, login: str | None, mismatches: list[tuple[tuple, str]]):
        self.play, self.session, self.login, self.mismatches = play, session, login, mismatches
        self.who = f" as {login}" if login else ""

    def mismatch(self, path: tuple, message: str) -> None:
        self.mismatches.append((path, "expects " + message))

    # -- one record --------------------------------------------------------------------

    def record_expectations(self, expect: Mapping[str, Any]) -> None:
        record = self.find(expect["record"])
        if record is None:
            return
        name = expect["record"] if isinstance(expect["record"], str) else record.number
        if expect.get("name"):
            self.play.names[expect["name"]] = (record.type_name, record.id)
        typedef = self.session.definitions.type(record.type_name)
        if self.login and not may_read(self.session, self.session.identity, typedef, record):
            self.mismatch(("record",), f"{name} to be read{self.who}, but {self.login} may not read it")
            return
        for field_name, expected in (expect.get("fields") or {}).items():
            self.field(typedef, record, name, field_name, expected)
        if "clocks" in expect:
            self.clocks(record, name, expect["clocks"])
        if "approval" in expect:
            self.approval(record, name, expect["approval"])
        if "history" in expect:
            self.history(record, name, expect["history"])

    def find(self, selector: Any) -> Record | None:
        """The record of `record:`: a name, a number, or {type: filter} finding exactly one."""
        if isinstance(selector, str):
            return self.play.record(self.session, selector, "expect", "record")
        type_name, where = next(iter(selector.items()))
        try:
            self.session.definitions.type(type_name)
            page = self.session.query(type_name, self.play.values(self.session, type_name, where or {}), "id",
                                      limit=3)
        except DeskbaseError as error:
            raise StepFailed(self.play.step.line("expect", "record") if self.play.step else 1,
                             f"cannot look for the record: {error}") from None
        if page.total != 1:
            found = ", ".join(record.number for record in page.records) + (", …" if page.total > 3 else "")
            self.mismatch(("record",), f"one {type_name} matching {_written(where)}{self.who}, found "
                                       + (f"{page.total}: {found}" if page.total else "none"))
            return None
        return page.records[0]

    def field(self, typedef: TypeDef, record: Record, name: str, field_name: str, expected: Any) -> None:
        path = ("fields", field_name)
        field = typedef.fields.get(field_name)
        if field is None:
            raise StepFailed(self.play.step.line("expect", *path) if self.play.step else 1,
                             f"`{field_name}` is not a field of {typedef.title()}"
                             + _hint(field_name, typedef.fields))
        if self.login and field_name in hidden_fields(self.session.identity, typedef, self.session.definitions):
            self.mismatch(path, f"`{field_name}` of {name} to be `{_text(expected)}`{self.who}, but it is hidden "
                                f"from {self.login}")
            return
        try:
            wanted = self.value(field, expected)
        except FieldError as error:
            raise StepFailed(self.play.step.line("expect", *path) if self.play.step else 1,
                             f"the value expected of `{field_name}`: {error}") from None
        found = record.get(field_name)
        if _comparable(found) != _comparable(wanted):
            self.mismatch(path, f"`{field_name}` of {name} to be `{_text(expected)}`, found "
                                + self.shown(field, found))

    def value(self, field: FieldDef, expected: Any) -> Any:
        """The stored form of an expected value, read as the field reads what people type."""
        kind = field.kind.result if isinstance(field.kind, ComputedKind) else field.kind
        if isinstance(kind, ComputedKind) or kind is None:
            return expected
        return kind.coerce(self.play.referred(kind, expected), self.session.lookup)

    def shown(self, field: FieldDef, value: Any) -> str:
        """A stored value as people read it: a record by its number."""
        if value is None or value == ():
            return "nothing"
        kind = field.kind.result if isinstance(field.kind, ComputedKind) else field.kind
        if isinstance(kind, RefKind):
            ids = value if isinstance(value, tuple) else (value,)
            records = self.session.container(kind.to).records
            return "`" + ", ".join(records[i].number if i in records else str(i) for i in ids) + "`"
        return f"`{kind.text(value) if kind is not None else value}`"

    def clocks(self, record: Record, name: str, expected: Mapping[str, str]) -> None:
        found = {clock.name: clock.state for clock in clocks_of(self.session, record)}
        for clock, state in expected.items():
            if clock not in found:
                known = ", ".join(found) or "none"
                self.mismatch(("clocks", clock), f"a clock `{clock}` on {name}, but its clocks are: {known}"
                                                 + _hint(clock, found))
            elif found[clock] != state:
                self.mismatch(("clocks", clock), f"the clock `{clock}` of {name} to be {state}, found {found[clock]}")

    def approval(self, record: Record, name: str, expected: Any) -> None:
        chains = chains_on(self.session, record)
        spec = {"state": expected} if isinstance(expected, str) else dict(expected)
        state = spec.get("state")
        if state == "none":
            if chains:
                self.mismatch(("approval",), f"no approval on {name}, found " + ", ".join(
                    f"`{chain.chain}` {chain.state}" for chain in chains))
            return
        chain = self._chain(chains, spec.get("chain"), name)
        if chain is None:
            return
        if state is not None and chain.state != state:
            self.mismatch(("approval",), f"the approval `{chain.chain}` of {name} to be {state}, found {chain.state}"
                          + (f" (awaiting {', '.join(chain.awaiting)})" if chain.awaiting else ""))
        if "awaiting" in spec:
            awaited = spec["awaiting"] if isinstance(spec["awaiting"], list) else [spec["awaiting"]]
            if sorted(awaited) != sorted(chain.awaiting):
                self.mismatch(("approval", "awaiting"), f"the approval `{chain.chain}` of {name} to await "
                              f"{', '.join(awaited) or 'nobody'}, found {', '.join(chain.awaiting) or 'nobody'}")

    def _chain(self, chains: list[ChainView], wanted: str | None, name: str) -> ChainView | None:
        if wanted is not None:
            found = [chain for chain in chains if chain.chain == wanted]
            if not found:
                self.mismatch(("approval",), f"the approval `{wanted}` on {name}, found "
                              + (", ".join(f"`{chain.chain}`" for chain in chains) or "no approval"))
                return None
            return found[0]
        if not chains:
            self.mismatch(("approval",), f"an approval on {name}, found none")
            return None
        if len(chains) > 1:
            raise StepFailed(self.play.step.line("expect", "approval") if self.play.step else 1,
                             f"several approvals run on {name} ({', '.join(c.chain for c in chains)}): say which "
                             "with {chain: …, state: …}")
        return chains[0]

    def history(self, record: Record, name: str, expected: Any) -> None:
        lines = [_history_line(entry) for entry in record.history.entries]
        for index, words in enumerate(expected if isinstance(expected, list) else [expected]):
            words = self.play.with_numbers(words)
            if not any(words.lower() in line.lower() for line in lines):
                path = ("history", index) if isinstance(expected, list) else ("history",)
                self.mismatch(path, f"the history of {name} to say `{words}`; it says: " + " | ".join(lines))

    # -- who reads what ---------------------------------------------------------------------

    def readable(self, key: str, targets: Any, expected: bool) -> None:
        identity = self.session.identity
        for index, target in enumerate(targets if isinstance(targets, list) else [targets]):
            path = (key, index) if isinstance(targets, list) else (key,)
            reference, _, field_name = str(target).partition(".")
            record = self.play.record(self.session, reference, "expect", *path)
            typedef = self.session.definitions.type(record.type_name)
            if field_name:
                if field_name not in typedef.fields:
                    raise StepFailed(self.play.step.line("expect", *path) if self.play.step else 1,
                                     f"`{field_name}` is not a field of {typedef.title()}"
                                     + _hint(field_name, typedef.fields))
                found = may_read(self.session, identity, typedef, record) and \
                    field_name not in hidden_fields(identity, typedef, self.session.definitions)
            else:
                found = may_read(self.session, identity, typedef, record)
            if found != expected:
                shown = f"`{field_name}` of {reference}" if field_name else reference
                self.mismatch(path, f"{self.login} {'to be able' if expected else 'not to be able'} to read "
                                    f"{shown}, but {'they may not' if expected else 'they may'}")

    def counts(self, expected: Mapping[str, int]) -> None:
        for type_name, number in expected.items():
            try:
                found = self.session.count(type_name)
            except DeskbaseError as error:
                raise StepFailed(self.play.step.line("expect", "count", type_name) if self.play.step else 1,
                                 str(error)) from None
            if found != number:
                self.mismatch(("count", type_name), f"{number} {type_name} records{self.who}, found {found}")

    # -- messages ------------------------------------------------------------------------------

    def messages(self, expect: Mapping[str, Any]) -> None:
        """The messages queued since the last expectation about messages (or the start)."""
        seen = self.play.messages_seen
        queued = [m for m in reversed(list_messages(self.session, limit=ALL_MESSAGES)) if m.id not in seen]
        for index, spec in enumerate(expect.get("messages") or []):
            if not any(self.matches(message, spec) for message in queued):
                listed = "; ".join(_message_text(m) for m in queued) or "none"
                self.mismatch(("messages", index), f"a message {self.described(spec)}; the messages queued "
                                                   f"since the last look were: {listed}")
        for index, spec in enumerate(expect.get("no messages") or []):
            found = [m for m in queued if self.matches(m, spec)]
            if found:
                self.mismatch(("no messages", index), f"no message {self.described(spec)}, found: "
                                                      + "; ".join(_message_text(m) for m in found))
        self.play.messages_seen = seen | {message.id for message in queued}

    def matches(self, message: Message, spec: Mapping[str, str]) -> bool:
        if "to" in spec and self.address(spec["to"]).lower() not in [r.lower() for r in message.recipients]:
            return False
        if "subject" in spec and self.play.with_numbers(spec["subject"]).lower() not in message.subject.lower():
            return False
        if "containing" in spec:
            words = self.play.with_numbers(spec["containing"]).lower()
            if words not in message.subject.lower() and words not in message.body.lower():
                return False
        return True

    def address(self, to: str) -> str:
        """An address as written, or the address of the account of that login."""
        if "@" in to or to.startswith("+"):
            return to
        account = find_account(self.session.store, to)
        return account.email if account is not None and account.email else to

    def described(self, spec: Mapping[str, str]) -> str:
        parts = []
        if "to" in spec:
            address = self.address(spec["to"])
            parts.append(f"to {spec['to']}" + (f" ({address})" if address != spec["to"] else ""))
        if "subject" in spec:
            parts.append(f"whose subject says `{self.play.with_numbers(spec['subject'])}`")
        if "containing" in spec:
            parts.append(f"containing `{self.play.with_numbers(spec['containing'])}`")
        return " ".join(parts)


def _history_line(entry: Mapping[str, Any]) -> str:
    acting_for = entry.get("acting_for")
    if isinstance(acting_for, (list, tuple)):
        acting_for = ", ".join(acting_for)
    who = entry.get("by", "") + (f" for {acting_for}" if acting_for else "")
    line = f"{who} {entry.get('action', '')}" + (f" ({entry['reason']})" if entry.get("reason") else "")
    changes = entry.get("changes") or {}
    if changes:
        # Words and numbers as written; a reference (an id) or a moment (stored as ISO text)
        # would read wrong without its field, so only the field's name is said.
        line += ": " + ", ".join(name + (f" {_text(new)}" if _plain(new) else "")
                                 for name, (_, new) in changes.items())
    return line


def _plain(value: Any) -> bool:
    return isinstance(value, (str, bool)) and len(str(value)) <= 40 and not _ISO_MOMENT.match(str(value))


def _message_text(message: Message) -> str:
    return f"“{message.subject}” to {', '.join(message.recipients)}"


def _comparable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _text(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _written(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {_written(item)}" for key, item in value.items()) + "}"
    return _text(value)


def _hint(name: str, known: Any) -> str:
    hint = hint_for(name, list(known))
    return f"; {hint}" if hint else ""
