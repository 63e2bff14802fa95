"""Signing in to the demo through the web pages, for the scenario tests."""
from __future__ import annotations

import re

from starlette.testclient import TestClient

DEMO_PASSWORD = "demo-password"


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def sign_in(client: TestClient, login: str) -> str:
    """Sign a demo account in; the session's form token."""
    page = client.get("/login")
    response = client.post("/login", data={"login": login, "password": DEMO_PASSWORD, "csrf": csrf_of(page.text)})
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)
