"""Migrations (P15): the definitions last applied are kept in the database; when the store
opens with different ones, the difference is planned, shown and applied in one
transaction. Data is never dropped: removed fields and types stay stored, hidden."""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import FieldError, MigrationError
from .fields import ComputedKind
from .model import Definitions
from .records import TypeContainer

if TYPE_CHECKING:
    from .session import Session


@dataclass(frozen=True)
class Step:
    """One change to stored data, with the sentence that explains it."""

    action: str        # add_type | hide_type | add_field | hide_field | rename_field | convert_field | compute_field | reindex
    type_name: str
    field: str | None = None
    detail: Any = None
    text: str = ""


@dataclass
class Plan:
    """Every step that bringing the store up to the definitions takes."""

    steps: list[Step] = field(default_factory=list)
    snapshot: str = "{}"

    def describe(self) -> list[str]:
        return [step.text for step in self.steps] or ["nothing to do: the store matches the definitions"]

    @property
    def hiding(self) -> list[Step]:
        """The steps that hide stored values (a removed field or type): nothing is dropped,
        but people stop seeing them."""
        return [step for step in self.steps if step.action in ("hide_type", "hide_field")]


class HidingRefused(MigrationError):
    """A change of definitions, made while the product runs, that would hide stored values
    without having been told it may."""

    def __init__(self, steps: list[Step]):
        self.steps = steps
        super().__init__("these definitions would hide stored values: " + "; ".join(step.text for step in steps)
                         + ". Nothing was changed; start the server with --accept-hiding to apply them, or put "
                           "the field or type back (a renamed field is declared with `renamed_from`)")


def _fields(document: Mapping[str, Any], type_name: str) -> dict[str, Any]:
    return dict(document.get("types", {}).get(type_name, {}).get("fields", {}) or {})


def _indexes(document: Mapping[str, Any], type_name: str) -> Any:
    return document.get("types", {}).get(type_name, {}).get("index")


def _stored_part(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What of a field's definition bears on stored values and index keys (not its words)."""
    return {k: v for k, v in spec.items() if k not in ("label", "help", "plural", "suggest", "join", "snippets")}


def plan_migration(definitions: Definitions, root) -> Plan:
    """The steps from the stored snapshot to `definitions`; changes nothing."""
    old = json.loads(root.snapshot or "{}")
    new = json.loads(json.dumps(definitions.document, default=str))
    plan = Plan(snapshot=json.dumps(new, sort_keys=True))
    first_time = not old and len(root.containers) == 0
    for name in definitions.types:
        if name not in root.containers:
            plan.steps.append(Step("add_type", name, text=f"create storage for the new type `{name}`"))
    for name in root.containers.keys():
        if name not in definitions.types and name in old.get("types", {}):
            count = len(root.containers[name].records)
            plan.steps.append(Step("hide_type", name, text=f"keep the {count} records of the removed type `{name}`, hidden"))
    if first_time:
        return plan
    for name, typedef in definitions.types.items():
        if name not in root.containers:
            continue
        old_fields, new_fields = _fields(old, name), _fields(new, name)
        count = len(root.containers[name].records)
        renamed_sources = set()
        data_changed = False
        for field_name, spec in new_fields.items():
            if field_name in old_fields:
                continue
            source = spec.get("renamed_from")
            if source and source in old_fields and source not in new_fields:
                renamed_sources.add(source)
                data_changed = True
                plan.steps.append(Step("rename_field", name, field_name, source,
                                       f"{name}: move `{source}` to `{field_name}` on {count} records"))
                before_kind, after_kind = old_fields[source].get("kind"), spec.get("kind")
                if before_kind != after_kind:     # renamed and changed: the moved values are converted
                    plan.steps.append(Step("convert_field", name, field_name, (before_kind, after_kind),
                                           f"{name}: convert `{field_name}` from {before_kind} to {after_kind} "
                                           f"on {count} records"))
            elif isinstance(typedef.fields[field_name].kind, ComputedKind):
                data_changed = True
                plan.steps.append(Step("compute_field", name, field_name, text=f"{name}: compute the new field `{field_name}` on {count} records"))
            else:
                default = typedef.fields[field_name].default
                data_changed = data_changed or default is not None
                shown = f" (set to {default!r})" if default is not None else ""
                plan.steps.append(Step("add_field", name, field_name, default,
                                       f"{name}: add the field `{field_name}` to {count} records{shown}"))
        for field_name in old_fields:
            if field_name not in new_fields and field_name not in renamed_sources:
                plan.steps.append(Step("hide_field", name, field_name,
                                       text=f"{name}: keep the values of the removed field `{field_name}`, hidden"))
        for field_name, spec in new_fields.items():
            before = old_fields.get(field_name)
            if before is None or _stored_part(before) == _stored_part(spec):
                continue
            data_changed = True
            if isinstance(typedef.fields[field_name].kind, ComputedKind):
                plan.steps.append(Step("compute_field", name, field_name, text=f"{name}: compute `{field_name}` again on {count} records"))
            elif before.get("kind") != spec.get("kind"):
                plan.steps.append(Step("convert_field", name, field_name, (before.get("kind"), spec.get("kind")),
                                       f"{name}: convert `{field_name}` from {before.get('kind')} to {spec.get('kind')} on {count} records"))
        if data_changed or _indexes(old, name) != _indexes(new, name):
            plan.steps.append(Step("reindex", name, text=f"{name}: rebuild the indexes over {count} records"))
    return plan


def apply_migration(plan: Plan, session: "Session", progress: Callable[[str], None] | None = None) -> None:
    """Carry out a plan inside the session's transaction; MigrationError changes nothing."""
    definitions = session.definitions
    root = session.root
    for step in plan.steps:
        if progress:
            progress(step.text)
        if step.action == "add_type":
            root.containers[step.type_name] = TypeContainer(step.type_name)
            root.containers[step.type_name].indexes.sync(definitions.types[step.type_name])
            continue
        if step.action in ("hide_type", "hide_field"):
            continue
        typedef = definitions.types[step.type_name]
        container = root.containers[step.type_name]
        if step.action == "reindex":
            container.indexes.sync(typedef)
            container.indexes.clear()
            container.indexes.rebuild(typedef, ((r.id, r.values) for r in container.records.values()))
            continue
        assert step.field is not None, "the field steps name their field (plan_migration)"
        failures = []
        for record in container.records.values():
            values = dict(record.values)
            if step.action == "rename_field":
                if step.detail in values:
                    values[step.field] = values.pop(step.detail)
            elif step.action == "add_field":
                if values.get(step.field) is None:
                    default = step.detail
                    if default in ("$now", "$today", "$me"):
                        default = {"$now": session.now, "$today": session.today, "$me": "system"}[default]
                    values[step.field] = typedef.fields[step.field].kind.coerce(default)
            elif step.action == "convert_field":
                value = values.get(step.field)
                if value is not None:
                    try:
                        values[step.field] = _convert(typedef.fields[step.field].kind, value)
                    except FieldError as error:
                        failures.append(f"{record.number}: {error}")
                        continue
            elif step.action == "compute_field":
                session.compute(typedef, values, only={step.field})
            record.replace_values(values)
        if failures:
            shown = "; ".join(failures[:10]) + (f"; and {len(failures) - 10} more" if len(failures) > 10 else "")
            raise MigrationError(
                f"`{step.field}` of {step.type_name} cannot become {step.detail[1]}: {shown}. "
                "Nothing was changed: correct these records, or keep the old kind and add a new field.")
    root.snapshot = plan.snapshot
    root.applied_at = datetime.now(timezone.utc)


def _convert(kind, value: Any) -> Any:
    try:
        return kind.coerce(value)
    except FieldError:
        return kind.coerce(str(value))
