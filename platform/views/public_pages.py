"""The public forms' pages (`/p/<form>`, T1): a visitor without an account sends a request.
Spam is kept out by a field people never see (a robot filling it is told all went well
and nothing is stored) and by a limit of submissions per address and hour."""
from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.errors import DeskbaseError, ValidationError
from deskbase.objects.fields import label_text
from deskbase.objects.store import Store
from deskbase.rules.intake.public_forms import public_forms, submit

from . import said
from .forms import submitted, widgets
from .i18n import translator
from .limits import KeptMoments

if TYPE_CHECKING:
    from .app import Web

SUBMISSIONS_KEY = "deskbase.public_submissions"
HONEYPOT = "website"        # hidden from people by the page's style; robots fill every field


class SubmissionLimit:
    """At most `count` submissions per address within `window` seconds, counted in the
    database: every server process in front of it enforces the one limit."""

    def __init__(self, store: Store, count: int = 5, window: float = 3600.0):
        self.sent = KeptMoments(store, SUBMISSIONS_KEY, window)
        self.count = count

    def allow(self, address: str) -> bool:
        return self.sent.take(address, self.count)


def public_page(web: "Web", request: Request) -> Response:
    form = public_forms(web.definitions).get(request.path_params["form"])
    if form is None:
        return web.render(request, "error.html", {"message": "There is no such form."}, status=404)
    language = web.definitions.languages[0]
    typedef = web.definitions.type(form.type)
    title = label_text(form.label, language, typedef.title(language))
    shown = set(form.fields)
    context = {"title": title, "form": form.name, "asks_sender": form.sender is not None}
    typed, errors, status = {}, {}, 200
    if request.method == "POST":
        sent = request.state.form
        if sent.get(HONEYPOT):
            return _thanked(web, form.name, None)                # a robot: nothing stored, and told as much as anyone
        if not web.submissions.allow(request.client.host if request.client else "?"):
            return web.render(request, "public.html", {**context, "limited": True}, status=429)
        values = submitted(typedef, sent, {n: sent.getlist(n) for n in shown}, allowed=shown)
        try:
            number = submit(web.store, form, {k: v for k, v in values.items() if v not in (None, "")},
                            email=str(sent.get("email", "")), name=str(sent.get("name", "")))
            return _thanked(web, form.name, number)
        except ValidationError as error:
            typed, errors, status = {n: sent.get(n) for n in shown}, error.errors, 422
            context.update(email=sent.get("email", ""), name=sent.get("name", ""),
                           email_error=error.errors.get("email", ""))
        except DeskbaseError as error:
            typed, status = {n: sent.get(n) for n in shown}, 422
            context["problem"] = str(error)
    hidden = frozenset(n for n in typedef.fields if n not in shown)
    fields = web.store.read(lambda session: widgets(session, typedef, {}, language=language, hidden=hidden,
                                                    readonly=frozenset(), errors=errors, typed=typed))
    return web.render(request, "public.html", {**context, "fields": fields, "type": typedef.name}, status=status)


def _thanked(web: "Web", name: str, number: str | None) -> Response:
    """The form again, empty, saying the request is registered (and its number): a reload
    sends nothing twice."""
    t = translator(web.definitions.languages[0])
    its_number = t("Its number:")
    text = t("Thank you: your request is registered.") + (f" {its_number} {number}" if number else "")
    return said.say(RedirectResponse(f"/p/{name}", status_code=303), text)
