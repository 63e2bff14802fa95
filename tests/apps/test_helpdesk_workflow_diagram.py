"""The ticket's workflow as a state diagram on its page, for the staff (`page: {diagram}`):
the ticket's status filled in, and in bold exactly the transitions whose buttons the page
offers the reader; customers see their buttons, not the diagram."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

import pytest
from demo_web import sign_in
from starlette.testclient import TestClient

from deskbase.rules.access.identity import identity_of
from deskbase.rules.process.workflows import available_transitions
from deskbase.views.app import create_app

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def web(demo_store):
    with TestClient(create_app(demo_store), follow_redirects=False) as client:
        yield client


def first_ticket(store, login: str, where: dict) -> str:
    page = store.read(lambda session: session.query("ticket", where, "id", limit=1), identity=identity_of(store, login))
    return page.records[0].number


def diagram_of(page: str) -> ElementTree.Element | None:
    found = re.search(r'<details class="workflow-diagram".*?(<svg .*?</svg>)', page, re.S)
    return ElementTree.fromstring(found.group(1)) if found else None


def buttons_of(page: str) -> set[str]:
    return set(re.findall(r'action="/r/[^/]+/fire/([a-z_]+)"', page))


@pytest.mark.parametrize("login, where", [
    ("sbernard", {"assignee": "sbernard", "status": "in_progress"}),
    ("sbernard", {"status": "awaiting_pickup"}),
    ("jroux", {"status": "awaiting_pickup"}),
])
def test_staff_read_the_workflow_with_the_state_filled_and_their_transitions_in_bold(web, demo_store, login, where):
    number = first_ticket(demo_store, login, where)
    sign_in(web, login)
    page = web.get(f"/r/{number}").text
    diagram = diagram_of(page)
    assert diagram is not None
    current = [group.get("data-state") for group in diagram.iter(f"{SVG}g") if "current" in group.get("class", "")]
    assert current == [where["status"]]
    bold = {text.get("data-transition") for text in diagram.iter(f"{SVG}text")
            if "may-fire" in (text.get("class") or "")}
    identity = identity_of(demo_store, login)
    may_fire = {name for name, _, _ in demo_store.read(lambda session: available_transitions(session, number),
                                                       identity=identity)}
    assert bold == may_fire == buttons_of(page) and bold
    every = {text.get("data-transition") for text in diagram.iter(f"{SVG}text") if text.get("data-transition")}
    assert {"accept", "reopen", "resume_on_reply"} <= every - bold      # the rest is drawn, not in bold


def test_a_dispatcher_assigns_where_a_technician_takes(web, demo_store):
    number = first_ticket(demo_store, "jroux", {"status": "awaiting_pickup"})
    sign_in(web, "jroux")
    bold = {text.get("data-transition") for text in diagram_of(web.get(f"/r/{number}").text).iter(f"{SVG}text")
            if "may-fire" in (text.get("class") or "")}
    assert "assign" in bold and "take" not in bold


def test_a_customer_does_not_see_the_diagram(web, demo_store):
    number = first_ticket(demo_store, "jdupont", {"status": "resolved"})
    sign_in(web, "jdupont")
    page = web.get(f"/r/{number}").text
    assert buttons_of(page) >= {"accept", "dispute"}              # their buttons are there
    assert diagram_of(page) is None and "state-diagram" not in page
