"""`deskbase` commands that keep a deployment running: back up, restore and pack the
embedded database."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime, timezone

from .opening import open_store


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add this group's sub-commands to `commands`; return their handlers by command name."""
    backup = commands.add_parser("backup", parents=[common],
                                 help="back up the embedded database and its files into FOLDER (full the first "
                                      "time, then what changed); safe while the service runs")
    backup.add_argument("folder", help="the backup folder (made if needed); keep it on another disk or machine")
    backup.add_argument("--full", action="store_true", help="a full copy even if an earlier one exists")
    backup.add_argument("--keep", type=int, default=None, metavar="N",
                        help="keep only the N newest full backups with their increments")
    restore = commands.add_parser("restore", parents=[common],
                                  help="write the database of a backup FOLDER into the new folder TARGET")
    restore.add_argument("folder", help="the backup folder")
    restore.add_argument("target", help="a new, empty folder for Data.fs and blobs/")
    restore.add_argument("--at", default=None, metavar="WHEN",
                         help="restore the state of that moment (UTC: 2026-12-01 or 2026-12-01T18:30) rather "
                              "than of the last backup")
    pack = commands.add_parser("pack", parents=[common],
                               help="drop the database's old object revisions (records keep their own history); "
                                    "stop the service first, or let its `pack` job do it")
    pack.add_argument("--days", type=float, default=7, help="keep the revisions of the last N days (default 7)")
    return {"backup": cmd_backup, "restore": cmd_restore, "pack": cmd_pack}


def cmd_backup(args: argparse.Namespace) -> int:
    from deskbase.objects.backup import backup
    from deskbase.objects.store import default_uri
    print(backup(args.db or default_uri(), args.folder, full=args.full, keep=args.keep))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from deskbase.objects.backup import BackupError, restore
    at = None
    if args.at:
        try:
            at = datetime.fromisoformat(args.at).replace(tzinfo=timezone.utc)
        except ValueError:
            raise BackupError(f"`{args.at}` is not a moment; write it like 2026-12-01 or 2026-12-01T18:30") from None
    restored = restore(args.folder, args.target, at=at, progress=print)
    uri = f"file://{restored.data.resolve()}?blobstorage_dir={restored.blobs.resolve()}"
    args.db = uri
    with open_store(args, migrate=False) as store:
        counts = store.read(lambda s: {name: len(s.container(name).records) for name in store.definitions.types})
    print(f"restored: {sum(counts.values())} records; open it with --db '{uri}' (or DESKBASE_DB)")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from deskbase.objects.backup import pack, size_text
    with open_store(args, migrate=False) as store:
        before, after = pack(store, args.days)
    if before is None:
        print(f"packed, keeping {args.days:g} days of revisions")
        return 0
    print(f"packed, keeping {args.days:g} days of revisions: {size_text(before)} before, {size_text(after)} after "
          f"({size_text(before - after)} freed)")
    return 0
