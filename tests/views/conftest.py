"""A live server on loopback and a real Chromium driven by Playwright, for the browser tests.
Outside CI a missing Chromium or Playwright skips those tests with a reason; under CI=true
it fails."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers.required import skip_or_fail
from servers.web import LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def live_server(demo_store) -> Iterator[LiveServer]:
    server = LiveServer(demo_store).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed: pip install -e '.[test]'")
    if not Path(CHROMIUM).exists():
        skip_or_fail("Chromium is not installed: apt-get install chromium (make test does it as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


def _browser_page(chromium, zone: str = "Europe/Paris"):
    """A page of its own browser context, by default in the demo's zone (times as the server writes them)."""
    context = chromium.new_context(locale="en-GB", viewport={"width": 1280, "height": 900}, timezone_id=zone)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    return context, opened


@pytest.fixture
def page(chromium):
    context, opened = _browser_page(chromium)
    yield opened
    context.close()


@pytest.fixture
def page_in_new_york(chromium):
    """A browser whose clock reads New York time."""
    context, opened = _browser_page(chromium, "America/New_York")
    yield opened
    context.close()


@pytest.fixture
def other_page(chromium):
    """A second person's browser (cookies of its own) beside `page`."""
    context, opened = _browser_page(chromium)
    yield opened
    context.close()
