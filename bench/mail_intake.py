"""Email-in benchmark: messages with a 50 KB attachment fetched from a local Dovecot into
records (one transaction each, then marked seen), as a ratio to a raw baseline measured in
the same run: the same IMAP fetch and email parsing, storing nothing.

    .venv/bin/python bench/mail_intake.py                     # 500 messages
    .venv/bin/python bench/mail_intake.py --messages 2000 --memory

Needs dovecot (apt-get install dovecot-imapd) and root (Dovecot's mail folder is chowned);
the server runs from a temporary folder and is stopped at the end. Records go to a
temporary FileStorage with blobs (`--memory`: memory://), through the write path of the
small application of tests/connectors/mail_app.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from servers.dovecot import Dovecot, dovecot_binary  # noqa: E402

from deskbase.connectors.imap import fetch  # noqa: E402
from deskbase.rules.application import load_application, open_store  # noqa: E402
from deskbase.rules.intake.mail_intake import mailboxes  # noqa: E402

BATCH = 50


def make_messages(count: int, attachment_size: int) -> list[bytes]:
    attachment = os.urandom(attachment_size)
    found = []
    for n in range(count):
        mail = EmailMessage()
        mail["From"] = f"Person {n % 100} <person{n % 100}@client.example>"
        mail["To"] = "inbox@example.test"
        mail["Subject"] = f"Request {n}: l'imprimante ne répond plus"
        mail["Message-ID"] = f"<bench-{n}-{time.time_ns()}@client.example>"
        mail.set_content(f"Bonjour,\n\nrequest number {n}; the printer does not answer.\n\nOn Mon, Desk wrote:\n> old\n")
        mail.add_attachment(attachment, maintype="application", subtype="pdf", filename=f"scan-{n}.pdf")
        found.append(bytes(mail))
    return found


def fill(server: Dovecot, folder: str, messages: list[bytes]) -> None:
    client = server.client()
    if client.folder_exists(folder):
        client.delete_folder(folder)
    client.create_folder(folder)
    for raw in messages:
        client.append(folder, raw)
    client.logout()


def baseline(server: Dovecot, folder: str) -> tuple[float, int]:
    """Raw IMAP fetch in batches and email parsing (body and attachments decoded), no storing."""
    client = server.client()
    started = time.perf_counter()
    client.select_folder(folder, readonly=True)
    uids = sorted(client.search(["ALL"]))
    parsed = 0
    for start in range(0, len(uids), BATCH):
        data = client.fetch(uids[start:start + BATCH], ["BODY.PEEK[]", "INTERNALDATE"])
        for uid in uids[start:start + BATCH]:
            message = message_from_bytes(data[uid][b"BODY[]"], policy=default_policy)
            message.get_body(preferencelist=("plain", "html")).get_content()
            for part in message.iter_attachments():
                part.get_payload(decode=True)
            parsed += 1
    elapsed = time.perf_counter() - started
    client.logout()
    return elapsed, parsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--attachment", type=int, default=50_000, help="attachment size in bytes (default 50 KB)")
    parser.add_argument("--memory", action="store_true", help="memory:// instead of a FileStorage")
    args = parser.parse_args()
    if dovecot_binary() is None:
        print("dovecot is not installed: apt-get install -y dovecot-imapd", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="deskbase-bench-mail-"))
    work.chmod(0o755)            # Dovecot's own users read the account file below it
    server = Dovecot(work / "dovecot").start()
    try:
        messages = make_messages(args.messages, args.attachment)
        size = sum(map(len, messages)) / len(messages)
        print(f"{args.messages} messages of {size / 1024:.0f} KiB (a {args.attachment // 1000} KB attachment each)")
        fill(server, "bench", messages)
        raw_seconds, parsed = baseline(server, "bench")
        raw_rate = parsed / raw_seconds
        print(f"  baseline (IMAP fetch + parsing, nothing stored): {raw_rate:8.0f} messages/s  ({raw_seconds:.2f} s)")

        definitions = load_application(ROOT / "tests" / "connectors" / "mail_app")
        os.environ["BENCH_IMAP_USER"], os.environ["BENCH_IMAP_PASSWORD"] = server.user, server.password
        mailbox = dataclasses.replace(mailboxes(definitions)["desk"], host=server.host, port=server.port,
                                      folder="bench", rate_limit=0, username_env="BENCH_IMAP_USER",
                                      password_env="BENCH_IMAP_PASSWORD")
        uri = "memory://" if args.memory else f"file://{work}/var/Data.fs?blobstorage_dir={work}/var/blobs"
        store = open_store(uri, definitions)
        stamps: list[float] = []
        try:
            started = time.perf_counter()
            report = fetch(store, mailbox, progress=lambda uid, outcome: stamps.append(time.perf_counter()))
            seconds = time.perf_counter() - started
            count = store.read(lambda session: session.count("request"))
        finally:
            store.close()
        if count != args.messages or report.count("created") != args.messages:
            print(f"error: {count} records for {args.messages} messages ({report})", file=sys.stderr)
            return 1
        rate = count / seconds
        gaps = [b - a for a, b in zip([started] + stamps[:-1], stamps)]
        print(f"  intake (record + attachment blobs + .eml + notification queued + \\Seen, one transaction each): "
              f"{rate:8.0f} messages/s  ({seconds:.2f} s, {'memory' if args.memory else 'FileStorage'})")
        print(f"  per message: median {statistics.median(gaps) * 1000:.1f} ms, "
              f"p95 {sorted(gaps)[int(len(gaps) * 0.95) - 1] * 1000:.1f} ms")
        print(f"  ratio intake / baseline: {rate / raw_rate:.2f}  (target: ≥ 100 messages/s: "
              f"{'met' if rate >= 100 else 'NOT met'})")
        return 0
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
