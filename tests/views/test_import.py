"""Excel import of reference data (P11): columns named by field or label, refs by number or
title, a report per row and field, and nothing written when any row is refused."""
from __future__ import annotations

import io
import re

import pytest
from openpyxl import Workbook
from starlette.testclient import TestClient

from deskbase.views.app import create_app
from deskbase.views.imports import NothingImported, import_rows

from .test_web import sign_in


def sheet(rows) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def count(store, type_name: str) -> int:
    return store.read(lambda s: s.count(type_name))


def test_contacts_are_imported_with_their_organization_by_title(demo_store):
    organization = demo_store.read(lambda s: dict(s.query("organization", limit=1).records[0].values))
    before = count(demo_store, "contact")
    report = import_rows(demo_store, "contact", sheet([
        ["Name", "E-mail", "Organisation", "kind"],           # labels in either language, or field names
        ["Léa Martin", "lea@example.org", organization["name"], "requester"],
        ["Tomás Silva", "tomas@example.org", None, "partner"],
    ]))
    assert len(report.numbers) == 2 and count(demo_store, "contact") == before + 2
    lea = demo_store.read(lambda s: dict(s.find(report.numbers[0]).values))
    assert (lea["name"], lea["organization"], lea["kind"]) == ("Léa Martin", organization["id"], "requester")


def test_one_bad_row_imports_nothing_and_the_report_names_each_problem(demo_store):
    before = count(demo_store, "contact")
    with pytest.raises(NothingImported) as refused:
        import_rows(demo_store, "contact", sheet([
            ["name", "email", "organization"],
            ["Good One", "good@example.org", None],
            [None, "nameless@example.org", None],
            ["Bad Mail", "not-an-address", "No Such Company"],
        ]))
    rows = {(row, name) for row, name, _ in refused.value.problems}
    assert rows == {(3, "name"), (4, "email"), (4, "organization")}
    assert count(demo_store, "contact") == before


def test_an_unknown_column_or_a_file_that_is_no_workbook_is_refused(demo_store):
    with pytest.raises(NothingImported, match="column 2 names no field"):
        import_rows(demo_store, "contact", sheet([["name", "shoe size"], ["A", 42]]))
    with pytest.raises(NothingImported, match="not an Excel workbook"):
        import_rows(demo_store, "contact", b"name;email\nA;a@b.c\n")


def test_importing_from_the_web_page(demo_store):
    client = TestClient(create_app(demo_store), follow_redirects=False)
    sign_in(client, "cmartin", "demo-password")
    page = client.get("/import/asset")
    assert page.status_code == 200
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    organization = demo_store.read(lambda s: s.query("organization", limit=1).records[0].number)
    good = sheet([["name", "organization"], ["Scanner 3", organization]])
    done = client.post("/import/asset", data={"csrf": token},
                       files={"sheet": ("assets.xlsx", good, "application/octet-stream")})
    assert done.status_code == 303 and "1 record imported. AST-" in client.get(done.headers["location"]).text
    bad = sheet([["name", "organization"], [None, organization]])
    refused = client.post("/import/asset", data={"csrf": token},
                          files={"sheet": ("assets.xlsx", bad, "application/octet-stream")})
    assert refused.status_code == 422 and "Nothing was imported" in refused.text and "<td>2</td>" in refused.text
    sign_in(client, "ngirard", "demo-password")                  # a customer may not create assets
    assert client.get("/import/asset").status_code == 403
