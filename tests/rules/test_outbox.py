"""The outbox: messages written in the causing transaction, delivered after commit at least
once, retried with back-off, failed with every attempt's error, reclaimed after a lease."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from deskbase.objects.store import Store
from deskbase.rules.messages.outbox import (
    FAILED,
    PENDING,
    SENDING,
    SENT,
    OutboxError,
    OutgoingMessage,
    PermanentFailure,
    RetryPolicy,
    TemporaryFailure,
    claim_due,
    deliver_due,
    ensure_outbox,
    find_by_message_id,
    get_message,
    list_messages,
    purge_sent,
    queue_message,
    retry_failed,
)

UTC = timezone.utc
POLICY = RetryPolicy(base=timedelta(minutes=1), cap=timedelta(minutes=10), max_attempts=4,
                     lease=timedelta(minutes=5))


class FakeSender:
    """Records what it is asked to send; fails as told, in turn."""

    def __init__(self, *failures: Exception):
        self.sent: list[OutgoingMessage] = []
        self.failures = list(failures)
        self.lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> str | None:
        with self.lock:
            if self.failures:
                raise self.failures.pop(0)
            self.sent.append(message)
        return None


def later(minutes: float = 0) -> datetime:
    """A moment after anything queued so far, plus some minutes."""
    return datetime.now(UTC) + timedelta(seconds=1, minutes=minutes)


def queue(store: Store, channel: str = "email", recipients=("ann@example.test",), **options) -> int:
    return store.run(lambda s: queue_message(s, channel, list(recipients), options.pop("subject", "Hello"),
                                             options.pop("body", "Body"), **options))


def message(store: Store, message_id: int) -> SimpleNamespace | None:
    """A copy of a stored message, readable after its transaction."""
    def copy(s):
        found = get_message(s, message_id)
        if found is None:
            return None
        return SimpleNamespace(**found.__getstate__(), references=found.references)
    return store.read(copy)


# -- queueing ------------------------------------------------------------------------------

def test_a_message_queued_in_a_transaction_that_aborts_is_never_sent(mail_store):
    sender = FakeSender()
    with pytest.raises(RuntimeError):
        with mail_store.session() as session:
            queue_message(session, "email", ["ann@example.test"], "Hello", "Body")
            raise RuntimeError("the change is refused")
    report = deliver_due(mail_store, {"email": sender}, now=later(), policy=POLICY)
    assert report.claimed == 0 and sender.sent == []
    assert mail_store.read(lambda s: list_messages(s)) == []


def test_a_committed_message_is_delivered_once(mail_store):
    sender = FakeSender()
    message_id = queue(mail_store)
    first = deliver_due(mail_store, {"email": sender}, now=later(), worker_id="w1", policy=POLICY)
    again = deliver_due(mail_store, {"email": sender}, now=later(60), worker_id="w1", policy=POLICY)
    assert first.sent == [message_id] and again.claimed == 0
    assert [m.id for m in sender.sent] == [message_id]
    stored = message(mail_store, message_id)
    assert stored.state == SENT and stored.sent_at is not None
    assert [a["outcome"] for a in stored.attempts] == ["sent"]


def test_an_email_gets_a_message_id_of_the_configured_domain_at_queue_time(mail_store):
    message_id = queue(mail_store)
    stored = message(mail_store, message_id)
    assert stored.message_id == f"<{message_id}@desk.example.test>"
    found = mail_store.read(lambda s: find_by_message_id(s, stored.message_id))
    assert found is not None and found.id == message_id
    assert mail_store.read(lambda s: find_by_message_id(s, f"<{message_id}@elsewhere.test>")) is None


def test_an_sms_has_no_message_id(mail_store):
    message_id = queue(mail_store, "sms", ["+33600000001"])
    assert message(mail_store, message_id).message_id is None


def test_thread_gives_in_reply_to_the_last_and_references_all(mail_store):
    sender = FakeSender()
    message_id = queue(mail_store, thread=["<1@desk.example.test>", "2@desk.example.test"])
    deliver_due(mail_store, {"email": sender}, now=later(), policy=POLICY)
    sent = sender.sent[0]
    assert sent.in_reply_to == "<2@desk.example.test>"
    assert sent.references == ("<1@desk.example.test>", "<2@desk.example.test>")
    assert sent.id == message_id and sent.message_id == f"<{message_id}@desk.example.test>"


def test_a_long_thread_keeps_its_first_and_latest_references(mail_store):
    thread = [f"<{n}@desk.example.test>" for n in range(30)]
    stored = message(mail_store, queue(mail_store, thread=thread))
    assert stored.references[0] == "<0@desk.example.test>"
    assert stored.references[-1] == "<29@desk.example.test>" and len(stored.references) == 10


def test_the_record_that_caused_a_message_is_kept_by_number(mail_store):
    def work(s):
        task = s.create("task", {"title": "Call back"})
        return queue_message(s, "email", ["ann@example.test"], "New task", "…", record=task)
    assert message(mail_store, mail_store.run(work)).record == "TK-00001"


@pytest.mark.parametrize("channel, recipients, options, expected", [
    ("email", [], {}, "at least one recipient"),
    ("email", ["not an address"], {}, "is not an email address"),
    ("email", ["ann@example.test\nBcc: all@example.test"], {}, "line break"),
    ("email", ["ann@example.test"], {"headers": {"X-Tag": "a\r\nBcc: all@example.test"}}, "line break"),
    ("email", ["ann@example.test"], {"headers": {"Bad Name": "x"}}, "is not a header name"),
    ("email", ["ann@example.test"], {"thread": ["no id here"]}, "is not a Message-ID"),
    ("E-Mail", ["ann@example.test"], {}, "is not a channel name"),
])
def test_a_message_that_cannot_be_sent_as_given_is_refused_when_queued(mail_store, channel, recipients, options, expected):
    with pytest.raises(OutboxError, match=expected):
        mail_store.run(lambda s: queue_message(s, channel, recipients, "Hello", "Body", **options))


def test_a_subject_is_one_line(mail_store):
    message_id = queue(mail_store, subject="First line\r\nsecond   line")
    assert message(mail_store, message_id).subject == "First line second line"


def test_the_outbox_is_created_on_first_use_when_nobody_ensured_it(store):
    message_id = store.run(lambda s: queue_message(s, "email", ["ann@example.test"], "Hi", "Body"))
    assert message(store, message_id).state == PENDING


# -- retries and failures ------------------------------------------------------------------

def test_a_temporary_failure_is_retried_with_exponential_back_off(mail_store):
    sender = FakeSender(TemporaryFailure("server down"), TemporaryFailure("server down"))
    message_id = queue(mail_store)
    start = later()
    first = deliver_due(mail_store, {"email": sender}, now=start, policy=POLICY)
    assert first.retrying == {message_id: "server down"}
    assert message(mail_store, message_id).due_at == start + timedelta(minutes=1)
    assert deliver_due(mail_store, {"email": sender}, now=start + timedelta(seconds=59), policy=POLICY).claimed == 0
    second = deliver_due(mail_store, {"email": sender}, now=start + timedelta(minutes=1), policy=POLICY)
    assert second.retrying == {message_id: "server down"}
    assert message(mail_store, message_id).due_at == start + timedelta(minutes=3)   # then 2 minutes
    third = deliver_due(mail_store, {"email": sender}, now=start + timedelta(minutes=3), policy=POLICY)
    assert third.sent == [message_id] and len(sender.sent) == 1
    stored = message(mail_store, message_id)
    assert [a["outcome"] for a in stored.attempts] == ["temporary", "temporary", "sent"]


def test_back_off_doubles_up_to_its_cap():
    policy = RetryPolicy(base=timedelta(seconds=30), cap=timedelta(minutes=5))
    assert [policy.delay(n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
    assert policy.delay(500) == timedelta(minutes=5)


def test_after_the_last_attempt_a_message_fails_keeping_every_error(mail_store):
    sender = FakeSender(*(TemporaryFailure(f"busy {n}") for n in range(1, 5)))
    message_id = queue(mail_store)
    moment = later()
    for _ in range(POLICY.max_attempts):
        report = deliver_due(mail_store, {"email": sender}, now=moment, policy=POLICY)
        moment = moment + timedelta(hours=1)
    assert report.failed == {message_id: "busy 4"}
    stored = message(mail_store, message_id)
    assert stored.state == FAILED
    assert [a["error"] for a in stored.attempts] == ["busy 1", "busy 2", "busy 3", "busy 4"]
    assert "gave up after 4 attempts: busy 4" == stored.last_error
    assert deliver_due(mail_store, {"email": sender}, now=moment, policy=POLICY).claimed == 0


def test_a_permanent_failure_fails_the_message_at_once(mail_store):
    sender = FakeSender(PermanentFailure("550 no such mailbox"))
    message_id = queue(mail_store)
    report = deliver_due(mail_store, {"email": sender}, now=later(), policy=POLICY)
    assert report.failed == {message_id: "550 no such mailbox"}
    stored = message(mail_store, message_id)
    assert stored.state == FAILED and stored.last_error == "550 no such mailbox"


def test_a_sender_bug_counts_as_a_temporary_failure(mail_store):
    sender = FakeSender(KeyError("oops"))
    message_id = queue(mail_store)
    report = deliver_due(mail_store, {"email": sender}, now=later(), policy=POLICY)
    assert "unexpected error in the email sender: KeyError" in report.retrying[message_id]
    assert message(mail_store, message_id).state == PENDING


def test_a_failed_message_can_be_put_back_by_an_admin(mail_store):
    sender = FakeSender(PermanentFailure("554 rejected"))
    message_id = queue(mail_store)
    deliver_due(mail_store, {"email": sender}, now=later(), policy=POLICY)
    mail_store.run(lambda s: retry_failed(s, message_id))
    report = deliver_due(mail_store, {"email": sender}, now=later(), policy=POLICY)
    stored = message(mail_store, message_id)
    assert report.sent == [message_id] and stored.state == SENT
    assert [a.get("retired", False) for a in stored.attempts] == [True, False]
    with pytest.raises(OutboxError, match="only a failed message"):
        mail_store.run(lambda s: retry_failed(s, message_id))


def test_messages_of_a_channel_without_a_sender_wait_for_a_worker_that_has_one(mail_store):
    email_id = queue(mail_store)
    sms_id = queue(mail_store, "sms", ["+33600000001"])
    sms = FakeSender()
    report = deliver_due(mail_store, {"sms": sms}, now=later(), policy=POLICY)
    assert report.sent == [sms_id]
    assert message(mail_store, email_id).state == PENDING


def test_a_worker_takes_at_most_its_limit(mail_store):
    ids = [queue(mail_store) for _ in range(5)]
    sender = FakeSender()
    report = deliver_due(mail_store, {"email": sender}, now=later(), limit=2, policy=POLICY)
    assert report.sent == ids[:2]          # the oldest due first


# -- leases --------------------------------------------------------------------------------

def test_a_message_claimed_by_a_worker_that_died_is_delivered_by_another_after_the_lease(mail_store):
    message_id = queue(mail_store)
    start = later()
    claimed = claim_due(mail_store, ["email"], now=start, worker_id="dead", policy=POLICY)
    assert [m.id for m in claimed] == [message_id]
    assert message(mail_store, message_id).state == SENDING
    sender = FakeSender()
    during = deliver_due(mail_store, {"email": sender}, now=start + timedelta(minutes=4), worker_id="alive", policy=POLICY)
    assert during.claimed == 0
    after = deliver_due(mail_store, {"email": sender}, now=start + timedelta(minutes=5), worker_id="alive", policy=POLICY)
    assert after.sent == [message_id] and len(sender.sent) == 1
    stored = message(mail_store, message_id)
    assert [(a["worker"], a["outcome"]) for a in stored.attempts] == [("dead", "abandoned"), ("alive", "sent")]


def test_a_late_worker_reporting_success_does_not_cause_a_third_sending(mail_store):
    from deskbase.rules.messages.outbox import _record
    message_id = queue(mail_store)
    start = later()
    slow = claim_due(mail_store, ["email"], now=start, worker_id="slow", policy=POLICY)[0]
    fast = claim_due(mail_store, ["email"], now=start + timedelta(minutes=6), worker_id="fast", policy=POLICY)[0]
    assert _record(mail_store, slow, "slow", SENT, None, start + timedelta(minutes=7), POLICY) == "lost"
    assert message(mail_store, message_id).state == SENT
    assert _record(mail_store, fast, "fast", "temporary", "timeout", start + timedelta(minutes=8), POLICY) == "lost"
    assert message(mail_store, message_id).state == SENT
    assert deliver_due(mail_store, {"email": FakeSender()}, now=start + timedelta(hours=1), policy=POLICY).claimed == 0


def test_workers_in_parallel_send_each_message_exactly_once(tasks_definitions, file_uri):
    store = Store.open(file_uri, tasks_definitions)
    try:
        ensure_outbox(store)
        ids = {queue(store) for _ in range(40)}
        sender = FakeSender()
        moment = later()

        def worker(name: str) -> None:
            for _ in range(50):
                deliver_due(store, {"email": sender}, now=moment, worker_id=name, limit=3, policy=POLICY)

        threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(m.id for m in sender.sent) == sorted(ids)
        assert store.read(lambda s: {m.state for m in list_messages(s, limit=100)}) == {SENT}
    finally:
        store.close()


# -- administration ----------------------------------------------------------------------------

def test_messages_are_listed_newest_first_and_by_state(mail_store):
    first = queue(mail_store)
    time.sleep(0.002)                  # ids order messages to the millisecond
    second = queue(mail_store)
    deliver_due(mail_store, {"email": FakeSender()}, now=later(), limit=1, policy=POLICY)
    assert mail_store.read(lambda s: [m.id for m in list_messages(s)]) == [second, first]
    assert mail_store.read(lambda s: [m.id for m in list_messages(s, SENT)]) == [first]
    with pytest.raises(OutboxError, match="not a message state"):
        mail_store.read(lambda s: list_messages(s, "lost"))


def test_purging_removes_old_sent_messages_only(mail_store):
    sent_id, failed_id = queue(mail_store), queue(mail_store)
    deliver_due(mail_store, {"email": FakeSender()}, now=later(), limit=1, policy=POLICY)
    deliver_due(mail_store, {"email": FakeSender(PermanentFailure("550 no"))}, now=later(), policy=POLICY)
    pending_id = queue(mail_store)
    assert purge_sent(mail_store, later(), batch=1) == 1
    assert message(mail_store, sent_id) is None
    assert message(mail_store, failed_id).state == FAILED and message(mail_store, pending_id).state == PENDING
