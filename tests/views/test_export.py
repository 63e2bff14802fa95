"""Excel export of list views: the workbook holds exactly the rows of the list as the person
sees it (every page, same order, same columns), typed cells, a frozen header with an
autofilter; large exports go through a progress page and only their owner downloads them."""
from __future__ import annotations

import html
import io
import re
import time
from dataclasses import replace
from datetime import date, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from openpyxl import load_workbook
from starlette.testclient import TestClient

from deskbase.rules.access.identity import create_account, identity_of
from deskbase.views.app import create_app
from deskbase.views.export import EXPORTS_KEY, STALLED, jobs_of
from deskbase.views.lists import read_listing

from .test_web import sign_in

FORMULA_TITLE = "=HYPERLINK(\"http://evil.example\", \"click\")"


@pytest.fixture(scope="module")
def helpdesk_store(demo_store):
    """The demo, with a French-speaking supervisor and a ticket whose title looks like a formula."""
    create_account(demo_store, "claire", name="Claire en français", password="demo-password", roles=["supervisor"],
                   language="fr")
    demo_store.run(lambda s: s.create("ticket", {"title": FORMULA_TITLE, "kind": "service_request",
                                                 "description": "a title that looks like a formula",
                                                 "criticality": "low", "channel": "email",
                                                 "organization": s.query("organization", limit=1).records[0].id}))
    return demo_store


@pytest.fixture
def app(helpdesk_store):
    return create_app(helpdesk_store)


def client_for(app, login: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    assert sign_in(client, login, "demo-password").status_code == 303
    return client


def list_rows(client: TestClient, url: str) -> tuple[list[str], list[str]]:
    """The column titles and the record numbers of every page of a list, as the page shows them."""
    numbers, page_url, titles = [], url, None
    while page_url:
        html = client.get(page_url).text
        if titles is None:
            titles = [re.sub(r"<[^>]+>|[▲▼]", "", t).strip() for t in re.findall(r"<th[^>]*>(.*?)</th>", html, re.S)]
        numbers += re.findall(r'<td[^>]*><a href="/r/([^"]+)">', html)
        found = re.search(r'href="([^"]+)"[^>]*rel="next"', html)
        page_url = found.group(1).replace("&amp;", "&") if found else None
    return titles, numbers


def workbook_of(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument")
    return load_workbook(io.BytesIO(response.content)).active


def test_the_export_holds_every_page_of_the_list_in_its_order_and_columns(app):
    client = client_for(app, "sbernard")
    query = "sort=-reported_at&q=&f={priority: {lte: medium}}"
    titles, numbers = list_rows(client, f"/v/open_tickets?{query}")
    assert len(numbers) > 25                                   # more than one page
    sheet = workbook_of(client.get(f"/v/open_tickets/export.xlsx?{query}"))
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == titles
    assert [row[0] for row in rows[1:]] == numbers


def test_the_list_page_links_to_the_export_of_what_it_shows(app):
    client = client_for(app, "sbernard")
    html = client.get("/v/open_tickets?sort=-id&q=imprimante").text
    link = re.search(r'class="export" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert link.startswith("/v/open_tickets/export.xlsx?") and "sort=-id" in link and "q=imprimante" in link


SORTS = st.lists(st.sampled_from(["id", "reported_at", "priority", "status", "organization", "assignee", "kind"]),
                 min_size=1, max_size=3, unique=True)
STATUSES = ["awaiting_pickup", "in_progress", "resolved", "closed", "cancelled"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sort=SORTS, descending=st.lists(st.booleans(), min_size=3, max_size=3),
       statuses=st.lists(st.sampled_from(STATUSES), max_size=3, unique=True), text=st.sampled_from(["", "imprimante"]))
def test_export_rows_equal_the_list_views_rows(app, sort, descending, statuses, text):
    client = client_for(app, "cmartin")
    query = urlencode({"sort": ",".join(("-" if down else "") + name for name, down in zip(sort, descending)),
                       "q": text, "f": "{status: [%s]}" % ", ".join(statuses) if statuses else ""})
    _, numbers = list_rows(client, f"/v/all_tickets?{query}")
    sheet = workbook_of(client.get(f"/v/all_tickets/export.xlsx?{query}"))
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == numbers


def test_a_filter_that_does_not_run_exports_nothing_and_says_why(app):
    client = client_for(app, "sbernard")
    response = client.get("/v/open_tickets/export.xlsx?f={priority: {lte: normal}}")
    assert response.status_code == 422 and "is not one of" in response.text


def test_cells_are_typed_dates_numbers_durations_in_hours_and_labels(app, helpdesk_store):
    client = client_for(app, "cmartin")
    sheet = workbook_of(client.get("/v/billable_work_this_month/export.xlsx"))
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    assert len(rows) > 1
    dates, durations = header.index("Date"), header.index("Duration")
    assert all(isinstance(row[dates], (date, datetime)) for row in rows[1:])
    stored = helpdesk_store.read(lambda s: [r["duration"] for r in s.query(
        "work_entry", {"billable": True, "date": {"gte": "$today-30d"}}, ["organization", "-date"], limit=None).records])
    assert [row[durations] for row in rows[1:]] == pytest.approx([seconds / 3600 for seconds in stored])
    hours = [row[durations] for row in rows[1:] if row[durations] is not None]
    assert all(isinstance(h, (int, float)) and not isinstance(h, bool) for h in hours)
    assert any(h != int(h) for h in hours)                                 # 1.5, not 1h30m

    tickets = workbook_of(client.get("/v/all_tickets/export.xlsx?sort=-id"))
    first = [cell for cell in next(tickets.iter_rows(min_row=2, max_row=2))]
    columns = [cell.value for cell in next(tickets.iter_rows(max_row=1))]
    reported = first[columns.index("Reported at")]
    assert reported.is_date and isinstance(reported.value, datetime)
    assert first[columns.index("Status")].value == "Awaiting pickup"       # the label, not `awaiting_pickup`


def test_datetimes_are_the_applications_wall_clock(app, helpdesk_store):
    client = client_for(app, "cmartin")
    sheet = workbook_of(client.get("/v/all_tickets/export.xlsx?sort=id"))
    columns = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    row = next(sheet.iter_rows(min_row=2, max_row=2, values_only=True))
    reported = row[columns.index("Reported at")]
    stored = helpdesk_store.read(lambda s: s.find(row[0])["reported_at"])
    wall = stored.astimezone(ZoneInfo("Europe/Paris")).replace(tzinfo=None)
    assert abs((reported - wall).total_seconds()) < 0.001


def test_labels_and_titles_are_in_the_users_language(app):
    client = client_for(app, "claire")
    rows = list(workbook_of(client.get("/v/all_tickets/export.xlsx?sort=-id")).iter_rows(values_only=True))
    assert rows[0][0] == "Numéro" and "Statut" in rows[0]
    assert rows[1][rows[0].index("Statut")] == "Attente de prise en charge"


def test_the_header_is_frozen_with_an_autofilter_over_the_rows(app):
    client = client_for(app, "sbernard")
    sheet = workbook_of(client.get("/v/open_tickets/export.xlsx"))
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:I{sheet.max_row}"
    assert all(cell.font.b for cell in next(sheet.iter_rows(max_row=1)))


def test_text_that_looks_like_a_formula_stays_text(app):
    client = client_for(app, "cmartin")
    sheet = workbook_of(client.get("/v/all_tickets/export.xlsx?sort=-id"))
    columns = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    title = [row[columns.index("Title")] for row in sheet.iter_rows(min_row=2)
             if row[columns.index("Title")].value == FORMULA_TITLE]
    assert title and title[0].data_type == "s"


def test_a_customer_exports_only_their_organizations_rows_and_never_hidden_columns(app, helpdesk_store):
    client = client_for(app, "psvoboda")
    titles, numbers = list_rows(client, "/v/my_organization_tickets")
    sheet = workbook_of(client.get("/v/my_organization_tickets/export.xlsx"))
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == titles and [row[0] for row in rows[1:]] == numbers
    theirs = helpdesk_store.read(lambda s: {r.number for r in s.query(
        "ticket", {"organization": identity_of(helpdesk_store, "psvoboda").organization}, limit=None).records})
    assert numbers and set(numbers) == theirs
    assert client.get("/v/all_tickets/export.xlsx").status_code == 404          # not one of their lists


def test_a_hidden_field_is_neither_a_column_nor_a_sort_nor_a_filter(app, helpdesk_store):
    definitions = helpdesk_store.definitions
    customer = identity_of(helpdesk_store, "psvoboda")
    view = replace(definitions.views["my_organization_tickets"],
                   columns=("id", "title", "remaining_effort", "internal_notes"))
    assert read_listing(definitions, view, {}, customer).columns == ("id", "title")
    refused = read_listing(definitions, view, {"sort": "-remaining_effort"}, customer)
    assert refused.problem and refused.sort == "-reported_at"
    refused = read_listing(definitions, view, {"f": "{any: [{internal_notes: x}]}"}, customer)
    assert refused.problem and refused.filter == view.filter
    client = client_for(app, "psvoboda")
    assert client.get("/v/my_organization_tickets/export.xlsx?sort=remaining_effort").status_code == 422


def test_a_large_export_runs_as_a_job_only_its_owner_downloads(app, helpdesk_store):
    jobs_of(app.state.web).threshold = 10
    client = client_for(app, "cmartin")
    started = client.get("/v/all_tickets/export.xlsx?sort=-id")
    assert started.status_code == 303
    progress_url = started.headers["location"]
    assert re.fullmatch(r"/exports/[0-9a-f]{32}", progress_url)
    page = client.get(progress_url).text
    assert "<progress" in page
    for _ in range(100):
        fragment = client.get(progress_url, headers={"HX-Request": "true"}).text
        if "/file" in fragment:
            break
        assert 'hx-trigger="every 1s"' in fragment and "<html" not in fragment
        time.sleep(0.1)
    assert 'hx-trigger' not in fragment
    download = re.search(r'href="(/exports/[0-9a-f]+/file)"', fragment).group(1)
    _, numbers = list_rows(client, "/v/all_tickets?sort=-id")
    sheet = workbook_of(client.get(download))
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == numbers

    other = client_for(app, "jroux")
    assert other.get(download).status_code == 404
    assert other.get(progress_url).status_code == 404

    # Another server process in front of the same database (behind one address) shows
    # the same progress page and serves the same file: both are kept in the database.
    elsewhere = client_for(create_app(helpdesk_store), "cmartin")
    assert "/file" in elsewhere.get(progress_url, headers={"HX-Request": "true"}).text
    again = workbook_of(elsewhere.get(download))
    assert [row[0] for row in again.iter_rows(min_row=2, values_only=True)] == numbers


def test_an_export_whose_process_stopped_says_so_instead_of_waiting_for_ever(app, helpdesk_store):
    jobs = jobs_of(app.state.web)
    job = jobs.start("cmartin", "stopped.xlsx", 100, lambda job, path: time.sleep(3600))
    helpdesk_store.run(lambda s: s.connection.root()[EXPORTS_KEY][job.id].update(updated_at=time.time() - STALLED - 1))
    fragment = client_for(app, "cmartin").get(f"/exports/{job.id}", headers={"HX-Request": "true"}).text
    assert "The export failed: it stopped: the server making it was stopped or restarted" in html.unescape(fragment)
    assert "hx-trigger" not in fragment
