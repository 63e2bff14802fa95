"""The outbox: messages to the outside world — email, SMS, webhooks — written in
the transaction that causes them and delivered after commit by a worker that retries.
A rolled-back change sends nothing; a committed message is sent at least once.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any, Protocol

from BTrees.LOBTree import LOBTree
from BTrees.OOBTree import OOBTree
from persistent import Persistent
from ZODB.POSException import ConflictError

from deskbase.objects.errors import DeskbaseError
from deskbase.objects.kept_objects import kept_object

if TYPE_CHECKING:
    from deskbase.objects.session import Session
    from deskbase.objects.store import Store

UTC = timezone.utc
OUTBOX_KEY = "deskbase.outbox"     # beside the StoreRoot in the ZODB root mapping
EMAIL = "email"                    # the channel whose messages get a Message-ID and threading headers

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
STATES = (PENDING, SENDING, SENT, FAILED)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_ID = 2**63 - 1
_HEADER_NAME = re.compile(r"[!-9;-~]+")        # printable ASCII without the colon (RFC 5322 field name)
_MESSAGE_ID = re.compile(r"<?([^<>\s]+@[^<>\s]+)>?")
_REFERENCES_KEPT = 10                          # first + last nine: long threads keep a bounded header

log = logging.getLogger("deskbase.outbox")


# -- errors ------------------------------------------------------------------------------

class OutboxError(DeskbaseError, ValueError):
    """A message that cannot be queued as given (no recipient, a line break in a header…)."""


class DeliveryError(DeskbaseError):
    """A sender could not deliver a message; the subclass says whether trying again may help."""


class TemporaryFailure(DeliveryError):
    """The message may go out later: server down, timeout, 4xx reply. It is retried with back-off."""


class PermanentFailure(DeliveryError):
    """The message will never go out as it is: 5xx reply, refused address. It is failed at once."""


# -- what senders see ---------------------------------------------------------------------

@dataclass(frozen=True)
class OutgoingMessage:
    """A plain copy of a claimed message, handed to a sender outside any transaction."""

    id: int
    channel: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None          # `<id@domain>`, email only
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    record: str | None = None              # the number of the record that caused it, if any
    attempt: int = 1                       # 1 for the first try; also the claim's token
    attachments: tuple[tuple[str, str], ...] = ()   # (record number, attachments field) whose files go along
    queued_at: datetime | None = None
    files: tuple["OutgoingFile", ...] = ()          # those files, read just before sending


@dataclass(frozen=True)
class OutgoingFile:
    """A file sent with a message."""

    filename: str
    content_type: str
    content: bytes


class Sender(Protocol):
    """Delivers messages of one channel. Raises TemporaryFailure or PermanentFailure; any
    other exception counts as temporary. May return a short note kept with the attempt."""

    def send(self, message: OutgoingMessage) -> str | None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How a worker retries: exponential back-off from `base` up to `cap`, `max_attempts`
    tries in all, and how long a claim (lease) protects a message from other workers."""

    base: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=4)
    max_attempts: int = 10
    lease: timedelta = timedelta(minutes=5)

    def delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt number `attempt` (1, 2, …): base, 2·base, 4·base… ≤ cap."""
        if attempt > 40:        # 2**40 minutes is far past any cap; avoids an overflow
            return self.cap
        return min(self.cap, self.base * (2 ** (attempt - 1)))


DEFAULT_POLICY = RetryPolicy()


@dataclass
class DeliveryReport:
    """What one `deliver_due` call did, by message id."""

    sent: list[int] = field(default_factory=list)
    retrying: dict[int, str] = field(default_factory=dict)    # id → error; pending again, later
    failed: dict[int, str] = field(default_factory=dict)      # id → reason; given up
    lost: list[int] = field(default_factory=list)             # lease had passed to another worker

    @property
    def claimed(self) -> int:
        """How many messages this call took."""
        return len(self.sent) + len(self.retrying) + len(self.failed) + len(self.lost)


# -- persistent state ---------------------------------------------------------------------

class Message(Persistent):
    """One queued message with its delivery state and every attempt made. Files it carries are
    kept as references (record number, attachments field), never as bytes: the outbox stays
    small, and the files are read from the record's blobs when the message is sent."""

    attachments: tuple[tuple[str, str], ...] = ()    # messages queued before files travelled have none

    def __init__(self, message_id: int, channel: str, recipients: tuple[str, ...], subject: str,
                 body: str, *, html: str | None, headers: dict[str, str], email_id: str | None,
                 thread: tuple[str, ...], record: str | None, queued_at: datetime, queued_by: str,
                 attachments: tuple[tuple[str, str], ...] = ()):
        self.id = message_id
        self.channel = channel
        self.recipients = recipients
        self.subject = subject
        self.body = body
        self.html = html
        self.headers = headers
        self.message_id = email_id
        self.thread = thread
        self.record = record
        if attachments:
            self.attachments = attachments
        self.queued_at = queued_at
        self.queued_by = queued_by
        self.state = PENDING
        self.due_at = queued_at            # when a worker should look at it next (its key in `due`)
        self.lease_holder: str | None = None
        self.lease_until: datetime | None = None
        self.attempts: tuple[dict[str, Any], ...] = ()   # replaced, never mutated: ZODB sees the change
        self.sent_at: datetime | None = None
        self.failed_at: datetime | None = None
        self.last_error: str | None = None

    @property
    def tries(self) -> int:
        """Attempts made since it was queued or last put back by `retry_failed`."""
        return sum(1 for attempt in self.attempts if not attempt.get("retired"))

    @property
    def in_reply_to(self) -> str | None:
        return self.thread[-1] if self.thread else None

    @property
    def references(self) -> tuple[str, ...]:
        thread = self.thread
        if len(thread) <= _REFERENCES_KEPT:
            return thread
        return (thread[0], *thread[-(_REFERENCES_KEPT - 1):])

    def outgoing(self) -> OutgoingMessage:
        """A plain copy for a sender, usable after the transaction ends."""
        return OutgoingMessage(
            id=self.id, channel=self.channel, recipients=tuple(self.recipients), subject=self.subject,
            body=self.body, html=self.html, headers=dict(self.headers), message_id=self.message_id,
            in_reply_to=self.in_reply_to, references=self.references, record=self.record,
            attempt=len(self.attempts), attachments=tuple(self.attachments), queued_at=self.queued_at)

    def _update_attempt(self, **changes: Any) -> None:
        last = dict(self.attempts[-1], **changes)
        self.attempts = self.attempts[:-1] + (last,)

    def __repr__(self) -> str:
        return f"<Message {self.id} {self.channel} {self.state}>"


class Outbox(Persistent):
    """Messages by id and the due index a worker reads.

    Ids are time-based with random low bits, so concurrent queueing transactions insert
    different keys; BTrees resolve such inserts into one bucket, and only a bucket split
    in both at once conflicts (Store.run then retries). The Outbox object itself is never
    written after creation, so it is no hot spot.
    """

    threads: OOBTree | None = None         # outboxes made before threads were kept have none yet

    def __init__(self) -> None:
        self.messages = LOBTree()          # id → Message
        self.due = OOBTree()               # (due stamp in µs, id) → id: pending and leased messages
        self.threads = OOBTree()           # record number → Message-IDs of the emails about it, oldest first


def ensure_outbox(store: "Store") -> None:
    """Create the outbox in a transaction of its own if the database has none yet."""
    def work(session: "Session") -> None:
        kept_object(session.connection, OUTBOX_KEY, Outbox)
    if store.read(lambda session: OUTBOX_KEY not in session.connection.root()):
        store.run(work)


def _outbox(session: "Session", *, create: bool = False) -> Outbox | None:
    # First use without ensure_outbox: created in this transaction (see kept_object).
    return kept_object(session.connection, OUTBOX_KEY, Outbox if create else None)


# -- queueing -----------------------------------------------------------------------------

def queue_message(session: "Session", channel: str, recipients: Iterable[str], subject: str, body: str, *,
                  html: str | None = None, headers: Mapping[str, str] | None = None,
                  thread: Iterable[str] | None = None, record: Any = None,
                  attachments: Iterable[tuple[str, str]] = ()) -> int:
    """Write a message to the outbox in the session's transaction; returns its id.
    Nothing is sent before that transaction commits, and nothing if it aborts.
    `attachments` are (record number, attachments field): the files that field holds once
    this transaction commits go with the message (email only)."""
    channel = _check_channel(channel)
    recipients = _check_recipients(channel, recipients)
    subject = " ".join(str(subject).split())    # a subject is one line, whatever a template made of it
    header_map = _check_headers(headers or {})
    thread_ids = tuple(_normal_message_id(item) for item in (thread or ()))
    outbox = _outbox(session, create=True)
    assert outbox is not None                   # create=True makes it when missing
    message_id = _new_id(outbox.messages)
    email_id = f"<{message_id}@{message_id_domain(session.definitions.settings)}>" if channel == EMAIL else None
    number = getattr(record, "number", record)
    message = Message(message_id, channel, recipients, subject, str(body),
                      html=None if html is None else str(html), headers=header_map, email_id=email_id,
                      thread=thread_ids, record=None if number is None else str(number),
                      queued_at=session.now, queued_by=session.user,
                      attachments=tuple((str(number), str(field)) for number, field in attachments))
    outbox.messages[message_id] = message
    outbox.due[_due_key(message)] = message_id
    if email_id is not None and message.record is not None:
        if outbox.threads is None:
            outbox.threads = OOBTree()     # once per old database: writes the Outbox object that one time
        # Replaced, never mutated, so ZODB sees the change; two messages about one record in
        # concurrent transactions conflict here, and Store.run retries one of them.
        outbox.threads[message.record] = outbox.threads.get(message.record, ()) + (email_id,)
    return message_id


def record_thread(session: "Session", record: Any) -> tuple[str, ...]:
    """The Message-IDs of the emails queued about a record (a Record or its number), oldest first."""
    outbox = _outbox(session)
    threads = getattr(outbox, "threads", None) if outbox is not None else None
    if threads is None:
        return ()
    return tuple(threads.get(str(getattr(record, "number", record)), ()))


def message_id_domain(settings: Mapping[str, Any]) -> str:
    """The domain of generated Message-IDs: settings `mail.domain`, else the host's name."""
    mail = settings.get("mail") or {}
    domain = mail.get("domain") if isinstance(mail, Mapping) else None
    return str(domain or _host_name())


def _host_name() -> str:
    name = socket.gethostname() or "localhost"
    return name if re.fullmatch(r"[A-Za-z0-9.-]+", name) else "localhost"


def _new_id(messages: LOBTree) -> int:
    # 42 bits of milliseconds (good until 2109) and 21 random bits: ordered by time, so
    # `purge_sent` can cut by id, and unique without a shared counter that every queue writes.
    while True:
        candidate = (time.time_ns() // 1_000_000 << 21) | secrets.randbits(21)
        if candidate <= _MAX_ID and candidate not in messages:
            return candidate


def _check_channel(channel: str) -> str:
    if not isinstance(channel, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", channel):
        raise OutboxError(f"`{channel}` is not a channel name; use a lower-case word such as email or sms")
    return channel


def _check_recipients(channel: str, recipients: Iterable[str]) -> tuple[str, ...]:
    if isinstance(recipients, str):
        recipients = [recipients]
    found: list[str] = []
    for raw in recipients or ():
        text = str(raw).strip()
        if not text:
            continue
        if "\r" in text or "\n" in text:
            raise OutboxError(f"the recipient {text!r} contains a line break")
        if channel == EMAIL and "@" not in parseaddr(text)[1]:
            raise OutboxError(f"`{text}` is not an email address")
        if text not in found:
            found.append(text)
    if not found:
        raise OutboxError(f"a {channel} message needs at least one recipient")
    return tuple(found)


def _check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise OutboxError(f"`{name}` is not a header name")
        text = str(value)
        if "\r" in text or "\n" in text:
            raise OutboxError(f"the header {name} contains a line break")   # header injection
        checked[name] = text
    return checked


def _normal_message_id(item: str) -> str:
    match = _MESSAGE_ID.fullmatch(str(item).strip())
    if not match:
        raise OutboxError(f"`{item}` is not a Message-ID such as <123@example.org>")
    return f"<{match.group(1)}>"


# -- delivery -----------------------------------------------------------------------------

def default_worker_id() -> str:
    """This process's name as a lease holder: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_due(store: "Store", channels: Iterable[str], *, now: datetime | None = None,
              worker_id: str | None = None, limit: int = 100,
              policy: RetryPolicy = DEFAULT_POLICY) -> list[OutgoingMessage]:
    """Claim up to `limit` due messages of these channels for `worker_id`, in one short
    transaction, and return plain copies of them to send.

    A claim is a lease: the message turns `sending`, held by this worker until
    `now + policy.lease`, and its key in the due index moves to that moment. A worker that
    dies before reporting leaves the lease to run out; the message is then due again and
    another worker claims it. Delivery is therefore at least once: a worker that sent but
    died before recording it causes a second sending.

    Two workers claiming the same message change the same Message object, so one gets a
    ConflictError; Store.run retries it, and the retry no longer finds the message due.
    A claim still in conflict after the retries claims nothing this time.
    """
    wanted = set(channels)
    holder = worker_id or default_worker_id()
    moment = _aware(now) if now else datetime.now(UTC)

    def work(session: "Session") -> list[OutgoingMessage]:
        outbox = _outbox(session)
        if outbox is None or limit <= 0:
            return []
        chosen: list[tuple[tuple[int, int], Message | None]] = []
        for key in outbox.due.keys(max=(_stamp(moment), _MAX_ID)):   # collected first: no change while iterating
            message = outbox.messages.get(key[1])
            if message is None or message.state in (SENT, FAILED) or _due_key(message) != key:
                chosen.append((key, None))          # a stale entry: dropped below
            elif message.channel in wanted:
                chosen.append((key, message))
                if sum(1 for _, m in chosen if m is not None) >= limit:
                    break
        claimed = []
        for key, message in chosen:
            if message is None:
                del outbox.due[key]
                continue
            if message.state == SENDING:            # its worker's lease ran out without a report
                message._update_attempt(outcome="abandoned", finished_at=moment,
                                        error=f"{message.lease_holder} did not report before its lease ended")
                message.last_error = message.attempts[-1]["error"]
            if message.tries >= policy.max_attempts:
                _fail(outbox, message, moment, f"gave up after {message.tries} attempts: {message.last_error}")
                continue
            message.attempts = message.attempts + ({"number": message.tries + 1, "worker": holder,
                                                    "claimed_at": moment, "finished_at": None,
                                                    "outcome": None, "error": None},)
            message.state = SENDING
            message.lease_holder = holder
            message.lease_until = moment + policy.lease
            _move(outbox, message, message.lease_until)
            claimed.append(message.outgoing())
        return claimed

    try:
        return store.run(work)
    except ConflictError:
        log.info("%s claimed nothing: other workers kept claiming the same messages", holder)
        return []


def deliver_due(store: "Store", senders: Mapping[str, Sender], *, now: datetime | None = None,
                worker_id: str | None = None, limit: int = 100,
                policy: RetryPolicy = DEFAULT_POLICY) -> DeliveryReport:
    """Deliver the due messages of the channels in `senders`: claim them (one transaction),
    send each outside any transaction, record each outcome (a transaction per message).
    Messages of channels without a sender stay pending for a worker that has one."""
    holder = worker_id or default_worker_id()
    clock = (lambda: _aware(now)) if now else (lambda: datetime.now(UTC))
    report = DeliveryReport()
    for message in claim_due(store, senders, now=clock(), worker_id=holder, limit=limit, policy=policy):
        if message.attachments:
            message = _with_files(store, message)
        outcome, text = _send(senders[message.channel], message)
        result = _record(store, message, holder, outcome, text, clock(), policy)
        if result == SENT:
            report.sent.append(message.id)
        elif result == PENDING:
            report.retrying[message.id] = text or ""
            log.info("message %s (%s, record %s) not sent, to try again: %s", message.id, message.channel,
                     message.record or "-", text)
        elif result == FAILED:
            report.failed[message.id] = text or ""
            log.warning("message %s (%s, record %s) failed for good: %s", message.id, message.channel,
                        message.record or "-", text)
        else:
            report.lost.append(message.id)
    return report


def _with_files(store: "Store", message: OutgoingMessage) -> OutgoingMessage:
    """The message with the files it carries, read from the records' blobs now, one message at
    a time (never every claimed message's files at once). A field's files are those it held
    when the message was queued: later ones are not sent; a record deleted since sends none."""
    from deskbase.objects.errors import NotFound

    def work(session: "Session") -> tuple[OutgoingFile, ...]:
        files = []
        for number, field_name in message.attachments:
            try:
                record = session.find(number)
            except NotFound:
                log.warning("message %s: %s is gone; sent without its files", message.id, number)
                continue
            for item in record.get(field_name) or ():
                if message.queued_at is None or getattr(item, "uploaded_at", message.queued_at) <= message.queued_at:
                    files.append(OutgoingFile(item.filename, item.content_type, item.read()))
        return tuple(files)
    return replace(message, files=store.read(work))


def _send(sender: Sender, message: OutgoingMessage) -> tuple[str, str | None]:
    try:
        return SENT, sender.send(message)
    except PermanentFailure as error:
        return "permanent", str(error) or type(error).__name__
    except DeliveryError as error:
        return "temporary", str(error) or type(error).__name__
    except Exception as error:                   # a sender's bug must not lose the message
        log.exception("the %s sender failed on message %s", message.channel, message.id)
        return "temporary", f"unexpected error in the {message.channel} sender: {type(error).__name__}: {error}"


def _record(store: "Store", sent: OutgoingMessage, holder: str, outcome: str, text: str | None,
            moment: datetime, policy: RetryPolicy) -> str:
    """Write one attempt's outcome; returns the message's state, or "lost" when the lease
    had passed to another worker (its claim, not ours, decides what happens next)."""
    def work(session: "Session") -> str:
        outbox = _outbox(session)
        message = outbox.messages.get(sent.id) if outbox is not None else None
        if outbox is None or message is None:
            return "lost"
        ours = (message.state == SENDING and message.lease_holder == holder
                and len(message.attempts) == sent.attempt)
        if outcome == SENT:
            # It went out, whoever holds the lease now: mark it so nobody sends it again.
            if message.state != SENT:
                if ours:
                    message._update_attempt(outcome=SENT, finished_at=moment, error=None, note=text)
                else:
                    message.attempts = message.attempts + ({
                        "number": message.tries + 1, "worker": holder, "claimed_at": None, "finished_at": moment,
                        "outcome": SENT, "error": None, "note": "reported after its lease had ended"},)
                message.state, message.sent_at = SENT, moment
                message.lease_holder = message.lease_until = None
                outbox.due.pop(_due_key(message), None)
            return SENT if ours else "lost"
        if not ours:
            return "lost"
        message._update_attempt(outcome=outcome, finished_at=moment, error=text)
        message.last_error = text
        message.lease_holder = message.lease_until = None
        if outcome == "permanent":
            _fail(outbox, message, moment, text or "refused")
            return FAILED
        if message.tries >= policy.max_attempts:
            _fail(outbox, message, moment, f"gave up after {message.tries} attempts: {text}")
            return FAILED
        message.state = PENDING
        _move(outbox, message, moment + policy.delay(message.tries))
        return PENDING

    try:
        return store.run(work)
    except ConflictError:
        # Unrecorded: the lease runs out and the message is tried again (at least once).
        log.warning("the outcome of message %s could not be recorded; it will be tried again", sent.id)
        return "lost"


def _fail(outbox: Outbox, message: Message, moment: datetime, reason: str) -> None:
    outbox.due.pop(_due_key(message), None)
    message.state, message.failed_at, message.last_error = FAILED, moment, reason
    message.lease_holder = message.lease_until = None


def _move(outbox: Outbox, message: Message, due_at: datetime) -> None:
    outbox.due.pop(_due_key(message), None)
    message.due_at = due_at
    outbox.due[_due_key(message)] = message.id


def _due_key(message: Message) -> tuple[int, int]:
    return (_stamp(message.due_at), message.id)


def _stamp(moment: datetime) -> int:
    return (_aware(moment) - _EPOCH) // timedelta(microseconds=1)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise OutboxError("times given to the outbox must carry a time zone (use UTC)")
    return moment.astimezone(UTC)


# -- reading and administration -------------------------------------------------------------

def get_message(session: "Session", message_id: int) -> Message | None:
    """The message with this outbox id, or None."""
    outbox = _outbox(session)
    return outbox.messages.get(int(message_id)) if outbox is not None else None


def find_by_message_id(session: "Session", email_id: str) -> Message | None:
    """The email this outbox sent under a Message-ID (`<id@domain>`), to thread a reply to it."""
    match = re.fullmatch(r"<?(\d+)@([^<>\s]+)>?", str(email_id).strip())
    if not match:
        return None
    message = get_message(session, int(match.group(1)))
    if message is None or (message.message_id or "").lower() != f"<{match.group(1)}@{match.group(2)}>".lower():
        return None
    return message


def list_messages(session: "Session", state: str | None = None, *, limit: int = 50) -> list[Message]:
    """The newest messages (by their queueing millisecond), optionally of one state: what an
    admin page shows."""
    if state is not None and state not in STATES:
        raise OutboxError(f"`{state}` is not a message state; use one of {', '.join(STATES)}")
    outbox = _outbox(session)
    if outbox is None:
        return []
    found: list[Message] = []
    for message in _newest_first(outbox.messages):
        if state is None or message.state == state:
            found.append(message)
            if len(found) >= limit:
                break
    return found


@dataclass(frozen=True)
class Backlog:
    """What waits in the outbox: messages pending (or being sent), failed among the newest
    `looked_at`, and how long the oldest pending one has waited (None: none waits)."""

    pending: int
    failed: int
    oldest_pending_seconds: float | None


def backlog(session: "Session", now: datetime, *, looked_at: int = 10_000) -> Backlog:
    """The outbox's backlog at `now`, for health checks and metrics."""
    outbox = _outbox(session)
    if outbox is None:
        return Backlog(0, 0, None)
    pending, oldest = len(outbox.due), None
    for seen, message_id in enumerate(outbox.due.values()):
        if seen >= 1000:                # a long backlog: its earliest due tell enough
            break
        message = outbox.messages.get(message_id)
        if message is not None and message.queued_at is not None:
            waited = (_aware(now) - _aware(message.queued_at)).total_seconds()
            oldest = waited if oldest is None else max(oldest, waited)
    failed = 0
    for count, message in enumerate(_newest_first(outbox.messages)):
        if count >= looked_at:
            break
        failed += message.state == FAILED
    return Backlog(pending, failed, max(0.0, oldest) if oldest is not None else None)


def _newest_first(messages: LOBTree) -> Iterator[Message]:
    if not messages:
        return
    key = messages.maxKey()
    while True:
        yield messages[key]
        try:
            key = messages.maxKey(key - 1)
        except ValueError:          # no smaller key
            return


def _message_in(session: "Session", message_id: int, state: str, otherwise: str) -> tuple[Outbox, Message]:
    """The outbox and one of its messages, which must be in `state`; OutboxError saying
    `otherwise` when it is not."""
    outbox = _outbox(session)
    message = outbox.messages.get(int(message_id)) if outbox is not None else None
    if outbox is None or message is None:
        raise OutboxError(f"there is no outbox message {message_id}")
    if message.state != state:
        raise OutboxError(f"message {message_id} is {message.state}; {otherwise}")
    return outbox, message


def retry_failed(session: "Session", message_id: int) -> Message:
    """Put a failed message back in the queue, due now, with a fresh count of attempts
    (the earlier ones stay in its history, marked retired)."""
    outbox, message = _message_in(session, message_id, FAILED, "only a failed message is retried")
    message.attempts = tuple(dict(a, retired=True) for a in message.attempts)
    message.state, message.failed_at = PENDING, None
    message.due_at = session.now
    outbox.due[_due_key(message)] = message.id
    return message


def cancel_pending(session: "Session", message_id: int) -> Message:
    """Stop a message that waits to be sent: it is failed, saying who cancelled it, and may be
    retried later like any failed one."""
    outbox, message = _message_in(session, message_id, PENDING, "only a message waiting to be sent is cancelled")
    key = _due_key(message)
    if outbox.due.get(key) == message.id:
        del outbox.due[key]
    message.state, message.failed_at = FAILED, session.now
    message.last_error = f"cancelled by {session.user}"
    return message


def purge_sent(store: "Store", before: datetime, *, batch: int = 500) -> int:
    """Delete sent messages queued before `before`, `batch` per transaction; returns how many.
    Failed and pending messages are kept whatever their age."""
    bound = (_stamp(before) // 1000) << 21         # ids begin with their queueing millisecond
    removed = 0
    start = 0
    while True:
        def work(session: "Session") -> tuple[int, int | None]:
            outbox = _outbox(session)
            if outbox is None:
                return 0, None
            ids = []
            last = None
            for key in outbox.messages.keys(min=start, max=bound, excludemax=True):
                last = key
                if outbox.messages[key].state == SENT:
                    ids.append(key)
                    if len(ids) >= batch:
                        break
            for key in ids:
                del outbox.messages[key]
            return len(ids), last
        count, last = store.run(work)
        removed += count
        if last is None or count < batch:
            return removed
        start = last + 1
