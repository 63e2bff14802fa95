"""Costs on a ticket (T12): expenses and extra fees are entries of its timeline, add up on
the ticket, are seen by the customer when billable; an incident records what the outage
cost the customer."""
from __future__ import annotations

from decimal import Decimal

from demo_web import sign_in

from deskbase.rules.access.identity import identity_of


def printer_ticket(store):
    return store.read(lambda s: s.query(
        "ticket", {"title": "L'imprimante du quai B n'imprime plus les bons de livraison"}).records[0])


def test_the_ticket_adds_up_its_expenses_and_fees(demo):
    def work(s):
        for ticket in s.query("ticket", {"expenses_total": {"gt": 0}}, limit=None).records:
            amounts = [e["amount"] for e in s.query("expense", {"ticket": ticket.id}, limit=None).records]
            assert ticket["expenses_total"] == sum(amounts)
        return s.count("ticket", {"expenses_total": {"gt": 0}})
    assert demo.read(work) >= 3


def test_expenses_are_entries_of_the_ticket_timeline_with_a_form_to_add_one(demo, client):
    ticket = printer_ticket(demo)
    sign_in(client, "sbernard")
    page = client.get(f"/r/{ticket.number}").text
    assert "entry-expense" in page and "Capteur papier de rechange" in page
    assert "Add: Expense or fee" in page and 'name="amount"' in page


def test_an_expense_takes_the_organization_of_its_ticket_whatever_is_given(demo):
    ticket = printer_ticket(demo)
    before = ticket["expenses_total"]
    other = demo.read(lambda s: s.query("organization", {"code": "STROJ"}).records[0].id)
    expense = demo.run(lambda s: s.create("expense", {"ticket": ticket.id, "description": "Taxi", "amount": "12.40",
                                                      "organization": other}),
                       identity=identity_of(demo, "sbernard"))
    assert expense["organization"] == ticket["organization"] and expense["performer"] == "sbernard"
    assert demo.read(lambda s: s.get("ticket", ticket.id)["expenses_total"]) == before + Decimal("12.40")


def test_customers_see_only_the_billable_expenses_of_their_organization(demo):
    identity = identity_of(demo, "jdupont")
    seen = demo.read(lambda s: [r.values for r in s.query("expense", limit=None).records], identity=identity)
    assert seen and all(v["billable"] and v["organization"] == identity.organization for v in seen)


def test_the_financial_loss_is_asked_for_incidents_only(client):
    sign_in(client, "sbernard")
    incident = client.get("/forms/ticket/field/outage_loss", params={"kind": "incident"}).text
    request = client.get("/forms/ticket/field/outage_loss", params={"kind": "service_request"}).text
    assert 'name="outage_loss"' in incident and 'name="outage_loss"' not in request


def test_the_costliest_outages_come_first(demo):
    view = demo.definitions.views["outage_losses"]
    page = demo.read(lambda s: s.query(view.type, view.filter, list(view.sort)))
    losses = [r["outage_loss"] for r in page.records]
    assert losses and losses == sorted(losses, reverse=True) and losses[0] == Decimal("12500.00")
