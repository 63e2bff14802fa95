"""The main flows in a real Chromium: a technician signs in, finds a ticket, takes it with
the time spent and sees it move on; lists sort without reloading the page; a form offers
subcategories only under the chosen category and keeps what was typed when it refuses."""
from __future__ import annotations

import re


def sign_in(page, live_server, login: str, password: str = "demo-password") -> None:
    page.goto(f"{live_server.url}/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_a_technician_takes_a_ticket_and_logs_the_time_spent(page, live_server, demo_store):
    sign_in(page, live_server, "tdvorak")
    page.click("text=Tickets awaiting pickup")
    page.wait_for_selector("table.records tbody tr")
    first = page.locator("table.records tbody tr").first.locator("a").first
    number = first.inner_text().strip()
    first.click()
    page.wait_for_url(re.compile(rf".*/r/{number}$"))
    assert re.search(r"Awaiting pickup|Unassigned", page.inner_text("dl.fields"))
    page.click("details:has(summary:text-is('Take')) summary")
    page.fill("details:has(summary:text-is('Take')) input[name=time_spent]", "25m")
    page.click("details:has(summary:text-is('Take')) button[type=submit]")
    page.wait_for_url(re.compile(rf".*/r/{number}$"))
    assert "In progress" in page.inner_text("dl.fields")
    assert "transition take" in page.inner_text("section.history")
    values = demo_store.read(lambda s: dict(s.find(number).values))
    assert values["status"] == "in_progress" and values["assignee"] == "tdvorak"
    newest = demo_store.read(lambda s: dict(s.query("work_entry", {"ticket": values["id"]}, "-id", limit=1)
                                            .records[0].values))
    assert newest["duration"] == 25 * 60 and newest["performer"] == "tdvorak"


def test_clicking_a_column_sorts_the_table_without_reloading_the_page(page, live_server):
    sign_in(page, live_server, "cmartin")
    page.goto(f"{live_server.url}/v/all_tickets")
    page.evaluate("window.stayed = true")                     # gone if the whole page reloads
    page.click("table.records th a:text-is('Number')")
    page.wait_for_url(re.compile(r".*sort=id.*"))
    page.click("table.records th a:has-text('Number')")
    page.wait_for_url(re.compile(r".*sort=-id.*"))
    numbers = [int(n) for n in re.findall(r"T-(\d+)", page.inner_text("table.records tbody"))]
    assert numbers == sorted(numbers, reverse=True) and numbers
    assert page.evaluate("window.stayed") is True


def test_a_form_offers_subcategories_under_the_chosen_category(page, live_server, demo_store):
    sign_in(page, live_server, "cmartin")
    page.goto(f"{live_server.url}/new/ticket")
    category = demo_store.read(lambda s: next(r for r in s.query("category", {"parent": None}, limit=None).records
                                              if s.count("category", {"parent": r.id})))
    children = demo_store.read(lambda s: {str(r.id) for r in s.query("category", {"parent": category.id},
                                                                       limit=None).records})
    assert page.locator("#input-subcategory option[value]:not([value=''])").count() == 0
    page.select_option("#input-category", str(category.id))
    page.wait_for_function("document.querySelectorAll('#input-subcategory option').length > 1")
    offered = set(page.eval_on_selector_all("#input-subcategory option", "els => els.map(e => e.value)")) - {""}
    assert offered == children
    page.fill("#input-title", "Label printer")
    page.fill("#input-description", "typed before the mistake")
    page.fill("#input-remaining_effort", "soon")                # not a duration: refused, nothing lost
    page.click("form.record-form button[type=submit]")
    page.wait_for_selector("#error-remaining_effort")
    assert "is not a duration" in page.inner_text("#error-remaining_effort")
    assert page.input_value("#input-description") == "typed before the mistake"
    assert page.input_value("#input-category") == str(category.id)


def test_a_customer_opens_a_ticket_in_the_portal_and_replies(page, live_server, demo_store):
    sign_in(page, live_server, "psvoboda")
    assert page.locator("body.portal").count() == 1
    page.click(".side a[href='/new/ticket']")                 # the `New` link of the portal
    page.wait_for_url(re.compile(r".*/new/ticket$"))
    assert page.locator("#input-organization").count() == 0   # their organization, filled in
    page.fill("#input-title", "Čtečka čárových kódů nereaguje")
    page.fill("#input-description", "Sklad 2, od 8:00.")
    page.click("form.record-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/r/T-\d+$"))
    number = page.url.rsplit("/", 1)[1]
    assert "Awaiting pickup" in page.inner_text("dl.fields")
    page.click("section.related a[href^='/new/comment']")
    page.fill("#input-body", "Přikládáme fotku displeje.")
    page.click("form.record-form button[type=submit]")
    page.wait_for_url(re.compile(rf".*/r/{number}$"))
    assert "Přikládáme fotku displeje." in page.inner_text("main")
    ticket_id = demo_store.read(lambda s: s.find(number).id)
    replies = demo_store.read(lambda s: [dict(r.values) for r in s.query("comment", {"ticket": ticket_id}).records])
    assert [(r["author"], r["author_kind"], r["visibility"]) for r in replies] == [("psvoboda", "customer", "public")]


def test_a_manager_filters_a_list_exports_it_and_the_workbook_matches_the_screen(page, live_server):
    from io import BytesIO

    from openpyxl import load_workbook
    sign_in(page, live_server, "cmartin")
    page.goto(f"{live_server.url}/v/open_tickets")
    page.fill("input[name=f]", "{priority: [urgent, very_high]}")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*f=.*"))
    page.wait_for_selector("table.records tbody tr")
    shown = re.findall(r"T-\d+", page.inner_text("table.records tbody"))
    total = int(re.search(r"of (\d+)", page.inner_text("p.count")).group(1))
    assert shown and total <= 25                        # one page: every row is on the screen
    with page.expect_download() as waiting:
        page.click("a.export")
    workbook = load_workbook(BytesIO(open(waiting.value.path(), "rb").read()), read_only=True)
    rows = list(workbook.active.iter_rows(values_only=True))
    assert [str(row[0]) for row in rows[1:]] == shown
    headers = [cell.strip() for cell in page.eval_on_selector_all("table.records thead th",
                                                                  "els => els.map(e => e.innerText)")]
    assert list(rows[0]) == [header.rstrip(" ▲▼") for header in headers]
