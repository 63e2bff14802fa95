"""Records suggested while a person types a field (`suggest:` in its definition): what was
typed so far is searched in the text index of the suggested type, among the records the
person may read and the suggestion's filter allows; the best few come back as links."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from deskbase.objects.errors import DeskbaseError
from deskbase.objects.fields import RefKind
from deskbase.objects.textsearch import words, words_of
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import decide

if TYPE_CHECKING:
    from .app import Web

LIMIT = 5            # links shown
CANDIDATES = 50      # records ranked to find them
MIN_LETTERS = 3      # shorter words (articles, "of", "is") find too much to help
PICKED = 10          # records offered under a ref field as it is typed


def search_words(typed: str) -> list[str]:
    """The words of what was typed worth searching, each as a prefix (the last one is
    still being typed), at most eight."""
    found = list(dict.fromkeys(word for word in words(typed) if len(word) >= MIN_LETTERS))
    return found[:8]


def suggested(session, spec, typed: str, limit: int = LIMIT) -> list:
    """The records of `spec["type"]` that best match `typed`: those holding the most of its
    words (by prefix), then the newest; read as the session's person."""
    wanted = search_words(typed)
    if not wanted:
        return []
    target = session.definitions.type(spec["type"])
    condition: dict[str, Any] = {"any": [{"text": f"{word}*"} for word in wanted]}
    if spec.get("filter"):
        condition = {"all": [dict(spec["filter"]), condition]}
    page = session.query(target.name, condition, "-id", limit=CANDIDATES)
    fields = target.text_index.fields

    def score(record) -> int:
        held = words_of(record.values, fields)
        return sum(1 for word in wanted if any(word_held.startswith(word) for word_held in held))
    ranked = sorted(page.records, key=lambda record: -score(record))   # stable: newest first among equals
    return ranked[:limit]


def suggestions(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """The links suggested for what is typed in a field (htmx fills them under the field)."""
    typedef = web.definitions.types.get(request.path_params["type"])
    name = request.path_params["field"]
    field = typedef.fields.get(name) if typedef is not None else None
    if field is None or field.suggest is None:
        return Response(status_code=404)
    target = web.definitions.type(field.suggest["type"])
    if not decide(identity, "read", target, definitions=web.definitions):
        return HTMLResponse("")
    typed = str(request.query_params.get(name, ""))[:500]
    language = web.language_of(identity)
    try:
        found = web.store.read(lambda session: [(record.number, record.get(target.title_field) or record.number)
                                                for record in suggested(session, field.suggest, typed)],
                               identity=identity)
    except DeskbaseError:
        found = []
    return web.render(request, "_suggestions.html", {"found": found, "target": target.title(language)},
                      web_session=web_session, identity=identity)


def pick(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """The records a ref field may point at that match what is typed in it (word starts in
    the target's text index, within the field's `where` for the form's values and what the
    person may read), newest first, as `<option>`s of the field's datalist."""
    typedef = web.definitions.types.get(request.path_params["type"])
    name = request.path_params["field"]
    field = typedef.fields.get(name) if typedef is not None else None
    if field is None or not isinstance(field.kind, RefKind):
        return Response(status_code=404)
    target = web.definitions.type(field.kind.to)
    typed = str(request.query_params.get(name, ""))[:200]
    wanted = search_words(typed)
    if target.text_index is None or not wanted or not decide(identity, "read", target, definitions=web.definitions):
        return HTMLResponse("")
    condition: dict[str, Any] = {"all": [{"text": f"{word}*"} for word in wanted]}
    if field.kind.where:
        condition = {"all": [dict(field.kind.where), condition]}
    values = {key: int(value) if value.isdigit() else value for key, value in request.query_params.items()
              if key in typedef.fields and key != name}

    def work(session) -> list[tuple[str, str]]:
        page = session.query(target.name, condition, "-id", limit=PICKED, context=session.context(values),
                             record_type=typedef.name)
        return [(record.number, str(record.get(target.title_field) or "") if target.title_field else "")
                for record in page.records]
    try:
        found = web.store.read(work, identity=identity)
    except DeskbaseError:
        found = []
    return web.render(request, "_picked.html", {"found": found}, web_session=web_session, identity=identity)
