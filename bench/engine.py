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
from persistent import Persistent
from ZODB.FileStorage import FileStorage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deskbase.objects.fields import RefKind  # noqa: E402
from deskbase.objects.store import Store  # noqa: E402
from deskbase.objects.textsearch import words as fold_words  # noqa: E402
from deskbase.rules.application import load_application, load_application_demo  # noqa: E402

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
        if field.kind.name in ("attachments", "refs") or not field.kind.writable or field.copied_from:
            continue
        if not field.required and field.required_when is None and rng.random() < 0.1:
            continue
        value = value_for(session, typedef, name, field.kind, rng, values, targets)
        if value is not None:
            values[name] = value
    return values


def prepare_targets(store, definitions_folder):
    """Load the demo data for the records the benchmarked type refers to; their ids by type."""
    load_application_demo(store, Path(definitions_folder) / "demo", user="bench")
    return store.read(lambda s: {name: list(s.container(name).records.keys()) for name in store.definitions.types})


def time_creates(store, type_name, rows, defer):
    """(each create's time, creates a second back to back with every record filed in the
    indexes at the end): filed after the commit by the store's indexer, or in the creating
    transaction (`defer=False`)."""
    store.defers_indexing = defer
    engine = []
    began = time.perf_counter()
    for row in rows:
        started = time.perf_counter()
        store.run(lambda s: s.create(type_name, row), user="bench")
        engine.append(time.perf_counter() - started)
    store.indexer.file_now()
    rate = len(rows) / (time.perf_counter() - began)
    store.defers_indexing = True
    return engine, rate


def bench_single_creates(store, type_name, targets, rng, count, folder):
    typedef = store.definitions.type(type_name)
    rows = store.read(lambda s: [make_row(s, typedef, rng, targets) for _ in range(count * 2)])
    at_once, at_once_rate = time_creates(store, type_name, rows[count:], defer=False)
    engine, rate = time_creates(store, type_name, rows[:count], defer=True)
    print(f"single create indexed in its own transaction: median {statistics.median(at_once) * 1000:.2f} ms, "
          f"p95 {percentile(at_once, 0.95) * 1000:.2f} ms, {at_once_rate:,.0f} creates/s")
    print(f"single create filed after its commit: median {statistics.median(engine) * 1000:.2f} ms, "
          f"p95 {percentile(engine, 0.95) * 1000:.2f} ms, {rate:,.0f} creates/s back to back with the filing")
    rows = rows[:count]
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


def _indexed(typedef, kind_name):
    return [(name, field) for name, field in typedef.own_fields.items()
            if field.kind.name == kind_name and typedef.index_for(name)
            and typedef.index_for(name).kind != "keyword"]


def selective_filter(typedef, rng, targets):
    """What a list view asks: one enum in about half its values, one reference equal to a
    record, a second enum in a couple of values (e.g. open statuses, one group, top priorities)."""
    enums, refs = _indexed(typedef, "enum"), _indexed(typedef, "ref")
    (first, first_field), (second, second_field) = rng.sample(enums, 2)
    ref_name, ref_field = rng.choice([r for r in refs if targets.get(r[1].kind.to)])
    return {first: rng.sample(first_field.kind.values, max(1, len(first_field.kind.values) // 2)),
            ref_name: rng.choice(targets[ref_field.kind.to]),
            second: rng.sample(second_field.kind.values, min(2, len(second_field.kind.values)))}


def broad_filter(typedef, rng, targets):
    """A worst case: three enums, each in half of its values (about 1 record in 8 matches)."""
    spec = {}
    for name, field in rng.sample(_indexed(typedef, "enum"), 3):
        spec[name] = rng.sample(field.kind.values, max(1, len(field.kind.values) // 2))
    return spec


def raw_intersection(indexes, typedef, spec):
    """The bare BTrees work of a filter: unions of the sets per value, then intersections."""
    sets = []
    for name, values in spec.items():
        index = indexes.indexes[typedef.index_for(name).name]
        union = IITreeSet()
        for value in values if isinstance(values, list) else [values]:
            union.update(index.ids(typedef.fields[name].kind.key(value)))
        sets.append(union)
    result = sets[0]
    for other in sets[1:]:
        result = intersection(result, other)
    return result


def time_filters(store, type_name, filters, sort):
    """Engine timings (filter, sort, first page of 50, values loaded) and raw timings."""
    typedef = store.definitions.type(type_name)

    def work(session):
        indexes = session.container(type_name).indexes
        for spec in filters:   # a running server's cache is warm: fill it first, time the second pass
            session.query(type_name, spec, sort, limit=50)
        engine, raw, totals = [], [], []
        for spec in filters:
            started = time.perf_counter()
            page = session.query(type_name, spec, sort, limit=50)
            [r.values for r in page.records]
            engine.append(time.perf_counter() - started)
            totals.append(page.total)
            started = time.perf_counter()
            raw_intersection(indexes, typedef, spec)
            raw.append(time.perf_counter() - started)
        return engine, raw, totals
    return store.read(work)


def time_text(store, type_name, texts):
    typedef = store.definitions.type(type_name)

    def work(session):
        text_index = session.container(type_name).indexes.indexes.get("text")
        for query in texts:
            session.query(type_name, {"text": query}, "-id", limit=50)
        engine, raw, totals = [], [], []
        for query in texts:
            started = time.perf_counter()
            page = session.query(type_name, {"text": query}, "-id", limit=50)
            [r.values for r in page.records]
            engine.append(time.perf_counter() - started)
            totals.append(page.total)
            started = time.perf_counter()
            result = None
            for word in fold_words(query):
                hits = text_index.ids(word)
                result = hits if result is None else intersection(result, hits)
            raw.append(time.perf_counter() - started)
        return engine, raw, totals
    return store.read(work) if typedef.text_index else None


def report(title, engine, raw, totals, aim):
    p95_engine, p95_raw = percentile(engine, .95), percentile(raw, .95)
    print(f"{title} (median {statistics.median(totals):,.0f} matches): median {statistics.median(engine) * 1000:.2f} ms,"
          f" p95 {p95_engine * 1000:.2f} ms; bare BTrees median {statistics.median(raw) * 1000:.2f} ms,"
          f" p95 {p95_raw * 1000:.2f} ms -> ratio {p95_raw / p95_engine:.2f} ({aim})")


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
    definitions = load_application(args.definitions)
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

        typedef = definitions.type(args.type)
        sort_field = next((n for n, f in typedef.own_fields.items()
                           if f.kind.name == "datetime" and typedef.index_for(n)), "created_at")
        for shape, make in (("selective", selective_filter), ("broad", broad_filter)):
            filters = [make(typedef, rng, targets) for _ in range(args.queries)]
            report(f"filtered ({shape}, 3 conditions), sorted by -{sort_field}, first page of 50",
                   *time_filters(store, args.type, filters, f"-{sort_field}"), "aim p95 <= 20 ms")
        texts = [" ".join(rng.sample(WORDS, 2)) for _ in range(args.queries)]
        timings = time_text(store, args.type, texts)
        if timings:
            report("full text, 2 words, newest first, first page of 50", *timings, "aim p95 <= 50 ms")
    finally:
        store.close()
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
