"""Where a create's time goes: builds N records of a type like `engine.py` (FileStorage,
demo data), then counts the persistent objects and pickled bytes each single create writes
(by class) and profiles single creates and a bulk import with cProfile.

    .venv/bin/python bench/write_profile.py --records 2000
    .venv/bin/python bench/write_profile.py --records 2000 --top 40 --bulk 3000
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

from ZODB.Connection import Connection
from ZODB.serialize import ObjectWriter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import make_row, prepare_targets  # noqa: E402

from deskbase.objects.store import Store  # noqa: E402
from deskbase.rules.application import load_application  # noqa: E402


def count_writes(store, type_name, rows):
    """(objects registered per create, median; {class: (objects, bytes) per create})."""
    registered, pickled, sizes = [], Counter(), Counter()
    register, serialize = Connection._register, ObjectWriter.serialize

    def counting_register(connection, obj=None):
        registered[-1] += 1
        return register(connection, obj)

    def counting_serialize(writer, obj):
        data = serialize(writer, obj)
        pickled[type(obj).__name__] += 1
        sizes[type(obj).__name__] += len(data)
        return data
    Connection._register, ObjectWriter.serialize = counting_register, counting_serialize
    try:
        for row in rows:
            registered.append(0)
            store.run(lambda s: s.create(type_name, row), user="bench")
    finally:
        Connection._register, ObjectWriter.serialize = register, serialize
    return statistics.median(registered), {name: (pickled[name] / len(rows), sizes[name] / len(rows))
                                           for name in pickled}


def profiled(work, top):
    profile = cProfile.Profile()
    profile.enable()
    work()
    profile.disable()
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top // 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=2000, help="records built before measuring")
    parser.add_argument("--type", default="ticket")
    parser.add_argument("--definitions", default=str(Path(__file__).resolve().parents[1] / "definitions"))
    parser.add_argument("--singles", type=int, default=150, help="single creates profiled")
    parser.add_argument("--bulk", type=int, default=3000, help="records of the profiled bulk import")
    parser.add_argument("--top", type=int, default=30, help="lines of each profile")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="deskbase-profile-"))
    store = Store.open(f"file://{folder}/engine.fs?blobstorage_dir={folder}/blobs", load_application(args.definitions))
    try:
        rng = random.Random(42)
        targets = prepare_targets(store, args.definitions)
        typedef = store.definitions.type(args.type)
        rows = store.read(lambda s: [make_row(s, typedef, rng, targets) for _ in range(2000)])
        store.bulk_create(args.type, (rows[i % len(rows)] for i in range(args.records)), user="bench")
        median, by_class = count_writes(store, args.type, rows[:50])
        print(f"objects registered per create (median of 50): {median}")
        for name, (objects, size) in sorted(by_class.items(), key=lambda item: -item[1][1]):
            print(f"  {name:16s} {objects:6.1f} objects {size:9,.0f} bytes pickled")
        singles = rows[50:50 + args.singles]
        print(f"\n{len(singles)} single creates:")
        profiled(lambda: [store.run(lambda s: s.create(args.type, row), user="bench") for row in singles], args.top)
        print(f"\nbulk import of {args.bulk:,} records:")
        profiled(lambda: store.bulk_create(args.type, (rows[i % len(rows)] for i in range(args.bulk)),
                                           user="bench"), args.top)
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
