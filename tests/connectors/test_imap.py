"""Email in against a real Dovecot (tests/servers/dovecot.py): messages appended to a folder
become records, are marked only after they are stored, survive a crash in the middle of a
batch without loss or duplicate, arrive through IDLE; and the helpdesk's reply loop (T15,
T17): its notification goes out through a real SMTP server, the customer's answer comes
back through IMAP and lands on the same ticket."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from servers.dovecot import new_mail

from deskbase.connectors.channels import CONNECTOR_WORK
from deskbase.connectors.imap import MailboxUnreachable, fetch, start_idle
from deskbase.connectors.smtp import SmtpSender
from deskbase.rules.application import load_application, open_store
from deskbase.rules.intake.mail_intake import QUARANTINED, held_message, mailboxes
from deskbase.rules.messages.outbox import deliver_due, list_messages

MAIL_APP = Path(__file__).parent / "mail_app"
ROOT = Path(__file__).parents[2]


@pytest.fixture
def mailbox(desk_definitions, dovecot, imap_folder, monkeypatch):
    """The test application's mailbox, pointed at the Dovecot folder of this test."""
    monkeypatch.setenv("TEST_IMAP_USER", dovecot.user)
    monkeypatch.setenv("TEST_IMAP_PASSWORD", dovecot.password)
    return dataclasses.replace(mailboxes(desk_definitions)["desk"], host=dovecot.host, port=dovecot.port,
                               folder=imap_folder)


def append(dovecot, folder: str, *messages: bytes) -> None:
    dovecot.append(folder, *messages)


def flags(dovecot, folder: str) -> dict[int, set[bytes]]:
    client = dovecot.client()
    client.select_folder(folder, readonly=True)
    found = {uid: set(item[b"FLAGS"]) for uid, item in client.fetch(client.search(["ALL"]), ["FLAGS"]).items()}
    client.logout()
    return found


def requests_of(store):
    return store.read(lambda s: [(r.number, r["title"], r["description"], [f.filename for f in r["files"]],
                                  s.get("person", r["requester"])["email"])
                                 for r in s.query("request", sort=["id"], limit=None).records])


def test_a_message_becomes_a_record_and_is_marked_seen_only_after_it_is_stored(dovecot, desk, mailbox):
    pdf = b"%PDF-1.4\n" + os.urandom(50_000)
    append(dovecot, mailbox.folder, new_mail(attachment=pdf))
    seen_while_storing = []

    def progress(uid, outcome):      # called once the record is committed, before the flag
        seen_while_storing.append(b"\\Seen" in flags(dovecot, mailbox.folder)[uid])
    report = fetch(desk, mailbox, progress=progress)
    assert str(report).startswith(f"{mailbox.name}: 1 new, 0 replies")
    assert seen_while_storing == [False]
    assert [b"\\Seen" in f for f in flags(dovecot, mailbox.folder).values()] == [True]
    [(number, title, description, files, requester)] = requests_of(desk)
    assert (title, description, requester) == ("Printer broken", "The printer on floor 2 is broken.",
                                               "ana@client.example")
    assert files == ["scan.pdf", "original-message.eml"]
    assert desk.read(lambda s: s.find(number)["files"][0].read()) == pdf
    assert fetch(desk, mailbox).outcomes == []       # nothing new: seen messages are not read again


def test_after_move_and_after_delete_empty_the_folder(dovecot, desk, mailbox):
    moving = dataclasses.replace(mailbox, after="move", move_to=mailbox.folder + "_done")
    append(dovecot, mailbox.folder, new_mail(subject="one"), new_mail(subject="two"))
    assert fetch(desk, moving).count("created") == 2
    assert flags(dovecot, mailbox.folder) == {} and len(flags(dovecot, moving.move_to)) == 2
    deleting = dataclasses.replace(mailbox, after="delete")
    append(dovecot, mailbox.folder, new_mail(subject="three"))
    assert fetch(desk, deleting).count("created") == 1
    assert flags(dovecot, mailbox.folder) == {}
    assert [r[1] for r in requests_of(desk)] == ["one", "two", "three"]


def test_a_broken_message_is_quarantined_with_its_source_and_the_batch_goes_on(dovecot, desk, mailbox):
    broken = b"Subject: no sender here\r\n\r\nwho wrote this?\r\n"
    append(dovecot, mailbox.folder, broken, new_mail(subject="fine"))
    report = fetch(desk, mailbox)
    (uid, held), (_, created) = report.outcomes
    assert (held.action, created.action) == (QUARANTINED, "created")
    entry = desk.read(lambda s: (held_message(s, held.held).raw(), held_message(s, held.held).uid,
                                 held_message(s, held.held).reason))
    assert entry == (broken, uid, "the message has no sender address (From)")
    assert all(b"\\Seen" in f for f in flags(dovecot, mailbox.folder).values())   # kept by us: marked


def test_loop_protected_messages_create_nothing_and_answer_nothing(dovecot, desk, mailbox):
    append(dovecot, mailbox.folder, new_mail(subject="Out of office", Auto_Submitted="auto-replied"),
           new_mail(subject="Undelivered", sender="MAILER-DAEMON@client.example"),
           new_mail(subject="newsletter", Precedence="bulk"))
    report = fetch(desk, mailbox)
    assert report.count("ignored") == 3
    assert requests_of(desk) == [] and desk.read(lambda s: list_messages(s)) == []


def test_an_unreachable_server_is_a_clear_error(desk, mailbox, unused_port):
    with pytest.raises(MailboxUnreachable, match=f"cannot reach the IMAP server 127.0.0.1:{unused_port}"):
        fetch(desk, dataclasses.replace(mailbox, port=unused_port))


def test_the_fetch_mail_job_reports_an_unreachable_server_without_failing(app_store, helpdesk_definitions, monkeypatch):
    monkeypatch.delenv("DESKBASE_IMAP_USER", raising=False)
    with app_store() as store:
        text = CONNECTOR_WORK["fetch_mail"](store, None, {"mailbox": "", "limit": 10})
        assert text.startswith("support: mailbox unreachable") and "DESKBASE_IMAP_USER" in text
        monkeypatch.setenv("DESKBASE_IMAP_USER", "nobody")
        from deskbase.rules.jobs.runner import JobRunner
        from deskbase.rules.jobs.scheduled import scheduled_jobs
        jobs = scheduled_jobs(helpdesk_definitions, {}, CONNECTOR_WORK)
        runner = JobRunner(store, [job for job in jobs if job.name == "fetch_mail"])
        run = runner.run("fetch_mail")
        assert run.outcome == "ok" and "mailbox unreachable" in run.result


def test_a_wrong_password_is_reported_as_refused_login(desk, mailbox, monkeypatch):
    monkeypatch.setenv("TEST_IMAP_PASSWORD", "wrong")
    with pytest.raises(MailboxUnreachable, match="refused the login of support@example.test"):
        fetch(desk, mailbox)


def desk_with_mailbox(store, mailbox) -> None:
    """Point the store's definitions at this test's mailbox (start_idle reads them)."""
    extensions = dict(store.definitions.extensions)
    extensions["mailboxes"] = {mailbox.name: mailbox}
    store.definitions = dataclasses.replace(store.definitions, extensions=extensions)


def test_idle_turns_a_message_appended_meanwhile_into_a_record_within_seconds(dovecot, desk, mailbox):
    stop = threading.Event()
    reports = []
    desk_with_mailbox(desk, mailbox)
    # IDLE renewed every 0.5 s here (every 25 minutes in service): the message comes after two renewals
    [thread] = start_idle(desk, stop, check=0.2, poll=1, renew=0.5, report=reports.append)
    try:
        deadline = time.monotonic() + 10
        while not reports and time.monotonic() < deadline:       # the first fetch, before IDLE
            time.sleep(0.05)
        time.sleep(1.2)
        started = time.monotonic()
        append(dovecot, mailbox.folder, new_mail(subject="arrived while idling"))
        while not requests_of(desk) and time.monotonic() - started < 10:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(10)
    assert [r[1] for r in requests_of(desk)] == ["arrived while idling"]
    assert elapsed < 3, f"took {elapsed:.1f} s"
    assert not thread.is_alive()


# -- a crash in the middle of a batch -----------------------------------------------------------------

def test_a_fetch_killed_mid_batch_loses_nothing_and_duplicates_nothing(dovecot, imap_folder, tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    text = (MAIL_APP / "desk.yaml").read_text().replace("port: 143", f"port: {dovecot.port}") \
        .replace("folder: INBOX", f"folder: {imap_folder}").replace("rate_limit: 5", "rate_limit: 0")
    (folder / "desk.yaml").write_text(text)
    append(dovecot, imap_folder, *(new_mail(subject=f"message {n}", sender=f"p{n}@client.example")
                                   for n in range(8)))
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    environment = dict(os.environ, TEST_IMAP_USER=dovecot.user, TEST_IMAP_PASSWORD=dovecot.password,
                       DESKBASE_MAIL_PAUSE="0.4", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "deskbase.cli", "--definitions", str(folder), "--db", uri, "mail", "fetch", "desk"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment,
                               cwd=ROOT, text=True)
    output, stored = [], 0
    try:
        for line in process.stdout:
            output.append(line)
            if line.strip().startswith("UID"):
                stored += 1
                if stored == 3:              # the third is committed, the batch not yet marked
                    os.kill(process.pid, signal.SIGKILL)
                    break
    finally:
        process.wait(10)
    assert process.returncode == -signal.SIGKILL, "".join(output)
    seen = [uid for uid, f in flags(dovecot, imap_folder).items() if b"\\Seen" in f]
    assert seen == []          # three committed, none marked yet (marked per batch): the crash window

    del environment["DESKBASE_MAIL_PAUSE"]
    again = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "5 new" in again.stdout and "3 already stored" in again.stdout
    store = open_store(uri, load_application(folder))
    try:
        titles = store.read(lambda s: sorted(r["title"] for r in s.query("request", limit=None).records))
    finally:
        store.close()
    assert titles == [f"message {n}" for n in range(8)]      # each exactly once
    assert all(b"\\Seen" in f for f in flags(dovecot, imap_folder).values())


def test_the_worker_listens_with_idle_and_a_message_becomes_a_record(dovecot, imap_folder, tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    text = (MAIL_APP / "desk.yaml").read_text().replace("port: 143", f"port: {dovecot.port}") \
        .replace("folder: INBOX", f"folder: {imap_folder}")
    (folder / "desk.yaml").write_text(text)
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    environment = dict(os.environ, TEST_IMAP_USER=dovecot.user, TEST_IMAP_PASSWORD=dovecot.password,
                       PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "deskbase.cli", "--definitions", str(folder), "--db", uri, "worker",
               "--interval", "300"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment,
                               cwd=ROOT, text=True)
    output, watchdog = [], threading.Timer(150, process.kill)     # a worker that never tells ends the wait
    watchdog.start()
    try:
        for line in process.stdout:                 # the worker says it listens, then what it fetched
            output.append(line)
            if "listening to 1 mailbox" in line:
                append(dovecot, imap_folder, new_mail(subject="Heard while idle", sender="idle@client.example"))
            if "1 new" in line:
                break
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
        watchdog.cancel()
    assert any("1 new" in line for line in output), "".join(output)
    store = open_store(uri, load_application(folder))
    try:
        titles = store.read(lambda s: [r["title"] for r in s.query("request", limit=None).records])
    finally:
        store.close()
    assert titles == ["Heard while idle"]


# -- the helpdesk's reply loop (T15, T17) -----------------------------------------------------------------

@pytest.fixture
def helpdesk(app_store, helpdesk_definitions, dovecot, imap_folder, monkeypatch):
    monkeypatch.setenv("DESKBASE_IMAP_USER", dovecot.user)
    monkeypatch.setenv("DESKBASE_IMAP_PASSWORD", dovecot.password)
    with app_store() as store:
        def setup(session):
            acme = session.create("organization", {"name": "Acme", "code": "ACME"})
            carl = session.create("contact", {"name": "Carl", "email": "carl@acme.example", "organization": acme.id})
            session.create("contact", {"name": "Eve", "email": "eve@acme.example", "organization": acme.id})
            session.update(acme, {"authorized_requesters": [carl.id]})
            return carl.id
        store.carl = store.run(setup)
        store.support = dataclasses.replace(mailboxes(helpdesk_definitions)["support"], host=dovecot.host,
                                            port=dovecot.port, folder=imap_folder)
        yield store


def comments_of(helpdesk, number):
    def work(session):
        ticket = session.find(number)
        return [(c["body"], c["author_kind"], c["visibility"], [f.filename for f in c["files"]])
                for c in session.query("comment", {"ticket": ticket.id}, sort=["id"], limit=None).records]
    return helpdesk.read(work)


def test_the_customers_answer_to_a_notification_becomes_a_comment_of_the_ticket(helpdesk, dovecot, smtp_server):
    number = helpdesk.run(lambda s: s.create("ticket", {"title": "VPN down", "requester": helpdesk.carl}).number)
    sender = SmtpSender("127.0.0.1", smtp_server.port, sender_address="helpdesk@localhost",
                        reply_to="helpdesk@localhost", timeout=5)
    assert len(deliver_due(helpdesk, {"email": sender}).sent) == 1
    [received] = smtp_server.received
    notification = received.message
    assert notification["Subject"].startswith(f"[{number}] VPN down")
    assert notification["Reply-To"] == "helpdesk@localhost" and notification["Message-ID"]
    assert notification["Auto-Submitted"] == "auto-generated"

    answer = EmailMessage()          # what Carl's mail program makes of "Reply"
    answer["From"] = "Carl <carl@acme.example>"
    answer["To"] = notification["Reply-To"]
    answer["Subject"] = "Re: " + notification["Subject"]
    answer["Message-ID"] = make_msgid(domain="acme.example")
    answer["In-Reply-To"] = notification["Message-ID"]
    answer["References"] = notification["Message-ID"]
    quoted = "\n".join("> " + line for line in notification.get_content().splitlines())
    answer.set_content(f"It works again since this morning.\n\nOn Tue, helpdesk@localhost wrote:\n{quoted}\n")
    append(dovecot, helpdesk.support.folder, bytes(answer))

    report = fetch(helpdesk, helpdesk.support)
    assert report.count("replied") == 1, str(report)
    assert comments_of(helpdesk, number) == [("It works again since this morning.", "customer", "public",
                                              ["original-message.eml"])]
    assert helpdesk.read(lambda s: s.count("ticket")) == 1

    # the next notification about the ticket carries the thread
    from deskbase.rules.access.identity import Identity
    from deskbase.rules.process.workflows import fire
    helpdesk.run(lambda s: fire(s, number, "take", {"time_spent": "5m"}),
                 identity=Identity("tina", "Tina", ("technician",)))
    deliver_due(helpdesk, {"email": sender})
    later = smtp_server.received[-1].message
    assert later["In-Reply-To"] == notification["Message-ID"] and notification["Message-ID"] in later["References"]
    assert later["Subject"].startswith(f"[{number}]")


def test_an_answer_found_only_by_the_number_in_its_subject(helpdesk, dovecot):
    number = helpdesk.run(lambda s: s.create("ticket", {"title": "Mail quota", "requester": helpdesk.carl}).number)
    append(dovecot, helpdesk.support.folder,
           new_mail(subject=f"About ticket [{number}]", body="Any news?", sender="carl@acme.example"))
    report = fetch(helpdesk, helpdesk.support)
    assert report.count("replied") == 1
    assert [c[0] for c in comments_of(helpdesk, number)] == ["Any news?"]


def test_a_new_message_opens_a_ticket_for_an_authorized_requester_only(helpdesk, dovecot):
    append(dovecot, helpdesk.support.folder,
           new_mail(subject="New laptop", body="Please order one.", sender="carl@acme.example"),
           new_mail(subject="Also me", sender="eve@acme.example"),
           new_mail(subject="Who am I", sender="stranger@elsewhere.example"))
    report = fetch(helpdesk, helpdesk.support)
    outcomes = [outcome.action for _, outcome in report.outcomes]
    assert outcomes == ["created", QUARANTINED, "refused"]

    def tickets(session):
        return [(t["title"], t["description"], t["channel"], t["requester"], t["organization"])
                for t in session.query("ticket", limit=None).records]
    [(title, description, channel, requester, organization)] = helpdesk.read(tickets)
    assert (title, description, channel, requester) == ("New laptop", "Please order one.", "email", helpdesk.carl)
    assert organization is not None
    [refusal] = helpdesk.read(lambda s: [(m.recipients, m.subject) for m in list_messages(s)
                                         if m.recipients == ("stranger@elsewhere.example",)])
    assert refusal[1] == "Re: Who am I"
