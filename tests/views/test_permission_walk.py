"""A walk through every list page, export, record page (its timeline too) and API list as
each demo account: no record outside the account's read scope is ever shown, counted or
exported, and a record outside it does not exist for them, not even to write on."""
from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook
from starlette.testclient import TestClient

from deskbase.rules.access.identity import identity_of
from deskbase.rules.access.scopes import decide
from deskbase.views.api_keys import add_key
from deskbase.views.app import create_app

from .test_web import sign_in

NUMBER = re.compile(r'href="/r/([A-Z]+-\d+)"')


@pytest.fixture(scope="module")
def walk(demo_store):
    return TestClient(create_app(demo_store), follow_redirects=False)


def readable(store, identity, numbers) -> set[str]:
    def work(session):
        allowed = set()
        for number in numbers:
            record = session.find(number)
            typedef = session.definitions.type(record.type_name)
            if decide(identity, "read", typedef, record, definitions=session.definitions,
                      context=session.context(record.values)):
                allowed.add(number)
        return allowed
    return store.read(work)


DEMO_LOGINS = ("cmartin", "jroux", "lfontaine", "icarvalho", "sbernard", "khaddad", "tdvorak", "ngirard",
               "jdupont", "psvoboda", "jcerny")


@pytest.mark.parametrize("login", DEMO_LOGINS)
def test_nothing_outside_the_scope_is_shown_counted_or_exported(walk, demo_store, login):
    sign_in(walk, login, "demo-password")
    identity = identity_of(demo_store, login)
    views = re.findall(r'href="/v/([a-z_]+)"', walk.get("/").text)
    assert views, f"{login} is offered no list"
    for view in views:
        page = walk.get(f"/v/{view}")
        assert page.status_code == 200, (login, view)
        shown = set(NUMBER.findall(page.text))
        assert shown == readable(demo_store, identity, shown), (login, view)
        counted = re.search(r"of (\d+)", page.text)
        definition = demo_store.definitions.views[view]
        scoped = demo_store.read(lambda s: s.count(definition.type, definition.filter), identity=identity)
        assert (int(counted.group(1)) if counted else 0) == scoped, (login, view)
        export = walk.get(f"/v/{view}/export.xlsx")
        if export.status_code == 200 and export.headers["content-type"].startswith("application/vnd"):
            sheet = load_workbook(io.BytesIO(export.content), read_only=True).active
            rows = list(sheet.iter_rows(values_only=True))[1:]
            assert len(rows) == scoped, (login, view)


@pytest.mark.parametrize("login", ("sbernard", "ngirard", "psvoboda", "jroux"))
def test_a_record_outside_the_scope_answers_404_on_every_route(walk, demo_store, login):
    sign_in(walk, login, "demo-password")
    identity = identity_of(demo_store, login)
    numbers = demo_store.read(lambda s: [r.number for r in s.query("ticket", limit=None).records])
    hidden = sorted(set(numbers) - readable(demo_store, identity, numbers))[:15]
    assert hidden
    key = add_key(demo_store, f"walk-{login}", login)
    page = walk.get("/")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    before = demo_store.read(lambda s: [dict(s.find(n).values) for n in hidden])
    for number in hidden:
        assert walk.get(f"/r/{number}").status_code == 404
        assert walk.get(f"/r/{number}/edit").status_code == 404
        assert walk.get(f"/r/{number}/stopwatch").status_code == 404
        assert walk.post(f"/r/{number}/approval/costly_request", data={"csrf": token, "decision": "approve"}
                         ).status_code == 404
        assert walk.get(f"/r/{number}/inline/title").status_code == 404
        assert walk.post(f"/r/{number}/inline/title", data={"csrf": token, "title": "x"}).status_code == 404
        ticket_id = demo_store.read(lambda s: s.find(number).id)
        assert walk.post("/new/comment", data={"csrf": token, "ticket": str(ticket_id), "body": "walked in"}
                         ).status_code in (403, 422)
        assert walk.post(f"/r/{number}/fire/take", data={"csrf": token, "time_spent": "5m"}).status_code in (404, 422)
        assert walk.get(f"/api/v1/ticket/{number}", headers={"Authorization": f"Bearer {key}"}).status_code == 404
    listed = walk.get("/api/v1/ticket", params={"limit": 500}, headers={"Authorization": f"Bearer {key}"}).json()
    returned = {r["number"] for r in listed["records"]}
    assert returned == readable(demo_store, identity, returned) and not returned & set(hidden)
    assert demo_store.read(lambda s: [dict(s.find(n).values) for n in hidden]) == before     # nothing changed
    assert demo_store.read(lambda s: s.count("comment", {"text": "walked"})) == 0


@pytest.mark.parametrize("login", ("sbernard", "ngirard", "psvoboda", "jroux", "lfontaine"))
def test_a_record_page_shows_only_entries_and_records_the_reader_may_read(walk, demo_store, login):
    sign_in(walk, login, "demo-password")
    identity = identity_of(demo_store, login)
    tickets = demo_store.read(lambda s: [r.number for r in s.query("ticket", sort="-id", limit=40).records],
                              identity=identity)
    assert tickets
    linked = set()
    for number in tickets:
        page = walk.get(f"/r/{number}")
        assert page.status_code == 200
        linked |= set(NUMBER.findall(page.text)) - {number}
    assert linked == readable(demo_store, identity, linked)       # no internal comment, no other's work
