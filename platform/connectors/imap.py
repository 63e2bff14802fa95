"""Email in over IMAP (imapclient): fetch a mailbox's new messages, hand each to the intake
in its own transaction, and only after those commits mark them seen, move or delete them
(a batch at a time). A crash between the two re-reads the messages next time; the intake
knows their UID and Message-ID and makes nothing twice. `idle` waits with IMAP IDLE where the server offers it."""
from __future__ import annotations

import logging
import os
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from deskbase.objects.errors import DeskbaseError
from deskbase.rules.intake.mail_intake import Mailbox, Outcome, ensure_mail_state, ingest, mailbox_named, mailboxes

if TYPE_CHECKING:
    from imapclient import IMAPClient

    from deskbase.objects.store import Store

UTC = timezone.utc
BATCH = 50                          # messages fetched per FETCH command
RENEW_IDLE = 25 * 60                # servers may drop an IDLE after 30 minutes (RFC 2177)
PAUSE_VARIABLE = "DESKBASE_MAIL_PAUSE"   # seconds to wait between a commit and its flag (crash tests)

log = logging.getLogger("deskbase.imap")


class MailboxUnreachable(DeskbaseError):
    """The IMAP server cannot be reached or refuses the login; says which and why."""


@dataclass
class FetchReport:
    """What one fetch of a mailbox did."""

    mailbox: str
    outcomes: list[tuple[int, Outcome]] = field(default_factory=list)    # (UID, outcome)
    unreachable: str | None = None
    errors: list[str] = field(default_factory=list)

    def count(self, *actions: str) -> int:
        return sum(1 for _, outcome in self.outcomes if outcome.action in actions)

    def __str__(self) -> str:
        if self.unreachable:
            return f"{self.mailbox}: mailbox unreachable ({self.unreachable})"
        text = (f"{self.mailbox}: {self.count('created')} new, {self.count('replied')} replies, "
                f"{self.count('quarantined')} quarantined, {self.count('ignored', 'refused')} ignored or refused, "
                f"{self.count('duplicate')} already stored")
        return text + (f"; errors: {'; '.join(self.errors)}" if self.errors else "")


def connect(mailbox: Mailbox, *, timeout: float = 30.0) -> "IMAPClient":
    """A logged-in client of the mailbox's server; MailboxUnreachable says what failed."""
    from imapclient import IMAPClient
    from imapclient.exceptions import IMAPClientError, LoginError
    where = f"the IMAP server {mailbox.host}:{mailbox.port}"
    username = os.environ.get(mailbox.username_env) if mailbox.username_env else None
    password = os.environ.get(mailbox.password_env) if mailbox.password_env else None
    if not username:
        raise MailboxUnreachable(f"no user name for {where}: set the environment variable "
                                 f"{mailbox.username_env or '(username_env of the mailbox)'}")
    try:
        client = IMAPClient(mailbox.host, mailbox.port, ssl=mailbox.security == "ssl", timeout=timeout,
                            ssl_context=ssl_module.create_default_context() if mailbox.security != "none" else None)
    except (OSError, socket.timeout, IMAPClientError) as error:
        raise MailboxUnreachable(f"cannot reach {where}: {getattr(error, 'strerror', None) or error}") from None
    try:
        if mailbox.security == "starttls":
            client.starttls(ssl_module.create_default_context())
        client.login(username, password or "")
    except LoginError as error:
        _close(client)
        raise MailboxUnreachable(f"{where} refused the login of {username}: {_text(error)}") from None
    except (OSError, IMAPClientError) as error:
        _close(client)
        raise MailboxUnreachable(f"{where} failed during login: {_text(error)}") from None
    return client


def fetch(store: "Store", mailbox: Mailbox, *, client: "IMAPClient | None" = None, limit: int | None = None,
          progress: Callable[[int, Outcome], None] | None = None) -> FetchReport:
    """Read the mailbox's new messages into records, each in its own transaction, then mark
    each as the mailbox's `after:` says. Never raises for a message; MailboxUnreachable when
    the server cannot be reached (a given `client` is left open)."""
    from imapclient import DELETED, SEEN
    ensure_mail_state(store)
    own = client is None
    client = client or connect(mailbox)
    report = FetchReport(mailbox.name)
    pause = float(os.environ.get(PAUSE_VARIABLE) or 0)
    try:
        selected = client.select_folder(mailbox.folder)
        uidvalidity = int(selected.get(b"UIDVALIDITY", 0))
        if mailbox.after == "move" and not client.folder_exists(mailbox.move_to):
            client.create_folder(mailbox.move_to)
        uids = sorted(client.search(["UNSEEN"] if mailbox.after == "seen" else ["NOT", "DELETED"]))
        if limit:
            uids = uids[:limit]
        capabilities = set(client.capabilities())
        for start in range(0, len(uids), BATCH):
            chunk = uids[start:start + BATCH]
            data = client.fetch(chunk, ["BODY.PEEK[]", "INTERNALDATE"])
            stored: list[int] = []
            for uid in chunk:
                item = data.get(uid)
                if item is None:             # expunged meanwhile by another client
                    continue
                raw = item.get(b"BODY[]") or b""
                received = item.get(b"INTERNALDATE")
                received = received.astimezone(UTC) if isinstance(received, datetime) and received.tzinfo \
                    else datetime.now(UTC)
                try:
                    outcome = ingest(store, mailbox, raw, uid=uid, uidvalidity=uidvalidity, received_at=received)
                except Exception as error:      # the database failed: leave it unflagged, read it again later
                    log.exception("message %s of mailbox %s was not stored", uid, mailbox.name)
                    report.errors.append(f"UID {uid} not stored: {type(error).__name__}: {error}")
                    continue
                report.outcomes.append((uid, outcome))
                stored.append(uid)
                if progress is not None:
                    progress(uid, outcome)
                if pause:
                    time.sleep(pause)
            # Marked once the whole batch is committed, in one command: a crash before it
            # leaves them unmarked, and the next fetch finds them already stored.
            if stored:
                _after(client, mailbox, stored, capabilities, SEEN, DELETED)
    except MailboxUnreachable:
        raise
    except (OSError, socket.timeout) as error:
        report.unreachable = f"connection lost: {getattr(error, 'strerror', None) or error}"
    except Exception as error:
        from imapclient.exceptions import IMAPClientError
        if not isinstance(error, IMAPClientError):
            raise
        report.errors.append(f"{mailbox.folder}: {_text(error)}")
    finally:
        if own:
            _close(client)
    return report


def _after(client: "IMAPClient", mailbox: Mailbox, uids: list[int], capabilities: set[bytes], seen, deleted) -> None:
    """Mark committed messages: seen, moved or deleted."""
    if mailbox.after == "seen":
        client.add_flags(uids, [seen], silent=True)
    elif mailbox.after == "move":
        if b"MOVE" in capabilities:
            client.move(uids, mailbox.move_to)
        else:
            client.copy(uids, mailbox.move_to)
            client.add_flags(uids, [deleted, seen], silent=True)
            _expunge(client, uids, capabilities)
    else:
        client.add_flags(uids, [deleted], silent=True)
        _expunge(client, uids, capabilities)


def _expunge(client: "IMAPClient", uids: list[int], capabilities: set[bytes]) -> None:
    if b"UIDPLUS" in capabilities:
        client.uid_expunge(uids)       # only ours, not what another client marked deleted
    else:
        client.expunge()


def fetch_mailboxes(store: "Store", names: Iterable[str] | None = None, *, limit: int | None = None,
                    progress: Callable[[int, Outcome], None] | None = None) -> list[FetchReport]:
    """Fetch each named mailbox (all when None); an unreachable one is reported, not raised."""
    definitions = store.definitions
    chosen = [mailbox_named(definitions, name) for name in names] if names else list(mailboxes(definitions).values())
    reports = []
    for mailbox in chosen:
        try:
            reports.append(fetch(store, mailbox, limit=limit, progress=progress))
        except MailboxUnreachable as error:
            reports.append(FetchReport(mailbox.name, unreachable=str(error)))
    return reports


def idle(store: "Store", mailbox: Mailbox, stop: threading.Event, *, renew: float = RENEW_IDLE,
         poll: float = 60.0, check: float = 1.0, report: Callable[[FetchReport], None] | None = None) -> None:
    """Until `stop` is set: fetch, then wait with IDLE and fetch again as soon as the server
    announces a message (EXISTS), and at least every `poll` seconds (IDLE is issued again
    each time, never kept past `renew`); without IDLE on the server, poll every `poll`
    seconds. A lost connection is opened again after `poll` seconds."""
    from imapclient.exceptions import IMAPClientError
    while not stop.is_set():
        try:
            client = connect(mailbox)
        except MailboxUnreachable as error:
            log.warning("%s; trying again in %s s", error, poll)
            if report is not None:
                report(FetchReport(mailbox.name, unreachable=str(error)))
            stop.wait(poll)
            continue
        try:
            _notify(report, fetch(store, mailbox, client=client))
            can_idle = b"IDLE" in client.capabilities()
            while not stop.is_set():
                if not can_idle:
                    stop.wait(poll)
                    _notify(report, fetch(store, mailbox, client=client))
                    continue
                # A message may arrive between the fetch and the IDLE command, and the server's
                # word of it then comes before IDLE answers: ask once more first, and fetch at
                # least every `poll` seconds, so no message waits for the next announcement.
                if not _announced(client.noop()[1]):
                    _wait_idle(client, stop, min(renew, poll), check)
                if not stop.is_set():
                    _notify(report, fetch(store, mailbox, client=client))
        except (OSError, socket.timeout, IMAPClientError) as error:
            log.warning("mailbox %s: %s; connecting again in %s s", mailbox.name, _text(error), poll)
            stop.wait(poll)
        finally:
            _close(client)


def _announced(responses) -> bool:
    """Whether untagged responses tell of a new message."""
    return any(len(response) > 1 and response[1] in (b"EXISTS", b"RECENT") for response in responses or ())


def _wait_idle(client: "IMAPClient", stop: threading.Event, renew: float, check: float) -> bool:
    """One IDLE of at most `renew` seconds; whether a new message was announced."""
    client.idle()
    started = time.monotonic()
    arrived = False
    try:
        while not stop.is_set() and time.monotonic() - started < renew and not arrived:
            if _announced(client.idle_check(timeout=check)):
                arrived = True
    finally:
        client.idle_done()
    return arrived


def _notify(report: Callable[[FetchReport], None] | None, fetched: FetchReport) -> None:
    if report is not None:
        report(fetched)


def _close(client: "IMAPClient") -> None:
    try:
        client.logout()
    except Exception:           # already closed or broken: nothing more to do
        try:
            client.shutdown()
        except Exception:
            pass


def _text(error: BaseException) -> str:
    text = str(error)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return " ".join(text.split()) or type(error).__name__



def start_idle(store: "Store", stop: threading.Event, **options) -> list[threading.Thread]:
    """A daemon thread running `idle` for each mailbox with `idle: true`, until `stop` is set:
    what a long-running process (the worker) starts beside its job runner."""
    threads = []
    for mailbox in mailboxes(store.definitions).values():
        if mailbox.idle and mailbox.username_env and not os.environ.get(mailbox.username_env):
            log.warning("mailbox %s: %s is not set, so nothing listens to it (the fetch_mail job says so too)",
                        mailbox.name, mailbox.username_env)
            continue
        if mailbox.idle:
            thread = threading.Thread(target=idle, args=(store, mailbox, stop), kwargs=options, daemon=True,
                                      name=f"deskbase-mail-{mailbox.name}")
            thread.start()
            threads.append(thread)
    return threads
