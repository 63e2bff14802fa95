"""Search from the header of every page: a record's number opens it (when the person may
read it); words search every type with a text index the person may read, each word as the
start of a word (accents and case folded: "impri" finds "Imprimante"), closed records
included, newest first, grouped by type. Each type is one index query within the
person's scope."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.errors import DeskbaseError
from deskbase.objects.fields import label_text
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import decide
from deskbase.rules.process.workflows import workflow_of

from .reading import Reading
from .suggestions import MIN_LETTERS, search_words

if TYPE_CHECKING:
    from .app import Web

PER_TYPE = 10              # records shown for each type
MAX_TYPED = 200            # characters of a search read at most


def _number(session, identity: Identity, typed: str) -> str | None:
    """The number of the record `typed` names, if there is one the person may read."""
    candidate = typed.strip().upper()
    if not candidate or " " in candidate:
        return None
    try:
        record = session.find(candidate)
    except DeskbaseError:                   # NotFound among them: no such record
        return None
    typedef = session.definitions.type(record.type_name)
    allowed = decide(identity, "read", typedef, record, definitions=session.definitions,
                     context=session.context(record.values))
    return record.number if allowed else None


def results(session, identity: Identity, typed: str, language: str) -> list[dict[str, Any]]:
    """Per type the person may read and that has a text index: the newest records holding
    every word (as a word start), with how many there are."""
    wanted = search_words(typed)
    if not wanted:
        return []
    reading = Reading(session, identity, language)
    found = []
    for typedef in session.definitions.types.values():
        if typedef.text_index is None or not decide(identity, "read", typedef, definitions=session.definitions):
            continue
        page = session.query(typedef.name, {"all": [{"text": f"{word}*"} for word in wanted]}, "-id",
                             limit=PER_TYPE)
        if not page.total:
            continue
        workflow = workflow_of(session.definitions, typedef.name)        # its state, where it has one
        found.append({"plural": label_text(typedef.plural, language, typedef.title(language)), "total": page.total,
                      "rows": [{"number": record.number,
                                "title": str(record.get(typedef.title_field) or "") if typedef.title_field else "",
                                "state": reading.text(typedef, workflow.field, record.get(workflow.field))
                                if workflow is not None else "",
                                "at": reading.moment(record.get("created_at"))}
                               for record in page.records]})
    return found


def search(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """GET /search?q=…: a number opens its record; words list what matches, by type."""
    typed = str(request.query_params.get("q", ""))[:MAX_TYPED].strip()
    language = web.language_of(identity)
    number = web.store.read(lambda session: _number(session, identity, typed), identity=identity) if typed else None
    if number is not None:
        return RedirectResponse(f"/r/{number}", status_code=303)
    groups = web.store.read(lambda session: results(session, identity, typed, language), identity=identity) \
        if typed else []
    return web.render(request, "search.html", {"q": typed, "groups": groups, "min_letters": MIN_LETTERS,
                                               "searched": bool(search_words(typed))},
                      web_session=web_session, identity=identity)
