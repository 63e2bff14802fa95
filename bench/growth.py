"""Database growth: how many bytes `Data.fs` grows by per 10,000 changes of tickets (a title
edited, through the write path: the record, its history, its indexes), and what a pack
gives back. The raw baseline, measured in the same run, is a bare FileStorage where each
change rewrites one persistent mapping holding the same values: what storing the record
alone costs. The ratio is baseline ÷ engine.

    .venv/bin/python bench/growth.py --changes 10000
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import transaction  # noqa: E402
import ZODB  # noqa: E402
from BTrees.IOBTree import IOBTree  # noqa: E402
from persistent.mapping import PersistentMapping  # noqa: E402
from ZODB.FileStorage import FileStorage  # noqa: E402

from deskbase.objects.backup import database_size, pack, size_text  # noqa: E402
from deskbase.rules.application import load_application, load_application_demo, open_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=10_000)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    folder = Path(tempfile.mkdtemp(prefix="deskbase-growth-"))
    try:
        uri = f"file://{folder}/db/Data.fs?blobstorage_dir={folder}/db/blobs"
        with open_store(uri, load_application(root / "definitions")) as store:
            load_application_demo(store, root / "definitions" / "demo")
            numbers = store.read(lambda s: [r.number for r in s.query("ticket", {}, "id", limit=None).records])
            samples = store.read(lambda s: [dict(s.find(n).values) for n in numbers])
            before = database_size(uri)
            started = time.perf_counter()
            for change in range(args.changes):
                number = numbers[change % len(numbers)]
                store.run(lambda s, n=number, c=change: s.update(n, {"title": f"Printer jam, report {c}"}),
                          user="bench", notify=False)
            seconds = time.perf_counter() - started
            grown = database_size(uri) - before
            packed_before, packed_after = pack(store, 0)

        raw_db = ZODB.DB(FileStorage(str(folder / "raw.fs")))
        connection = raw_db.open()
        connection.root()["records"] = records = IOBTree()
        for index, values in enumerate(samples):
            records[index] = PersistentMapping({key: value for key, value in values.items()
                                                if isinstance(value, (str, int, float, type(None)))})
        transaction.commit()
        raw_before = (folder / "raw.fs").stat().st_size
        for change in range(args.changes):
            records[change % len(samples)]["title"] = f"Printer jam, report {change}"
            transaction.commit()
        raw_grown = (folder / "raw.fs").stat().st_size - raw_before
        connection.close()
        raw_db.close()

        per = 10_000 / args.changes
        print(f"{args.changes:,} ticket edits in {seconds:.0f} s over {len(numbers)} tickets")
        print(f"engine: Data.fs grew {size_text(grown * per)} per 10,000 changes "
              f"({grown / args.changes:,.0f} bytes each)")
        print(f"raw:    {size_text(raw_grown * per)} per 10,000 changes ({raw_grown / args.changes:,.0f} bytes each)")
        print(f"ratio (raw / engine): {raw_grown / grown:.2f}")
        print(f"pack (days 0): {size_text(packed_before)} before, {size_text(packed_after)} after")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
