"""Documents on the web: the PDF documents a person may make of a record, listed on its page,
downloaded as attachments, and kept in the record's field on request."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.errors import DeskbaseError, NotFound
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import AccessDenied
from deskbase.rules.documents.making import keep_copy, may_keep_copy, offered, render

if TYPE_CHECKING:
    from .app import Web


def document_links(session, record, language: str) -> list[dict[str, Any]]:
    """The documents of a record its reader may make: label, download link, and the address
    that keeps a copy when they may also store it in the record."""
    return [{"name": document.name, "label": document.title(language),
             "url": f"/r/{record.number}/documents/{document.name}.pdf",
             "keep": f"/r/{record.number}/documents/{document.name}/keep"
             if may_keep_copy(session, document, record) else None}
            for document in offered(session, record)]


def download(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """A document of a record, made now as the person and sent as a download."""
    number, name = request.path_params["number"], request.path_params["name"]
    language = web.language_of(identity)
    try:
        made = web.store.read(lambda session: render(session, name, number, language=language), identity=identity)
    except (NotFound, AccessDenied):
        # Whether the record or the document exists is not told to whom may not make it.
        return web.render(request, "error.html", {"message": "There is no such document."}, status=404,
                          web_session=web_session, identity=identity)
    except DeskbaseError as error:
        return web.render(request, "error.html", {"message": str(error)}, status=500,
                          web_session=web_session, identity=identity)
    return Response(made.pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(made.filename)}",
                             "X-Content-Type-Options": "nosniff"})


def keep(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """Make a document as the person and keep it in the record's field (a POST with the form's
    token); the write path checks that they may change that field."""
    number, name = request.path_params["number"], request.path_params["name"]
    language = web.language_of(identity)
    try:
        web.store.run(lambda session: keep_copy(session, name, number, language=language), identity=identity)
    except NotFound:
        return web.render(request, "error.html", {"message": "There is no such document."}, status=404,
                          web_session=web_session, identity=identity)
    except DeskbaseError as error:
        return web.record_page(request, web_session, identity, problem=str(error), status=422)
    return RedirectResponse(f"/r/{number}", status_code=303)
