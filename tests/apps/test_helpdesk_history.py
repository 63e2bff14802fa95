"""A ticket's history as its people read it on the ticket's page: names, titles, labels,
durations and local times — never an id, a code, a number of seconds, an ISO timestamp or a
Python repr; a transition by its label; and, for the customer, none of the values the
clocks keep."""
from __future__ import annotations

import html
import re

import pytest
from demo_web import sign_in
from starlette.testclient import TestClient

from deskbase.objects.fields import Upload
from deskbase.rules.access.identity import Identity, create_account
from deskbase.views.app import create_app

PASSWORD = "a long test password"
TINA = Identity("tina", "Tina Novak", ("technician",))


@pytest.fixture
def desk(app_store):
    with app_store() as store:
        def setup(session):
            acme = session.create("organization", {"name": "Acme Logistics", "code": "ACME"})
            session.create("contract", {"organization": acme.id, "name": "Acme support", "starts": "2026-01-01",
                                        "sla_level": "standard"})
            carl = session.create("contact", {"name": "Carl Berg", "email": "carl@acme.example",
                                              "organization": acme.id, "login": "carl"})
            article = session.create("article", {"title": "Restart the label printer", "body": "Switch it off.",
                                                 "published": True, "audience": "public"})
            ticket = session.create("ticket", {"title": "Label printer offline", "organization": acme.id,
                                               "requester": carl.id, "reported_at": "2026-11-30 09:00"})
            return acme.id, ticket.number, article.id
        acme, number, article = store.run(setup)
        create_account(store, "tina", name="Tina Novak", password=PASSWORD, roles=["technician"],
                       email="tina@desk.example")
        create_account(store, "carl", name="Carl Berg", password=PASSWORD, roles=["customer_user"],
                       organization=acme, email="carl@acme.example")
        from deskbase.rules.process.workflows import fire
        store.run(lambda s: fire(s, number, "take", {"time_spent": "1h30"}), identity=TINA)
        store.run(lambda s: s.update(number, {"articles": [article], "remaining_effort": "1h30",
                                              "attachments": [Upload("ecran.png", b"\x89PNG", "image/png")]}),
                  identity=TINA)
        store.number = number
        yield store


def _timeline(web, number: str) -> str:
    page = web.get(f"/r/{number}").text
    section = page[page.index('<section class="timeline"'):].split("</section>")[0]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", section)))


def _no_internals(text: str) -> None:
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text), "an ISO timestamp"
    assert "[{" not in text and "{'" not in text and "[]" not in text, "a Python repr"
    assert not re.search(r"(Requester|Organization|Knowledge base articles): \d+\b", text), "a bare id"
    assert "transition " not in text and "5400" not in text


def test_the_technician_reads_names_titles_labels_and_durations(desk):
    with TestClient(create_app(desk), follow_redirects=False) as web:
        sign_in(web, "tina", PASSWORD)
        text = _timeline(web, desk.number)
    _no_internals(text)
    assert "Tina Novak" in text and " Take " in text                     # the transition, by its label
    assert "Knowledge base articles:" in text and "Restart the label printer" in text
    assert "Remaining effort:" in text and "1h30" in text
    assert "ecran.png" in text
    assert "Status: Awaiting pickup → In progress" in text


def test_the_customer_reads_no_internals_and_none_of_the_clocks(desk):
    with TestClient(create_app(desk), follow_redirects=False) as portal:
        sign_in(portal, "carl", PASSWORD)
        text = _timeline(portal, desk.number)
    _no_internals(text)
    assert "In progress" in text and " Take " in text
    for kept in ("First response due", "Resolution due", "Resolution target", "Next update due"):
        assert kept not in text
    assert "Remaining effort" not in text                                 # hidden from customers


def test_the_customer_reads_only_the_public_changes_the_definitions_name(desk):
    """`history:` of the ticket names what customers read: the attachment and the status,
    not the articles linked or the service range the routing chose."""
    with TestClient(create_app(desk), follow_redirects=False) as portal:
        sign_in(portal, "carl", PASSWORD)
        text = _timeline(portal, desk.number)
    assert "ecran.png" in text and "Status: Awaiting pickup → In progress" in text
    assert "Knowledge base articles" not in text and "Restart the label printer" not in text
    told = desk.definitions.type("ticket").history["customer_user"]
    assert "articles" not in told and "status" in told
