"""The monthly report and its invoice re-computed from the records (B5, B6), on generated
months of work, expenses, priced token purchases and corrections: every total is the sum of
its lines, running the month again bills nothing twice, a correction bills only the
difference, and the invoice's VAT is its lines' added up."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, given, settings, strategies as st

from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.process.approvals import decide_approval
from deskbase.rules.process.generators import month, run_generator
from deskbase.rules.process.workflows import fire

CLAIRE = Identity("cmartin", "Claire Martin", ("supervisor",))
OCTOBER, NOVEMBER = month("2026-10"), month("2026-11")
RATE = Decimal("80.00")
CENT = Decimal("0.01")

work = st.lists(st.tuples(st.integers(min_value=1, max_value=31),            # day of October
                          st.integers(min_value=1, max_value=16),            # quarters of an hour
                          st.booleans()), min_size=1, max_size=8)            # billable
expenses = st.lists(st.tuples(st.decimals(min_value=1, max_value=300, places=2), st.booleans()), max_size=3)
purchases = st.lists(st.tuples(st.integers(min_value=1, max_value=50),
                               st.decimals(min_value=1, max_value=90, places=2)), max_size=2)
corrections = st.lists(st.tuples(st.integers(min_value=0, max_value=7), st.integers(min_value=0, max_value=16)),
                       max_size=3)


def lines_of(session, contract: int, period) -> tuple[dict, list[dict]]:
    report = session.query("activity_report", {"contract": contract, "period_start": period.start},
                           limit=1).records[0]
    return dict(report.values), [dict(line.values) for line in
                                 session.query("report_line", {"report": report.id}, limit=None).records]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(work=work, expenses=expenses, purchases=purchases, corrections=corrections)
def test_reports_and_invoices_add_up_and_bill_nothing_twice(app_store, work, expenses, purchases, corrections):
    with app_store() as desk:
        create_account(desk, "cmartin", name="Claire Martin", password="a long test password", roles=["supervisor"])

        def setup(session):
            acme = session.create("organization", {"name": "Acme", "code": "ACME"}).id
            contract = session.create("contract", {"organization": acme, "name": "Acme support",
                                                   "starts": "2026-01-01", "hourly_rate": str(RATE)}).id
            ticket = session.create("ticket", {"title": "Printer", "organization": acme, "contract": contract}).id
            entries = [session.create("work_entry", {"ticket": ticket, "date": date(2026, 10, day),
                                                     "duration": f"{quarters * 15}m", "billable": billable,
                                                     "performer": "cmartin"}).id
                       for day, quarters, billable in work]
            for amount, billable in expenses:
                session.create("expense", {"ticket": ticket, "kind": "fee", "description": "Fee", "amount": str(amount),
                                           "billable": billable, "date": date(2026, 10, 20), "performer": "cmartin"})
            for tokens, price in purchases:
                session.create("token_top_up", {"contract": contract, "date": date(2026, 10, 3), "tokens": str(tokens),
                                                "unit_price": str(price), "note": "Bought"})
            return contract, entries
        contract, entries = desk.run(setup, identity=CLAIRE, now=datetime(2026, 10, 31, 18, tzinfo=timezone.utc))
        first = datetime(2026, 11, 1, 2, tzinfo=timezone.utc)
        assert run_generator(desk, "monthly_reports", now=first).made
        assert not run_generator(desk, "monthly_reports", now=first).made           # nothing twice
        report, lines = desk.read(lambda s: lines_of(s, contract, OCTOBER))

        # every figure of the report from its lines, and its lines from the records
        assert report["billable_amount"] == sum((line["amount"] for line in lines), Decimal(0))
        worked = [line for line in lines if line["kind"] == "work"]
        assert sorted(line["work_entry"] for line in worked) == sorted(entries)     # each entry once
        assert report["work_time"] == sum(quarters * 900 for _, quarters, _ in work)
        assert report["billed_time"] == sum(quarters * 900 for _, quarters, billable in work if billable)
        expected = (sum((Decimal(quarters) / 4 * RATE for _, quarters, billable in work if billable), Decimal(0))
                    + sum((amount for amount, billable in expenses if billable), Decimal(0))
                    + sum((tokens * price for tokens, price in purchases), Decimal(0)))
        assert report["billable_amount"] == expected.quantize(CENT)

        # sending makes the invoice of those lines: its totals are its lines', VAT included
        desk.run(lambda s: decide_approval(s, report["id"] and s.get("activity_report", report["id"]).number,
                                           "approve"), identity=CLAIRE, now=first)
        number = desk.read(lambda s: s.get("activity_report", report["id"]).number)
        desk.run(lambda s: fire(s, number, "send"), identity=CLAIRE, now=first + timedelta(days=1))

        def invoice_of(session):
            found = session.query("invoice", {"report": report["id"]}, limit=None).records
            return [(dict(invoice.values), [dict(line.values) for line in
                                            session.query("invoice_line", {"invoice": invoice.id}, limit=None).records])
                    for invoice in found]
        made = desk.read(invoice_of)
        if expected > 0:
            [(invoice, invoice_lines)] = made
            assert invoice["total"] == sum(line["amount"] for line in invoice_lines) == report["billable_amount"]
            for line in invoice_lines:
                assert line["vat"] == (line["amount"] * line["vat_rate"] / 100).quantize(CENT, ROUND_HALF_UP)
            assert invoice["vat_total"] == sum(line["vat"] for line in invoice_lines)
            assert invoice["total_with_vat"] == invoice["total"] + invoice["vat_total"]
        else:
            assert made == []

        # corrections made since: the next month bills the difference, once
        def correct(session):
            changed = {}
            for position, quarters in corrections:
                if position < len(entries):
                    entry = session.get("work_entry", entries[position])
                    session.update(entry.number, {"duration": f"{quarters * 15}m" if quarters else "0m"})
                    changed[entries[position]] = quarters
            return changed
        changed = desk.run(correct, identity=CLAIRE, now=datetime(2026, 11, 10, 9, tzinfo=timezone.utc))
        december = datetime(2026, 12, 1, 2, tzinfo=timezone.utc)
        run_generator(desk, "monthly_reports", now=december)
        run_generator(desk, "monthly_reports", now=december)
        _, november = desk.read(lambda s: lines_of(s, contract, NOVEMBER))
        for position, (_, quarters, billable) in enumerate(work):
            entry = entries[position]
            billed = [line for line in lines + november if line.get("work_entry") == entry]
            final = changed.get(entry, quarters)
            amount = Decimal(final) / 4 * RATE if billable else Decimal(0)
            assert sum((line["amount"] for line in billed), Decimal(0)) == amount.quantize(CENT), position
            assert len([line for line in november if line.get("work_entry") == entry]) == \
                (1 if billable and final != quarters else 0)
