"""Workflows (P3): the states of a type's enum field, the transitions between them (who may
fire them, guards, inputs, effects), automatic transitions fired on events, and the
write-path checks that keep the state field in the workflow's hands."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field as _field
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from deskbase.objects.compiling import Section, check_expression, definition_error, filter_errors, offer_errors
from deskbase.objects.errors import DefinitionError, DeskbaseError, FieldError, hint_for
from deskbase.objects.expressions import ExpressionError, evaluate
from deskbase.objects.fields import (
    BooleanKind,
    DateKind,
    DateTimeKind,
    DecimalKind,
    DurationKind,
    EnumKind,
    IntegerKind,
    Kind,
    RefKind,
    StringKind,
    TextKind,
    UserKind,
    label_text,
)
from deskbase.objects.frozen import freeze, freeze_plain
from deskbase.objects.metaschema import OFFER
from deskbase.objects.model import FROZEN_EMPTY, Definitions, TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session
from deskbase.objects.sourcemap import format_path
from deskbase.objects.write_path import Change
from deskbase.rules.access.identity import is_system
from deskbase.rules.access.scopes import AccessDenied, decide
from deskbase.rules.documents import making as documents, section as document_section

from . import merging
from .triggers import Trigger, compile_trigger, triggered

GUARD_NAMES = ("record", "me", "now", "today")
WORDS = ("$me", "$now", "$today")   # besides $input.<name> and $record.<field>
# Other rules that hold a person's transition back (an approval chain's `blocks`): each
# `check(session, record, transition_name)` returns the sentence of a refusal, or None.
# They are the store's extension of this name, given by `rules.application.open_store`; the
# engine's own firing (fire_as_system) is not held.
TRANSITION_CHECKS = "transition_checks"
TransitionCheck = Callable[[Session, Record, str], "str | None"]


class TransitionRefused(DeskbaseError):
    """A transition that cannot be fired now; `reason` is the sentence, `fields` the inputs
    refused one by one (input → why) when the refusal is about inputs."""

    def __init__(self, transition: str, reason: str, fields: Mapping[str, str] | None = None):
        self.transition, self.reason, self.fields = transition, reason, dict(fields or {})
        text = reason + "".join(f"\n  {name}: {why}" for name, why in self.fields.items())
        super().__init__(text)


# -- compiled definitions ------------------------------------------------------------------

@dataclass(frozen=True)
class Input:
    """A value asked when a transition is fired, such as the time spent."""

    name: str
    kind: Kind
    required: bool = False
    label: Any = None
    offer: Any = None        # a user input's {roles, count}: whom it offers as a name is typed

    def title(self, language: str = "en") -> str:
        return label_text(self.label, language, self.name.replace("_", " "))


@dataclass(frozen=True)
class Transition:
    """One transition: from which states to which, who may fire it and what it does."""

    name: str
    label: Any
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...] | None = None      # None: whoever may update the record
    guard: str | None = None
    guard_message: Any = None
    inputs: Mapping[str, Input] = _field(default_factory=lambda: FROZEN_EMPTY)
    set: Mapping[str, Any] = _field(default_factory=lambda: FROZEN_EMPTY)
    effects: tuple[tuple[str, Any], ...] = ()   # (effect kind, its compiled spec), in YAML order
    trigger: Trigger | None = None              # set for automatic transitions
    then: Mapping[str, Any] | None = None       # {answer: <type>, values: {...}}: offered once fired
    confirm: Any = None                         # a question asked before it is fired, in each language

    def title(self, language: str = "en") -> str:
        return label_text(self.label, language, self.name.replace("_", " "))


@dataclass(frozen=True)
class Workflow:
    """The workflow of one type: its state field, initial and locked states, transitions."""

    type_name: str
    field: str
    initial: str
    states: tuple[str, ...]
    locked: frozenset[str]
    transitions: Mapping[str, Transition]
    automatic: Mapping[str, Transition]


@dataclass(frozen=True)
class Workflows:
    """Every workflow by type, and the automatic transitions by the type whose creation fires them."""

    by_type: Mapping[str, Workflow] = _field(default_factory=lambda: FROZEN_EMPTY)
    triggers: Mapping[str, tuple[tuple[Workflow, Transition], ...]] = _field(default_factory=lambda: FROZEN_EMPTY)


# -- effects -------------------------------------------------------------------------------

@dataclass(frozen=True)
class EffectKind:
    """Something a transition does besides `set`, keyed in YAML by its name (`create`; later
    notifications and timers): `schema` is its JSON-schema fragment, `check(spec, context)`
    returns its compiled spec and its problems (DefinitionErrors), and
    `apply(session, record, compiled, resolve)` does it, `resolve` turning $-words into values."""

    schema: Mapping[str, Any]
    check: Callable[[Any, "_CheckContext"], tuple[Any, list[DefinitionError]]]
    apply: Callable[[Session, Record, Any, Callable[[Any], Any]], None]


@dataclass(frozen=True)
class _CheckContext:
    definitions: Definitions
    positions: Any
    path: tuple
    typedef: TypeDef
    inputs: Mapping[str, Input]


@dataclass(frozen=True)
class RecordToCreate:
    """One entry of a `create` effect: a record of `type` with `values` — or, with `source`
    (a type and a filter that may name `$record.<field>`), one for each record it finds
    (and for which the expression `source_when` holds), whose fields the values read as
    `$from.<field>`; made only when the record the effect runs on matches `when`.
    `$created.<field>` reads the last single record made before; a value written `= …` is
    an expression over `record`, `source` and `created`. With `keep_document`, the document
    of that name is made of each record the entry made and kept in the document's
    `attach_to` field — once every entry of the effect is done, so it also shows the records
    later entries made for it (the lines of an order made after the order)."""

    type: str
    values: Mapping[str, Any]
    source_type: str | None = None
    source_filter: Any = None
    source_sort: str = "id"
    when: Any = None
    source_when: str | None = None          # an expression over `record` and `source`
    keep_document: str | None = None        # a document of `type`, kept in its `attach_to` field


def _check_create(spec: Any, context: "_CheckContext") -> tuple[Any, list[DefinitionError]]:
    errors: list[DefinitionError] = []
    compiled = []
    made: TypeDef | None = None
    for position, entry in enumerate(spec):
        path = context.path + (position,)
        type_name = entry.get("type")
        if type_name not in context.definitions.types:
            errors.append(definition_error(context.positions, path + ("type",), f"`{type_name}` is not a type",
                                           hint_for(type_name, context.definitions.types)))
            continue
        target = context.definitions.types[type_name]
        source = entry.get("from") or {}
        source_type = context.definitions.types.get(source.get("type")) if source else None
        if source and source_type is None:
            errors.append(definition_error(context.positions, path + ("from", "type"),
                                           f"`{source.get('type')}` is not a type",
                                           hint_for(source.get("type"), context.definitions.types)))
            continue
        if source_type is not None and source.get("filter") is not None:
            errors += filter_errors(source["filter"], source_type, path + ("from", "filter"), context.positions,
                                    context.typedef)
        if entry.get("when") is not None:
            errors += filter_errors(entry["when"], context.typedef, path + ("when",), context.positions)
        for where, text in ((path + ("from", "when"), source.get("when")),
                            *((path + ("values", n), v) for n, v in (entry.get("values") or {}).items())):
            if isinstance(text, str) and (text.startswith("=") or where[-1] == "when"):
                try:
                    check_expression(text.lstrip("="), names=CREATE_NAMES, at=context.positions.locate(where),
                                     path=format_path(where))
                except DefinitionError as error:
                    errors.append(error)
        values = entry.get("values") or {}
        for name, value in values.items():
            if name not in target.own_fields:
                errors.append(definition_error(context.positions, path + ("values", name),
                                               f"`{name}` is not a field of type `{type_name}`",
                                               hint_for(name, target.own_fields), on_key=True))
            if isinstance(value, str) and value.startswith("="):
                continue                               # an expression: checked above
            head, _, field_name = value.partition(".") if isinstance(value, str) else ("", "", "")
            if head in ("$from", "$created"):
                read = source_type if head == "$from" else made
                if read is None:
                    errors.append(definition_error(context.positions, path + ("values", name),
                                                   f"`{value}`: there is no " + (
                                                       "`from:` in this entry" if head == "$from" else
                                                       "record made before this entry")))
                elif field_name not in read.fields:
                    errors.append(definition_error(context.positions, path + ("values", name),
                                                   f"`{field_name}` is not a field of type `{read.name}`",
                                                   hint_for(field_name, read.fields)))
                continue
            errors += _check_value(value, context, path + ("values", name))
        if entry.get("keep_document") is not None:
            errors += document_section.check_effect(entry["keep_document"], context.definitions, context.positions,
                                             path + ("keep_document",), target)[1]
        compiled.append(RecordToCreate(type_name, MappingProxyType(dict(values)),
                                       source_type.name if source_type else None,
                                       freeze_plain(source["filter"]) if source.get("filter") is not None else None,
                                       str(source.get("sort") or "id"),
                                       freeze_plain(entry["when"]) if entry.get("when") is not None else None,
                                       source.get("when"), entry.get("keep_document")))
        if source_type is None:
            made = target
    return tuple(compiled), errors


def stored_as_given(session: Session, record: Record, name: str) -> Any:
    """A stored value as it would be given to the write path again: a duration is kept in
    seconds but a bare number given means minutes, so it travels as a timedelta."""
    value = record.get(name)
    field = session.definitions.type(record.type_name).fields.get(name)
    if field is not None and isinstance(getattr(field.kind, "result", field.kind), DurationKind) \
            and isinstance(value, int):
        return timedelta(seconds=value)
    return value


CREATE_NAMES = ("record", "source", "created", "now", "today")    # what a `create` expression may read


def _apply_create(session: Session, record: Record, spec: Any, resolve: Callable[[Any], Any]) -> None:
    create_records(session, record, spec, resolve)


def create_records(session: Session, record: Record, spec: Sequence[RecordToCreate],
                   resolve: Callable[[Any], Any]) -> list[Record]:
    """Make the records of a `create` effect for `record`, then the documents its entries keep
    of them; the records made, in order."""
    typedef = session.definitions.type(record.type_name)
    context = session.context(record.values)
    created: Record | None = None
    made: list[Record] = []
    to_keep: list[tuple[Record, str]] = []
    for entry in spec:
        if entry.when is not None and not session.store.compiled_filter(entry.when, typedef.name).matches(
                record.values, typedef, context):
            continue
        sources: list[Record | None] = [None]
        if entry.source_type is not None:
            sources = session.query(entry.source_type, entry.source_filter, entry.source_sort, limit=None,
                                    context=context, record_type=typedef.name).records
        for source in sources:
            names = {"record": record.values, "source": source.values if source is not None else None,
                     "created": created.values if created is not None else None,
                     "now": session.now, "today": session.today}
            if entry.source_when and not evaluate(entry.source_when, names):
                continue

            def value_of(value: Any, source: Record | None = source, names=names) -> Any:
                if isinstance(value, str) and value.startswith("="):
                    return evaluate(value[1:], names)
                head, _, name = value.partition(".") if isinstance(value, str) else ("", "", "")
                if head == "$from":
                    return stored_as_given(session, source, name)
                if head == "$created":
                    return stored_as_given(session, created, name) if created is not None else None
                return resolve(value)
            one = session.create(entry.type, {name: value_of(value) for name, value in entry.values.items()})
            made.append(one)
            if entry.keep_document is not None:
                to_keep.append((one, entry.keep_document))
            if entry.source_type is None:
                created = one
    # Made last: a document lists what later entries made for its record (its lines).
    for one, name in to_keep:
        documents.apply_effect(session, one, (name,))
    return made


EFFECTS: Mapping[str, EffectKind] = MappingProxyType({
    "create": EffectKind(
        {"type": "array", "x-noun": "a list of records to create, such as [{type: work_entry, values: {...}}]",
         "description": "records created in the same transaction, through the ordinary write path",
         "items": {"type": "object", "x-noun": "a record to create: {type: <type>, values: {...}}",
                   "x-member": "a setting of a record to create (type, values, from, when, keep_document)",
                   "required": ["type"],
                   "properties": {"type": {"type": "string", "x-noun": "a type name",
                                           "description": "the type of the record"},
                                  "values": {"type": "object", "x-noun": "a map of field values",
                                             "description": "its field values: literals, $me, $now, $input.<name>, "
                                                            "$record.<field>, $from.<field>, or `= expression`"},
                                  # one record for each record found: {type: line, filter: {order: $record.id}}
                                  "from": {"type": "object", "required": ["type"],
                                           "x-noun": "the records to make one for: {type: <type>, filter: {...}}",
                                           "x-member": "a setting of `from` (type, filter, sort, when)",
                                           "description": "the records to make one record for each of",
                                           "properties": {"type": {"type": "string", "x-noun": "a type name",
                                                                  "description": "the type of the records found"},
                                                          "filter": {"type": "object", "x-noun": "a filter",
                                                                     "description": "a filter on them; $record.<field> "
                                                                                    "reads the record"},
                                                          "sort": {"type": "string", "x-noun": "a sort",
                                                                   "description": "the order they are taken in"},
                                                          "when": {"type": "string",
                                                                   "x-noun": "an expression over record and source",
                                                                   "description": "an expression over record and "
                                                                                  "source: only those for which it "
                                                                                  "is true"}},
                                           "additionalProperties": False},
                                  "when": {"type": "object", "x-noun": "a filter on the record",
                                           "description": "a filter on the record: the entry is made only when "
                                                          "it matches"},
                                  # the PDF of a document of the record made, kept in its attach_to field
                                  "keep_document": {"type": "string", "x-noun": "a document name",
                                                    "description": "a document of the record made, whose PDF is "
                                                                   "kept in its attach_to field"}},
                   "additionalProperties": False}},
        _check_create, _apply_create),
    # Make documents (documents.py) and keep their PDF in their `attach_to` field.
    "attach_document": EffectKind(
        document_section.EFFECT_SCHEMA,
        lambda spec, context: document_section.check_effect(spec, context.definitions, context.positions, context.path,
                                                     context.typedef),
        lambda session, record, names, resolve: documents.apply_effect(session, record, names)),
    # Merge a duplicate into another record (merging.py): its children move there.
    "merge": EffectKind(merging.SCHEMA, merging.check, merging.apply),
})


# -- the `workflow:` section of a type -----------------------------------------------------

_LABEL = {"type": ["string", "object"], "x-noun": "a label: a text or a map of languages such as {en: Take}",
          "description": "what people read for it, such as {en: Take, fr: Prendre en charge}"}
_STATES = {"type": "array", "items": {"type": "string", "x-noun": "a state"}, "x-noun": "a list of states"}
_SOURCES = {**_STATES, "minItems": 1, "description": "the states it may be fired from"}
_INPUT = {
    "type": "object", "x-noun": "an input: a map such as {kind: duration, required: true}",
    "x-member": "a setting of an input (kind, required, label, values)",
    "required": ["kind"],
    "properties": {"kind": {"type": "string", "x-noun": "a kind", "description": "its kind, such as duration"},
                   "required": {"type": "boolean", "x-noun": "true or false",
                                "description": "whether the transition asks it before it is fired"},
                   "to": {"type": "string", "x-noun": "a type name: the records a ref input names",
                          "description": "for a ref input, the type of the record it names"},
                   "label": _LABEL,
                   "values": {"type": "array", "items": {"type": "string"}, "x-noun": "a list of values",
                              "description": "for an enum input, its values"},
                   "offer": OFFER | {"description": "for a user input, whom the form offers"}},
    "additionalProperties": False,
}
_COMMON = {"label": _LABEL, "from": _SOURCES, "to": {"type": "string", "x-noun": "a state",
                                                    "description": "the state it leads to"},
           "inputs": {"type": "object", "additionalProperties": _INPUT, "x-noun": "a map of inputs",
                      "description": "values asked when it is fired, by name, used as $input.<name>"},
           "set": {"type": "object", "x-noun": "a map of field values such as {assignee: $me}",
                   "description": "fields changed with the state, such as {assignee: $me}"}}
_TRANSITION = {
    "type": "object", "x-noun": "a transition: a map such as {from: [new], to: open}",
    "x-member": "a setting of a transition",
    "required": ["from", "to"],
    "properties": {**_COMMON,
                   "roles": {"type": "array", "items": {"type": "string"}, "x-noun": "a list of roles",
                             "description": "the roles that may fire it (without it, whoever may update the record)"},
                   "guard": {"type": "string", "x-noun": "an expression such as `record.group`",
                             "description": "an expression over record, me, now and today; false refuses the "
                                            "transition"},
                   "guard_message": _LABEL | {"description": "the sentence a person reads when the guard refuses"},
                   # A question the person answers before it is fired (it cannot be undone).
                   "confirm": _LABEL | {"description": "a question asked before it is fired, for what cannot be "
                                                       "undone"},
                   # What the person is offered once they fired it: a record to answer (a
                   # satisfaction question), the values of `values` fixed, as a signed link offers it.
                   "then": {"type": "object", "required": ["answer"],
                            "x-noun": "a map such as {answer: rating, values: {order: $record.id}}",
                            "x-member": "a setting of `then` (answer, values)",
                            "description": "a record offered to answer once it is fired, such as a satisfaction "
                                           "question",
                            "properties": {"answer": {"type": "string", "x-noun": "a type name",
                                                      "description": "the type of the record to answer"},
                                           "values": {"type": "object", "x-noun": "a map of field values",
                                                      "description": "its fixed values, such as {task: $record.id}"},
                                           "roles": {"type": "array", "items": {"type": "string"},
                                                     "x-noun": "a list of the roles it is offered to",
                                                     "description": "the roles it is offered to"}},
                            "additionalProperties": False},
                   **{name: dict(effect.schema) for name, effect in EFFECTS.items()}},
    "additionalProperties": False,
}
_AUTOMATIC = {
    "type": "object", "x-noun": "an automatic transition: a map with on, from and to",
    "x-member": "a setting of an automatic transition",
    "required": ["on", "from", "to"],
    "properties": {"label": _LABEL, "from": _SOURCES, "to": _COMMON["to"], "set": _COMMON["set"],
                   "on": {"type": "object", "x-noun": "an event such as {create: reply, via: request}",
                          "x-member": "a setting of an event (create, via, where)",
                          "description": "the event that fires it: a record of a type created that points at this one",
                          "required": ["create", "via"],
                          "properties": {"create": {"type": "string", "x-noun": "a type name",
                                                    "description": "the type of the record created"},
                                         "via": {"type": "string", "x-noun": "a field name",
                                                 "description": "its ref field pointing at this type"},
                                         "where": {"type": "object", "x-noun": "a filter",
                                                   "description": "a filter the created record must match"}},
                          "additionalProperties": False},
                   **{name: dict(effect.schema) for name, effect in EFFECTS.items()}},
    "additionalProperties": False,
}
_SCHEMA = {
    "type": "object",
    "x-noun": "a workflow: a map with field, initial and transitions",
    "description": "the states of an enum field, and the transitions that move a record between them",
    "x-member": "a setting of a workflow (field, initial, locked, transitions, automatic)",
    "required": ["field", "initial"],
    "properties": {
        "field": {"type": "string", "x-noun": "a field name", "description": "the enum field holding the state"},
        "initial": {"type": "string", "x-noun": "a state", "description": "the state of a new record"},
        "locked": _STATES | {"description": "states in which a record takes no ordinary update, only transitions"},
        "transitions": {"type": "object", "additionalProperties": _TRANSITION, "x-noun": "a map of transitions",
                        "description": "the transitions people fire, by name",
                        "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "a transition name"}},
        "automatic": {"type": "object", "additionalProperties": _AUTOMATIC, "x-noun": "a map of transitions",
                      "description": "the transitions the engine fires when a related record is created, by name",
                      "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "a transition name"}},
    },
    "additionalProperties": False,
}

def state_lists(document: Mapping[str, Any]) -> dict[tuple[str, ...], str]:
    """Where a definitions document lists each workflow's states (the values of its state
    field), to call them states in sentences about the definitions."""
    found: dict[tuple[str, ...], str] = {}
    for type_name, spec in (document.get("types") or {}).items():
        workflow = spec.get("workflow") if isinstance(spec, Mapping) else None
        if isinstance(workflow, Mapping) and isinstance(workflow.get("field"), str):
            found[("types", type_name, "fields", workflow["field"], "values")] = "state"
    return found


_INPUT_KINDS: Mapping[str, Callable[[Mapping[str, Any], str], Kind]] = MappingProxyType({
    "string": lambda spec, zone: StringKind(), "text": lambda spec, zone: TextKind(),
    "integer": lambda spec, zone: IntegerKind(), "decimal": lambda spec, zone: DecimalKind(),
    "boolean": lambda spec, zone: BooleanKind(), "date": lambda spec, zone: DateKind(),
    "datetime": lambda spec, zone: DateTimeKind(zone=zone), "duration": lambda spec, zone: DurationKind(),
    "user": lambda spec, zone: UserKind(),
    "ref": lambda spec, zone: RefKind(to=str(spec.get("to") or "")),   # by number or title
    "enum": lambda spec, zone: EnumKind(values=tuple(spec.get("values") or ())),
})


def _check_value(value: Any, context: _CheckContext, path: tuple) -> list[DefinitionError]:
    """The problem of a `$`-word written as a value in `set` or `create`."""
    if isinstance(value, (list, tuple)):
        return [e for position, item in enumerate(value) for e in _check_value(item, context, path + (position,))]
    if not isinstance(value, str) or not value.startswith("$") or value.startswith("$$") or value in WORDS:
        return []
    head, _, name = value.partition(".")
    if head == "$input":
        if name not in context.inputs:
            return [definition_error(context.positions, path, f"`{value}` names no input of this transition",
                                     hint_for(name, context.inputs) or "declare it under `inputs`")]
        return []
    if head == "$record":
        if name not in context.typedef.fields:
            return [definition_error(context.positions, path, f"`{name}` is not a field of type "
                                                              f"`{context.typedef.name}`",
                                     hint_for(name, context.typedef.fields))]
        return []
    return [definition_error(context.positions, path, f"`{value}` is not a value a transition knows",
                             hint_for(value, WORDS) or "use $me, $now, $today, $input.<name> or $record.<field>")]


def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[Workflows, list[DefinitionError]]:
    errors: list[DefinitionError] = []
    by_type: dict[str, Workflow] = {}
    triggers: dict[str, list[tuple[Workflow, Transition]]] = {}
    for type_name, spec in (document.get("types") or {}).items():
        workflow_spec = spec.get("workflow") if isinstance(spec, Mapping) else None
        page = definitions.types[type_name].page if type_name in definitions.types else None
        if not workflow_spec and page is not None and page.get("diagram") is not None:
            errors.append(definition_error(positions, ("types", type_name, "page", "diagram"),
                                           f"the diagram draws the workflow of `{type_name}`, which has none",
                                           "add a `workflow:` to the type or remove `diagram`", on_key=True))
        if not workflow_spec:
            continue
        workflow = _compile_workflow(type_name, workflow_spec, positions, definitions, errors)
        if workflow is None:
            continue
        by_type[type_name] = workflow
        for transition in workflow.automatic.values():
            assert transition.trigger is not None, "an automatic transition has its trigger, or its workflow is None"
            triggers.setdefault(transition.trigger.type, []).append((workflow, transition))
    return Workflows(MappingProxyType(by_type),
                     MappingProxyType({k: tuple(v) for k, v in triggers.items()})), errors


def _compile_workflow(type_name: str, spec: Mapping[str, Any], positions, definitions: Definitions,
                      errors: list[DefinitionError]) -> Workflow | None:
    path = ("types", type_name, "workflow")
    typedef = definitions.types[type_name]
    field_name = spec["field"]
    field = typedef.own_fields.get(field_name)
    if field is None or not isinstance(field.kind, EnumKind):
        message = (f"`{field_name}` is not a field of type `{type_name}`" if field is None else
                   f"`{field_name}` is a {field.kind.name} field; the states of a workflow are the values "
                   f"of an enum field")
        errors.append(definition_error(positions, path + ("field",), message,
                                       hint_for(field_name, [n for n, f in typedef.own_fields.items()
                                                             if isinstance(f.kind, EnumKind)])))
        return None
    states = field.kind.values
    before = len(errors)

    def state(value: Any, where: tuple) -> None:
        if value not in states:
            errors.append(definition_error(positions, where, f"`{value}` is not a state of `{field_name}`: "
                                                             f"{', '.join(states)}", hint_for(str(value), states)))

    state(spec["initial"], path + ("initial",))
    if field.default is not None and field.default != spec["initial"]:
        errors.append(definition_error(positions, ("types", type_name, "fields", field_name, "default"),
                                       f"the default `{field.default}` differs from the workflow's initial state "
                                       f"`{spec['initial']}`", "remove the default: the workflow gives new records "
                                                               "their initial state"))
    for position, locked in enumerate(spec.get("locked") or ()):
        state(locked, path + ("locked", position))
    compiled: dict[str, dict[str, Transition]] = {"transitions": {}, "automatic": {}}
    for group in ("transitions", "automatic"):
        for name, transition_spec in (spec.get(group) or {}).items():
            transition = _compile_transition(typedef, field_name, name, transition_spec, path + (group, name),
                                             state, positions, definitions, errors, automatic=group == "automatic")
            if transition is not None:
                compiled[group][name] = transition
    both = set(compiled["transitions"]) & set(compiled["automatic"])
    for name in sorted(both):
        errors.append(definition_error(positions, path + ("automatic", name),
                                       f"`{name}` is both a transition and an automatic transition", on_key=True))
    if len(errors) > before:
        return None
    return Workflow(type_name, field_name, spec["initial"], states, frozenset(spec.get("locked") or ()),
                    MappingProxyType(compiled["transitions"]), MappingProxyType(compiled["automatic"]))


def _compile_transition(typedef: TypeDef, field_name: str, name: str, spec: Mapping[str, Any], path: tuple,
                        state: Callable, positions, definitions: Definitions, errors: list[DefinitionError], *,
                        automatic: bool) -> Transition | None:
    for position, source in enumerate(spec["from"]):
        state(source, path + ("from", position))
    state(spec["to"], path + ("to",))
    roles = spec.get("roles")
    for position, role in enumerate(roles or ()):
        if role not in definitions.roles:
            errors.append(definition_error(positions, path + ("roles", position),
                                           f"role `{role}` is not defined in `roles`", hint_for(role, definitions.roles)))
    inputs: dict[str, Input] = {}
    for input_name, input_spec in (spec.get("inputs") or {}).items():
        maker = _INPUT_KINDS.get(input_spec["kind"])
        if maker is None:
            errors.append(definition_error(positions, path + ("inputs", input_name, "kind"),
                                           f"`{input_spec['kind']}` is not a kind an input may have: "
                                           f"{', '.join(_INPUT_KINDS)}", hint_for(input_spec["kind"], _INPUT_KINDS)))
            continue
        if input_spec["kind"] == "ref" and input_spec.get("to") not in definitions.types:
            errors.append(definition_error(positions, path + ("inputs", input_name),
                                           "a ref input names the type of its records: `to: <type>`",
                                           hint_for(str(input_spec.get("to")), definitions.types)))
            continue
        offer = input_spec.get("offer") if input_spec["kind"] == "user" else None
        if input_spec.get("offer") is not None and offer is None:
            errors.append(definition_error(positions, path + ("inputs", input_name, "offer"),
                                           "only a user input offers people", "remove `offer`", on_key=True))
        if offer is not None:
            errors += offer_errors(offer, definitions.types, definitions.roles,
                                   path + ("inputs", input_name, "offer"), positions)
        inputs[input_name] = Input(input_name, maker(input_spec, definitions.zone),
                                   bool(input_spec.get("required")), input_spec.get("label"), freeze_plain(offer))
    context = _CheckContext(definitions, positions, path, typedef, MappingProxyType(inputs))
    for key, value in (spec.get("set") or {}).items():
        if key not in typedef.own_fields:
            errors.append(definition_error(positions, path + ("set", key), f"`{key}` is not a field of type "
                                                                            f"`{typedef.name}`",
                                           hint_for(key, typedef.own_fields), on_key=True))
        elif key == field_name:
            errors.append(definition_error(positions, path + ("set", key),
                                           f"`{key}` is the state field: `to` sets it", on_key=True))
        errors += _check_value(value, context, path + ("set", key))
    guard = spec.get("guard")
    if guard is not None:
        try:
            check_expression(guard, names=GUARD_NAMES, at=positions.locate(path + ("guard",)),
                             path=format_path(path + ("guard",)))
        except DefinitionError as error:
            errors.append(error)
    effects = []
    for key, effect in EFFECTS.items():
        if key in spec:
            compiled, problems = effect.check(spec[key], _CheckContext(definitions, positions, path + (key,),
                                                                       typedef, MappingProxyType(inputs)))
            errors += problems
            effects.append((key, compiled))
    trigger = None
    if automatic:
        trigger = compile_trigger(typedef, spec["on"], path + ("on",), positions, definitions, errors)
    then = spec.get("then")
    if then is not None:
        answered = definitions.types.get(then["answer"])
        if answered is None:
            errors.append(definition_error(positions, path + ("then", "answer"), f"`{then['answer']}` is not a type",
                                           hint_for(then["answer"], definitions.types)))
        for key, value in (then.get("values") or {}).items():
            if answered is not None and key not in answered.own_fields:
                errors.append(definition_error(positions, path + ("then", "values", key),
                                               f"`{key}` is not a field of type `{answered.name}`",
                                               hint_for(key, answered.own_fields), on_key=True))
            errors += _check_value(value, context, path + ("then", "values", key))
        for position, role in enumerate(then.get("roles") or ()):
            if role not in definitions.roles:
                errors.append(definition_error(positions, path + ("then", "roles", position),
                                               f"role `{role}` is not defined in `roles`",
                                               hint_for(role, definitions.roles)))
        then = freeze_plain(then)
    return Transition(name, spec.get("label"), tuple(spec["from"]), spec["to"],
                      tuple(roles) if roles is not None else None, guard, spec.get("guard_message"),
                      MappingProxyType(inputs), MappingProxyType(dict(spec.get("set") or {})), tuple(effects), trigger,
                      then, freeze(spec.get("confirm")))


WORKFLOW_SECTION = Section("workflow", "type", _SCHEMA, _compile)


def workflows(definitions: Definitions) -> Workflows:
    """The compiled workflows of definitions (none when loaded without the section)."""
    return definitions.extensions.get("workflow") or Workflows()


def workflow_of(definitions: Definitions, type_name: str) -> Workflow | None:
    """The workflow of a type, or None."""
    return workflows(definitions).by_type.get(type_name)


# -- firing --------------------------------------------------------------------------------

def _language(session: Session) -> str:
    identity = session.identity
    return getattr(identity, "language", None) or session.definitions.languages[0]


def _refusal(session: Session, workflow: Workflow, record: Record, transition: Transition) -> str | None:
    """Why the session may not fire `transition` on `record` now (state, role, guard), or None."""
    typedef = session.definitions.type(record.type_name)
    language = _language(session)
    state = record.get(workflow.field)
    if state not in transition.sources:
        kind = typedef.fields[workflow.field].kind
        return (f"`{transition.name}` cannot be fired while the {typedef.title(language)} {record.number} is "
                f"`{state}` ({kind.text(state, language)}); it is allowed only from "
                f"{', '.join(f'`{s}`' for s in transition.sources)}")
    identity = session.identity
    if identity is not None and not getattr(identity, "superuser", False):
        context = session.context(record.values)
        if transition.roles is None:
            decision = decide(identity, "update", typedef, record, definitions=session.definitions, context=context)
            if not decision.allowed:
                return f"you may not fire `{transition.name}`: {decision.reason}"
        else:
            if not set(identity.roles) & set(transition.roles):
                return (f"your roles ({', '.join(identity.roles) or 'none'}) may not fire `{transition.name}`: "
                        f"it is for {', '.join(transition.roles)}")
            decision = decide(identity, "read", typedef, record, definitions=session.definitions, context=context)
            if not decision.allowed:
                return f"you may not fire `{transition.name}` on {record.number}: {decision.reason}"
    for check in session.store.extensions.get(TRANSITION_CHECKS, ()):
        held = check(session, record, transition.name)
        if held:
            return held
    if transition.guard:
        try:
            passed = evaluate(transition.guard, {"record": record.values, "me": session.me,
                                                 "now": session.now, "today": session.today})
        except ExpressionError as error:
            return f"the condition of `{transition.name}` could not be checked: {error}"
        if not passed:
            return label_text(transition.guard_message, language,
                              f"the condition of `{transition.name}` is not met ({transition.guard})")
    return None


def _inputs(session: Session, transition: Transition, given: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in given:
        if name not in transition.inputs:
            hint = hint_for(name, transition.inputs)
            problems[name] = f"is not an input of `{transition.name}`" + (f"; {hint}" if hint else "")
    for name, spec in transition.inputs.items():
        try:
            value = spec.kind.coerce(given.get(name), session.lookup)
        except FieldError as error:
            problems[name] = str(error)
            continue
        if spec.required and value in (None, "", ()):
            problems[name] = "is required"
        elif isinstance(spec.kind, RefKind) and value is not None and not _readable(session, spec.kind.to, value):
            target = session.definitions.type(spec.kind.to)
            problems[name] = f"there is no {target.title()} {target.number(value)}"
        values[name] = value
    if problems:
        raise TransitionRefused(transition.name, f"`{transition.name}` needs its inputs:", problems)
    return values


def _readable(session: Session, type_name: str, record_id: int) -> bool:
    """Whether the record a ref input names exists for the person: what they may not read
    does not exist for them, as for a ref field."""
    typedef = session.definitions.type(type_name)
    target = session.container(type_name).records.get(record_id)
    if target is None:
        return False
    return session.identity is None or decide(session.identity, "read", typedef, target, definitions=session.definitions,
                                              context=session.context(target.values)).allowed


def _resolver(session: Session, record: Record, transition: Transition, inputs: Mapping[str, Any]):
    def resolve(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [resolve(item) for item in value]
        if not isinstance(value, str) or not value.startswith("$"):
            return value
        if value.startswith("$$"):
            return value[1:]
        if value == "$me":
            return session.user
        if value == "$now":
            return session.now
        if value == "$today":
            return session.today
        head, _, name = value.partition(".")
        if head == "$input":
            found = inputs.get(name)
            # a duration is stored in seconds, but a bare number given to a field means minutes
            if isinstance(transition.inputs[name].kind, DurationKind) and found is not None:
                return timedelta(seconds=found)
            return found
        return record.get(name)
    return resolve


def fire(session: Session, record: Record | str, transition_name: str, inputs: Mapping[str, Any] | None = None, *,
         version: int | None = None) -> Record:
    """Fire a transition on a record through the write path; TransitionRefused says why not."""
    return _fire(session, session.resolve(record), transition_name, inputs or {}, version=version, system=False)


def fire_as_system(session: Session, record: Record, transition_name: str,
                   inputs: Mapping[str, Any] | None = None) -> Record:
    """Fire a transition (or an automatic one) for the engine itself — dispatch, events: no
    person's right is checked and the history says the system did it."""
    return _fire(session, record, transition_name, inputs or {}, version=None, system=True)


def _fire(session: Session, record: Record, transition_name: str, inputs: Mapping[str, Any], *,
          version: int | None, system: bool) -> Record:
    typedef = session.definitions.type(record.type_name)
    workflow = workflow_of(session.definitions, record.type_name)
    if workflow is None:
        raise TransitionRefused(transition_name, f"{typedef.title()} records have no workflow")
    transition = workflow.transitions.get(transition_name)
    if transition is None and system:
        transition = workflow.automatic.get(transition_name)
    if transition is None:
        if transition_name in workflow.automatic:
            raise TransitionRefused(transition_name, f"`{transition_name}` is fired by the engine only")
        hint = hint_for(transition_name, workflow.transitions)
        raise TransitionRefused(transition_name, f"`{transition_name}` is not a transition of {typedef.title()}"
                                + (f"; {hint}" if hint else ""))
    reason = None if system else _refusal(session, workflow, record, transition)
    if reason:
        raise TransitionRefused(transition.name, reason)
    values = _inputs(session, transition, inputs)
    resolve = _resolver(session, record, transition, values)
    changes = {name: resolve(value) for name, value in transition.set.items()}
    changes[workflow.field] = transition.target
    with session.as_engine(system=system):
        session.update(record, changes, version=version,
                       reason=f"transition {transition.name}" + (" (automatic)" if system else ""), details=values)
        for key, spec in transition.effects:
            EFFECTS[key].apply(session, record, spec, resolve)
    return record


def transition_of(definitions: Definitions, type_name: str, name: str) -> Transition | None:
    """The transition of that name of a type's workflow (not an automatic one), or None."""
    workflow = workflow_of(definitions, type_name)
    return workflow.transitions.get(name) if workflow is not None else None


def offered_after(session: Session, record: Record, transition_name: str) -> tuple[str, dict[str, Any]] | None:
    """What a transition's `then` offers once fired: (type to answer, its fixed values read
    from the record as it now is), or None."""
    transition = transition_of(session.definitions, record.type_name, transition_name)
    if transition is None or transition.then is None:
        return None
    roles = transition.then.get("roles")
    if roles is not None and not set(getattr(session.identity, "roles", ())) & set(roles):
        return None
    resolve = _resolver(session, record, transition, {})
    return transition.then["answer"], {key: resolve(value) for key, value in (transition.then.get("values") or {}).items()}


def merged_into(session: Session, record: Record, transition_name: str, inputs: Mapping[str, Any]) -> Record | None:
    """The record a transition with a `merge` effect merged `record` into (read from its
    input), or None for other transitions."""
    transition = transition_of(session.definitions, record.type_name, transition_name)
    for key, spec in transition.effects if transition is not None else ():
        if key == "merge" and inputs.get(spec.into) not in (None, ""):
            return session.resolve(inputs[spec.into], record.type_name)
    return None


def available_transitions(session: Session, record: Record | str) -> list[tuple[str, str, Mapping[str, Input]]]:
    """The transitions the session may fire on a record now: (name, label, inputs)."""
    record = session.resolve(record)
    workflow = workflow_of(session.definitions, record.type_name)
    if workflow is None:
        return []
    language = _language(session)
    return [(t.name, t.title(language), t.inputs) for t in workflow.transitions.values()
            if _refusal(session, workflow, record, t) is None]


def transition_refusals(session: Session, record: Record) -> list[tuple[str, str, str | None]]:
    """Each transition of a record's workflow as the session's person stands: (name, label,
    why they may not fire it now — its from-states, their roles, its guard — or None)."""
    workflow = workflow_of(session.definitions, record.type_name)
    if workflow is None:
        return []
    language = _language(session)
    return [(t.name, t.title(language), _refusal(session, workflow, record, t)) for t in workflow.transitions.values()]


# -- wiring into a store -------------------------------------------------------------------

def initial_state(session: Session, typedef: TypeDef, values: Mapping[str, Any]) -> Mapping[str, Any]:
    """The write-path default: a new record whose state is left empty starts in the initial state."""
    workflow = workflow_of(session.definitions, typedef.name)
    return {workflow.field: workflow.initial} if workflow is not None else {}


def check_state(session: Session, action: str, typedef: TypeDef, record: Record | None,
                values: Mapping[str, Any]) -> None:
    """The write-path check: a person neither sets the state field nor edits a locked record;
    only transitions do. The system (no identity) may, for imports, demos and data fixes."""
    workflow = workflow_of(session.definitions, typedef.name)
    if workflow is None or is_system(session) or action not in ("create", "update"):
        return
    kind = typedef.fields[workflow.field].kind
    try:
        wanted = kind.coerce(values[workflow.field]) if workflow.field in values else None
    except FieldError:
        return   # validation reports it
    names = ", ".join(f"`{name}`" for name in workflow.transitions) or "none"
    if action == "create":
        if wanted not in (None, workflow.initial):
            raise AccessDenied("create", f"a new {typedef.title()} starts as `{workflow.initial}`; its "
                                         f"{workflow.field} then changes through its transitions ({names})",
                               {workflow.field: "changes only through transitions"})
        return
    assert record is not None                   # the write path gives an update its record
    state = record.get(workflow.field)
    if state in workflow.locked:
        raise AccessDenied("update", f"{record.number} is `{state}`: a {typedef.title()} in this state is not "
                                     f"edited, only moved on by a transition")
    if wanted is not None and wanted != state:
        raise AccessDenied("update", f"the {workflow.field} of a {typedef.title()} changes only through its "
                                     f"transitions ({names})", {workflow.field: "changes only through transitions"})


def fire_automatic(session: Session, change: Change) -> None:
    """The write-path effect: fire the automatic transitions a newly created record triggers."""
    if change.action != "create":
        return
    for workflow, transition in workflows(session.definitions).triggers.get(change.typedef.name, ()):
        assert transition.trigger is not None       # `triggers` holds automatic transitions only
        target = triggered(session, transition.trigger, change, workflow.type_name)
        if target is None or target.get(workflow.field) not in transition.sources:
            continue
        _fire(session, target, transition.name, {}, version=None, system=True)
