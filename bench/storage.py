"""Storage benchmark: the same writes and queries on an embedded FileStorage and on RelStorage
over PostgreSQL, each figure printed beside a raw baseline measured in the same run on the
same storage (a bare ZODB commit of one object, a bare transaction, the bare BTrees work of
a filter), plus absolute medians, and RelStorage's medians against FileStorage's.

    .venv/bin/python bench/storage.py                       # starts a PostgreSQL of its own
    .venv/bin/python bench/storage.py --records 20000 --repeat 300
    .venv/bin/python bench/storage.py --postgres postgres://deskbase@db.example/bench   # an empty database

Without `--postgres`, a PostgreSQL cluster is made and started as the tests do
(tests/servers/postgres.py: PostgreSQL 15 from Debian, port 55432 or a free one), then stopped.
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import transaction
from BTrees.IOBTree import IOBTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
from engine import Raw, make_row, prepare_targets, raw_intersection, selective_filter  # noqa: E402

from deskbase.objects.store import Store  # noqa: E402
from deskbase.rules.application import load_application  # noqa: E402

RAW_KEY = "bench.raw"


class EveryField(random.Random):
    """Rows with every field filled (`make_row` leaves a tenth of optional fields empty, which
    a field required only in some states may refuse)."""

    def random(self) -> float:
        return max(super().random(), 0.1)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bare_commits(store: Store, rows: list[dict]) -> list[float]:
    """A bare ZODB commit of one small object per row into a BTree, on the store's own database."""
    manager = transaction.TransactionManager(explicit=True)
    connection = store.db.open(transaction_manager=manager)
    try:
        manager.begin()
        tree = connection.root()[RAW_KEY] = IOBTree()
        manager.commit()
        samples = []
        for i, row in enumerate(rows):
            started = time.perf_counter()
            manager.begin()
            tree[i] = Raw(dict(row))
            manager.commit()
            samples.append(time.perf_counter() - started)
        return samples
    finally:
        connection.close()


def bare_transactions(store: Store, repeat: int) -> list[float]:
    """Open a connection, begin (RelStorage polls the database for changes here), read the root, abort."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        manager = transaction.TransactionManager(explicit=True)
        connection = store.db.open(transaction_manager=manager)
        manager.begin()
        connection.root()[RAW_KEY]
        manager.abort()
        connection.close()
        samples.append(time.perf_counter() - started)
    return samples


def timed(work, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return samples


def pages(store: Store, type_name: str, filters: list, sort: str) -> tuple[list[float], list[float]]:
    """A filtered, sorted first page of 50 with its values read, and the bare BTrees intersection."""
    typedef = store.definitions.type(type_name)

    def work(session):
        indexes = session.container(type_name).indexes
        for spec in filters:                      # a running server's cache is warm: fill it first
            session.query(type_name, spec, sort, limit=50)
        engine, raw = [], []
        for spec in filters:
            started = time.perf_counter()
            [record.values for record in session.query(type_name, spec, sort, limit=50).records]
            engine.append(time.perf_counter() - started)
            started = time.perf_counter()
            raw_intersection(indexes, typedef, spec)
            raw.append(time.perf_counter() - started)
        return engine, raw
    return store.read(work)


def cold_pages(uri: str, definitions, type_name: str, filters: list, sort: str, opens: int) -> tuple[list[float], list[float]]:
    """The first page served by a freshly opened database (empty caches), against the bare
    intersection served first by another freshly opened one."""
    typedef = definitions.type(type_name)
    engine, raw = [], []
    for spec in filters[:opens]:
        with Store.open(uri, definitions, migrate=False) as store:
            started = time.perf_counter()
            store.read(lambda s: [r.values for r in s.query(type_name, spec, sort, limit=50).records])
            engine.append(time.perf_counter() - started)
        with Store.open(uri, definitions, migrate=False) as store:
            started = time.perf_counter()
            store.read(lambda s: raw_intersection(s.container(type_name).indexes, typedef, spec))
            raw.append(time.perf_counter() - started)
    return engine, raw


def measure(name: str, uri: str, definitions, args, definitions_folder: str) -> dict[str, tuple[float, float]]:
    """Every figure of one storage: {figure: (engine median ms, raw median ms)}."""
    rng = EveryField(42)
    typedef = definitions.type(args.type)
    sort_field = next((n for n, f in typedef.own_fields.items()
                       if f.kind.name == "datetime" and typedef.index_for(n)), "created_at")
    figures: dict[str, tuple[float, float]] = {}
    with Store.open(uri, definitions) as store:
        print(f"{name}: loading the demo data and {args.records:,} `{args.type}` records…", flush=True)
        targets = prepare_targets(store, definitions_folder)
        rows = store.read(lambda s: [make_row(s, typedef, rng, targets) for _ in range(max(args.repeat, 200))])
        started = time.perf_counter()
        store.bulk_create(args.type, (rows[i % len(rows)] for i in range(args.records)), user="bench", batch=1000)
        bulk = args.records / (time.perf_counter() - started)

        raw = bare_commits(store, rows[:args.repeat])
        engine = []
        for row in rows[:args.repeat]:
            started = time.perf_counter()
            store.run(lambda s: s.create(args.type, row), user="bench")
            engine.append(time.perf_counter() - started)
        figures["single create (write path) vs bare commit of one object"] = (median_ms(engine), median_ms(raw))

        raw = bare_transactions(store, args.repeat)
        engine = timed(lambda: store.read(lambda s: s.count(args.type)), args.repeat)
        figures["read transaction (count) vs bare transaction"] = (median_ms(engine), median_ms(raw))

        filters = [selective_filter(typedef, rng, targets) for _ in range(args.repeat)]
        engine, raw = pages(store, args.type, filters, f"-{sort_field}")
        figures["filtered first page of 50, warm vs bare intersection"] = (median_ms(engine), median_ms(raw))
        figures["bulk import, records/s (batches of 1000)"] = (bulk, float("nan"))
    engine, raw = cold_pages(uri, definitions, args.type, filters, f"-{sort_field}", args.cold)
    figures["filtered first page, cold (database just opened) vs bare intersection, cold"] = \
        (median_ms(engine), median_ms(raw))
    return figures


def report(results: dict[str, dict[str, tuple[float, float]]]) -> None:
    names = list(results)
    first = results[names[0]]
    for figure in first:
        print(f"\n{figure}")
        for name in names:
            engine, raw = results[name][figure]
            if figure.startswith("bulk"):
                print(f"  {name:<11} {engine:,.0f} records/s")
                continue
            print(f"  {name:<11} median {engine:8.2f} ms; raw {raw:8.2f} ms -> ratio raw/engine {raw / engine:.2f}")
        if len(names) == 2:
            base, other = first[figure][0], results[names[1]][figure][0]
            ratio = other / base if not figure.startswith("bulk") else base / other
            print(f"  {names[1]} against {names[0]}: x{ratio:.2f} {'slower' if ratio >= 1 else 'faster'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5000, help="records of the type before timing")
    parser.add_argument("--repeat", type=int, default=200, help="creates, transactions and queries to time")
    parser.add_argument("--cold", type=int, default=5, help="databases opened to time a cold first page")
    parser.add_argument("--type", default="ticket", help="the type to benchmark")
    parser.add_argument("--definitions", default=str(ROOT / "definitions"))
    parser.add_argument("--postgres", default=None, metavar="URI",
                        help="an empty PostgreSQL database (postgres://user@host:port/name); default: start one")
    args = parser.parse_args()

    definitions = load_application(args.definitions)
    folder = Path(tempfile.mkdtemp(prefix="deskbase-bench-storage-"))
    server = None
    try:
        if args.postgres:
            base = args.postgres.split("?", 1)[0]
        else:
            from servers.postgres import PostgresServer, missing
            reason = missing()
            if reason:
                raise SystemExit(f"cannot start PostgreSQL: {reason}; or give --postgres URI")
            server = PostgresServer().start()
            base = server.create_database("bench")
            print(f"PostgreSQL {server.bin.parent.name} started on 127.0.0.1:{server.port} in {server.folder}")
        uris = {
            "FileStorage": f"file://{folder}/Data.fs?blobstorage_dir={folder}/blobs",
            "RelStorage": f"{base}?blob_dir={folder}/blob-cache&shared_blob_dir=false&keep_history=false",
        }
        results = {name: measure(name, uri, definitions, args, args.definitions) for name, uri in uris.items()}
        print(f"\nDeskbase storage benchmark: {args.records:,} `{args.type}` records, medians of {args.repeat} "
              f"(cold: {args.cold} opens); ratio = raw ÷ engine on the same storage")
        report(results)
    finally:
        if server is not None:
            server.stop()
            server.remove()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
