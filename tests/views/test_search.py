"""The search in every page's header, on the demo: a number opens its record if the person
may read it; words are word starts, accents and case folded, over every type the person may
read, closed records included, grouped by type — and nothing of what they may not read."""
from __future__ import annotations

import html
import re

import pytest
from starlette.testclient import TestClient

from deskbase.rules.access.identity import identity_of
from deskbase.views.app import create_app

from .test_web import sign_in


@pytest.fixture
def web(demo_store):
    with TestClient(create_app(demo_store), follow_redirects=False) as client:
        yield client


def _found(page: str) -> dict[str, list[str]]:
    """The numbers listed under each type's heading."""
    groups = {}
    for section in re.findall(r'<section class="search-group">(.*?)</section>', page, re.S):
        heading = html.unescape(re.search(r"<h2>(.*?) <span", section).group(1))
        groups[heading] = re.findall(r'<a href="/r/([^"]+)">', section)
    return groups


def test_a_number_opens_its_record_whatever_its_case(web):
    sign_in(web, "cmartin", "demo-password")
    assert "Search everything" in web.get("/").text                    # in the header of every page
    opened = web.get("/search", params={"q": " t-000001 "})
    assert opened.status_code == 303 and opened.headers["location"] == "/r/T-000001"


def test_a_number_the_person_may_not_read_opens_nothing(web, demo_store):
    readable = demo_store.read(lambda s: {r.number for r in s.query("ticket", limit=None).records},
                               identity=identity_of(demo_store, "sbernard"))
    other = demo_store.read(lambda s: next(r.number for r in s.query("ticket", {"status": "in_progress"},
                                                                        limit=None).records
                                           if r.number not in readable))
    sign_in(web, "sbernard", "demo-password")
    page = web.get("/search", params={"q": other})
    assert page.status_code == 200 and f'href="/r/{other}"' not in page.text


def test_word_starts_find_records_of_every_type_closed_ones_included(web, demo_store):
    sign_in(web, "cmartin", "demo-password")
    found = _found(web.get("/search", params={"q": "impri"}).text)
    expected = demo_store.read(lambda s: s.count("ticket", {"text": "impri*"}))
    assert expected and len(found["Tickets"]) == min(expected, 10)
    closed = demo_store.read(lambda s: s.query("ticket", {"status": "closed"}, "-id", limit=1).records[0])
    words = " ".join([w for w in re.findall(r"\w{4,}", closed["title"])][:3])
    assert closed.number in _found(web.get("/search", params={"q": words}).text)["Tickets"]   # closed: found too
    assert {"Tickets", "Canned replies", "Assets"} <= set(found)                   # other types too
    # accents and case folded: "ETIQUET" finds "étiquettes"
    assert "T-000001" in _found(web.get("/search", params={"q": "ETIQUET impri"}).text)["Tickets"]


def test_a_customer_finds_only_what_they_may_read(web, demo_store):
    sign_in(web, "jdupont", "demo-password")
    who = identity_of(demo_store, "jdupont")
    found = _found(web.get("/search", params={"q": "impri"}).text)
    readable = demo_store.read(lambda s: {r.number for r in s.query("ticket", {"text": "impri*"}, limit=None).records},
                               identity=who)
    assert found.get("Tickets") and set(found["Tickets"]) <= readable
    organizations = demo_store.read(lambda s: {s.find(n)["organization"] for n in found["Tickets"]})
    assert organizations == {who.organization}


def test_too_short_words_say_what_to_type(web):
    sign_in(web, "cmartin", "demo-password")
    page = web.get("/search", params={"q": "ab"}).text
    assert "words of at least 3 letters" in page
