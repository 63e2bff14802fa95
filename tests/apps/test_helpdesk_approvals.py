"""Approvals in the shipped helpdesk (P7): a service request estimated above 500 € waits for
the approval of its customer's responsible person; nobody takes or assigns it meanwhile;
a refusal rejects the ticket, no answer cancels it, an approval may settle another price."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.access.scopes import AccessDenied
from deskbase.rules.jobs.scheduled import ACTIONS
from deskbase.rules.messages.outbox import list_messages
from deskbase.rules.process.approvals import ApprovalRefused, decide_approval, pending_for
from deskbase.rules.process.workflows import TransitionRefused, fire

TINA = Identity("tina", "Tina", ("technician",))
DORA = Identity("dora", "Dora", ("dispatcher",))
NOW = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def helpdesk(app_store):
    with app_store() as store:
        store.acme = store.run(lambda s: s.create("organization", {"name": "Acme", "code": "ACME",
                                                                   "approver": "jdupont"}).id)
        create_account(store, "jdupont", name="Jean Dupont", password="correct horse battery",
                       roles=["customer_power_user"], organization=store.acme, email="jdupont@acme.example")
        yield store


def jean(helpdesk) -> Identity:
    return Identity("jdupont", "Jean Dupont", ("customer_power_user",), organization=helpdesk.acme)


def request(helpdesk, cost, kind: str = "service_request", **values) -> str:
    """A request of Acme estimated by a technician."""
    return helpdesk.run(lambda s: s.create("ticket", {"title": "new label printers", "kind": kind,
                                                      "organization": helpdesk.acme, "estimated_cost": cost,
                                                      **values}).number,
                        identity=TINA, now=NOW)


def ticket(helpdesk, number: str) -> dict:
    return helpdesk.read(lambda s: dict(s.find(number).values))


def test_a_costly_service_request_waits_for_the_customers_approver(helpdesk):
    number = request(helpdesk, "1200")
    assert ticket(helpdesk, number)["approval"] == "pending"
    assert number in [p.number for p in pending_for(helpdesk, jean(helpdesk))]
    subjects = helpdesk.read(lambda s: [m.subject for m in list_messages(s, limit=1000)
                                        if m.recipients == ("jdupont@acme.example",)])
    assert f"[{number}] Approval requested: new label printers" in subjects


def test_an_incident_or_a_cheap_request_needs_no_approval(helpdesk):
    assert ticket(helpdesk, request(helpdesk, "1200", kind="incident", impact="team"))["approval"] is None
    assert ticket(helpdesk, request(helpdesk, "400"))["approval"] is None


def test_nobody_takes_or_assigns_a_request_awaiting_approval(helpdesk):
    number = request(helpdesk, "1200")
    with pytest.raises(TransitionRefused) as refused:
        helpdesk.run(lambda s: fire(s, number, "take", {"time_spent": "5m"}), identity=TINA)
    assert str(refused.value) == (f"`take` waits for the approval `costly_request` of {number}: awaiting approval "
                                  f"by jdupont (step customer)")
    with pytest.raises(TransitionRefused):
        helpdesk.run(lambda s: fire(s, number, "assign", {"assignee": "tina"}), identity=DORA)


def test_the_customer_may_not_change_the_estimate_but_approves_at_a_lower_price(helpdesk):
    number = request(helpdesk, "1200")
    with pytest.raises(AccessDenied):
        helpdesk.run(lambda s: s.update(number, {"estimated_cost": "800"}), identity=jean(helpdesk))
    helpdesk.run(lambda s: decide_approval(s, number, "propose", price="900", comment="our budget"),
                 identity=jean(helpdesk))
    helpdesk.run(lambda s: decide_approval(s, number, "propose", price="1000", comment="installation included"),
                 identity=TINA)
    view = helpdesk.run(lambda s: decide_approval(s, number, "approve", price="1000"), identity=jean(helpdesk))
    assert view.state == "approved"
    values = ticket(helpdesk, number)
    assert (values["approval"], values["estimated_cost"]) == ("approved", Decimal("1000.00"))
    assert helpdesk.run(lambda s: fire(s, number, "take", {"time_spent": "5m"})["status"], identity=TINA) \
        == "in_progress"


def test_a_refusal_rejects_the_ticket(helpdesk):
    number = request(helpdesk, "1200")
    helpdesk.run(lambda s: decide_approval(s, number, "reject", comment="too expensive"), identity=jean(helpdesk))
    values = ticket(helpdesk, number)
    assert (values["approval"], values["status"]) == ("rejected", "rejected")
    reasons = helpdesk.read(lambda s: [e.get("reason") for e in s.find(number).history.entries])
    assert "approval costly_request: rejected by jdupont: too expensive" in reasons
    assert "transition reject (automatic)" in reasons


def test_another_customer_is_not_the_approver(helpdesk):
    number = request(helpdesk, "1200")
    colleague = Identity("mpetit", "Marie Petit", ("customer_power_user",), organization=helpdesk.acme)
    with pytest.raises(ApprovalRefused) as refused:
        helpdesk.run(lambda s: decide_approval(s, number, "approve"), identity=colleague)
    assert "it awaits jdupont" in str(refused.value)


def test_a_request_left_unanswered_is_cancelled_after_five_days(helpdesk):
    number = request(helpdesk, "1200")
    ACTIONS["approval_reminders"].run(helpdesk, NOW + timedelta(days=5, minutes=1), {"batch": 200}, {})
    values = ticket(helpdesk, number)
    assert (values["approval"], values["status"]) == ("expired", "cancelled")
