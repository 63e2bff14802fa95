"""Creating and editing records from the web: forms generated from the type, errors shown
next to their field with what was typed kept, edits made from an older version refused,
dependent choices reloaded by htmx, and attachments uploaded and downloaded."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.errors import DeskbaseError, FieldError, NotFound, StaleEdit, ValidationError
from deskbase.objects.fields import AttachmentsKind, Upload
from deskbase.objects.words import N_
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import AccessDenied, decide, fixed_values, hidden_fields, me_values, readonly_fields
from deskbase.rules.process.approvals import approval_chains
from deskbase.rules.process.timers import clock_fields
from deskbase.rules.process.workflows import workflow_of

from . import said
from .forms import submitted, widgets
from .i18n import translator
from .people import logins_of, person_fields

if TYPE_CHECKING:
    from .app import Web



def version_sent(form) -> int | None:
    """The version of the record a form was drawn from (None: not sent); FieldError when it
    is not one."""
    text = str(form.get("version") or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 12:
        raise FieldError("the form's version of the record is not a number; reload the page and try again")
    return int(text)

def creatable(web: "Web", identity: Identity, language: str) -> list[dict[str, str]]:
    """The types this person may create records of, for the `New …` links."""
    return [{"type": name, "label": typedef.title(language), "url": f"/new/{name}"}
            for name, typedef in web.definitions.types.items()
            if decide(identity, "create", typedef, definitions=web.definitions).allowed]


def kept_by_rules(definitions, typedef) -> frozenset[str]:
    """Fields no form offers: the state a workflow moves, the deadlines and states timers keep,
    the state of an approval, the values copied from the records refs point at."""
    kept = {name for name, _ in typedef.copies}
    workflow = workflow_of(definitions, typedef.name)
    if workflow is not None:
        kept.add(workflow.field)
    kept.update(chain.state_field for chain in approval_chains(definitions).by_type.get(typedef.name, ()))
    kept.update(clock_fields(definitions, typedef.name))
    return frozenset(kept)


def entry_limits(definitions, identity: Identity, typedef, via: str) -> tuple[frozenset[str], frozenset[str], dict]:
    """What a person's short form for an entry written on a record (through its ref `via`)
    does not ask — fields hidden or read-only to them, kept by rules, fixed by their scope,
    and the ref itself — with the read-only fields and the fixed values."""
    pinned = fixed_values(identity, "create", typedef, definitions)
    readonly = frozenset(readonly_fields(identity, typedef, definitions))
    closed = (hidden_fields(identity, typedef, definitions) | kept_by_rules(definitions, typedef)
              | readonly | set(pinned) | {via})
    return frozenset(closed), readonly, pinned


def readable_record(session, identity: Identity, number: str):
    """The record numbered `number` and its type, if the person may read it; otherwise
    NotFound, as if it did not exist."""
    record = session.find(number)
    typedef = session.definitions.type(record.type_name)
    if not decide(identity, "read", typedef, record, definitions=session.definitions,
                  context=session.context(record.values)):
        raise NotFound(f"there is no record numbered `{number}`")
    return record, typedef


def _uploads(request: Request, typedef, allowed: set[str]) -> dict[str, list[Upload]]:
    found: dict[str, list[Upload]] = {}
    for name in allowed:
        if not isinstance(typedef.fields[name].kind, AttachmentsKind):
            continue
        files = [item for item in request.state.form.getlist(name) if getattr(item, "filename", None)]
        if files:
            found[name] = [Upload(item.filename, item.file.read(), item.content_type or "application/octet-stream")
                           for item in files]
    return found


def role_form(identity: Identity, typedef) -> tuple[str, ...] | None:
    """The fields the form of one of the person's roles asks when they make a record of the
    type, in order (`forms:`), or None: every field they may set."""
    form = _form_of(identity, typedef)
    return form["fields"] if form is not None else None


def form_sets(identity: Identity, typedef) -> dict[str, Any]:
    """The values the person's form sets whatever is sent (`$me.person`: their own record)."""
    return me_values(identity, (_form_of(identity, typedef) or {}).get("set") or {})


def _form_of(identity: Identity, typedef) -> Mapping[str, Any] | None:
    return next((typedef.forms[role] for role in identity.roles if role in typedef.forms), None)


def _form_page(web: "Web", request: Request, web_session, identity: Identity, *, typedef, values, action: str,
               title: str, status: int = 200, errors=None, typed=None, problem: str | None = None,
               version: int | None = None, creating: bool, pinned: Mapping[str, Any] | None = None) -> Response:
    language = web.language_of(identity)
    pinned = pinned if pinned is not None else (fixed_values(identity, "create", typedef, web.definitions)
                                                if creating else {})
    hidden = hidden_fields(identity, typedef, web.definitions) | kept_by_rules(web.definitions, typedef) | set(pinned)
    readonly = readonly_fields(identity, typedef, web.definitions)
    if creating:
        hidden |= readonly                 # what a person may not set, a new record gets by default
    values = {**values, **pinned}          # dependent choices follow the pinned values too

    asked = role_form(identity, typedef) if creating else None

    def work(session):
        found = widgets(session, typedef, values, language=language, hidden=hidden, readonly=readonly,
                        errors=errors, typed=typed, creating=creating, only=asked)
        return sorted(found, key=lambda widget: asked.index(widget.name)) if asked else found
    fields = web.store.read(work, identity=identity)
    unseen = {name: why for name, why in (errors or {}).items() if name not in {field.name for field in fields}}
    if unseen:                              # a refusal about a field the form does not show: say it here
        problem = " ".join([problem or ""] + [f"{typedef.fields[name].title(language) if name in typedef.fields else name}:"
                                               f" {why}." for name, why in unseen.items()]).strip()
    return web.render(request, "form.html", {"title": title, "fields": fields, "action": action, "type": typedef.name,
                                             "problem": problem, "version": version},
                      status=status, web_session=web_session, identity=identity)


def new_record(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    typedef = web.definitions.types.get(request.path_params["type"])
    language = web.language_of(identity)
    if typedef is None or not decide(identity, "create", typedef, definitions=web.definitions):
        return web.render(request, "error.html", {"message": "You may not create records of this kind."},
                          status=403, web_session=web_session, identity=identity)
    title = f"{typedef.title(language)}"
    action = f"/new/{typedef.name}"
    pinned = {**form_sets(identity, typedef),             # the person's form and scope decide them
              **fixed_values(identity, "create", typedef, web.definitions)}
    hidden = (hidden_fields(identity, typedef, web.definitions) | kept_by_rules(web.definitions, typedef) | set(pinned)
              | readonly_fields(identity, typedef, web.definitions))          # not theirs to set: the defaults
    shown = {n for n, f in typedef.fields.items() if not f.system and n not in hidden and f.kind.writable}
    asked = role_form(identity, typedef)
    if asked is not None:                    # the role's own form: what it asks, the rest by default
        shown &= set(asked)
    if request.method == "GET":
        prefill = {name: value for name, value in request.query_params.items() if name in shown}
        return _form_page(web, request, web_session, identity, typedef=typedef, values={}, typed=prefill,
                          action=action + (f"?{request.url.query}" if request.url.query else ""), title=title,
                          creating=True, pinned=pinned)
    form = request.state.form
    values = submitted(typedef, form, {n: form.getlist(n) for n in shown}, allowed=shown)
    values = {name: value for name, value in values.items() if value not in (None, [], False) or name in form}
    values.update(_uploads(request, typedef, shown))
    values.update(pinned)
    try:
        number = web.store.run(lambda session: session.create(
            typedef.name, logins_of(session, values, person_fields(typedef.fields))).number, identity=identity)
        back = request.query_params.get("return", "")
    except ValidationError as error:
        return _form_page(web, request, web_session, identity, typedef=typedef, values={}, typed=_typed(form, shown),
                          errors=error.errors, action=action, title=title, status=422, creating=True,
                          problem=_problem(error))
    except (AccessDenied, DeskbaseError) as error:
        return _form_page(web, request, web_session, identity, typedef=typedef, values={}, typed=_typed(form, shown),
                          errors=getattr(error, "fields", None), action=action, title=title, status=422,
                          creating=True, problem=str(error))
    # Added from a record's page (a reply): back to that page.
    return said.say(RedirectResponse(back if back.startswith("/r/") else f"/r/{number}", status_code=303),
                    translator(language)(N_("{type} {number} saved."), type=typedef.title(language), number=number))


def edit_record(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    number = request.path_params["number"]
    language = web.language_of(identity)

    def load(session):
        record, typedef = readable_record(session, identity, number)
        may = decide(identity, "update", typedef, record, definitions=web.definitions,
                     context=session.context(record.values))
        return typedef, dict(record.values), record.version, may
    try:
        typedef, values, version, may = web.store.read(load, identity=identity)
    except NotFound as error:
        return web.render(request, "error.html", {"message": str(error)}, status=404,
                          web_session=web_session, identity=identity)
    title = f"{number} – {typedef.title(language)}"
    action = f"/r/{number}/edit"
    if not may:
        return web.render(request, "error.html", {"message": may.reason}, status=403,
                          web_session=web_session, identity=identity)
    hidden = hidden_fields(identity, typedef, web.definitions) | kept_by_rules(web.definitions, typedef)
    readonly = readonly_fields(identity, typedef, web.definitions)
    shown = {n for n, f in typedef.fields.items()
             if not f.system and n not in hidden and n not in readonly and f.kind.writable}
    if request.method == "GET":
        return _form_page(web, request, web_session, identity, typedef=typedef, values=values, action=action,
                          title=title, version=version, creating=False)
    form = request.state.form
    changes = submitted(typedef, form, {n: form.getlist(n) for n in shown}, allowed=shown & _sent(form))
    changes.update(_uploads(request, typedef, shown))
    sent_version = None
    try:
        sent_version = version_sent(form)
        web.store.run(lambda session: session.update(number, _changed_only(
                          session, number, logins_of(session, changes, person_fields(typedef.fields))),
                                                     version=sent_version), identity=identity)
    except StaleEdit as error:
        return _form_page(web, request, web_session, identity, typedef=typedef, values=values, typed=_typed(form, shown),
                          action=action, title=title, status=409, version=version, creating=False,
                          problem=str(error))
    except ValidationError as error:
        return _form_page(web, request, web_session, identity, typedef=typedef, values=values, typed=_typed(form, shown),
                          errors=error.errors, action=action, title=title, status=422, version=sent_version or version,
                          creating=False, problem=_problem(error))
    except (AccessDenied, DeskbaseError) as error:
        return _form_page(web, request, web_session, identity, typedef=typedef, values=values, typed=_typed(form, shown),
                          errors=getattr(error, "fields", None), action=action, title=title, status=422,
                          version=sent_version or version, creating=False, problem=str(error))
    return said.say(RedirectResponse(f"/r/{number}", status_code=303),
                    translator(language)(N_("{type} {number} saved."), type=typedef.title(language), number=number))


def _sent(form) -> set[str]:
    """The fields a form carried (a checkbox left unticked is not sent: its `present` marker is)."""
    return set(form.keys()) | {key[len("present:"):] for key in form.keys() if key.startswith("present:")}


def _changed_only(session, number: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Leave out what did not change, so that an untouched field a person may see but whose
    value they could not have typed the same way (a ref shown as a number) is not rewritten."""
    record = session.find(number)
    typedef = session.definitions.type(record.type_name)
    kept = {}
    for name, value in changes.items():
        kind = typedef.fields[name].kind
        try:
            coerced = kind.coerce(value, session.lookup) if not isinstance(value, list) or kind.name == "refs" \
                else value
        except (DeskbaseError, ValueError):
            kept[name] = value                  # let the write path word the error
            continue
        if isinstance(kind, AttachmentsKind) or coerced != record.get(name):
            kept[name] = value
    return kept


def _typed(form, shown: set[str]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for name in shown:
        items = [item for item in form.getlist(name) if isinstance(item, str)]
        if len(items) > 1:
            typed[name] = items
        elif items:
            typed[name] = items[0]
    return typed


def _problem(error: ValidationError) -> str:
    count = len(error.errors)
    return "Please correct the field below." if count == 1 else f"Please correct the {count} fields below."


def field_widget(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """One field of a form drawn again from the values typed so far (dependent choices)."""
    typedef = web.definitions.types.get(request.path_params["type"])
    name = request.path_params["field"]
    if typedef is None or name not in typedef.fields:
        return Response(status_code=404)
    language = web.language_of(identity)
    hidden = hidden_fields(identity, typedef, web.definitions)
    typed = {key: value for key, value in request.query_params.items() if key in typedef.fields}

    def work(session):
        return widgets(session, typedef, {}, language=language, hidden=hidden, readonly=frozenset(), typed=typed,
                       only=(name,))
    found = web.store.read(work, identity=identity)
    if not found:
        return Response(status_code=404)
    prefix = request.query_params.get("prefix", "")
    return web.render(request, "_widget.html",
                      {"field": found[0], "type": typedef.name, "prefix": prefix if _PREFIX.fullmatch(prefix) else ""},
                      web_session=web_session, identity=identity)


_PREFIX = re.compile(r"[a-z0-9_-]{0,40}")


# What a file's first bytes say it is, for the kinds a page may show (`?view=1`): pictures
# as thumbnails, PDFs in the browser's viewer. Anything else, and anything whose bytes do
# not say so whatever its name, is only ever downloaded.
_SHOWN = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"), (b"%PDF-", "application/pdf"))


def shown_kind(content: bytes) -> str | None:
    """The content type a page may show a file as, from its bytes; None: download only."""
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _SHOWN if content.startswith(magic)), None)


def preview_of(item) -> str | None:
    """`image` or `pdf` when a stored file looks like one by its name and type (its bytes
    decide when it is served), else None."""
    name, kind = item.filename.lower(), (getattr(item, "content_type", "") or "").lower()
    if kind in ("image/png", "image/jpeg", "image/gif", "image/webp") or name.endswith((".png", ".jpg", ".jpeg",
                                                                                          ".gif", ".webp")):
        return "image"
    if kind == "application/pdf" or name.endswith(".pdf"):
        return "pdf"
    return None


def download(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """A file of a record the person may read: downloaded; with `?view=1`, a picture or a PDF
    (by its bytes) is shown in the page instead, locked down."""
    number, blob_id = request.path_params["number"], request.path_params["file"]

    def work(session):
        record = session.find(number)
        typedef = web.definitions.type(record.type_name)
        if not decide(identity, "read", typedef, record, definitions=web.definitions,
                      context=session.context(record.values)):
            raise NotFound("no such file")
        hidden = hidden_fields(identity, typedef, web.definitions)
        for name, definition in typedef.fields.items():
            if isinstance(definition.kind, AttachmentsKind) and name not in hidden:
                for item in record.get(name) or ():
                    if item.blob_id == blob_id:
                        return item.filename, item.read()
        raise NotFound("no such file")
    try:
        filename, content = web.store.read(work, identity=identity)
    except NotFound:
        return web.render(request, "error.html", {"message": "There is no such file."}, status=404,
                          web_session=web_session, identity=identity)
    shown = shown_kind(content) if request.query_params.get("view") == "1" else None
    if shown is not None:
        return Response(content, media_type=shown,
                        headers={"Content-Disposition": f"inline; filename*=UTF-8''{quote(filename)}",
                                 "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
                                 if shown.startswith("image/") else "default-src 'none'; object-src 'self'"})
    return Response(content, media_type="application/octet-stream",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
                             "X-Content-Type-Options": "nosniff"})
