"""`deskbase` commands of the mailboxes: fetch mail now, wait for it with IDLE, and the
quarantine of messages that made no record (list, show, release, delete)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .opening import open_store


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add this group's sub-commands to `commands`; return their handlers by command name."""
    mail = commands.add_parser("mail", parents=[common], help="email in: fetch mailboxes, the quarantine")
    actions = mail.add_subparsers(dest="mail_command", metavar="ACTION", required=True)
    fetch = actions.add_parser("fetch", parents=[common], help="read the new mail of a mailbox (all without a name)")
    fetch.add_argument("mailbox", nargs="?", help="a mailbox of the `mailboxes:` section")
    fetch.add_argument("--limit", type=int, default=None, help="at most this many messages per mailbox")
    idle = actions.add_parser("idle", parents=[common],
                              help="wait for new mail with IMAP IDLE and read it as it comes, until stopped")
    idle.add_argument("mailbox", help="a mailbox of the `mailboxes:` section")
    idle.add_argument("--poll", type=float, default=60.0, metavar="SECONDS",
                      help="how often to look without IDLE, or to reconnect (default 60)")
    quarantine = actions.add_parser("quarantine", parents=[common],
                                    help="messages that made no record: list, show, release, delete")
    held = quarantine.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)
    listing = held.add_parser("list", parents=[common], help="the newest held messages")
    listing.add_argument("--all", action="store_true", help="also those ignored by loop protection or refused")
    listing.add_argument("--limit", type=int, default=50)
    for name, text in (("show", "print a held message: why, and its source"),
                       ("release", "make the record it would have made, skipping the checks that held it"),
                       ("delete", "forget a held message")):
        action = held.add_parser(name, parents=[common], help=text)
        action.add_argument("id", type=int)
    return {"mail": cmd_mail}


def cmd_mail(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        if args.mail_command == "fetch":
            return _fetch(store, args)
        if args.mail_command == "idle":
            return _idle(store, args)
        return _quarantine(store, args)


def _fetch(store, args) -> int:
    from deskbase.connectors.imap import fetch_mailboxes

    def progress(uid, outcome) -> None:
        print(f"  UID {uid}: {outcome}", flush=True)
    reports = fetch_mailboxes(store, [args.mailbox] if args.mailbox else None, limit=args.limit, progress=progress)
    for report in reports:
        print(report, flush=True)
    if not reports:
        print("no mailboxes in the definitions")
    return 1 if any(report.unreachable or report.errors for report in reports) else 0


def _idle(store, args) -> int:
    import signal
    import threading

    from deskbase.connectors.imap import idle
    from deskbase.rules.intake.mail_intake import mailbox_named
    mailbox = mailbox_named(store.definitions, args.mailbox)
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())
    print(f"waiting for mail in {mailbox.name} ({mailbox.host}:{mailbox.port} {mailbox.folder}); Ctrl-C stops it",
          flush=True)
    idle(store, mailbox, stop, poll=args.poll, report=lambda report: print(report, flush=True))
    print("stopped", flush=True)
    return 0


def _quarantine(store, args) -> int:
    from deskbase.rules.intake.mail_intake import QUARANTINED, delete_held, held_message, held_messages, release
    command = args.quarantine_command
    if command == "list":
        def rows(session):
            return [[str(h.id), h.received_at.strftime("%Y-%m-%d %H:%M"), h.disposition, h.mailbox, h.sender,
                     h.subject[:50], h.reason[:70]]
                    for h in held_messages(session, None if args.all else QUARANTINED, limit=args.limit)]
        found = store.read(rows)
        if not found:
            print("the quarantine is empty" if not args.all else "no held messages")
            return 0
        headers = ["id", "received", "state", "mailbox", "from", "subject", "reason"]
        sizes = [max(len(headers[i]), *(len(row[i]) for row in found)) for i in range(len(headers))]
        for row in [headers, ["-" * size for size in sizes], *found]:
            print("  ".join(cell.ljust(sizes[i]) for i, cell in enumerate(row)).rstrip())
        return 0
    if command == "show":
        def show(session):
            held = held_message(session, args.id)
            return (f"held message {held.id}: {held.disposition}\nreason:   {held.reason}\nmailbox:  {held.mailbox} "
                    f"(UIDVALIDITY {held.uidvalidity}, UID {held.uid})\nreceived: {held.received_at:%Y-%m-%d %H:%M} "
                    f"UTC\nfrom:     {held.sender}\nsubject:  {held.subject}\nsize:     {held.size} bytes\n"), held.raw()
        text, raw = store.read(show)
        print(text)
        sys.stdout.flush()
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.write(b"\n")
        return 0
    if command == "release":
        outcome = release(store, args.id)
        print(f"released message {args.id}: {outcome}")
        return 0
    delete_held(store, args.id)
    print(f"deleted held message {args.id}")
    return 0
