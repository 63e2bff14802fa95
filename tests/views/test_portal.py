"""The customer portal (P13): customers work in their own layout, see only their
organization's tickets, open one (a power user), reply and accept a resolution; what their
access rules pin down (their organization, a reply being the customer's and public) is
filled in, not asked."""
from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from deskbase.rules.process.workflows import fire
from deskbase.views.app import create_app

from .test_web import csrf_of, sign_in


@pytest.fixture
def client(demo_store):
    with TestClient(create_app(demo_store), follow_redirects=False) as test_client:
        yield test_client


def organization_of(store, login: str) -> int:
    from deskbase.rules.access.identity import identity_of
    return identity_of(store, login).organization


def test_customers_get_the_portal_layout_and_staff_do_not(client):
    sign_in(client, "psvoboda", "demo-password")
    assert 'class="portal"' in client.get("/").text and "Support portal" in client.get("/").text
    sign_in(client, "sbernard", "demo-password")
    assert 'class="portal"' not in client.get("/").text


def test_a_power_user_opens_a_ticket_for_their_own_organization_only(client, demo_store):
    sign_in(client, "psvoboda", "demo-password")
    form = client.get("/new/ticket")
    assert form.status_code == 200
    assert 'name="organization"' not in form.text          # pinned by the access rule, not asked
    assert 'name="internal_notes"' not in form.text         # hidden from customers
    response = client.post("/new/ticket", data={"csrf": csrf_of(form.text), "title": "Tiskárna nefunguje",
                                                "description": "Od rána."})
    assert response.status_code == 303
    number = response.headers["location"].rsplit("/", 1)[1]
    values = demo_store.read(lambda s: dict(s.find(number).values))
    assert values["organization"] == organization_of(demo_store, "psvoboda")
    assert values["status"] == "awaiting_pickup"


def test_a_customer_user_may_not_open_tickets(client):
    sign_in(client, "ngirard", "demo-password")
    assert client.get("/new/ticket").status_code == 403
    assert 'href="/new/ticket"' not in client.get("/").text


def test_a_customer_replies_and_the_reply_is_theirs_and_public(client, demo_store):
    sign_in(client, "psvoboda", "demo-password")
    organization = organization_of(demo_store, "psvoboda")
    ticket = demo_store.read(lambda s: s.query("ticket", {"organization": organization}, limit=1).records[0])
    form = client.get(f"/new/comment?ticket={ticket.id}")
    assert 'name="author_kind"' not in form.text and 'name="visibility"' not in form.text
    response = client.post(f"/new/comment?ticket={ticket.id}",
                           data={"csrf": csrf_of(form.text), "ticket": str(ticket.id), "body": "Děkujeme, funguje."})
    assert response.status_code == 303
    comment = demo_store.read(lambda s: dict(s.query("comment", {"ticket": ticket.id}, "-id", limit=1)
                                             .records[0].values))
    assert comment["author_kind"] == "customer" and comment["visibility"] == "public"
    assert comment["author"] == "psvoboda" and comment["organization"] == organization


def test_a_customer_never_sees_another_organizations_ticket_or_internal_notes(client, demo_store):
    sign_in(client, "psvoboda", "demo-password")
    organization = organization_of(demo_store, "psvoboda")
    other = demo_store.read(lambda s: s.query("ticket", {"organization": {"ne": organization}}, limit=1)
                            .records[0].number)
    assert client.get(f"/r/{other}").status_code == 404
    own = demo_store.read(lambda s: s.query("ticket", {"organization": organization}, limit=1).records[0].number)
    demo_store.run(lambda s: s.update(own, {"internal_notes": "customer is slow to answer"}))
    page = client.get(f"/r/{own}")
    assert page.status_code == 200 and "customer is slow to answer" not in page.text
    listed = set()
    for view in re.findall(r'href="/v/([a-z_]+)"', client.get("/").text):
        listed |= set(re.findall(r'href="/r/(T-\d+)"', client.get(f"/v/{view}").text))
    assert listed and other not in listed


def test_a_customer_accepts_a_resolution_from_the_portal(client, demo_store):
    organization = organization_of(demo_store, "psvoboda")
    number = demo_store.read(lambda s: s.query("ticket", {"organization": organization,
                                                          "status": "in_progress"}, limit=1).records[0].number)
    demo_store.run(lambda s: fire(s, number, "resolve", {"time_spent": "10m"}))
    sign_in(client, "psvoboda", "demo-password")
    page = client.get(f"/r/{number}")
    assert f'action="/r/{number}/fire/accept"' in page.text and "fire/take" not in page.text
    response = client.post(f"/r/{number}/fire/accept", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303
    assert demo_store.read(lambda s: s.find(number)["status"]) == "closed"
