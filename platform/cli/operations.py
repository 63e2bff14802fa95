"""`deskbase` commands that keep a deployment running: back up, restore and pack the
embedded database, and serve it to several processes of one machine (ZEO)."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime, timezone

from .opening import open_store, shown_uri


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
    zeo = commands.add_parser("zeo", parents=[common],
                              help="serve the embedded database to several processes of this machine (ZEO); "
                                   "then start each `serve` with the zeo:// URI it prints")
    zeo.add_argument("--listen", default="127.0.0.1:8100", metavar="HOST:PORT",
                     help="where the database server listens (default 127.0.0.1:8100; keep it on loopback or "
                          "a private network: ZEO has no passwords)")
    return {"backup": cmd_backup, "restore": cmd_restore, "pack": cmd_pack, "zeo": cmd_zeo}


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


def cmd_zeo(args: argparse.Namespace) -> int:
    """Run a ZEO server over the embedded FileStorage and its blobs until Ctrl-C."""
    import tempfile

    from ZEO import runzeo

    from deskbase.objects.backup import BackupError, Embedded
    from deskbase.objects.store import default_uri
    uri = args.db or default_uri()
    if not uri.startswith("file://"):
        raise BackupError(f"`deskbase zeo` serves an embedded database (file://…), not `{shown_uri(uri)}`; "
                          "PostgreSQL is shared by its own server")
    paths = Embedded.of(uri)
    host, _, port = args.listen.rpartition(":")
    if not port.isdigit() or not host:
        raise BackupError(f"`{args.listen}` is not HOST:PORT, such as 127.0.0.1:8100")
    paths.data.parent.mkdir(parents=True, exist_ok=True)
    paths.blobs.mkdir(parents=True, exist_ok=True)
    # Its log goes through deskbase's (configured at start): ZEO's own handler writes nowhere.
    config = (f"<zeo>\n  address {host}:{port}\n</zeo>\n<blobstorage>\n  blob-dir {paths.blobs.resolve()}\n"
              f"  <filestorage>\n    path {paths.data.resolve()}\n  </filestorage>\n</blobstorage>\n"
              "<eventlog>\n  level INFO\n  <logfile>\n    path /dev/null\n  </logfile>\n</eventlog>\n")
    with tempfile.NamedTemporaryFile("w", prefix="deskbase-zeo-", suffix=".conf") as file:
        file.write(config)
        file.flush()
        client = f"zeo://{host}:{port}?blob_dir={paths.blobs.resolve()}&shared_blob_dir=1"
        print(f"serving {paths.data.resolve()} on {host}:{port}; start the web processes and the worker with\n"
              f"  --db '{client}'\n(Ctrl-C stops it)", flush=True)
        try:
            runzeo.main(["-C", file.name])
        except KeyboardInterrupt:
            pass
    return 0
