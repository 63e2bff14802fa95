"""The point-and-click filter of list pages: a condition picked from a field, a comparison
and a value joins the list's filter in the address, reads back as a sentence, and comes out
again with its link; the value offers the field's choices."""
from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from deskbase.objects.errors import QueryError
from deskbase.views.app import create_app
from deskbase.views.filter_builder import filterable, with_condition

from .test_web import sign_in


@pytest.fixture
def client(demo_store):
    with TestClient(create_app(demo_store), follow_redirects=False) as test_client:
        sign_in(test_client, "cmartin", "demo-password")
        yield test_client


def _filter_of(response) -> str:
    return parse_qs(urlsplit(response.headers["location"]).query).get("f", [""])[0]


def test_a_picked_condition_joins_the_filter_in_the_address(client):
    added = client.get("/v/open_tickets", params={"sort": "-id", "add_field": "priority", "add_op": "eq",
                                                  "add_value": "urgent"})
    assert added.status_code == 303 and _filter_of(added) == "{priority: urgent}"
    assert parse_qs(urlsplit(added.headers["location"]).query)["sort"] == ["-id"]
    again = client.get("/v/open_tickets", params={"f": "{priority: urgent}", "add_field": "priority",
                                                  "add_op": "eq", "add_value": "very_high"})
    assert _filter_of(again) == "{priority: [urgent, very_high]}"          # a second value: one of them
    since = client.get("/v/open_tickets", params={"f": _filter_of(again), "add_field": "reported_at",
                                                  "add_op": "gte", "add_value": "2026-01-01"})
    assert _filter_of(since) == "{priority: [urgent, very_high], reported_at: {gte: 2026-01-01}}"


def test_the_list_shows_each_condition_as_a_sentence_with_a_link_that_takes_it_out(client, demo_store):
    extra = "{priority: [urgent, very_high], status: {ne: awaiting_pickup}}"
    page = client.get("/v/open_tickets", params={"f": extra})
    sentences = [html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", s))).strip()
                 for s in re.findall(r'<ul class="conditions"[^>]*>(.*?)</ul>', page.text, re.S)[0].split("</li>")
                 if s.strip()]
    assert sentences[0].startswith("Priority is one of Urgent, Very high")
    assert sentences[1].startswith("Status is not Awaiting pickup")
    remove = html.unescape(re.search(r'<a href="([^"]+)" class="quiet" title="Remove" aria-label="Remove: Priority',
                                     page.text).group(1))
    assert parse_qs(urlsplit(remove).query)["f"] == ["{status: {ne: awaiting_pickup}}"]
    view_filter = demo_store.definitions.views["open_tickets"].filter
    expected = demo_store.read(lambda s: s.count("ticket", {"all": [
        view_filter, {"priority": ["urgent", "very_high"]}, {"status": {"ne": "awaiting_pickup"}}]}))
    shown = re.search(r"of (\d+)|Nothing matches", page.text)
    assert (int(shown.group(1)) if shown.group(1) else 0) == expected


def test_the_value_offers_the_choices_of_the_field_picked(client):
    priorities = client.get("/v/open_tickets/condition", params={"add_field": "priority"}).text
    assert '<select name="add_value"' in priorities and '<option value="urgent">Urgent</option>' in priorities
    date = client.get("/v/open_tickets/condition", params={"add_field": "reported_at"}).text
    assert '<input type="date" name="add_value"' in date
    unknown = client.get("/v/open_tickets/condition", params={"add_field": "no_such_field"}).text
    assert '<input name="add_value"' in unknown


def test_a_condition_that_does_not_read_says_so_and_keeps_the_list(client):
    page = client.get("/v/open_tickets", params={"f": "{priority: urgent}", "add_field": "priority",
                                                 "add_op": "gte", "add_value": ""})
    assert page.status_code == 200 and "The condition was not added: a value is needed" in html.unescape(page.text)


def test_hidden_fields_and_files_are_not_offered(demo_store):
    ticket = demo_store.definitions.type("ticket")
    offered = dict(filterable(ticket, frozenset({"estimated_cost"}), "en"))
    assert "priority" in offered and "estimated_cost" not in offered and "attachments" not in offered
    with pytest.raises(QueryError):
        with_condition("", ticket, "attachments", "sideways", "x")


def test_the_watchers_of_a_list_are_filtered_by_login_even_one_made_of_digits(client, demo_store):
    assert with_condition("", demo_store.definitions.type("ticket"), "watchers", "eq", "1024") == "{watchers: '1024'}"
    added = client.get("/v/open_tickets", params={"add_field": "watchers", "add_op": "eq", "add_value": "cmartin"})
    listed = client.get(added.headers["location"]).text
    followed = demo_store.read(lambda s: [r.number for r in s.query(
        "ticket", {"watchers": "cmartin", "status": {"not_in": ["resolved", "rejected", "cancelled", "closed"]}},
        limit=None).records])
    shown = set(re.findall(r'href="/r/(T-\d{6})"', listed))
    assert followed and shown <= set(followed) and len(shown) == min(len(followed), 25)   # one page
