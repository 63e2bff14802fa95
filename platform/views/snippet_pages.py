"""Texts kept as records (reply templates) inserted into an entry's text field on a record's
page: the short form offers those the person may read (`offer`); choosing one draws the
field again with the text added, its placeholders filled from the record as the person reads
it, and the fields the snippet sets (`copy`) drawn again beside it (htmx out-of-band)."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from deskbase.objects.errors import DeskbaseError, NotFound
from deskbase.objects.model import TypeDef
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import decide
from deskbase.rules.documents import snippets
from deskbase.rules.documents.snippets import SnippetError

from .editing import entry_limits, readable_record
from .forms import Widget, widgets

if TYPE_CHECKING:
    from .app import Web

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_PREFIX = re.compile(r"[a-z0-9_-]{0,60}")


def offer(session, typedef: TypeDef, widget: Widget, record, *, prefix: str, language: str) -> None:
    """Give a text widget of an entry written on `record` the snippets it may insert."""
    field = typedef.fields[widget.name]
    if field.snippets is None or typedef.fields[field.snippets["via"]].kind.to != record.type_name \
            or widget.readonly:
        return
    source = session.definitions.type(field.snippets["type"])
    widget.snippets = [(str(found.id), str(found.get(source.title_field) or found.number) if source.title_field
                        else found.number) for found in snippets.offered(session, typedef, field, record)]
    widget.snippet_url = f"/r/{record.number}/snippets/{typedef.name}/{field.name}?prefix={prefix}"
    widget.snippet_label = source.title(language)


def insert(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """GET: the text field with the chosen snippet added to what was typed, and the fields it sets."""
    number, type_name, name = (request.path_params[key] for key in ("number", "type", "field"))
    query = request.query_params
    prefix = query.get("prefix", "")
    if not (_NAME.fullmatch(type_name) and _NAME.fullmatch(name) and _PREFIX.fullmatch(prefix)):
        return web.render(request, "_alert.html", {"message": "There is nothing to insert here."}, status=404)
    language = web.language_of(identity)

    def work(session):
        record, _ = readable_record(session, identity, number)
        entry = web.definitions.types.get(type_name)
        field = entry.fields.get(name) if entry is not None else None
        if field is None or field.snippets is None or entry.fields[field.snippets["via"]].kind.to != record.type_name \
                or not decide(identity, "create", entry, definitions=web.definitions):
            raise NotFound(f"no text can be inserted into `{name}` here")
        closed, readonly, pinned = entry_limits(web.definitions, identity, entry, field.snippets["via"])
        if name in closed:
            raise NotFound(f"no text can be inserted into `{name}` here")
        typed = query.get(name, "")
        problem, filled = "", None
        try:
            filled = snippets.fill(session, identity, entry, field, record, query.get("snippet"), language)
        except SnippetError as error:
            problem = str(error)
        text = typed if filled is None else (f"{typed.rstrip()}\n\n{filled.text}" if typed.strip() else filled.text)
        copied = {mine: value for mine, value in (filled.values if filled else {}).items() if mine not in closed}
        shown = widgets(session, entry, {**pinned, **copied}, language=language, hidden=closed - {name},
                        readonly=readonly, typed={name: text}, errors={name: problem} if problem else None,
                        only=(name, *copied))
        for widget in shown:
            if widget.name == name:
                offer(session, entry, widget, record, prefix=prefix, language=language)
        return {"fields": shown, "text_field": name, "type": type_name, "prefix": prefix}
    try:
        context = web.store.read(work, identity=identity)
    except NotFound as error:
        return web.render(request, "_alert.html", {"message": str(error)}, status=404)
    except DeskbaseError as error:
        return web.render(request, "_alert.html", {"message": str(error)}, status=422)
    return web.render(request, "_snippet.html", context, web_session=web_session, identity=identity)
