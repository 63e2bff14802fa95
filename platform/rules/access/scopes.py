"""Access scopes (P4): per type and role, which actions on which records (filters) and
which fields are hidden or read-only; `decide` answers, `read_scope` limits queries,
`check_write` guards the write path (wired in by `rules.application.open_store`). Closed by
default: only `superuser` roles bypass it."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from deskbase.objects.compiling import Section, definition_error, filter_errors
from deskbase.objects.errors import DefinitionError, DeskbaseError, FieldError, hint_for
from deskbase.objects.fields import RefKind
from deskbase.objects.filters import Checked, IdsAmong, compile_filter
from deskbase.objects.model import Definitions, TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session

from .identity import Identity

ACTIONS = ("create", "read", "update", "delete")


class AccessDenied(DeskbaseError):
    """An action the identity may not do; `reason` is a sentence, `fields` names the
    fields refused one by one (field → why) when the refusal is about fields."""

    def __init__(self, action: str, reason: str, fields: Mapping[str, str] | None = None):
        self.action, self.reason, self.fields = action, reason, dict(fields or {})
        super().__init__(reason)


@dataclass(frozen=True)
class Decision:
    """Whether an action is allowed, and the sentence that says why (or why not)."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class RoleAccess:
    """What one role may do with one type: per action True, False or a filter spec."""

    role: str
    actions: Mapping[str, Any]
    hide: frozenset[str] = frozenset()
    readonly: frozenset[str] = frozenset()
    filters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))   # action → compiled filter


@dataclass(frozen=True)
class AccessRules:
    """The compiled `access:` sections: type → role → RoleAccess, and the superuser roles."""

    types: Mapping[str, Mapping[str, RoleAccess]] = field(default_factory=lambda: MappingProxyType({}))
    superusers: frozenset[str] = frozenset()


# -- the `access:` section of a type -------------------------------------------------------

_ACTION = {"type": ["boolean", "object"], "x-noun": "true, false or a filter such as {assignee: $me}"}
_NAMES = {"type": "array", "items": {"type": "string", "x-noun": "a field name"}, "uniqueItems": True,
          "x-noun": "a list of field names"}
_SCHEMA = {
    "type": "object",
    "x-noun": "access rules: a map from role names to what each may do",
    "description": "who may do what with the type's records, by role: true, false (the default) or a filter",
    "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "a role name"},
    "additionalProperties": {
        "type": "object",
        "x-noun": "what a role may do: a map such as {read: true, update: {assignee: $me}}",
        "x-member": "a setting of a role's access (create, read, update, delete, fields)",
        "properties": {
            **{action: _ACTION | {"description": f"whether the role may {action} records: true, false or a filter "
                                                 "on the record such as {assignee: $me}"} for action in ACTIONS},
            "fields": {"type": "object", "x-noun": "a map such as {hide: [notes], readonly: [organization]}",
                       "x-member": "a setting of `fields` (hide, readonly)",
                       "description": "fields the role may not see, or may not set",
                       "properties": {"hide": _NAMES | {"description": "fields neither shown nor settable"},
                                      "readonly": _NAMES | {"description": "fields shown but not settable"}},
                       "additionalProperties": False},
        },
        "additionalProperties": False,
    },
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[AccessRules, list[DefinitionError]]:
    errors: list[DefinitionError] = []
    types: dict[str, Mapping[str, RoleAccess]] = {}
    for type_name, spec in (document.get("types") or {}).items():
        rules = spec.get("access") if isinstance(spec, Mapping) else None
        if not rules:
            continue
        typedef = definitions.types[type_name]
        compiled: dict[str, RoleAccess] = {}
        for role, rule in rules.items():
            path = ("types", type_name, "access", role)
            if role not in definitions.roles:
                errors.append(definition_error(positions, path, f"role `{role}` is not defined in `roles`",
                                               hint_for(role, definitions.roles), on_key=True))
                continue
            actions: dict[str, Any] = {}
            filters: dict[str, Any] = {}
            for action in ACTIONS:
                value = rule.get(action, False)
                if isinstance(value, Mapping):
                    via = value.get("via")
                    rest = {key: item for key, item in value.items() if key != "via"}
                    problems = _via_errors(via, typedef, definitions, path + (action, "via"), positions) \
                        if "via" in value else []
                    problems += filter_errors(rest, typedef, path + (action,), positions) if rest else []
                    errors += problems
                    value = value if not problems else False
                    if value:   # compiled once with the definitions: `decide` on one record reuses it
                        filters[action] = compile_filter(rest or {"id": {"gte": 0}}, typedef)
                actions[action] = value
            named: dict[str, frozenset[str]] = {}
            for what in ("hide", "readonly"):
                names = (rule.get("fields") or {}).get(what) or []
                for position, name in enumerate(names):
                    if name not in typedef.fields:
                        errors.append(definition_error(
                            positions, path + ("fields", what, position),
                            f"`{name}` is not a field of type `{type_name}`", hint_for(name, typedef.fields)))
                named[what] = frozenset(names)
            compiled[role] = RoleAccess(role, MappingProxyType(actions), named["hide"], named["readonly"],
                                        MappingProxyType(filters))
        types[type_name] = MappingProxyType(compiled)
    superusers = frozenset(name for name, spec in definitions.roles.items() if spec and spec.get("superuser"))
    errors += _aggregate_errors(types, superusers, definitions, positions)
    return AccessRules(MappingProxyType(types), superusers), errors


def _aggregate_errors(types: Mapping[str, Mapping[str, RoleAccess]], superusers: frozenset[str],
                      definitions: Definitions, positions) -> list[DefinitionError]:
    """A total over records that a role reads only in part would tell that role what it may
    not read (a customer summing the internal work done on their request), and so would a formula
    over such a total (a balance). An aggregate a role sees must add up records that role
    may read, each of them, unless its `disclosed_to` names the role: proven from the rules
    when the role reads every record of the source, or reads them `via` the aggregate's own
    ref, or each condition of its read rule is one the aggregate's `where` makes too, or one
    on a field copied through that ref that the role's own read rule on the owner makes."""
    errors = []
    for owner in definitions.types.values():
        owner_rules = types.get(owner.name, {})
        partial: dict[str, list[str]] = {}           # field → the roles that read its records in part
        for name, definition in owner.fields.items():
            spec = getattr(definition.kind, "aggregate", None)
            source = definitions.types.get(spec["of"]) if spec else None
            if not spec or source is None:
                continue
            source_rules = types.get(source.name, {})
            disclosed = spec.get("disclosed_to") or ()
            for position, role in enumerate(disclosed):
                if role not in definitions.roles:
                    errors.append(definition_error(
                        positions, ("types", owner.name, "fields", name, "aggregate", "disclosed_to", position),
                        f"`{role}` is not a role of the definitions", hint_for(role, definitions.roles)))
            for role, access in owner_rules.items():
                read = access.actions.get("read", False)
                if read is False or role in superusers or role in disclosed:
                    continue
                grant = source_rules[role].actions.get("read", False) if role in source_rules else False
                if not _all_readable(grant, spec, source, read):
                    partial.setdefault(name, []).append(role)
        for name, definition in owner.fields.items():      # a formula over such a total tells it too
            expression = getattr(definition.kind, "expression", None) or ""
            for total in re.findall(r"\brecord\.([a-z_][a-z0-9_]*)", expression):
                for role in partial.get(total, ()) if total != name else ():
                    if role not in partial.setdefault(name, []):
                        partial[name].append(role)
        for name, roles in partial.items():
            roles = [role for role in roles if name not in owner_rules[role].hide]
            if not roles:
                continue
            one = len(roles) == 1
            spec = getattr(owner.fields[name].kind, "aggregate", None)
            what = (f"adds up {spec['of']} records" if spec else "is worked out from a total of records")
            errors.append(definition_error(
                positions, ("types", owner.name, "fields", name),
                f"`{name}` {what} that {'the role' if one else 'the roles'} {', '.join(roles)} may read only in "
                f"part, so it would tell {'it' if one else 'them'} what {'it' if one else 'they'} may not read: hide "
                f"it from {'that role' if one else 'those roles'} (`fields: {{hide: [{name}]}}` in the access of "
                f"`{owner.name}`), let {'it' if one else 'them'} read every record of the total (`read: {{via: "
                f"<ref>}}`), add up only what {'it' if one else 'they'} may read (a `where` holding the conditions "
                f"of {'its' if one else 'their'} read rule), or say the total is {'its' if one else 'theirs'} to "
                f"know (`disclosed_to: [{', '.join(roles)}]` in the aggregate)", on_key=True))
    return errors


def _all_readable(grant: Any, spec: Mapping[str, Any], source: TypeDef, owner_read: Any) -> bool:
    """Whether a read grant on an aggregate's source covers every record the aggregate adds
    up, for someone reading the owner by `owner_read` (see `_aggregate_errors`)."""
    if grant is True:
        return True
    if not isinstance(grant, Mapping):
        return False
    where = _conditions(spec.get("where") or {})
    owner_terms = _conditions(owner_read) if isinstance(owner_read, Mapping) else {}

    def implied(key: str, value: Any) -> bool:
        if key == "via":
            return value == spec["via"]
        if key == "any":
            return isinstance(value, list) and any(
                isinstance(branch, Mapping) and all(implied(k, v) for k, v in branch.items()) for branch in value)
        if key == "all":
            return isinstance(value, list) and all(
                isinstance(branch, Mapping) and all(implied(k, v) for k, v in branch.items()) for branch in value)
        if key in where and where[key] == value:
            return True
        field = source.fields.get(key)
        return any(ref == spec["via"] and owner_terms.get(target, _NOTHING) == value
                   for ref, target in (field.copied_from if field is not None else ()))
    return all(implied(key, value) for key, value in grant.items())


_NOTHING = object()


def _conditions(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The `field: value` conditions a filter makes of every record it matches: its own keys
    and those of its `all:` branches (not those of `any:` or `not:`)."""
    found = {key: value for key, value in spec.items() if key not in ("any", "all", "not", "text", "via")}
    for branch in spec.get("all") or ():
        if isinstance(branch, Mapping):
            found.update(_conditions(branch))
    return found


def _via_errors(via: Any, typedef: TypeDef, definitions: Definitions, path, positions) -> list[DefinitionError]:
    """`via: <ref field>` in a grant: a ref of the type to one record, indexed."""
    field = typedef.fields.get(via) if isinstance(via, str) else None
    if field is None or not isinstance(field.kind, RefKind) or field.kind.multiple or typedef.index_for(via) is None:
        refs = [n for n, f in typedef.fields.items() if isinstance(f.kind, RefKind) and not f.kind.multiple
                and typedef.index_for(n) is not None]
        return [definition_error(positions, path, f"`{via}` is not an indexed ref field of `{typedef.name}`: "
                                                  f"`via` names the record whose readers may read these",
                                 hint_for(str(via), refs))]
    return []


ACCESS_SECTION = Section("access", "type", _SCHEMA, _compile)


def access_rules(definitions: Definitions) -> AccessRules:
    """The compiled access rules of definitions (none when loaded without the section)."""
    return definitions.extensions.get("access") or AccessRules()


# -- deciding ------------------------------------------------------------------------------

def _unrestricted(identity: Identity | None, rules: AccessRules) -> bool:
    return identity is None or getattr(identity, "superuser", False) or any(r in rules.superusers for r in identity.roles)


def _grants(identity: Identity, action: str, typedef: TypeDef, rules: AccessRules) -> list[tuple[str, Any]]:
    by_role = rules.types.get(typedef.name, {})
    return [(role, by_role[role].actions.get(action, False)) for role in identity.roles if role in by_role]


def _who(roles: list[str]) -> str:
    if not roles:
        return "none of your roles"
    return f"the role {roles[0]}" if len(roles) == 1 else f"the roles {', '.join(roles)}"


def _records(typedef: TypeDef) -> str:
    return f"{typedef.title()} records"


@dataclass(frozen=True)
class GrantChecked:
    """How `decide` weighed one role of a person on one action, kept when asked why: `grant`
    is what the role's access says (True, False, a filter as written; None: the role has no
    rule for the type; "superuser"); `conditions`, the filter as evaluated on the record;
    `through`, whether the record a `via` grant points at may be read."""

    role: str
    grant: Any
    held: bool
    conditions: Checked | None = None
    through: bool | None = None


def decide(identity: Identity | None, action: str, typedef: TypeDef, record: Record | Mapping[str, Any] | None = None, *,
           definitions: Definitions, context: Mapping[str, Any] | None = None,
           trace: list[GrantChecked] | None = None) -> Decision:
    """Whether `identity` may do `action` (create, read, update, delete) on `record` of a type,
    or on some record of it when `record` is None; the reason names the roles and the action.
    With `trace` (a list), each role of the person is weighed and what was found appended."""
    if action not in ACTIONS:
        raise ValueError(f"`{action}` is not an action; use one of {', '.join(ACTIONS)}")
    rules = access_rules(definitions)
    if identity is None or _unrestricted(identity, rules):      # None: the system
        if trace is not None:
            trace += [GrantChecked(role, "superuser", True) for role in getattr(identity, "roles", ())
                      if role in rules.superusers] or [GrantChecked("", "superuser", True)]
        return Decision(True, f"a superuser may {action} every {typedef.title()} record")
    grants = _grants(identity, action, typedef, rules)
    granting = [(role, grant) for role, grant in grants if grant is not False]
    if trace is not None:
        by_role = rules.types.get(typedef.name, {})
        trace += [GrantChecked(role, by_role[role].actions.get(action, False) if role in by_role else None, False)
                  for role in identity.roles if role not in by_role or by_role[role].actions.get(action) in (None, False)]
    if not granting:
        yours = ", ".join(identity.roles) or "none"
        return Decision(False, f"{_who(list(identity.roles))} may not {action} {_records(typedef)} "
                               f"(your roles: {yours})")
    outright = None
    for role, grant in granting:
        if grant is True:
            if trace is None:
                return Decision(True, f"the role {role} may {action} every {typedef.title()} record")
            outright = outright or role
    roles = [role for role, _ in granting]
    scopes = " or ".join(describe_filter(grant) for _, grant in granting if grant is not True)
    if record is None:
        if trace is not None:
            trace += [GrantChecked(role, grant, True) for role, grant in granting]
        if outright is not None:
            return Decision(True, f"the role {outright} may {action} every {typedef.title()} record")
        return Decision(True, f"{_who(roles)} may {action} only {_records(typedef)} {scopes}")
    values = record.values if isinstance(record, Record) else record
    full_context = {**(context or {}), "me": identity.as_context()}
    by_role = rules.types[typedef.name]
    if trace is not None:
        weighed = _weighed(identity, action, typedef, values, granting, outright, full_context, context,
                           definitions, trace)
        if weighed is not None:
            return weighed
    else:
        for role, grant in granting:
            if by_role[role].filters[action].matches(values, typedef, full_context) \
                    and _through(identity, typedef, grant, values, definitions, context):
                return Decision(True, f"the role {role} may {action} {_records(typedef)} {describe_filter(grant)}")
    return Decision(False, f"{_who(roles)} may {action} only {_records(typedef)} {scopes}: this one is not")


def _weighed(identity: Identity, action: str, typedef: TypeDef, values: Mapping[str, Any],
             granting: list[tuple[str, Any]], outright: str | None, full_context: Mapping[str, Any],
             context: Mapping[str, Any] | None, definitions: Definitions, trace: list[GrantChecked]) -> Decision | None:
    """`decide` on one record when asked why: every role weighed (not only up to the first that
    grants), each with its filter evaluated by the same compiled filter, traced; the decision
    is the one `decide` gives without the trace (None: refused)."""
    by_role = access_rules(definitions).types[typedef.name]
    found: Decision | None = None
    for role, grant in granting:
        if grant is True:
            trace.append(GrantChecked(role, True, True))
            continue
        checked: list[Checked] = []
        matched = by_role[role].filters[action].matches(values, typedef, full_context, checked)
        through = _through(identity, typedef, grant, values, definitions, context) \
            if matched or "via" in grant else False
        shown = checked[0] if set(grant) != {"via"} else None
        trace.append(GrantChecked(role, grant, matched and through, shown, through if "via" in grant else None))
        if matched and through and found is None:
            found = Decision(True, f"the role {role} may {action} {_records(typedef)} {describe_filter(grant)}")
    if outright is not None:
        return Decision(True, f"the role {outright} may {action} every {typedef.title()} record")
    return found


def _through(identity: Identity, typedef: TypeDef, grant: Mapping[str, Any], values: Mapping[str, Any],
             definitions: Definitions, context: Mapping[str, Any] | None) -> bool:
    """A grant's `via: <ref>`: the record the ref points at is one the person may read. Without
    the session in the context to look it up, it is not granted."""
    via = grant.get("via")
    if via is None:
        return True
    session = (context or {}).get("session")
    target_id = values.get(via)
    if session is None or target_id is None:
        return False
    target_type = definitions.type(typedef.fields[via].kind.to)
    target = session.container(target_type.name).records.get(target_id)
    return target is not None and may_read(session, identity, target_type, target)


def may_read(session: Session, identity: Identity | None, typedef: TypeDef, record: Record) -> bool:
    """Whether `identity` may read the record (None: the engine, or the command line, reads
    all), as `decide` says; answered once per person, record and session, for the pages and
    documents that show the records a value points at."""
    if identity is None:
        return True
    known = session.__dict__.setdefault("_may_read", {})
    key = (identity.id, typedef.name, record.id)
    if key not in known:
        known[key] = bool(decide(identity, "read", typedef, record, definitions=session.definitions,
                                 context=session.context(record.values)))
    return known[key]


def fixed_values(identity: Identity | None, action: str, typedef: TypeDef, definitions: Definitions) -> dict[str, Any]:
    """The values a person's only way to `action` records pins down: each `field: value` at
    the top of the one filter that grants it (`{organization: $me.organization, visibility:
    public}`), with `$me…` read. A form fills them in rather than asking. Nothing is pinned
    when a role grants the action outright or two roles grant it differently."""
    rules = access_rules(definitions)
    if identity is None or _unrestricted(identity, rules):      # None: the system
        return {}
    grants = [grant for _, grant in _grants(identity, action, typedef, rules) if grant is not False]
    if len(grants) != 1 or not isinstance(grants[0], Mapping):
        return {}
    return me_values(identity, {name: value for name, value in grants[0].items()
                                 if name in typedef.fields and not isinstance(value, (Mapping, list, tuple))})


def me_values(identity: Identity, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with `$me` and `$me.<attribute>` read for this person; one that reads as
    nothing (or as several), or another `$` word, is left out."""
    me = identity.as_context()
    found = {}
    for name, value in values.items():
        if isinstance(value, str) and value.startswith("$me"):
            value = me.get(value[4:] if value.startswith("$me.") else "id")
            if value is None or isinstance(value, (list, tuple)):
                continue
        elif isinstance(value, str) and value.startswith("$"):
            continue
        found[name] = value
    return found


def session_scope(session: Session, typedef: TypeDef) -> Any:
    """The write path's `read_scope`: what the session's identity may read of a type; a
    grant's `via: <ref>` becomes the ids of the records it points at that they may read."""
    scope = read_scope(session.identity, typedef, session.definitions)
    grants = scope["any"] if isinstance(scope, Mapping) and set(scope) == {"any"} else [scope]
    if not any(isinstance(grant, Mapping) and "via" in grant for grant in grants):
        return scope
    resolved = [_ids_through(session, typedef, grant) if isinstance(grant, Mapping) and "via" in grant else grant
                for grant in grants]
    return resolved[0] if len(resolved) == 1 else {"any": resolved}


def _ids_through(session: Session, typedef: TypeDef, grant: Mapping[str, Any]) -> Any:
    """A `via` grant as a filter: its other conditions, and its ref among the readable ids."""
    via = grant["via"]
    target = session.definitions.type(typedef.fields[via].kind.to)
    known = session.__dict__.setdefault("_readable_ids", {})
    if target.name not in known:
        # Held as a set, never listed: someone who reads 200,000 records of a million asks
        # for the entries written on one of them at the cost of those entries (`IdsAmong`).
        readable, ids = session.matching_ids(target, None)
        known[target.name] = (None if ids is None else IdsAmong(ids) if len(ids) else False) if readable else False
    among = known[target.name]       # None: every record; False: none
    rest = {key: value for key, value in grant.items() if key != "via"}
    condition = {"id": {"gte": 0}} if among is None else {"id": {"lt": 0}} if among is False else {via: among}
    return {"all": [rest, condition]} if rest else condition


def read_scope(identity: Identity | None, typedef: TypeDef, definitions: Definitions) -> Any:
    """The records of a type `identity` may read: True (all), False (none) or a filter."""
    rules = access_rules(definitions)
    if identity is None or _unrestricted(identity, rules):      # None: the system
        return True
    grants = [grant for _, grant in _grants(identity, "read", typedef, rules) if grant is not False]
    if not grants:
        return False
    if any(grant is True for grant in grants):
        return True
    return grants[0] if len(grants) == 1 else {"any": list(grants)}


def _field_limits(identity: Identity | None, typedef: TypeDef, definitions: Definitions, what: str) -> frozenset[str]:
    rules = access_rules(definitions)
    if identity is None or _unrestricted(identity, rules):      # None: the system
        return frozenset()
    by_role = rules.types.get(typedef.name, {})
    limits = [getattr(by_role[role], what) for role in identity.roles if role in by_role]
    # A field one role hides but another shows is shown: roles add rights.
    return frozenset.intersection(*limits) if limits else frozenset()


def hidden_fields(identity: Identity | None, typedef: TypeDef, definitions: Definitions) -> frozenset[str]:
    """The fields of a type `identity` may neither see nor set."""
    return _field_limits(identity, typedef, definitions, "hide")


def readonly_fields(identity: Identity | None, typedef: TypeDef, definitions: Definitions) -> frozenset[str]:
    """The fields of a type `identity` sees but may not set (hidden ones are not listed)."""
    return _field_limits(identity, typedef, definitions, "readonly")


def visible_values(identity: Identity | None, typedef: TypeDef, record: Record | Mapping[str, Any], *,
                   definitions: Definitions) -> dict[str, Any]:
    """A record's values without the fields hidden from `identity`."""
    values = record.values if isinstance(record, Record) else record
    hidden = hidden_fields(identity, typedef, definitions)
    return {name: value for name, value in values.items() if name not in hidden}


# -- describing a scope --------------------------------------------------------------------

_REFERENCES = {"$me": "you", "$me.groups": "one of your groups", "$me.organization": "your organization",
               "$me.acting_for": "the person you act for", "$me.roles": "one of your roles"}
_OPERATORS = {"eq": "is", "ne": "is not", "in": "is one of", "not_in": "is none of", "gt": "is after",
              "gte": "is at least", "lt": "is before", "lte": "is at most"}


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " or ".join(_value(v) for v in value) if value else "nothing"
    if value is None:
        return "empty"
    return _REFERENCES.get(value, str(value)) if isinstance(value, str) else str(value)


def _condition(spec: Mapping[str, Any]) -> str:
    parts = []
    for key, operand in spec.items():
        if key == "via":
            parts.append(f"whose {operand} you may read")
        elif key == "any":
            parts.append("(" + ", or ".join(_condition(item) for item in operand) + ")"
                         if len(spec) > 1 else ", or ".join(_condition(item) for item in operand))
        elif key == "all":
            parts.append(" and ".join(_condition(item) for item in operand))
        elif key == "not":
            parts.append(f"not ({_condition(operand)})")
        elif key == "text":
            parts.append(f"containing `{operand}`")
        elif isinstance(operand, Mapping):
            for op, value in operand.items():
                if op == "empty":
                    parts.append(f"whose {key} is {'empty' if value else 'set'}")
                else:
                    parts.append(f"whose {key} {_OPERATORS.get(op, op)} {_value(value)}")
        else:
            parts.append(f"whose {key} is {_value(operand)}")
    return " and ".join(parts)


def describe_filter(spec: Any) -> str:
    """A filter as words, for reasons: `whose assignee is you`."""
    return _condition(spec) if isinstance(spec, Mapping) else "that match"


# -- wiring into a store -------------------------------------------------------------------

def _candidate(session, typedef: TypeDef, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values a create would store, as far as a rule needs them: given values coerced,
    defaults for the rest. A value that does not coerce is left to validation to report."""
    candidate: dict[str, Any] = {}
    for name, field_def in typedef.fields.items():
        if field_def.system:
            continue
        raw = values[name] if name in values else field_def.default
        if raw == "$me":
            raw = session.user
        elif isinstance(raw, str) and raw.startswith("$"):
            raw = None
        try:
            candidate[name] = field_def.kind.coerce(raw, session.lookup) if raw is not None else field_def.kind.empty()
        except (FieldError, TypeError, ValueError):
            candidate[name] = field_def.kind.empty()
    return candidate


def check_write(session: Session, action: str, typedef: TypeDef, record: Record | None, values: Mapping[str, Any]) -> None:
    """The write-path check: refuses (AccessDenied) what the session's identity may not do."""
    identity = session.identity
    if identity is None:
        return
    definitions = session.definitions
    target = _candidate(session, typedef, values) if action == "create" else record
    assert target is not None                   # the write path gives an update or a delete its record
    context = session.context(target if isinstance(target, Mapping) else target.values)
    decision = decide(identity, action, typedef, target, definitions=definitions, context=context)
    if not decision.allowed:
        raise AccessDenied(action, decision.reason)
    if action not in ("create", "update"):
        return
    hidden = hidden_fields(identity, typedef, definitions)
    readonly = readonly_fields(identity, typedef, definitions)
    copied = {name for name, _ in typedef.copies}          # set by the engine, not by the person
    refused = {name: ("is hidden from you" if name in hidden else "is read-only for you")
               for name in values if (name in hidden or name in readonly) and name not in copied}
    if refused:
        listed = "; ".join(f"`{name}` {why}" for name, why in refused.items())
        raise AccessDenied(action, f"you may not set these fields: {listed} (your roles: {', '.join(identity.roles)})",
                           refused)
