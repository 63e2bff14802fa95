"""The administrator's "Explain" panel of a record's page: for an account chosen by login,
why it may or may not read and change the record, how the record's timers count and what
the notification rules did on its last changes (`explaining.py`), loaded in place with
htmx. To anyone but an administrator the panel and its address do not exist."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from deskbase.objects.errors import NotFound
from deskbase.rules.access.identity import AccountError, Identity

from .admin_pages import is_administrator, not_here
from .explaining import Line, Part, explain
from .i18n import translator
from .people import people

if TYPE_CHECKING:
    from .app import Web

MAX_LOGIN = 200          # characters of a login typed in the panel


def panel(web: "Web", session, identity: Identity) -> dict[str, Any] | None:
    """What the record page needs to draw the panel (the accounts to choose from), or None
    for anyone but an administrator."""
    if not is_administrator(identity):
        return None
    return {"people": people(session)}


def _nested(lines: tuple[Line, ...]) -> list[dict[str, Any]]:
    """Sentences as a tree: each with the sentences one level deeper that follow it."""
    root: list[dict[str, Any]] = []
    stack: list[tuple[int, list[dict[str, Any]]]] = [(-1, root)]
    for line in lines:
        while stack[-1][0] >= line.depth:
            stack.pop()
        children: list[dict[str, Any]] = []
        stack[-1][1].append({"pieces": _pieces(line.text), "children": children})
        stack.append((line.depth, children))
    return root


def _pieces(text: str) -> list[tuple[str, bool]]:
    """A sentence cut where it quotes the definitions (`status: [new]`): (text, whether quoted)."""
    return [(piece, position % 2 == 1) for position, piece in enumerate(text.split("`")) if piece]


def _sections(parts: list[Part]) -> list[dict[str, Any]]:
    return [{"title": part.title, "sentences": _nested(part.lines)} for part in parts]


def explain_record(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """GET `?login=`: the explanation for that account, as a fragment for htmx or as a page."""
    if not is_administrator(identity):
        return not_here(web, request, web_session, identity)
    t = translator(web.language_of(identity))
    number = request.path_params["number"]
    login = str(request.query_params.get("login", "")).strip()
    partial = request.headers.get("HX-Request") == "true"
    context: dict[str, Any] = {"number": number, "login": login, "sections": [], "problem": None}
    status = 200
    if not login:
        context["problem"], status = t("Give the login of the account to explain."), 400
    elif len(login) > MAX_LOGIN:
        context["problem"], status = t("There is no such account."), 404
    else:
        try:
            context["sections"] = _sections(explain(web.store, number, login, reader=identity))
        except (NotFound, AccountError) as error:
            context["problem"], status = str(error), 404
    return web.render(request, "_explanation.html" if partial else "explanation.html", context, status=status,
                      web_session=web_session, identity=identity)
