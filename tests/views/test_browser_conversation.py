"""In a real Chromium, on the demo: a technician follows a ticket from its page, and inserts
a canned reply into the comment form, filled in for the ticket, without leaving the page."""
from __future__ import annotations

from .test_browser import sign_in


def _first_printer_ticket(demo_store) -> tuple[str, str]:
    def work(session):
        printers = session.query("category", {"name": "Matériel"}).records[0].id
        ticket = session.query("ticket", {"assignee": "sbernard", "category": printers, "status": "in_progress"},
                               "id", limit=1).records[0]
        return ticket.number, session.get("contact", ticket.get("requester")).get("name")
    return demo_store.read(work)


def test_a_technician_inserts_a_canned_reply_filled_in_for_the_ticket(page, live_server, demo_store):
    number, requester = _first_printer_ticket(demo_store)
    sign_in(page, live_server, "sbernard")
    page.goto(f"{live_server.url}/r/{number}")
    page.evaluate("window.stayed = true")                      # gone if the whole page reloads
    page.fill("#comment-input-body", "Merci pour la photo.")
    page.select_option("select[name=snippet]", label="Printer: reinstall the driver")
    page.wait_for_function("() => document.querySelector('#comment-input-body').value.includes('pilote')")
    text = page.input_value("#comment-input-body")
    assert text.startswith("Merci pour la photo.\n\nBonjour " + requester)
    assert number in text and text.rstrip().endswith("Sophie Bernard")
    assert page.evaluate("window.stayed") is True
    # An internal one sets the comment's visibility too; chosen the very moment the first one
    # appears, the choice is not lost (the swapped-in controls are live at once).
    page.evaluate("""() => {
        const body = document.querySelector('#comment-input-body');
        body.value = '';
        const select = document.querySelector('select[name=snippet]');
        select.value = [...select.options].find(o => o.text === 'Printer: reinstall the driver').value;
        select.dispatchEvent(new Event('change', {bubbles: true}));
        new MutationObserver((changes, watcher) => {
            const field = document.querySelector('#comment-field-body select[name=snippet]');
            if (!field || !document.querySelector('#comment-input-body').value.includes('pilote')) return;
            watcher.disconnect();
            field.value = [...field.options].find(o => o.text === 'Internal: escalated to level 2').value;
            field.dispatchEvent(new Event('change', {bubbles: true}));
        }).observe(document.body, {childList: true, subtree: true});
    }""")
    page.wait_for_function("() => document.querySelector('#comment-input-visibility').value === 'internal'")
    assert f"{number} is escalated to level 2" in page.input_value("#comment-input-body")


def test_a_technician_follows_and_stops_following_a_ticket(page, live_server, demo_store):
    number, _ = _first_printer_ticket(demo_store)
    sign_in(page, live_server, "sbernard")
    page.goto(f"{live_server.url}/r/{number}")
    page.click("form.join button:has-text('Follow')")
    page.wait_for_selector("form.join button:has-text('Stop following')")
    assert "Sophie Bernard" in page.inner_text("#inline-watchers")
    page.click("text=Tickets I follow")
    assert number in page.content()
    page.goto(f"{live_server.url}/r/{number}")
    page.click("form.join button:has-text('Stop following')")
    page.wait_for_selector("form.join button:has-text('Follow')")
    assert demo_store.read(lambda s: s.find(number)["watchers"]) == ()


def test_a_running_stopwatch_ticks_every_second_and_a_list_is_saved_with_its_query(page, live_server, demo_store):
    number, _ = _first_printer_ticket(demo_store)
    sign_in(page, live_server, "sbernard")
    page.goto(f"{live_server.url}/r/{number}")
    page.click("#stopwatch button:text-is('Start')")
    page.wait_for_selector("#stopwatch.running")
    page.wait_for_function("() => /^0:00:0[2-9]$/.test(document.querySelector('#stopwatch output').textContent)",
                           timeout=6000)                                 # counted in the page, no request
    page.click("#stopwatch button:text-is('Stop')")
    page.goto(f"{live_server.url}/v/my_tickets?q=imprimante")
    page.fill("form.save-list input[name=name]", "Printers of mine")
    page.click("form.save-list button[type=submit]")
    page.click("nav.side a:has-text('Printers of mine')")
    assert "q=imprimante" in page.url


def test_cancelling_asks_first_and_a_no_changes_nothing(page, live_server, demo_store):
    sign_in(page, live_server, "cmartin")
    number = demo_store.read(lambda s: s.query("ticket", {"status": "awaiting_pickup"}, "-id", limit=1)
                             .records[0].number)
    page.goto(f"{live_server.url}/r/{number}")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("details:has(summary:text-is('Cancel')) summary")
    page.click("details:has(summary:text-is('Cancel')) button[type=submit]")
    page.wait_for_timeout(300)
    assert asked == ["Cancel this ticket? Nobody will work on it any more."]
    assert demo_store.read(lambda s: s.find(number)["status"]) == "awaiting_pickup"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("details:has(summary:text-is('Cancel')) button[type=submit]")
    page.wait_for_selector("p.said")
    assert demo_store.read(lambda s: s.find(number)["status"]) == "cancelled"


def test_times_read_in_the_readers_own_zone_and_ago_stays_true(page_in_new_york, live_server, demo_store):
    """The demo's zone is Paris; a technician whose browser is in New York reads the ticket's
    times six hours earlier, the zone named; "just now" becomes "1 min ago" a minute later."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo
    page = page_in_new_york
    number, _ = _first_printer_ticket(demo_store)
    reported = demo_store.read(lambda s: s.find(number)["reported_at"])
    page.clock.install()
    sign_in(page, live_server, "sbernard")
    page.goto(f"{live_server.url}/r/{number}")
    shown = page.inner_text("#inline-reported_at time")
    local = reported.astimezone(ZoneInfo("America/New_York"))
    # English pages read times as the browser formats English: 14:20 or 02:20 PM.
    assert (f"{local:%H:%M}" in shown or f"{local:%I:%M %p}" in shown) and ("EST" in shown or "GMT-5" in shown), shown
    paris = reported.astimezone(ZoneInfo("Europe/Paris"))
    assert (f"{paris:%H:%M}" not in shown and f"{paris:%I:%M %p}" not in shown) or paris.hour == local.hour
    # A comment just written reads "just now", then "1 min ago" without a reload.
    page.fill("#comment-input-body", "On it.")
    page.click("section.composers form:has(#comment-input-body) button[type=submit]")
    page.wait_for_selector("li.entry time[data-relative]:text-is('just now')")
    hover = page.get_attribute("li.entry time[data-relative]:text-is('just now')", "title")
    assert "EST" in hover or "GMT-5" in hover
    page.clock.fast_forward(int(timedelta(seconds=125).total_seconds() * 1000))
    page.wait_for_selector("li.entry time[data-relative]:text-matches('^2 min')")


def test_a_dispatcher_assigns_by_name_seeing_each_technicians_open_tickets(page, live_server, demo_store):
    number = demo_store.read(lambda s: s.query("ticket", {"status": "awaiting_pickup"}, "-id", limit=1)
                             .records[0].number)
    held = demo_store.read(lambda s: s.count("ticket", {"assignee": "khaddad", "status": {
        "not_in": ["resolved", "rejected", "cancelled", "closed"]}}))
    sign_in(page, live_server, "jroux")
    page.goto(f"{live_server.url}/r/{number}")
    page.click("details summary:text-is('Assign')")
    offered = page.eval_on_selector_all("#people-assign-assignee option", "options => options.map(o => o.label)")
    assert f"Karim Haddad · {held} open" in offered
    page.fill("input[name=assignee]", "Karim Haddad")
    page.click("form[action$='/fire/assign'] button[type=submit]")
    page.wait_for_selector("p.said")
    assert "Assign: done on" in page.inner_text("p.said")
    assert demo_store.read(lambda s: s.find(number)["assignee"]) == "khaddad"


def test_the_pages_work_under_the_content_security_policy(page, live_server, demo_store):
    """No inline script or style is refused by the browser on the main pages, and htmx still
    swaps (an inline edit opens in place)."""
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)
    number, _ = _first_printer_ticket(demo_store)
    organization = demo_store.read(lambda s: s.get("asset", s.query("ticket", {"asset": {"ne": None}}, limit=1)
                                                        .records[0]["asset"]).number)            # its summaries
    sign_in(page, live_server, "cmartin")
    for path in ("/", "/v/open_tickets", f"/r/{organization}", f"/r/{number}"):
        page.goto(f"{live_server.url}{path}")
    page.click("#inline-priority button.inline-edit")
    page.wait_for_selector("#inline-priority select")
    assert refused == []
