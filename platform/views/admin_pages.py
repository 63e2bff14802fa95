"""The administrator's pages (roles declared `superuser`): the accounts — find one, create
one, change its name, address, roles, groups, organization and language, give it a new
password, end its sessions, disable or enable it. To everyone else these addresses do not
exist (404), like a record out of their scope."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.fields import label_text
from deskbase.rules.access.identity import (
    DIRECTORY,
    AccountError,
    Identity,
    create_account,
    find_account,
    identity_settings,
    list_accounts,
    set_password,
    update_account,
)

from . import said
from .i18n import plural_translator, translator
from .sessions import close_sessions_of

SHOWN = 200           # accounts listed at once; the search narrows them


def is_administrator(identity: Identity | None) -> bool:
    """Whether the person may see the administration pages and panels: a superuser."""
    return bool(getattr(identity, "superuser", False))


def not_here(web, request, web_session, identity) -> Response:
    """What a page that is not the person's to see answers: that it does not exist (404)."""
    t = translator(web.language_of(identity))
    return web.render(request, "error.html", {"message": t("There is no such page.")}, status=404,
                      web_session=web_session, identity=identity)


def _choices(web, type_name: str | None) -> list[tuple[int, str]]:
    """(id, title) of every record of a type (groups, organizations), by title."""
    if type_name is None:
        return []
    typedef = web.definitions.type(type_name)

    def work(session) -> list[tuple[int, str]]:
        found = [(record.id, str(record.get(typedef.title_field) or record.number) if typedef.title_field
                  else record.number) for record in session.container(type_name).records.values()]
        return sorted(found, key=lambda pair: pair[1].casefold())
    return web.store.read(work)


def _form_context(web, language: str) -> dict[str, Any]:
    settings = identity_settings(web.definitions)
    labels = {name: label_text((spec or {}).get("label"), language, name)
              for name, spec in web.definitions.roles.items()}
    return {"roles": list(web.definitions.roles), "role_labels": labels, "groups": _choices(web, settings.group_type),
            "organizations": _choices(web, settings.organization_type),
            "languages": list(web.definitions.languages)}


def _number_in_path(request: Request, name: str) -> int:
    """The number a path names (-1, which names nothing, for anything else)."""
    raw = request.path_params[name]
    return int(raw) if raw.isdigit() and len(raw) < 20 else -1


def _ids(values: list[str]) -> list[int]:
    return [int(value) for value in values if str(value).strip().isdigit()]


def accounts_page(web, request: Request, web_session, identity: Identity) -> Response:
    """GET: the accounts, searched by `q`; POST: a new local account."""
    if not is_administrator(identity):
        return not_here(web, request, web_session, identity)
    t = translator(web.language_of(identity))
    form = request.state.form
    problem, status = None, 200
    kept: dict[str, Any] = {}      # what the form said, shown again; roles and groups are lists
    if request.method == "POST":
        kept = {name: str(form.get(name, "")).strip() for name in ("login", "name", "email", "language",
                                                                   "organization")}
        roles, groups = form.getlist("roles"), _ids(form.getlist("groups"))
        kept.update(roles=roles, groups=groups)
        password, again = str(form.get("password", "")), str(form.get("again", ""))
        if password != again:
            problem = t("The two new passwords differ.")
        else:
            try:
                create_account(web.store, kept["login"], name=kept["name"] or kept["login"], password=password,
                               roles=roles, groups=groups, email=kept["email"],
                               organization=int(kept["organization"]) if kept["organization"].isdigit() else None,
                               language=kept["language"] or web.definitions.languages[0])
            except AccountError as error:
                problem = str(error)
        if problem is None:
            return said.say(RedirectResponse(f"/admin/accounts/{kept['login']}", status_code=303),
                            t("The account {login} is made.", login=kept["login"]))
        status = 422
    query = str(request.query_params.get("q", "")).strip().casefold()
    everyone = list_accounts(web.store)
    found = [account for account in everyone
             if not query or any(query in str(value or "").casefold()
                                 for value in (account.login, account.name, account.email))]
    form_context = _form_context(web, web.language_of(identity))
    return web.render(request, "admin_accounts.html", {
        "accounts": found[:SHOWN], "total": len(found), "everyone": len(everyone), "q": query, "problem": problem,
        "kept": kept, "group_names": dict(form_context["groups"]), **form_context},
        status=status, web_session=web_session, identity=identity)


def account_page(web, request: Request, web_session, identity: Identity) -> Response:
    """One account: GET shows it; POST `action` = save, password, end_sessions, disable or enable."""
    if not is_administrator(identity):
        return not_here(web, request, web_session, identity)
    t, tn = translator(web.language_of(identity)), plural_translator(web.language_of(identity))
    login = request.path_params["login"]
    account = find_account(web.store, login)
    if account is None:
        return not_here(web, request, web_session, identity)
    problem, status = None, 200
    if request.method == "POST":
        form = request.state.form
        action = str(form.get("action", ""))
        try:
            if action == "save":
                organization = str(form.get("organization", "")).strip()
                update_account(web.store, login, name=str(form.get("name", "")).strip() or login,
                               email=str(form.get("email", "")).strip(),
                               roles=None if account.source == DIRECTORY else form.getlist("roles"),
                               groups=_ids(form.getlist("groups")),
                               organization=int(organization) if organization.isdigit() else None,
                               language=str(form.get("language", "")) or None)
                if login == identity.id:                # one's own language: said in the new one
                    t = translator(str(form.get("language", "")) or web.definitions.languages[0])
                done = t("The account {login} is saved.", login=login)
            elif action == "password" and account.source != DIRECTORY:
                password, again = str(form.get("password", "")), str(form.get("again", ""))
                if password != again:
                    raise AccountError(t("The two new passwords differ."))
                set_password(web.store, login, password)
                ended = close_sessions_of(web.store, login, keep=web_session.token if login == identity.id else None)
                done = tn("The password of {login} is changed; {count} session was ended.",
                          "The password of {login} is changed; {count} sessions were ended.", ended, login=login)
            elif action == "end_sessions":
                ended = close_sessions_of(web.store, login, keep=web_session.token if login == identity.id else None)
                done = tn("{count} session of {login} was ended.", "{count} sessions of {login} were ended.", ended,
                          login=login)
            elif action in ("disable", "enable"):
                if action == "disable" and login == identity.id:
                    raise AccountError(t("You cannot disable your own account."))
                update_account(web.store, login, active=action == "enable")
                if action == "disable":
                    close_sessions_of(web.store, login)
                done = t("The account {login} is disabled.", login=login) if action == "disable" else \
                    t("The account {login} is enabled.", login=login)
            else:
                raise AccountError(t("This is not something this page does."))
        except AccountError as error:
            problem, status = str(error), 422
        else:
            return said.say(RedirectResponse(f"/admin/accounts/{login}", status_code=303), done)
        account = find_account(web.store, login)
    return web.render(request, "admin_account.html", {"account": account, "problem": problem,
                                                       "directory": account.source == DIRECTORY,
                                                       **_form_context(web, web.language_of(identity))},
                      status=status, web_session=web_session, identity=identity)


# -- API keys ------------------------------------------------------------------------------

def keys_page(web, request: Request, web_session, identity: Identity) -> Response:
    """The API keys: their account and last use; POST `add` (the key is shown once, on the
    answer, never again) or `revoke`."""
    from deskbase.objects.errors import NotFound

    from .api_keys import add_key, list_keys, revoke_key
    if not is_administrator(identity):
        return not_here(web, request, web_session, identity)
    t = translator(web.language_of(identity))
    form = request.state.form
    problem, made, status = None, None, 200
    if request.method == "POST":
        name, login = str(form.get("name", "")).strip(), str(form.get("login", "")).strip()
        try:
            if form.get("action") == "revoke":
                revoke_key(web.store, name)
                return said.say(RedirectResponse("/admin/keys", status_code=303),
                                t("The key {name} is revoked: it opens nothing any more.", name=name))
            if find_account(web.store, login) is None:
                raise AccountError(t("There is no account {login}.", login=login))
            made = {"name": name, "login": login, "secret": add_key(web.store, name, login)}
        except (NotFound, AccountError) as error:
            problem, status = str(error), 422
    return web.render(request, "admin_keys.html", {"keys": list_keys(web.store), "problem": problem, "made": made,
                                                    "kept": dict(form) if problem else {}},
                      status=status, web_session=web_session, identity=identity)


# -- the outbox ----------------------------------------------------------------------------

def outbox_page(web, request: Request, web_session, identity: Identity) -> Response:
    """The newest messages of the outbox, of one state (`state`), or all."""
    from deskbase.rules.messages.outbox import STATES, list_messages
    if not is_administrator(identity):
        return not_here(web, request, web_session, identity)
    state = request.query_params.get("state") or None
    state = state if state in STATES else None
    messages = web.store.read(lambda session: list_messages(session, state, limit=SHOWN))
    return web.render(request, "admin_outbox.html", {"messages": messages, "state": state, "states": STATES},
                      web_session=web_session, identity=identity)


def message_page(web, request: Request, web_session, identity: Identity) -> Response:
    """One message as it goes out, with its attempts; POST `retry` (failed) or `cancel` (pending)."""
    from deskbase.rules.messages.outbox import OutboxError, cancel_pending, get_message, retry_failed
    if not is_administrator(identity):
        return not_here(web, request, web_session, identity)
    t = translator(web.language_of(identity))
    message_id = _number_in_path(request, "message")
    problem, status = None, 200
    if request.method == "POST":
        action = request.state.form.get("action")
        try:
            if action == "retry":
                web.store.run(lambda session: retry_failed(session, message_id), user=identity.id)
                done = t("The message is queued again.")
            elif action == "cancel":
                web.store.run(lambda session: cancel_pending(session, message_id), user=identity.id)
                done = t("The message is cancelled.")
            else:
                raise OutboxError(t("This is not something this page does."))
            return said.say(RedirectResponse(f"/admin/outbox/{message_id}", status_code=303), done)
        except OutboxError as error:
            problem, status = str(error), 422
    message = web.store.read(lambda session: get_message(session, message_id))
    if message is None:
        return not_here(web, request, web_session, identity)
    return web.render(request, "admin_message.html", {"message": message, "problem": problem}, status=status,
                      web_session=web_session, identity=identity)


# -- the mail quarantine -------------------------------------------------------------------

def quarantine_page(web, request: Request, web_session, identity: Identity) -> Response:
    """The messages the mail intake holds, newest first."""
    from deskbase.rules.intake.mail_intake import held_messages
    if not is_administrator(identity):
        return not_here(web, request, web_session, identity)
    held = web.store.read(lambda session: held_messages(session, limit=SHOWN))
    return web.render(request, "admin_quarantine.html", {"held": held}, web_session=web_session, identity=identity)


def held_page(web, request: Request, web_session, identity: Identity) -> Response:
    """One held message, read as text; POST `release` (make its record) or `delete`."""
    from deskbase.rules.intake.mail_intake import MailIntakeError, delete_held, held_message, release
    from deskbase.rules.intake.mail_messages import MailParseError, parse_message
    if not is_administrator(identity):
        return not_here(web, request, web_session, identity)
    t = translator(web.language_of(identity))
    held_id = _number_in_path(request, "held")
    problem, status = None, 200
    if request.method == "POST":
        action = request.state.form.get("action")
        try:
            if action == "release":
                outcome = release(web.store, held_id)
                return said.say(RedirectResponse("/admin/quarantine", status_code=303),
                                t("The message is released: {number}.", number=outcome.number or "-"))
            if action == "delete":
                delete_held(web.store, held_id)
                return said.say(RedirectResponse("/admin/quarantine", status_code=303), t("The message is deleted."))
            raise MailIntakeError(t("This is not something this page does."))
        except MailIntakeError as error:
            problem, status = str(error), 422

    def work(session):
        try:
            held = held_message(session, held_id)
        except MailIntakeError:
            return None, None
        try:
            body = parse_message(held.raw()).full_body
        except MailParseError as error:
            body = t("The message cannot be read: {reason}", reason=str(error))
        return held, body
    held, body = web.store.read(work)
    if held is None:
        return not_here(web, request, web_session, identity)
    return web.render(request, "admin_held.html", {"held": held, "body": body, "problem": problem}, status=status,
                      web_session=web_session, identity=identity)


# -- jobs ----------------------------------------------------------------------------------

def jobs_page(web, request: Request, web_session, identity: Identity) -> Response:
    """Every job with its schedule, next occurrence and latest runs; POST `job` runs it now."""
    from deskbase.connectors.channels import job_runner
    from deskbase.rules.jobs.cron import JobError
    if not is_administrator(identity):
        return not_here(web, request, web_session, identity)
    t = translator(web.language_of(identity))
    runner = job_runner(web.store)
    problem, status = None, 200
    if request.method == "POST":
        name = str(request.state.form.get("job", ""))
        try:
            run = runner.run(name)
        except JobError as error:
            problem, status = str(error), 422
        else:
            text = (t("{job} ran: {result}", job=name, result=run.result or t("done")) if run.outcome == "ok"
                    else t("{job} failed: {error}", job=name, error=(run.error or "").splitlines()[0]))
            return said.say(RedirectResponse("/admin/jobs", status_code=303), text)
    return web.render(request, "admin_jobs.html", {"jobs": runner.status(), "problem": problem}, status=status,
                      web_session=web_session, identity=identity)


# -- the directory -------------------------------------------------------------------------

def directory_page(web, request: Request, web_session, identity: Identity) -> Response:
    """Active Directory, when the definitions have one: POST `test` signs a login in against
    it and shows what their account would get (writing nothing); POST `sync` (with `dry`)
    brings the accounts up to date, or says what it would change."""
    from deskbase.connectors.active_directory import DirectoryError, directory_of, sync_directory
    from deskbase.rules.access.directory import directory_settings
    from deskbase.rules.access.identity import LoginRefused
    if not is_administrator(identity) or directory_settings(web.definitions) is None:
        return not_here(web, request, web_session, identity)
    t = translator(web.language_of(identity))
    problem, person, report, status = None, None, None, 200
    if request.method == "POST":
        form = request.state.form
        try:
            directory = directory_of(web.store)
            if form.get("action") == "test":
                person = directory.check_password(str(form.get("login", "")), str(form.get("password", "")))
            elif form.get("action") == "sync":
                report = sync_directory(web.store, dry_run=bool(form.get("dry")))
            else:
                raise DirectoryError(t("This is not something this page does."))
        except LoginRefused as refused:
            problem, status = refused.reason, 422
        except DirectoryError as error:
            problem, status = str(error), 422
    return web.render(request, "admin_directory.html", {"person": person, "report": report, "problem": problem},
                      status=status, web_session=web_session, identity=identity)
