"""Public forms (`public_forms:`): records created by people without an account — which
type, which of its fields they fill, which values are fixed — and who wrote: the record
of another type found by the e-mail address given (created when there is none), linked
to the new record with some of its fields copied (a requester and their organization)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field as _field
from types import MappingProxyType
from typing import Any

from deskbase.objects.compiling import Section, definition_error
from deskbase.objects.errors import DefinitionError, ValidationError, hint_for
from deskbase.objects.fields import RefKind, StringKind
from deskbase.objects.model import Definitions
from deskbase.objects.records import Record
from deskbase.objects.store import Store

ACTOR = "public-form"       # who the history names for what a public form creates


@dataclass(frozen=True)
class Sender:
    """Who wrote: records of `type` found by their `email` field; `name` is filled when one
    is created; `link` is the ref of the new record pointing at it; `copy` maps fields of
    the new record to fields of the sender's record."""

    type: str
    email: str
    name: str | None
    link: str
    copy: Mapping[str, str] = _field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class PublicForm:
    name: str
    type: str
    label: Any
    fields: tuple[str, ...]
    set: Mapping[str, Any]
    sender: Sender | None


# Who wrote, as a record: shared with the mailboxes (mail_intake.py).
SENDER_PROPERTIES = {
    "type": {"type": "string", "description": "the type of the senders' records, such as contact"},
    "email": {"type": "string", "description": "its indexed string field holding the e-mail address"},
    "name": {"type": "string", "description": "its field holding the name, filled when the record is created"},
    "link": {"type": "string", "description": "the new record's ref to the sender"},
    "copy": {"type": "object", "additionalProperties": {"type": "string"},
             "description": "fields of the new record taken from the sender, such as {organization: organization}"},
}
_SCHEMA = {
    "type": ["object", "null"],
    "x-noun": "a map of public forms",
    "description": "forms people without an account fill at /p/<name>, by name",
    "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "a form name"},
    "additionalProperties": {
        "type": "object", "x-noun": "a public form: a map with type, fields, set and sender",
        "x-member": "a setting of a public form (label, type, fields, set, sender)",
        "required": ["type", "fields"],
        "properties": {
            "label": {"x-noun": "a label", "description": "the title of the form"},
            "type": {"type": "string", "x-noun": "a type name", "description": "the type of the records it creates"},
            "fields": {"type": "array", "minItems": 1, "items": {"type": "string"}, "x-noun": "a list of field names",
                       "description": "the fields the visitor fills, in order"},
            "set": {"type": "object", "x-noun": "a map of field values",
                    "description": "fixed values of the records it creates"},
            "sender": {"type": "object", "required": ["type", "email", "link"],
                       "description": "the record of who wrote: found by its e-mail address, created when unknown",
                       "x-noun": "a map such as {type: contact, email: email, name: name, link: requester}",
                       "x-member": "a setting of `sender` (type, email, name, link, copy)",
                       "properties": SENDER_PROPERTIES,
                       "additionalProperties": False},
        },
        "additionalProperties": False,
    },
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions
             ) -> tuple[Mapping[str, PublicForm], list[DefinitionError]]:
    errors: list[DefinitionError] = []
    forms: dict[str, PublicForm] = {}
    for name, spec in (document.get("public_forms") or {}).items():
        path = ("public_forms", name)
        typedef = definitions.types.get(spec["type"])
        if typedef is None:
            errors.append(definition_error(positions, path + ("type",), f"`{spec['type']}` is not a type",
                                           hint_for(spec["type"], definitions.types)))
            continue
        for position, field_name in enumerate(spec["fields"]):
            field = typedef.own_fields.get(field_name)
            if field is None or not field.kind.writable:
                errors.append(definition_error(positions, path + ("fields", position),
                                               f"`{field_name}` is not a field of `{typedef.name}` a visitor may fill",
                                               hint_for(field_name, typedef.own_fields)))
        for field_name in spec.get("set") or {}:
            if field_name not in typedef.own_fields:
                errors.append(definition_error(positions, path + ("set", field_name), f"`{field_name}` is not a "
                                               f"field of `{typedef.name}`", hint_for(field_name, typedef.own_fields),
                                               on_key=True))
        sender = None
        if spec.get("sender"):
            sender = compile_sender(spec["sender"], typedef, path + ("sender",), positions, definitions, errors)
        forms[name] = PublicForm(name, typedef.name, spec.get("label"), tuple(spec["fields"]),
                                 MappingProxyType(dict(spec.get("set") or {})), sender)
    return MappingProxyType(forms), errors


def compile_sender(spec: Mapping[str, Any], typedef, path: tuple, positions, definitions: Definitions,
                   errors: list[DefinitionError]) -> Sender | None:
    """A `sender:` map written at `path` for records of `typedef`, checked; None (with the
    problems in `errors`) when it names what does not exist. Mailboxes share it."""
    source = definitions.types.get(spec["type"])
    if source is None:
        errors.append(definition_error(positions, path + ("type",), f"`{spec['type']}` is not a type",
                                       hint_for(spec["type"], definitions.types)))
        return None
    strings = [n for n, f in source.own_fields.items() if isinstance(f.kind, StringKind)]
    for key in ("email", "name"):
        name = spec.get(key)
        if name is not None and name not in strings:
            errors.append(definition_error(positions, path + (key,), f"`{name}` is not a string field of "
                                           f"`{source.name}`", hint_for(name, strings)))
    if spec["email"] in strings and source.index_for(spec["email"]) is None:
        errors.append(definition_error(positions, path + ("email",), f"`{spec['email']}` is not indexed: the "
                                       f"sender is found through it", f"add it to the `index` of `{source.name}`"))
    link = typedef.own_fields.get(spec["link"])
    if link is None or not isinstance(link.kind, RefKind) or link.kind.multiple or link.kind.to != source.name:
        refs = [n for n, f in typedef.own_fields.items() if isinstance(f.kind, RefKind) and f.kind.to == source.name]
        errors.append(definition_error(positions, path + ("link",), f"`{spec['link']}` is not a ref field of "
                                       f"`{typedef.name}` pointing at `{source.name}`", hint_for(spec["link"], refs)))
    for target, origin in (spec.get("copy") or {}).items():
        if target not in typedef.own_fields or origin not in source.own_fields:
            errors.append(definition_error(positions, path + ("copy", target), f"`{target}: {origin}` does not "
                                           f"map a field of `{typedef.name}` to a field of `{source.name}`",
                                           on_key=True))
    return Sender(source.name, spec["email"], spec.get("name"), spec["link"],
                  MappingProxyType(dict(spec.get("copy") or {})))


PUBLIC_FORMS_SECTION = Section("public_forms", "top", _SCHEMA, _compile)


def public_forms(definitions: Definitions) -> Mapping[str, PublicForm]:
    """The compiled public forms, by name (none when loaded without the section)."""
    return definitions.extensions.get("public_forms") or MappingProxyType({})


def submit(store: Store, form: PublicForm, values: Mapping[str, Any], *, email: str = "", name: str = "") -> str:
    """Create the record a visitor sent, with the form's fixed values and its sender; the
    number. ValidationError (also for a missing or malformed address) when it is refused."""
    given = {key: value for key, value in values.items() if key in form.fields}
    email = email.strip()
    if form.sender is not None and ("@" not in email or " " in email or len(email) > 200):
        raise ValidationError(form.type, {"email": "give an e-mail address where we can answer you"})

    def work(session) -> str:
        record_values = {**given, **form.set}
        if form.sender is not None:
            who = find_sender(session, form.sender, email) or create_sender(session, form.sender, email, name)
            record_values.update(sender_values(form.sender, who, record_values))
        return session.create(form.type, record_values).number
    return store.run(work, user=ACTOR)


def find_sender(session, sender: Sender, email: str) -> Record | None:
    """The record of whoever writes from this address, or None: found by the exact address,
    then by the address in lower case (people type their address as they like)."""
    for address in dict.fromkeys((email, email.lower())):
        found = session.query(sender.type, {sender.email: address}, limit=1).records
        if found:
            return found[0]
    return None


def create_sender(session, sender: Sender, email: str, name: str = "") -> Record:
    """A new record for an unknown sender: their address, and their name when the type has one."""
    return session.create(sender.type, {sender.email: email,
                                        **({sender.name: name.strip() or email} if sender.name else {})})


def sender_values(sender: Sender, who: Record, given: Mapping[str, Any]) -> dict[str, Any]:
    """The values a new record gets from its sender: the link, and the copied fields the
    record does not set itself."""
    values: dict[str, Any] = {sender.link: who.id}
    for target, origin in sender.copy.items():
        if who.get(origin) is not None and given.get(target) is None:
            values[target] = who.get(origin)
    return values
