"""The web interface through Starlette's TestClient: signing in and out, CSRF on every form,
throttled failed sign-ins, lists scoped by role with sort, search and paging swapped by
htmx, record pages with their transitions."""
from __future__ import annotations

import html
import re

import pytest
from starlette.testclient import TestClient

from deskbase.rules.access.identity import create_account, find_account, identity_of
from deskbase.views.app import create_app

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def helpdesk_store(app_store):
    with app_store(demo=True) as store:
        create_account(store, "tina", name="Tina Web", password=PASSWORD, roles=["technician"], email="tina@x.example")
        yield store


@pytest.fixture
def client(helpdesk_store):
    with TestClient(create_app(helpdesk_store), follow_redirects=False) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(client: TestClient, login: str, password: str = PASSWORD, next_page: str = "/"):
    page = client.get("/login")
    return client.post("/login", data={"login": login, "password": password, "csrf": csrf_of(page.text),
                                       "next": next_page})


def test_a_page_asks_to_sign_in_first_and_comes_back_after(client):
    response = client.get("/v/my_tickets")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Fv%2Fmy_tickets"
    signed = sign_in(client, "tina", next_page="/v/my_tickets")
    assert signed.status_code == 303 and signed.headers["location"] == "/v/my_tickets"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("samesite", "SameSite")
    assert client.get("/v/my_tickets").status_code == 200


def test_a_wrong_password_says_so_without_saying_which_part(client):
    response = sign_in(client, "tina", "not the password")
    assert response.status_code == 401
    assert "The login or the password is wrong." in response.text
    assert sign_in(client, "nobody", "whatever it is").text.count("The login or the password is wrong.") == 1


def test_repeated_failures_are_throttled(helpdesk_store):
    # An address of its own: failures are kept in the database the module's tests share.
    client = TestClient(create_app(helpdesk_store), follow_redirects=False, client=("192.0.2.50", 4000))
    for _ in range(5):
        assert sign_in(client, "sbernard", "wrong password!").status_code == 401
    response = sign_in(client, "sbernard", "demo-password")      # even the right password waits now
    assert response.status_code == 429 and "Too many failed sign-ins" in response.text


def test_guessing_from_one_address_locks_no_one_out_elsewhere_and_every_process_counts_it(helpdesk_store):
    """Five wrong passwords for khaddad from one address: that address waits — in this
    process and in another one on the same database — while khaddad signs in from his own.
    Fifty failures over any logins make an address wait too; a success clears its count."""
    attacker = TestClient(create_app(helpdesk_store), follow_redirects=False, client=("203.0.113.9", 4000))
    for _ in range(5):
        assert sign_in(attacker, "khaddad", "wrong password!").status_code == 401
    assert sign_in(attacker, "khaddad", "demo-password").status_code == 429
    other_process = TestClient(create_app(helpdesk_store), follow_redirects=False, client=("203.0.113.9", 4001))
    assert sign_in(other_process, "khaddad", "demo-password").status_code == 429
    own_desk = TestClient(create_app(helpdesk_store), follow_redirects=False, client=("198.51.100.7", 5000))
    assert sign_in(own_desk, "khaddad", "demo-password").status_code == 303
    sprayer = TestClient(create_app(helpdesk_store), follow_redirects=False, client=("203.0.113.77", 4000))
    for n in range(50):
        assert sign_in(sprayer, f"someone{n}", "wrong password!").status_code == 401
    assert sign_in(sprayer, "jroux", "demo-password").status_code == 429
    office = TestClient(create_app(helpdesk_store), follow_redirects=False, client=("198.51.100.8", 5000))
    for _ in range(4):
        sign_in(office, "lfontaine", "wrong password!")
    assert sign_in(office, "lfontaine", "demo-password").status_code == 303     # cleared by the success
    for _ in range(4):
        sign_in(office, "lfontaine", "wrong password!")
    assert sign_in(office, "lfontaine", "demo-password").status_code == 303


def test_the_sign_in_form_refuses_a_post_from_elsewhere(client):
    response = client.post("/login", data={"login": "tina", "password": PASSWORD, "csrf": "forged"})
    assert response.status_code == 403


def test_a_form_without_the_sessions_token_is_refused(client, helpdesk_store):
    sign_in(client, "tina")
    number = helpdesk_store.read(lambda s: s.query("ticket", {"status": "awaiting_pickup"}, limit=1).records[0].number)
    response = client.post(f"/r/{number}/fire/take", data={"time_spent": "10m", "csrf": "forged"})
    assert response.status_code == 403
    assert helpdesk_store.read(lambda s: s.find(number)["status"]) == "awaiting_pickup"


def test_signing_out_ends_the_session(client):
    sign_in(client, "tina")
    home = client.get("/")
    assert home.status_code == 200
    cookie = client.cookies.get("deskbase_session")
    response = client.post("/logout", data={"csrf": csrf_of(home.text)})
    assert response.status_code == 303
    client.cookies.set("deskbase_session", cookie)        # a copied cookie is worth nothing afterwards
    assert client.get("/").status_code == 303


def test_navigation_offers_the_views_of_the_role(client):
    sign_in(client, "tina")
    home = client.get("/").text
    assert 'href="/v/my_tickets"' in home and 'href="/v/tickets_awaiting_pickup"' in home
    assert 'href="/v/current_contracts"' not in home             # a supervisor's list
    assert client.get("/v/current_contracts").status_code == 404


def test_a_technicians_list_shows_only_what_they_may_read(client, helpdesk_store):
    sign_in(client, "sbernard", "demo-password")
    page = client.get("/v/open_tickets?page=1")
    assert page.status_code == 200
    shown = set(re.findall(r'href="/r/(T-\d+)"', page.text))
    stands_in_for = list(identity_of(helpdesk_store, "sbernard").acting_for or ())     # absent colleagues
    allowed = helpdesk_store.read(lambda s: {r.number for r in s.query(
        "ticket", {"all": [{"status": {"not_in": ["resolved", "rejected", "cancelled", "closed"]}},
                           {"any": [{"status": ["awaiting_pickup", "unassigned"]},
                                    {"assignee": ["sbernard", *stands_in_for]}]}]},
        limit=None).records})
    assert shown and shown <= allowed
    total = int(re.search(r"of (\d+)", page.text).group(1))
    assert total == len(allowed)


def test_sorting_and_paging_swap_only_the_table_for_htmx(client):
    sign_in(client, "sbernard", "demo-password")
    response = client.get("/v/open_tickets?sort=-id&page=2", headers={"HX-Request": "true", "HX-Target": "table"})
    assert response.status_code == 200
    assert "<html" not in response.text and "<table" in response.text
    numbers = re.findall(r'href="/r/T-(\d+)"', response.text)
    assert numbers == sorted(numbers, reverse=True)
    assert 'rel="prev"' in response.text


def test_a_bad_ad_hoc_filter_is_explained_not_crashed(client):
    sign_in(client, "sbernard", "demo-password")
    response = client.get("/v/open_tickets", params={"f": "{statu: open}"})
    assert response.status_code == 200
    assert "`statu` is not a field" in response.text


def test_search_finds_by_words_within_the_scope(client):
    sign_in(client, "cmartin", "demo-password")
    response = client.get("/v/all_tickets", params={"q": "imprimante"})
    assert response.status_code == 200
    assert re.findall(r'href="/r/(T-\d+)"', response.text)


def test_a_record_page_shows_fields_timers_history_and_transitions(client, helpdesk_store):
    sign_in(client, "sbernard", "demo-password")
    number = helpdesk_store.read(lambda s: s.query("ticket", {"status": "awaiting_pickup"}, limit=1).records[0].number)
    page = client.get(f"/r/{number}")
    assert page.status_code == 200
    assert number in page.text and "Timeline" in page.text and "Timers" in page.text
    assert f'action="/r/{number}/fire/take"' in page.text and 'name="time_spent"' in page.text


def test_a_record_outside_the_scope_does_not_exist_for_the_reader(client, helpdesk_store):
    sign_in(client, "sbernard", "demo-password")
    number = helpdesk_store.read(lambda s: s.query(
        "ticket", {"all": [{"status": "in_progress"}, {"assignee": {"ne": "sbernard"}}]}, limit=1).records[0].number)
    response = client.get(f"/r/{number}")
    assert response.status_code == 404 and "there is no record numbered" in response.text


def test_firing_a_transition_from_the_page(client, helpdesk_store):
    sign_in(client, "tina")
    number = helpdesk_store.read(lambda s: s.query("ticket", {"status": "awaiting_pickup"}, sort="-id",
                                                   limit=1).records[0].number)
    page = client.get(f"/r/{number}")
    token = csrf_of(page.text)
    refused = client.post(f"/r/{number}/fire/take", data={"csrf": token})
    assert refused.status_code == 422 and "time_spent" in refused.text
    done = client.post(f"/r/{number}/fire/take", data={"csrf": token, "time_spent": "20m", "work_done": "looked"})
    assert done.status_code == 303 and done.headers["location"] == f"/r/{number}"
    values = helpdesk_store.read(lambda s: dict(s.find(number).values))
    assert values["status"] == "in_progress" and values["assignee"] == "tina"
    page = client.get(f"/r/{number}").text                    # the history names the transition by its label
    assert re.search(r"</strong> Take\s", page) and "transition take" not in page


# -- forms -----------------------------------------------------------------------------------

def ids_of(store, type_name: str, where) -> list[int]:
    return store.read(lambda s: [r.id for r in s.query(type_name, where, limit=None).records])


def test_a_new_ticket_form_creates_the_ticket(client, helpdesk_store):
    sign_in(client, "tina")
    form = client.get("/new/ticket")
    assert form.status_code == 200 and 'name="title"' in form.text
    assert 'name="status"' not in form.text and 'name="resolution_due"' not in form.text   # the rules' own
    chabrier = ids_of(helpdesk_store, "organization", {"code": "CHAB"})[0]
    response = client.post("/new/ticket", data={"csrf": csrf_of(form.text), "title": "Scanner offline",
                                                "organization": str(chabrier), "priority": "high"})
    assert response.status_code == 303
    number = response.headers["location"].rsplit("/", 1)[1]
    values = helpdesk_store.read(lambda s: dict(s.find(number).values))
    assert values["title"] == "Scanner offline" and values["organization"] == chabrier
    assert values["status"] == "awaiting_pickup" and values["created_by"] == "tina"


def test_errors_are_shown_next_to_their_field_and_what_was_typed_is_kept(client):
    sign_in(client, "tina")
    form = client.get("/new/ticket")
    response = client.post("/new/ticket", data={"csrf": csrf_of(form.text), "title": "",
                                                "description": "kept text", "remaining_effort": "soon"})
    assert response.status_code == 422
    assert 'id="error-title"' in response.text and "is required" in response.text
    assert 'id="error-remaining_effort"' in response.text and "is not a duration" in response.text
    assert "kept text" in response.text


def test_a_subcategory_is_offered_only_under_its_category(client, helpdesk_store):
    sign_in(client, "tina")
    tops = ids_of(helpdesk_store, "category", {"parent": None})
    hardware = [top for top in tops if ids_of(helpdesk_store, "category", {"parent": top})]
    children = set(ids_of(helpdesk_store, "category", {"parent": hardware[0]}))
    empty = client.get("/forms/ticket/field/subcategory")
    assert empty.status_code == 200 and "<option value=\"" not in empty.text.replace('<option value=""></option>', "")
    offered = client.get("/forms/ticket/field/subcategory", params={"category": str(hardware[0])})
    shown = {int(v) for v in re.findall(r'<option value="(\d+)"', offered.text)}
    assert shown == children and children
    form = client.get("/new/ticket")
    assert 'hx-trigger="change from:#input-category"' in form.text


def test_an_edit_made_from_an_old_version_is_refused(client, helpdesk_store):
    sign_in(client, "cmartin", "demo-password")
    number = helpdesk_store.read(lambda s: s.query("ticket", {"status": "in_progress"}, limit=1).records[0].number)
    form = client.get(f"/r/{number}/edit")
    assert form.status_code == 200
    version = re.search(r'name="version" value="(\d+)"', form.text).group(1)
    helpdesk_store.run(lambda s: s.update(number, {"internal_notes": "changed meanwhile"}))
    response = client.post(f"/r/{number}/edit", data={"csrf": csrf_of(form.text), "version": version,
                                                      "internal_notes": "my edit"})
    assert response.status_code == 409 and "was changed by" in response.text
    assert helpdesk_store.read(lambda s: s.find(number)["internal_notes"]) == "changed meanwhile"


def test_an_attachment_is_uploaded_and_downloaded_but_not_by_someone_out_of_scope(client, helpdesk_store):
    sign_in(client, "cmartin", "demo-password")
    number = helpdesk_store.read(lambda s: s.query("ticket", {"status": "in_progress"}, limit=1).records[0].number)
    form = client.get(f"/r/{number}/edit")
    version = re.search(r'name="version" value="(\d+)"', form.text).group(1)
    response = client.post(f"/r/{number}/edit", data={"csrf": csrf_of(form.text), "version": version},
                           files={"attachments": ("report.pdf", b"%PDF-1.4 hello", "application/pdf")})
    assert response.status_code == 303
    page = client.get(f"/r/{number}")
    link = re.search(r'href="(/r/[^"]+/files/[^"]+)"', page.text).group(1)
    download = client.get(link)
    assert download.content == b"%PDF-1.4 hello"
    assert download.headers["content-disposition"].startswith("attachment;")
    sign_in(client, "psvoboda", "demo-password")          # a customer of another organization
    assert client.get(link).status_code == 404


def test_a_file_of_a_refused_type_is_refused_with_a_sentence(client, helpdesk_store):
    sign_in(client, "cmartin", "demo-password")
    number = helpdesk_store.read(lambda s: s.query("ticket", {"status": "in_progress"}, limit=1).records[0].number)
    form = client.get(f"/r/{number}/edit")
    version = re.search(r'name="version" value="(\d+)"', form.text).group(1)
    response = client.post(f"/r/{number}/edit", data={"csrf": csrf_of(form.text), "version": version},
                           files={"attachments": ("tool.exe", b"MZ", "application/x-msdownload")})
    assert response.status_code == 422 and 'id="error-attachments"' in response.text


def test_the_timeline_merges_the_entries_written_on_a_record_with_its_changes_oldest_first(client, helpdesk_store):
    sign_in(client, "cmartin", "demo-password")
    ticket = helpdesk_store.read(lambda s: s.query("ticket", {"status": "awaiting_pickup"}, limit=1).records[0])
    from deskbase.rules.documents.formatting import datetime_text
    stamp = lambda at: datetime_text(at, __import__("zoneinfo").ZoneInfo("Europe/Paris"), "en")  # noqa: E731

    supervisor = identity_of(helpdesk_store, "cmartin")
    helpdesk_store.run(lambda s: s.update(ticket.number, {"title": "Scanner offline, floor 3"}), identity=supervisor)
    comment = helpdesk_store.run(lambda s: s.create("comment", {
        "ticket": ticket.id, "body": "Which model is it?", "action": "question", "visibility": "internal"}).number,
        identity=supervisor)
    page = client.get(f"/r/{ticket.number}")
    timeline = page.text[page.text.index('<section class="timeline"'):].split("</section>")[0]
    assert timeline.index("created") < timeline.index("Scanner offline, floor 3") \
        < timeline.index("Which model is it?")              # oldest first: the newest by the reply box
    entry = re.search(r'<li class="entry entry-comment ([^"]*)">(.*?)</li>', timeline, re.S)
    assert "entry-visibility-internal" in entry.group(1) and "entry-action-question" in entry.group(1)
    assert f'href="/r/{comment}"' in entry.group(2) and "Question" in entry.group(2) \
        and "Claire Martin" in entry.group(2)                                 # the person, by name
    only = client.get(f"/r/{ticket.number}?timeline=entries").text
    only = only[only.index('<section class="timeline"'):].split("</section>")[0]
    assert "Which model is it?" in only and "Scanner offline, floor 3" not in only
    assert f'title="{stamp(helpdesk_store.read(lambda s: s.find(comment)["created_at"]))}"' in entry.group(2)


def test_an_entry_added_from_the_record_page_takes_the_record_and_its_organization(client, helpdesk_store):
    sign_in(client, "cmartin", "demo-password")
    ticket = helpdesk_store.read(lambda s: s.query("ticket", {"organization": {"ne": None}}, limit=1).records[0])
    page = client.get(f"/r/{ticket.number}")
    composer = re.search(r'<form method="post" action="(/new/comment[^"]*)"[^>]*class="record-form composer">(.*?)</form>',
                         page.text, re.S)
    assert composer and f'name="ticket" value="{ticket.id}"' in composer.group(2)
    assert 'name="organization"' not in composer.group(2)                 # copied from the ticket, not asked
    made = client.post(composer.group(1).replace("&amp;", "&"), data={
        "csrf": csrf_of(page.text), "ticket": str(ticket.id), "body": "Le lecteur a été remplacé.",
        "action": "solution", "visibility": "public"}, files={"files": ("photo.png", b"\x89PNG\r\n\x1a\n", "image/png")})
    assert made.status_code == 303 and made.headers["location"] == f"/r/{ticket.number}"
    comment = helpdesk_store.read(lambda s: dict(s.query("comment", {"ticket": ticket.id}, "-id", limit=1).records[0].values))
    assert comment["organization"] == ticket["organization"] and comment["action"] == "solution"
    assert [f.filename for f in comment["files"]] == ["photo.png"]
    assert "photo.png" in client.get(f"/r/{ticket.number}").text


def test_a_customer_cannot_write_on_a_ticket_of_another_organization(client, helpdesk_store):
    sign_in(client, "psvoboda", "demo-password")
    me = identity_of(helpdesk_store, "psvoboda")
    other = helpdesk_store.read(lambda s: s.query("ticket", {"organization": {"ne": me.organization}}, limit=1)
                                .records[0])
    page = client.get("/new/comment")
    refused = client.post("/new/comment", data={"csrf": csrf_of(page.text), "ticket": str(other.id),
                                                "body": "Slipped in?"})
    assert refused.status_code == 422
    assert helpdesk_store.read(lambda s: s.count("comment", {"all": [{"ticket": other.id}, {"text": "Slipped"}]})) == 0


def test_a_field_changed_in_place_saves_and_a_change_made_meanwhile_is_not_overwritten(client, helpdesk_store):
    sign_in(client, "cmartin", "demo-password")
    ticket = helpdesk_store.read(lambda s: s.query("ticket", {"status": "in_progress"}, limit=1).records[0])
    page = client.get(f"/r/{ticket.number}")
    assert f'hx-get="/r/{ticket.number}/inline/title"' in page.text
    assert f'hx-get="/r/{ticket.number}/inline/status"' not in page.text       # the workflow moves it
    editor = client.get(f"/r/{ticket.number}/inline/title", headers={"HX-Request": "true"})
    seen = html.unescape(re.search(r'name="seen" value="([^"]*)"', editor.text).group(1))
    assert editor.status_code == 200 and 'id="inline-input-title"' in editor.text
    saved = client.post(f"/r/{ticket.number}/inline/title", data={"csrf": csrf_of(page.text), "seen": seen,
                                                                  "title": "Renamed in place"})
    assert saved.status_code == 303, saved.text
    assert helpdesk_store.read(lambda s: s.find(ticket.number)["title"]) == "Renamed in place"
    helpdesk_store.run(lambda s: s.update(ticket.number, {"title": "Renamed by a colleague"}))
    late = client.post(f"/r/{ticket.number}/inline/title", data={"csrf": csrf_of(page.text), "seen": "Renamed in place",
                                                                 "title": "Mine"})
    assert "changed by someone else meanwhile" in late.text and "Renamed by a colleague" in late.text
    assert late.headers["HX-Retarget"] == "#inline-title"
    assert helpdesk_store.read(lambda s: s.find(ticket.number)["title"]) == "Renamed by a colleague"
    assert client.get(f"/r/{ticket.number}/inline/status").status_code == 404


def test_nobody_changes_in_place_what_they_may_not_update(client, helpdesk_store):
    sign_in(client, "psvoboda", "demo-password")
    me = identity_of(helpdesk_store, "psvoboda")
    ticket = helpdesk_store.read(lambda s: s.query("ticket", {"organization": me.organization}, limit=1).records[0])
    page = client.get(f"/r/{ticket.number}")
    assert "/inline/" not in page.text
    assert client.post(f"/r/{ticket.number}/inline/title", data={"csrf": csrf_of(page.text), "seen": ticket["title"],
                                                                 "title": "Mine"}).status_code == 404
    assert helpdesk_store.read(lambda s: s.find(ticket.number)["title"]) == ticket["title"]


# -- the stopwatch (T11) -----------------------------------------------------------------------

def test_the_stopwatch_runs_on_the_server_fills_the_time_spent_and_restarts_once_used(client, helpdesk_store):
    from datetime import timedelta

    from deskbase.views.stopwatch import STOPWATCHES_KEY
    sign_in(client, "tina")
    number = helpdesk_store.read(lambda s: s.query("ticket", {"status": "awaiting_pickup"}, sort="id",
                                                   limit=1).records[0].number)
    page = client.get(f"/r/{number}")
    token = csrf_of(page.text)
    assert 'id="stopwatch"' in page.text
    started = client.post(f"/r/{number}/stopwatch/start", headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert started.status_code == 200 and "Stop" in started.text and "<html" not in started.text

    def backdate(session):          # as if it had been started 25 minutes ago
        watches = session.connection.root()[STOPWATCHES_KEY]
        counted, since = watches[("tina", number)]
        watches[("tina", number)] = (counted, since - timedelta(minutes=25))
    helpdesk_store.run(backdate)
    other_device = TestClient(client.app, follow_redirects=False)
    sign_in(other_device, "tina")
    assert "25m" in other_device.get(f"/r/{number}/stopwatch").text          # the same stopwatch elsewhere
    stopped = client.post(f"/r/{number}/stopwatch/stop", headers={"X-CSRF-Token": token})
    assert "Start" in stopped.text and "25m" in stopped.text
    page = client.get(f"/r/{number}")
    assert re.search(r'name="time_spent" value="25m"', page.text)
    done = client.post(f"/r/{number}/fire/take", data={"csrf": token, "time_spent": "25m"})
    assert done.status_code == 303
    assert helpdesk_store.read(lambda s: ("tina", number) in s.connection.root()[STOPWATCHES_KEY]) is False


def test_the_stopwatch_of_a_record_one_may_not_read_does_not_exist(client, helpdesk_store):
    sign_in(client, "psvoboda", "demo-password")
    other = helpdesk_store.read(lambda s: s.query("ticket", {"organization": {"ne": identity_of(
        helpdesk_store, "psvoboda").organization}}, limit=1).records[0].number)
    page = client.get("/")
    assert client.post(f"/r/{other}/stopwatch/start", headers={"X-CSRF-Token": csrf_of(page.text)}).status_code == 404


# -- the dashboard -----------------------------------------------------------------------------

def test_the_dashboard_counts_by_status_within_the_scope(client, helpdesk_store):
    sign_in(client, "sbernard", "demo-password")
    home = client.get("/").text
    assert "<svg" in home
    chart = home[home.index('aria-label="Open tickets: Status"'):]
    chart = chart[:chart.index("</svg>")]
    shown = {label: int(count) for label, count in re.findall(r"<title>([^<]+): (\d+)</title>", chart)}
    expected = helpdesk_store.read(lambda s: s.count_by("ticket", "status", helpdesk_store.definitions.views[
        "open_tickets"].filter), identity=identity_of(helpdesk_store, "sbernard"))
    assert shown["In progress"] == dict(expected)["in_progress"]
    everything = helpdesk_store.read(lambda s: s.count("ticket", {"status": "in_progress"}))
    assert shown["In progress"] < everything                       # the technician's scope, not all


def test_a_bar_links_to_its_list(client):
    sign_in(client, "cmartin", "demo-password")
    home = client.get("/").text
    link = re.search(r'<a href="(/v/open_tickets\?f=[^"]+)">\s*<text[^>]*>Awaiting pickup', home).group(1)
    page = client.get(link.replace("&amp;", "&"))
    assert page.status_code == 200 and "Awaiting pickup" in page.text and "Unassigned</td>" not in page.text


def test_changing_the_password_checks_the_current_one_and_ends_the_other_sessions(client, helpdesk_store):
    create_account(helpdesk_store, "walt", name="Walt", password=PASSWORD, roles=["technician"])
    other = TestClient(client.app, follow_redirects=False)
    sign_in(other, "walt")
    sign_in(client, "walt")
    token = csrf_of(client.get("/account").text)
    wrong = client.post("/account", data={"csrf": token, "current": "not it at all", "new": "a brand new secret",
                                          "again": "a brand new secret"})
    assert wrong.status_code == 422 and "The current password is wrong." in wrong.text
    differ = client.post("/account", data={"csrf": token, "current": PASSWORD, "new": "a brand new secret",
                                           "again": "another new secret"})
    assert differ.status_code == 422 and "differ" in differ.text
    short = client.post("/account", data={"csrf": token, "current": PASSWORD, "new": "short", "again": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.text
    done = client.post("/account", data={"csrf": token, "current": PASSWORD, "new": "a brand new secret",
                                         "again": "a brand new secret"})
    assert done.status_code == 303
    assert "Your password is changed. 1 other session was ended." in client.get(done.headers["location"]).text
    assert other.get("/").status_code == 303                    # the other device must sign in again
    assert client.get("/").status_code == 200
    assert sign_in(TestClient(client.app, follow_redirects=False), "walt", "a brand new secret").status_code == 303


def test_a_person_chooses_the_language_of_the_pages_on_their_account_page(client, helpdesk_store):
    create_account(helpdesk_store, "wanda", name="Wanda", password=PASSWORD, roles=["technician"])
    sign_in(client, "wanda")
    page = client.get("/account").text
    assert '<option value="fr" lang="fr">Français</option>' in page and '<option value="en" lang="en" selected>' in page
    token = csrf_of(page)
    forged = client.post("/account", data={"csrf": token, "action": "language", "language": "xx"})
    assert forged.status_code == 422 and "Choose one of the languages offered." in forged.text
    done = client.post("/account", data={"csrf": token, "action": "language", "language": "fr"})
    assert done.status_code == 303
    assert "Les pages sont désormais en français." in client.get("/account").text
    assert "Mon compte" in client.get("/account").text
    account = find_account(helpdesk_store, "wanda")
    assert (account.language, account.language_chosen) == ("fr", True)


# -- bulk actions (T22) --------------------------------------------------------------------------

def test_one_visit_logged_on_several_tickets_shares_the_time(client, helpdesk_store):
    sign_in(client, "sbernard", "demo-password")
    page = client.get("/v/my_tickets")
    numbers = re.findall(r'name="selected" value="(T-\d+)"', page.text)[:3]
    assert len(numbers) == 3 and 'name="a0.duration"' in page.text and 'name="a0.ticket"' not in page.text
    ids = [helpdesk_store.read(lambda s, n=n: s.find(n).id) for n in numbers]
    before = helpdesk_store.read(lambda s: s.count("work_entry"))
    response = client.post("/v/my_tickets/bulk/0", data={"csrf": csrf_of(page.text), "selected": numbers,
                                                         "a0.duration": "1h40", "a0.description": "site visit",
                                                         "a0.billable": "1"})
    assert response.status_code == 303 and response.headers["location"] == "/v/my_tickets?made=3"
    made = helpdesk_store.read(lambda s: [dict(r.values) for r in s.query("work_entry", {"ticket": ids}, "-id",
                                                                          limit=3).records])
    assert sorted(entry["duration"] for entry in made) == [33 * 60 + 20] * 3          # 100 minutes, shared
    assert {entry["performer"] for entry in made} == {"sbernard"} and {e["ticket"] for e in made} == set(ids)
    assert helpdesk_store.read(lambda s: s.count("work_entry")) == before + 3
    assert "3 records made." in client.get("/v/my_tickets?made=3").text


def test_the_bulk_time_form_takes_the_performer_by_name(client, helpdesk_store):
    numbers = helpdesk_store.read(lambda s: [r.number for r in s.query("ticket", {"status": "in_progress"}, "id",
                                                                      limit=2).records])
    for number in numbers:
        helpdesk_store.run(lambda s, n=number: s.update(n, {"assignee": "cmartin"}))
    sign_in(client, "cmartin", "demo-password")
    page = client.get("/v/my_tickets").text
    assert 'name="a0.performer"' in page and '<option value="sbernard">Sophie Bernard</option>' in page
    response = client.post("/v/my_tickets/bulk/0", data={"csrf": csrf_of(page), "selected": numbers,
                                                         "a0.duration": "1h", "a0.performer": "Sophie Bernard",
                                                         "a0.description": "visit"})
    assert response.status_code == 303, response.text
    ids = [helpdesk_store.read(lambda s, n=n: s.find(n).id) for n in numbers]
    made = helpdesk_store.read(lambda s: [r["performer"] for r in s.query("work_entry", {"ticket": ids}, "-id",
                                                                          limit=2).records])
    assert made == ["sbernard", "sbernard"]


def test_a_bulk_action_on_a_record_out_of_scope_makes_nothing(client, helpdesk_store):
    sign_in(client, "sbernard", "demo-password")
    page = client.get("/v/my_tickets")
    mine = re.findall(r'name="selected" value="(T-\d+)"', page.text)[0]
    theirs = helpdesk_store.read(lambda s: s.query("ticket", {"all": [{"assignee": {"ne": "sbernard"}},
                                                                      {"status": "in_progress"}]},
                                                   limit=40).records)
    foreign = next(r.number for r in theirs if r["assignee"] not in identity_of(helpdesk_store, "sbernard").acting_for)
    before = helpdesk_store.read(lambda s: s.count("work_entry"))
    response = client.post("/v/my_tickets/bulk/0", data={"csrf": csrf_of(page.text), "selected": [mine, foreign],
                                                         "a0.duration": "1h"})
    assert response.status_code == 422 and "Nothing was made" in response.text
    refused = client.post("/v/my_tickets/bulk/0", data={"csrf": csrf_of(page.text), "selected": [mine]})
    assert refused.status_code == 422 and "duration" in refused.text
    assert helpdesk_store.read(lambda s: s.count("work_entry")) == before


def test_a_field_is_asked_only_when_its_condition_holds(client):
    sign_in(client, "tina")
    form = client.get("/new/ticket")
    assert 'id="field-impact"' in form.text and 'name="impact"' not in form.text          # a service request
    assert 'hx-trigger="change from:#input-channel, change from:#input-kind"' in form.text
    asked = client.get("/forms/ticket/field/impact", params={"kind": "incident", "channel": "phone"})
    assert 'name="impact"' in asked.text and "Who is affected? *" in asked.text
    refused = client.post("/new/ticket", data={"csrf": csrf_of(form.text), "title": "printer on fire",
                                               "kind": "incident", "channel": "phone"})
    assert refused.status_code == 422 and 'id="error-impact"' in refused.text


def test_a_list_saved_under_a_name_comes_back_in_the_navigation_of_its_owner_only(client):
    sign_in(client, "sbernard", "demo-password")
    page = client.get("/v/open_tickets?sort=-id&f={priority: urgent}&page=3")
    saved = client.post("/v/open_tickets/save", data={"csrf": csrf_of(page.text), "name": "My urgent ones",
                                                      "query": "sort=-id&f={priority: urgent}&page=3"})
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/v/open_tickets?sort=-id&f=%7Bpriority%3A+urgent%7D"     # not the page
    home = client.get("/").text
    assert ">My urgent ones</a>" in home
    assert client.post("/v/current_contracts/save", data={"csrf": csrf_of(home), "name": "x"}).status_code == 422
    sign_in(client, "khaddad", "demo-password")
    assert "My urgent ones" not in client.get("/").text


def test_the_team_activity_shows_the_last_weeks_work_by_person(client, helpdesk_store):
    from datetime import date, timedelta
    sign_in(client, "cmartin", "demo-password")
    page = client.get("/v/team_activity")
    assert page.status_code == 200
    since = date.today() - timedelta(days=7)
    expected = helpdesk_store.read(lambda s: s.count("work_entry", {"date": {"gte": since.isoformat()}}))
    assert f"of {expected}" in page.text or (expected == 0 and "Nothing matches." in page.text)
    assert 'aria-label="Team activity, last 7 days: Performed by"' in client.get("/").text
    day = client.get("/v/team_activity", params={"f": f"{{date: {date.today().isoformat()}}}"})
    assert day.status_code == 200 and "does not read" not in day.text


def test_a_french_account_reads_the_pages_in_french(client, helpdesk_store):
    create_account(helpdesk_store, "fanny", name="Fanny", password=PASSWORD, roles=["technician"], language="fr")
    sign_in(client, "fanny")
    home = client.get("/").text
    assert "Se déconnecter" in home and "Tickets en attente de prise en charge" in home     # UI and definitions
    assert '<html lang="fr" data-zone="Europe/Paris">' in home


def test_an_in_place_editor_for_a_record_that_does_not_exist_answers_escaped(client):
    sign_in(client, "cmartin", "demo-password")
    answer = client.get("/r/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E/inline/title", headers={"HX-Request": "true"})
    assert answer.status_code == 404 and 'role="alert"' in answer.text
    assert "<img" not in answer.text and "&lt;img src=x onerror=alert(1)&gt;" in answer.text


def test_every_action_answers_once_on_the_next_page(client, helpdesk_store):
    sign_in(client, "tina", PASSWORD)
    token = csrf_of(client.get("/").text)
    number = helpdesk_store.read(lambda s: s.query("ticket", {"status": "awaiting_pickup"}, "id", limit=1)
                                 .records[0].number)
    taken = client.post(f"/r/{number}/fire/take", data={"csrf": token, "time_spent": "5m"})
    assert taken.status_code == 303
    page = client.get(taken.headers["location"]).text
    assert f'<p class="done said" role="status">Take: done on {number}.</p>' in page
    assert 'class="done said"' not in client.get(taken.headers["location"]).text      # said once
    followed = client.post(f"/r/{number}/join/watchers", data={"csrf": token, "leave": "0"})
    assert f"You are among Watchers of {number}." in client.get(followed.headers["location"]).text


def test_a_dispatcher_assigns_a_ticket_by_the_technicians_name(client, helpdesk_store):
    number = helpdesk_store.read(lambda s: s.query("ticket", {"status": "awaiting_pickup"}, "-id", limit=1)
                                 .records[0].number)
    sign_in(client, "jroux", "demo-password")
    page = client.get(f"/r/{number}").text
    held = helpdesk_store.read(lambda s: s.count("ticket", {"assignee": "sbernard", "status": {
        "not_in": ["resolved", "rejected", "cancelled", "closed"]}}))
    offered = re.search(r'<datalist id="people-assign-assignee">(.*?)</datalist>', page).group(1)
    assert f'<option value="sbernard">Sophie Bernard · {held} open</option>' in offered and held > 0
    assert 'value="ngirard"' not in offered and 'value="jroux"' not in offered   # only those who work tickets
    refused = client.post(f"/r/{number}/fire/assign", data={"csrf": csrf_of(page), "assignee": "Sophie B."})
    assert refused.status_code == 422 and "Sophie B." in html.unescape(refused.text)
    done = client.post(f"/r/{number}/fire/assign", data={"csrf": csrf_of(page), "assignee": "sophie bernard"})
    assert done.status_code == 303, done.text
    assert helpdesk_store.read(lambda s: s.find(number)["assignee"]) == "sbernard"


def test_a_wrong_filter_is_told_as_a_sentence_without_the_engines_path(client):
    sign_in(client, "cmartin", "demo-password")
    page = client.get("/v/open_tickets", params={"f": "{status: dunno}"})
    text = html.unescape(page.text)
    assert "`dunno` is not one of" in text and "all[" not in text


def test_a_picture_is_shown_as_a_thumbnail_by_its_bytes_and_anything_else_is_only_downloaded(client, helpdesk_store):
    from deskbase.objects.fields import Upload
    number = helpdesk_store.read(lambda s: s.query("ticket", limit=1).records[0].number)
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    helpdesk_store.run(lambda s: s.update(number, {"attachments": [
        Upload("screen.png", png, "image/png"), Upload("fake.png", b"<svg onload=alert(1)>", "image/png"),
        Upload("report.pdf", b"%PDF-1.4 report", "application/pdf")]}))
    sign_in(client, "cmartin", "demo-password")
    page = client.get(f"/r/{number}").text
    urls = dict(re.findall(r'<a href="(/r/[^"]+/files/[^"?]+)" download>([^<]+)</a>', page))
    by_name = {name: url for url, name in urls.items()}
    assert f'<img src="{by_name["screen.png"]}?view=1"' in page and f'href="{by_name["report.pdf"]}?view=1"' in page
    shown = client.get(by_name["screen.png"], params={"view": "1"})
    assert shown.headers["content-type"] == "image/png" and shown.headers["content-disposition"].startswith("inline")
    assert "default-src 'none'" in shown.headers["content-security-policy"]
    faked = client.get(by_name["fake.png"], params={"view": "1"})               # its bytes are no picture
    assert faked.headers["content-type"] == "application/octet-stream"
    assert faked.headers["content-disposition"].startswith("attachment")
    assert client.get(by_name["report.pdf"], params={"view": "1"}).headers["content-type"] == "application/pdf"


def test_a_ref_with_too_many_records_to_list_finds_them_as_they_are_typed(app_store):
    from deskbase.views.forms import MAX_CHOICES
    with app_store() as store:
        store.run(lambda s: [s.create("organization", {"name": f"Client {n:03d}", "code": f"C{n:03d}"})
                             for n in range(MAX_CHOICES + 1)])
        wanted = store.run(lambda s: s.create("organization", {"name": "Imprimerie Dupont", "code": "IMPD"}).number)
        create_account(store, "sam", name="Sam Super", password=PASSWORD, roles=["supervisor"], email="sam@x.example")
        with TestClient(create_app(store), follow_redirects=False) as client:
            sign_in(client, "sam")
            form = client.get("/new/ticket").text
            assert 'hx-get="/forms/ticket/pick/organization"' in form and 'list="pick-organization"' in form
            found = client.get("/forms/ticket/pick/organization", params={"organization": "impri dup"}).text
            assert f'<option value="{wanted}">{wanted} Imprimerie Dupont</option>' in found
            assert "Client 001" not in found
            assert client.get("/forms/ticket/pick/organization", params={"organization": "zz"}).text.strip() == ""
            made = client.post("/new/ticket", data={"csrf": csrf_of(form), "title": "Printer", "kind": "incident",
                                                    "impact": "team", "criticality": "low", "organization": wanted})
            assert made.status_code == 303, made.text


def test_a_time_typed_in_a_form_says_its_zone(client):
    sign_in(client, "cmartin", "demo-password")
    form = client.get("/new/ticket").text
    widget = re.search(r'<input type="datetime-local"[^>]*name="reported_at"[^>]*>[^<]*<small[^>]*>([^<]+)</small>',
                       form)
    assert widget is not None and widget.group(1) == "Europe/Paris"


def test_every_page_is_drawn_from_one_transaction(client, helpdesk_store, monkeypatch):
    """One connection, one snapshot per request: the header's menu, its counts and the
    page's body agree, whatever is written meanwhile."""
    number = helpdesk_store.read(lambda s: s.query("ticket", {"assignee": "sbernard"}, "id", limit=1).records[0].number)
    sign_in(client, "sbernard", "demo-password")
    opened, real = [], helpdesk_store.db.open
    monkeypatch.setattr(helpdesk_store.db, "open", lambda *a, **k: opened.append(1) or real(*a, **k))
    for path in ("/", f"/r/{number}", "/v/my_tickets", "/search?q=impri", f"/r/{number}/edit", "/new/ticket"):
        opened.clear()
        assert client.get(path).status_code == 200
        assert len(opened) == 1, (path, len(opened))


def test_every_answer_forbids_frames_inline_script_and_guessing(client, helpdesk_store):
    sign_in(client, "cmartin", "demo-password")
    number = helpdesk_store.read(lambda s: s.query("ticket", limit=1).records[0].number)
    for path in ("/", f"/r/{number}", "/r/T-999999", "/v/open_tickets", "/static/deskbase.js", "/login"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
        assert (headers["x-frame-options"], headers["x-content-type-options"], headers["referrer-policy"]) == (
            "DENY", "nosniff", "same-origin"), path


def test_no_page_needs_an_inline_style_or_script(client, helpdesk_store):
    sign_in(client, "cmartin", "demo-password")
    number = helpdesk_store.read(lambda s: s.query("ticket", {"status": "in_progress"}, limit=1).records[0].number)
    organization = helpdesk_store.read(lambda s: s.get("asset", s.query("ticket", {"asset": {"ne": None}}, limit=1)
                                                              .records[0]["asset"]).number)        # its summaries
    for path in ("/", f"/r/{number}", f"/r/{organization}", "/v/open_tickets", "/new/ticket", "/search?q=impri"):
        page = client.get(path).text
        assert not re.search(r"\sstyle=|<style|<script(?![^>]*\ssrc=)|\son[a-z]+=", page), path


@pytest.mark.parametrize("trusted, sent, seen", [
    ("", "198.51.100.1", "127.0.0.1"),                     # nobody's X-Forwarded-For believed by default
    ("127.0.0.1", "198.51.100.1", "198.51.100.1"),         # a proxy named: its header names the client
    ("10.0.0.5", "198.51.100.1", "127.0.0.1"),             # another proxy named: this one is not it
])
def test_only_a_trusted_proxy_names_the_client(trusted, sent, seen):
    import socket
    import threading
    import time

    import httpx
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from deskbase.cli.serving import proxy_options
    echo = Starlette(routes=[Route("/", lambda request: PlainTextResponse(request.client.host))])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(echo, host="127.0.0.1", port=port, log_level="warning",
                                           **proxy_options(trusted)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/", headers={"X-Forwarded-For": sent})
    finally:
        server.should_exit = True
        thread.join(5)
    assert answer.text == seen
