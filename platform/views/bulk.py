"""Bulk actions of a list (a view's `bulk:`): tick records, fill one form, and a record of
another type is made for each of them — one work entry on several records, its duration
shared among them when the action `split`s it. All are made in one transaction: one
refused, none made."""
from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.errors import DeskbaseError, FieldError, ValidationError
from deskbase.objects.fields import DurationKind, label_text
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import decide, fixed_values, hidden_fields

from .editing import kept_by_rules
from .forms import submitted, widgets
from .people import logins_of, person_fields

if TYPE_CHECKING:
    from .app import Web


def _fields(web: "Web", identity: Identity, action) -> tuple[Any, frozenset[str], set[str]]:
    made = web.definitions.type(action["create"])
    pinned = fixed_values(identity, "create", made, web.definitions)
    hidden = hidden_fields(identity, made, web.definitions) | kept_by_rules(web.definitions, made) | set(pinned) \
        | {action["via"]}
    shown = {n for n, f in made.fields.items() if not f.system and n not in hidden and f.kind.writable
             and f.kind.name != "attachments"}
    return made, frozenset(hidden), shown


def actions_for(web: "Web", session, identity: Identity, view, language: str, errors=None,
                typed=None) -> list[dict[str, Any]]:
    """The bulk actions of a view this person may do, with the widgets of their forms."""
    found = []
    for index, action in enumerate(view.bulk):
        made, hidden, shown = _fields(web, identity, action)
        if not decide(identity, "create", made, definitions=web.definitions):
            continue
        fields = widgets(session, made, {}, language=language, hidden=hidden, readonly=frozenset(),
                         errors=(errors or {}).get(index), typed=(typed or {}).get(index))
        for field in fields:
            field.name = f"a{index}.{field.name}"        # each action's fields apart, in the one form
        found.append({"index": index, "label": label_text(action.get("label"), language, made.title(language)),
                      "fields": fields, "type": made.name, "split": action.get("split")})
    return found


def _split(kind, total: Any, count: int, lookup) -> list[Any]:
    """`total` shared among `count` records: equal parts, the rest to the first ones."""
    value = kind.coerce(total, lookup)
    if isinstance(kind, DurationKind):     # whole seconds; given back as timedeltas, never read as minutes
        part, rest = divmod(value, count)
        return [timedelta(seconds=part + (1 if n < rest else 0)) for n in range(count)]
    if isinstance(value, int):
        part, rest = divmod(value, count)
        return [part + (1 if n < rest else 0) for n in range(count)]
    places = Decimal(1).scaleb(-getattr(kind, "places", 2))
    part = (Decimal(value) / count).quantize(places, ROUND_DOWN)
    shares = [part] * count
    shares[0] += Decimal(value) - part * count
    return shares


def apply(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    view = web.definitions.views.get(request.path_params["view"])
    try:
        index = int(request.path_params["index"])
        action = view.bulk[index]
    except (AttributeError, ValueError, IndexError):
        return Response(status_code=404)
    form: FormData = request.state.form
    numbers = [str(n) for n in form.getlist("selected") if n]
    made, _, shown = _fields(web, identity, action)
    prefix = f"a{index}."
    sent = FormData([(key[len(prefix):], value) for key, value in form.multi_items() if key.startswith(prefix)])
    values = submitted(made, sent, {n: sent.getlist(n) for n in shown}, allowed=shown & set(sent.keys()) | {
        n for n in shown if made.fields[n].kind.name == "boolean"})
    values = {name: value for name, value in values.items() if value not in (None, "")}
    values.update(fixed_values(identity, "create", made, web.definitions))
    split = action.get("split")

    def work(session) -> int:
        if not numbers:
            raise ValidationError(made.name, {"selected": "tick the records first"})
        targets = session.query(view.type, {"id": [_id(session, view.type, n) for n in numbers]}, limit=None)
        if targets.total != len(set(numbers)):          # one they may not read: as if it did not exist
            raise FieldError("some of the ticked records are not there any more; reload the list")
        shares = None
        if split and values.get(split) is not None:
            shares = _split(made.fields[split].kind, values[split], targets.total, session.lookup)
        for position, target in enumerate(targets.records):
            own = {**values, action["via"]: target.id}
            if shares is not None:
                own[split] = shares[position]
            session.create(made.name, logins_of(session, own, person_fields(made.fields)))
        return targets.total
    try:
        count = web.store.run(work, identity=identity)
    except ValidationError as error:
        errors = {index: {f"{prefix}{name}": why for name, why in error.errors.items()}}
        message = "; ".join(f"{name}: {why}" for name, why in error.errors.items())
        return web.list_view(request, web_session, identity, problem=f"Nothing was made: {message}",
                             bulk_errors=errors, status=422)
    except DeskbaseError as error:
        return web.list_view(request, web_session, identity, problem=f"Nothing was made: {error}", status=422)
    return RedirectResponse(f"/v/{view.name}?made={count}", status_code=303)


def _id(session, type_name: str, number: str) -> int:
    found = session.definitions.type(type_name).parse_number(number)
    if found is None:
        raise FieldError(f"`{number}` is not a number of this list")
    return found
