"""Documents (P19): PDFs made from sandboxed templates, showing a record's displayed values and
only what the reader may read; broken templates reported at load; files outside the template's
folder never read; kept in a field by a transition, or by the `create` entry that made the
record, and mailed through a real SMTP server."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from deskbase.connectors.smtp import SmtpSender
from deskbase.objects.errors import DefinitionErrors, NotFound
from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.access.scopes import AccessDenied
from deskbase.rules.application import load_application
from deskbase.rules.documents.making import folder_fetcher, keep_copy, offered, render
from deskbase.rules.documents.section import DocumentError
from deskbase.rules.messages.outbox import deliver_due, list_messages
from deskbase.rules.process.workflows import fire

DOCUMENTS_APP = Path(__file__).parent / "documents_app"
PASSWORD = "correct horse battery"
ANN = Identity("ann", "Ann Agent", ("agent",))
BOSS = Identity("bea", "Bea Boss", ("boss",), superuser=True)
GUEST = Identity("gus", "Gus", ("guest",))


def pdf_text(content: bytes, tmp_path: Path) -> str:
    """The text of a PDF as poppler's pdftotext reads it, spaces made plain."""
    path = tmp_path / "document.pdf"
    path.write_bytes(content)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split())


def plain(text: str) -> str:
    return " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split())


def variant(tmp_path: Path, *replacements: tuple[str, str], files: dict[str, str] | None = None) -> Path:
    """A copy of the documents app with texts of its files replaced and files added."""
    folder = tmp_path / "app"
    shutil.copytree(DOCUMENTS_APP, folder)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    path = folder / "desk.yaml"
    text = path.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)
    return folder


@pytest.fixture(scope="module")
def definitions():
    return load_application(DOCUMENTS_APP)


def add_jobs(store) -> None:
    """Ann's account; her job at the depot, with a step of hers and one of Bob's; a job of Bob's."""
    create_account(store, "ann", name="Ann Agent", password=PASSWORD, roles=["agent"], email="ann@example.org",
                   language="en")

    def setup(session):
        site = session.create("site", {"name": "Depot", "address": "1 rue du Port"})
        job = session.create("job", {"subject": "Fix <the> pump", "site": site.id, "agent": "ann", "urgency": "high",
                                     "price": "1234.5", "planned": "2026-11-20", "secret": "s3cr3t-code"})
        session.create("step", {"job": job.id, "author": "ann", "minutes": "1h30", "text": "Cleaned the filter"})
        session.create("step", {"job": job.id, "author": "bob", "minutes": "45m", "text": "Bob's private step"})
        other = session.create("job", {"subject": "Someone else's job", "agent": "bob"})
        return job.number, other.number
    store.job, store.other_job = store.run(setup)


@pytest.fixture
def desk(app_store, definitions):
    with app_store(definitions) as store:
        add_jobs(store)
        yield store


def test_a_document_shows_the_records_displayed_values_in_the_readers_language(desk, tmp_path):
    made = desk.read(lambda session: render(session, "job_sheet", desk.job, language="en"))
    html = plain(made.html)
    assert made.filename == "J-0001-sheet.pdf"
    assert "<h1>Job J-0001</h1>" in html
    assert "Fix &lt;the&gt; pump" in html                        # autoescaped
    assert "<dd>High</dd>" in html                               # an enum's label
    assert "Depot — 1 rue du Port" in html                       # a ref's title, and the record it points at
    assert "<dd>Ann Agent</dd>" in html                          # a person's name, not their login
    assert "€1,234.50" in html and "Nov 20, 2026" in html
    assert "<td>1h30</td>" in html and "Total: 2h15" in html
    french = pdf_text(desk.read(lambda session: render(session, "job_sheet", desk.job, language="fr")).pdf, tmp_path)
    assert "Intervention J-0001" in french and "Urgence Haute" in french
    assert "1 234,50 €" in french and "20 nov. 2026" in french
    assert "page 1 / 1" in french                                # the style sheet beside the template was read


def test_more_records_than_a_document_lists_are_refused_never_counted_short(desk, monkeypatch):
    # With a cap of one record, the sheet would list one of its two steps under their total.
    from deskbase.rules.documents import making
    monkeypatch.setattr(making, "MAX_ROWS", 1)
    with pytest.raises(DocumentError) as refused:
        desk.read(lambda session: render(session, "job_sheet", desk.job, language="en"))
    message = str(refused.value)
    assert message.startswith("the document `job_sheet` of J-0001 could not be made: ")
    assert "job_sheet.html line 16: 2 records of step (`step`) match, and a document lists 1 at most; narrow the " \
           "filter, split the period, or give a `limit` to list only the first ones" in message
    monkeypatch.setattr(making, "MAX_ROWS", 2)
    assert "Total: 2h15" in plain(desk.read(lambda session: render(session, "job_sheet", desk.job, language="en")).html)


def test_a_template_that_asks_for_the_first_records_gets_them(desk, tmp_path, app_store):
    folder = variant(tmp_path, files={"documents/job_sheet.html": (DOCUMENTS_APP / "documents/job_sheet.html")
                                      .read_text().replace('related("step", "job", sort="id")',
                                                           'query("step", {"job": record.id}, "id", limit=1)')})
    with app_store(load_application(folder)) as store:
        add_jobs(store)
        html = plain(store.read(lambda session: render(session, "job_sheet", store.job, language="en")).html)
    assert "Cleaned the filter" in html and "Bob's private step" not in html


def test_a_broken_template_is_reported_at_load_with_its_file_and_line(tmp_path):
    broken = "<h1>{{ record.number }}</h1>\n<p>fine</p>\n<p>{{ record.subject }</p>\n<p>after</p>\n"
    folder = variant(tmp_path, files={"documents/job_sheet.html": broken})
    with pytest.raises(DefinitionErrors) as raised:
        load_application(folder)
    [error] = raised.value.errors
    assert error.file.endswith("documents/job_sheet.html")
    assert error.line == 3 and "does not read" in error.message


def test_a_template_included_by_another_is_checked_at_load_too(tmp_path):
    folder = variant(tmp_path, files={"documents/_parts.html": "ok\n{{ record.number }\n"})
    with pytest.raises(DefinitionErrors) as raised:
        load_application(folder)
    [error] = raised.value.errors
    assert error.file.endswith("documents/_parts.html") and error.line == 2


def test_a_missing_template_and_a_wrong_field_are_reported_in_the_yaml(tmp_path):
    folder = variant(tmp_path, ("template: documents/job_sheet.html", "template: documents/nowhere.html"),
                     ("attach_to: papers", "attach_to: subject"))
    with pytest.raises(DefinitionErrors) as raised:
        load_application(folder)
    messages = {error.path: (error.file, error.message) for error in raised.value.errors}
    assert messages["documents.job_sheet.attach_to"][1] == "`subject` is not an attachments field of `job`"
    file, message = messages["documents.job_sheet.template"]
    assert file.endswith("desk.yaml") and "nowhere.html" in message


def test_a_transition_may_only_keep_a_document_made_from_its_type(tmp_path):
    folder = variant(tmp_path, ("attach_document: job_sheet", "attach_document: job_shet"))
    with pytest.raises(DefinitionErrors) as raised:
        load_application(folder)
    [error] = raised.value.errors
    assert error.path == "types.job.workflow.transitions.finish.attach_document"
    assert "`job_shet` is not a document" in error.message and "job_sheet" in error.hint


@pytest.mark.parametrize("expression", ["record.__class__", "record._record", "related.__globals__",
                                        "record.text.__func__", "''.__class__.__mro__"])
def test_the_sandbox_refuses_to_reach_into_python(app_store, tmp_path, expression):
    folder = variant(tmp_path, files={"documents/job_sheet.html": f"<p>{{{{ {expression} }}}}</p>"})
    with app_store(folder) as desk:
        add_jobs(desk)
        with pytest.raises(DocumentError, match=r"job_sheet.html line 1: .*(may not read|unsafe)"):
            desk.read(lambda session: render(session, "job_sheet", desk.job, pdf=False))


def test_the_pdf_reads_no_file_outside_the_templates_folder(app_store, tmp_path):
    page = ('<link rel="stylesheet" href="sheet.css"><link rel="stylesheet" href="../secret.css">'
            '<link rel="stylesheet" href="http://127.0.0.1:9/remote.css">'
            '<img src="file:///etc/hostname"><h1>{{ record.number }}</h1>')
    folder = variant(tmp_path, files={"documents/job_sheet.html": page,
                                      "documents/sheet.css": 'h1::after { content: " INSIDE-STYLE"; }',
                                      "secret.css": 'h1::before { content: "TOP-SECRET "; }'})
    with app_store(folder) as desk:
        add_jobs(desk)
        text = pdf_text(desk.read(lambda session: render(session, "job_sheet", desk.job)).pdf, tmp_path)
    assert "J-0001 INSIDE-STYLE" in text
    assert "TOP-SECRET" not in text
    fetcher = folder_fetcher(folder / "documents")
    for refused in ((folder / "secret.css").as_uri(), "file:///etc/passwd", "http://127.0.0.1:9/remote.css",
                    (folder / "documents" / ".." / "desk.yaml").as_uri()):
        with pytest.raises(ValueError, match="reads only the files beside its template"):
            fetcher.fetch(refused)
    assert fetcher.fetch((folder / "documents" / "sheet.css").as_uri()).read().startswith(b"h1::after")


def test_a_reader_never_sees_in_a_pdf_a_record_or_a_field_they_may_not_read(desk, tmp_path):
    ann = pdf_text(desk.read(lambda session: render(session, "job_sheet", desk.job), identity=ANN).pdf, tmp_path)
    boss = pdf_text(desk.read(lambda session: render(session, "job_sheet", desk.job), identity=BOSS).pdf, tmp_path)
    assert "Cleaned the filter" in ann and "Bob's private step" not in ann        # related(): her steps only
    assert "steps 1" in ann and "steps 2" in boss                                  # count(): her scope
    assert "s3cr3t-code" not in ann and "s3cr3t-code" in boss                      # a hidden field reads as nothing
    assert "Bob's private step" in boss
    with pytest.raises(NotFound):                                                  # not hers: it does not exist
        desk.read(lambda session: render(session, "job_sheet", desk.other_job), identity=ANN)


def test_only_the_roles_of_a_document_may_make_it(desk):
    assert desk.read(lambda session: [d.name for d in offered(session, session.find(desk.job))], identity=GUEST) == []
    with pytest.raises(AccessDenied, match="made by agent, boss"):
        desk.read(lambda session: render(session, "job_sheet", desk.job), identity=GUEST)
    assert desk.read(lambda session: [d.name for d in offered(session, session.find(desk.job))],
                     identity=ANN) == ["job_sheet"]


def test_the_transition_keeps_the_pdf_made_as_its_actor_in_the_field(desk, tmp_path):
    desk.run(lambda session: fire(session, desk.job, "finish"), identity=ANN)
    files = desk.read(lambda session: [(item.filename, item.content_type, item.read())
                                       for item in session.find(desk.job).get("papers")])
    [(filename, content_type, content)] = files
    assert (filename, content_type) == ("J-0001-sheet.pdf", "application/pdf") and content.startswith(b"%PDF")
    text = pdf_text(content, tmp_path)
    assert "Cleaned the filter" in text and "Bob's private step" not in text
    history = desk.read(lambda session: [entry.get("reason") for entry in session.find(desk.job).history.entries])
    assert history[-2:] == ["transition finish", "document job_sheet"]


def follow_up(keeping: str = "job") -> tuple[str, str]:
    """`finish` made to create a follow-up job, then a copy of each step for it; the entry
    making `keeping` (job or step) keeps the job sheet of what it makes."""
    keep = "\n              keep_document: job_sheet"
    return ("        finish: {from: [open], to: done, attach_document: job_sheet}", f"""\
        finish:
          from: [open]
          to: done
          create:
            - type: job
              values: {{subject: "= 'Follow-up of ' ~ record.subject", agent: $record.agent}}{keep if keeping == "job" else ""}
            - type: step
              from: {{type: step, filter: {{job: $record.id}}}}
              values: {{job: $created.id, author: $from.author, minutes: $from.minutes, text: "= 'Again: ' ~ source.text"}}\
{keep if keeping == "step" else ""}""")


def test_a_created_record_keeps_its_document_made_once_the_later_entries_are_made(app_store, tmp_path):
    with app_store(variant(tmp_path, follow_up())) as desk:
        add_jobs(desk)
        desk.run(lambda session: fire(session, desk.job, "finish"), identity=ANN)
        made = desk.read(lambda session: session.query("job", {"agent": "ann"}, sort="-id", limit=1)
                              .records[0].number)
        [(filename, content)] = desk.read(lambda session: [(item.filename, item.read())
                                                           for item in session.find(made).get("papers")])
        history = desk.read(lambda session: [entry.get("reason") for entry in session.find(made).history.entries])
    assert filename == f"{made}-sheet.pdf"
    text = pdf_text(content, tmp_path)
    assert "Follow-up of Fix <the> pump" in text
    assert "Again: Cleaned the filter" in text                      # a step the next entry made for it
    assert "Again: Bob's private step" not in text                  # made as the actor: what she may read
    assert history[-1] == "document job_sheet"


def test_a_create_entry_may_only_keep_a_document_of_the_type_it_makes(tmp_path):
    folder = variant(tmp_path, follow_up(keeping="step"))
    with pytest.raises(DefinitionErrors) as raised:
        load_application(folder)
    [error] = raised.value.errors
    assert error.path == "types.job.workflow.transitions.finish.create[1].keep_document"
    assert error.message == "`job_sheet` is made from job records, not from step records"


def test_keeping_a_copy_goes_through_the_write_path(desk):
    desk.run(lambda session: keep_copy(session, "job_sheet", desk.job), identity=ANN)
    assert desk.read(lambda session: len(session.find(desk.job).get("papers"))) == 1
    with pytest.raises(NotFound):
        desk.run(lambda session: keep_copy(session, "job_sheet", desk.other_job), identity=ANN)


def test_the_notification_carries_the_pdf_through_a_real_smtp_server(desk, smtp_server):
    desk.run(lambda session: fire(session, desk.job, "finish"), identity=ANN)
    queued = desk.read(lambda session: [(m.subject, m.attachments) for m in list_messages(session)])
    assert queued == [("J-0001 is done", (("J-0001", "papers"),))]        # a reference, not the bytes
    sender = SmtpSender("127.0.0.1", smtp_server.port, sender_address="desk@example.org")
    report = deliver_due(desk, {"email": sender})
    assert len(report.sent) == 1
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["office@example.org"]
    [part] = list(mail.message.iter_attachments())
    assert part.get_filename() == "J-0001-sheet.pdf" and part.get_content_type() == "application/pdf"
    assert part.get_content().startswith(b"%PDF")
    assert "is attached" in mail.message.get_body(("plain",)).get_content()


def test_files_added_after_the_message_was_queued_do_not_travel(desk, smtp_server):
    desk.run(lambda session: fire(session, desk.job, "finish"), identity=ANN)
    later = desk.run(lambda session: keep_copy(session, "job_sheet", desk.job), identity=BOSS)
    assert len(later.get("papers")) == 2
    deliver_due(desk, {"email": SmtpSender("127.0.0.1", smtp_server.port, sender_address="desk@example.org")})
    [mail] = smtp_server.received
    assert len(list(mail.message.iter_attachments())) == 1


def test_a_notification_attaches_only_an_attachments_field_by_email(tmp_path):
    folder = variant(tmp_path, ("    attach: papers", "    attach: paper"))
    with pytest.raises(DefinitionErrors) as raised:
        load_application(folder)
    [error] = raised.value.errors
    assert error.path == "notifications.job_done.attach"
    assert error.message == "`paper` is not an attachments field of `job`" and error.hint == "did you mean `papers`?"
