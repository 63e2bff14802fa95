"""Contracts, time and billing in the shipped definitions (P9, B1–B6, P19): billable and
internal work, billed time apart from time spent, tokens consumed per entry and topped up
per period, flat-rate services due by their own frequency, the monthly report made once
per contract and month, validated through an approval, then sent with its PDF to the
customer — and the invoice it makes, numbered per year without gaps, its PDF kept with it."""
from __future__ import annotations

import subprocess
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from deskbase.connectors.smtp import SmtpSender
from deskbase.objects.errors import ValidationError
from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.documents import making as documents
from deskbase.rules.messages.outbox import deliver_due, list_messages
from deskbase.rules.process.approvals import decide_approval
from deskbase.rules.process.generators import month, run_generator
from deskbase.rules.process.workflows import TransitionRefused, fire

CLAIRE = Identity("cmartin", "Claire Martin", ("supervisor",))
TINA = Identity("tina", "Tina", ("technician",))
OCTOBER = month("2026-10")
NOVEMBER_FIRST = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def billing(app_store):
    with app_store() as store:
        def setup(session):
            ids = {"acme": session.create("organization", {"name": "Acme", "code": "ACME"}).id,
                   "globex": session.create("organization", {"name": "Globex", "code": "GLOBEX"}).id}
            ids["support_hour"] = session.create("billing_item", {"code": "H-SUP", "name": "Support hour",
                                                                  "rate": "95"}).id
            ids["printer_rental"] = session.create("billing_item", {"code": "R-PRN", "name": "Printer rental",
                                                                    "unit": "month", "rate": "300"}).id
            ids["tokens"] = session.create("contract", {
                "organization": ids["acme"], "name": "Acme prepaid support", "starts": "2026-01-01",
                "token_minutes": 15, "top_up_tokens": "40", "top_up_every": "quarterly"}).id
            ids["hourly"] = session.create("contract", {
                "organization": ids["globex"], "name": "Globex support", "starts": "2026-01-15",
                "hourly_rate": "80"}).id
            session.create("contract_service", {"contract": ids["hourly"], "name": "Printer fleet rental",
                                                "billing_item": ids["printer_rental"], "monthly_price": "300",
                                                "billed_every": "quarterly", "starts": "2026-01-15"})
            session.create("contract_service", {"contract": ids["hourly"], "name": "Backup monitoring",
                                                "monthly_price": "62", "split_per_day": True,
                                                "starts": "2026-10-11"})
            ids["acme_ticket"] = session.create("ticket", {"title": "Printer jam", "organization": ids["acme"],
                                                           "contract": ids["tokens"]}).id
            ids["globex_ticket"] = session.create("ticket", {"title": "VPN drops", "organization": ids["globex"],
                                                             "contract": ids["hourly"]}).id
            return ids
        store.ids = store.run(setup)
        create_account(store, "cmartin", name="Claire Martin", password="a long test password", roles=["supervisor"],
                       email="cmartin@desk.example")
        yield store


def work(store, ticket: str, day: int, duration: str, **values) -> dict:
    return store.run(lambda s: dict(s.create("work_entry", {
        "ticket": store.ids[ticket], "performer": "tina", "date": date(2026, 10, day), "duration": duration,
        **values}).values))


def contract(store, key: str) -> dict:
    return store.read(lambda s: dict(s.get("contract", store.ids[key]).values))


def kept_files(store, number: str) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the files kept in a record's `files`."""
    return store.read(lambda s: [(item.filename, item.read()) for item in s.find(number).get("files") or ()])


def pdf_text(content: bytes, tmp_path: Path) -> str:
    """The text of a PDF as poppler's pdftotext reads it, spaces made plain."""
    path = tmp_path / "document.pdf"
    path.write_bytes(content)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split())


def test_work_counts_its_billed_time_in_tokens_rounded_up_per_entry_and_the_balance_follows(billing):
    before = contract(billing, "tokens")["token_balance"]
    first = work(billing, "acme_ticket", 6, "50m")                          # 4 tokens of 15 min, rounded up
    internal = work(billing, "acme_ticket", 7, "20m", billable=False)       # internal: nothing
    discounted = work(billing, "acme_ticket", 8, "1h", billed_duration="15m")  # billed 15 min: 1 token
    warranty = work(billing, "acme_ticket", 9, "2h", warranty=True)         # under warranty: nothing
    assert [e["tokens"] for e in (first, internal, discounted, warranty)] == [4, 0, 1, 0]
    assert first["contract"] == billing.ids["tokens"] and first["amount"] == 0       # prepaid: no price
    assert contract(billing, "tokens")["token_balance"] == before - 5
    assert contract(billing, "tokens")["tokens_used"] == 5


def test_hourly_work_is_priced_at_the_contracts_rate_or_its_items(billing):
    hourly = work(billing, "globex_ticket", 13, "1h30")
    item = work(billing, "globex_ticket", 14, "30m", billing_item=billing.ids["support_hour"])
    assert hourly["amount"] == Decimal("120.00") and item["amount"] == Decimal("47.50")


def test_tokens_are_topped_up_at_the_start_of_each_period_once(billing):
    report = run_generator(billing, "token_top_ups", period=OCTOBER)      # October starts a quarter from January
    again = run_generator(billing, "token_top_ups", period=OCTOBER)
    assert len(report.made) == 1 and (again.made, again.existing) == ([], 1)
    assert run_generator(billing, "token_top_ups", period=month("2026-11")).made == []    # not a quarter's start
    assert contract(billing, "tokens")["tokens_bought"] == 40


def test_the_monthly_report_lists_the_months_work_services_and_top_ups_once_per_contract(billing):
    for description, amount, billable in (("Courier for the spare part", "35.00", True),
                                          ("Parking at the customer's", "12.00", False)):
        billing.run(lambda s: s.create("expense", {"ticket": billing.ids["globex_ticket"], "kind": "fee",
                                                   "description": description, "amount": amount,
                                                   "billable": billable, "date": date(2026, 10, 20),
                                                   "performer": "tina"}))
    made = run_generator(billing, "monthly_reports", now=NOVEMBER_FIRST)     # the month before: October
    assert made.period == OCTOBER and len(made.made) == 2 and not made.failed
    assert run_generator(billing, "monthly_reports", now=NOVEMBER_FIRST).existing == 2   # nothing twice

    def reports(session):
        found = {}
        for record in session.query("activity_report", {"period_start": OCTOBER.start}, limit=None).records:
            lines = session.query("report_line", {"report": record.id}, "date", limit=None).records
            found[record["contract"]] = (dict(record.values), [dict(line.values) for line in lines])
        return found
    found = billing.read(reports)
    acme, acme_lines = found[billing.ids["tokens"]]
    assert [line["kind"] for line in acme_lines] == ["top_up", "work", "work", "work", "work"]
    assert acme["tokens_used"] == 5 and acme["billable_amount"] == 0 and acme["approval"] == "pending"
    assert acme["work_time"] == (50 + 20 + 60 + 120) * 60 and acme["billed_time"] == (50 + 15) * 60
    globex, globex_lines = found[billing.ids["hourly"]]
    flat = {line["description"]: line for line in globex_lines if line["kind"] == "flat_rate"}
    assert flat["Printer fleet rental"]["quantity"] == 3                    # a quarter paid ahead
    assert flat["Backup monitoring"]["quantity"] == Decimal("0.6774")       # from the 11th: 21 days of 31
    expenses = [(line["description"], line["amount"]) for line in globex_lines if line["kind"] == "expense"]
    assert expenses == [("Courier for the spare part", Decimal("35.00")), ("Parking at the customer's", 0)]
    assert globex["billable_amount"] == Decimal("120.00") + Decimal("47.50") + 900 + Decimal("42.00") + 35


def test_a_report_is_sent_once_approved_and_its_invoice_is_numbered_without_gaps(billing):
    def report_of(key):
        return billing.read(lambda s: s.query("activity_report", {"contract": billing.ids[key]}, limit=1)
                            .records[0].number)
    globex, acme = report_of("hourly"), report_of("tokens")
    with pytest.raises(TransitionRefused):
        billing.run(lambda s: fire(s, globex, "send"), identity=CLAIRE)          # not approved yet
    for number in (globex, acme):
        billing.run(lambda s: decide_approval(s, number, "approve"), identity=CLAIRE)
        billing.run(lambda s: fire(s, number, "send"), identity=CLAIRE, now=NOVEMBER_FIRST + timedelta(days=2))

    def invoices(session):
        return [(dict(r.values), [dict(line.values) for line in session.query("invoice_line", {"invoice": r.id},
                                                                                limit=None).records])
                for r in session.query("invoice", sort="id", limit=None).records]
    made = billing.read(invoices)
    assert len(made) == 1                                                      # tokens are prepaid: no invoice
    invoice, lines = made[0]
    assert invoice["invoice_number"] == "F2026-00001" and invoice["organization"] == billing.ids["globex"]
    assert invoice["total"] == Decimal("1144.50") and len(lines) == 5
    second = billing.run(lambda s: s.create("invoice", {"title": "Extra", "contract": billing.ids["hourly"]})
                         .number, identity=CLAIRE, now=NOVEMBER_FIRST)
    assert billing.read(lambda s: s.find(second)["invoice_number"]) == "F2026-00002"
    with pytest.raises(ValidationError, match="numbers must not go missing"):
        billing.run(lambda s: s.delete(second))


def test_the_sent_report_keeps_its_pdf_listing_the_work_and_the_amount_to_invoice(billing, tmp_path):
    globex = billing.read(lambda s: s.query("activity_report", {"contract": billing.ids["hourly"]}, limit=1)
                          .records[0].number)
    [(filename, content)] = kept_files(billing, globex)
    assert filename == f"{globex}-activity-report.pdf" and content.startswith(b"%PDF")
    text = pdf_text(content, tmp_path)
    assert "Activity report" in text and "Globex support" in text and "Oct 1, 2026 – Oct 31, 2026" in text
    assert "Oct 13, 2026 tina VPN drops 1h30 1h30" in text            # a work line: no description, its ticket's title
    assert "Printer fleet rental 3 months €300.00 €900.00" in text    # a flat-rate service, a quarter ahead
    assert "Amount to invoice, before tax €1,144.50" in text
    assert "Invoiced on invoice F2026-00001" in text


def test_a_token_contracts_report_shows_its_tokens_and_its_internal_work(billing, tmp_path):
    acme = billing.read(lambda s: s.query("activity_report", {"contract": billing.ids["tokens"]}, limit=1)
                        .records[0].number)
    [(_, content)] = kept_files(billing, acme)
    text = pdf_text(content, tmp_path)
    assert "Oct 6, 2026 tina Printer jam 50m 50m 4" in text          # date, performer, ticket, time, billed, tokens
    assert "Oct 7, 2026 tina Printer jam 20m 0m 0 T-000001 internal, not billed" in text
    assert "Oct 9, 2026 tina Printer jam 2h 0m 0 T-000001 under warranty" in text
    assert "Total (4 entries) 4h10 1h05 5" in text                  # work done, billed time, tokens
    assert "Top-up · Periodic top-up +40" in text and "Used this month (one token per 15 min) −5" in text
    assert "Balance when the report was made (Nov 1, 2026) 35" in text
    assert "Nothing to invoice this month" in text


def test_the_invoice_made_by_sending_keeps_its_pdf_with_its_number_and_total(billing, tmp_path):
    number = billing.read(lambda s: s.query("invoice", {"invoice_number": "F2026-00001"}, limit=1).records[0].number)
    [(filename, content)] = kept_files(billing, number)
    assert filename == "F2026-00001-invoice.pdf"
    text = pdf_text(content, tmp_path)
    assert "Invoice No. F2026-00001" in text and "Seller Invoiced to" in text
    assert "Printer fleet rental 3 €300.00 20 €900.00" in text        # its lines, made after it, are in it
    assert "Total before tax €1,144.50 VAT 20 % · on €1,144.50 €228.90 Total including VAT €1,373.40" in text
    assert "Payment within 30 days (December 3, 2026)" in text and "IBAN FR76 3000" in text
    assert "FR32" in text and "512345678" in text                       # the seller's VAT number (settings.issuer)
    history = billing.read(lambda s: [entry.get("reason") for entry in s.find(number).history.entries])
    assert history[-1] == "document invoice"


def test_a_failed_write_gives_no_number_away_and_each_year_counts_again(billing):
    class Abandoned(Exception):
        pass

    def abandon(session):
        session.create("invoice", {"title": "Abandoned", "contract": billing.ids["hourly"]})
        raise Abandoned
    with pytest.raises(Abandoned):
        billing.run(abandon, identity=CLAIRE, now=NOVEMBER_FIRST)
    kept = billing.run(lambda s: s.create("invoice", {"title": "Next", "contract": billing.ids["hourly"]})
                       ["invoice_number"], identity=CLAIRE, now=NOVEMBER_FIRST)
    new_year = billing.run(lambda s: s.create("invoice", {"title": "January", "contract": billing.ids["hourly"]})
                           ["invoice_number"], identity=CLAIRE, now=datetime(2027, 1, 4, 9, tzinfo=timezone.utc))
    numbers = billing.read(lambda s: [r["invoice_number"] for r in s.query("invoice", sort="id", limit=None).records])
    assert kept == "F2026-00003" and new_year == "F2027-00001"
    assert numbers == ["F2026-00001", "F2026-00002", "F2026-00003", "F2027-00001"]


def test_nobody_types_an_invoice_number(billing):
    with pytest.raises(ValidationError, match="kept by the engine"):
        billing.run(lambda s: s.create("invoice", {"title": "Forged", "contract": billing.ids["hourly"],
                                                   "invoice_number": "F2026-99999"}), identity=CLAIRE)


def test_work_in_a_report_is_corrected_by_a_supervisor_only(billing):
    from deskbase.rules.access.scopes import AccessDenied
    reported = billing.read(lambda s: s.query("work_entry", {"all": [{"performer": "tina"}, {"reported": {"gt": 0}}]},
                                              limit=1).records[0].number)
    with pytest.raises(AccessDenied, match="reported"):
        billing.run(lambda s: s.update(reported, {"description": "changed afterwards"}), identity=TINA)
    billing.run(lambda s: s.update(reported, {"description": "corrected by the supervisor"}), identity=CLAIRE)
    fresh = work(billing, "acme_ticket", 28, "10m")
    billing.run(lambda s: s.update(fresh["id"], {"description": "still mine to change"}, type_name="work_entry"),
                identity=TINA)



def test_sending_a_report_emails_its_pdf_to_the_contracts_report_address(billing, smtp_server, tmp_path):
    billing.run(lambda s: s.update(s.get("contract", billing.ids["hourly"]), {"report_email": "it@globex.example"}),
                identity=CLAIRE)
    billing.run(lambda s: s.create("work_entry", {"ticket": billing.ids["globex_ticket"], "performer": "tina",
                                                  "date": date(2026, 11, 3), "duration": "45m",
                                                  "description": "Firewall rules reviewed"}))
    made = run_generator(billing, "monthly_reports", now=datetime(2026, 12, 1, 2, tzinfo=timezone.utc))
    [number] = [n for n in made.made if billing.read(lambda s: s.find(n)["contract"]) == billing.ids["hourly"]]
    billing.run(lambda s: decide_approval(s, number, "approve"), identity=CLAIRE)
    sent_at = datetime(2026, 12, 2, 9, tzinfo=timezone.utc)
    billing.run(lambda s: fire(s, number, "send"), identity=CLAIRE, now=sent_at)
    queued = billing.read(lambda s: [(m.subject, m.attachments) for m in list_messages(s)
                                     if m.recipients == ("it@globex.example",)])
    assert queued == [(f"Activity report {number}: Globex support, 2026-11", ((number, "files"),))]
    deliver_due(billing, {"email": SmtpSender("127.0.0.1", smtp_server.port, sender_address="desk@example.org")},
                now=sent_at + timedelta(minutes=1))
    [mail] = [r for r in smtp_server.received if "it@globex.example" in r.rcpt_tos]
    assert mail.rcpt_tos == ["it@globex.example"]
    [part] = list(mail.message.iter_attachments())
    assert part.get_filename() == f"{number}-activity-report.pdf" and part.get_content_type() == "application/pdf"
    text = pdf_text(part.get_content(), tmp_path)
    assert "Firewall rules reviewed" in text and "Nov 1, 2026 – Nov 30, 2026" in text
    assert "2026-11-01 to 2026-11-30" in mail.message.get_body(("plain",)).get_content()


def test_the_billing_item_comes_from_the_entry_else_the_project_else_the_service_range(billing):
    def setup(session):
        onsite = session.create("billing_item", {"code": "H-ONS", "name": "On-site hour", "rate": "110"}).id
        remote = session.create("billing_item", {"code": "H-REM", "name": "Remote hour", "rate": "70"}).id
        network = session.create("service_range", {"name": "Network", "code": "network", "billing_item": remote}).id
        rollout = session.create("project", {"name": "Wi-Fi rollout", "organization": billing.ids["globex"],
                                             "billing_item": onsite}).id
        in_project = session.create("ticket", {"title": "Access points", "organization": billing.ids["globex"],
                                               "project": rollout, "service_range": network}).id
        in_range = session.create("ticket", {"title": "Switch", "organization": billing.ids["globex"],
                                             "service_range": network}).id
        return onsite, remote, in_project, in_range
    onsite, remote, in_project, in_range = billing.run(setup)

    def entry(ticket, **values):
        return billing.run(lambda s: dict(s.create("work_entry", {"ticket": ticket, "performer": "tina",
                                                                  "date": date(2026, 11, 3), "duration": "1h",
                                                                  **values}).values))
    assert entry(in_project)["amount"] == Decimal("110.00")                      # the project's item
    assert entry(in_range)["amount"] == Decimal("70.00")                         # the service range's
    assert entry(in_project, billing_item=remote)["amount"] == Decimal("70.00")  # named on the entry
    plain = billing.run(lambda s: s.create("ticket", {"title": "Mail", "organization": billing.ids["globex"]}).id)
    assert entry(plain)["amount"] == Decimal("80.00")                            # the contract's hourly rate


def test_a_correction_after_the_report_shows_as_the_difference_in_the_next_one(billing, tmp_path):
    corrected = billing.read(lambda s: s.query("work_entry", {"all": [{"contract": billing.ids["hourly"]},
                                                                     {"reported": {"gt": 0}}]},
                                               "id", limit=1).records[0].number)
    before = billing.read(lambda s: dict(s.find(corrected).values))
    assert before["counted"] == 90 * 60 and before["reported_counted"] == 90 * 60
    billing.run(lambda s: s.update(corrected, {"billed_duration": "1h"}), identity=CLAIRE,
                now=datetime(2026, 12, 10, 9, tzinfo=timezone.utc))

    def lines_of(month_start):
        def work(session):
            report = session.query("activity_report", {"all": [{"contract": billing.ids["hourly"]},
                                                               {"period_start": month_start}]}).records[0]
            return [dict(line.values) for line in session.query("report_line", {"report": report.id},
                                                                "id", limit=None).records]
        return billing.read(work)
    run_generator(billing, "monthly_reports", period=month("2026-12"))
    [correction] = [line for line in lines_of(month("2026-12").start) if line["kind"] == "correction"]
    assert correction["counted"] == -30 * 60 and correction["quantity"] == Decimal("-0.5")
    assert correction["amount"] == Decimal("-40.00")                     # half an hour less at 80 an hour
    december = billing.read(lambda s: s.get("activity_report", correction["report"]).number)
    made = billing.read(lambda s: documents.render(s, "activity_report", december, language="en"))
    text = pdf_text(made.pdf, tmp_path)
    assert "Corrections of earlier months" in text and "Oct 13, 2026" in text and "-30m" in text
    run_generator(billing, "monthly_reports", period=month("2027-01"))
    assert not [line for line in lines_of(month("2027-01").start) if line["kind"] == "correction"]
    after = billing.read(lambda s: dict(s.find(corrected).values))
    assert after["reported_counted"] == after["counted"] == 60 * 60


# -- VAT and credit notes (B6): last, for the invoices they make take numbers ------------------

def test_each_line_takes_its_items_vat_rate_else_the_contracts_and_the_totals_add_up_per_rate(billing):
    def work(session):
        reduced = session.create("billing_item", {"code": "BOOK", "name": "Manual", "unit": "unit",
                                                  "rate": "30", "vat_rate": "5.5"}).id
        invoice = session.create("invoice", {"title": "Rates", "contract": billing.ids["hourly"],
                                             "date": date(2026, 11, 30)})
        for amount, item in (("100.00", None), ("33.33", None), ("30.00", reduced), ("-10.00", reduced)):
            session.create("invoice_line", {"invoice": invoice.id, "amount": amount, "billing_item": item})
        lines = [dict(line.values) for line in session.query("invoice_line", {"invoice": invoice.id},
                                                              limit=None).records]
        return dict(session.find(invoice.number).values), lines
    invoice, lines = billing.run(work, identity=CLAIRE, now=NOVEMBER_FIRST)
    assert [(line["vat_rate"], line["vat"]) for line in lines] == [
        (Decimal("20.00"), Decimal("20.00")), (Decimal("20.00"), Decimal("6.67")),
        (Decimal("5.50"), Decimal("1.65")), (Decimal("5.50"), Decimal("-0.55"))]
    assert invoice["total"] == sum(line["amount"] for line in lines) == Decimal("153.33")
    assert invoice["vat_total"] == sum(line["vat"] for line in lines) == Decimal("27.77")
    assert invoice["total_with_vat"] == Decimal("181.10")
    assert invoice["due_date"] == date(2026, 12, 30) and invoice["payment_terms"] == 30


def test_a_month_of_corrections_makes_a_credit_note_in_its_own_sequence(billing, tmp_path):
    def work(session):
        report = session.create("activity_report", {"title": "Corrections", "contract": billing.ids["hourly"],
                                                    "period_start": date(2026, 9, 1), "period_end": date(2026, 9, 30)})
        session.create("report_line", {"report": report.id, "kind": "correction", "description": "Overbilled in August",
                                       "quantity": "-2", "unit_price": "80.00"})
        return report.number
    number = billing.run(work, identity=CLAIRE, now=NOVEMBER_FIRST)
    billing.run(lambda s: decide_approval(s, number, "approve"), identity=CLAIRE, now=NOVEMBER_FIRST)
    billing.run(lambda s: fire(s, number, "send"), identity=CLAIRE, now=NOVEMBER_FIRST + timedelta(days=2))
    credit = billing.read(lambda s: dict(s.query("invoice", {"kind": "credit_note"}, limit=1).records[0].values))
    assert credit["credit_note_number"] == "AV2026-00001" and credit["invoice_number"] is None
    assert credit["total"] == Decimal("-160.00") and credit["total_with_vat"] == Decimal("-192.00")
    made = billing.read(lambda s: s.query("invoice", {"kind": "credit_note"}, limit=1).records[0].number)
    [(filename, content)] = kept_files(billing, made)
    text = pdf_text(content, tmp_path)
    assert "Credit note No. AV2026-00001" in text and "deducted from your next payment" in text
    invoices = billing.read(lambda s: [r["invoice_number"] for r in s.query("invoice", {"kind": "invoice"},
                                                                            sort="id", limit=None).records])
    assert "AV2026-00001" not in invoices and None not in invoices      # the invoices' own sequence goes on


def test_interventions_done_and_tokens_bought_reach_the_months_report_at_their_price(billing):
    february = datetime(2027, 2, 5, 8, 0, tzinfo=timezone.utc)     # a month no other test reports

    def work(session):
        travel = session.create("billing_item", {"code": "TRAVEL", "name": "Travel", "unit": "unit", "rate": "45"}).id
        on_site = session.create("billing_item", {"code": "ONSITE", "name": "On-site hour", "unit": "hour",
                                                  "rate": "70"}).id
        for day, (purpose, item, hours, status) in enumerate((
                ("Visit", travel, 2, "done"), ("Visit", on_site, 2.5, "done"),
                ("Planned only", on_site, 1, "planned"), ("Unbilled", None, 1, "done"))):
            starts = february + timedelta(days=day)         # one technician: one visit at a time
            session.create("intervention", {"ticket": billing.ids["globex_ticket"], "purpose": purpose,
                                            "technician": "cmartin", "starts": starts,
                                            "ends": starts + timedelta(hours=hours), "status": status,
                                            "billing_item": item})
        session.create("token_top_up", {"contract": billing.ids["tokens"], "date": date(2027, 2, 9), "tokens": "10",
                                        "unit_price": "40.00", "note": "Ten more tokens"})
    billing.run(work, identity=CLAIRE, now=february)
    run_generator(billing, "monthly_reports", period=month("2027-02"))

    def lines(session, contract):
        report = session.query("activity_report", {"contract": contract, "period_start": date(2027, 2, 1)},
                               limit=1).records[0]
        return dict(report.values), [dict(line.values) for line in
                                     session.query("report_line", {"report": report.id}, "date", limit=None).records]
    globex, globex_lines = billing.read(lambda s: lines(s, billing.ids["hourly"]))
    visits = [(line["description"], line["quantity"], line["unit_price"], line["amount"])
              for line in globex_lines if line["kind"] == "intervention"]
    assert sorted(visits) == [("Visit", Decimal("1"), Decimal("45.00"), Decimal("45.00")),
                              ("Visit", Decimal("2.5"), Decimal("70.00"), Decimal("175.00"))]
    acme, acme_lines = billing.read(lambda s: lines(s, billing.ids["tokens"]))
    bought = [line for line in acme_lines if line["kind"] == "top_up" and line["description"] == "Ten more tokens"]
    assert [(line["quantity"], line["amount"]) for line in bought] == [(Decimal("10"), Decimal("400.00"))]
    assert acme["billable_amount"] == sum(line["amount"] for line in acme_lines) == Decimal("400.00")


# -- a low token balance (B2) ------------------------------------------------------------------

def test_a_low_token_balance_is_told_once_to_the_customer_and_the_account_manager(app_store, smtp_server):
    from deskbase.rules.jobs.scheduled import scheduled_jobs
    moment = datetime(2026, 11, 10, 9, tzinfo=timezone.utc)
    with app_store() as desk:
        create_account(desk, "cmartin", name="Claire Martin", password="a long test password", roles=["supervisor"],
                       email="cmartin@desk.example")

        def setup(session):
            acme = session.create("organization", {"name": "Acme", "code": "ACME"}).id
            contract = session.create("contract", {
                "organization": acme, "name": "Acme prepaid", "starts": "2026-01-01", "token_minutes": 15,
                "low_balance_at": "5", "report_email": "it@acme.example", "account_manager": "cmartin"})
            session.create("token_top_up", {"contract": contract.id, "tokens": "10", "date": date(2026, 11, 2)})
            ticket = session.create("ticket", {"title": "Printer", "organization": acme, "contract": contract.id}).id
            return contract.number, ticket
        contract, ticket = desk.run(setup, identity=CLAIRE, now=moment)
        jobs = {job.name: job for job in scheduled_jobs(desk.definitions, {})}
        sender = SmtpSender("127.0.0.1", smtp_server.port, sender_address="helpdesk@localhost", timeout=5)

        def log(minutes: int, at: datetime) -> None:
            desk.run(lambda s: s.create("work_entry", {"ticket": ticket, "duration": f"{minutes}m", "date": at.date(),
                                                       "performer": "cmartin"}), identity=CLAIRE, now=at)

        def run_jobs(at: datetime) -> list:
            for name in ("low_token_balances", "topped_up_token_balances"):
                jobs[name].work(desk, at)
            deliver_due(desk, {"email": sender})
            return [mail.message for mail in smtp_server.received]

        log(60, moment)                                               # 4 tokens used: 6 left
        assert run_jobs(moment) == [] and not desk.read(lambda s: s.find(contract)["balance_low"])
        log(30, moment + timedelta(hours=1))                          # 2 more: 4 left, at or below 5
        told = run_jobs(moment + timedelta(hours=1))
        assert sorted(mail["To"] for mail in told) == ["cmartin@desk.example", "it@acme.example"]
        assert {mail["Subject"] for mail in told} == {f"[{contract}] Acme prepaid: 4.00 tokens left"}
        assert "alert at 5.00" in told[0].get_content()
        log(15, moment + timedelta(hours=2))                          # lower still: told once only
        assert len(run_jobs(moment + timedelta(hours=2))) == 2
        desk.run(lambda s: s.create("token_top_up", {"contract": s.find(contract).id, "tokens": "20",
                                                     "date": date(2026, 11, 12)}), identity=CLAIRE,
                 now=moment + timedelta(days=2))                      # topped up: 23 left
        assert len(run_jobs(moment + timedelta(days=2))) == 2
        assert not desk.read(lambda s: s.find(contract)["low_balance_told"])
        log(300, moment + timedelta(days=3))                          # 20 used: 3 left, told again
        assert len(run_jobs(moment + timedelta(days=3))) == 4


def test_work_beyond_a_zero_balance_is_billed_once_as_overage_at_the_contracts_rate(app_store):
    with app_store() as desk:
        create_account(desk, "cmartin", name="Claire Martin", password="a long test password", roles=["supervisor"])

        def setup(session):
            acme = session.create("organization", {"name": "Acme", "code": "ACME"}).id
            contract = session.create("contract", {"organization": acme, "name": "Acme prepaid", "starts": "2026-01-01",
                                                   "token_minutes": 15, "hourly_rate": "80"})
            session.create("token_top_up", {"contract": contract.id, "tokens": "4", "date": date(2026, 10, 1)})
            ticket = session.create("ticket", {"title": "Printer", "organization": acme, "contract": contract.id}).id
            session.create("work_entry", {"ticket": ticket, "duration": "1h30", "date": date(2026, 10, 8),
                                          "performer": "cmartin"})           # 6 tokens: 2 beyond the balance
            return contract.id
        contract = desk.run(setup, identity=CLAIRE, now=datetime(2026, 10, 9, 9, tzinfo=timezone.utc))

        def report_of(period):
            def work(session):
                report = session.query("activity_report", {"contract": contract, "period_start": period.start},
                                       limit=1).records[0]
                lines = session.query("report_line", {"report": report.id}, limit=None).records
                return dict(report.values), [dict(line.values) for line in lines], session.get("contract", contract)[
                    "token_balance"]
            return desk.read(work)
        run_generator(desk, "monthly_reports", period=OCTOBER)
        run_generator(desk, "monthly_reports", period=OCTOBER)               # again: nothing twice
        report, lines, balance = report_of(OCTOBER)
        [overage] = [line for line in lines if line["kind"] == "overage"]
        assert (overage["quantity"], overage["unit_price"], overage["amount"]) == (
            Decimal("2"), Decimal("20.00"), Decimal("40.00"))               # a token: a quarter of 80 an hour
        assert overage["description"] == "2 × 15 min" and report["billable_amount"] == Decimal("40.00")
        assert balance == 0                                                 # the overage given back: zero again
        run_generator(desk, "monthly_reports", period=month("2026-11"))     # a month without work
        _, november, balance = report_of(month("2026-11"))
        assert not [line for line in november if line["kind"] == "overage"] and balance == 0
