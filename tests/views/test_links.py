"""Signed links in messages: opening one only shows what it will do; confirming does it
once, in the name of the address it was sent to; altered, expired or used links are
refused with a sentence."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from deskbase.rules.messages import links
from deskbase.rules.process.workflows import fire
from deskbase.views.app import create_app


@pytest.fixture
def client(demo_store):
    with TestClient(create_app(demo_store), follow_redirects=False) as test_client:
        yield test_client


def resolved_ticket(store) -> str:
    number = store.read(lambda s: s.query("ticket", {"status": "in_progress"}, "-id", limit=1).records[0].number)
    store.run(lambda s: fire(s, number, "resolve", {"time_spent": "5m"}))
    return number


def test_an_accept_link_shows_first_then_accepts_once(client, demo_store):
    number = resolved_ticket(demo_store)
    token = demo_store.run(lambda s: links.fire_link(s, number, "accept", "carl@acme.example"))
    shown = client.get(f"/a/{token}")
    assert shown.status_code == 200 and "Accept the resolution" in shown.text and number in shown.text
    assert demo_store.read(lambda s: s.find(number)["status"]) == "resolved"       # opening did nothing
    done = client.post(f"/a/{token}", data={"confirm": "1"})
    assert done.status_code == 200 and "Done" in done.text
    record = demo_store.read(lambda s: (s.find(number)["status"], s.find(number).history.entries[-1]["by"]))
    assert record == ("closed", "carl@acme.example")
    again = client.post(f"/a/{token}", data={"confirm": "1"})
    assert again.status_code == 410 and "used already" in again.text


def test_a_dispute_link_asks_for_the_reason(client, demo_store):
    number = resolved_ticket(demo_store)
    token = demo_store.run(lambda s: links.fire_link(s, number, "dispute", "carl@acme.example"))
    assert 'name="reason"' in client.get(f"/a/{token}").text
    refused = client.post(f"/a/{token}", data={"confirm": "1"})
    assert refused.status_code == 422 and "reason" in refused.text
    done = client.post(f"/a/{token}", data={"confirm": "1", "reason": "still jams"})
    assert done.status_code == 200
    assert demo_store.read(lambda s: s.find(number)["status"]) == "disagreement"


def test_an_altered_or_expired_link_is_refused(client, demo_store):
    number = resolved_ticket(demo_store)
    token = demo_store.run(lambda s: links.fire_link(s, number, "accept", "carl@acme.example"))
    body, mac = token.split(".")
    forged = demo_store.run(lambda s: links.fire_link(s, number, "accept", "eve@evil.example")).split(".")[0]
    assert client.get(f"/a/{forged}.{mac}").status_code == 410
    assert "not valid" in client.get(f"/a/{forged}.{mac}").text

    def expired(session):
        session.now = session.now - timedelta(days=30)
        return links.fire_link(session, number, "accept", "carl@acme.example", days=14)
    old = demo_store.run(expired)
    assert "expired" in client.get(f"/a/{old}").text
    assert demo_store.read(lambda s: s.find(number)["status"]) == "resolved"


def test_a_link_cannot_fire_what_the_state_no_longer_allows(client, demo_store):
    number = resolved_ticket(demo_store)
    token = demo_store.run(lambda s: links.fire_link(s, number, "accept", "carl@acme.example"))
    demo_store.run(lambda s: fire(s, number, "close"))
    refused = client.post(f"/a/{token}", data={"confirm": "1"})
    assert refused.status_code == 422 and "cannot be fired while" in refused.text


def test_the_resolution_message_carries_links_to_accept_and_dispute(demo_store):
    from deskbase.rules.messages.outbox import list_messages
    number = resolved_ticket(demo_store)
    body = demo_store.read(lambda s: [m.body for m in list_messages(s, limit=2000) if m.record == number
                                      and "Resolved" in m.subject][-1])
    found = re.findall(r"/a/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", body)
    assert len(found) == 2
    kinds = [demo_store.read(lambda s, t=t: links.read(s, t).transition) for t in found]
    assert sorted(kinds) == ["accept", "dispute"]


def test_the_closing_message_asks_for_the_customers_satisfaction(client, demo_store):
    from deskbase.rules.messages.outbox import list_messages
    number = resolved_ticket(demo_store)
    demo_store.run(lambda s: fire(s, number, "close"))
    body = demo_store.read(lambda s: [m.body for m in list_messages(s, limit=5000) if m.record == number
                                      and "Closed" in m.subject][-1])
    [token] = re.findall(r"/a/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", body)
    form = client.get(f"/a/{token}")
    assert form.status_code == 200 and 'name="rating"' in form.text and 'name="ticket"' not in form.text
    refused = client.post(f"/a/{token}", data={"comment": "no rating"})
    assert refused.status_code == 422 and 'id="error-rating"' in refused.text and "no rating" in refused.text
    done = client.post(f"/a/{token}", data={"rating": "satisfied", "comment": "quick, thanks"})
    assert done.status_code == 200 and "Done" in done.text
    ticket_id = demo_store.read(lambda s: s.find(number).id)
    [answer] = demo_store.read(lambda s: [dict(r.values) for r in s.query("survey", {"ticket": ticket_id}).records])
    assert (answer["rating"], answer["comment"]) == ("satisfied", "quick, thanks")
    assert client.post(f"/a/{token}", data={"rating": "neutral"}).status_code == 410     # once
