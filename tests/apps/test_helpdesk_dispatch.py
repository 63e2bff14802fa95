"""Dispatch on the shipped helpdesk (T10): a new ticket goes to its contract's hotline
group, else to its service range's default group; a group chosen by whoever opens it is
kept; an overlay may also hand each new ticket to the least loaded technician present."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from deskbase.rules.access.identity import create_account, identity_of

PASSWORD = "a long test password"
OPERATOR_OVERLAY = """\
dispatch:
  ticket:
    operator: {field: assignee, strategy: least_loaded, transition: assign,
               load: {status: {not_in: [resolved, rejected, cancelled, closed]}}}
"""


def build(store):
    """Groups, a customer with a contract naming a hotline group and one naming none,
    and a service range with its default group."""
    def work(session):
        ids = {name: session.create("group", {"name": name.title()}).id for name in ("hotline", "network", "field")}
        ids["acme"] = session.create("organization", {"name": "Acme", "code": "ACME"}).id
        ids["with_hotline"] = session.create("contract", {"organization": ids["acme"], "name": "Main",
                                                          "hotline_group": ids["hotline"]}).id
        ids["without_hotline"] = session.create("contract", {"organization": ids["acme"], "name": "Network only"}).id
        ids["network_range"] = session.create("service_range", {"name": "Network", "code": "network",
                                                                "default_group": ids["network"]}).id
        return ids
    store.ids = store.run(work)
    return store


@pytest.fixture
def helpdesk(app_store):
    with app_store() as store:
        yield build(store)


def open_ticket(helpdesk, identity=None, **values) -> dict:
    values = {"title": "switch down", "organization": helpdesk.ids["acme"], **values}
    return helpdesk.run(lambda s: dict(s.create("ticket", values).values), identity=identity)


def test_a_new_ticket_is_dispatched_to_its_contracts_hotline_group(helpdesk):
    ids = helpdesk.ids
    ticket = open_ticket(helpdesk, contract=ids["with_hotline"], service_range=ids["network_range"])
    assert (ticket["group"], ticket["assignee"], ticket["status"]) == (ids["hotline"], None, "awaiting_pickup")


def test_without_a_hotline_group_the_service_ranges_default_group_takes_the_ticket(helpdesk):
    ids = helpdesk.ids
    ticket = open_ticket(helpdesk, contract=ids["without_hotline"], service_range=ids["network_range"])
    assert ticket["group"] == ids["network"]


def test_a_ticket_without_contract_or_service_range_waits_without_a_group(helpdesk):
    assert open_ticket(helpdesk)["group"] is None


def test_the_group_chosen_when_opening_is_kept(helpdesk):
    create_account(helpdesk, "cmartin", name="Claire Martin", password=PASSWORD, roles=["supervisor"])
    ids = helpdesk.ids
    ticket = open_ticket(helpdesk, identity_of(helpdesk, "cmartin"), contract=ids["with_hotline"], group=ids["field"])
    assert ticket["group"] == ids["field"]


@pytest.fixture
def assigning_helpdesk(app_store, tmp_path):
    overlay = tmp_path / "assign"
    overlay.mkdir()
    (overlay / "dispatch.yaml").write_text(OPERATOR_OVERLAY)
    with app_store(overlays=[overlay]) as store:
        yield build(store)


def test_an_overlay_assigns_new_tickets_to_the_least_loaded_technician_present(assigning_helpdesk):
    helpdesk, ids = assigning_helpdesk, assigning_helpdesk.ids
    for login in ("khaddad", "sbernard", "tdvorak"):
        create_account(helpdesk, login, name=login, password=PASSWORD, roles=["technician"], groups=[ids["hotline"]])
    open_ticket(helpdesk, status="in_progress", assignee="khaddad")
    open_ticket(helpdesk, status="closed", assignee="sbernard")          # closed: not load
    now = datetime.now(timezone.utc)
    helpdesk.run(lambda s: s.create("absence", {"operator": "sbernard", "starts": now - timedelta(hours=1)}))
    ticket = open_ticket(helpdesk, contract=ids["with_hotline"])
    assert (ticket["group"], ticket["assignee"], ticket["status"]) == (ids["hotline"], "tdvorak", "in_progress")
    history = helpdesk.read(lambda s: s.get("ticket", ticket["id"]).history.entries)
    assert history[-1]["reason"] == "transition assign (automatic)"
