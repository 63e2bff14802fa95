"""Email in without a server: reading messages in every common encoding, trimming quoted
history, HTML, loop protection, matching replies, and the intake into records of a small
application (tests/connectors/mail_app) with its quarantine."""
from __future__ import annotations

import base64
import dataclasses
import quopri
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.application import load_application, open_store
from deskbase.rules.intake.mail_intake import (
    IGNORED,
    QUARANTINED,
    REFUSED,
    Answerers,
    Authorization,
    MailIntakeError,
    delete_held,
    held_message,
    held_messages,
    ingest,
    mailboxes,
    release,
)
from deskbase.rules.intake.mail_messages import (
    MailParseError,
    html_to_text,
    loop_reason,
    parse_message,
    sanitize_html,
    trim_quoted,
)
from deskbase.rules.messages.outbox import list_messages, queue_message

MAIL_APP = Path(__file__).parent / "mail_app"
UTC = timezone.utc


@pytest.fixture
def mailbox(desk_definitions):
    return mailboxes(desk_definitions)["desk"]


def message(subject="Printer broken", body="The printer on floor 2 is broken.", sender="Ana Novak <ana@client.example>",
            message_id="<m1@client.example>", **headers) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "inbox@example.test"
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    if message_id:
        mail["Message-ID"] = message_id
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return bytes(mail)


def raw_message(headers: str, body: bytes) -> bytes:
    return headers.replace("\n", "\r\n").encode("ascii") + b"\r\n\r\n" + body


def records(store, type_name):
    return store.read(lambda s: [dict(r.values) for r in s.query(type_name, limit=None).records])


# -- reading messages --------------------------------------------------------------------------------

def test_french_latin1_quoted_printable_body_and_encoded_subject_are_decoded():
    body = "Bonjour,\nl'imprimante du 2e étage ne répond plus. Merci d'avance.\n".encode("iso-8859-1")
    raw = raw_message("From: =?iso-8859-1?q?Fran=E7ois_L=E9ger?= <francois@client.fr>\n"
                      "Subject: =?iso-8859-1?q?Imprimante_en_panne_=E0_l'=E9tage?=\nMIME-Version: 1.0\n"
                      "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable",
                      quopri.encodestring(body))
    mail = parse_message(raw)
    assert mail.subject == "Imprimante en panne à l'étage"
    assert mail.sender_name == "François Léger"
    assert "ne répond plus" in mail.body


def test_czech_latin2_base64_body_is_decoded():
    text = "Dobrý den, tiskárna ve 2. patře nefunguje. Děkuji, Jiří Dvořák"
    raw = raw_message("From: jiri@klient.cz\nSubject: =?iso-8859-2?b?" +
                      base64.b64encode("Tiskárna nefunguje - žádost".encode("iso-8859-2")).decode() + "?=\n"
                      "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-2\n"
                      "Content-Transfer-Encoding: base64", base64.encodebytes(text.encode("iso-8859-2")))
    mail = parse_message(raw)
    assert mail.subject == "Tiskárna nefunguje - žádost"
    assert mail.body == text


def test_croatian_windows_1250_body_is_decoded():
    text = "Poštovani, računalo u uredu ne radi. Lijep pozdrav, Ivana Kovačević"
    raw = raw_message("From: ivana@tvrtka.hr\nSubject: =?windows-1250?q?Ra=E8unalo_ne_radi?=\nMIME-Version: 1.0\n"
                      "Content-Type: text/plain; charset=windows-1250\nContent-Transfer-Encoding: 8bit",
                      text.encode("windows-1250"))
    mail = parse_message(raw)
    assert mail.subject == "Računalo ne radi"
    assert mail.body == text


def test_portuguese_utf8_base64_body_and_rfc2231_filename_are_decoded():
    mail = EmailMessage()
    mail["From"] = "joao@empresa.pt"
    mail["Subject"] = "Falha na impressão — atenção"
    mail.set_content("Olá, a impressora não funciona. Obrigado, João", cte="base64")
    mail.add_attachment(b"%PDF-1.4 ...", maintype="application", subtype="pdf", filename="relatório ação.pdf")
    parsed = parse_message(bytes(mail))
    assert parsed.subject == "Falha na impressão — atenção"
    assert parsed.body == "Olá, a impressora não funciona. Obrigado, João"
    assert [(a.filename, a.content_type, a.content) for a in parsed.attachments] == [
        ("relatório ação.pdf", "application/pdf", b"%PDF-1.4 ...")]


def test_rfc2047_encoded_attachment_filename_is_decoded():
    raw = raw_message("From: a@b.example\nSubject: file\nMIME-Version: 1.0\n"
                      "Content-Type: multipart/mixed; boundary=XX",
                      b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee file\r\n--XX\r\n"
                      b"Content-Type: image/png; name=\"=?utf-8?q?sn=C3=ADmek_obrazovky.png?=\"\r\n"
                      b"Content-Disposition: attachment; filename=\"=?utf-8?q?sn=C3=ADmek_obrazovky.png?=\"\r\n"
                      b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(b"\x89PNG....") +
                      b"--XX--\r\n")
    parsed = parse_message(raw)
    assert [a.filename for a in parsed.attachments] == ["snímek obrazovky.png"]
    assert parsed.attachments[0].content == b"\x89PNG...."


def test_raw_8bit_utf8_headers_and_body_without_charset_are_read():
    raw = "From: Jiří Dvořák <jiri@klient.cz>\r\nSubject: Účet nefunguje\r\n\r\nDobrý den\r\n".encode("utf-8")
    mail = parse_message(raw)
    assert (mail.sender_name, mail.sender, mail.subject, mail.body) == (
        "Jiří Dvořák", "jiri@klient.cz", "Účet nefunguje", "Dobrý den")


def test_an_encoded_name_with_a_comma_keeps_the_address():
    mail = parse_message(raw_message("From: =?utf-8?q?Nov=C3=A1k=2C_Ana?= <ana@client.example>\nSubject: x", b"hi"))
    assert (mail.sender_name, mail.sender) == ("Novák, Ana", "ana@client.example")


def test_latin1_label_on_windows_1252_text_reads_curly_quotes():
    raw = raw_message("From: a@b.example\nSubject: x\nContent-Type: text/plain; charset=iso-8859-1",
                      "l\u2019écran coûte 10 €".encode("windows-1252"))
    assert parse_message(raw).body == "l\u2019écran coûte 10 €"


def test_html_only_body_becomes_text_and_kept_html_is_sanitized():
    html = ("<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
            "<p onclick=\"steal()\">Bonjour,</p><p>L&#39;écran <b>clignote</b>.</p>"
            "<img src=\"https://tracker.example/pixel.gif\"><img src=\"cid:logo\">"
            "<a href=\"javascript:alert(1)\">x</a><a href=\"https://ok.example\">lien</a></body></html>")
    mail = EmailMessage()
    mail["From"] = "a@b.example"
    mail["Subject"] = "html"
    mail.set_content(html, subtype="html")
    parsed = parse_message(bytes(mail))
    assert parsed.body.startswith("Bonjour,\n\nL'écran clignote.")
    assert "alert" not in parsed.body and "color" not in parsed.body
    safe = parsed.html
    assert "<script" not in safe and "onclick" not in safe and "tracker.example" not in safe
    assert "javascript:" not in safe and 'src="cid:logo"' in safe and 'href="https://ok.example"' in safe


def test_html_to_text_keeps_blocks_and_list_items():
    assert html_to_text("<div>One</div><ul><li>a</li><li>b</li></ul>Two<br>Three") == "One\n  * a\n  * b\nTwo\nThree"


def test_html_to_text_keeps_table_cells_apart_and_link_targets():
    text = html_to_text('<p>See <a href="https://status.example/p/42">the status page</a> or write to '
                        '<a href="mailto:ops@example.org">ops@example.org</a>, not <a href="javascript:x()">this</a>.'
                        '</p><table><tr><th>Device</th><th>Where</th></tr><tr><td>Printer</td><td>Floor 2</td></tr>'
                        '</table>')
    assert "the status page (https://status.example/p/42)" in text and "ops@example.org," in text
    assert "javascript" not in text and "this." in text
    rows = [line.split() for line in text.splitlines()[-2:]]
    assert rows == [["Device", "Where"], ["Printer", "Floor", "2"]]         # cells apart, a row a line


def test_sanitize_html_escapes_text_and_drops_styles():
    assert sanitize_html('<p style="x" class="y">a &lt;b&gt;</p><iframe src="e">z</iframe>') == "<p>a &lt;b&gt;</p>"


def test_sanitized_html_is_well_formed_and_keeps_no_picture_that_can_carry_a_script():
    cleaned = sanitize_html('<div><table><tr><td>x</div></div>'
                            '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">'
                            '<img src="data:image/png;base64,iVBORw0KGgo=">'
                            '<a href=" JaVaScRiPt:alert(1)">j</a><!-- a comment -->')
    assert cleaned.startswith("<div><table><tbody><tr><td>x") and cleaned.endswith("</td></tr></tbody></table></div>")
    assert "svg" not in cleaned and 'src="data:image/png;base64,iVBORw0KGgo="' in cleaned
    assert "javascript" not in cleaned.lower() and "comment" not in cleaned


def test_inline_images_and_forwarded_messages_are_kept_as_files():
    mail = EmailMessage()
    mail["From"] = "a@b.example"
    mail["Subject"] = "screenshot"
    mail.set_content("plain text")
    mail.add_alternative('<p>see <img src="cid:shot"></p>', subtype="html")
    mail.get_payload()[1].add_related(b"\x89PNGdata", "image", "png", cid="<shot>")
    forwarded = EmailMessage()
    forwarded["From"] = "x@y.example"
    forwarded["Subject"] = "old"
    forwarded.set_content("forwarded text")
    mail.add_attachment(forwarded)
    parsed = parse_message(bytes(mail))
    kinds = sorted(a.content_type for a in parsed.attachments)
    assert kinds == ["image/png", "message/rfc822"]
    assert parsed.body == "plain text"


def test_message_without_sender_cannot_be_parsed():
    with pytest.raises(MailParseError, match="no sender"):
        parse_message(b"\x00\xff garbage without headers")


def test_unknown_charset_falls_back_without_failing():
    raw = raw_message("From: a@b.example\nSubject: x\nContent-Type: text/plain; charset=x-no-such-charset",
                      "déjà".encode("utf-8"))
    assert parse_message(raw).body == "déjà"


# -- quoted history --------------------------------------------------------------------------------

@pytest.mark.parametrize("quoted", [
    "On Mon, 2 Mar 2026 at 10:00, Desk <desk@example.test> wrote:\n> Your request is registered.\n> Thanks",
    "On Mon, 2 Mar 2026 at 10:00, Desk <desk@example.test>\nwrote:\n> Your request",
    "Le lun. 2 mars 2026 à 10:00, Desk <desk@example.test> a écrit :\n> Votre demande",
    "-----Original Message-----\nFrom: Desk\nSent: Monday\nTo: Ana\nSubject: RE: x\n\nYour request",
    "________________________________\nDe : Desk <desk@example.test>\nEnvoyé : lundi 2 mars 2026 10:00\n"
    "À : Ana\nObjet : RE: x\n\nVotre demande",
    "From: Desk <desk@example.test>\nSent: Monday, March 2, 2026 10:00\nTo: Ana\nSubject: RE: x\n\nYour request",
    "Dne po 2. 3. 2026 v 10:00 Desk <desk@example.test> napsal(a):\n> Váš požadavek",
    "> just quoted lines\n> more",
])
def test_quoted_history_is_trimmed_from_the_body(quoted):
    assert trim_quoted(f"It works now, thank you.\n\n{quoted}\n") == "It works now, thank you."


def test_a_message_that_is_only_quotes_keeps_its_text():
    assert trim_quoted("> only a quote") == "> only a quote"


def test_from_in_the_middle_of_a_sentence_is_not_a_header_block():
    text = "From: the third floor, nothing prints.\nPlease help."
    assert trim_quoted(text) == text


# -- loop protection ---------------------------------------------------------------------------------

@pytest.mark.parametrize("headers,expected", [
    ({"Auto_Submitted": "auto-replied"}, "Auto-Submitted"),
    ({"Precedence": "bulk"}, "Precedence: bulk"),
    ({"Precedence": "junk"}, "Precedence: junk"),
    ({"Precedence": "list"}, "Precedence: list"),
    ({"X_Auto_Response_Suppress": "All"}, "X-Auto-Response-Suppress"),
    ({"List_Id": "<users.lists.example>"}, "mailing list"),
    ({"Return_Path": "<>"}, "empty Return-Path"),
])
def test_machine_messages_are_recognized(headers, expected):
    assert expected in loop_reason(parse_message(message(**headers)))


def test_auto_submitted_no_is_a_person():
    assert loop_reason(parse_message(message(Auto_Submitted="no"))) is None


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.client.example", "postmaster@client.example"])
def test_bounces_are_recognized(sender):
    assert "delivery report" in loop_reason(parse_message(message(sender=sender)))


def test_our_own_address_is_recognized():
    assert "our own address" in loop_reason(parse_message(message(sender="Desk <DESK@example.test>")),
                                            {"desk@example.test"})


# -- the section ---------------------------------------------------------------------------------------

def test_mailbox_section_is_compiled_with_defaults(mailbox):
    assert (mailbox.host, mailbox.port, mailbox.after, mailbox.idle) == ("127.0.0.1", 143, "seen", True)
    assert mailbox.create.type == "request" and mailbox.reply.link == "request"
    assert mailbox.sender.type == "person" and mailbox.rate_limit == 5


def test_mailbox_naming_a_missing_field_is_a_located_error(tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    text = (MAIL_APP / "desk.yaml").read_text().replace("fields: {title: subject, description: body}",
                                                        "fields: {titel: subject, description: bdy}")
    (folder / "desk.yaml").write_text(text)
    with pytest.raises(DefinitionErrors) as caught:
        load_application(folder)
    message_text = str(caught.value)
    assert "`titel` is not a field of `request`" in message_text and "did you mean" in message_text
    assert "`bdy` is not a part of a message" in message_text and "desk.yaml:" in message_text


def test_helpdesk_mailbox_is_configured(helpdesk_definitions):
    support = mailboxes(helpdesk_definitions)["support"]
    assert support.create.type == "ticket" and support.reply.type == "comment"
    assert support.authorized.listed_in == ("organization", "authorized_requesters")
    assert support.username_env == "DESKBASE_IMAP_USER"


def test_fetch_mail_job_takes_a_mailbox_name_as_text(tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    text = (MAIL_APP / "desk.yaml").read_text() + (
        "\njobs:\n  mail: {schedule: '* * * * *', action: fetch_mail, options: {mailbox: desk, limit: 10}}\n")
    (folder / "desk.yaml").write_text(text)
    from deskbase.rules.jobs.scheduled import job_definitions
    assert dict(job_definitions(load_application(folder))["mail"].options) == {"mailbox": "desk", "limit": 10}
    (folder / "desk.yaml").write_text(text.replace("mailbox: desk", "mailbox: 3"))
    with pytest.raises(DefinitionErrors, match="`mailbox` is a text"):
        load_application(folder)


# -- intake into records --------------------------------------------------------------------------------

def test_new_message_becomes_a_record_with_its_sender_and_files(desk, mailbox):
    mail = EmailMessage()
    mail["From"] = "Ana Novak <Ana@Client.example>"
    mail["Subject"] = "Printer broken"
    mail["Message-ID"] = "<m1@client.example>"
    mail.set_content("The printer is broken.\n\nOn Mon, Desk wrote:\n> old text")
    mail.add_attachment(b"\x89PNGscreenshot", maintype="image", subtype="png", filename="screen.png")
    mail.add_attachment(b"MZ...", maintype="application", subtype="x-msdownload", filename="tool.exe")
    outcome = ingest(desk, mailbox, bytes(mail), uid=7, uidvalidity=1)
    assert outcome.action == "created" and outcome.number == "RQ-00001"

    def check(session):
        request = session.find("RQ-00001")
        person = session.get("person", request["requester"])
        assert (request["title"], request["origin"]) == ("Printer broken", "email")
        assert request["description"].startswith("The printer is broken.")
        assert "old text" not in request["description"]
        assert "tool.exe was not kept" in request["description"]
        files = {f.filename: f for f in request["files"]}
        assert set(files) == {"screen.png", "original-message.eml"}
        assert files["screen.png"].read() == b"\x89PNGscreenshot"
        assert b"tool.exe" in files["original-message.eml"].read()      # nothing is lost
        assert (person["email"], person["name"]) == ("ana@client.example", "Ana Novak")
        assert request.history.entries[0]["by"] == "email"
    desk.read(check)


def test_known_sender_is_found_whatever_the_case_and_their_company_copied(desk, mailbox):
    def setup(session):
        company = session.create("company", {"name": "Client"})
        return session.create("person", {"name": "Ana", "email": "ana@client.example", "company": company.id}).id
    ana = desk.run(setup)
    ingest(desk, mailbox, message(sender="ANA@CLIENT.EXAMPLE"), uid=1, uidvalidity=1)
    [request] = records(desk, "request")
    assert request["requester"] == ana and request["company"] == 1
    assert len(records(desk, "person")) == 1


def test_same_uid_or_same_message_id_makes_no_second_record(desk, mailbox):
    first = ingest(desk, mailbox, message(), uid=1, uidvalidity=9)
    assert ingest(desk, mailbox, message(), uid=1, uidvalidity=9).action == "duplicate"
    # the same message in another folder or mailbox (new UID): known by its Message-ID
    again = ingest(desk, mailbox, message(), uid=2, uidvalidity=9)
    assert (again.action, again.number) == ("duplicate", first.number)
    assert len(records(desk, "request")) == 1


def test_reply_to_our_notification_becomes_a_note_of_the_record(desk, mailbox):
    created = ingest(desk, mailbox, message(), uid=1, uidvalidity=1)
    sent_id = desk.read(lambda s: list_messages(s)[0].message_id)    # the `opened` notification
    reply = message(subject="Re: something else entirely", message_id="<r1@client.example>",
                    body="Still broken.\n\nOn Tue, Desk wrote:\n> Your request is registered.",
                    In_Reply_To=sent_id, References=f"<m1@client.example> {sent_id}")
    outcome = ingest(desk, mailbox, reply, uid=2, uidvalidity=1)
    assert (outcome.action, outcome.number, outcome.record) == ("replied", created.number, "NT-000001")
    [note] = records(desk, "note")
    assert (note["request"], note["text"], note["source"]) == (1, "Still broken.", "customer")
    assert [f.filename for f in note["files"]] == ["original-message.eml"]


def test_reply_to_a_message_we_received_joins_the_same_record(desk, mailbox):
    ingest(desk, mailbox, message(), uid=1, uidvalidity=1)
    follow = message(subject="Also the scanner", message_id="<m2@client.example>", References="<m1@client.example>")
    assert ingest(desk, mailbox, follow, uid=2, uidvalidity=1).action == "replied"
    # and a reply to that reply, through the note's record
    third = message(subject="and the fax", message_id="<m3@client.example>", In_Reply_To="<m2@client.example>")
    assert ingest(desk, mailbox, third, uid=3, uidvalidity=1).number == "RQ-00001"
    assert len(records(desk, "request")) == 1 and len(records(desk, "note")) == 2


def test_reply_found_by_the_number_in_its_subject(desk, mailbox):
    ingest(desk, mailbox, message(), uid=1, uidvalidity=1)
    outcome = ingest(desk, mailbox, message(subject="RE: [rq-00001] [urgent] Printer", message_id="<x@c>"), uid=2,
                     uidvalidity=1)
    assert (outcome.action, outcome.number) == ("replied", "RQ-00001")
    unknown = ingest(desk, mailbox, message(subject="Re: [RQ-99999] gone", message_id="<y@c>"), uid=3, uidvalidity=1)
    assert unknown.action == "created"


def test_a_thread_id_of_another_records_type_is_not_a_match(desk, mailbox):
    def queue(session):
        person = session.create("person", {"name": "Zed", "email": "zed@x.example"})
        queue_message(session, "email", ["zed@x.example"], "hello", "hi", record=person)
    desk.run(queue)
    sent_id = desk.read(lambda s: list_messages(s)[0].message_id)
    assert ingest(desk, mailbox, message(In_Reply_To=sent_id), uid=1, uidvalidity=1).action == "created"


@pytest.mark.parametrize("headers", [
    {"Auto_Submitted": "auto-replied"}, {"Precedence": "bulk"}, {"X_Auto_Response_Suppress": "OOF"},
    {"List_Id": "<l.example>"}, {"sender": "MAILER-DAEMON@client.example"}, {"sender": "desk@example.test"},
    {"sender": "inbox@example.test"},
])
def test_loop_protected_messages_create_nothing_answer_nothing_and_are_kept(desk, mailbox, headers):
    outcome = ingest(desk, mailbox, message(**headers), uid=1, uidvalidity=1)
    assert outcome.action == IGNORED
    assert records(desk, "request") == [] and records(desk, "person") == []
    assert desk.read(lambda s: list_messages(s)) == []
    held = desk.read(lambda s: held_message(s, outcome.held))
    assert held.disposition == IGNORED and held.reason == outcome.reason


def test_excluded_senders_and_subjects_are_kept_not_registered(desk, mailbox):
    assert "excluded sender" in ingest(desk, mailbox, message(sender="x@spam.example"), uid=1).reason
    assert "excluded subject" in ingest(desk, mailbox, message(subject="Please UNSUBSCRIBE me",
                                                               message_id="<u@c>"), uid=2).reason
    assert records(desk, "request") == []


def test_exclusion_patterns_take_brackets_literally(mailbox):
    from deskbase.rules.intake.mail_intake import excluded_reason
    spam = dataclasses.replace(mailbox, exclude_subject=("*[SPAM]*",), exclude_from=("no-reply@*",))
    assert excluded_reason(parse_message(message(subject="Re: [SPAM] cheap")), spam) == "excluded subject (*[SPAM]*)"
    assert excluded_reason(parse_message(message(subject="Printer SAMPLE page")), spam) is None
    assert excluded_reason(parse_message(message(sender="No-Reply@shop.example")), spam)


def test_a_flooding_sender_is_held_past_the_hourly_limit(desk, mailbox):
    outcomes = [ingest(desk, mailbox, message(message_id=f"<f{n}@c>", subject=f"n{n}"), uid=n) for n in range(7)]
    assert [o.action for o in outcomes] == ["created"] * 5 + [IGNORED] * 2
    assert "more than 5 messages" in outcomes[-1].reason
    assert len(records(desk, "request")) == 5


def test_unknown_sender_refused_is_answered_once_and_kept(desk, mailbox):
    refusing = dataclasses.replace(mailbox, unknown_senders="refuse")
    first = ingest(desk, refusing, message(), uid=1)
    second = ingest(desk, refusing, message(message_id="<m2@c>"), uid=2)
    assert (first.action, second.action) == (REFUSED, IGNORED)
    [answer] = desk.read(lambda s: [(m.recipients, m.subject, m.body, m.in_reply_to) for m in list_messages(s)])
    assert answer[0] == ("ana@client.example",) and answer[1] == "Re: Printer broken"
    assert "unknown sender" in answer[2] and answer[3] == "<m1@client.example>"
    assert records(desk, "request") == [] and records(desk, "person") == []


def test_an_unknown_sender_with_a_malformed_message_id_is_refused_and_kept(desk, mailbox):
    """`<xxxx>` is no Message-ID: the refusal goes out without a thread, the message is held
    with its reason — never an exception, never fetched again forever."""
    refusing = dataclasses.replace(mailbox, unknown_senders="refuse")
    outcome = ingest(desk, refusing, message(message_id="<xxxx>"), uid=1)
    assert outcome.action == REFUSED
    [answer] = desk.read(lambda s: [(m.recipients, m.in_reply_to) for m in list_messages(s)])
    assert answer[0] == ("ana@client.example",) and not answer[1]
    assert desk.read(lambda s: len(held_messages(s))) == 1


def test_a_message_reusing_anothers_message_id_with_other_content_is_not_dropped(desk, mailbox):
    first = ingest(desk, mailbox, message(body="The printer on floor 2 is broken."), uid=1)
    other = ingest(desk, mailbox, message(subject="Scanner dead", body="Nothing scans."), uid=2)
    again = ingest(desk, mailbox, message(body="The printer on floor 2 is broken."), uid=3)
    assert (first.action, other.action, again.action) == ("created", "created", "duplicate")
    assert again.number == first.number and other.number != first.number
    assert sorted(r["title"] for r in records(desk, "request")) == ["Printer broken", "Scanner dead"]


def test_unknown_sender_quarantined_then_released_by_a_person(desk, mailbox):
    holding = dataclasses.replace(mailbox, unknown_senders="quarantine")
    outcome = ingest(desk, holding, message(), uid=1, uidvalidity=3)
    assert outcome.action == QUARANTINED
    assert desk.read(lambda s: [h.id for h in held_messages(s)]) == [outcome.held]
    released = release(desk, outcome.held)
    assert released.action == "created" and records(desk, "request")[0]["title"] == "Printer broken"
    assert desk.read(lambda s: held_messages(s)) == []
    with pytest.raises(MailIntakeError):
        release(desk, outcome.held)
    # the UID is remembered as the released record: a re-read makes nothing
    assert ingest(desk, holding, message(), uid=1, uidvalidity=3).action == "duplicate"


def test_authorization_lists_who_may_write(desk, mailbox):
    guarded = dataclasses.replace(mailbox, authorized=Authorization(("company", "allowed"), {"role": "staff"}))

    def setup(session):
        company = session.create("company", {"name": "Client"})
        ana = session.create("person", {"name": "Ana", "email": "ana@client.example", "company": company.id})
        session.create("person", {"name": "Bo", "email": "bo@client.example", "company": company.id})
        session.create("person", {"name": "Sam", "email": "sam@desk.example", "role": "staff"})
        session.update(company, {"allowed": [ana.id]})
    desk.run(setup)
    assert ingest(desk, guarded, message(), uid=1).action == "created"
    refused = ingest(desk, guarded, message(sender="bo@client.example", message_id="<b@c>"), uid=2)
    assert refused.action == QUARANTINED and "not authorized" in refused.reason
    assert ingest(desk, guarded, message(sender="sam@desk.example", message_id="<s@c>"), uid=3).action == "created"


def test_only_the_people_a_record_names_its_company_and_the_staff_may_answer_it(desk, mailbox):
    guarded = dataclasses.replace(mailbox, authorized=Authorization(("company", "allowed"), {"role": "staff"}),
                                  answered_by=Answerers(("requester",), ("company",), {"role": "staff"}))

    def setup(session):
        client, rival = session.create("company", {"name": "Client"}), session.create("company", {"name": "Rival"})
        ana = session.create("person", {"name": "Ana", "email": "ana@client.example", "company": client.id})
        cy = session.create("person", {"name": "Cy", "email": "cy@client.example", "company": client.id})
        rex = session.create("person", {"name": "Rex", "email": "rex@rival.example", "company": rival.id})
        session.create("person", {"name": "Sam", "email": "sam@desk.example", "role": "staff"})
        session.update(client, {"allowed": [ana.id, cy.id]})
        session.update(rival, {"allowed": [rex.id]})
    desk.run(setup)
    opened = ingest(desk, guarded, message(), uid=1)
    assert opened.action == "created"

    def answer(sender: str, uid: int):
        return ingest(desk, guarded, message(sender=sender, subject=f"Re: [{opened.number}] Printer",
                                             message_id=f"<a{uid}@c>"), uid=uid)
    # Cy, a colleague who may write, answers; Sam of the staff too.
    assert [answer(who, n).action for n, who in ((2, "cy@client.example"), (3, "sam@desk.example"))] == \
        ["replied", "replied"]
    # Rex may write to the mailbox, but this request is another company's: his answer is held.
    held = answer("rex@rival.example", 4)
    assert held.action == QUARANTINED and held.reason == f"rex@rival.example is not among the people who may " \
                                                         f"answer {opened.number}"
    assert len(records(desk, "note")) == 2

    # Bo is not allowed to write; once the request names him, he may answer it.
    bo = desk.run(lambda s: s.create("person", {"name": "Bo", "email": "bo@client.example"}).id)
    assert answer("bo@client.example", 5).action == QUARANTINED
    desk.run(lambda s: s.update(opened.number, {"requester": bo}))
    assert answer("bo@client.example", 6).action == "replied"


def test_answered_by_naming_a_wrong_field_is_a_located_error(tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    text = (MAIL_APP / "desk.yaml").read_text().replace(
        "    unknown_senders: create\n",
        "    unknown_senders: create\n    answered_by: {named_in: [requestr], same: [compny]}\n")
    (folder / "desk.yaml").write_text(text)
    with pytest.raises(DefinitionErrors) as caught:
        load_application(folder)
    found = {(e.path, e.message, e.hint) for e in caught.value.errors}
    assert found == {
        ("mailboxes.desk.answered_by.named_in[0]", "`requestr` is not a ref field of `request` pointing at `person`",
         "did you mean `requester`?"),
        ("mailboxes.desk.answered_by.same[0]", "`compny` is not a field of both `person` and `request`",
         "did you mean `company`?")}


def test_broken_message_is_quarantined_with_its_raw_source(desk, mailbox):
    raw = b"this is not an email at all\x00\xff"
    outcome = ingest(desk, mailbox, raw, uid=4, uidvalidity=2,
                     received_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    assert outcome.action == QUARANTINED

    def check(session):
        held = held_message(session, outcome.held)
        assert (held.reason, held.mailbox, held.uid, held.uidvalidity) == (
            "the message has no sender address (From)", "desk", 4, 2)
        assert held.received_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC) and held.raw() == raw
    desk.read(check)
    with pytest.raises(MailIntakeError, match="still cannot be stored"):
        release(desk, outcome.held)
    delete_held(desk, outcome.held)
    assert desk.read(lambda s: held_messages(s, None)) == []


def test_message_that_cannot_be_mapped_is_quarantined_and_nothing_half_written(desk, mailbox):
    strict = dataclasses.replace(mailbox, create=dataclasses.replace(mailbox.create, set={"origin": "fax"}))
    outcome = ingest(desk, strict, message(), uid=1)
    assert outcome.action == QUARANTINED and "origin" in outcome.reason
    assert records(desk, "request") == [] and records(desk, "person") == []   # the sender was not kept either


def test_a_fault_while_storing_quarantines_the_message_instead_of_stopping(desk, mailbox, monkeypatch):
    from deskbase.rules.intake import mail_intake

    def broken(*args, **kwargs):
        raise KeyError("a bug")
    monkeypatch.setattr(mail_intake, "_create", broken)
    outcome = ingest(desk, mailbox, message(), uid=1)
    assert outcome.action == QUARANTINED and outcome.reason == "could not be stored: KeyError: 'a bug'"
    assert records(desk, "request") == []


def test_oversized_message_is_quarantined_or_truncated_as_configured(desk, mailbox):
    big = message(body="x" * 6000)
    small_limit = dataclasses.replace(mailbox, max_size=2000)
    held = ingest(desk, small_limit, big, uid=1)
    assert held.action == QUARANTINED and "above the mailbox's max_size" in held.reason
    truncating = dataclasses.replace(small_limit, oversized="truncate")
    assert ingest(desk, truncating, message(body="y" * 6000, message_id="<big2@c>"), uid=2).action == "created"
    description, eml = desk.read(lambda s: (s.get("request", 1)["description"], s.get("request", 1)["files"][0].read()))
    assert "only its headers were kept" in description and "yyyy" not in description
    assert b"Subject: Printer broken" in eml and b"yyyy" not in eml
    release(desk, held.held)       # a person lets the large one in: kept whole
    assert desk.read(lambda s: s.get("request", 2)["description"]) == "x" * 6000


def test_long_subject_is_clipped_to_the_field_and_empty_subject_named(desk, mailbox):
    ingest(desk, mailbox, message(subject="word " * 100), uid=1)
    ingest(desk, mailbox, message(subject="", message_id="<e@c>"), uid=2)
    titles = sorted(r["title"] for r in records(desk, "request"))
    assert titles[0] == "(no subject)" and len(titles[1]) == 200 and titles[1].endswith("…")


# -- the command line ------------------------------------------------------------------------------------

def test_quarantine_commands_list_show_release_and_delete(desk_definitions, file_uri, capsys):
    from deskbase.cli import main
    store = open_store(file_uri, desk_definitions)
    try:
        mailbox = dataclasses.replace(mailboxes(desk_definitions)["desk"], unknown_senders="quarantine")
        broken = ingest(store, mailbox, b"Subject: lost\r\n\r\nno sender\r\n", uid=1, uidvalidity=1)
        unknown = ingest(store, mailbox, message(subject="Please help"), uid=2, uidvalidity=1)
    finally:
        store.close()
    common = ["--definitions", str(MAIL_APP), "--db", file_uri, "mail", "quarantine"]
    assert main(common + ["list"]) == 0
    listing = capsys.readouterr().out
    assert str(broken.held) in listing and "no sender address" in listing and "unknown sender" in listing
    assert main(common + ["show", str(broken.held)]) == 0
    shown = capsys.readouterr().out
    assert "reason:   the message has no sender address (From)" in shown and "no sender" in shown
    assert "UID 1" in shown
    assert main(common + ["release", str(broken.held)]) == 1
    assert "still cannot be stored" in capsys.readouterr().err
    assert main(common + ["release", str(unknown.held)]) == 0
    assert "released message" in capsys.readouterr().out
    assert main(common + ["delete", str(broken.held)]) == 0
    assert main(common + ["list"]) == 0
    assert "the quarantine is empty" in capsys.readouterr().out
    store = open_store(file_uri, desk_definitions)
    try:
        assert [r["title"] for r in records(store, "request")] == ["Please help"]
    finally:
        store.close()
