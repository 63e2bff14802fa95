"""The transition effect `merge`: a record found to repeat another (a duplicate) is merged
into it. The records whose refs point at the duplicate (its children: comments, entries…)
are moved to the other record, the fields named in `carry` are added to it, the duplicate
keeps a ref to it, and both histories say what happened; the transition that runs the
effect then closes the duplicate by its own `to` state. All in the transition's transaction."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deskbase.objects.compiling import definition_error
from deskbase.objects.errors import DefinitionError, DeskbaseError, hint_for
from deskbase.objects.fields import AttachmentsKind, RefKind
from deskbase.objects.model import Definitions, TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session


class MergeRefused(DeskbaseError):
    """A merge that cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class Merge:
    """The compiled `merge:` of a transition."""

    into: str                                  # the input naming the record merged into
    link: str | None                           # a ref field of the duplicate set to that record
    carry: tuple[str, ...]                     # fields of the duplicate added to that record
    children: tuple[tuple[str, str], ...]      # (type, ref field) of the records moved


SCHEMA: Mapping[str, Any] = {
    "type": "object", "required": ["into"],
    "x-noun": "a merge such as {into: duplicate_of, link: merged_into, carry: [attachments]}",
    "x-member": "a setting of `merge` (into, link, carry)",
    "description": "merges the record into the one a ref input names: its related records move there",
    "properties": {"into": {"type": "string", "x-noun": "the name of a ref input of the transition",
                            "description": "the ref input naming the record it is merged into"},
                   "link": {"type": "string", "x-noun": "a ref field of the record",
                            "description": "a ref field of the duplicate set to the record it was merged into"},
                   "carry": {"type": "array", "items": {"type": "string", "x-noun": "a field name"},
                             "x-noun": "a list of fields of the record",
                             "description": "fields whose values are added to the record it is merged into"}},
    "additionalProperties": False,
}


def children_of(definitions: Definitions, type_name: str) -> tuple[tuple[str, str], ...]:
    """(type, field) of every indexed ref (to one record or several) pointing at `type_name`
    that a person sets: those a merge moves. Copied fields follow their source by themselves."""
    found = []
    for typedef in definitions.types.values():
        copied = {name for name, _ in typedef.copies}
        for name, field in typedef.own_fields.items():
            if isinstance(field.kind, RefKind) and field.kind.to == type_name and name not in copied \
                    and typedef.index_for(name) is not None:
                found.append((typedef.name, name))
    return tuple(found)


def check(spec: Mapping[str, Any], context: Any) -> tuple[Merge | None, list[DefinitionError]]:
    """The compiled merge of a transition, and its problems located in the YAML."""
    errors: list[DefinitionError] = []
    typedef: TypeDef = context.typedef
    into = spec["into"]
    given = context.inputs.get(into)
    if given is None or not isinstance(given.kind, RefKind) or given.kind.to != typedef.name:
        usable = [name for name, found in context.inputs.items()
                  if isinstance(found.kind, RefKind) and found.kind.to == typedef.name]
        errors.append(definition_error(context.positions, context.path + ("into",),
                                       f"`{into}` is not an input of the transition of kind ref to `{typedef.name}`",
                                       hint_for(into, usable) or f"add `inputs: {{{into}: {{kind: ref, to: "
                                                                 f"{typedef.name}, required: true}}}}`"))
    link = spec.get("link")
    if link is not None:
        field = typedef.fields.get(link)
        if field is None or not isinstance(field.kind, RefKind) or field.kind.multiple or field.kind.to != typedef.name:
            refs = [name for name, found in typedef.own_fields.items() if isinstance(found.kind, RefKind)
                    and found.kind.to == typedef.name and not found.kind.multiple]
            errors.append(definition_error(context.positions, context.path + ("link",),
                                           f"`{link}` is not a ref field of `{typedef.name}` to one `{typedef.name}`",
                                           hint_for(link, refs)))
    carry = tuple(spec.get("carry") or ())
    for position, name in enumerate(carry):
        if name not in typedef.own_fields:
            errors.append(definition_error(context.positions, context.path + ("carry", position),
                                           f"`{name}` is not a field of `{typedef.name}`",
                                           hint_for(name, typedef.own_fields)))
    children = children_of(context.definitions, typedef.name)
    return (Merge(into, link, carry, children) if not errors else None), errors


def apply(session: Session, record: Record, merge: Merge, resolve: Callable[[Any], Any]) -> None:
    """Merge `record` into the record of the merge's input (the transition checked that the
    person may read it and fire the transition); runs with the engine's authority."""
    typedef = session.definitions.type(record.type_name)
    target_id = resolve(f"$input.{merge.into}")
    if target_id is None:
        raise MergeRefused(f"say into which {typedef.title()} {record.number} is merged")
    if target_id == record.id:
        raise MergeRefused(f"{record.number} cannot be merged into itself")
    target = session.get(typedef.name, target_id)
    reason = f"{record.number} merged into {target.number}"
    moved = 0
    for type_name, field_name in merge.children:
        for child in session.query(type_name, {field_name: record.id}, "id", limit=None, scoped=False).records:
            if type_name == typedef.name and child.id in (record.id, target.id):
                continue
            value = child.get(field_name)
            if isinstance(value, tuple):          # a ref to several: the duplicate's place goes to the target
                value = tuple(dict.fromkeys(target.id if item == record.id else item for item in value))
            else:
                value = target.id
            session.update(child, {field_name: value}, reason=reason)
            moved += 1
    carried = _carried(typedef, record, target, merge.carry)
    if carried:
        session.update(target, carried, reason=reason)
    if merge.link:
        session.update(record, {merge.link: target.id}, reason=reason)
    session.note(target, f"{reason}: {moved} record{'s' if moved != 1 else ''} moved here")


def _carried(typedef: TypeDef, record: Record, target: Record, names: tuple[str, ...]) -> dict[str, Any]:
    """What the target receives of the duplicate's `carry` fields: files and several-valued
    fields are added to its own; a single value only where the target has none."""
    carried: dict[str, Any] = {}
    for name in names:
        value = record.get(name)
        if value in (None, (), ""):
            continue
        kind = typedef.fields[name].kind
        if isinstance(kind, AttachmentsKind):
            carried[name] = tuple(value)          # uploads add to what is there
        elif isinstance(value, tuple):
            merged = tuple(dict.fromkeys(tuple(target.get(name) or ()) + value))
            if merged != tuple(target.get(name) or ()):
                carried[name] = merged
        elif target.get(name) in (None, ""):
            carried[name] = value
    return carried
