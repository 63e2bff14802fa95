"""The conversation with a customer, through the real servers (T15, T17): a technician's
public reply in the web reaches the requester by e-mail with its file, in the ticket's
thread; the customer answers from their mail program and the answer becomes a comment of
the same ticket, which goes back to work, and the technician is told. An internal note
reaches nobody outside the staff; a customer's comment on a ticket nobody has reaches the
members of its group."""
from __future__ import annotations

import dataclasses

import pytest
from demo_web import mail_to, sign_in, text_of
from servers.dovecot import new_mail
from starlette.testclient import TestClient

from deskbase.connectors.imap import fetch
from deskbase.connectors.smtp import SmtpSender
from deskbase.rules.access.identity import create_account
from deskbase.rules.intake.mail_intake import mailboxes
from deskbase.rules.messages.outbox import deliver_due
from deskbase.views.app import create_app

PASSWORD = "a long test password"


@pytest.fixture
def desk(app_store, helpdesk_definitions, dovecot, imap_folder, smtp_server, monkeypatch):
    monkeypatch.setenv("DESKBASE_IMAP_USER", dovecot.user)
    monkeypatch.setenv("DESKBASE_IMAP_PASSWORD", dovecot.password)
    with app_store() as store:
        def setup(session):
            acme = session.create("organization", {"name": "Acme Logistics", "code": "ACME"})
            hotline = session.create("group", {"name": "Hotline"})
            session.create("contract", {"organization": acme.id, "name": "Acme support", "starts": "2026-01-01",
                                        "hotline_group": hotline.id})
            carl = session.create("contact", {"name": "Carl Berg", "email": "carl@acme.example",
                                              "organization": acme.id})
            session.update(acme, {"authorized_requesters": [carl.id]})
            return {"acme": acme.id, "hotline": hotline.id, "carl": carl.id}
        store.ids = store.run(setup)
        for login, name in (("tdvorak", "Tomáš Dvořák"), ("khaddad", "Karim Haddad")):
            create_account(store, login, name=name, password=PASSWORD, roles=["technician"],
                           groups=[store.ids["hotline"]], email=f"{login}@desk.example")
        store.mailbox = dataclasses.replace(mailboxes(helpdesk_definitions)["support"], host=dovecot.host,
                                            port=dovecot.port, folder=imap_folder)
        store.sender = SmtpSender("127.0.0.1", smtp_server.port, sender_address="helpdesk@localhost",
                                  reply_to="helpdesk@localhost", timeout=5)
        yield store


def test_a_public_reply_reaches_the_customer_in_the_thread_and_the_answer_comes_back(desk, dovecot, smtp_server):
    dovecot.append(desk.mailbox.folder, new_mail(subject="Label printer offline", sender="Carl Berg <carl@acme.example>",
                                                 body="The label printer of dock 3 prints nothing since 8:00."))
    assert fetch(desk, desk.mailbox).count("created") == 1
    ticket = desk.read(lambda s: s.query("ticket", limit=1).records[0])
    number, ticket_id = ticket.number, ticket.id
    deliver_due(desk, {"email": desk.sender})
    [opened] = mail_to(smtp_server, "carl@acme.example")

    with TestClient(create_app(desk), follow_redirects=False) as web:
        token = sign_in(web, "tdvorak", PASSWORD)
        assert web.post(f"/r/{number}/fire/take", data={"csrf": token, "time_spent": "5m"}).status_code == 303
        reply = web.post(f"/new/comment?ticket={ticket_id}",
                         data={"csrf": token, "ticket": str(ticket_id), "visibility": "public",
                               "body": "Please switch the printer off and on again, as in the picture."},
                         files={"files": ("power-switch.png", b"\x89PNG\r\n\x1a\n picture", "image/png")})
        assert reply.status_code == 303
        note = web.post(f"/new/comment?ticket={ticket_id}",
                        data={"csrf": token, "ticket": str(ticket_id), "visibility": "internal",
                              "body": "Carl's printer is out of warranty since March."})
        assert note.status_code == 303
        asked = web.post(f"/r/{number}/fire/ask_customer",
                         data={"csrf": token, "time_spent": "5m", "question": "Does the display show an error?"})
        assert asked.status_code == 303
    deliver_due(desk, {"email": desk.sender})

    [answer] = [m for m in mail_to(smtp_server, "carl@acme.example") if "switch the printer off" in text_of(m)]
    assert number in answer["Subject"]
    assert answer["In-Reply-To"] and opened["Message-ID"] in answer["References"]
    assert [part.get_filename() for part in answer.iter_attachments()] == ["power-switch.png"]
    for message in (r.message for r in smtp_server.received):      # the note went nowhere, to nobody
        assert "out of warranty" not in text_of(message)
    # The question asked with `ask_customer` reaches Carl in the thread; no bare "Awaiting reply".
    [question] = [m for m in mail_to(smtp_server, "carl@acme.example") if "show an error?" in text_of(m)]
    assert number in question["Subject"] and opened["Message-ID"] in question["References"]
    assert not [m for m in mail_to(smtp_server, "carl@acme.example") if "Awaiting reply" in m["Subject"]]
    asked = desk.read(lambda s: [(r["action"], r["visibility"], r["author"]) for r in s.query(
        "comment", {"ticket": ticket_id, "action": "question"}, limit=None).records])
    assert asked == [("question", "public", "tdvorak")]

    # Carl answers from his mail program: the answer joins the ticket, which goes back to work.
    dovecot.append(desk.mailbox.folder, new_mail(
        subject=f"Re: {answer['Subject']}", sender="Carl Berg <carl@acme.example>",
        body="It prints again, thank you!\n\n> Please switch the printer off and on again",
        In_Reply_To=answer["Message-ID"], References=f"{answer['References']} {answer['Message-ID']}"))
    assert fetch(desk, desk.mailbox).count("replied") == 1          # joined to the ticket
    comments = desk.read(lambda s: [dict(r.values) for r in s.query("comment", {"ticket": ticket_id}, "id",
                                                                    limit=None).records])
    assert comments[-1]["body"].startswith("It prints again, thank you!")
    assert (comments[-1]["author_kind"], comments[-1]["visibility"]) == ("customer", "public")
    assert desk.read(lambda s: s.get("ticket", ticket_id).get("status")) == "in_progress"
    assert desk.read(lambda s: s.count("ticket")) == 1                # no second ticket
    deliver_due(desk, {"email": desk.sender})
    [told] = [m for m in mail_to(smtp_server, "tdvorak@desk.example") if "It prints again" in text_of(m)]
    assert number in told["Subject"]
    assert not [m for m in mail_to(smtp_server, "khaddad@desk.example") if "It prints again" in text_of(m)]


def test_a_customer_comment_on_a_ticket_nobody_has_reaches_the_group(desk, smtp_server):
    def work(session):
        ticket = session.create("ticket", {"title": "Scanner offline", "organization": desk.ids["acme"],
                                           "requester": desk.ids["carl"]})
        session.create("comment", {"ticket": ticket.id, "author_kind": "customer", "visibility": "public",
                                   "body": "Any news about the scanner?"})
        return ticket.get("group")
    assert desk.run(work) == desk.ids["hotline"]                      # dispatched to the contract's hotline
    deliver_due(desk, {"email": desk.sender})
    told = sorted(address for address in ("tdvorak@desk.example", "khaddad@desk.example", "carl@acme.example")
                  for m in mail_to(smtp_server, address) if "Any news about the scanner?" in text_of(m))
    assert told == ["khaddad@desk.example", "tdvorak@desk.example"]


def test_on_the_demo_a_public_comment_made_through_the_api_reaches_the_requester_and_an_internal_one_nobody(
        app_store, smtp_server):
    from deskbase.views.api_keys import add_key
    with app_store(demo=True) as demo:
        def mine(session):
            ticket = session.query("ticket", {"assignee": "sbernard", "status": "in_progress"}, "id", limit=1).records[0]
            requester = session.get("contact", ticket.get("requester"))
            return ticket.number, requester.get("email")
        number, address = demo.read(mine)
        key = add_key(demo, "key-sbernard", "sbernard")
        with TestClient(create_app(demo), follow_redirects=False) as api:
            for body, visibility in (("We ordered the part.", "public"), ("Part costs 40 €.", "internal"),
                                     ("The part arrives tomorrow.", "public")):
                made = api.post("/api/v1/comment", headers={"Authorization": f"Bearer {key}"},
                                json={"ticket": number, "body": body, "visibility": visibility})
                assert made.status_code == 201, made.text
        sender = SmtpSender("127.0.0.1", smtp_server.port, sender_address="helpdesk@localhost", timeout=5)
        deliver_due(demo, {"email": sender})
    first, second = mail_to(smtp_server, address)
    assert "We ordered the part." in text_of(first) and "The part arrives tomorrow." in text_of(second)
    assert number in first["Subject"] and number in second["Subject"]
    assert second["In-Reply-To"] == first["Message-ID"] and first["Message-ID"] in second["References"]
    assert not [r for r in smtp_server.received if "Part costs 40" in text_of(r.message)]


def test_the_customer_sees_the_tickets_waiting_for_their_reply_on_the_portal(app_store):
    from demo_web import sign_in as sign_in_demo

    from deskbase.rules.access.identity import Identity, identity_of
    from deskbase.rules.process.workflows import fire
    with app_store(demo=True) as demo:
        organization = identity_of(demo, "psvoboda").organization

        def in_progress(session):
            return session.query("ticket", {"organization": organization, "status": "in_progress"}, "id",
                                 limit=1).records[0]
        ticket = demo.read(in_progress)
        with TestClient(create_app(demo), follow_redirects=False) as portal:
            sign_in_demo(portal, "psvoboda")
            before = portal.get("/v/waiting_for_us").text
            assert ticket.number not in before
            who = Identity(ticket.get("assignee"), "", ("technician",))
            demo.run(lambda s: fire(s, ticket.number, "ask_customer",
                                    {"time_spent": "5m", "question": "May we reboot the server tonight?"}),
                     identity=who)
            home = portal.get("/").text
            waiting = demo.read(lambda s: s.count("ticket", {"organization": organization,
                                                             "status": "awaiting_reply"}))
            assert f'<a href="/v/waiting_for_us"><strong>{waiting}</strong> Waiting for your reply</a>' in home
            listed = portal.get("/v/waiting_for_us").text
            assert ticket.number in listed
            page = portal.get(f"/r/{ticket.number}").text
            assert "May we reboot the server tonight?" in page          # the question, in the conversation


def test_accepting_a_resolution_in_the_portal_offers_the_survey_there_and_then(app_store):
    from demo_web import csrf_of, sign_in as sign_in_demo

    from deskbase.rules.access.identity import identity_of
    from deskbase.rules.process.workflows import fire
    with app_store(demo=True) as demo:
        organization = identity_of(demo, "psvoboda").organization

        def resolved(session) -> list[str]:
            found = session.query("ticket", {"organization": organization, "status": "in_progress"}, "id",
                                  limit=2).records
            return [ticket.number for ticket in found]
        first, second = demo.read(resolved)
        for number in (first, second):
            demo.run(lambda s: fire(s, number, "resolve", {"time_spent": "10m"}))
        surveys = demo.read(lambda s: s.count("survey"))
        with TestClient(create_app(demo), follow_redirects=False) as portal:
            sign_in_demo(portal, "psvoboda")
            page = portal.get(f"/r/{first}").text
            accepted = portal.post(f"/r/{first}/fire/accept", data={"csrf": csrf_of(page)})
            assert accepted.status_code == 303 and accepted.headers["location"].startswith("/a/")
            form = portal.get(accepted.headers["location"])
            assert form.status_code == 200 and 'name="rating"' in form.text
            answered = portal.post(accepted.headers["location"], data={"rating": "very_satisfied"})   # the link is the key
            assert answered.status_code in (200, 303)
        assert demo.read(lambda s: s.count("survey")) == surveys + 1
        ticket_id = demo.read(lambda s: s.find(first).id)
        assert demo.read(lambda s: s.query("survey", {"ticket": ticket_id}, limit=1).records[0]["rating"]) \
            == "very_satisfied"
        with TestClient(create_app(demo), follow_redirects=False) as staff:      # a supervisor is not surveyed
            sign_in_demo(staff, "cmartin")
            page = staff.get(f"/r/{second}").text
            accepted = staff.post(f"/r/{second}/fire/accept", data={"csrf": csrf_of(page)})
            assert (accepted.status_code, accepted.headers["location"]) == (303, f"/r/{second}")


def test_a_then_naming_an_unknown_type_or_field_is_located_with_a_suggestion(tmp_path):
    from shipped import refusal_of_changed
    refused = refusal_of_changed(tmp_path, "then: {answer: survey, values: {ticket: $record.id,",
                                 "then: {answer: survey, values: {tiket: $record.id,")
    found = [(e.path, e.message, e.hint) for e in refused.errors]
    assert found[0] == ("types.ticket.workflow.transitions.accept.then.values.tiket",
                        "`tiket` is not a field of type `survey`", "did you mean `ticket`?")
    assert all(path.startswith("approvals.") for path, _, _ in found[1:])   # sections reading the workflow


def test_a_contact_in_copy_may_answer_and_another_customers_answer_is_held(desk, dovecot):
    from deskbase.rules.intake.mail_intake import held_messages

    def setup(session):
        dana = session.create("contact", {"name": "Dana Holm", "email": "dana@acme.example",
                                          "organization": desk.ids["acme"]})        # not an authorized requester
        globex = session.create("organization", {"name": "Globex", "code": "GLBX"})
        gil = session.create("contact", {"name": "Gil Stone", "email": "gil@globex.example",
                                         "organization": globex.id})
        session.update(globex, {"authorized_requesters": [gil.id]})                # he may write, for Globex
        return session.create("ticket", {"title": "Dock 3 scanner", "organization": desk.ids["acme"],
                                         "requester": desk.ids["carl"], "cc_contacts": [dana.id]}).number
    number = desk.run(setup)
    for sender, body in (("Dana Holm <dana@acme.example>", "The scanner works again on dock 3."),
                         ("Gil Stone <gil@globex.example>", "Please close this one.")):
        dovecot.append(desk.mailbox.folder, new_mail(subject=f"Re: [{number}] Dock 3 scanner", sender=sender,
                                                     body=body))
    outcomes = fetch(desk, desk.mailbox)
    assert outcomes.count("replied") == 1 and outcomes.count("quarantined") == 1
    bodies = desk.read(lambda s: [r["body"] for r in s.query("comment", {"ticket": s.find(number).id}).records])
    assert bodies == ["The scanner works again on dock 3."]
    [held] = desk.read(lambda s: held_messages(s))
    assert held.reason == f"gil@globex.example is not among the people who may answer {number}"
