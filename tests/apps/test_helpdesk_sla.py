"""Helpdesk service levels (T13): deadlines in the contract's business hours, paused while
the customer is asked, warnings, escalation to the supervisors and the duty phone —
delivered through a real SMTP server and a real HTTP SMS gateway."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from deskbase.connectors.sms import HttpSmsSender
from deskbase.connectors.smtp import SmtpSender
from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.access.scopes import AccessDenied
from deskbase.rules.messages.outbox import deliver_due
from deskbase.rules.process.timers import check_due
from deskbase.rules.process.workflows import fire

PARIS = ZoneInfo("Europe/Paris")
UTC = timezone.utc
TINA = Identity("tina", "Tina", ("technician",))
CARL = Identity("carl", "Carl", ("customer_user",))
PASSWORD = "correct horse battery"


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def helpdesk(app_store):
    with app_store() as store:
        create_account(store, "tina", name="Tina", password=PASSWORD, roles=["technician"],
                       email="tina@support.example")
        create_account(store, "sam", name="Sam", password=PASSWORD, roles=["supervisor"], email="sam@support.example")

        def setup(session):
            acme = session.create("organization", {"name": "Acme", "code": "ACME"}).id
            contracts = {level: session.create("contract", {"organization": acme, "name": level, "sla_level": level,
                                                            "calendar": calendar, "starts": "2026-01-01"}).id
                         for level, calendar in (("premium", "around_the_clock"), ("standard", "office_hours"))}
            return acme, contracts
        store.acme, store.contracts = store.run(setup)
        yield store


def open_ticket(helpdesk, at: datetime, level: str | None = "standard", **values) -> str:
    values = {"title": "line 3 stopped", "organization": helpdesk.acme, "reported_at": at, **values}
    if level:
        values["contract"] = helpdesk.contracts[level]
    return helpdesk.run(lambda s: s.create("ticket", values).number, now=at)


def ticket(helpdesk, number: str) -> dict:
    return helpdesk.read(lambda s: dict(s.find(number).values))


def work(helpdesk, number: str, transition: str, at: datetime, who: Identity = TINA, **inputs) -> None:
    inputs.setdefault("time_spent", "5m")
    helpdesk.run(lambda s: fire(s, number, transition, inputs), identity=who, now=at)


def test_a_premium_urgent_ticket_is_due_around_the_clock(helpdesk):
    saturday_night = paris(21, 23)
    number = open_ticket(helpdesk, saturday_night, "premium", priority="urgent", kind="incident", impact="site")
    values = ticket(helpdesk, number)
    assert values["response_due"] == (saturday_night + timedelta(minutes=15)).astimezone(UTC)
    assert values["resolution_due"] == (saturday_night + timedelta(hours=4)).astimezone(UTC)
    assert values["sla_state"] == "running"


def test_a_standard_ticket_counts_office_hours_only(helpdesk):
    number = open_ticket(helpdesk, paris(20, 17))                       # Friday 17:00
    values = ticket(helpdesk, number)
    # 4 h: 17:00–18:00 on Friday, then 08:30–11:30 on Monday.
    assert values["response_due"] == paris(23, 11, 30).astimezone(UTC)
    # 24 h of office hours (8 h a day, 12:30–14:00 excluded): 1 h Fri, 8 h Mon, Tue, 7 h Wed.
    assert values["resolution_due"] == paris(25, 17).astimezone(UTC)


def test_armistice_day_is_not_a_working_day(helpdesk):
    number = open_ticket(helpdesk, paris(10, 17))                       # Tuesday, before the 11th
    assert ticket(helpdesk, number)["response_due"] == paris(12, 11, 30).astimezone(UTC)


def test_a_ticket_without_contract_gets_the_basic_targets(helpdesk):
    number = open_ticket(helpdesk, paris(23, 8, 30), level=None)
    assert ticket(helpdesk, number)["response_due"] == paris(23, 18).astimezone(UTC)      # 8 h: one day


def test_waiting_for_the_customer_pauses_the_resolution_target_until_they_reply(helpdesk):
    number = open_ticket(helpdesk, paris(23, 8, 30))
    work(helpdesk, number, "take", paris(23, 9))
    assert ticket(helpdesk, number)["response_due"] == paris(23, 12, 30).astimezone(UTC)
    work(helpdesk, number, "ask_customer", paris(23, 10, 30), question="Since when?")   # 2 h used of 24
    assert ticket(helpdesk, number)["sla_state"] == "paused"
    assert ticket(helpdesk, number)["resolution_due"] is None

    ticket_id = ticket(helpdesk, number)["id"]
    helpdesk.run(lambda s: s.create("comment", {"ticket": ticket_id, "organization": helpdesk.acme, "author": "carl",
                                                "author_kind": "customer", "body": "it is on again"}),
                 now=paris(24, 10, 30))                                     # a day later
    values = ticket(helpdesk, number)
    assert values["status"] == "in_progress" and values["sla_state"] == "running"
    # 22 h left from Tuesday 10:30: 6 h Tue, 8 h Wed, 8 h Thu → Thursday 18:00.
    assert values["resolution_due"] == paris(26, 18).astimezone(UTC)


def test_a_public_staff_comment_restarts_the_time_to_the_next_update(helpdesk):
    number = open_ticket(helpdesk, paris(23, 8, 30))
    work(helpdesk, number, "take", paris(23, 9))
    # 8 h from Monday 09:00: 3 h 30 in the morning, 4 h in the afternoon, 30 min on Tuesday.
    assert ticket(helpdesk, number)["update_due"] == paris(24, 9).astimezone(UTC)
    ticket_id = ticket(helpdesk, number)["id"]
    helpdesk.run(lambda s: s.create("comment", {"ticket": ticket_id, "organization": helpdesk.acme,
                                                "visibility": "internal", "body": "note to self"}),
                 identity=TINA, now=paris(23, 14))
    assert ticket(helpdesk, number)["update_due"] == paris(24, 9).astimezone(UTC)      # internal: no
    helpdesk.run(lambda s: s.create("comment", {"ticket": ticket_id, "organization": helpdesk.acme,
                                                "body": "a part is ordered"}),
                 identity=TINA, now=paris(23, 14))
    assert ticket(helpdesk, number)["update_due"] == paris(24, 12, 30).astimezone(UTC)  # 8 h from 14:00


def test_a_technician_cannot_move_a_deadline(helpdesk):
    number = open_ticket(helpdesk, paris(23, 8, 30))
    work(helpdesk, number, "take", paris(23, 9))
    with pytest.raises(AccessDenied) as refused:
        helpdesk.run(lambda s: s.update(number, {"resolution_due": paris(30, 9)}), identity=TINA)
    assert "kept by the timers" in str(refused.value)


def test_warning_escalation_and_duty_phone_reach_real_servers(helpdesk, smtp_server, sms_gateway):
    number = open_ticket(helpdesk, paris(23, 8, 30), "premium", priority="urgent", kind="incident", impact="site")
    work(helpdesk, number, "take", paris(23, 8, 35))
    senders = {"email": SmtpSender("127.0.0.1", smtp_server.port, sender_address="helpdesk@localhost", timeout=5),
               "sms": HttpSmsSender(sms_gateway.url, body_template={"to": "{to}", "text": "{text}"})}
    deliver_due(helpdesk, senders)
    smtp_server.received.clear()

    # 4 h allowed around the clock: 80 % at 11:42, 100 % at 12:30, 150 % at 14:30.
    report = check_due(helpdesk, paris(23, 11, 45))
    assert [(p.clock, p.event) for p in report.passed if p.clock == "resolution"] == [("resolution", "warning")]
    deliver_due(helpdesk, senders)
    warned = [m.message for m in smtp_server.received if "Resolution" in m.message["Subject"]]
    assert [m["To"] for m in warned] == ["tina@support.example"]
    assert number in warned[0]["Subject"] and "80% of the time allowed" in warned[0].get_content()

    check_due(helpdesk, paris(23, 12, 31))
    assert ticket(helpdesk, number)["escalated"] is True
    assert ticket(helpdesk, number)["sla_state"] == "breached"
    deliver_due(helpdesk, senders)
    passed = [m.message for m in smtp_server.received if "Target passed: Resolution" in m.message["Subject"]]
    assert sorted(m["To"] for m in passed) == ["sam@support.example", "tina@support.example"]
    assert sms_gateway.requests == []

    check_due(helpdesk, paris(23, 14, 31))
    deliver_due(helpdesk, senders)
    assert [r.body["to"] for r in sms_gateway.requests] == ["+33600000000"]
    assert number in sms_gateway.requests[0].body["text"] and "150%" in sms_gateway.requests[0].body["text"]
    history = helpdesk.read(lambda s: [e.get("reason") for e in s.find(number).history.entries])
    assert "timer resolution 100% (breach)" in history and "timer resolution 150% (critical)" in history


def test_a_resolved_ticket_fires_nothing_more(helpdesk):
    number = open_ticket(helpdesk, paris(23, 8, 30))
    work(helpdesk, number, "take", paris(23, 9))
    work(helpdesk, number, "resolve", paris(23, 10))
    assert ticket(helpdesk, number)["sla_state"] == "met"
    assert check_due(helpdesk, paris(30, 10)).passed == []


def test_a_watcher_who_may_not_read_the_ticket_is_not_warned(helpdesk):
    from deskbase.rules.messages.outbox import list_messages
    create_account(helpdesk, "tom", name="Tom", password=PASSWORD, roles=["technician"], email="tom@support.example")
    create_account(helpdesk, "fay", name="Fay", password=PASSWORD, roles=["supervisor"], email="fay@support.example")
    followed = open_ticket(helpdesk, paris(23, 8, 30), "premium", watchers=["tom"])
    supervised = open_ticket(helpdesk, paris(23, 8, 30), "premium", watchers=["fay"])
    for number in (followed, supervised):
        work(helpdesk, number, "take", paris(23, 8, 35))
    check_due(helpdesk, paris(23, 15, 0))                                # 80 % of 8 h around the clock
    warned = helpdesk.read(lambda s: {(m.recipients[0], m.record) for m in list_messages(s, limit=1000)
                                      if "due" in m.subject and "Resolution" in m.subject})
    # Tom, a technician, may not read a ticket Tina has taken (T7): he is not told of it.
    assert ("tom@support.example", followed) not in warned
    assert ("tina@support.example", followed) in warned and ("fay@support.example", supervised) in warned


def test_waiting_for_the_customers_approval_does_not_count(helpdesk):
    approver_set = helpdesk.run(lambda s: s.update(s.get("organization", helpdesk.acme), {"approver": "sam"}))
    assert approver_set is not None
    number = open_ticket(helpdesk, paris(23, 8, 30), estimated_cost="900")
    values = ticket(helpdesk, number)
    assert values["approval"] == "pending" and values["sla_state"] == "paused"
    assert values["response_due"] is None


def test_an_incident_asks_who_is_affected_but_not_from_monitoring(helpdesk):
    from deskbase.objects.errors import ValidationError
    with pytest.raises(ValidationError) as refused:
        open_ticket(helpdesk, paris(23, 9), kind="incident")
    assert refused.value.errors == {"impact": "is required here"}
    assert open_ticket(helpdesk, paris(23, 9), kind="incident", channel="api")        # a monitoring tool
    assert open_ticket(helpdesk, paris(23, 9))                                         # a service request
    made = open_ticket(helpdesk, paris(23, 9), kind="incident", impact="site")
    helpdesk.run(lambda s: s.update(made, {"title": "line 3 stopped again"}))       # other edits go on
