"""Backups, restores and packs of the embedded database (FileStorage with its blob folder).

A backup folder holds `data/`, a repozo repository (a full copy of `Data.fs`, then the
transactions appended since, each an incremental file), and `blobs/`, the attachments'
files. The database is read while it runs: repozo copies `Data.fs` up to its last complete
transaction, and the blobs are copied afterwards, so every file a backed-up transaction
names is there (a blob written meanwhile is copied too and ignored at restore). Blob files
never change once written, so each backup copies only the new ones.

A restore writes a new `Data.fs` (as of the last backup, or of a moment) and its blob
folder into a folder that does not exist yet, then checks it opens. A pack drops the
object revisions older than N days: records keep their own history, so ZODB's is only
needed for undo; blobs of dropped revisions go with them.

PostgreSQL (RelStorage) is backed up by PostgreSQL's own tools (`pg_dump`): see
docs/operations.md."""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs

from ZODB.scripts import repozo

from .errors import DeskbaseError

FULL, DELTA = ".fs", ".deltafs"
_STAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)")


class BackupError(DeskbaseError):
    """A backup, restore or pack that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Embedded:
    """Where an embedded database keeps its data: `Data.fs` and the blob folder."""

    data: Path
    blobs: Path

    @classmethod
    def of(cls, uri: str) -> "Embedded":
        """The files of a `file://` URI; BackupError for any other database."""
        if not uri.startswith("file://"):
            kind = "PostgreSQL" if uri.startswith(("postgres://", "postgresql://")) else uri.split(":", 1)[0]
            raise BackupError(f"this command backs up the embedded database (file://…); the database is {kind}: "
                              "back it up with its own tools (for PostgreSQL, pg_dump: see docs/operations.md)")
        path, _, query = uri[len("file://"):].partition("?")
        blobs = parse_qs(query).get("blobstorage_dir", [""])[0]
        if not blobs:
            raise BackupError(f"the database URI `{uri}` names no blob folder (?blobstorage_dir=…)")
        return cls(Path(path), Path(blobs))


@dataclass(frozen=True)
class BackupReport:
    """What one backup wrote."""

    kind: str                  # "full" or "incremental"
    data_bytes: int            # the size of the file repozo wrote
    blobs_copied: int
    blobs_bytes: int
    sets_removed: int          # full backups (with their increments) dropped by `keep`
    folder: Path

    def __str__(self) -> str:
        if self.kind == "unchanged":
            return f"nothing changed since the last backup in {self.folder}"
        text = (f"{self.kind} backup in {self.folder}: {size_text(self.data_bytes)} of data, "
                f"{self.blobs_copied} new files ({size_text(self.blobs_bytes)})")
        return text + (f"; {self.sets_removed} older backups removed" if self.sets_removed else "")


def backup(uri: str, folder: str | Path, *, full: bool = False, keep: int | None = None,
           full_every_days: float | None = None, now: datetime | None = None) -> BackupReport:
    """Back up the embedded database of `uri` into `folder` (made if needed): a full copy
    the first time, after a pack, with `full`, or when the last full one is older than
    `full_every_days`; else the transactions since the last one. `keep` N keeps the N
    newest full backups with their increments."""
    source = Embedded.of(uri)
    if full_every_days is not None and not full:
        last = last_full(folder)
        full = last is None or ((now or datetime.now(timezone.utc)) - last).total_seconds() > full_every_days * 86400
    if not source.data.is_file():
        raise BackupError(f"there is no database at {source.data}")
    folder = Path(folder)
    repository, blobs = folder / "data", folder / "blobs"
    repository.mkdir(parents=True, exist_ok=True)
    before = set(os.listdir(repository))
    _repozo(["-B", "-r", str(repository), "-f", str(source.data)] + (["-F"] if full else []))
    written = sorted(set(os.listdir(repository)) - before)
    kind = ("full" if any(name.endswith(FULL) for name in written) else
            "incremental" if any(name.endswith(DELTA) for name in written) else "unchanged")
    data_bytes = sum((repository / name).stat().st_size for name in written if name.endswith((FULL, DELTA)))
    copied, copied_bytes = _copy_new(source.blobs, blobs)
    removed = _keep_newest(repository, keep) if keep else 0
    return BackupReport(kind, data_bytes, copied, copied_bytes, removed, folder)


def last_full(folder: str | Path) -> datetime | None:
    """When the newest full backup of a backup folder was made (None: there is none)."""
    repository = Path(folder) / "data"
    stamps = sorted(name[:19] for name in (os.listdir(repository) if repository.is_dir() else ())
                    if name.endswith(FULL) and _STAMP.match(name))
    return datetime.strptime(stamps[-1], "%Y-%m-%d-%H-%M-%S").replace(tzinfo=timezone.utc) if stamps else None


def restore(folder: str | Path, target: str | Path, *, at: datetime | None = None,
            progress: Callable[[str], None] | None = None) -> Embedded:
    """Write the database of a backup folder (as of its last backup, or of `at`) into the new
    folder `target`: `target/Data.fs` and `target/blobs`. The URI to open it is
    `file://target/Data.fs?blobstorage_dir=target/blobs`."""
    folder, target = Path(folder), Path(target)
    repository, blobs = folder / "data", folder / "blobs"
    if not any(name.endswith(FULL) for name in (os.listdir(repository) if repository.is_dir() else ())):
        raise BackupError(f"{folder} holds no backup (no full backup in {repository})")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} exists and is not empty: restore into a new folder, then point the "
                          "service at it")
    restored = Embedded(target / "Data.fs", target / "blobs")
    target.mkdir(parents=True, exist_ok=True)
    arguments = ["-R", "-r", str(repository), "-o", str(restored.data)]
    if at is not None:
        arguments += ["-D", at.astimezone(timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")]
    _repozo(arguments)
    if progress:
        progress(f"data restored to {restored.data}")
    if blobs.is_dir():
        shutil.copytree(blobs, restored.blobs)
    else:
        restored.blobs.mkdir()
    if progress:
        progress(f"files restored to {restored.blobs}")
    return restored


def pack(store, days: float) -> tuple[int | None, int | None]:
    """Drop the object revisions older than `days` (0: all but the current ones) and the
    objects no longer reachable from the database of an open store; the embedded
    database's size in bytes before and after (None, None for another storage)."""
    embedded = store.uri.startswith("file://")
    before = database_size(store.uri) if embedded else None
    store.db.pack(days=days)
    return before, database_size(store.uri) if embedded else None


def database_size(uri: str) -> int:
    """The bytes of an embedded database's `Data.fs` and blob folder."""
    source = Embedded.of(uri)
    files = [source.data] + [Path(root, name) for root, _, names in os.walk(source.blobs) for name in names]
    return sum(path.stat().st_size for path in files if path.is_file())


def _repozo(arguments: list[str]) -> None:
    try:
        repozo.main(arguments + ["-Q"] if arguments[0] == "-B" else arguments)
    except SystemExit as stopped:      # repozo says what went wrong by exiting with it
        if stopped.code not in (None, 0):
            raise BackupError(f"repozo: {stopped.code}") from None


def _copy_new(source: Path, destination: Path) -> tuple[int, int]:
    """Copy the files of a blob folder that the copy lacks (blob files never change)."""
    copied = size = 0
    for root, folders, names in os.walk(source):
        folders[:] = [name for name in folders if name != "tmp"]     # blobs being written
        relative = Path(root).relative_to(source)
        for name in names:
            target = destination / relative / name
            if target.exists() and (name != ".layout" or target.stat().st_size):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(root) / name, target)
            if name != ".layout":
                copied += 1
                size += target.stat().st_size
    return copied, size


def _keep_newest(repository: Path, keep: int) -> int:
    """Remove the full backups older than the `keep` newest, with the files that follow them."""
    fulls = sorted(name for name in os.listdir(repository) if name.endswith(FULL))
    if len(fulls) <= keep:
        return 0
    oldest_kept = fulls[-keep][:19]               # its time stamp, YYYY-MM-DD-HH-MM-SS
    for name in os.listdir(repository):
        if _STAMP.match(name) and name[:19] < oldest_kept:
            (repository / name).unlink()
    return len(fulls) - keep


def size_text(count: float) -> str:
    """A number of bytes as people read it: 812 bytes, 4.2 MB."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} bytes"
