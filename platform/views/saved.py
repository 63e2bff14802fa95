"""Saved lists: a person keeps a list as they arranged it (sort, search, filter) under a
name of their own, offered in their navigation. Kept in the database, per account."""
from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from BTrees.OOBTree import OOBTree
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.kept_objects import kept_object
from deskbase.rules.access.identity import Identity

if TYPE_CHECKING:
    from .app import Web

SAVED_KEY = "deskbase.saved_lists"
KEPT = ("sort", "q", "f")       # what a saved list remembers of a page's address


def saved_lists(session, login: str) -> list[dict[str, str]]:
    """A person's saved lists, by name: {name, url}."""
    mine = (kept_object(session.connection, SAVED_KEY) or {}).get(login)
    return [{"name": name, "url": url} for name, url in (mine or {}).items()]


def save(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """Save the list page the form was sent from (POST name, query) under a name."""
    view = request.path_params["view"]
    form = request.state.form
    name = " ".join(str(form.get("name", "")).split())[:80]
    if not name or view not in {v["name"] for v in web.navigation(identity, "en")}:
        return Response("Give the list a name.", status_code=422)
    kept = [(key, value) for key, value in parse_qsl(str(form.get("query", ""))) if key in KEPT and value]
    url = f"/v/{view}" + (f"?{urlencode(kept)}" if kept else "")

    def work(session) -> None:
        everyone = kept_object(session.connection, SAVED_KEY, OOBTree)
        mine = everyone.get(identity.id)
        if mine is None:
            mine = everyone[identity.id] = OOBTree()
        mine[name] = url
    web.store.run(work)
    return RedirectResponse(url, status_code=303)


def forget(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    name = str(request.state.form.get("name", ""))

    def work(session) -> None:
        mine = (kept_object(session.connection, SAVED_KEY) or {}).get(identity.id)
        if mine is not None:
            mine.pop(name, None)
    web.store.run(work)
    return RedirectResponse("/", status_code=303)
