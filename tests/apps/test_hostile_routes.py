"""Every route of the web application, called with hostile values in each part of its path
and in the query and form parameters people can type or forge, signed out, as a customer
and as a supervisor: nothing answers 5xx, and no HTML page carries the markup sent
unescaped (a reflected script). Every response carries the page-safety headers."""
from __future__ import annotations

import re

import pytest
from demo_web import csrf_of, sign_in
from starlette.routing import Mount
from starlette.testclient import TestClient

from deskbase.views.app import create_app

HOSTILE = ['<img src=x onerror=alert(1)>', '"><svg onload=alert(2)>', "javascript:alert(3)//",
           "{{7*7}}<script>alert(4)</script>"]
MARKUP = re.compile(r"<img src=x onerror|<svg onload|<script>alert")
QUERY = ("q", "f", "sort", "next", "page", "view", "add_value", "value", "field", "filter", "offset", "limit")


def routes(app) -> list[tuple[str, set[str]]]:
    found = []

    def walk(items, prefix=""):
        for route in items:
            if isinstance(route, Mount):
                walk(route.routes, prefix + route.path)
            else:
                found.append((prefix + route.path, set(route.methods or ())))
    walk(app.routes)
    return found


def filled(path: str, value: str) -> str:
    """The path with every parameter replaced by `value` (a real record number kept for one
    of them, so that the routes behind a found record are reached too)."""
    from urllib.parse import quote
    return re.sub(r"\{[^}]+\}", lambda _: quote(value, safe=""), path)


@pytest.fixture(scope="module")
def app(demo_store):
    return create_app(demo_store)


@pytest.mark.parametrize("login", [None, "psvoboda", "cmartin", "admin"])
def test_hostile_paths_queries_and_forms_never_answer_5xx_nor_reflect_markup(app, demo_store, login):
    number = demo_store.read(lambda s: s.query("ticket", {}, "id", limit=1).records[0].number)
    tried = escaped = 0
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as web:
        token = (sign_in(web, login, *(["demo-admin-2026"] if login == "admin" else [])) if login
                 else csrf_of(web.get("/login").text))
        for path, methods in routes(app):
            if path == "/logout":                           # would end the session the rest is tried in
                continue
            for value in HOSTILE:
                targets = {filled(path, value)}
                if "{number}" in path:                   # the parts after a record that exists
                    targets.add(filled(path.replace("{number}", number), value))
                for target in targets:
                    query = {name: value for name in QUERY}
                    answers = []
                    if "GET" in methods:
                        answers.append(web.get(target, params=query))
                        answers.append(web.get(target, params=query, headers={"HX-Request": "true"}))
                    if "POST" in methods:
                        answers.append(web.post(target, params=query, data={"csrf": token, **query}))
                    if "PATCH" in methods:
                        answers.append(web.patch(target, json=query))
                    for answer in answers:
                        tried += 1
                        where = f"{answer.request.method} {target} as {login}"
                        assert answer.status_code < 500, (where, answer.status_code, answer.text[:300])
                        if "html" in answer.headers.get("content-type", ""):
                            assert not MARKUP.search(answer.text), (where, MARKUP.search(answer.text).group(0))
                            escaped += "&lt;img src=x onerror" in answer.text
                        assert answer.headers.get("x-content-type-options") == "nosniff", where
                        assert "content-security-policy" in answer.headers, where
    print(f"{tried} hostile requests as {login}: none 5xx, none reflected ({escaped} said it back escaped)")
    assert tried > 300 and (escaped > 0 or login is None)   # the values did reach pages that show them
