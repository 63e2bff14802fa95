"""A customer's new ticket (T1, T8, T14): the form asks what they know — at most eight
fields, none of the staff's — and the ticket is theirs, of their organization, from the
portal, under their organization's contract, whatever the form sent."""
from __future__ import annotations

import re

from demo_web import csrf_of, sign_in
from starlette.testclient import TestClient

from deskbase.rules.access.identity import identity_of
from deskbase.views.app import create_app

STAFF_FIELDS = ("channel", "reported_at", "contract", "service_range", "project", "escalated", "status", "group",
                "assignee", "watchers", "requester", "organization", "internal_notes", "estimated_cost")


def test_a_customer_is_asked_what_they_know_and_the_rest_is_filled_from_who_they_are(app_store):
    with app_store(demo=True) as demo:
        who = identity_of(demo, "jdupont")
        assert who.person is not None
        with TestClient(create_app(demo), follow_redirects=False) as portal:
            sign_in(portal, "jdupont")
            form = portal.get("/new/ticket").text
            asked = re.findall(r'<div class="field[^"]*" id="field-([a-z_]+)"', form)
            assert asked == ["kind", "title", "description", "category", "asset", "criticality", "impact",
                             "attachments"]
            assert not set(asked) & set(STAFF_FIELDS)
            made = portal.post("/new/ticket", data={"csrf": csrf_of(form), "kind": "incident",
                                                    "title": "Scanner du quai C hors service",
                                                    "description": "Plus rien ne s'affiche.",
                                                    "criticality": "serious", "impact": "team",
                                                    # forged: none of these is theirs to set
                                                    "channel": "staff", "requester": "1", "organization": "2"})
            assert made.status_code == 303, made.text
        number = made.headers["location"].rsplit("/", 1)[1]
        ticket = demo.read(lambda s: dict(s.find(number).values))
        contract = demo.read(lambda s: [r.id for r in s.query("contract", {"organization": who.organization},
                                                               limit=None).records])
    assert (ticket["requester"], ticket["organization"], ticket["channel"]) == (who.person, who.organization, "portal")
    assert len(contract) != 1 or ticket["contract"] == contract[0]


def test_a_customers_ticket_page_offers_no_link_to_add_what_their_form_does_not_ask(app_store):
    """"Add: Tickets (Merged into)" would open a form that cannot link the new ticket: the
    customer's form asks none of parent, merged_into or opened_from; the supervisor's does."""
    with app_store(demo=True) as demo:
        number = demo.read(lambda s: s.query("ticket", {"organization": identity_of(demo, "jdupont").organization},
                                             "id", limit=1).records[0].number)
        with TestClient(create_app(demo), follow_redirects=False) as web:
            sign_in(web, "jdupont")
            page = web.get(f"/r/{number}").text
            assert page.count("/new/ticket?") == 0
            sign_in(web, "cmartin")
            page = web.get(f"/r/{number}").text
            assert "/new/ticket?merged_into=" in page and "Tickets (Merged into)" in page
