"""Dispatch (T10): the `dispatch:` section routes a new record to a group read from the
records it points at, and optionally to an operator of that group — in turn (round robin)
or the least loaded — skipping the operators who are away (substitution.py)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from BTrees.OOBTree import OOBTree

from deskbase.objects.compiling import Section, check_ref_path, definition_error, filter_errors
from deskbase.objects.errors import DefinitionError, FieldError, hint_for
from deskbase.objects.fields import RefKind, UserKind
from deskbase.objects.kept_objects import kept_object
from deskbase.objects.model import Definitions, TypeDef
from deskbase.objects.session import Session
from deskbase.objects.write_path import Change
from deskbase.rules.access.identity import ACCOUNTS_KEY, identity_settings
from deskbase.rules.access.substitution import absent_among

from .workflows import fire_as_system, workflow_of

STRATEGIES = ("round_robin", "least_loaded")
CURSORS_KEY = "deskbase.dispatch"     # ZODB root: "type:group id" → the login given the last record


@dataclass(frozen=True)
class OperatorRule:
    """How an operator of the group is chosen: into which user field, by which strategy,
    which records count as load (a filter; all when None), through which transition."""

    field: str
    strategy: str
    load: Any = None
    transition: str | None = None


@dataclass(frozen=True)
class DispatchRule:
    """The dispatch of one type: the group field, where its value is read from (ref field,
    field of the target; the first non-empty wins), and the optional operator rule."""

    type: str
    group_field: str
    sources: tuple[tuple[str, str], ...]
    operator: OperatorRule | None = None


_SCHEMA = {
    "type": ["object", "null"],
    "x-noun": "a map of types to their dispatch, such as {order: {group: {field: team, from: [customer.team]}}}",
    "description": "where new records go, by type: a group read from the records they point at, then an operator",
    "additionalProperties": {
        "type": "object",
        "x-noun": "a dispatch: a map with group and operator",
        "x-member": "a setting of a dispatch (group, operator)",
        "required": ["group"],
        "properties": {
            "group": {"type": "object", "x-noun": "a map such as {field: team, from: [customer.team]}",
                      "x-member": "a setting of `group`", "required": ["field", "from"],
                      "description": "the group a new record gets when it has none",
                      "properties": {"field": {"type": "string", "x-noun": "a field name",
                                               "description": "the ref field holding the group"},
                                     "from": {"type": "array", "minItems": 1, "x-noun": "a list of paths",
                                              "description": "paths to the group, the first that gives one wins, "
                                                             "such as [agreement.support_group]",
                                              "items": {"type": "string", "x-noun": "a ref then a field, "
                                                                                    "such as customer.team"}}},
                      "additionalProperties": False},
            "operator": {"type": "object", "x-noun": "a map such as {field: assignee, strategy: least_loaded}",
                         "x-member": "a setting of `operator`", "required": ["field", "strategy"],
                         "description": "a member of the group given the new record",
                         "properties": {"field": {"type": "string", "x-noun": "a field name",
                                                  "description": "the user field holding the operator"},
                                        "strategy": {"enum": list(STRATEGIES),
                                                     "x-noun": "one of " + ", ".join(STRATEGIES),
                                                     "description": "how the operator is chosen: in turn "
                                                                    "(round_robin) or the fewest records "
                                                                    "(least_loaded)"},
                                        "load": {"x-noun": "a filter on the records that count as load",
                                                 "description": "a filter on the records that count as an "
                                                                "operator's load"},
                                        "transition": {"type": "string", "x-noun": "a transition name",
                                                       "description": "a transition fired with the operator as its "
                                                                      "input, rather than setting the field"}},
                         "additionalProperties": False},
        },
        "additionalProperties": False,
    },
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions
             ) -> tuple[Mapping[str, DispatchRule], list[DefinitionError]]:
    errors: list[DefinitionError] = []
    rules: dict[str, DispatchRule] = {}
    for type_name, spec in (document.get("dispatch") or {}).items():
        typedef = definitions.types.get(type_name)
        if typedef is None:
            errors.append(definition_error(positions, ("dispatch", type_name), f"`{type_name}` is not a type",
                                           hint_for(type_name, definitions.types), on_key=True))
            continue
        before = len(errors)
        rule = _compile_rule(typedef, spec, ("dispatch", type_name), positions, definitions, errors)
        if len(errors) == before:
            rules[type_name] = rule
    return MappingProxyType(rules), errors


def _single_refs(typedef: TypeDef, to: str | None = None) -> list[str]:
    return [n for n, f in typedef.own_fields.items()
            if isinstance(f.kind, RefKind) and not f.kind.multiple and (to is None or f.kind.to == to)]


def _compile_rule(typedef: TypeDef, spec: Mapping[str, Any], path: tuple, positions, definitions: Definitions,
                  errors: list[DefinitionError]) -> DispatchRule:
    group_field = spec["group"]["field"]
    field = typedef.own_fields.get(group_field)
    group_type = field.kind.to if field is not None and isinstance(field.kind, RefKind) else None
    if group_type is None or field.kind.multiple:
        errors.append(definition_error(positions, path + ("group", "field"),
                                       f"`{group_field}` is not a ref field of `{typedef.name}` holding one record",
                                       hint_for(group_field, _single_refs(typedef))))
    sources = []
    for position, text in enumerate(spec["group"]["from"]):
        where = path + ("group", "from", position)
        found = check_ref_path(text, typedef, definitions,
                               lambda f: isinstance(f.kind, RefKind) and not f.kind.multiple
                               and (group_type is None or f.kind.to == group_type),
                               f"a ref field pointing at `{group_type}`", where, positions, errors)
        if found is not None:
            sources.append(found)
    operator = None
    if spec.get("operator"):
        operator = _compile_operator(typedef, spec["operator"], group_type, path + ("operator",), positions,
                                     definitions, errors)
    return DispatchRule(typedef.name, group_field, tuple(sources), operator)


def _compile_operator(typedef: TypeDef, spec: Mapping[str, Any], group_type: str | None, path: tuple, positions,
                      definitions: Definitions, errors: list[DefinitionError]) -> OperatorRule:
    name = spec["field"]
    field = typedef.own_fields.get(name)
    if field is None or not isinstance(field.kind, UserKind):
        errors.append(definition_error(positions, path + ("field",), f"`{name}` is not a user field of "
                                                                     f"`{typedef.name}`",
                                       hint_for(name, [n for n, f in typedef.own_fields.items()
                                                       if isinstance(f.kind, UserKind)])))
    elif spec["strategy"] == "least_loaded" and typedef.index_for(name) is None:
        errors.append(definition_error(positions, path + ("field",), f"`{name}` is not indexed: the load of "
                                                                     f"each operator is counted through it",
                                       f"add `{name}` to the `index` of `{typedef.name}`"))
    accounts_group = identity_settings(definitions).group_type
    if group_type is not None and accounts_group != group_type:
        message = (f"operators are the accounts of a group, and accounts belong to `{accounts_group}` records, "
                   f"not `{group_type}` ones" if accounts_group else
                   "operators are the accounts of a group: declare the group type in `identity: {group_type: …}`")
        errors.append(definition_error(positions, path, message))
    if spec.get("load") is not None:
        errors += filter_errors(spec["load"], typedef, path + ("load",), positions)
    transition = spec.get("transition")
    if transition is not None:
        workflow = workflow_of(definitions, typedef.name)
        found = workflow.transitions.get(transition) if workflow is not None else None
        if found is None:
            errors.append(definition_error(positions, path + ("transition",),
                                           f"`{transition}` is not a transition of `{typedef.name}`",
                                           hint_for(transition, workflow.transitions if workflow else ())))
        elif name not in found.inputs:
            errors.append(definition_error(positions, path + ("transition",),
                                           f"`{transition}` has no input `{name}`: the operator is given to the "
                                           f"transition as its input of the field's name",
                                           hint_for(name, found.inputs)))
    return OperatorRule(name, spec["strategy"], spec.get("load"), transition)


DISPATCH_SECTION = Section("dispatch", "top", _SCHEMA, _compile)


def dispatch_rules(definitions: Definitions) -> Mapping[str, DispatchRule]:
    """The compiled `dispatch:` section by type (empty when loaded without it)."""
    return definitions.extensions.get("dispatch") or MappingProxyType({})


# -- the group -----------------------------------------------------------------------------

def dispatched_group(session: Session, typedef: TypeDef, values: Mapping[str, Any]) -> Mapping[str, Any]:
    """The write-path default: a new record whose group is left empty gets the first group
    its `from` paths give, read as the system. It is a default rather than a later change
    so that the record is created with its group, in one write: access scopes, notification
    rules and the history entry of the creation all see it."""
    rule = dispatch_rules(session.definitions).get(typedef.name)
    if rule is None or values.get(rule.group_field) not in (None, "", ()):
        return {}
    for ref_name, target_field in rule.sources:
        kind = typedef.fields[ref_name].kind
        try:
            target_id = kind.coerce(values.get(ref_name), session.lookup)
        except FieldError:
            continue        # validation reports it
        target = session.container(kind.to).records.get(target_id) if target_id is not None else None
        if target is not None and target.get(target_field) is not None:
            return {rule.group_field: target.get(target_field)}
    return {}


# -- the operator --------------------------------------------------------------------------

def operators(session: Session, group: int) -> list[str]:
    """The logins of the active accounts that are direct members of a group, sorted."""
    accounts = kept_object(session.connection, ACCOUNTS_KEY) or {}
    return sorted(a.login for a in accounts.values() if a.active and group in a.groups)


def _least_loaded(session: Session, rule: DispatchRule, candidates: list[str]) -> str:
    operator = rule.operator
    assert operator is not None                 # dispatch_operator returns first without one
    mine = {operator.field: "$me"}
    spec = {"all": [mine, operator.load]} if operator.load is not None else mine

    def load(login: str) -> int:
        context = {**session.context(), "me": {"id": login}}
        return session.query(rule.type, spec, limit=0, context=context, scoped=False).total
    return min(candidates, key=lambda login: (load(login), login))


def _next_in_turn(session: Session, rule: DispatchRule, group: int, candidates: list[str]) -> str:
    """The candidate after the one given the last record of this group, in login order.
    The cursor is one key per type and group: two records dispatched at once to the same
    group write the same key, so one transaction gets a ConflictError and `Store.run`
    retries it, which then gives the next operator — the turn is never handed out twice."""
    cursors = kept_object(session.connection, CURSORS_KEY, OOBTree)
    key = f"{rule.type}:{group}"
    last = cursors.get(key)
    chosen = next((login for login in candidates if last is None or login > last), candidates[0])
    cursors[key] = chosen
    return chosen


def dispatch_operator(session: Session, change: Change) -> None:
    """The write-path effect: give a new record that has a group and no operator to an
    operator of the group who is not away, by the rule's strategy — through the rule's
    transition when it names one (as the system, so the state follows the workflow), else
    by setting the field. Only creations are dispatched, so the writes made here (updates)
    do not come back to it; nothing happens when every operator is away."""
    rule = dispatch_rules(session.definitions).get(change.typedef.name) if change.action == "create" else None
    if rule is None or rule.operator is None:
        return
    record, operator = change.record, rule.operator
    group = record.get(rule.group_field)
    if group is None or record.get(operator.field) not in (None, ""):
        return
    candidates = operators(session, group)
    away = absent_among(session, candidates)
    candidates = [login for login in candidates if login not in away]
    if not candidates:
        return
    if operator.strategy == "least_loaded":
        chosen = _least_loaded(session, rule, candidates)
    else:
        chosen = _next_in_turn(session, rule, group, candidates)
    if operator.transition is None:
        with session.as_engine(system=True):
            session.update(record, {operator.field: chosen}, reason="dispatch")
        return
    workflow = workflow_of(session.definitions, rule.type)
    assert workflow is not None                 # the rule's transition was checked to be one of its workflow
    if record.get(workflow.field) in workflow.transitions[operator.transition].sources:
        fire_as_system(session, record, operator.transition, {operator.field: chosen})
