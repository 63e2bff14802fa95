"""`read: {via: <ref>}` at scale: the time to list a page of comments (and count them) as
people whose comment scope goes through the tickets they may read, with N tickets and two
comments each in a FileStorage. Each query is a request's own session: the readable
tickets are worked out anew each time, then ANDed into the comment query as ids.

The raw baseline, measured in the same run, is the same page and count read by the
engine without a person: the comment query with those ticket ids already known (what the
index query costs before any access rule). The ratio is baseline ÷ engine: 1.0 would be
an access rule that costs nothing.

    .venv/bin/python bench/via_scope.py --records 20000 --requests 100
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import make_row, percentile, prepare_targets  # noqa: E402

from deskbase.rules.access.identity import identity_of  # noqa: E402
from deskbase.rules.access.scopes import session_scope  # noqa: E402
from deskbase.rules.application import load_application, open_store  # noqa: E402

PEOPLE = {"technician": "sbernard", "dispatcher": "jroux", "supervisor": "cmartin"}


def timed(store, work, identity, requests: int) -> list[float]:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        store.read(work, identity=identity)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="tickets in the database (two comments each)")
    parser.add_argument("--requests", type=int, default=100, help="queries timed per person")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    folder = Path(tempfile.mkdtemp(prefix="deskbase-via-"))
    rng = random.Random(7)
    try:
        uri = f"file://{folder}/Data.fs?blobstorage_dir={folder}/blobs"
        with open_store(uri, load_application(root / "definitions")) as store:
            targets = prepare_targets(store, root / "definitions")
            ticket = store.definitions.type("ticket")
            started = time.perf_counter()
            for done in range(0, args.records, 5000):
                size = min(5000, args.records - done)
                rows = store.read(lambda s: [make_row(s, ticket, rng, targets) for _ in range(size)])
                store.bulk_create("ticket", rows, batch=5000, notify=False)
            ids = store.read(lambda s: list(s.container("ticket").records.keys()))
            comments = [{"ticket": rng.choice(ids), "body": f"Checked the printer, step {n}.",
                         "visibility": rng.choice(["internal", "public"]), "author": "cmartin"}
                        for n in range(2 * args.records)]
            store.bulk_create("comment", comments, batch=5000, notify=False)
            print(f"built {args.records:,} tickets and {len(comments):,} comments in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)

            def page(session):
                return session.query("comment", {}, "-id", limit=50).total

            print(f"{'person':<22} {'tickets read':>12} {'comments':>9} {'p50 ms':>8} {'p95 ms':>8} "
                  f"{'raw p50':>8} {'ratio':>6}")
            for role, login in PEOPLE.items():
                who = identity_of(store, login)
                readable = store.read(lambda s: s.count("ticket"), identity=who)
                scope = store.read(lambda s: session_scope(s, s.definitions.type("comment")), identity=who)

                def raw(session, scope=scope):   # the scope with its ticket ids already worked out
                    spec = None if scope is True else scope
                    return session.query("comment", spec, "-id", limit=50).total
                engine = timed(store, page, who, args.requests)
                baseline = timed(store, raw, None, args.requests)
                total = store.read(page, identity=who)
                ratio = statistics.median(baseline) / statistics.median(engine)
                print(f"{role + ' ' + login:<22} {readable:>12,} {total:>9,} "
                      f"{statistics.median(engine) * 1000:>8.1f} {percentile(engine, 0.95) * 1000:>8.1f} "
                      f"{statistics.median(baseline) * 1000:>8.1f} {ratio:>6.2f}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
