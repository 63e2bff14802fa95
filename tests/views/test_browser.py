"""The main flows in a real Chromium: a technician signs in, finds a ticket, takes it with
the time spent and sees it move on; a customer opens a ticket in the portal and replies with
a file, a technician times the work with the stopwatch, answers and resolves, the customer
validates; lists sort without reloading the page; a form offers subcategories only under
the chosen category and keeps what was typed when it refuses; a manager's export equals the
screen."""
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
    assert re.search(r"Awaiting pickup|Unassigned", page.inner_text(".badges"))
    page.click("details:has(summary:text-is('Take')) summary")
    page.fill("details:has(summary:text-is('Take')) input[name=time_spent]", "25m")
    page.click("details:has(summary:text-is('Take')) button[type=submit]")
    page.wait_for_url(re.compile(rf".*/r/{number}$"))
    assert "In progress" in page.inner_text(".badges")
    timeline = page.inner_text("section.timeline")
    assert "Tomáš Dvořák Take" in timeline and re.search(r"Status: (Awaiting pickup|Unassigned) → In progress", timeline)
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
    page.wait_for_function("() => document.querySelectorAll('#input-subcategory option').length > 1")
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


def _wind_back_stopwatch(store, login: str, number: str, minutes: int) -> None:
    """As if the stopwatch had been started `minutes` earlier (a test cannot wait that long)."""
    from datetime import timedelta

    from deskbase.views import stopwatch

    def work(session):
        watch = stopwatch.read(session, login, number)
        stopwatch._write(session, login, number,
                         stopwatch.Stopwatch(watch.counted, watch.running_since - timedelta(minutes=minutes)))
    store.run(work)


def test_a_customer_opens_a_ticket_replies_with_a_photo_and_validates_the_resolution(page, live_server, demo_store,
                                                                                      other_page, tmp_path):
    # The customer power user opens a ticket in the portal and replies with a file.
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
    assert "Awaiting pickup" in page.inner_text(".badges")
    composer = page.locator("form.composer[action^='/new/comment']")
    assert composer.locator("#comment-input-visibility").count() == 0     # a customer's reply is public
    photo = tmp_path / "displej.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 2048)
    composer.locator("#comment-input-body").fill("Přikládáme fotku displeje.")
    composer.locator("#comment-input-files").set_input_files(str(photo))
    composer.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(rf".*/r/{number}$"))
    reply = page.locator("section.timeline li.entry-comment").last
    assert "Přikládáme fotku displeje." in reply.inner_text() and "displej.png" in reply.inner_text()
    ticket_id = demo_store.read(lambda s: s.find(number).id)
    replies = demo_store.read(lambda s: [dict(r.values) for r in s.query("comment", {"ticket": ticket_id}).records])
    assert [(r["author"], r["author_kind"], r["visibility"]) for r in replies] == [("psvoboda", "customer", "public")]
    assert [f.filename for f in replies[0]["files"]] == ["displej.png"]

    # A technician takes it, times the work with the stopwatch, answers and resolves it.
    technician = other_page
    sign_in(technician, live_server, "tdvorak")
    technician.goto(f"{live_server.url}/r/{number}")
    assert "Přikládáme fotku displeje." in technician.inner_text("section.timeline")
    technician.click("#stopwatch button:text-is('Start')")
    technician.wait_for_selector("#stopwatch.running")
    _wind_back_stopwatch(demo_store, "tdvorak", number, 12)
    technician.reload()                                        # it runs on the server: a reload keeps it
    technician.click("#stopwatch button:text-is('Stop')")
    technician.wait_for_selector("#stopwatch:not(.running)")
    assert technician.inner_text("#stopwatch output") == "12m"
    technician.reload()
    technician.click("details:has(summary:text-is('Take')) summary")
    assert technician.input_value("details:has(summary:text-is('Take')) input[name=time_spent]") == "12m"
    technician.click("details:has(summary:text-is('Take')) button[type=submit]")
    technician.wait_for_url(re.compile(rf".*/r/{number}$"))
    answer = technician.locator("form.composer[action^='/new/comment']")
    answer.locator("#comment-input-action").select_option("solution")
    answer.locator("#comment-input-body").fill("Čtečka byla přeprogramována, prosím ověřte.")
    answer.locator("button[type=submit]").click()
    technician.wait_for_url(re.compile(rf".*/r/{number}$"))
    assert "Solution" in technician.locator("section.timeline li.entry-comment").last.inner_text()
    technician.click("details:has(summary:text-is('Resolve')) summary")
    resolve = technician.locator("details:has(summary:text-is('Resolve'))")
    resolve.locator("input[name=time_spent]").fill("5m")
    for required in resolve.locator("textarea[required]").all():
        required.fill("Přeprogramování čtečky.")
    resolve.locator("button[type=submit]").click()
    technician.wait_for_url(re.compile(rf".*/r/{number}$"))
    assert "Resolved" in technician.inner_text(".badges")
    work = demo_store.read(lambda s: sorted(r["duration"] for r in s.query("work_entry", {"ticket": ticket_id}).records))
    assert work == [5 * 60, 12 * 60]                           # the stopwatch's 12 min and the 5 typed

    # The customer reads the answer and validates the resolution.
    page.reload()
    assert "Čtečka byla přeprogramována" in page.inner_text("section.timeline")
    page.click("details:has(summary:text-is('Accept the resolution')) summary")
    page.click("details:has(summary:text-is('Accept the resolution')) button[type=submit]")
    page.wait_for_url(re.compile(r".*/a/[^/]+$"))            # and is asked the survey's question there and then
    assert demo_store.read(lambda s: s.find(number)["status"]) == "closed"
    page.select_option("select[name=rating]", "very_satisfied")
    page.click("form button[type=submit]")
    page.wait_for_load_state("networkidle")
    ticket_id = demo_store.read(lambda s: s.find(number).id)
    assert demo_store.read(lambda s: s.query("survey", {"ticket": ticket_id}, limit=1).records[0]["rating"]) \
        == "very_satisfied"
    page.goto(f"{live_server.url}/r/{number}")
    assert "Closed" in page.inner_text(".badges")


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


def test_a_supervisor_builds_a_filter_by_pointing_and_clicking_then_takes_a_condition_out(page, live_server,
                                                                                         demo_store):
    sign_in(page, live_server, "cmartin")
    page.goto(f"{live_server.url}/v/open_tickets")
    page.select_option("form.condition-builder select[name=add_field]", "priority")
    page.wait_for_selector("#condition-value select[name=add_value]")      # the priorities, offered
    page.select_option("#condition-value select[name=add_value]", "urgent")
    page.click("form.condition-builder button[type=submit]")
    page.wait_for_url(re.compile(r".*f=%7Bpriority%3A\+urgent%7D.*"))
    assert page.inner_text("ul.conditions").startswith("Priority is Urgent")
    numbers = re.findall(r"T-\d+", page.inner_text("table.records tbody"))
    urgent = demo_store.read(lambda s: {r.number for r in s.query("ticket", {"priority": "urgent"}, limit=None).records})
    assert numbers and set(numbers) <= urgent
    page.click("ul.conditions a[title=Remove]")
    page.wait_for_url(re.compile(r".*/v/open_tickets(\?sort=[^&]*)?$"))
    assert page.locator("ul.conditions").count() == 0


def test_a_field_is_changed_in_place_without_leaving_the_page(page, live_server, demo_store):
    sign_in(page, live_server, "cmartin")
    number = demo_store.read(lambda s: s.query("ticket", {"status": "in_progress"}, limit=1).records[0].number)
    page.goto(f"{live_server.url}/r/{number}")
    page.evaluate("window.stayed = true")
    page.fill("#comment-input-body", "A reply being typed")           # a draft elsewhere on the page
    page.click("#inline-title button.inline-edit")
    page.fill("#inline-input-title", "Quai B : imprimante remplacée")
    page.click("#inline-title button[type=submit]")
    page.wait_for_selector("#inline-title:has-text('Quai B : imprimante remplacée') button.inline-edit")
    page.wait_for_function("() => document.querySelector('h1').textContent.includes('Quai B : imprimante remplacée')")
    assert "Quai B : imprimante remplacée" in page.inner_text("section.timeline")
    assert page.evaluate("window.stayed") is True
    assert page.input_value("#comment-input-body") == "A reply being typed"           # not lost
    assert demo_store.read(lambda s: s.find(number)["title"]) == "Quai B : imprimante remplacée"
