"""Backups, restores and packs of the embedded database, as an operator runs them: the demo
with files and queued messages, a full backup, more changes, an incremental one, then a
restore into a new folder that must hold the same records, histories, files and outbox
(compared by a checksum of everything); a restore as of a moment between the two; a pack
that frees space and loses nothing current; the commands and the scheduled jobs."""
from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from deskbase.cli import main
from deskbase.objects.backup import BackupError, backup, database_size, last_full, pack, restore
from deskbase.objects.fields import Upload
from deskbase.rules.application import load_application_demo, open_store
from deskbase.rules.messages.outbox import list_messages, queue_message

DEFINITIONS = Path(__file__).parents[2] / "definitions"


def uri_of(folder: Path) -> str:
    return f"file://{folder}/Data.fs?blobstorage_dir={folder}/blobs"


def plain(value):
    """A value as text that two databases holding the same data write the same."""
    if hasattr(value, "blob_id") and hasattr(value, "read"):            # an attachment: its name and bytes
        return ["file", value.filename, value.content_type, hashlib.sha256(value.read()).hexdigest()]
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in sorted(value.items(), key=lambda pair: str(pair[0]))}
    return repr(value)


def fingerprint(store) -> tuple[dict[str, int], str]:
    """The number of records per type and one checksum of every record, its history, its
    files and the outbox."""
    def work(session):
        digest, counts = hashlib.sha256(), {}
        for name in sorted(store.definitions.types):
            records = session.container(name).records
            counts[name] = len(records)
            for record_id, record in records.items():
                digest.update(json.dumps([name, record_id, record.number, plain(dict(record.values)),
                                          plain(record.history.entries)], sort_keys=True).encode())
        for message in list_messages(session, limit=10_000):
            digest.update(json.dumps(plain([message.id, message.channel, message.recipients, message.subject,
                                            message.body, message.state])).encode())
        return counts, digest.hexdigest()
    return store.read(work)


@pytest.fixture
def desk(tmp_path, helpdesk_definitions):
    """The demo in a FileStorage, with a ticket's file and a message waiting in the outbox."""
    folder = tmp_path / "live"
    with open_store(uri_of(folder), helpdesk_definitions) as store:
        load_application_demo(store, DEFINITIONS / "demo")
        store.run(lambda s: s.update("T-000001", {"attachments": [
            Upload("photo.png", b"\x89PNG\r\n\x1a\n" + os.urandom(2000), "image/png")]}))
        store.run(lambda s: queue_message(s, "email", ["ops@example.org"], "Disk almost full", "92 % used"))
        store.indexer.file_now()    # no filing left to come after the first backup
        store.folder = folder
        yield store


def test_a_restore_holds_every_record_history_file_and_message_of_the_backup(desk, tmp_path):
    first = backup(desk.uri, tmp_path / "backup")
    assert first.kind == "full" and first.blobs_copied >= 1
    between = datetime.now(timezone.utc)
    time.sleep(1.1)                                     # backups are named by the second
    desk.run(lambda s: s.create("comment", {"ticket": s.find("T-000001").id, "body": "Replaced the toner.",
                                            "visibility": "public", "files": [Upload("log.txt", b"toner ok")]}))
    desk.run(lambda s: s.update("T-000002", {"title": "Printer on dock B prints nothing"}))
    desk.indexer.file_now()                              # the new comment filed in the indexes: nothing left to write
    second = backup(desk.uri, tmp_path / "backup")
    assert second.kind == "incremental" and 0 < second.data_bytes < first.data_bytes
    assert second.blobs_copied == 1                      # only the new file
    assert str(backup(desk.uri, tmp_path / "backup")).startswith("nothing changed")
    counts, checksum = fingerprint(desk)
    restored = restore(tmp_path / "backup", tmp_path / "restored")
    with open_store(uri_of(restored.data.parent), desk.definitions, migrate=False) as copy:
        assert fingerprint(copy) == (counts, checksum)
        assert copy.read(lambda s: s.find("T-000002")["title"]) == "Printer on dock B prints nothing"
    earlier = restore(tmp_path / "backup", tmp_path / "as-before", at=between)
    with open_store(uri_of(earlier.data.parent), desk.definitions, migrate=False) as copy:
        assert copy.read(lambda s: s.count("comment")) == counts["comment"] - 1


def test_a_restore_never_writes_over_a_folder_in_use(desk, tmp_path):
    backup(desk.uri, tmp_path / "backup")
    with pytest.raises(BackupError, match="not empty: restore into a new folder"):
        restore(tmp_path / "backup", desk.folder)
    with pytest.raises(BackupError, match="holds no backup"):
        restore(tmp_path / "nothing-here", tmp_path / "new")
    with pytest.raises(BackupError, match="pg_dump"):
        backup("postgres://deskbase@db:5432/deskbase?blob_dir=/tmp/b", tmp_path / "backup")


def test_a_pack_frees_the_old_revisions_and_keeps_everything_current(desk, tmp_path):
    for round_ in range(30):                            # a ticket changed again and again
        desk.run(lambda s, n=round_: s.update("T-000003", {"title": f"Scanner jams, attempt {n}"}))
    counts, checksum = fingerprint(desk)
    before, after = pack(desk, 0)
    assert after == database_size(desk.uri) < before
    assert fingerprint(desk) == (counts, checksum)       # records, histories, files, outbox: all there
    assert backup(desk.uri, tmp_path / "backup").kind == "full"


def test_keep_drops_the_oldest_full_backups_with_their_increments(desk, tmp_path):
    folder = tmp_path / "backup"
    for round_ in range(3):
        backup(desk.uri, folder, full=True, keep=2)
        desk.run(lambda s, n=round_: s.update("T-000003", {"title": f"Round {n}"}))
        time.sleep(1.1)
        backup(desk.uri, folder, keep=2)
        time.sleep(1.1)
    names = sorted(os.listdir(folder / "data"))
    assert sum(name.endswith(".fs") for name in names) == 2 and sum(name.endswith(".deltafs") for name in names) == 2
    assert names[0][:19] == sorted(n for n in names if n.endswith(".fs"))[0][:19]   # nothing older than the kept
    assert last_full(folder) is not None and backup(desk.uri, folder, full_every_days=0).kind == "full"


def test_the_commands_back_up_restore_and_pack(tmp_path, capsys):
    live = uri_of(tmp_path / "live")
    common = ["--definitions", str(DEFINITIONS), "--db", live]
    assert main(["demo", *common]) == 0
    assert main(["backup", str(tmp_path / "backup"), *common]) == 0
    assert "full backup in" in capsys.readouterr().out
    assert main(["pack", "--days", "0", *common]) == 0
    assert "packed, keeping 0 days of revisions" in capsys.readouterr().out
    assert main(["restore", str(tmp_path / "backup"), str(tmp_path / "restored"), "--definitions",
                 str(DEFINITIONS)]) == 0
    out = capsys.readouterr().out
    assert "restored:" in out and f"file://{tmp_path / 'restored'}/Data.fs" in out
    assert main(["restore", str(tmp_path / "backup"), str(tmp_path / "restored"), "--definitions",
                 str(DEFINITIONS)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "backup"), str(tmp_path / "other"), "--at", "yesterday",
                 "--definitions", str(DEFINITIONS)]) == 1
    assert "is not a moment" in capsys.readouterr().err


def test_the_backup_and_pack_jobs_run_on_schedule_and_say_what_they_did(desk, tmp_path):
    from deskbase.rules.jobs.scheduled import ACTIONS
    now = datetime.now(timezone.utc)
    options = {**ACTIONS["backup"].options, "folder": str(tmp_path / "nightly")}
    assert ACTIONS["backup"].run(desk, now, options, {}).startswith("full backup in")
    assert ACTIONS["backup"].run(desk, now, options, {}).startswith("nothing changed")
    with pytest.raises(BackupError, match="needs `folder`"):
        ACTIONS["backup"].run(desk, now, dict(ACTIONS["backup"].options), {})
    assert ACTIONS["pack"].run(desk, now, dict(ACTIONS["pack"].options), {}).startswith("packed: ")
