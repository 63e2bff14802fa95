"""The helpdesk's statistics (T21): tickets and hours per month, per customer, per category,
targets met per month, the business time to first response — as the supervisor and the
customer read them on the page, each figure re-counted from the records, each within the
reader's scope; the chart definitions refused with a sentence at their line."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_skeleton
from starlette.testclient import TestClient

from deskbase.objects.errors import DefinitionErrors
from deskbase.objects.tallies import periods_ending
from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.application import load_application
from deskbase.rules.process.workflows import fire
from deskbase.views.app import create_app

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"
SAM = Identity("sam", "Sam", ("supervisor",))
TINA = Identity("tina", "Tina", ("technician",))
TODAY = datetime.now(PARIS).date()           # the pages count the last months up to today's


def months_ago(months: int, day: int) -> date:
    """A day of the month `months` before the current one."""
    month = TODAY.month - 1 - months
    return date(TODAY.year + month // 12, month % 12 + 1, day)


# (organization, date of the work, minutes, billable) — two customers over three months
WORK = [("acme", months_ago(2, 3), 90, True), ("acme", months_ago(1, 14), 45, False),
        ("acme", months_ago(0, 1), 30, True), ("globex", months_ago(0, 1), 120, True),
        ("globex", months_ago(1, 1), 15, True), ("acme", months_ago(13, 1), 600, True)]   # the last: too old


@pytest.fixture(scope="module")
def desk(app_store):
    with app_store() as store:
        for login, roles in (("sam", ["supervisor"]), ("tina", ["technician"])):
            create_account(store, login, name=login.title(), password=PASSWORD, roles=roles)

        def setup(session):
            orgs = {code.lower(): session.create("organization", {"name": code.title(), "code": code}).id
                    for code in ("ACME", "GLOBEX")}
            tickets = {org: session.create("ticket", {"title": f"{org} printer", "organization": orgs[org]}).number
                       for org in orgs}
            for org, day, minutes, billable in WORK:
                session.create("work_entry", {"ticket": tickets[org], "date": day, "duration": f"{minutes}m",
                                              "billable": billable, "performer": "tina", "description": "done"})
            return orgs, tickets
        store.orgs, store.tickets = store.run(setup, now=NOW)
        create_account(store, "carl", name="Carl", password=PASSWORD, roles=["customer_user"],
                       organization=store.orgs["acme"])
        yield store


def signed_in(store, login: str) -> TestClient:
    client = TestClient(create_app(store), follow_redirects=False)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.post("/login", data={"login": login, "password": PASSWORD, "csrf": csrf}).status_code == 303
    return client


def table(page: str) -> dict[str, list[str]]:
    """The statistics table of a page: row label → its cells, and `periods` → the headers."""
    found = page[page.index('<table class="figures">'):page.index("</table>", page.index('<table class="figures">'))]
    rows = {"periods": re.findall(r'<th scope="col">([^<]*)</th>', found)}
    for label, cells in re.findall(r'<tr[^>]*><th scope="row">([^<]*)</th>(.*?)</tr>', found, re.S):
        rows[label] = re.findall(r"<td>([^<]*)</td>", cells)
    return rows


def hours(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}" if h and m else f"{h}h" if h else f"{m}m"


def test_the_supervisor_reads_hours_per_month_billable_and_internal_as_the_records_add_up(desk):
    page = signed_in(desk, "sam").get("/v/hours_per_month").text
    figures = table(page)
    months = periods_ending(TODAY, "month", 12)
    assert figures["periods"][-1] == format_skeleton("MMMyyyy", TODAY, locale="en") and len(figures["periods"]) == 12
    for label, billable in (("Billable: yes", True), ("Billable: no", False)):
        expected = []
        for start, end in months:
            minutes = [m for _, day, m, b in WORK if b == billable and start <= day < end]
            expected.append(hours(sum(minutes)) if minutes else "–")
        assert figures[label] == expected, label
    assert figures["Total"][-3:] == [hours(90), hours(45 + 15), hours(30 + 120)]


def test_a_customer_reads_only_the_hours_worked_for_their_organization(desk):
    page = signed_in(desk, "carl").get("/v/our_hours_per_month").text
    figures = table(page)
    only = [row for label, row in figures.items() if label != "periods"]
    assert len(only) == 1 and only[0][-3:] == [hours(90), "–", hours(30)]       # Acme's billable work alone
    assert hours(120) not in page


def test_a_column_links_to_the_records_it_counts(desk):
    client = signed_in(desk, "sam")
    page = client.get("/v/hours_per_month").text
    start = months_ago(0, 1).isoformat()
    link = re.search(rf'<a href="(/v/hours_per_month\?f=[^"]*gte%3A\+{start}[^"]*billable%3A\+true[^"]*)">', page)
    listed = client.get(link.group(1).replace("&amp;", "&")).text
    assert re.search(r"1–2 of 2\b", listed), re.findall(r"class=\"count\">([^<]*)<", listed)


def test_the_business_time_to_first_response_is_kept_when_the_ticket_is_taken(app_store):
    with app_store() as store:
        create_account(store, "tina", name="Tina", password=PASSWORD, roles=["technician"])
        reported = datetime(2026, 11, 16, 9, 0, tzinfo=PARIS)            # a Monday, 9:00 in Paris
        number = store.run(lambda s: s.create("ticket", {"title": "scanner", "reported_at": reported}).number,
                           now=reported)
        assert store.read(lambda s: s.find(number)["response_time"]) is None      # still running
        store.run(lambda s: fire(s, number, "take", {"time_spent": "5m"}), identity=TINA,
                  now=reported + timedelta(hours=2, minutes=30))
        ticket = store.read(lambda s: dict(s.find(number).values))
    assert ticket["response_time"] == 2 * 3600 + 30 * 60 and ticket["resolution_time"] is None


@pytest.mark.parametrize("chart, message", [
    ("{over: title}", "a chart's periods come from an indexed date or datetime field; `title` is not one"),
    ("{by: status, sum: title}", "a chart adds up an indexed number field"),
    ("{every: month}", "a chart needs `by` (a field whose values make the bars), `over` (a date field"),
    ("{over: reported_at, sum: response_time, average: response_time}", "one of them"),
    ("{by: status, open_until: resolved_at}", "give the date that begins a record as `over`"),
    ("{over: reported_at, every: fortnight}", "`fortnight` is not day, week, month, quarter or year"),
])
def test_a_chart_that_cannot_be_drawn_is_refused_at_its_line(tmp_path, chart, message):
    import shutil
    from pathlib import Path
    folder = tmp_path / "definitions"
    shutil.copytree(Path(__file__).parents[2] / "definitions", folder)
    path = folder / "helpdesk.yaml"
    text = path.read_text()
    old = "chart: {over: reported_at, every: week, periods: 12, by: priority}"
    assert old in text
    path.write_text(text.replace(old, f"chart: {chart}"))
    line = text[:text.index(old)].count("\n") + 1
    with pytest.raises(DefinitionErrors) as caught:
        load_application(folder)
    said = [str(error) for error in caught.value.errors]
    assert any(f"helpdesk.yaml:{line}:" in text and message in text for text in said), said


def test_the_backlog_counts_what_is_still_open_at_the_end_of_each_week(app_store):
    now = datetime.now(timezone.utc)
    # (days before now it was reported, days before now it was resolved or None)
    tickets = [(80, 70), (40, None), (30, 20), (20, 1), (10, None), (3, None), (100, 95)]
    with app_store() as desk:
        create_account(desk, "sam", name="Sam", password=PASSWORD, roles=["supervisor"])
        desk.run(lambda s: [s.create("ticket", {"title": f"T{n}", "priority": "high",
                                                "reported_at": now - timedelta(days=reported),
                                                "resolved_at": now - timedelta(days=resolved) if resolved else None})
                            for n, (reported, resolved) in enumerate(tickets)])
        figures = table(signed_in(desk, "sam").get("/v/backlog_per_week").text)
    weeks = periods_ending(TODAY, "week", 12)
    expected = []
    for _, end in weeks:
        closing = datetime.combine(end, datetime.min.time(), PARIS)
        expected.append(str(sum(1 for reported, resolved in tickets
                                if now - timedelta(days=reported) < closing
                                and (resolved is None or now - timedelta(days=resolved) >= closing))))
    assert figures["High"] == expected and expected[-1] == "3" and expected[0] != "0"
