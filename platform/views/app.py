"""The web interface: a Starlette application built from a store and its definitions. Pages
are server-rendered Jinja2 templates; htmx swaps parts of them (a list's table on sort,
search and paging). Everything a page shows is read as the signed-in person, so their
access scopes apply to every list, count and record."""
from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import pass_context
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from ZODB.POSException import ConflictError

from deskbase.objects.errors import NotFound, QueryError
from deskbase.objects.fields import label_text
from deskbase.objects.store import Store
from deskbase.objects.words import N_
from deskbase.rules.access.directory import directory_settings
from deskbase.rules.access.identity import AccountError, Identity, LoginRefused, authenticate, identity_of, set_password
from deskbase.rules.access.scopes import decide, hidden_fields
from deskbase.rules.documents.formatting import datetime_text

from . import (
    admin_pages,
    approval_pages,
    bulk,
    document_pages,
    editing,
    explain_pages,
    export,
    filter_builder,
    imports,
    joining,
    link_pages,
    public_pages,
    record_page,
    said,
    saved,
    search_pages,
    snippet_pages,
    stopwatch,
    suggestions,
)
from .api import MAX_REQUEST, TOO_LARGE, BodyTooLarge, api_mount
from .charts import KeptFigures, chart_of
from .display import field_text, moment_of
from .i18n import language_name, plural_translator, translator
from .lists import column_title, read_listing
from .monitoring import Monitoring, RequestTimer, monitoring_networks
from .reloading import Reloading, reload_status
from .sessions import COOKIE, SignInThrottle, close_session, close_sessions_of, find_session, open_session

HERE = Path(__file__).parent
PAGE_SIZE = 25
LOGIN_CSRF = "deskbase_login_csrf"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
BUSY = "Many people are changing the same records at this moment; nothing was saved. Try again in a second."


@dataclass(frozen=True)
class Frame:
    """The page context around every page's body: who reads it, in which language and zone,
    their menu and lists, and what the last action said."""

    me: Identity | None
    csrf: str
    language: str
    t: Callable[..., str]
    tn: Callable[..., str]
    zone: str
    portal: bool
    navigation: Any
    menu: Any
    creatable: list[Any]
    saved: list[Any]
    said: str
    reloading: Reloading | None = None      # a server started with --reload: its state

    def context(self) -> dict[str, Any]:
        """Its values by name, as the templates read them (not copied: `me` stays an Identity)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


CHARTS_FRESH = 60.0     # seconds a home page's chart is drawn from the figures last worked out


class Web:
    """The pages of one store. Build it with `create_app`."""

    def __init__(self, store: Store, *, secure_cookies: bool = False, reloading: Reloading | None = None,
                 charts_fresh: float = CHARTS_FRESH):
        self.store = store
        self.secure_cookies = secure_cookies
        self.reloading = reloading
        self._navigation: dict[tuple, tuple[Any, list[dict[str, str]]]] = {}   # (definitions, views offered)
        self.throttle = SignInThrottle(store)
        self.exports = export.ExportJobs(store)               # background exports, kept in the database
        self.submissions = public_pages.SubmissionLimit(store)     # public forms sent per address
        self.kept_figures = KeptFigures(store, fresh=charts_fresh)  # the home pages' charts, a while
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["label_text"] = label_text
        self.templates.env.filters["moment"] = _moment_filter

    @property
    def definitions(self):
        """The store's definitions, read at each use: a reloading server swaps them."""
        return self.store.definitions

    # -- who is asking ---------------------------------------------------------------------

    def visitor(self, request: Request) -> tuple[Any, Identity | None]:
        session = find_session(self.store, request.cookies.get(COOKIE))
        if session is None:
            return None, None
        try:
            return session, identity_of(self.store, session.login)
        except (AccountError, NotFound):          # disabled or removed since signing in
            return None, None

    def record_page(self, request: Request, web_session, identity: Identity, **options: Any) -> Response:
        """The page of the record the request names; `options` as for `record_page.record_page`
        (a problem to show after a refused action, its status)."""
        return record_page.record_page(self, request, web_session, identity, **options)

    def frame(self, request: Request, web_session, identity: Identity | None) -> "Frame":
        """What every page around its body shows, for this person, read once per page."""
        language = self.language_of(identity)
        signed_in = identity is not None
        return Frame(
            me=identity, csrf=getattr(web_session, "csrf", ""), language=language, t=translator(language),
            tn=plural_translator(language),
            zone=self.definitions.zone,
            portal=identity is not None and bool(identity.roles) and not identity.superuser and all(
                (self.definitions.roles.get(role) or {}).get("portal") for role in identity.roles),
            navigation=self.navigation(identity, language), menu=self.menu(identity, language),
            creatable=editing.creatable(self, identity, language) if signed_in else [],
            saved=self.store.read(lambda s: saved.saved_lists(s, identity.id)) if identity is not None else [],
            said=said.heard(request), reloading=self.reloading)

    def language_of(self, identity: Identity | None) -> str:
        """The language a person reads the pages in: their own, else the application's first."""
        return getattr(identity, "language", None) or self.definitions.languages[0]

    def render(self, request: Request, template: str, context: Mapping[str, Any], *, status: int = 200,
               web_session=None, identity: Identity | None = None) -> HTMLResponse:
        frame = self.frame(request, web_session, identity)
        response = self.templates.TemplateResponse(request, template, {**frame.context(), "request": request,
                                                                       **context}, status_code=status)
        if frame.said:
            said.forget(response)                # said once
        return response

    def _role_lists(self, identity: Identity, key: str) -> list[Any]:
        """What the person's roles say under `key` (`menu`, `home`), in the order of their roles."""
        return [item for role in identity.roles for item in (self.definitions.roles.get(role) or {}).get(key) or ()]

    def menu(self, identity: Identity | None, language: str) -> list[dict[str, Any]]:
        """The side menu: the sections the person's roles declare (`menu:`), each with the views
        it offers them, then the other lists they may open, folded; without `menu:`, one section."""
        offered = {entry["name"]: entry for entry in self.navigation(identity, language)}
        if identity is None or not offered:
            return []
        sections: dict[str, dict[str, Any]] = {}
        placed: set[str] = set()
        for section in self._role_lists(identity, "menu"):
            label = label_text(section.get("label"), language, "")
            entries = sections.setdefault(label, {"label": label, "entries": [], "folded": False})["entries"]
            for name in section.get("views") or ():
                if name in offered and name not in placed:
                    entries.append(offered[name])
                    placed.add(name)
        rest = [entry for name, entry in offered.items() if name not in placed]
        if rest:
            label = translator(language)(N_("Other lists")) if sections else ""
            sections[label] = {"label": label, "entries": rest, "folded": bool(placed)}
        if identity.superuser:
            t = translator(language)
            sections[t("Administration")] = {"label": t("Administration"), "folded": False, "entries": [
                {"name": "admin_accounts", "label": t("Accounts"), "url": "/admin/accounts"},
                {"name": "admin_keys", "label": t("API keys"), "url": "/admin/keys"},
                {"name": "admin_outbox", "label": t("Outbox"), "url": "/admin/outbox"},
                {"name": "admin_quarantine", "label": t("Mail quarantine"), "url": "/admin/quarantine"},
                {"name": "admin_jobs", "label": t("Jobs"), "url": "/admin/jobs"}]}
            if directory_settings(self.definitions) is not None:
                sections[t("Administration")]["entries"].append(
                    {"name": "admin_directory", "label": t("Directory"), "url": "/admin/directory"})
        return [section for section in sections.values() if section["entries"]]

    def navigation(self, identity: Identity | None, language: str) -> list[dict[str, str]]:
        """The list views offered to this person: those naming one of their roles (every view
        for a superuser), of types they may read."""
        if identity is None:
            return []
        # What it depends on: the definitions, the roles and the language (read on every page).
        key = (id(self.definitions), tuple(identity.roles), bool(identity.superuser), language)
        known = self._navigation.get(key)
        if known is not None and known[0] is self.definitions:
            return [dict(entry) for entry in known[1]]
        found = []
        for view in self.definitions.views.values():
            if view.roles and not identity.superuser and not set(view.roles) & set(identity.roles):
                continue
            typedef = self.definitions.type(view.type)
            if not decide(identity, "read", typedef, definitions=self.definitions):
                continue
            found.append({"name": view.name, "label": label_text(view.label, language, view.name),
                          "url": f"/v/{view.name}"})
        if len(self._navigation) > 1024:
            self._navigation.clear()
        self._navigation[key] = (self.definitions, found)
        return [dict(entry) for entry in found]

    # -- signing in and out ----------------------------------------------------------------

    def sign_in_page(self, request: Request) -> Response:
        """The sign-in form. It has no session yet, so a token in a cookie of its own, sent
        back in the form, guards it against cross-site posts."""
        if request.method == "POST":
            return self._sign_in(request)
        token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(24)
        response = self.render(request, "login.html", {"next": _safe_next(request.query_params.get("next", "/")),
                                                        "csrf": token})
        response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=self.secure_cookies,
                            path="/login")
        return response

    def _login_form(self, request: Request, status: int, **context: Any) -> Response:
        return self.render(request, "login.html", {"csrf": request.cookies.get(LOGIN_CSRF, ""), **context},
                           status=status)

    def _sign_in(self, request: Request) -> Response:
        from deskbase.connectors.sign_in import UNREACHABLE, sign_in  # the directory, when the definitions have one
        form = _form(request)
        login, password = str(form.get("login", "")).strip(), str(form.get("password", ""))
        target = _safe_next(str(form.get("next") or "/"))
        address = request.client.host if request.client else "?"
        wait = self.throttle.wait_for(login, address)
        if wait:
            minutes = max(1, round(wait / 60))
            error = translator(self.definitions.languages[0])(N_("Too many failed sign-ins: try again in {minutes} min."),
                                                              minutes=minutes)
            return self._login_form(request, 429, error=error, login=login, next=target)
        try:
            identity = sign_in(self.store, login, password)
        except LoginRefused as refused:
            if refused.reason != UNREACHABLE:       # no password was checked: not a guess to count
                self.throttle.failed(login, address)
            error = translator(self.definitions.languages[0])(refused.reason)
            return self._login_form(request, 503 if refused.reason == UNREACHABLE else 401, error=error,
                                    login=login, next=target)
        self.throttle.succeeded(login, address)
        session = open_session(self.store, identity.id)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="lax", secure=self.secure_cookies,
                            max_age=12 * 3600, path="/")
        return response

    def sign_out(self, request: Request) -> Response:
        close_session(self.store, request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    def account_page(self, request: Request, web_session, identity: Identity) -> Response:
        """Change one's password: the current one, the new one twice. Every other session of
        the account ends, so a stolen session does not outlive the change."""
        t = translator(self.language_of(identity))
        from deskbase.rules.access.identity import DIRECTORY, find_account, update_account
        account = find_account(self.store, identity.id)
        languages = [(code, language_name(code)) for code in self.definitions.languages]
        own = {"languages": languages, "language": self.language_of(identity)}
        form = _form(request) if request.method == "POST" else {}
        if form.get("action") == "language":        # one's own language, directory accounts too
            chosen = str(form.get("language", ""))
            if chosen not in self.definitions.languages:
                return self.render(request, "account.html", {**own, "problem": t("Choose one of the languages offered.")},
                                   status=422, web_session=web_session, identity=identity)
            update_account(self.store, identity.id, language=chosen, language_chosen=True)
            return said.say(RedirectResponse("/account", status_code=303),
                            translator(chosen)(N_("The pages now speak {language}."),
                                               language=language_name(chosen, capital=False)))
        if account is not None and account.source == DIRECTORY:
            return self.render(request, "account.html",
                               {**own, "managed": t("Your password is managed by the directory.")},
                               status=200 if request.method == "GET" else 409,
                               web_session=web_session, identity=identity)
        if request.method == "GET":
            return self.render(request, "account.html", own, web_session=web_session, identity=identity)
        current, new, again = (str(form.get(name, "")) for name in ("current", "new", "again"))
        problem = None
        try:
            authenticate(self.store, identity.id, current)
        except LoginRefused:
            problem = t("The current password is wrong.")
        if problem is None and new != again:
            problem = t("The two new passwords differ.")
        if problem is None:
            try:
                set_password(self.store, identity.id, new)
            except AccountError as error:
                problem = str(error)
        if problem is not None:
            return self.render(request, "account.html", {**own, "problem": problem}, status=422,
                               web_session=web_session, identity=identity)
        ended = close_sessions_of(self.store, identity.id, keep=web_session.token)
        tn = plural_translator(self.language_of(identity))
        return said.say(RedirectResponse("/account", status_code=303), t("Your password is changed.") + (
            " " + tn("{count} other session was ended.", "{count} other sessions were ended.", ended) if ended else ""))

    # -- pages -------------------------------------------------------------------------------

    def home(self, request: Request, web_session, identity: Identity) -> Response:
        language = self.language_of(identity)
        views = self.navigation(identity, language)
        chosen = list(dict.fromkeys(self._role_lists(identity, "home")))     # the roles' `home:`, in order
        if chosen:
            offered = {entry["name"]: entry for entry in views}
            views = [offered[name] for name in chosen if name in offered]

        def work(session) -> list[dict[str, Any]]:
            counted = []
            for entry in views:
                view = self.definitions.views[entry["name"]]
                chart = self.chart(session, view, language, kept=self.kept_figures) \
                    if view.chart or view.chart_over else None
                count = chart["matched"] if chart is not None and chart["matched"] is not None \
                    else session.count(view.type, view.filter)       # the tiles are never kept
                counted.append({**entry, "count": count, "chart": chart})
            return counted
        return self.render(request, "home.html", {"views": self.store.read(work, identity=identity),
                                                  "awaiting": approval_pages.awaiting(self, identity)},
                           web_session=web_session, identity=identity)

    def chart(self, session, view, language: str, filter: Any = None, kept: KeptFigures | None = None) -> dict[str, Any]:
        """A view's chart for the session's reader (`charts.py`), of `filter` (its own by default;
        with `kept`, its own may be drawn from figures kept a while)."""
        return chart_of(session, view, language, lambda where: _url(view.name, {"f": where}), filter, kept)

    def list_view(self, request: Request, web_session, identity: Identity, *, problem: str | None = None,
                  bulk_errors=None, status: int = 200) -> Response:
        view = self.definitions.views.get(request.path_params["view"])
        if view is None or view.name not in {v["name"] for v in self.navigation(identity, "en")}:
            return self.render(request, "error.html", {"message": N_("There is no such list.")}, status=404,
                               web_session=web_session, identity=identity)
        language = self.language_of(identity)
        if request.query_params.get("add_field"):          # a condition from the filter builder
            try:
                return filter_builder.added(self, request, view, self.definitions.type(view.type))
            except QueryError as error:
                problem = problem or f"The condition was not added: {error.said}."
        listing = read_listing(self.definitions, view, request.query_params, identity)
        typedef, sort, columns = listing.typedef, listing.sort, listing.columns
        problem = problem or listing.problem
        try:
            page_number = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page_number = 1

        def work(session):
            page = session.query(view.type, listing.filter, sort, offset=(page_number - 1) * PAGE_SIZE,
                                 limit=PAGE_SIZE)
            if view.chart_over and page_number == 1 and not request.headers.get("HX-Request"):
                statistics.append(self.chart(session, view, language, listing.filter))
            rows = [{"number": r.number, "cells": [field_text(session, typedef, r.values, c, language, r.number)
                                                    for c in columns],
                     "moments": [moment_of(r.get(c)) for c in columns]} for r in page.records]
            actions = bulk.actions_for(self, session, identity, view, language, errors=bulk_errors) \
                if view.bulk else []
            return page.total, rows, actions
        statistics: list[dict[str, Any]] = []       # a view counting per period: its figures above the rows
        try:
            total, rows, actions = self.store.read(work, identity=identity)
        except QueryError as error:
            problem, total, rows, actions = error.said, 0, [], []
        hidden = hidden_fields(identity, typedef, self.definitions)
        t = translator(language)
        builder = {"fields": filter_builder.filterable(typedef, hidden, language),
                   "comparisons": [(op, t(words)) for op, words in filter_builder.COMPARISONS.items()],
                   "conditions": [{**c, "url": _url(view.name, {**listing.state, "f": c["without"]})}
                                  for c in self.store.read(lambda session: filter_builder.conditions(
                                      session, typedef, listing.extra, language), identity=identity)]}
        state = listing.state
        headers = []
        for name in columns:
            current = sort.split(",")[0] if sort else ""
            next_sort = f"-{name}" if current == name else name
            field = typedef.fields.get(name)
            title = column_title(typedef, name, language)
            sortable = name == "id" or (field is not None and typedef.index_for(name) is not None
                                        and not field.kind.multiple and field.kind.sortable)
            headers.append({"name": name, "title": title, "sortable": sortable,
                            "url": _url(view.name, {**state, "sort": next_sort}),
                            "order": "asc" if current == name else "desc" if current == f"-{name}" else ""})
        pages = max(1, -(-total // PAGE_SIZE))
        context = {"view": view, "title": label_text(view.label, language, view.name), "headers": headers,
                   "rows": rows, "total": total, "page": page_number, "pages": pages, "state": state,
                   "problem": problem, "searchable": typedef.text_index is not None,
                   "previous": _url(view.name, {**state, "page": page_number - 1}) if page_number > 1 else None,
                   "next": _url(view.name, {**state, "page": page_number + 1}) if page_number < pages else None,
                   "first": (page_number - 1) * PAGE_SIZE + 1 if total else 0,
                   "last": min(total, page_number * PAGE_SIZE), "bulk": actions,
                   "made": request.query_params.get("made"), "builder": builder,
                   "statistics": statistics[0] if statistics else None}
        template = "_table.html" if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "table" \
            else "list.html"
        return self.render(request, template, context, web_session=web_session, identity=identity, status=status)


# -- plumbing --------------------------------------------------------------------------------

@pass_context
def _moment_filter(context, value: Any) -> str:
    """`{{ when|moment }}`: a moment as the reader's language writes it, in the application's
    zone (the page's script shows it in the reader's own when that differs)."""
    if value is None:
        return ""
    return datetime_text(value, ZoneInfo(context.get("zone") or "UTC"), context.get("language") or "en")


def _url(view: str, state: Mapping[str, Any]) -> str:
    query = {k: v for k, v in state.items() if v not in ("", None, 1)}
    return f"/v/{view}" + (f"?{urlencode(query)}" if query else "")


def _safe_next(target: str) -> str:
    """Only a path of this site: never an address elsewhere (`//evil.example`)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _form(request: Request) -> Mapping[str, Any]:
    return request.state.form


def _guarded(web: Web, handler, *, signed_in: bool = True, form_token: bool = True):
    """Wrap a page: read the form once, refuse unsafe requests without the session's CSRF
    token, send people who are not signed in to the sign-in page."""
    async def endpoint(request: Request) -> Response:
        request.state.form = await request.form() if request.method in UNSAFE else FormData()
        if not signed_in:
            expected = request.cookies.get(LOGIN_CSRF)
            # A signed link's token, in its own address, is what a forged post would lack.
            if form_token and request.method in UNSAFE and not (expected and secrets.compare_digest(
                    expected, str(request.state.form.get("csrf", "")))):
                return PlainTextResponse("The form has expired; reload the page and try again.", status_code=403)
            return await run_in_threadpool(held, handler, request)
        return await run_in_threadpool(held, visit, request)

    def visit(request: Request) -> Response:
        web_session, identity = web.visitor(request)
        if identity is None:
            if request.headers.get("HX-Request"):
                return Response(status_code=401, headers={"HX-Redirect": "/login"})
            return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)
        if request.method in UNSAFE:
            given = request.headers.get("X-CSRF-Token") or request.state.form.get("csrf")
            if not web_session.csrf_matches(given):
                return PlainTextResponse("The form has expired or did not come from this site; reload the page "
                                         "and try again.", status_code=403)
        return handler(request, web_session, identity)

    def held(work, *args) -> Response:
        """A request's reads in one transaction: one snapshot for the whole page, one connection.
        A write that kept meeting others' (every retry spent) asks to try again, not a 500."""
        try:
            with web.store.holding_reads():
                return work(*args)
        except ConflictError:
            return PlainTextResponse(BUSY, status_code=503, headers={"Retry-After": "1"})
    return endpoint


def create_app(store: Store, *, secure_cookies: bool = False, monitor_from: str | None = None,
               reloading: Reloading | None = None, charts_fresh: float = CHARTS_FRESH) -> Starlette:
    """The web application of a store opened with `open_store`; `monitor_from` the addresses
    that read /healthz and /metrics without a session (see `monitoring.monitoring_networks`);
    `reloading` the state of a server whose definitions are reloaded while it runs (its
    pages show their errors and refresh when they change); `charts_fresh`, for how many
    seconds the charts of home pages are drawn from the figures last worked out (0: each
    time; `charts.KeptFigures`)."""
    web = Web(store, secure_cookies=secure_cookies, reloading=reloading, charts_fresh=charts_fresh)
    monitoring = Monitoring(web, monitoring_networks(monitor_from))

    routes = [
        Route("/login", _guarded(web, web.sign_in_page, signed_in=False), methods=["GET", "POST"]),
        Route("/logout", _guarded(web, lambda r, s, i: web.sign_out(r)), methods=["POST"]),
        Route("/", _guarded(web, web.home)),
        Route("/account", _guarded(web, web.account_page), methods=["GET", "POST"]),
        Route("/v/{view}", _guarded(web, web.list_view)),
        Route("/search", _guarded(web, partial(search_pages.search, web))),
        Route("/import/{type}", _guarded(web, partial(imports.import_page, web)), methods=["GET", "POST"]),
        Route("/v/{view}/condition", _guarded(web, partial(filter_builder.value_control, web))),
        Route("/v/{view}/save", _guarded(web, partial(saved.save, web)), methods=["POST"]),
        Route("/saved/forget", _guarded(web, partial(saved.forget, web)), methods=["POST"]),
        Route("/v/{view}/bulk/{index}", _guarded(web, partial(bulk.apply, web)), methods=["POST"]),
        Route("/v/{view}/export.xlsx", _guarded(web, partial(export.export_list, web))),
        Route("/exports/{export}", _guarded(web, partial(export.export_progress, web))),
        Route("/exports/{export}/file", _guarded(web, partial(export.export_file, web))),
        Route("/r/{number}", _guarded(web, partial(record_page.record_page, web))),
        Route("/r/{number}/fire/{transition}", _guarded(web, partial(record_page.fire_transition, web)),
              methods=["POST"]),
        Route("/r/{number}/approval/{chain}", _guarded(web, partial(approval_pages.decide_on_page, web)),
              methods=["POST"]),
        Route("/r/{number}/inline/{field}", _guarded(web, partial(record_page.inline_field, web)),
              methods=["GET", "POST"]),
        Route("/r/{number}/join/{field}", _guarded(web, partial(joining.join, web)), methods=["POST"]),
        Route("/r/{number}/snippets/{type}/{field}", _guarded(web, partial(snippet_pages.insert, web))),
        Route("/r/{number}/edit", _guarded(web, partial(editing.edit_record, web)), methods=["GET", "POST"]),
        Route("/r/{number}/explain", _guarded(web, partial(explain_pages.explain_record, web))),
        Route("/p/{form}", _guarded(web, partial(public_pages.public_page, web), signed_in=False, form_token=False),
              methods=["GET", "POST"]),
        Route("/a/{token}", _guarded(web, partial(link_pages.link_page, web), signed_in=False, form_token=False),
              methods=["GET", "POST"]),
        Route("/r/{number}/stopwatch", _guarded(web, partial(stopwatch.handle, web))),
        Route("/r/{number}/stopwatch/{action}", _guarded(web, partial(stopwatch.handle, web)), methods=["POST"]),
        Route("/r/{number}/files/{file}", _guarded(web, partial(editing.download, web))),
        Route("/r/{number}/documents/{name}.pdf", _guarded(web, partial(document_pages.download, web))),
        Route("/r/{number}/documents/{name}/keep", _guarded(web, partial(document_pages.keep, web)), methods=["POST"]),
        Route("/new/{type}", _guarded(web, partial(editing.new_record, web)), methods=["GET", "POST"]),
        Route("/admin/accounts", _guarded(web, partial(admin_pages.accounts_page, web)), methods=["GET", "POST"]),
        Route("/admin/accounts/{login}", _guarded(web, partial(admin_pages.account_page, web)),
              methods=["GET", "POST"]),
        Route("/admin/keys", _guarded(web, partial(admin_pages.keys_page, web)), methods=["GET", "POST"]),
        Route("/admin/outbox", _guarded(web, partial(admin_pages.outbox_page, web))),
        Route("/admin/outbox/{message}", _guarded(web, partial(admin_pages.message_page, web)),
              methods=["GET", "POST"]),
        Route("/admin/quarantine", _guarded(web, partial(admin_pages.quarantine_page, web))),
        Route("/admin/quarantine/{held}", _guarded(web, partial(admin_pages.held_page, web)),
              methods=["GET", "POST"]),
        Route("/admin/jobs", _guarded(web, partial(admin_pages.jobs_page, web)), methods=["GET", "POST"]),
        Route("/admin/directory", _guarded(web, partial(admin_pages.directory_page, web)), methods=["GET", "POST"]),
        Route("/forms/{type}/field/{field}", _guarded(web, partial(editing.field_widget, web))),
        Route("/forms/{type}/suggest/{field}", _guarded(web, partial(suggestions.suggestions, web))),
        Route("/forms/{type}/pick/{field}", _guarded(web, partial(suggestions.pick, web))),
        api_mount(store),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        Route("/healthz", monitoring.healthz),
        Route("/metrics", monitoring.metrics),
        *([Route("/_reload", reload_status(reloading))] if reloading else []),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(RequestTimer, monitoring=monitoring), Middleware(SafetyHeaders),
                                               Middleware(BodyLimit)])
    app.state.web = web
    app.state.monitoring = monitoring
    return app


# What every answer says to the browser, unless it says otherwise (a file's preview):
# scripts, styles and pictures only from this site, no inline script, never in a frame, no
# address sent to other sites (a signed link's token stays here), no guessing of types.
SAFETY_HEADERS = (
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
)


class SafetyHeaders:
    """Adds SAFETY_HEADERS to every HTTP answer that does not set them itself."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def sending(message):
            if message["type"] == "http.response.start":
                given = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in SAFETY_HEADERS if name not in given]
            await send(message)
        await self.app(scope, receive, sending)


class BodyLimit:
    """Refuses a request whose body is larger than MAX_REQUEST with 413 and a sentence (JSON
    for the API): at once when it says its length, else as soon as the bytes read pass the
    limit (a chunked upload is never read in full)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > MAX_REQUEST:
            return await self.refuse(scope, receive, send)
        read, started = 0, False

        async def counting():
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > MAX_REQUEST:
                raise BodyTooLarge
            return message

        async def sending(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)
        try:
            await self.app(scope, counting, sending)
        except BodyTooLarge:
            if not started:
                await self.refuse(scope, receive, send)

    @staticmethod
    async def refuse(scope, receive, send):
        answer = JSONResponse({"error": TOO_LARGE, "fields": {}}, status_code=413) \
            if scope["path"].startswith("/api/") else PlainTextResponse(TOO_LARGE, status_code=413)
        await answer(scope, receive, send)
