"""Standing in on the shipped helpdesk (P8, T20): while Karim Haddad is away, Sophie
Bernard sees and works his tickets, the history says "sbernard for khaddad", and the
messages meant for him reach her too; before and after his absence she does not."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from deskbase.rules.access.identity import create_account, identity_of
from deskbase.rules.access.scopes import AccessDenied, hidden_fields
from deskbase.rules.messages.outbox import list_messages
from deskbase.rules.process.workflows import TransitionRefused, fire

PASSWORD = "a long test password"
NOW = datetime.now(timezone.utc)


@pytest.fixture
def helpdesk(app_store):
    """Two hotline technicians, one of whom has an open ticket of a customer."""
    with app_store() as store:
        def work(session):
            hotline = session.create("group", {"name": "Hotline"}).id
            acme = session.create("organization", {"name": "Acme", "code": "ACME"}).id
            carl = session.create("contact", {"name": "Carl", "email": "carl@acme.example", "organization": acme}).id
            ticket = session.create("ticket", {"title": "vpn down", "status": "in_progress", "assignee": "khaddad",
                                               "organization": acme, "requester": carl})
            return hotline, ticket.id, ticket.number
        hotline, store.ticket_id, store.ticket = store.run(work)
        for login in ("sbernard", "khaddad"):
            create_account(store, login, name=login, password=PASSWORD, roles=["technician"], groups=[hotline],
                           email=f"{login}@support.example")
        yield store


def away(helpdesk, starts: datetime, ends: datetime | None) -> None:
    values = {"operator": "khaddad", "deputy": "sbernard", "starts": starts, "ends": ends, "reason": "leave"}
    helpdesk.run(lambda s: s.create("absence", values))


def sees_ticket(helpdesk) -> bool:
    sbernard = identity_of(helpdesk, "sbernard")
    return helpdesk.read(lambda s: s.count("ticket", {"id": helpdesk.ticket_id}), identity=sbernard) == 1


def test_deputy_sees_absent_technicians_ticket_only_during_absence(helpdesk):
    assert not sees_ticket(helpdesk)
    away(helpdesk, NOW - timedelta(days=10), NOW - timedelta(days=3))    # over
    away(helpdesk, NOW + timedelta(days=3), NOW + timedelta(days=10))    # to come
    assert not sees_ticket(helpdesk)
    away(helpdesk, NOW - timedelta(hours=1), NOW + timedelta(days=2))
    assert sees_ticket(helpdesk)
    assert identity_of(helpdesk, "sbernard").acting_for == ("khaddad",)


def test_deputy_may_not_work_the_ticket_before_the_absence(helpdesk):
    sbernard = identity_of(helpdesk, "sbernard")
    with pytest.raises(TransitionRefused, match="the person you act for"):
        helpdesk.run(lambda s: fire(s, helpdesk.ticket, "resolve", {"time_spent": "10m"}), identity=sbernard)


def test_history_shows_sbernard_for_khaddad(helpdesk):
    away(helpdesk, NOW - timedelta(hours=1), None)        # back on a date not known yet
    sbernard = identity_of(helpdesk, "sbernard")
    helpdesk.run(lambda s: fire(s, helpdesk.ticket, "resolve", {"time_spent": "10m"}), identity=sbernard)
    entry = helpdesk.read(lambda s: s.find(helpdesk.ticket).history.entries[-1])
    assert (entry["by"], entry["acting_for"], entry["reason"]) == ("sbernard", "khaddad", "transition resolve")
    work = helpdesk.read(lambda s: s.query("work_entry", limit=None).records[0])
    assert (work["performer"], work.history.entries[0]["acting_for"]) == ("sbernard", None)   # her own work


def test_notification_for_the_absent_technician_reaches_the_deputy(helpdesk):
    away(helpdesk, NOW - timedelta(hours=1), NOW + timedelta(days=1))
    helpdesk.run(lambda s: fire(s, helpdesk.ticket, "resolve", {"time_spent": "10m"}))   # fired by the system
    recipients = helpdesk.read(lambda s: sorted(m.recipients[0] for m in list_messages(s, None, limit=10)
                                                if "Resolved" in m.subject))
    assert recipients == ["carl@acme.example", "khaddad@support.example", "sbernard@support.example"]


def test_technicians_read_absences_but_not_why(helpdesk):
    away(helpdesk, NOW - timedelta(hours=1), NOW + timedelta(days=1))
    sbernard = identity_of(helpdesk, "sbernard")
    [absence] = helpdesk.read(lambda s: [dict(r.values) for r in s.query("absence").records], identity=sbernard)
    assert absence["operator"] == "khaddad"
    assert {"reason", "notes"} <= hidden_fields(sbernard, helpdesk.definitions.type("absence"), helpdesk.definitions)
    with pytest.raises(AccessDenied):
        helpdesk.run(lambda s: s.create("absence", {"operator": "sbernard", "starts": NOW}), identity=sbernard)


def test_a_scoped_absence_hands_over_only_the_kinds_of_work_it_names(helpdesk):
    def log_work(session):
        return session.create("work_entry", {"ticket": helpdesk.ticket_id, "performer": "khaddad",
                                             "duration": "30m"}).id
    entry = helpdesk.run(log_work)
    values = {"operator": "khaddad", "deputy": "sbernard", "starts": NOW - timedelta(hours=1),
              "ends": NOW + timedelta(days=2), "scope": ["work_entry"]}
    helpdesk.run(lambda s: s.create("absence", values))
    sbernard = identity_of(helpdesk, "sbernard")
    assert tuple(sbernard.acting_for) == ("khaddad",)
    # His work entries are handed over, his tickets are not.
    assert helpdesk.read(lambda s: s.count("work_entry", {"id": entry}), identity=sbernard) == 1
    assert not sees_ticket(helpdesk)


def test_a_scope_must_be_a_tags_field(tmp_path):
    from shipped import refusal_of_changed
    refused = refusal_of_changed(tmp_path, "  ends: ends\n  scope: scope\n", "  ends: ends\n  scope: notes\n")
    assert "`notes` is not a tags field of `absence`" in str(refused)
