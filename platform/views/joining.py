"""Adding oneself to a `users` field from a record's page, and leaving it: the people who
follow a record. The field's `join: {roles}` says who may; reading the record is enough,
no right to change it is needed. The change is written in the person's name."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.errors import DeskbaseError, NotFound
from deskbase.objects.fields import label_text
from deskbase.objects.model import FieldDef
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import hidden_fields

from . import said
from .editing import readable_record
from .i18n import translator

if TYPE_CHECKING:
    from .app import Web


def may_join(identity: Identity, field: FieldDef) -> bool:
    return field.join is not None and bool(set(identity.roles) & set(field.join["roles"]))


def button(identity: Identity, field: FieldDef, record, language: str) -> dict[str, Any] | None:
    """The button a person sees by the field on the record's page, or None: in or out."""
    if not may_join(identity, field):
        return None
    member = identity.id in (record.get(field.name) or ())
    t = translator(language)
    words = field.join.get("leave_label" if member else "label")
    return {"member": member, "label": label_text(words, language) if words else (t("Remove me") if member else t("Add me"))}


def join(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """POST: add the person to the field (`leave=1`: take them off), then back to the page."""
    number, name = request.path_params["number"], request.path_params["field"]
    leave = request.state.form.get("leave") == "1"

    def work(session) -> str:
        record, typedef = readable_record(session, identity, number)
        field = typedef.fields.get(name)
        if field is None or not may_join(identity, field) or name in hidden_fields(identity, typedef, web.definitions):
            raise NotFound(f"you cannot add yourself to `{name}` of {number}")
        logins = tuple(record.get(name) or ())
        wanted = tuple(login for login in logins if login != identity.id) if leave else \
            tuple(dict.fromkeys(logins + (identity.id,)))
        if wanted != logins:
            with session.as_engine():        # reading is enough to follow; the history names the person
                session.update(record, {name: wanted})
        return typedef.fields[name].title(web.language_of(identity))
    try:
        title = web.store.run(work, identity=identity)
    except NotFound as error:
        return web.render(request, "error.html", {"message": str(error)}, status=404,
                          web_session=web_session, identity=identity)
    except DeskbaseError as error:
        return web.record_page(request, web_session, identity, problem=str(error), status=422)
    t = translator(web.language_of(identity))
    return said.say(RedirectResponse(f"/r/{number}", status_code=303),
                    t("You left {list} of {number}.", list=title, number=number) if leave
                    else t("You are among {list} of {number}.", list=title, number=number))
