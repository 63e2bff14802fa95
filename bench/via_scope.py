"""`read: {via: <ref>}` at scale: the time to list a page of comments (and count them) as
people whose comment scope goes through the tickets they may read, with N tickets and two
comments each in a FileStorage; and the time to read one ticket's comments (what a
ticket's page asks). Each query is a request's own session: the readable tickets are
worked out anew each time, then ANDed into the comment query as a set of ids.

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
from BTrees.IIBTree import IISet  # noqa: E402
from engine import make_row, percentile, prepare_targets  # noqa: E402

from deskbase.objects.filters import IdsAmong  # noqa: E402
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


def kept(scope):
    """The scope with its sets of ids copied out of the transaction that worked them out."""
    if isinstance(scope, IdsAmong):
        return IdsAmong(IISet(scope.ids))
    if isinstance(scope, dict):
        return {key: kept(value) for key, value in scope.items()}
    if isinstance(scope, list):
        return [kept(item) for item in scope]
    return scope


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
            one = comments[len(comments) // 2]["ticket"]

            def of_one(session):
                return session.query("comment", {"ticket": one}, "-id", limit=50).total

            print(f"{'person, comments of':<38} {'tickets read':>12} {'comments':>9} {'p50 ms':>8} {'p95 ms':>8} "
                  f"{'raw p50':>8} {'ratio':>6}")
            for role, login in PEOPLE.items():
                who = identity_of(store, login)
                readable = store.read(lambda s: s.count("ticket"), identity=who)
                scope = kept(store.read(lambda s: session_scope(s, s.definitions.type("comment")), identity=who))
                for shown, work, given in (("every comment", page, None), ("one ticket's", of_one, {"ticket": one})):
                    def raw(session, scope=scope, given=given):   # the scope's ticket ids already worked out
                        spec = given if scope is True else {"all": [scope, given]} if given else scope
                        return session.query("comment", spec, "-id", limit=50).total
                    engine = timed(store, work, who, args.requests)
                    baseline = timed(store, raw, None, args.requests)
                    total = store.read(work, identity=who)
                    ratio = statistics.median(baseline) / statistics.median(engine)
                    print(f"{role + ' ' + login + ', ' + shown:<38} {readable:>12,} {total:>9,} "
                          f"{statistics.median(engine) * 1000:>8.2f} {percentile(engine, 0.95) * 1000:>8.2f} "
                          f"{statistics.median(baseline) * 1000:>8.2f} {ratio:>6.2f}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
