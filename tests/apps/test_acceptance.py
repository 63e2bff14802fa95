"""One ticket from an e-mail to an invoice, through the real servers and the web interface:
a customer writes to the support mailbox (Dovecot) → the ticket is opened for their
organization's contract and dispatched to its hotline group → a technician takes it in
the web interface, times the work with the stopwatch and resolves it → the customer
accepts the resolution from the link of the e-mail they received (SMTP) and rates it →
the month ends: the report is made, approved, sent → the invoice holds the right amount
and the report the right token balance; the customer receives the report's PDF by e-mail
and the invoice keeps its own PDF."""
from __future__ import annotations

import dataclasses
import html
import re
import subprocess
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from demo_web import mail_to, sign_in
from servers.dovecot import new_mail
from starlette.testclient import TestClient

from deskbase.connectors.imap import fetch
from deskbase.connectors.smtp import SmtpSender
from deskbase.rules.access.identity import create_account, identity_of
from deskbase.rules.intake.mail_intake import mailboxes
from deskbase.rules.messages.outbox import deliver_due
from deskbase.rules.process.approvals import decide_approval
from deskbase.rules.process.generators import period_of, run_generator
from deskbase.rules.process.workflows import fire
from deskbase.views import stopwatch
from deskbase.views.app import create_app

PASSWORD = "a long test password"


@pytest.fixture
def desk(app_store, helpdesk_definitions, dovecot, imap_folder, smtp_server, monkeypatch):
    monkeypatch.setenv("DESKBASE_IMAP_USER", dovecot.user)
    monkeypatch.setenv("DESKBASE_IMAP_PASSWORD", dovecot.password)
    with app_store() as store:
        today = datetime.now(timezone.utc).date()

        def setup(session):
            acme = session.create("organization", {"name": "Acme Logistics", "code": "ACME"})
            hotline = session.create("group", {"name": "Hotline"})
            contract = session.create("contract", {
                "organization": acme.id, "name": "Acme support", "starts": "2026-01-01", "hotline_group": hotline.id,
                "token_minutes": 15, "report_email": "it@acme.example"})
            session.create("token_top_up", {"contract": contract.id, "date": today.replace(day=1), "tokens": "40"})
            session.create("contract_service", {"contract": contract.id, "name": "Backup monitoring",
                                                "monthly_price": "120", "starts": "2026-01-01"})
            carl = session.create("contact", {"name": "Carl Berg", "email": "carl@acme.example",
                                              "organization": acme.id})
            session.update(acme, {"authorized_requesters": [carl.id]})
            return {"acme": acme.id, "hotline": hotline.id, "contract": contract.id}
        store.ids = store.run(setup)
        create_account(store, "tdvorak", name="Tomáš Dvořák", password=PASSWORD, roles=["technician"],
                       groups=[store.ids["hotline"]], email="tdvorak@desk.example")
        create_account(store, "cmartin", name="Claire Martin", password=PASSWORD, roles=["supervisor"],
                       email="cmartin@desk.example")
        store.mailbox = dataclasses.replace(mailboxes(helpdesk_definitions)["support"], host=dovecot.host,
                                            port=dovecot.port, folder=imap_folder)
        store.sender = SmtpSender("127.0.0.1", smtp_server.port, sender_address="helpdesk@localhost",
                                  reply_to="helpdesk@localhost", timeout=5)
        yield store


def link_in(message, path: str) -> str:
    return re.search(rf"https?://[^\s]+(/{path}/[^\s]+)", message.get_content()).group(1)


def pdf_text(content: bytes, folder) -> str:
    """The text of a PDF as poppler's pdftotext reads it, spaces made plain."""
    path = folder / "document.pdf"
    path.write_bytes(content)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split())


def test_one_ticket_from_an_email_to_an_invoice(desk, dovecot, smtp_server, tmp_path):
    # The customer writes to the support address.
    desk.mailbox and dovecot.append(desk.mailbox.folder, new_mail(
        subject="Label printer offline", body="The label printer of dock 3 prints nothing since 8:00.",
        sender="Carl Berg <carl@acme.example>"))
    assert fetch(desk, desk.mailbox).count("created") == 1
    ticket = desk.read(lambda s: dict(s.query("ticket", limit=1).records[0].values))
    number = desk.read(lambda s: s.get("ticket", ticket["id"]).number)
    assert (ticket["title"], ticket["channel"], ticket["organization"]) == ("Label printer offline", "email",
                                                                            desk.ids["acme"])
    assert ticket["contract"] == desk.ids["contract"] and ticket["group"] == desk.ids["hotline"]   # dispatched
    deliver_due(desk, {"email": desk.sender})
    assert any(number in m["Subject"] for m in mail_to(smtp_server, "carl@acme.example"))        # "opened"

    # The technician takes it, times the work with the stopwatch, resolves it.
    with TestClient(create_app(desk), follow_redirects=False) as web:
        token = sign_in(web, "tdvorak", PASSWORD)
        assert web.post(f"/r/{number}/fire/take", data={"csrf": token, "time_spent": "5m"}).status_code == 303
        assert web.post(f"/r/{number}/stopwatch/start", headers={"X-CSRF-Token": token}).status_code == 200

        def wind_back(session):                                  # forty minutes of work, without waiting them
            watch = stopwatch.read(session, "tdvorak", number)
            stopwatch._write(session, "tdvorak", number,
                             stopwatch.Stopwatch(watch.counted, watch.running_since - timedelta(minutes=40)))
        desk.run(wind_back)
        web.post(f"/r/{number}/stopwatch/stop", headers={"X-CSRF-Token": token})
        page = web.get(f"/r/{number}").text
        asked = re.search(r'action="/r/[^/]+/fire/resolve".*?name="time_spent" value="([^"]*)"', page, re.S).group(1)
        assert asked == "40m"                                    # the stopwatch's time, offered
        resolved = web.post(f"/r/{number}/fire/resolve", data={"csrf": token, "time_spent": asked,
                                                               "work_done": "Print head cleaned, driver reinstalled."})
        assert resolved.status_code == 303
    work = desk.read(lambda s: sorted((r["duration"], r["tokens"]) for r in s.query(
        "work_entry", {"ticket": ticket["id"]}, limit=None).records))
    assert work == [(5 * 60, 1), (40 * 60, 3)]                   # tokens rounded up per entry

    # The customer accepts the resolution from the e-mail's link, then rates the work.
    deliver_due(desk, {"email": desk.sender})
    resolution = [m for m in mail_to(smtp_server, "carl@acme.example") if "Resolved" in m["Subject"]][-1]
    with TestClient(create_app(desk), follow_redirects=False) as customer:
        accept = link_in(resolution, "a")
        assert "Accept the resolution" in customer.get(accept).text
        assert customer.post(accept, data={"confirm": "1"}).status_code == 200
        assert desk.read(lambda s: s.find(number)["status"]) == "closed"
        deliver_due(desk, {"email": desk.sender})
        closing = [m for m in mail_to(smtp_server, "carl@acme.example") if "Closed" in m["Subject"]][-1]
        survey = link_in(closing, "a")
        assert 'value="very_satisfied"' in customer.get(survey).text
        answered = customer.post(survey, data={"confirm": "1", "rating": "very_satisfied",
                                               "comment": "Quick and clear."})
        assert answered.status_code == 200, html.unescape(answered.text)[-1500:]
    assert desk.read(lambda s: s.query("survey", {"ticket": ticket["id"]}).records[0]["rating"]) == "very_satisfied"

    # The month ends: its report is made, approved and sent; the invoice follows.
    first_of_next = (date.today().replace(day=28) + timedelta(days=4)).replace(day=1)
    made = run_generator(desk, "monthly_reports", now=datetime.combine(first_of_next, datetime.min.time(),
                                                                         timezone.utc) + timedelta(hours=2))
    assert made.period == period_of("current_month", date.today(), "UTC") and len(made.made) == 1
    report_number = made.made[0]
    supervisor = identity_of(desk, "cmartin")
    desk.run(lambda s: decide_approval(s, report_number, "approve"), identity=supervisor)
    desk.run(lambda s: fire(s, report_number, "send"), identity=supervisor)
    report = desk.read(lambda s: dict(s.find(report_number).values))
    assert report["status"] == "sent" and report["tokens_used"] == 4
    assert report["token_balance"] == 40 - 4                     # what was left when the month was reported
    invoice = desk.read(lambda s: dict(s.query("invoice", {"report": report["id"]}).records[0].values))
    assert invoice["total"] == Decimal("120.00")                 # the flat-rate service; tokens were prepaid
    assert re.fullmatch(r"F\d{4}-00001", invoice["invoice_number"])

    # The customer receives the report at the contract's address, its PDF attached; the
    # invoice keeps its own PDF.
    deliver_due(desk, {"email": desk.sender})
    [mail] = [m for m in mail_to(smtp_server, "it@acme.example") if report_number in m["Subject"]]
    [part] = list(mail.iter_attachments())
    assert part.get_filename() == f"{report_number}-activity-report.pdf"
    assert part.get_content_type() == "application/pdf"
    text = pdf_text(part.get_content(), tmp_path)
    assert "Print head cleaned, driver" in text and "T-000001 · Label printer offline" in text   # work, ticket
    assert "Amount to invoice, before tax €120.00" in text and f"Invoiced on invoice {invoice['invoice_number']}" in text
    [(filename, content)] = desk.read(lambda s: [(item.filename, item.read()) for item in
                                                 s.get("invoice", invoice["id"]).get("files")])
    assert filename == f"{invoice['invoice_number']}-invoice.pdf"
    text = pdf_text(content, tmp_path)
    assert f"Invoice No. {invoice['invoice_number']}" in text and "Total before tax €120.00" in text
