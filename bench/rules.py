"""Rules benchmark: what access scopes, workflows, timers and notifications add to the write path.
Creates a record and fires a transition on it as a person, with the rules installed,
against the same create and state change done through the bare write path (a store
without rules, as the system), both on FileStorages in the same run.

    .venv/bin/python bench/rules.py --records 2000 --repeat 300
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
from engine import make_row, prepare_targets  # noqa: E402

from deskbase.objects.store import Store  # noqa: E402
from deskbase.rules.access.identity import create_account, identity_of  # noqa: E402
from deskbase.rules.application import load_application, open_store  # noqa: E402
from deskbase.rules.process.workflows import fire  # noqa: E402
from deskbase.views.editing import kept_by_rules  # noqa: E402


def timed(work, repeat):
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _without(row: dict, kept: set[str]) -> dict:
    # Opened through the API: an incident then need not say whom it affects (`required_when`).
    # An incident: no approval waits before it is taken.
    return {**{n: v for n, v in row.items() if n not in kept}, "status": "awaiting_pickup", "channel": "api",
            "kind": "incident"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=2000, help="tickets present before timing")
    parser.add_argument("--repeat", type=int, default=300, help="create + transition pairs to time")
    parser.add_argument("--definitions", default=str(Path(__file__).resolve().parents[1] / "definitions"))
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="deskbase-bench-rules-"))
    definitions = load_application(args.definitions)
    rng = random.Random(7)
    try:
        bare = Store.open(f"file://{folder}/bare.fs", definitions)
        ruled = open_store(f"file://{folder}/rules.fs", definitions)
        rows = {}
        # what the engine keeps (state, deadlines, approval state, copies): nobody types them
        ticket = definitions.type("ticket")
        kept = set(kept_by_rules(definitions, ticket))
        # links to other tickets: a technician may link only tickets they may read
        kept |= {n for n, f in ticket.fields.items() if getattr(f.kind, "to", None) == "ticket"}
        # people: the rules accept only accounts of this database, which the generated logins are not
        kept |= {n for n, f in ticket.fields.items() if f.kind.name in ("user", "users")}
        for name, store in (("bare", bare), ("rules", ruled)):
            targets = prepare_targets(store, args.definitions)
            typedef = store.definitions.type("ticket")
            rows[name] = store.read(lambda s: [_without(make_row(s, typedef, rng, targets), kept)
                                               for _ in range(args.records + args.repeat)])
            store.bulk_create("ticket", rows[name][:args.records], batch=2000)
        create_account(ruled, "bench_tech", name="Bench", password="a long bench password", roles=["technician"],
                       email="bench@example.test")
        person = identity_of(ruled, "bench_tech")
        bare_rows, ruled_rows = iter(rows["bare"][args.records:]), iter(rows["rules"][args.records:])

        def bare_pair():
            def work(session):
                record = session.create("ticket", next(bare_rows))
                session.update(record, {"status": "in_progress", "assignee": "bench_tech"})
            bare.run(work)

        def ruled_pair():
            def work(session):
                record = session.create("ticket", next(ruled_rows))
                fire(session, record, "take", {"time_spent": "15m"})
            ruled.run(work, identity=person)

        bare_time = timed(bare_pair, args.repeat)
        rules_time = timed(ruled_pair, args.repeat)
        queued = ruled.read(lambda s: len(s.connection.root()["deskbase.outbox"].messages))
        print(f"create + transition, median over {args.repeat}: with access, workflow, timers and notifications "
              f"{rules_time * 1000:.2f} ms; bare write path {bare_time * 1000:.2f} ms -> ratio {bare_time / rules_time:.2f} "
              f"({queued} notifications queued)")
        bare.close()
        ruled.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
