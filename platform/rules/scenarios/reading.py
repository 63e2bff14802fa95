"""Scenario files: what a consultant writes to prove a promise of an application — given some
records and accounts, when people act, mail arrives or time passes, then fields, states, who
may read what and the messages queued are as stated. Read with the positions of every value
(a failure names its file and line) and checked against the schema below."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deskbase.objects import metaschema
from deskbase.objects.compiling import definition_error
from deskbase.objects.errors import DefinitionError, DefinitionErrors, DeskbaseError, hint_for
from deskbase.objects.sourcemap import DocPath, SourceMap, read_yaml

# What a step does: one of these keywords, with the keywords that may go with it.
ACTIONS: Mapping[str, frozenset[str]] = {
    "create": frozenset({"as", "values", "name", "refused"}),
    "update": frozenset({"as", "values", "refused"}),
    "fire": frozenset({"as", "record", "inputs", "refused"}),
    "approve": frozenset({"as", "chain", "comment", "price", "refused"}),
    "reject": frozenset({"as", "chain", "comment", "refused"}),
    "time passes": frozenset(),
    "mail arrives": frozenset({"refused"}),
    "expect": frozenset(),
}
CLOCK_STATES = ("waiting", "running", "paused", "met", "breached")
APPROVAL_STATES = ("pending", "approved", "rejected", "expired", "none")

_NAME = {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_-]*$",
         "x-noun": "a name such as `jam` (letters, digits, `_` and `-`)"}
_LOGIN = {"type": "string", "x-noun": "the login of an account, such as sbernard"}
_RECORD = {"type": "string", "x-noun": "a record: a name given earlier in the scenario, or a number such as T-000001"}
_WORDS = {"type": "string", "x-noun": "words that the text contains"}
_SOME_RECORDS = {"type": ["string", "array"], "items": {"type": "string"},
                 "x-noun": "a record (`jam`), a record's field (`jam.total_time`), or a list of them"}
_VALUES = {"type": "object", "x-noun": "a map of field names to values, such as {title: Printer jams}"}
_MESSAGE = {
    "type": "object", "minProperties": 1,
    "x-noun": "a message: a map such as {to: carl@example.org, containing: T-000001}",
    "x-member": "a part of a message (to, subject, containing)",
    "properties": {"to": {"type": "string", "x-noun": "an address, or the login of an account"},
                   "subject": _WORDS, "containing": _WORDS},
    "additionalProperties": False,
}
_MESSAGES = {"type": "array", "items": _MESSAGE, "x-noun": "a list of messages such as [{to: …, containing: …}]"}
_EXPECT = {
    "type": "object", "minProperties": 1,
    "x-noun": "what is expected: a map such as {record: jam, fields: {status: in_progress}}",
    "x-member": "something a step may expect (record, name, fields, clocks, approval, history, as, can_read, "
                "cannot_read, count, messages, no messages)",
    "properties": {
        "record": {"type": ["string", "object"], "minProperties": 1, "maxProperties": 1,
                   "x-noun": "a record: a name, a number, or {type: filter} finding exactly one"},
        "name": _NAME,
        "fields": {"type": "object", "x-noun": "a map of field names to the values expected"},
        "clocks": {"type": "object", "x-noun": "a map of clocks to their states, such as {resolution: paused}",
                   "additionalProperties": {"enum": list(CLOCK_STATES), "x-noun": "the state of a clock"}},
        "approval": {"type": ["string", "object"], "x-noun": "an approval state such as pending, or "
                                                             "{chain: …, state: …, awaiting: […]}",
                     "properties": {"chain": {"type": "string"},
                                    "state": {"enum": list(APPROVAL_STATES), "x-noun": "the state of an approval"},
                                    "awaiting": {"type": ["string", "array"], "items": _LOGIN,
                                                 "x-noun": "a login or a list of logins"}},
                     "additionalProperties": False, "x-member": "a part of an approval (chain, state, awaiting)"},
        "history": {"type": ["string", "array"], "items": _WORDS,
                    "x-noun": "words of the record's history, or a list of them"},
        "as": _LOGIN,
        "can_read": _SOME_RECORDS,
        "cannot_read": _SOME_RECORDS,
        "count": {"type": "object", "x-noun": "a map of types to how many records, such as {request: 3}",
                  "additionalProperties": {"type": "integer", "minimum": 0, "x-noun": "a number of records"}},
        "messages": _MESSAGES,
        "no messages": _MESSAGES,
    },
    "additionalProperties": False,
}
_MAIL = {
    "type": "object", "required": ["from"],
    "x-noun": "a message: a map such as {from: carl@example.org, subject: Printer jams, body: …}",
    "x-member": "a part of a message that arrives (from, to, subject, body, replying to, mailbox, name)",
    "properties": {"from": {"type": "string", "x-noun": "an address, optionally with a name: Carl <carl@…>"},
                   "to": {"type": "string", "x-noun": "an address"},
                   "subject": {"type": "string"}, "body": {"type": "string"},
                   "replying to": _RECORD, "mailbox": {"type": "string", "x-noun": "a mailbox of the definitions"},
                   "name": _NAME},
    "additionalProperties": False,
}
_STEP = {
    "type": "object",
    "x-noun": "a step: a map such as {as: sbernard, fire: take, record: jam}",
    "x-member": "a keyword of a step (" + ", ".join([*ACTIONS, "as", "record", "values", "inputs", "name",
                                                      "chain", "comment", "price", "refused"]) + ")",
    "properties": {
        "as": _LOGIN,
        "create": {"type": "string", "x-noun": "a type name"},
        "update": _RECORD,
        "fire": {"type": "string", "x-noun": "a transition name"},
        "approve": _RECORD,
        "reject": _RECORD,
        "record": _RECORD,
        "values": _VALUES,
        "inputs": {"type": "object", "x-noun": "a map of the transition's inputs, such as {time_spent: 15m}"},
        "name": _NAME,
        "chain": {"type": "string", "x-noun": "an approval chain's name"},
        "comment": {"type": "string"},
        "price": {"type": ["string", "number"], "x-noun": "a price"},
        "refused": {"type": ["string", "boolean"], "x-noun": "words of the refusal, or true"},
        "time passes": {"type": "string", "x-noun": "a duration such as 2h or 3d, or `until 2026-04-01 08:00`"},
        "mail arrives": _MAIL,
        "expect": _EXPECT,
    },
    "additionalProperties": False,
}
SCHEMA = {
    "type": "object", "required": ["scenario", "steps"],
    "x-noun": "a scenario: a map with scenario, given and steps",
    "x-member": "a part of a scenario (scenario, given, steps)",
    "properties": {
        "scenario": {"type": "string", "x-noun": "a sentence saying what the scenario proves"},
        "given": {
            "type": "object", "x-noun": "a map with now, demo, accounts and records",
            "x-member": "something a scenario may be given (now, demo, accounts, records)",
            "properties": {
                "now": {"type": "string", "x-noun": "a moment such as 2026-03-02 09:00 (or 2026-03-02 09:00 "
                                                    "Europe/Paris)"},
                "demo": {"type": "boolean", "x-noun": "true or false"},
                "accounts": {"type": "object", "x-noun": "a map of logins to accounts",
                             "additionalProperties": {
                                 "type": "object", "x-noun": "an account: a map such as {roles: [agent]}",
                                 "x-member": "a setting of an account (name, roles, email, groups, organization, "
                                             "language)",
                                 "properties": {"name": {"type": "string"},
                                                "roles": {"type": "array", "items": {"type": "string"},
                                                          "x-noun": "a list of roles"},
                                                "email": {"type": "string", "x-noun": "an address"},
                                                "groups": {"type": "array", "items": {"type": "string"},
                                                           "x-noun": "a list of records named in `records`"},
                                                "organization": {"type": "string",
                                                                 "x-noun": "a record named in `records`"},
                                                "language": {"type": "string", "x-noun": "a language code"}},
                                 "additionalProperties": False}},
                "records": {"type": "object", "x-noun": "a map of names to records, such as "
                                                        "{acme: {organization: {name: Acme}}}",
                            "propertyNames": _NAME,
                            "additionalProperties": {"type": "object", "minProperties": 1, "maxProperties": 1,
                                                     "x-noun": "a record: a one-key map from its type to its "
                                                               "values, such as {organization: {name: Acme}}",
                                                     "additionalProperties": _VALUES}},
            },
            "additionalProperties": False,
        },
        "steps": {"type": "array", "minItems": 1, "items": _STEP, "x-noun": "a list of steps"},
    },
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Step:
    """One step of a scenario: its number (from 1), its keywords as written and where each is."""

    number: int
    action: str
    data: Mapping[str, Any]
    positions: SourceMap

    def line(self, *path: Any) -> int:
        """The line of a keyword of the step (or of the step itself)."""
        return self.positions.locate(path).line


@dataclass(frozen=True)
class Scenario:
    """A scenario file, read and checked."""

    title: str
    file: str
    given: Mapping[str, Any]
    given_positions: SourceMap
    steps: tuple[Step, ...]

    def given_line(self, *path: Any) -> int:
        return self.given_positions.locate(path).line


class StepFailed(DeskbaseError):
    """A step that did not go as written: the line it points at and what happened (`also`:
    the other mismatches of the same step, each with its line)."""

    def __init__(self, line: int, message: str, also: tuple[tuple[int, str], ...] = ()):
        self.line, self.message, self.also = line, message, also
        super().__init__(message)


@dataclass
class Failure:
    """A failed step of a scenario, as a person reads it: `file:line: step N …`."""

    file: str
    line: int
    step: int | None
    message: str

    def __str__(self) -> str:
        if self.step is None:
            return f"{self.file}:{self.line}: {self.message}"
        joined = " " if self.message.startswith(("expects ", "could not ")) else ": "
        return f"{self.file}:{self.line}: step {self.step}{joined}{self.message}"


def read_scenario(path: str | Path) -> Scenario:
    """The scenario of a file; DefinitionErrors naming file, line and column of every mistake."""
    document, errors = read_yaml(path)
    if document is None:
        raise DefinitionErrors(errors)
    errors += metaschema.validate(document.data, document.positions, SCHEMA)
    if not errors:
        for index, step in enumerate(document.data["steps"]):
            errors += _step_errors(step, ("steps", index), document.positions)
    if errors:
        raise DefinitionErrors(errors)
    data, positions = document.data, document.positions
    steps = tuple(Step(index + 1, _action(step), step, positions.child("steps").child(index))
                  for index, step in enumerate(data["steps"]))
    return Scenario(data["scenario"], str(path), data.get("given") or {},
                    positions.child("given") or SourceMap(positions.at), steps)


def _action(step: Mapping[str, Any]) -> str:
    return next(key for key in step if key in ACTIONS)


def _step_errors(step: Mapping[str, Any], path: DocPath, positions: SourceMap) -> list[DefinitionError]:
    """A step does one thing, with only the keywords that go with it."""
    actions = [key for key in step if key in ACTIONS]
    if len(actions) != 1:
        said = "does nothing" if not actions else f"does {len(actions)} things ({', '.join(actions)})"
        return [definition_error(positions, path, f"this step {said}: a step does one of "
                                                  f"{', '.join(ACTIONS)}", "write one step per action")]
    action = actions[0]
    allowed = ACTIONS[action]
    errors = [definition_error(positions, path + (key,), f"`{key}` does not go with `{action}`"
                               + (f"; `{action}` takes {', '.join(sorted(allowed))}" if allowed else ""),
                               hint_for(key, allowed), on_key=True)
              for key in step if key != action and key not in allowed]
    if action == "fire" and "record" not in step:
        errors.append(definition_error(positions, path + ("fire",), "`fire` needs `record`: the record the "
                                                                     "transition is fired on"))
    if action == "expect":
        errors += _expect_errors(step["expect"], path + ("expect",), positions)
    return errors


def _expect_errors(expect: Mapping[str, Any], path: DocPath, positions: SourceMap) -> list[DefinitionError]:
    errors = []
    for key in ("name", "fields", "clocks", "approval", "history"):
        if key in expect and "record" not in expect:
            errors.append(definition_error(positions, path + (key,), f"`{key}` needs `record`: the record "
                                                                     "it is about", on_key=True))
    approval = expect.get("approval")
    if isinstance(approval, str) and approval not in APPROVAL_STATES:
        errors.append(definition_error(positions, path + ("approval",), f"`{approval}` is not an approval state: "
                                       f"{', '.join(APPROVAL_STATES)}", hint_for(approval, APPROVAL_STATES)))
    for key in ("can_read", "cannot_read"):
        if key in expect and "as" not in expect:
            errors.append(definition_error(positions, path + (key,), f"`{key}` needs `as`: the account "
                                                                     "who reads", on_key=True))
    return errors


def scenario_files(folders: Iterable[str | Path]) -> list[Path]:
    """The scenario files beside definitions or overlay folders: `scenarios/*.yaml` of each,
    folder by folder, in name order."""
    found: list[Path] = []
    for folder in folders:
        place = Path(folder) / "scenarios"
        if place.is_dir():
            found += sorted(path for path in place.iterdir() if path.suffix == ".yaml" and path.is_file())
    return found
