"""The pages behind signed links (`/a/<token>`): opening one only shows what it will do
(mail scanners open links too); confirming does it, once, in the name of the address the
message went to. A transition's inputs are asked; a record to create shows its type's
form without the values the link fixes."""
from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from deskbase.objects.errors import DeskbaseError, NotFound, ValidationError
from deskbase.rules.messages import links
from deskbase.rules.process.workflows import TransitionRefused, fire, workflow_of

from .editing import kept_by_rules
from .forms import submitted, widgets

if TYPE_CHECKING:
    from .app import Web


def _actor(link: links.Link) -> str:
    """Who the history names: the address the link was sent to (no account is needed)."""
    return link.address


def link_page(web: "Web", request: Request) -> Response:
    token = request.path_params["token"]
    language = web.definitions.languages[0]
    try:
        link = web.store.read(lambda session: links.read(session, token))
    except links.LinkRefused as refused:
        return web.render(request, "link.html", {"refused": str(refused)}, status=410)
    if link.action == "fire":
        return _fire_page(web, request, link, token, language)
    return _create_page(web, request, link, token, language)


def _fire_page(web: "Web", request: Request, link: links.Link, token: str, language: str) -> Response:
    def describe(session):
        record = session.find(link.record)
        typedef = web.definitions.type(record.type_name)
        transition = workflow_of(web.definitions, record.type_name).transitions[link.transition]
        title = record.get(typedef.title_field) if typedef.title_field else ""
        inputs = [{"name": n, "title": i.title(language), "required": i.required, "kind": i.kind.name}
                  for n, i in transition.inputs.items()]
        return {"number": record.number, "title": title, "label": transition.title(language), "inputs": inputs}
    try:
        shown = web.store.read(describe)
    except (NotFound, KeyError, AttributeError):
        return web.render(request, "link.html", {"refused": "This link points at nothing any more."}, status=410)
    context = {"token": token, "what": shown}
    if request.method == "GET":
        return web.render(request, "link.html", context)
    form = request.state.form
    inputs = {k: v for k, v in form.items() if k != "confirm" and v != ""}

    def work(session):
        found = links.read(session, token)                 # again, inside the transaction that spends it
        fire(session, found.record, found.transition, inputs)
        links.spend(session, found)
    try:
        web.store.run(work, user=_actor(link))
    except links.LinkRefused as refused:
        return web.render(request, "link.html", {"refused": str(refused)}, status=410)
    except TransitionRefused as refused:
        return web.render(request, "link.html", {**context, "problem": refused.reason, "problems": refused.fields},
                          status=422)
    except DeskbaseError as error:
        return web.render(request, "link.html", {**context, "problem": str(error)}, status=422)
    return web.render(request, "link.html", {"done": True, "what": shown})


def _create_page(web: "Web", request: Request, link: links.Link, token: str, language: str) -> Response:
    typedef = web.definitions.types.get(link.type or "")
    if typedef is None:
        return web.render(request, "link.html", {"refused": "This link points at nothing any more."}, status=410)
    fixed = dict(link.values or {})
    hidden = kept_by_rules(web.definitions, typedef) | set(fixed)
    shown = {n for n, f in typedef.fields.items() if not f.system and n not in hidden and f.kind.writable
             and f.kind.name != "attachments"}
    typed = None
    errors = None
    problem = None
    if request.method == "POST":
        form = request.state.form
        values = {**submitted(typedef, form, {n: form.getlist(n) for n in shown}, allowed=shown), **fixed}

        def work(session):
            found = links.read(session, token)
            session.create(typedef.name, {**values, **(found.values or {})})
            links.spend(session, found)
        try:
            web.store.run(work, user=_actor(link))
            return web.render(request, "link.html", {"done": True, "what": {"label": typedef.title(language)}})
        except links.LinkRefused as refused:
            return web.render(request, "link.html", {"refused": str(refused)}, status=410)
        except ValidationError as error:
            typed, errors, problem = {n: form.get(n) for n in shown if form.get(n)}, error.errors, str(error)
        except DeskbaseError as error:
            typed, problem = {n: form.get(n) for n in shown if form.get(n)}, str(error)
    fields = web.store.read(lambda session: widgets(session, typedef, fixed, language=language,
                                                    hidden=frozenset(hidden), readonly=frozenset(),
                                                    errors=errors, typed=typed))
    return web.render(request, "link.html", {"token": token, "fields": fields, "type": typedef.name,
                                             "what": {"label": typedef.title(language)}, "problem": problem},
                      status=422 if problem else 200)
