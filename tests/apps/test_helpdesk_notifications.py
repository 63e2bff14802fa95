"""Helpdesk notifications (T15): every status change, the opening included, tells the
requester and the technician, with a link to the ticket; delivered through a real SMTP server."""
from __future__ import annotations

import pytest

from deskbase.connectors.smtp import SmtpSender
from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.messages.outbox import PENDING, SENT, deliver_due, list_messages
from deskbase.rules.process.workflows import fire

TINA = Identity("tina", "Tina", ("technician",))
DORA = Identity("dora", "Dora", ("dispatcher",))
PASSWORD = "correct horse battery"


@pytest.fixture
def helpdesk(app_store):
    with app_store() as store:
        create_account(store, "tina", name="Tina", password=PASSWORD, roles=["technician"],
                       email="tina@support.example")
        create_account(store, "dora", name="Dora", password=PASSWORD, roles=["dispatcher"],
                       email="dora@support.example")

        def setup(session):
            acme = session.create("organization", {"name": "Acme", "code": "ACME"}).id
            carl = session.create("contact", {"name": "Carl", "email": "carl@acme.example", "organization": acme}).id
            return acme, carl
        store.acme, store.carl = store.run(setup)
        yield store


def open_ticket(helpdesk) -> str:
    values = {"title": "printer jammed", "organization": helpdesk.acme, "requester": helpdesk.carl}
    return helpdesk.run(lambda s: s.create("ticket", values).number)


def outbox(helpdesk, state: str | None = None):
    def work(session):
        found = sorted(list_messages(session, state, limit=1000), key=lambda m: (m.queued_at, len(m.thread)))
        return [(m.recipients[0], m.subject, m.body, m.state) for m in found]
    return helpdesk.read(work)


def test_opening_a_ticket_tells_the_requester_with_the_number_and_the_link(helpdesk):
    number = open_ticket(helpdesk)
    [(recipient, subject, body, state)] = [m for m in outbox(helpdesk) if m[0] != "dora@support.example"]
    assert recipient == "carl@acme.example" and state == PENDING
    assert subject == f"[{number}] printer jammed: Awaiting pickup"
    assert f"Your ticket {number} has been opened." in body
    assert f"http://localhost:8000/r/{number}" in body


def test_a_new_ticket_without_a_group_alerts_the_dispatchers(helpdesk):
    number = open_ticket(helpdesk)
    [(recipient, subject, body, _)] = [m for m in outbox(helpdesk) if m[0] != "carl@acme.example"]
    assert recipient == "dora@support.example" and subject == f"[{number}] New ticket: printer jammed"
    assert f"http://localhost:8000/r/{number}" in body


def test_a_new_ticket_alerts_the_members_of_its_group_and_not_the_dispatchers(helpdesk):
    hotline = helpdesk.run(lambda s: s.create("group", {"name": "Hotline"}).id)
    create_account(helpdesk, "hugo", name="Hugo", password=PASSWORD, roles=["technician"], groups=[hotline],
                   email="hugo@support.example")
    values = {"title": "scanner offline", "organization": helpdesk.acme, "requester": helpdesk.carl, "group": hotline}
    number = helpdesk.run(lambda s: s.create("ticket", values).number)
    alerts = [m for m in outbox(helpdesk) if "New ticket" in m[1]]
    assert [(m[0], m[1]) for m in alerts] == [("hugo@support.example", f"[{number}] New ticket: scanner offline")]


def test_a_status_change_tells_the_requester_and_the_assignee_but_not_the_actor(helpdesk):
    number = open_ticket(helpdesk)
    opened = len(outbox(helpdesk))                   # the requester, and the dispatcher's alert
    helpdesk.run(lambda s: fire(s, number, "take", {"time_spent": "10m"}), identity=TINA)   # Tina takes it
    assert [m[0] for m in outbox(helpdesk)[opened:]] == ["carl@acme.example"]
    helpdesk.run(lambda s: fire(s, number, "ask_customer", {"time_spent": "5m",
                                                                          "question": "Which printer?"}), identity=TINA)
    helpdesk.run(lambda s: s.update(number, {"assignee": "dora"}))      # reassigned (by the system)
    helpdesk.run(lambda s: fire(s, number, "resume", {"time_spent": "5m"}))         # Dora, assigned now, is told
    last = outbox(helpdesk)[-2:]
    assert sorted(m[0] for m in last) == ["carl@acme.example", "dora@support.example"]
    assert all(m[1] == f"[{number}] printer jammed: In progress" for m in last)


def test_the_ticket_mail_reaches_the_smtp_server_threaded_on_the_opening(helpdesk, smtp_server):
    number = open_ticket(helpdesk)
    helpdesk.run(lambda s: fire(s, number, "take", {"time_spent": "10m"}), identity=TINA)
    sender = SmtpSender("127.0.0.1", smtp_server.port, sender_address="helpdesk@localhost",
                        reply_to="helpdesk@localhost", timeout=5)
    report = deliver_due(helpdesk, {"email": sender})
    assert len(report.sent) == 3 and not report.retrying         # Carl's two, the dispatcher's alert
    opening, taken = sorted((mail.message for mail in smtp_server.received if mail.message["To"] == "carl@acme.example"),
                            key=lambda m: len(m["References"] or ""))
    assert opening["To"] == taken["To"] == "carl@acme.example"
    assert number in opening["Subject"] and taken["Subject"] == f"[{number}] printer jammed: In progress"
    # One chain per ticket: the opening first, then the dispatcher's alert, which `taken` answers.
    [alert] = [mail.message for mail in smtp_server.received if mail.message["To"] == "dora@support.example"]
    assert taken["References"].split() == [opening["Message-ID"], alert["Message-ID"]]
    assert taken["In-Reply-To"] == alert["Message-ID"]
    assert f"http://localhost:8000/r/{number}" in taken.get_content()


@pytest.mark.parametrize("language, subject, opened", [
    ("cs", "printer jammed: Čeká na převzetí", "byl zaevidován"),
    ("pt", "printer jammed: A aguardar tratamento", "foi aberto"),
    ("hr", "printer jammed: Čeka preuzimanje", "otvoren je"),
])
def test_a_customer_whose_account_speaks_another_language_reads_the_mail_in_it(helpdesk, smtp_server, language,
                                                                                 subject, opened):
    # Carl's address in the contact record is also his account's, which reads the pages in `language`.
    create_account(helpdesk, "carl", name="Carl", password=PASSWORD, roles=["customer_user"],
                   email="carl@acme.example", language=language, organization=helpdesk.acme)
    number = open_ticket(helpdesk)
    sender = SmtpSender("127.0.0.1", smtp_server.port, sender_address="helpdesk@localhost", timeout=5)
    deliver_due(helpdesk, {"email": sender})
    [mail] = [mail.message for mail in smtp_server.received if mail.message["To"] == "carl@acme.example"]
    assert mail["Subject"] == f"[{number}] {subject}"
    assert opened in mail.get_content() and f"http://localhost:8000/r/{number}" in mail.get_content()
    [alert] = [mail.message for mail in smtp_server.received if mail.message["To"] == "dora@support.example"]
    assert alert["Subject"] == f"[{number}] New ticket: printer jammed"      # Dora's account speaks English


def test_with_the_smtp_server_down_the_mail_stays_pending_and_goes_out_once_it_is_back(helpdesk, smtp_server_later):
    number = open_ticket(helpdesk)
    sender = SmtpSender("127.0.0.1", smtp_server_later.port, sender_address="helpdesk@localhost", timeout=5)
    report = deliver_due(helpdesk, {"email": sender})
    assert report.retrying and not report.sent
    assert [m[3] for m in outbox(helpdesk)] == [PENDING, PENDING]     # Carl's, the dispatcher's alert
    smtp_server_later.start()
    later = max(m.due_at for m in helpdesk.read(lambda s: list_messages(s)))
    report = deliver_due(helpdesk, {"email": sender}, now=later)
    assert len(report.sent) == 2
    assert deliver_due(helpdesk, {"email": sender}, now=later).claimed == 0     # once, not again
    assert [m[3] for m in outbox(helpdesk)] == [SENT, SENT]
    [mail] = [m for m in smtp_server_later.received if m.message["To"] == "carl@acme.example"]
    assert number in mail.message["Subject"]


def test_loading_the_demo_queues_no_message(app_store):
    with app_store(demo=True) as store:
        assert outbox(store) == []
        number = open_ticket_at_new_customer(store)
        assert [m[0] for m in outbox(store)] == ["carl@acme.example"]    # and notifies again afterwards
        assert number in outbox(store)[0][1]


def open_ticket_at_new_customer(store) -> str:
    def work(session):
        acme = session.create("organization", {"name": "Acme Demo", "code": "ACMED"}).id
        carl = session.create("contact", {"name": "Carl", "email": "carl@acme.example", "organization": acme}).id
        return session.create("ticket", {"title": "printer jammed", "organization": acme, "requester": carl}).number
    return store.run(work)


def test_a_resolution_tells_the_requester_what_was_done_from_the_transitions_input(helpdesk):
    number = open_ticket(helpdesk)
    helpdesk.run(lambda s: fire(s, number, "take", {"time_spent": "10m"}), identity=TINA)
    helpdesk.run(lambda s: fire(s, number, "resolve", {"time_spent": "20m",
                                                       "work_done": "Replaced the pickup roller of tray 2."}),
                 identity=TINA)
    [resolved] = [m for m in outbox(helpdesk) if m[0] == "carl@acme.example" and m[1].endswith(": Resolved")]
    assert "Replaced the pickup roller of tray 2." in resolved[2]
    [taken] = [m for m in outbox(helpdesk) if m[0] == "carl@acme.example" and m[1].endswith(": In progress")]
    assert "pickup roller" not in taken[2]


def test_an_assignment_tells_the_assignee_and_the_watchers_without_the_customers_links(helpdesk):
    create_account(helpdesk, "fay", name="Fay", password=PASSWORD, roles=["supervisor"], email="fay@support.example")
    number = open_ticket(helpdesk)
    helpdesk.run(lambda s: s.update(number, {"watchers": ["fay"]}))
    before = len(outbox(helpdesk))
    helpdesk.run(lambda s: fire(s, number, "assign", {"assignee": "tina"}), identity=DORA)
    told = {m[0]: m for m in outbox(helpdesk)[before:]}
    assert set(told) == {"carl@acme.example", "tina@support.example", "fay@support.example"}
    for staff in ("tina@support.example", "fay@support.example"):
        assert told[staff][1] == f"[{number}] printer jammed: In progress"
        assert f"Ticket {number} is now: In progress (dora). Assigned to tina." in told[staff][2]
    before = len(outbox(helpdesk))
    helpdesk.run(lambda s: fire(s, number, "resolve", {"time_spent": "10m", "work_done": "New fuser unit."}),
                 identity=TINA)
    told = {m[0]: m for m in outbox(helpdesk)[before:]}
    assert set(told) == {"carl@acme.example", "fay@support.example"}        # not Tina, who resolved it
    assert "Accept it:" in told["carl@acme.example"][2] and "/a/" in told["carl@acme.example"][2]
    assert "Accept it:" not in told["fay@support.example"][2] and "/a/" not in told["fay@support.example"][2]
    assert "New fuser unit." in told["fay@support.example"][2]
