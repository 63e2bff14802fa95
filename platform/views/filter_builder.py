"""The point-and-click filter of a list page: pick a field, a comparison and a value, and
the condition joins the list's ad-hoc filter (the `f` parameter, in the filter language,
so the address still says what the list shows); each condition reads as a sentence with a
link that takes it out again."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import yaml
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.errors import QueryError
from deskbase.objects.fields import (
    AttachmentsKind,
    BooleanKind,
    DateKind,
    DateTimeKind,
    EnumKind,
    RefKind,
    StringKind,
    TagsKind,
    UserKind,
    UsersKind,
)
from deskbase.objects.filters import KEYWORDS, parse_filter_text
from deskbase.objects.model import TypeDef
from deskbase.objects.words import N_
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import hidden_fields

from .display import field_text
from .forms import widgets
from .i18n import translator

if TYPE_CHECKING:
    from .app import Web

# The comparisons offered, with the words of a condition's sentence.
COMPARISONS = {"eq": N_("is"), "ne": N_("is not"), "gte": N_("from"), "lte": N_("until"), "empty": N_("is empty")}
WORDED = {"in": N_("is one of"), "not_in": N_("is none of"), "gt": N_("after"), "lt": N_("before"), **COMPARISONS}


def filterable(typedef: TypeDef, hidden: frozenset[str], language: str) -> list[tuple[str, str]]:
    """The fields a person may filter a list on: indexed, not hidden, with a value to compare."""
    found = []
    for name, definition in typedef.fields.items():
        if name in hidden or typedef.index_for(name) is None or isinstance(definition.kind, AttachmentsKind):
            continue
        found.append((name, definition.title(language)))
    return found


def _typed_value(kind, text: str) -> Any:
    """What a value typed in the builder stands for: text stays text for text-like fields
    (a name such as `1024` is not a number), numbers, dates and yes/no are read as such."""
    text = text.strip()
    if text.startswith("$"):
        return text                          # `$me`, `$today`: read when the list is
    if isinstance(kind, RefKind):
        return int(text) if text.isdigit() else text
    if isinstance(kind, (StringKind, EnumKind, UserKind, UsersKind, TagsKind)):
        return text
    if isinstance(kind, BooleanKind):
        return text.lower() in ("1", "true", "yes", "on")
    value = yaml.safe_load(text) if text else None
    return value


def with_condition(extra: str, typedef: TypeDef, field: str, comparison: str, value_text: str) -> str:
    """The ad-hoc filter `extra` with one more condition on `field`: a second value for `is`
    makes it `is one of`; a `from` beside an `until` makes a range."""
    current = parse_filter_text(extra) or {}
    if field not in typedef.fields or comparison not in COMPARISONS:
        raise QueryError(f"`{field}` {comparison} is not a condition this list offers")
    if comparison == "empty":
        current[field] = None
        return dump_filter(current)
    if not value_text.strip():
        raise QueryError(f"a value is needed to compare {typedef.fields[field].title()} with")
    value = _typed_value(typedef.fields[field].kind, value_text)
    existing = current.get(field)
    if comparison == "eq":
        if existing is None or isinstance(existing, Mapping):
            current[field] = value
        else:
            items = list(existing) if isinstance(existing, list) else [existing]
            current[field] = items + ([value] if value not in items else [])
    else:
        operators = dict(existing) if isinstance(existing, Mapping) else ({"in": existing} if isinstance(
            existing, list) else {"eq": existing} if existing is not None else {})
        if comparison == "ne" and "ne" in operators:
            operators = {**{k: v for k, v in operators.items() if k != "ne"},
                         "not_in": [operators["ne"], value]}
        else:
            operators[comparison] = value
        current[field] = operators
    return dump_filter(current)


def dump_filter(spec: Mapping[str, Any]) -> str:
    """A filter as the one line people type: `{status: [open, waiting], priority: {gte: 2}}`."""
    if not spec:
        return ""
    return yaml.safe_dump(dict(spec), default_flow_style=True, allow_unicode=True, sort_keys=False, width=10**6).strip()


def conditions(session, typedef: TypeDef, extra: str, language: str) -> list[dict[str, str]]:
    """The conditions of an ad-hoc filter, each as a sentence with the filter left without it."""
    try:
        current = parse_filter_text(extra) or {}
    except QueryError:
        return []
    t = translator(language)
    found = []
    for key, condition in current.items():
        rest = dump_filter({k: v for k, v in current.items() if k != key})
        if key in KEYWORDS or key not in typedef.fields:
            found.append({"text": dump_filter({key: condition}), "without": rest})
            continue
        title = typedef.fields[key].title(language)
        parts = []
        if condition is None:
            parts.append(t(WORDED["empty"]))
        elif isinstance(condition, Mapping):
            for operator, value in condition.items():
                if operator == "empty":
                    parts.append(t(WORDED["empty"]) if value else t("is not empty"))
                else:
                    parts.append(f"{t(WORDED.get(operator, operator))} {_value_text(session, typedef, key, value, language)}")
        elif isinstance(condition, list):
            parts.append(f"{t(WORDED['in'])} {_value_text(session, typedef, key, condition, language)}")
        else:
            parts.append(f"{t(WORDED['eq'])} {_value_text(session, typedef, key, condition, language)}")
        found.append({"text": f"{title} {', '.join(parts)}", "without": rest})
    return found


def _value_text(session, typedef: TypeDef, name: str, value: Any, language: str) -> str:
    if isinstance(value, list):
        return ", ".join(_value_text(session, typedef, name, item, language) for item in value)
    if isinstance(value, str) and value.startswith("$"):
        return value
    kind = typedef.fields[name].kind
    if isinstance(kind, (EnumKind, RefKind, BooleanKind)) or (isinstance(kind, (DateKind, DateTimeKind))
                                                                and not isinstance(value, str)):
        try:
            return field_text(session, typedef, {name: value}, name, language) or str(value)
        except (TypeError, ValueError, AttributeError, KeyError):
            return str(value)
    return str(value)


def value_control(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """The value control of the builder for the chosen field: its choices when it has some."""
    view = web.definitions.views.get(request.path_params["view"])
    if view is None:
        return Response(status_code=404)
    typedef = web.definitions.type(view.type)
    name = request.query_params.get("add_field", "")
    language = web.language_of(identity)
    allowed = dict(filterable(typedef, hidden_fields(identity, typedef, web.definitions), language))
    if name not in allowed:
        return web.render(request, "_condition_value.html", {"field": None}, web_session=web_session,
                          identity=identity)

    def work(session):
        return widgets(session, typedef, {}, language=language, hidden=frozenset(), readonly=frozenset(),
                       only=(name,), creating=False)
    found = web.store.read(work, identity=identity)
    field = found[0] if found else None
    if field is not None and field.control in ("textarea", "multiselect", "file", "checkbox", "absent"):
        field.control = "select" if field.choices else ("checkbox-choice" if field.control == "checkbox" else "text")
    return web.render(request, "_condition_value.html", {"field": field}, web_session=web_session, identity=identity)


def added(web: "Web", request: Request, view, typedef: TypeDef) -> Response:
    """The list with the builder's condition added (a redirect, so the address holds it), or
    the problem with it on the list as it was."""
    params = request.query_params
    extra = with_condition(params.get("f", ""), typedef, params.get("add_field", ""),
                           params.get("add_op", "eq"), params.get("add_value", ""))
    state = {key: params.get(key, "") for key in ("sort", "q")}
    query = {k: v for k, v in {**state, "f": extra}.items() if v}
    return RedirectResponse(f"/v/{view.name}" + (f"?{urlencode(query)}" if query else ""), status_code=303)
