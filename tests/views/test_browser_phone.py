"""In a real Chromium, on the demo: every main page of each role fits a 390 px phone and a
1366 px screen without sideways scrolling; on the phone the menu folds behind a button and
list rows read as cards."""
from __future__ import annotations

import pytest

from .test_browser import sign_in

ROLES = {
    "sbernard": ("demo-password", ["/", "/v/my_tickets", "/v/open_tickets", "/new/ticket", "/new/comment", "/account"]),
    "cmartin": ("demo-password", ["/", "/v/all_tickets", "/v/canned_replies", "/import/ticket", "/new/canned_reply"]),
    "jdupont": ("demo-password", ["/", "/new/ticket"]),
    "admin": ("demo-admin-2026", ["/"]),
}


def _a_ticket_of(demo_store, login: str) -> str:
    from deskbase.rules.access.identity import identity_of
    who = identity_of(demo_store, login)
    return demo_store.read(lambda s: s.query("ticket", sort="-id", limit=1).records[0].number, identity=who)


@pytest.mark.parametrize("width, height", [(390, 844), (1366, 768)])
@pytest.mark.parametrize("login", sorted(ROLES))
def test_no_page_is_wider_than_the_screen(chromium, live_server, demo_store, login, width, height):
    password, urls = ROLES[login]
    page = chromium.new_page(viewport={"width": width, "height": height})
    try:
        sign_in(page, live_server, login, password)
        for url in urls + [f"/r/{_a_ticket_of(demo_store, login)}"]:
            page.goto(f"{live_server.url}{url}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{url} is wider than {width} px"
    finally:
        page.close()


def test_on_a_phone_the_menu_folds_behind_a_button_and_rows_are_cards(chromium, live_server):
    page = chromium.new_page(viewport={"width": 390, "height": 844})
    try:
        sign_in(page, live_server, "sbernard")
        assert not page.is_visible("nav.side")
        page.click("a.menu-button")
        assert page.is_visible("nav.side a:has-text('My tickets')")
        page.click("nav.side a:has-text('My tickets')")
        row = page.locator("table.records tbody tr").first
        assert row.evaluate("row => getComputedStyle(row).display") == "block"
        title = row.locator("td[data-label='Title']")
        assert title.evaluate("cell => getComputedStyle(cell, '::before').content") == '"Title: "'  # labelled
    finally:
        page.close()
