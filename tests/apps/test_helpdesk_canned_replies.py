"""Canned replies (T15): kept by the supervisors, offered in the ticket page's comment form
(the general ones and those of the ticket's category), inserted with htmx with their
placeholders filled for the ticket as the writer reads it, and sent like any public reply.
Through a real SMTP server."""
from __future__ import annotations

import html
import re

import pytest
from demo_web import csrf_of, mail_to, sign_in, text_of
from starlette.testclient import TestClient

from deskbase.connectors.smtp import SmtpSender
from deskbase.rules.access.identity import create_account
from deskbase.rules.messages.outbox import deliver_due
from deskbase.views.app import create_app

PASSWORD = "a long test password"
GREETING = 'Hello {{ ticket.text("requester") }}, about {{ ticket.number }} ({{ ticket.title }}): {{ me.name }} here.'


@pytest.fixture
def desk(app_store, smtp_server):
    with app_store() as store:
        def setup(session):
            acme = session.create("organization", {"name": "Acme Logistics", "code": "ACME"})
            hotline = session.create("group", {"name": "Hotline"})
            printers = session.create("category", {"name": "Printers"})
            network = session.create("category", {"name": "Network"})
            carl = session.create("contact", {"name": "Carl Berg", "email": "carl@acme.example",
                                              "organization": acme.id})
            ticket = session.create("ticket", {"title": "Label printer offline", "organization": acme.id,
                                               "requester": carl.id, "category": printers.id,
                                               "assignee": "tdvorak"})
            return {"hotline": hotline.id, "printers": printers.id, "network": network.id,
                    "ticket": ticket.number, "ticket_id": ticket.id}
        store.ids = store.run(setup)
        create_account(store, "tdvorak", name="Tomáš Dvořák", password=PASSWORD, roles=["technician"],
                       groups=[store.ids["hotline"]], email="tdvorak@desk.example")
        create_account(store, "cmartin", name="Claire Martin", password=PASSWORD, roles=["supervisor"],
                       email="cmartin@desk.example")
        store.sender = SmtpSender("127.0.0.1", smtp_server.port, sender_address="helpdesk@localhost", timeout=5)
        yield store


def _keep_replies(desk) -> dict[str, str]:
    """Claire, a supervisor, keeps four canned replies through the web; their ids by title."""
    with TestClient(create_app(desk), follow_redirects=False) as web:
        token = sign_in(web, "cmartin", PASSWORD)
        for title, body, values in (
                ("Greeting", GREETING, {"visibility": "public", "action": "answer"}),
                ("Printer driver", "Reinstall the printer driver, {{ ticket.text('requester') }}.",
                 {"category": str(desk.ids["printers"]), "visibility": "public", "action": "instruction"}),
                ("Network reset", "Unplug the network cable.", {"category": str(desk.ids["network"])}),
                ("Escalated", "{{ ticket.number }} goes to level 2.", {"visibility": "internal",
                                                                        "action": "information"})):
            made = web.post("/new/canned_reply", data={"csrf": token, "title": title, "body": body,
                                                       "present:active": "1", "active": "1", **values})
            assert made.status_code == 303, made.text
    return desk.read(lambda s: {r["title"]: str(r.id) for r in s.query("canned_reply", limit=None).records})


def _offered(page: str) -> list[str]:
    chooser = re.search(r'<select form="" name="snippet".*?</select>', page, re.S).group(0)
    return [html.unescape(label) for label in re.findall(r'<option value="\d+">([^<]+)</option>', chooser)]


def test_a_canned_reply_is_inserted_filled_in_and_sent_to_the_requester(desk, smtp_server):
    replies = _keep_replies(desk)
    number, ticket_id = desk.ids["ticket"], desk.ids["ticket_id"]
    with TestClient(create_app(desk), follow_redirects=False) as web:
        sign_in(web, "tdvorak", PASSWORD)
        page = web.get(f"/r/{number}").text
        # The general replies and those of the ticket's category, by title; not the network one.
        assert _offered(page) == ["Escalated", "Greeting", "Printer driver"]
        inserted = web.get(f"/r/{number}/snippets/comment/body",
                           params={"prefix": "comment-", "snippet": replies["Greeting"], "body": "Thanks!"})
        assert inserted.status_code == 200
        filled = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", inserted.text, re.S).group(1))
        assert filled == (f"Thanks!\n\nHello Carl Berg, about {number} (Label printer offline): "
                          "Tomáš Dvořák here.")
        # The reply sets the comment's visibility and action beside the text (swapped out of band).
        internal = web.get(f"/r/{number}/snippets/comment/body",
                           params={"prefix": "comment-", "snippet": replies["Escalated"], "body": ""}).text
        assert 'id="comment-field-visibility" hx-swap-oob="true"' in internal
        assert '<option value="internal" selected>' in internal
        assert f"{number} goes to level 2." in internal

        sent = web.post(f"/new/comment?ticket={ticket_id}",
                        data={"csrf": csrf_of(page), "ticket": str(ticket_id), "visibility": "public",
                              "action": "answer", "body": filled})
        assert sent.status_code == 303
    deliver_due(desk, {"email": desk.sender})
    [reply] = [m for m in mail_to(smtp_server, "carl@acme.example") if "Hello Carl Berg" in text_of(m)]
    assert number in reply["Subject"]
    assert f"Thanks!\n\nHello Carl Berg, about {number} (Label printer offline): Tomáš Dvořák here." \
        in text_of(reply).replace("\r\n", "\n")


def test_a_reply_of_another_category_or_a_retired_one_is_not_inserted(desk):
    replies = _keep_replies(desk)
    desk.run(lambda s: s.update(s.get("canned_reply", int(replies["Greeting"])), {"active": False}))
    number = desk.ids["ticket"]
    with TestClient(create_app(desk), follow_redirects=False) as web:
        sign_in(web, "tdvorak", PASSWORD)
        assert _offered(web.get(f"/r/{number}").text) == ["Escalated", "Printer driver"]
        for title in ("Network reset", "Greeting"):
            refused = web.get(f"/r/{number}/snippets/comment/body",
                              params={"prefix": "comment-", "snippet": replies[title], "body": "kept"})
            assert refused.status_code == 200
            assert "there is no Canned reply" in html.unescape(refused.text)
            assert ">kept</textarea>" in refused.text                      # what was typed stays
        wrong = web.get(f"/r/{number}/snippets/comment/body", params={"snippet": "x", "prefix": "<b>"})
        assert wrong.status_code == 404 and "<b>" not in wrong.text


def test_a_canned_reply_whose_placeholders_do_not_read_is_not_saved(desk):
    _keep_replies(desk)
    with TestClient(create_app(desk), follow_redirects=False) as web:
        token = sign_in(web, "cmartin", PASSWORD)
        refused = web.post("/new/canned_reply", data={"csrf": token, "title": "Broken", "visibility": "public",
                                                      "action": "answer", "body": "Hello {{ ticket.text( }}"})
    assert refused.status_code == 422
    assert "its placeholders do not read" in html.unescape(refused.text)
    assert "Hello {{ ticket.text( }}" in html.unescape(refused.text)          # what was typed is kept
    assert desk.read(lambda s: s.count("canned_reply")) == 4


def test_a_placeholder_that_fails_when_filled_in_is_told_and_loses_nothing(desk):
    replies = _keep_replies(desk)
    desk.run(lambda s: s.update(s.get("canned_reply", int(replies["Greeting"])),
                                {"body": "Hello {{ ticket.nope() }}"}))      # reads, but names nothing
    number = desk.ids["ticket"]
    with TestClient(create_app(desk), follow_redirects=False) as web:
        sign_in(web, "tdvorak", PASSWORD)
        told = web.get(f"/r/{number}/snippets/comment/body",
                       params={"prefix": "comment-", "snippet": replies["Greeting"], "body": "My own words"})
    assert told.status_code == 200
    assert "cannot be filled in" in told.text and "A person who keeps these texts can correct it." in told.text
    assert ">My own words</textarea>" in told.text and 'role="alert"' in told.text


def test_customers_are_offered_no_canned_reply_and_cannot_ask_for_one(desk):
    replies = _keep_replies(desk)
    def org(session):
        return session.find(desk.ids["ticket"])["organization"]
    create_account(desk, "carl", name="Carl Berg", password=PASSWORD, roles=["customer_user"],
                   organization=desk.read(org), email="carl@acme.example")
    number = desk.ids["ticket"]
    with TestClient(create_app(desk), follow_redirects=False) as portal:
        sign_in(portal, "carl", PASSWORD)
        page = portal.get(f"/r/{number}").text
        assert 'name="snippet"' not in page and "Greeting" not in page
        refused = portal.get(f"/r/{number}/snippets/comment/body",
                             params={"prefix": "comment-", "snippet": replies["Greeting"]})
        assert "Hello Carl" not in refused.text and "there is no Canned reply" in html.unescape(refused.text)
