"""Navigation and home per role (the roles' `menu:` and `home:`): a few labelled sections
instead of fifty links, the other lists folded; the home page shows the role's chosen
counts and charts, each chart with colours of its own and people by name."""
from __future__ import annotations

import re

import pytest
from demo_web import sign_in
from starlette.testclient import TestClient

from deskbase.views.app import create_app


@pytest.fixture
def web(demo_store):
    with TestClient(create_app(demo_store), follow_redirects=False) as client:
        yield client


def _menu(page: str) -> dict[str, list[str]]:
    nav = page[page.index('<nav class="side"'):page.index("</nav>")]
    nav = nav.split('<details class="menu-new"')[0]
    sections = {}
    for heading, body in re.findall(r'class="side-title">([^<]+)</(?:h2|summary)>\s*<ul>(.*?)</ul>', nav, re.S):
        sections[heading] = re.findall(r'<a href="/v/([a-z_]+)">', body)
    return sections


def test_a_supervisor_reads_a_few_sections_and_the_rest_folded(web):
    sign_in(web, "cmartin")
    menu = _menu(web.get("/").text)
    assert list(menu)[:7] == ["My work", "Team", "Quality", "Statistics", "Customers", "Billing", "Knowledge"]
    assert menu["My work"][0] == "my_tickets" and "canned_replies" in menu["Knowledge"]
    assert "Other lists" in menu and '<details class="menu-rest">' in web.get("/").text
    shown = sum(len(views) for name, views in menu.items() if name != "Other lists")
    assert shown <= 40


def test_the_home_page_shows_the_roles_chosen_lists_in_order_and_people_by_name(web, demo_store):
    sign_in(web, "cmartin")
    home = web.get("/").text
    tiles = re.findall(r'<a href="/v/([a-z_]+)"><strong>', home)
    chosen = list(demo_store.definitions.roles["supervisor"]["home"])
    assert tiles == chosen
    figures = re.findall(r'<figure class="chart">(.*?)</figure>', home, re.S)
    activity = next(figure for figure in figures if 'href="/v/team_activity"' in figure)
    assert "Sophie Bernard" in activity and ">sbernard<" not in activity
    assert len(set(re.findall(r'class="bar bar-([a-z]+)"', activity))) > 1          # a colour per person


def test_a_customer_reads_their_lists_in_the_order_of_their_day(web):
    sign_in(web, "jdupont")
    page = web.get("/").text
    order = re.findall(r'<li><a href="/v/([a-z_]+)">', page[page.index('<nav class="side"'):page.index("</nav>")])
    assert order[:3] == ["waiting_for_us", "my_organization_open_tickets", "my_organization_tickets"]
