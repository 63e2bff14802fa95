"""Engine benchmark: the write path, bulk import, an indexed filtered+sorted page and a
full-text query over N records of one type, each printed as a ratio to a raw ZODB/BTrees
baseline measured in the same run, plus absolute medians and p95s.

    .venv/bin/python bench/engine.py --records 100000          # default type: ticket
    .venv/bin/python bench/engine.py --records 1000000 --queries 300

Record values are generated from the type's definition (every field by its kind), so
the benchmark follows the definitions instead of hard-coding them.
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import transaction
import ZODB
from BTrees.IIBTree import IITreeSet, intersection
from BTrees.IOBTree import IOBTree
from BTrees.OOBTree import OOBTree
from persistent import Persistent
from ZODB.FileStorage import FileStorage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deskbase.objects.definitions import load_definitions  # noqa: E402
from deskbase.objects.demo import load_demo  # noqa: E402
from deskbase.objects.fields import RefKind  # noqa: E402
from deskbase.objects.store import Store  # noqa: E402

WORDS = ("imprimante tiskárna écran réseau servidor impressora računalo poslužitelj mot de passe "
         "heslo senha lozinka vpn messagerie pošta correio e-mail bloqué nefunguje não funciona ne radi "
         "lent pomalý lento sporo licence licence licença licenca sauvegarde záloha cópia sigurnosna "
         "scanner skener digitalizador poste stanice estação radna stanica wifi wlan sans fil bezdrát "
         "erreur chyba erro greška mise à jour aktualizace atualização nadogradnja accès přístup acesso pristup").split()
USERS = [f"operator{i}" for i in range(40)]


class Raw(Persistent):
    def __init__(self, values):
        self.values = values


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def words(rng, low, high):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def value_for(session, typedef, name, kind, rng, values, targets):
    """A plausible random value for one field, chosen by its kind."""
    kind_name = kind.name
    if kind_name == "string":
        if getattr(kind, "pattern", None):   # formats such as e-mail addresses: left empty
            return None
        return words(rng, 2, 6)[: getattr(kind, "max_length", 255)]
    if kind_name == "text":
        return words(rng, 10, 40)
    if kind_name == "enum":
        return rng.choice(kind.values)
    if kind_name == "user":
        return rng.choice(USERS)
    if kind_name == "datetime":
        return datetime.now(timezone.utc) - timedelta(minutes=rng.randint(0, 525_600))
    if kind_name == "date":
        return (datetime.now(timezone.utc) - timedelta(days=rng.randint(0, 365))).date()
    if kind_name == "duration":
        return rng.randint(0, 40) * 900
    if kind_name in ("integer",):
        return rng.randint(getattr(kind, "minimum", None) or 0, min(getattr(kind, "maximum", None) or 1000, 1000))
    if kind_name in ("decimal", "money"):
        return Decimal(rng.randint(0, 100_000)) / 100
    if kind_name == "boolean":
        return rng.random() < 0.5
    if kind_name == "tags":
        return tuple(rng.sample(WORDS, 2))
    if isinstance(kind, RefKind) and kind_name == "ref":
        choices = targets.get(kind.to)
        if not choices:
            return None
        if kind.where:
            key = (name, repr(sorted((k, v) for k, v in values.items() if isinstance(v, (int, str)))))
            if key not in targets:
                page = session.query(kind.to, kind.where, limit=None, context=session.context(values), record_type=typedef.name)
                targets[key] = [r.id for r in page.records]
            choices = targets[key]
        return rng.choice(choices) if choices else None
    return None


def make_row(session, typedef, rng, targets):
    values = {}
    for name, field in typedef.own_fields.items():
        if field.kind.name in ("attachments", "computed", "refs"):
            continue
        if not field.required and rng.random() < 0.1:
            continue
        value = value_for(session, typedef, name, field.kind, rng, values, targets)
        if value is not None:
            values[name] = value
    return values


def prepare_targets(store, definitions_folder):
    """Load the demo data for the records the benchmarked type refers to; their ids by type."""
    load_demo(store, Path(definitions_folder) / "demo", user="bench")
    return store.read(lambda s: {name: list(s.container(name).records.keys()) for name in store.definitions.types})


def bench_single_creates(store, type_name, targets, rng, count, folder):
    typedef = store.definitions.type(type_name)
    rows = store.read(lambda s: [make_row(s, typedef, rng, targets) for _ in range(count)])
    engine = []
    for row in rows:
        started = time.perf_counter()
        store.run(lambda s: s.create(type_name, row), user="bench")
        engine.append(time.perf_counter() - started)
    db = ZODB.DB(FileStorage(str(folder / "raw-single.fs")))
    connection = db.open()
    connection.root()["raw"] = IOBTree()
    transaction.commit()
    raw = []
    for i, row in enumerate(rows):
        started = time.perf_counter()
        connection.root()["raw"][i] = Raw(dict(row))
        transaction.commit()
        raw.append(time.perf_counter() - started)
    connection.close()
    db.close()
    return statistics.median(engine), statistics.median(raw)


def bench_bulk(store, type_name, targets, rng, count, folder, batch=5000):
    typedef = store.definitions.type(type_name)
    generated = store.read(lambda s: [make_row(s, typedef, rng, targets) for _ in range(min(count, 20_000))])
    rows = (generated[i % len(generated)] for i in range(count))
    started = time.perf_counter()
    last = [started]

    def progress(done):
        now = time.perf_counter()
        if now - last[0] > 10:
            print(f"    {done:,} records, {done / (now - started):,.0f}/s", flush=True)
            last[0] = now
    store.bulk_create(type_name, rows, user="bench", batch=batch, progress=progress)
    engine_rate = count / (time.perf_counter() - started)

    raw_count = min(count, 200_000)
    db = ZODB.DB(FileStorage(str(folder / "raw-bulk.fs")))
    connection = db.open()
    tree = connection.root()["raw"] = IOBTree()
    transaction.commit()
    started = time.perf_counter()
    for i in range(raw_count):
        tree[i] = Raw(dict(generated[i % len(generated)]))
        if i % batch == batch - 1:
            transaction.commit()
    transaction.commit()
    raw_rate = raw_count / (time.perf_counter() - started)
    connection.close()
    db.close()
    return engine_rate, raw_rate


def pick_filter(typedef, rng, indexes):
    """Three equality/in conditions over indexed enum, user and ref fields."""
    candidates = []
    for name, field in typedef.own_fields.items():
        index = typedef.index_for(name)
        if index is None or index.kind == "keyword":
            continue
        if field.kind.name == "enum":
            candidates.append((name, list(field.kind.values)))
    filter_spec = {}
    for name, values in rng.sample(candidates, min(3, len(candidates))):
        filter_spec[name] = rng.sample(values, max(1, len(values) // 2))
    return filter_spec


def bench_queries(store, type_name, rng, queries):
    typedef = store.definitions.type(type_name)
    sort_field = next((n for n, f in typedef.own_fields.items()
                       if f.kind.name == "datetime" and typedef.index_for(n)), "created_at")
    filters = [pick_filter(typedef, rng, None) for _ in range(queries)]
    texts = [" ".join(rng.sample(WORDS, 2)) for _ in range(queries)]

    def work(session):
        container = session.container(type_name)
        indexes = container.indexes
        engine, raw, totals = [], [], []
        for spec in filters:
            started = time.perf_counter()
            page = session.query(type_name, spec, f"-{sort_field}", limit=50)
            [r.values for r in page.records]
            engine.append(time.perf_counter() - started)
            totals.append(page.total)
            started = time.perf_counter()
            sets = []
            for name, values in spec.items():
                index = indexes.indexes[typedef.index_for(name).name]
                union = IITreeSet()
                for value in values:
                    union.update(index.ids(typedef.fields[name].kind.key(value)))
                sets.append(union)
            result = sets[0]
            for other in sets[1:]:
                result = intersection(result, other)
            raw.append(time.perf_counter() - started)
        text_engine, text_raw, text_totals = [], [], []
        text_index = indexes.indexes.get("text")
        for query in texts:
            started = time.perf_counter()
            page = session.query(type_name, {"text": query}, "-id", limit=50)
            [r.values for r in page.records]
            text_engine.append(time.perf_counter() - started)
            text_totals.append(page.total)
            if text_index is not None:
                started = time.perf_counter()
                from deskbase.objects.textsearch import words as fold_words
                result = None
                for word in fold_words(query):
                    hits = text_index.ids(word)
                    result = hits if result is None else intersection(result, hits)
                text_raw.append(time.perf_counter() - started)
        return engine, raw, totals, text_engine, text_raw, text_totals
    return store.read(work)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000, help="how many records to build (10k to 1M)")
    parser.add_argument("--type", default="ticket", help="the type to benchmark")
    parser.add_argument("--definitions", default=str(Path(__file__).resolve().parents[1] / "definitions"))
    parser.add_argument("--singles", type=int, default=300, help="single-record creates to time")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind to time")
    parser.add_argument("--folder", default=None, help="where the FileStorages go (default: a temporary folder)")
    args = parser.parse_args()

    folder = Path(args.folder or tempfile.mkdtemp(prefix="deskbase-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    definitions = load_definitions(args.definitions)
    uri = f"file://{folder}/engine.fs?blobstorage_dir={folder}/blobs"
    store = Store.open(uri, definitions)
    try:
        print(f"Deskbase engine benchmark: {args.records:,} `{args.type}` records, FileStorage in {folder}")
        targets = prepare_targets(store, args.definitions)

        engine, raw = bench_single_creates(store, args.type, targets, rng, args.singles, folder)
        print(f"single create, median: write path {engine * 1000:.2f} ms, bare ZODB commit {raw * 1000:.2f} ms"
              f" -> ratio {raw / engine:.2f} (aim >= 0.3)")

        print(f"bulk import of {args.records:,} records…", flush=True)
        engine_rate, raw_rate = bench_bulk(store, args.type, targets, rng, args.records, folder)
        print(f"bulk import: write path {engine_rate:,.0f} records/s, bare ZODB {raw_rate:,.0f} objects/s"
              f" -> ratio {engine_rate / raw_rate:.2f} (aim >= 10,000 records/s)")

        engine, raw, totals, text_engine, text_raw, text_totals = bench_queries(store, args.type, rng, args.queries)
        print(f"filtered (3 conditions) + sorted, first page of 50 (median {statistics.median(totals):,.0f} matches): "
              f"median {statistics.median(engine) * 1000:.2f} ms, p95 {percentile(engine, .95) * 1000:.2f} ms; "
              f"bare BTrees intersection median {statistics.median(raw) * 1000:.2f} ms, p95 {percentile(raw, .95) * 1000:.2f} ms"
              f" -> ratio {percentile(raw, .95) / percentile(engine, .95):.2f} (aim p95 <= 20 ms)")
        if text_raw:
            print(f"full text, 2 words, first page of 50 (median {statistics.median(text_totals):,.0f} matches): "
                  f"median {statistics.median(text_engine) * 1000:.2f} ms, p95 {percentile(text_engine, .95) * 1000:.2f} ms; "
                  f"bare BTrees intersection p95 {percentile(text_raw, .95) * 1000:.2f} ms"
                  f" -> ratio {percentile(text_raw, .95) / percentile(text_engine, .95):.2f} (aim p95 <= 50 ms)")
    finally:
        store.close()
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
