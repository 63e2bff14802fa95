"""Triggers: a record created that sets off something on the record one of its refs points
at (an automatic transition, a clock restarted). Workflows and timers both read them."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deskbase.objects.compiling import definition_error, filter_errors
from deskbase.objects.errors import DefinitionError, hint_for
from deskbase.objects.fields import RefKind
from deskbase.objects.model import Definitions, TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session
from deskbase.objects.write_path import Change


@dataclass(frozen=True)
class Trigger:
    """The event of an automatic transition: a record of `type` created whose ref `via`
    points at the workflow's record, and that matches `where`."""

    type: str
    via: str
    where: Any = None



def compile_trigger(typedef: TypeDef, spec: Mapping[str, Any], path: tuple, positions, definitions: Definitions,
                     errors: list[DefinitionError]) -> Trigger | None:
    type_name, via = spec["create"], spec["via"]
    source = definitions.types.get(type_name)
    if source is None:
        errors.append(definition_error(positions, path + ("create",), f"`{type_name}` is not a type",
                                       hint_for(type_name, definitions.types)))
        return None
    field = source.own_fields.get(via)
    if field is None or not isinstance(field.kind, RefKind) or field.kind.multiple or field.kind.to != typedef.name:
        refs = [n for n, f in source.own_fields.items() if isinstance(f.kind, RefKind) and f.kind.to == typedef.name]
        errors.append(definition_error(positions, path + ("via",),
                                       f"`via` must be a ref field of `{type_name}` pointing at `{typedef.name}`; "
                                       f"`{via}` is not", hint_for(via, refs)))
        return None
    where = spec.get("where")
    if where is not None:
        errors += filter_errors(where, source, path + ("where",), positions)
    return Trigger(type_name, via, where)



def triggered(session: Session, trigger: Trigger, change: Change, target_type: str) -> Record | None:
    """The record of `target_type` that a created record fires `trigger` on: the one its ref
    `via` points at, when the created record matches the trigger's `where`; else None."""
    target_id = change.new.get(trigger.via)
    target = session.container(target_type).records.get(target_id) if target_id is not None else None
    if target is None or trigger.where is None:
        return target
    where = session.store.compiled_filter(trigger.where, change.typedef.name)
    return target if where.matches(change.new, change.typedef, session.context(change.new)) else None
