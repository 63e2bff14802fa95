"""Watchers and contacts in copy (T4, T15): staff follow a ticket from its page and hear its
conversation; the customer's colleagues in copy receive the public replies; an internal
note reaches none of them. The single follower of earlier versions becomes the first
watcher when the store is opened with these definitions. Through a real SMTP server."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from demo_web import csrf_of, mail_to, sign_in, text_of
from starlette.testclient import TestClient

from deskbase.connectors.smtp import SmtpSender
from deskbase.rules.access.identity import create_account
from deskbase.rules.application import load_application, open_store
from deskbase.rules.messages.outbox import deliver_due
from deskbase.views.app import create_app

PASSWORD = "a long test password"
SHIPPED = Path(__file__).parents[2] / "definitions"


@pytest.fixture
def desk(app_store, smtp_server):
    with app_store() as store:
        def setup(session):
            acme = session.create("organization", {"name": "Acme Logistics", "code": "ACME"})
            other = session.create("organization", {"name": "Globex", "code": "GLBX"})
            hotline = session.create("group", {"name": "Hotline"})
            session.create("contract", {"organization": acme.id, "name": "Acme support", "starts": "2026-01-01",
                                        "hotline_group": hotline.id})
            carl = session.create("contact", {"name": "Carl Berg", "email": "carl@acme.example",
                                              "organization": acme.id, "login": "carl"})
            dana = session.create("contact", {"name": "Dana Holm", "email": "dana@acme.example",
                                              "organization": acme.id})
            gil = session.create("contact", {"name": "Gil Stone", "email": "gil@globex.example",
                                             "organization": other.id})
            session.update(acme, {"authorized_requesters": [carl.id, dana.id]})
            ticket = session.create("ticket", {"title": "Label printer offline", "organization": acme.id,
                                               "requester": carl.id, "assignee": "khaddad"})
            return {"acme": acme.id, "hotline": hotline.id, "carl": carl.id, "dana": dana.id, "gil": gil.id,
                    "ticket": ticket.number, "ticket_id": ticket.id}
        store.ids = store.run(setup)
        for login, name in (("tdvorak", "Tomáš Dvořák"), ("khaddad", "Karim Haddad")):
            create_account(store, login, name=name, password=PASSWORD, roles=["technician"],
                           groups=[store.ids["hotline"]], email=f"{login}@desk.example")
        create_account(store, "carl", name="Carl Berg", password=PASSWORD, roles=["customer_user"],
                       organization=store.ids["acme"], email="carl@acme.example")
        store.sender = SmtpSender("127.0.0.1", smtp_server.port, sender_address="helpdesk@localhost",
                                  reply_to="helpdesk@localhost", timeout=5)
        deliver_due(store, {"email": store.sender})
        smtp_server.received.clear()
        yield store


def _received(smtp_server, address: str, words: str) -> list:
    return [m for m in mail_to(smtp_server, address) if words in text_of(m)]


def test_a_technician_follows_a_ticket_from_its_page_then_hears_the_customer(desk, smtp_server):
    number = desk.ids["ticket"]
    with TestClient(create_app(desk), follow_redirects=False) as web:
        sign_in(web, "tdvorak", PASSWORD)
        page = web.get(f"/r/{number}").text
        assert ">Follow</button>" in page and 'aria-pressed="false"' in page
        followed = web.post(f"/r/{number}/join/watchers", data={"csrf": csrf_of(page), "leave": "0"})
        assert followed.status_code == 303 and followed.headers["location"] == f"/r/{number}"
        page = web.get(f"/r/{number}").text
        assert ">Stop following</button>" in page and 'aria-pressed="true"' in page
        assert number in web.get("/v/tickets_i_follow").text
        history = desk.read(lambda s: s.find(number).history.entries[-1])
        assert history["by"] == "tdvorak" and tuple(history["changes"]["watchers"]) == ([], ["tdvorak"])

        with TestClient(create_app(desk), follow_redirects=False) as portal:   # Carl writes in the portal
            token = sign_in(portal, "carl", PASSWORD)
            wrote = portal.post(f"/new/comment?ticket={desk.ids['ticket_id']}",
                                data={"csrf": token, "ticket": str(desk.ids["ticket_id"]),
                                      "body": "The printer blinks red now."})
            assert wrote.status_code == 303, wrote.text
        deliver_due(desk, {"email": desk.sender})
        for address in ("tdvorak@desk.example", "khaddad@desk.example"):     # the watcher and the assignee
            [told] = _received(smtp_server, address, "The printer blinks red now.")
            assert number in told["Subject"]

        web.post(f"/r/{number}/join/watchers", data={"csrf": csrf_of(page), "leave": "1"})
        assert desk.read(lambda s: s.find(number)["watchers"]) == ()
        assert f'href="/r/{number}"' not in web.get("/v/tickets_i_follow").text


def test_a_customer_cannot_follow_and_a_forged_form_changes_nothing(desk):
    number = desk.ids["ticket"]
    desk.run(lambda s: s.update(number, {"watchers": ["khaddad"]}))
    with TestClient(create_app(desk), follow_redirects=False) as portal:
        token = sign_in(portal, "carl", PASSWORD)
        page = portal.get(f"/r/{number}").text
        assert ">Follow</button>" not in page
        assert "Watchers" not in page                      # who of the staff follows is ours to know
        refused = portal.post(f"/r/{number}/join/watchers", data={"csrf": token})
        assert refused.status_code == 404 and "cannot add yourself" in refused.text
    with TestClient(create_app(desk), follow_redirects=False) as web:
        sign_in(web, "tdvorak", PASSWORD)
        forged = web.post(f"/r/{number}/join/watchers", data={"csrf": "forged"})
        assert forged.status_code == 403
        assert web.post(f"/r/{number}/join/title", data={"csrf": csrf_of(web.get("/").text)}).status_code == 404
    assert desk.read(lambda s: s.find(number)["watchers"]) == ("khaddad",)


def test_a_public_reply_reaches_the_contacts_in_copy_and_the_watchers_an_internal_note_none(desk, smtp_server):
    number, ticket_id = desk.ids["ticket"], desk.ids["ticket_id"]
    with TestClient(create_app(desk), follow_redirects=False) as web:
        token = sign_in(web, "tdvorak", PASSWORD)
        # Contacts in copy are chosen among the people of the ticket's organization.
        editor = web.get(f"/r/{number}/inline/cc_contacts").text
        assert "Dana Holm" in editor and "Carl Berg" in editor and "Gil Stone" not in editor
        changed = web.post(f"/r/{number}/inline/cc_contacts", data={"csrf": token, "seen": "",
                                                                    "cc_contacts": [str(desk.ids["dana"])]})
        assert changed.status_code == 303
        desk.run(lambda s: s.update(number, {"watchers": ["khaddad"], "assignee": "tdvorak"}))
        for body, visibility in (("We replace the print head tomorrow.", "public"),
                                 ("The print head is on back order.", "internal")):
            made = web.post(f"/new/comment?ticket={ticket_id}",
                            data={"csrf": token, "ticket": str(ticket_id), "visibility": visibility, "body": body})
            assert made.status_code == 303
    deliver_due(desk, {"email": desk.sender})
    for address in ("carl@acme.example", "dana@acme.example", "khaddad@desk.example"):
        [reply] = _received(smtp_server, address, "We replace the print head tomorrow.")
        assert number in reply["Subject"]
    assert not _received(smtp_server, "tdvorak@desk.example", "We replace the print head")   # who wrote it
    assert not [r for r in smtp_server.received if "back order" in text_of(r.message)]


def test_merging_a_duplicate_moves_its_watchers_and_contacts_in_copy(desk):
    from deskbase.rules.access.identity import Identity
    from deskbase.rules.process.workflows import fire
    number = desk.ids["ticket"]

    def duplicate(session):
        return session.create("ticket", {"title": "Printer dock 3 offline", "organization": desk.ids["acme"],
                                         "requester": desk.ids["carl"], "watchers": ["tdvorak"],
                                         "cc_contacts": [desk.ids["dana"]]}).number
    copy = desk.run(duplicate)
    desk.run(lambda s: s.update(number, {"watchers": ["khaddad"]}))
    desk.run(lambda s: fire(s, copy, "merge", {"into": number, "time_spent": "2m"}),
             identity=Identity("tdvorak", "Tomáš Dvořák", ("technician",)))
    target = desk.read(lambda s: dict(s.find(number).values))
    assert target["watchers"] == ("khaddad", "tdvorak") and target["cc_contacts"] == (desk.ids["dana"],)


def _old_definitions(folder: Path) -> Path:
    """The shipped definitions as they were with one `follower` per ticket."""
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("demo", "locale"))   # English and French alone
    path = folder / "helpdesk.yaml"
    text = path.read_text()
    start = text.index("      watchers:\n        kind: users")
    end = text.index("      cc_contacts:\n")
    text = text[:start] + "      follower: {kind: user, label: {en: Follower}}\n" + text[end:]
    text = text.replace("{keyword: watchers}", "follower").replace("watchers", "follower")
    path.write_text(text)
    return folder


def test_the_follower_of_each_ticket_becomes_its_first_watcher(tmp_path):
    uri = f"file://{tmp_path / 'Data.fs'}"
    old = load_application(_old_definitions(tmp_path / "old"))
    assert "follower" in old.type("ticket").fields and "watchers" not in old.type("ticket").fields
    with open_store(uri, old) as store:
        store.run(lambda s: [s.create("ticket", {"title": f"Ticket {n}", "follower": follower})
                             for n, follower in enumerate(("cmartin", None, "jroux"))])
    with open_store(uri, load_application(SHIPPED)) as store:
        watchers = store.read(lambda s: [s.find(f"T-{n:06d}")["watchers"] for n in (1, 2, 3)])
        followed = store.read(lambda s: [r.number for r in s.query("ticket", {"watchers": "cmartin"}).records])
    assert watchers[0] == ("cmartin",) and not watchers[1] and watchers[2] == ("jroux",)
    assert followed == ["T-000001"]


def test_a_watcher_hears_only_of_a_ticket_they_may_still_read(desk, smtp_server):
    create_account(desk, "cmartin", name="Claire Martin", password=PASSWORD, roles=["supervisor"],
                   email="cmartin@desk.example")
    number, ticket_id = desk.ids["ticket"], desk.ids["ticket_id"]
    desk.run(lambda s: s.update(number, {"watchers": ["khaddad", "cmartin"], "assignee": None}))
    with TestClient(create_app(desk), follow_redirects=False) as web:
        token = sign_in(web, "tdvorak", PASSWORD)
        assert web.post(f"/r/{number}/fire/take", data={"csrf": token, "time_spent": "5m"}).status_code == 303
        web.post(f"/new/comment?ticket={ticket_id}", data={"csrf": token, "ticket": str(ticket_id),
                                                          "visibility": "public", "body": "On my way to dock 3."})
    deliver_due(desk, {"email": desk.sender})
    # T7: once Tomáš has taken it, Karim, another technician, no longer reads the ticket he
    # followed: he hears neither of the change nor of the reply. Claire, a supervisor, does.
    assert [m["Subject"] for m in mail_to(smtp_server, "cmartin@desk.example")] == [
        f"[{number}] Label printer offline: In progress", f"[{number}] Label printer offline"]
    assert _received(smtp_server, "cmartin@desk.example", "On my way to dock 3.")
    assert mail_to(smtp_server, "khaddad@desk.example") == []
