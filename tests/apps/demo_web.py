"""Signing in through the web pages, and reading what the SMTP server received, for the
scenario tests."""
from __future__ import annotations

import re
from email.utils import getaddresses

from starlette.testclient import TestClient

DEMO_PASSWORD = "demo-password"


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def sign_in(client: TestClient, login: str, password: str = DEMO_PASSWORD) -> str:
    """Sign an account in (a demo one by default); the session's form token."""
    page = client.get("/login")
    response = client.post("/login", data={"login": login, "password": password, "csrf": csrf_of(page.text)})
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def mail_to(smtp_server, address: str) -> list:
    """The messages the SMTP server received for an address, oldest first."""
    return [r.message for r in smtp_server.received
            if address in [found for _, found in getaddresses([r.message["To"] or ""])]]


def text_of(message) -> str:
    """The plain text of a received message."""
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""
