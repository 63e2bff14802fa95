"""The helpdesk's documents (T21): a ticket's service protocol lists its work entries with their
total, the SLA report counts what a query counts; both are downloaded from the record page as
attachments, only by whom may read the record, and written by the `deskbase document` command."""
from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from pathlib import Path

from demo_web import csrf_of, sign_in

from deskbase.cli import main
from deskbase.rules.access.identity import identity_of
from deskbase.rules.application import load_application, load_application_demo, open_store
from deskbase.rules.documents.formatting import format_hours
from deskbase.rules.documents.making import render

DEFINITIONS = Path(__file__).parents[2] / "definitions"


def pdf_text(content: bytes, tmp_path: Path) -> str:
    path = tmp_path / "document.pdf"
    path.write_bytes(content)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split())


def worked_ticket(session, organization_code: str = "CHAB") -> str:
    """A demo ticket of an organization with at least two billable work entries."""
    organization = session.query("organization", {"code": organization_code}, limit=1).records[0]
    for ticket in session.query("ticket", {"organization": organization.id}, "id", limit=None).records:
        if session.count("work_entry", {"ticket": ticket.id, "billable": True}) >= 2:
            return ticket.number
    raise AssertionError("the demo has no ticket with two billable work entries")


def test_the_service_protocol_lists_the_work_entries_and_their_total(demo, tmp_path):
    def work(session):
        number = worked_ticket(session)
        ticket = session.find(number)
        entries = session.query("work_entry", {"ticket": ticket.id}, "date", limit=None).records
        return number, ticket.get("title"), [(e.get("duration"), e.get("description")) for e in entries], \
            render(session, "service_protocol", number, language="en")
    number, title, entries, made = demo.read(work)
    assert made.filename == f"{number}-protocol.pdf"
    text = pdf_text(made.pdf, tmp_path)
    assert "Service protocol" in text and number in text and title.split()[0] in text
    for duration, description in entries:
        assert format_hours(duration) in text
        if description:
            assert description.split()[0] in text
    assert f"Total time {format_hours(sum(duration for duration, _ in entries))}" in text
    assert "For the customer" in text and "Page 1 /" in text


def test_a_customer_sees_only_billable_work_and_public_comments_in_the_protocol(demo, tmp_path):
    jdupont = identity_of(demo, "jdupont")

    def work(session):
        chabrier = session.query("organization", {"code": "CHAB"}, limit=1).records[0].id
        internal_work = session.query("work_entry", {"organization": chabrier, "billable": False}, limit=1).records[0]
        ticket = session.get("ticket", internal_work.get("ticket"))
        number = ticket.number
        billable = [e.get("duration") for e in session.query("work_entry", {"ticket": ticket.id, "billable": True},
                                                             limit=None).records]
        internal = [c.get("body") for c in session.query("comment", {"ticket": ticket.id, "visibility": "internal"},
                                                         limit=None).records]
        return number, billable, internal, internal_work.get("description")
    number, billable, internal, internal_work = demo.read(work)
    assert internal
    made = demo.read(lambda session: render(session, "service_protocol", number, language="fr"), identity=jdupont)
    text = pdf_text(made.pdf, tmp_path)
    assert "Protocole d'intervention" in text
    assert internal_work.split(":")[0] not in text
    assert f"Temps total {format_hours(sum(billable))}" in text
    for body in internal:
        assert body.split(".")[0] not in text


def chabrier_report(session, title: str):
    """An SLA report of Transports Chabrier's last two months and more; (it, the customer's
    id, its first and last day, the filter of its tickets)."""
    chabrier = session.query("organization", {"code": "CHAB"}, limit=1).records[0].id
    starts, ends = session.today.replace(day=1) - timedelta(days=60), session.today
    report = session.create("sla_report", {"title": title, "organization": chabrier, "starts": starts, "ends": ends})
    scope = {"organization": chabrier, "reported_at": {"gte": starts, "lt": ends + timedelta(days=1)}}
    return report, chabrier, starts, ends, scope


def test_the_sla_report_counts_what_a_query_counts(demo, tmp_path):
    def work(session):
        report, _, _, _, scope = chabrier_report(session, "Last two months")
        counts = {value: session.count("ticket", {**scope, "priority": value})
                  for value in session.definitions.types["ticket"].fields["priority"].kind.values}
        states = {state: session.count("ticket", {**scope, "sla_state": state}) for state in ("met", "breached")}
        return report.number, counts, states
    number, counts, states = demo.run(work)
    made = demo.read(lambda session: render(session, "sla_report", number, language="en"))
    labels = {"urgent": "Urgent", "very_high": "Very high", "high": "High", "medium": "Medium", "low": "Low",
              "very_low": "Very low"}
    for value, label in labels.items():
        row = re.search(rf"<tr><td>{label}</td><td class=\"amount\">(\d+)</td>", made.html)
        assert row and int(row.group(1)) == counts[value], value
    total = re.search(r"<tfoot><tr><td>Total</td><td class=\"amount\">(\d+)</td>(.*?)</tr>", made.html, re.S)
    cells = [int(cell) for cell in re.findall(r"<td class=\"amount\">(\d+)</td>", total.group(2))]
    assert int(total.group(1)) == sum(counts.values()) > 0
    assert (cells[2], cells[3]) == (states["met"], states["breached"])
    text = pdf_text(made.pdf, tmp_path)
    assert f"Total {sum(counts.values())} {cells[0]} {cells[1]} {cells[2]} {cells[3]}" in text
    assert "Transports Chabrier SA" in text and "tickets reported" in text
    assert "Tickets out of their agreed time" in text and "Page 1 /" in text


def test_the_sla_report_breaks_the_period_down_by_month_and_category_as_queries_count(demo):
    def work(session):
        report, chabrier, starts, ends, scope = chabrier_report(session, "Breakdown")
        categories = {}
        for category in session.query("category", {"parent": None}, limit=None).records:
            found = {"count": session.count("ticket", {**scope, "category": category.id})}
            for state in ("met", "breached"):
                found[state] = session.count("ticket", {**scope, "category": category.id, "sla_state": state})
            if found["count"]:
                categories[category["name"]] = found
        months = []
        month = starts.replace(day=1)
        while month <= ends:
            following = (month + timedelta(days=32)).replace(day=1)
            months.append(session.count("ticket", {"organization": chabrier, "reported_at": {
                "gte": max(month, starts), "lt": min(following, ends + timedelta(days=1))}}))
            month = following
        return report.number, categories, months
    number, categories, months = demo.run(work)
    made = demo.read(lambda session: render(session, "sla_report", number, language="en", pdf=False))
    by_month = made.html[made.html.index("<h2>By month</h2>"):made.html.index("<h2>By category</h2>")]
    counted = [int(n) for n in re.findall(r'<tr><td>[^<]+</td><td class="amount">(\d+)</td>', by_month)]
    assert counted == months and sum(months) > 0
    by_category = made.html[made.html.index("<h2>By category</h2>"):made.html.index("<h2>Tickets out of")]
    for name, found in categories.items():
        row = re.search(rf'<tr><td>{re.escape(name)}</td><td class="amount">(\d+)</td>\s*'
                        rf'<td class="amount">(\d+)</td><td class="amount">(\d+)</td>', by_category)
        assert row and tuple(int(n) for n in row.groups()) == (found["count"], found["met"], found["breached"]), name


# -- on the web ----------------------------------------------------------------------------


def test_the_record_page_offers_the_protocol_as_a_download(demo, client):
    number = demo.read(worked_ticket)
    sign_in(client, "jdupont")
    page = client.get(f"/r/{number}")
    assert f'href="/r/{number}/documents/service_protocol.pdf"' in page.text
    assert "/documents/service_protocol/keep" not in page.text       # a customer does not change the ticket
    response = client.get(f"/r/{number}/documents/service_protocol.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f"attachment; filename*=UTF-8''{number}-protocol.pdf"
    assert response.content.startswith(b"%PDF")


def test_the_web_refuses_a_document_of_a_record_the_reader_cannot_read(demo, client):
    number = demo.read(worked_ticket)                                     # a ticket of Transports Chabrier
    sign_in(client, "psvoboda")                                           # who works for another customer
    assert client.get(f"/r/{number}/documents/service_protocol.pdf").status_code == 404
    sign_in(client, "jdupont")
    assert client.get(f"/r/{number}/documents/no_such_document.pdf").status_code == 404
    assert client.get("/r/T-999999/documents/service_protocol.pdf").status_code == 404


def test_a_supervisor_keeps_a_copy_in_the_ticket_with_the_forms_token(demo, client):
    number = demo.read(worked_ticket)
    sign_in(client, "cmartin")
    page = client.get(f"/r/{number}")
    assert f'action="/r/{number}/documents/service_protocol/keep"' in page.text
    assert client.post(f"/r/{number}/documents/service_protocol/keep", data={"csrf": "forged"}).status_code == 403
    before = demo.read(lambda session: len(session.find(number).get("attachments") or ()))
    response = client.post(f"/r/{number}/documents/service_protocol/keep", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303 and response.headers["location"] == f"/r/{number}"
    files = demo.read(lambda session: [item.filename for item in session.find(number).get("attachments")])
    assert len(files) == before + 1 and files[-1] == f"{number}-protocol.pdf"


# -- on the command line ---------------------------------------------------------------------

def test_the_command_writes_the_document_as_an_account_sees_it(tmp_path, capsys):
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    with open_store(uri, load_application(DEFINITIONS)) as store:
        load_application_demo(store, DEFINITIONS / "demo")
        number = store.read(worked_ticket)
    out = tmp_path / "protocol.pdf"
    code = main(["--definitions", str(DEFINITIONS), "--db", uri, "document", "service_protocol", number,
                 "--out", str(out), "--as", "jdupont"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"wrote {out}" in printed.out and out.read_bytes().startswith(b"%PDF")
    assert "Service protocol" in pdf_text(out.read_bytes(), tmp_path)
    code = main(["--definitions", str(DEFINITIONS), "--db", uri, "document", "service_protocol", number,
                 "--out", str(tmp_path / "refused.pdf"), "--as", "psvoboda"])
    assert code == 1 and "there is no record numbered" in capsys.readouterr().err
    assert not (tmp_path / "refused.pdf").exists()
    code = main(["--definitions", str(DEFINITIONS), "--db", uri, "document", "service_protocol", number,
                 "--out", str(out), "--attach"])
    assert code == 0 and f"kept a copy in {number}" in capsys.readouterr().out
