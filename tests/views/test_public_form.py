"""The public web form (T1): a visitor without an account opens a ticket; a known address
becomes the requester with their organization; robots filling the hidden field and floods
from one address store nothing; a bad address is refused next to its field."""
from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from deskbase.views.app import create_app
from deskbase.views.public_pages import SUBMISSIONS_KEY


@pytest.fixture
def client(demo_store):
    """A visitor; the count of submissions per address (kept in the database) starts afresh."""
    demo_store.run(lambda s: s.connection.root().pop(SUBMISSIONS_KEY, None))
    with TestClient(create_app(demo_store), follow_redirects=False) as test_client:
        yield test_client


def thanked(client, response) -> str:
    """The page a sent form leads to, which says it is registered."""
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"]).text
    assert "Thank you: your request is registered." in page
    return page


def number_in(page: str) -> str:
    return re.search(r"Its number: (T-\d+)", page).group(1)


def tickets(store) -> int:
    return store.read(lambda s: s.count("ticket"))


def test_a_known_sender_opens_a_ticket_for_their_organization(client, demo_store):
    contact = demo_store.read(lambda s: dict(s.query("contact", {"email": {"ne": None}, "organization": {"ne": None}},
                                                     limit=1).records[0].values))
    page = client.get("/p/web_request")
    assert page.status_code == 200 and 'name="title"' in page.text and 'name="status"' not in page.text
    done = client.post("/p/web_request", data={"email": contact["email"], "name": "x", "title": "Badge reader dead",
                                               "description": "Entrance B", "criticality": "serious"})
    number = number_in(thanked(client, done))
    values = demo_store.read(lambda s: dict(s.find(number).values))
    assert values["requester"] == contact["id"] and values["organization"] == contact["organization"]
    assert (values["channel"], values["status"], values["created_by"]) == ("web_form", "awaiting_pickup", "public-form")


def test_an_unknown_sender_becomes_a_new_contact(client, demo_store):
    done = client.post("/p/web_request", data={"email": "nina@new.example", "name": "Nina New", "title": "Hello"})
    number = number_in(thanked(client, done))
    requester = demo_store.read(lambda s: dict(s.get("contact", s.find(number)["requester"]).values))
    assert (requester["name"], requester["email"]) == ("Nina New", "nina@new.example")


def test_a_robot_filling_the_hidden_field_stores_nothing(client, demo_store):
    before = tickets(demo_store)
    response = client.post("/p/web_request", data={"email": "bot@spam.example", "title": "cheap pills",
                                                   "website": "http://spam.example"})
    assert "Its number" not in thanked(client, response)
    assert tickets(demo_store) == before


def test_a_flood_from_one_address_is_stopped_by_every_server_process(client, demo_store):
    with TestClient(create_app(demo_store), follow_redirects=False) as other_process:
        for n in range(5):
            sender = client if n % 2 else other_process
            assert sender.post("/p/web_request", data={"email": "a@b.example", "title": f"t{n}"}).status_code == 303
        before = tickets(demo_store)
        for sender in (client, other_process):
            refused = sender.post("/p/web_request", data={"email": "a@b.example", "title": "sixth"})
            assert refused.status_code == 429 and "Too many requests" in refused.text
        assert tickets(demo_store) == before


def test_a_bad_address_or_missing_title_is_refused_next_to_the_field(client, demo_store):
    before = tickets(demo_store)
    response = client.post("/p/web_request", data={"email": "not an address", "title": "x", "description": "kept"})
    assert response.status_code == 422 and "give an e-mail address" in response.text and "kept" in response.text
    response = client.post("/p/web_request", data={"email": "c@d.example", "title": ""})
    assert response.status_code == 422 and 'id="error-title"' in response.text
    assert tickets(demo_store) == before
    assert client.get("/p/nothing_here").status_code == 404


@pytest.mark.parametrize("old, new, message", [
    ("fields: [title, description, criticality]", "fields: [title, descripton]",
     "`descripton` is not a field of `ticket` a visitor may fill"),
    ("link: requester, copy", "link: contact_person, copy", "`contact_person` is not a ref field of `ticket`"),
    ("sender: {type: contact, email: email,", "sender: {type: contact, email: phone_number,",
     "`phone_number` is not a string field of `contact`"),
])
def test_a_mistake_in_a_public_form_is_located(tmp_path, old, new, message):
    import shutil
    from pathlib import Path

    from deskbase.objects.errors import DefinitionErrors
    from deskbase.rules.application import load_application
    folder = tmp_path / "definitions"
    shutil.copytree(Path(__file__).parents[2] / "definitions", folder, ignore=shutil.ignore_patterns("demo"))
    path = folder / "helpdesk.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    with pytest.raises(DefinitionErrors) as caught:
        load_application(folder)
    assert message in str(caught.value) and "helpdesk.yaml:" in str(caught.value)
