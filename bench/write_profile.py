"""Where a create's time goes: builds N records of a type like `engine.py` (FileStorage,
demo data), then counts the persistent objects, pickled bytes and pickled values (calls of
ZODB's `persistent_id`, once per value) each single create writes (by class) and profiles
single creates and a bulk import with cProfile. With `--rules`, the creates are a
customer's tickets as the API makes them, through the application's rules (access,
workflow, clocks, notifications).

    .venv/bin/python bench/write_profile.py --records 2000
    .venv/bin/python bench/write_profile.py --records 2000 --top 40 --bulk 3000
    .venv/bin/python bench/write_profile.py --records 2000 --rules
    .venv/bin/python bench/write_profile.py --growth 14      # bulk parts of 5,000 as the type grows
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
import time
from collections import Counter
from pathlib import Path

from ZODB.Connection import Connection
from ZODB.serialize import ObjectWriter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import make_row, prepare_targets  # noqa: E402

from deskbase.objects.store import Store  # noqa: E402
from deskbase.rules.application import load_application, open_store  # noqa: E402


def count_writes(create, rows):
    """(objects registered per create, median; {class: (objects, bytes, values) per create})."""
    registered, pickled, sizes, values = [], Counter(), Counter(), Counter()
    register, serialize, persistent_id = Connection._register, ObjectWriter.serialize, ObjectWriter.persistent_id
    pickling = [""]

    def counting_register(connection, obj=None):
        registered[-1] += 1
        return register(connection, obj)

    def counting_serialize(writer, obj):
        pickling[0] = type(obj).__name__
        data = serialize(writer, obj)
        pickled[type(obj).__name__] += 1
        sizes[type(obj).__name__] += len(data)
        return data

    def counting_persistent_id(writer, obj):
        values[pickling[0]] += 1
        return persistent_id(writer, obj)
    Connection._register, ObjectWriter.serialize = counting_register, counting_serialize
    ObjectWriter.persistent_id = counting_persistent_id
    try:
        for row in rows:
            registered.append(0)
            create(row)
    finally:
        Connection._register, ObjectWriter.serialize = register, serialize
        ObjectWriter.persistent_id = persistent_id
    return statistics.median(registered), {name: (pickled[name] / len(rows), sizes[name] / len(rows),
                                                  values[name] / len(rows)) for name in pickled}


def customer_creates(store, login: str = "psvoboda"):
    """A function creating one ticket as `login` through the rules, as the API does."""
    from deskbase.rules.access.identity import identity_of
    from deskbase.rules.access.scopes import fixed_values
    who = identity_of(store, login)
    pinned = fixed_values(who, "create", store.definitions.type("ticket"), store.definitions)
    serial = iter(range(10 ** 9))

    def create(_row=None):
        n = next(serial)
        store.run(lambda s: s.create("ticket", {
            **pinned, "title": f"Printer on floor {n % 9} jams ({n})", "channel": "api",
            "description": "Paper jam in tray 2 since this morning; the display says E-204."}),
            user=login, identity=who)
    return create


def growth(store, type_name, rows_of, parts: int) -> None:
    """Bulk import `parts` parts of 5,000 records, one transaction each, printing for each
    its rate and the objects it wrote by class: what a bulk import costs as the type grows."""
    serialize = ObjectWriter.serialize
    written, sizes = Counter(), Counter()

    def counting_serialize(writer, obj):
        data = serialize(writer, obj)
        written[type(obj).__name__] += 1
        sizes[type(obj).__name__] += len(data)
        return data
    ObjectWriter.serialize = counting_serialize
    try:
        for part in range(parts):
            rows = rows_of(5000)
            written.clear()
            sizes.clear()
            started = time.perf_counter()
            store.bulk_create(type_name, rows, batch=5000, user="bench")
            rate = 5000 / (time.perf_counter() - started)
            print(f"part {part + 1:3d} ({(part + 1) * 5000:,} records): {rate:6,.0f} records/s, "
                  f"{sum(written.values()):,} objects, {sum(sizes.values()) / 1e6:.1f} MB pickled; most: "
                  + ", ".join(f"{name} {count:,}" for name, count in written.most_common(4)), flush=True)
    finally:
        ObjectWriter.serialize = serialize


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
    parser.add_argument("--rules", action="store_true", help="tickets created by a customer through the rules")
    parser.add_argument("--growth", type=int, default=0, metavar="PARTS",
                        help="only import PARTS parts of 5,000 records and count what each writes")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="deskbase-profile-"))
    uri = f"file://{folder}/engine.fs?blobstorage_dir={folder}/blobs"
    store = (open_store if args.rules else Store.open)(uri, load_application(args.definitions))
    try:
        rng = random.Random(42)
        targets = prepare_targets(store, args.definitions)
        typedef = store.definitions.type(args.type)
        if args.growth:
            growth(store, args.type, lambda count: store.read(
                lambda s: [make_row(s, typedef, rng, targets) for _ in range(count)]), args.growth)
            return
        rows = store.read(lambda s: [make_row(s, typedef, rng, targets) for _ in range(2000)])
        store.bulk_create(args.type, (rows[i % len(rows)] for i in range(args.records)), user="bench")
        def create(row):
            store.run(lambda s: s.create(args.type, row), user="bench")
        if args.rules:
            create = customer_creates(store)
        median, by_class = count_writes(create, rows[:50])
        print(f"objects registered per create (median of 50): {median}")
        for name, (objects, size, values) in sorted(by_class.items(), key=lambda item: -item[1][1]):
            print(f"  {name:16s} {objects:6.1f} objects {size:9,.0f} bytes pickled {values:7,.0f} values")
        totals = [sum(figures[i] for figures in by_class.values()) for i in range(3)]
        print(f"  {'in all':16s} {totals[0]:6.1f} objects {totals[1]:9,.0f} bytes pickled {totals[2]:7,.0f} values")
        singles = rows[50:50 + args.singles]
        print(f"\n{len(singles)} single creates:")
        profiled(lambda: [create(row) for row in singles], args.top)
        print(f"\nbulk import of {args.bulk:,} records:")
        profiled(lambda: store.bulk_create(args.type, (rows[i % len(rows)] for i in range(args.bulk)),
                                           user="bench"), args.top)
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
