"""The administrator's account pages, used as an administrator does: find an account, make
one for a new technician who then signs in, change her roles, groups and language, give
her a new password (her sessions end), disable and enable her; every wrong value said in a
sentence with nothing lost; to anyone else, the pages do not exist."""
from __future__ import annotations

import html
import re

import pytest
from demo_web import csrf_of, sign_in
from starlette.testclient import TestClient

from deskbase.rules.access.identity import find_account, identity_settings
from deskbase.views.app import create_app

ADMIN_PASSWORD = "demo-admin-2026"


@pytest.fixture(scope="module")
def desk(app_store):
    with app_store(demo=True) as store:
        yield store


def text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def a_group(store) -> int:
    group_type = identity_settings(store.definitions).group_type
    return store.read(lambda s: next(iter(s.container(group_type).records.keys())))


def test_an_administrator_makes_an_account_that_then_signs_in(desk):
    with TestClient(create_app(desk), follow_redirects=False) as admin, \
            TestClient(create_app(desk), follow_redirects=False) as nadia:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        home = admin.get("/").text
        assert 'href="/admin/accounts"' in home                         # in the menu, for the administrator
        listed = admin.get("/admin/accounts", params={"q": "bernard"}).text
        assert "sbernard" in listed and "cmartin" not in listed
        assert "<td data-label=\"Roles\">Technician</td>" in listed             # roles by their labels
        form = admin.get("/admin/accounts").text
        support = a_group(desk)
        made = admin.post("/admin/accounts", data={
            "csrf": csrf_of(form), "login": "nkader", "name": "Nadia Kader", "email": "nadia.kader@example.org",
            "roles": ["technician"], "groups": [str(support)], "language": "fr",
            "password": "a long enough password", "again": "a long enough password"})
        assert made.status_code == 303 and made.headers["location"] == "/admin/accounts/nkader"
        assert "The account nkader is made." in text(admin.get(made.headers["location"]).text)
        account = find_account(desk, "nkader")
        assert (account.name, account.roles, account.groups, account.language, account.active) == (
            "Nadia Kader", ("technician",), (support,), "fr", True)
        sign_in(nadia, "nkader", "a long enough password")
        assert nadia.get("/").status_code == 200

        page = admin.get("/admin/accounts/nkader").text
        changed = admin.post("/admin/accounts/nkader", data={
            "csrf": csrf_of(page), "action": "save", "name": "Nadia Kader", "email": "n.kader@example.org",
            "roles": ["technician", "specialist"], "groups": [], "language": "en", "organization": ""})
        assert changed.status_code == 303
        account = find_account(desk, "nkader")
        assert (account.roles, account.groups, account.language, account.email) == (
            ("technician", "specialist"), (), "en", "n.kader@example.org")

        renewed = admin.post("/admin/accounts/nkader", data={"csrf": csrf_of(page), "action": "password",
                                                             "password": "another long password",
                                                             "again": "another long password"})
        assert renewed.status_code == 303
        assert "1 session was ended" in text(admin.get("/admin/accounts/nkader").text)
        assert nadia.get("/").status_code == 303                        # her session ended with the change
        sign_in(nadia, "nkader", "another long password")

        disabled = admin.post("/admin/accounts/nkader", data={"csrf": csrf_of(page), "action": "disable"})
        assert disabled.status_code == 303 and not find_account(desk, "nkader").active
        assert nadia.get("/").status_code == 303                        # signed out, and cannot sign in
        refused = nadia.post("/login", data={"login": "nkader", "password": "another long password",
                                             "csrf": csrf_of(nadia.get("/login").text)})
        assert refused.status_code == 401
        admin.post("/admin/accounts/nkader", data={"csrf": csrf_of(page), "action": "enable"})
        assert find_account(desk, "nkader").active


@pytest.mark.parametrize("values, said", [
    ({"login": "sbernard"}, "the login `sbernard` is already taken"),
    ({"roles": ["tecnician"]}, "`tecnician` is not a role of the definitions; did you mean `technician`?"),
    ({"password": "short", "again": "short"}, "a password needs at least 10 characters"),
    ({"again": "something else entirely"}, "The two new passwords differ."),
    ({"login": "two words"}, "a login is one word without spaces"),
])
def test_a_wrong_value_is_said_and_the_form_keeps_what_was_typed(desk, values, said):
    with TestClient(create_app(desk), follow_redirects=False) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        form = admin.get("/admin/accounts").text
        sent = {"csrf": csrf_of(form), "login": "pmartin", "name": "Paul Martin", "email": "paul@example.org",
                "roles": ["technician"], "language": "en", "password": "a long enough password",
                "again": "a long enough password", **values}
        answer = admin.post("/admin/accounts", data=sent)
        assert answer.status_code == 422 and said in text(answer.text)
        assert 'value="Paul Martin"' in answer.text and 'value="paul@example.org"' in answer.text
    assert find_account(desk, sent["login"]) is None or sent["login"] == "sbernard"


@pytest.mark.parametrize("login, password", [(None, None), ("psvoboda", "demo-password"),
                                             ("cmartin", "demo-password")])
def test_to_anyone_but_an_administrator_the_pages_do_not_exist(desk, login, password):
    with TestClient(create_app(desk), follow_redirects=False) as web:
        if login:
            sign_in(web, login, password)
            assert 'href="/admin/accounts"' not in web.get("/").text
            token = csrf_of(web.get("/").text)
        else:
            token = ""
        for path in ("/admin/accounts", "/admin/accounts/sbernard", "/admin/keys", "/admin/outbox",
                     "/admin/outbox/1", "/admin/quarantine", "/admin/quarantine/1", "/admin/jobs"):
            answer = web.get(path)
            assert answer.status_code == (404 if login else 303), path
            posted = web.post(path, data={"csrf": token, "action": "disable", "login": "x", "password": "y" * 12,
                                          "again": "y" * 12})
            read_only = path in ("/admin/outbox", "/admin/quarantine")      # pages that take no form
            assert posted.status_code == (405 if read_only else 404 if login else 303), path
    assert find_account(desk, "sbernard").active


def test_a_forged_form_without_the_session_token_changes_nothing(desk):
    with TestClient(create_app(desk), follow_redirects=False) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        answer = admin.post("/admin/accounts/sbernard", data={"action": "disable"})
        assert answer.status_code == 403
    assert find_account(desk, "sbernard").active


def test_api_keys_are_made_shown_once_and_revoked_in_the_web(desk):
    with TestClient(create_app(desk), follow_redirects=False) as admin, TestClient(create_app(desk)) as api:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        page = admin.get("/admin/keys").text
        made = admin.post("/admin/keys", data={"csrf": csrf_of(page), "action": "add", "name": "zabbix",
                                               "login": "psvoboda"})
        assert made.status_code == 200 and "shown only this once" in text(made.text)
        secret = re.search(r'<code class="secret">([^<]+)</code>', made.text).group(1)
        assert secret not in admin.get("/admin/keys").text                 # never again
        assert api.get("/api/v1/ticket", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        wrong = admin.post("/admin/keys", data={"csrf": csrf_of(page), "action": "add", "name": "x", "login": "nobody"})
        assert wrong.status_code == 422 and "There is no account nobody." in text(wrong.text)
        revoked = admin.post("/admin/keys", data={"csrf": csrf_of(page), "action": "revoke", "name": "zabbix"})
        assert revoked.status_code == 303
        assert api.get("/api/v1/ticket", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_the_outbox_is_read_and_a_message_cancelled_then_retried(desk):
    from deskbase.rules.messages.outbox import get_message, queue_message
    message_id = desk.run(lambda s: queue_message(s, "email", ["ops@example.org"], "Disk <almost> full", "92 % used"))
    with TestClient(create_app(desk), follow_redirects=False) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        listed = admin.get("/admin/outbox", params={"state": "pending"}).text
        assert f'href="/admin/outbox/{message_id}"' in listed and "Disk &lt;almost&gt; full" in listed
        page = admin.get(f"/admin/outbox/{message_id}").text
        assert "92 % used" in page
        assert admin.post(f"/admin/outbox/{message_id}", data={"csrf": csrf_of(page), "action": "cancel"}
                          ).status_code == 303
        message = desk.read(lambda s: get_message(s, message_id))
        assert message.state == "failed" and message.last_error == "cancelled by admin"
        page = admin.get(f"/admin/outbox/{message_id}").text
        assert admin.post(f"/admin/outbox/{message_id}", data={"csrf": csrf_of(page), "action": "retry"}
                          ).status_code == 303
        assert desk.read(lambda s: get_message(s, message_id)).state == "pending"
        again = admin.post(f"/admin/outbox/{message_id}", data={"csrf": csrf_of(page), "action": "retry"})
        assert again.status_code == 422 and "only a failed message is retried" in text(again.text)
        assert admin.get("/admin/outbox/999999999").status_code == 404


def test_a_quarantined_message_is_read_then_released_into_a_ticket(desk):
    from email.message import EmailMessage

    from deskbase.rules.intake.mail_intake import ingest, mailbox_named
    mail = EmailMessage()
    mail["From"] = "stranger@unknown.example"
    mail["To"] = "support@desk.example"
    mail["Subject"] = "Our scanner is broken"
    mail["Message-ID"] = "<scanner-1@unknown.example>"
    mail.set_content("The scanner on floor 2 shows error E42.")
    mailbox = mailbox_named(desk.definitions, "support")
    outcome = ingest(desk, mailbox, bytes(mail), uid=901, uidvalidity=1)
    if outcome.held is None:
        pytest.skip(f"the shipped mailbox made a record of an unknown sender ({outcome.action})")
    with TestClient(create_app(desk), follow_redirects=False) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        listed = admin.get("/admin/quarantine").text
        assert "Our scanner is broken" in listed and "stranger@unknown.example" in listed
        page = admin.get(f"/admin/quarantine/{outcome.held}").text
        assert "error E42" in page
        released = admin.post(f"/admin/quarantine/{outcome.held}", data={"csrf": csrf_of(page), "action": "release"})
        assert released.status_code == 303
        said = text(admin.get("/admin/quarantine").text)
        number = re.search(r"The message is released: (\S+)\.", said).group(1)
    assert desk.read(lambda s: s.find(number)["title"]) == "Our scanner is broken"


def test_a_job_is_run_now_from_the_jobs_page(desk):
    with TestClient(create_app(desk), follow_redirects=False) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        page = admin.get("/admin/jobs").text
        assert "check_timers" in page and "* * * * *" in page
        ran = admin.post("/admin/jobs", data={"csrf": csrf_of(page), "job": "check_timers"})
        assert ran.status_code == 303
        assert "check_timers ran" in text(admin.get("/admin/jobs").text)
        unknown = admin.post("/admin/jobs", data={"csrf": csrf_of(page), "job": "chek_timers"})
        assert unknown.status_code == 422 and "check_timers" in text(unknown.text)


def test_an_administrator_switching_her_own_language_is_answered_in_the_new_one(desk):
    with TestClient(create_app(desk), follow_redirects=False) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        page = admin.get("/admin/accounts/admin").text
        account = find_account(desk, "admin")
        try:
            saved = admin.post("/admin/accounts/admin", data={
                "csrf": csrf_of(page), "action": "save", "name": account.name, "email": account.email or "",
                "roles": list(account.roles), "language": "fr", "organization": ""})
            assert saved.status_code == 303
            shown = text(admin.get("/admin/accounts/admin").text)
            assert "Le compte admin est enregistré." in shown and "is saved" not in shown
        finally:
            admin.post("/admin/accounts/admin", data={
                "csrf": csrf_of(page), "action": "save", "name": account.name, "email": account.email or "",
                "roles": list(account.roles), "language": "en", "organization": ""})
