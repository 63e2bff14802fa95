"""Email through the outbox to a real SMTP server (aiosmtpd): delivered once with its
Message-ID and threading headers, retried while the server is down, failed on a 5xx."""
from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest

from deskbase.connectors.smtp import SmtpSender
from deskbase.objects.store import Store
from deskbase.rules.messages.outbox import (
    FAILED,
    PENDING,
    SENT,
    OutgoingMessage,
    RetryPolicy,
    TemporaryFailure,
    claim_due,
    deliver_due,
    get_message,
    queue_message,
)

UTC = timezone.utc
POLICY = RetryPolicy(base=timedelta(minutes=2), cap=timedelta(hours=1), max_attempts=5, lease=timedelta(minutes=5))


def sender_for(port: int, **options) -> SmtpSender:
    return SmtpSender("127.0.0.1", port, sender_address="Desk <desk@example.test>", timeout=5,
                      reply_to="support@example.test", **options)


def later(minutes: float = 0) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1, minutes=minutes)


def queue(store: Store, **options) -> int:
    recipients = options.pop("recipients", ["ann@example.test"])
    return store.run(lambda s: queue_message(s, "email", recipients, options.pop("subject", "Your request"),
                                             options.pop("body", "It is done."), **options))


def state_of(store: Store, message_id: int) -> tuple[str, str | None]:
    return store.read(lambda s: (get_message(s, message_id).state, get_message(s, message_id).last_error))


def outgoing(**values) -> OutgoingMessage:
    defaults = dict(id=1, channel="email", recipients=("ann@example.test",), subject="Hello", body="Body",
                    message_id="<1@desk.example.test>")
    return OutgoingMessage(**{**defaults, **values})


def test_a_committed_email_arrives_once_with_its_message_id_and_threading_headers(mail_store, smtp_server):
    message_id = queue(mail_store, subject="Réponse à votre demande", body="Bonjour, c'est réglé.",
                       html="<p>Bonjour, c'est <b>réglé</b>.</p>",
                       thread=["<100@desk.example.test>", "<200@desk.example.test>"],
                       headers={"X-Deskbase-Record": "TK-00001"})
    sender = sender_for(smtp_server.port)
    report = deliver_due(mail_store, {"email": sender}, now=later(), policy=POLICY)
    deliver_due(mail_store, {"email": sender}, now=later(60), policy=POLICY)
    assert report.sent == [message_id]
    assert len(smtp_server.received) == 1
    mail = smtp_server.received[0]
    assert mail.mail_from == "desk@example.test" and mail.rcpt_tos == ["ann@example.test"]
    headers = mail.message
    assert headers["Message-ID"] == f"<{message_id}@desk.example.test>"
    assert headers["In-Reply-To"] == "<200@desk.example.test>"
    assert headers["References"] == "<100@desk.example.test> <200@desk.example.test>"
    assert headers["Auto-Submitted"] == "auto-generated"
    assert headers["Reply-To"] == "support@example.test"
    assert headers["Subject"] == "Réponse à votre demande"
    assert headers["X-Deskbase-Record"] == "TK-00001"
    assert headers.get_body(("plain",)).get_content().strip() == "Bonjour, c'est réglé."
    assert "<b>réglé</b>" in headers.get_body(("html",)).get_content()


def test_a_message_queued_in_an_aborted_transaction_never_reaches_the_server(mail_store, smtp_server):
    with pytest.raises(RuntimeError):
        with mail_store.session() as session:
            queue_message(session, "email", ["ann@example.test"], "Hello", "Body")
            raise RuntimeError("rolled back")
    report = deliver_due(mail_store, {"email": sender_for(smtp_server.port)}, now=later(), policy=POLICY)
    assert report.claimed == 0 and smtp_server.received == []


def test_while_the_server_is_down_the_message_waits_and_goes_out_once_when_it_is_back(mail_store, smtp_server_later):
    message_id = queue(mail_store)
    sender = sender_for(smtp_server_later.port)
    start = later()
    down = deliver_due(mail_store, {"email": sender}, now=start, policy=POLICY)
    assert "cannot reach the SMTP server 127.0.0.1" in down.retrying[message_id]
    assert state_of(mail_store, message_id)[0] == PENDING
    smtp_server_later.start()
    too_soon = deliver_due(mail_store, {"email": sender}, now=start + timedelta(minutes=1), policy=POLICY)
    assert too_soon.claimed == 0 and smtp_server_later.received == []     # back-off: 2 minutes
    back = deliver_due(mail_store, {"email": sender}, now=start + timedelta(minutes=2), policy=POLICY)
    deliver_due(mail_store, {"email": sender}, now=start + timedelta(hours=2), policy=POLICY)
    assert back.sent == [message_id]
    assert len(smtp_server_later.received) == 1
    assert state_of(mail_store, message_id) == (SENT, "cannot reach the SMTP server 127.0.0.1:"
                                                f"{smtp_server_later.port}: Connection refused")


def test_a_server_stopped_between_two_messages_delays_only_the_second(mail_store, smtp_server):
    sender = sender_for(smtp_server.port)
    first = queue(mail_store)
    deliver_due(mail_store, {"email": sender}, now=later(), policy=POLICY)
    smtp_server.stop()
    second = queue(mail_store)
    report = deliver_due(mail_store, {"email": sender}, now=later(), policy=POLICY)
    assert second in report.retrying
    assert state_of(mail_store, first)[0] == SENT and state_of(mail_store, second)[0] == PENDING


def test_a_5xx_reply_fails_the_message_with_the_servers_reason(mail_store, smtp_server):
    smtp_server.handler.data_reply = "554 5.6.0 Message rejected: looks like spam"
    message_id = queue(mail_store)
    report = deliver_due(mail_store, {"email": sender_for(smtp_server.port)}, now=later(), policy=POLICY)
    assert message_id in report.failed
    state, error = state_of(mail_store, message_id)
    assert state == FAILED
    assert "554 5.6.0 Message rejected: looks like spam" in error


def test_a_refused_recipient_fails_the_message_with_the_servers_reason(mail_store, smtp_server):
    smtp_server.handler.rcpt_reply = "550 5.1.1 <nobody@example.test>: no such mailbox"
    message_id = queue(mail_store, recipients=["nobody@example.test"])
    deliver_due(mail_store, {"email": sender_for(smtp_server.port)}, now=later(), policy=POLICY)
    state, error = state_of(mail_store, message_id)
    assert state == FAILED and "no such mailbox" in error and "nobody@example.test" in error


def test_a_4xx_reply_is_retried(mail_store, smtp_server):
    smtp_server.handler.data_reply = "451 4.3.0 Mailbox busy, try later"
    message_id = queue(mail_store)
    sender = sender_for(smtp_server.port)
    start = later()
    report = deliver_due(mail_store, {"email": sender}, now=start, policy=POLICY)
    assert "451 4.3.0 Mailbox busy, try later" in report.retrying[message_id]
    smtp_server.handler.data_reply = None
    assert deliver_due(mail_store, {"email": sender}, now=start + timedelta(minutes=2), policy=POLICY).sent == [message_id]
    assert len(smtp_server.received) == 1


def test_a_worker_that_died_after_claiming_leaves_the_message_to_another_after_its_lease(mail_store, smtp_server):
    message_id = queue(mail_store)
    start = later()
    claim_due(mail_store, ["email"], now=start, worker_id="crashed", policy=POLICY)    # and never reports
    sender = sender_for(smtp_server.port)
    assert deliver_due(mail_store, {"email": sender}, now=start + timedelta(minutes=1), worker_id="next",
                       policy=POLICY).claimed == 0
    report = deliver_due(mail_store, {"email": sender}, now=start + POLICY.lease, worker_id="next", policy=POLICY)
    assert report.sent == [message_id]
    assert len(smtp_server.received) == 1


def test_some_recipients_refused_still_sends_to_the_others_and_notes_it(smtp_server):
    class PickyHandler(type(smtp_server.handler)):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("gone@"):
                return "550 5.1.1 gone"
            envelope.rcpt_tos.append(address)
            return "250 OK"
    smtp_server.handler.__class__ = PickyHandler
    note = sender_for(smtp_server.port).send(outgoing(recipients=("ann@example.test", "gone@example.test")))
    assert note == "refused by the server: gone@example.test (550 5.1.1 gone)"
    assert smtp_server.received[0].rcpt_tos == ["ann@example.test"]


def test_a_server_that_never_answers_is_a_temporary_failure():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        sender = SmtpSender("127.0.0.1", silent.getsockname()[1], sender_address="desk@example.test", timeout=0.5)
        with pytest.raises(TemporaryFailure, match="did not answer within 0.5 seconds"):
            sender.send(outgoing())


def test_starttls_asked_of_a_server_without_it_is_a_temporary_failure_naming_the_problem(smtp_server):
    with pytest.raises(TemporaryFailure, match="does not support"):
        sender_for(smtp_server.port, starttls=True).send(outgoing())


def test_the_email_is_utf8_and_keeps_auto_responders_quiet():
    email = sender_for(25).build(outgoing(subject="Žádost přijata", body="Dobrý den"))
    assert email["Auto-Submitted"] == "auto-generated"
    assert "AutoReply" in email["X-Auto-Response-Suppress"]
    assert email.get_content_charset() == "utf-8"
    assert email["From"] == "Desk <desk@example.test>" and email["Date"]


def test_a_message_header_cannot_replace_the_senders_own():
    email = sender_for(25).build(outgoing(headers={"From": "ceo@example.test", "Reply-To": "team@example.test"}))
    assert email["From"] == "Desk <desk@example.test>"
    assert email.get_all("Reply-To") == ["team@example.test"]


def test_settings_that_contradict_each_other_are_refused_at_once():
    with pytest.raises(ValueError, match="either starttls"):
        SmtpSender("127.0.0.1", 465, starttls=True, ssl=True, sender_address="desk@example.test")
    with pytest.raises(ValueError, match="not an email address"):
        SmtpSender("127.0.0.1", 25, sender_address="desk")
