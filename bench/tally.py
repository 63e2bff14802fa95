"""Statistics benchmark: a year of figures (`Session.tally`, the charts of list views) over N
records, each timed against the raw BTrees operation it cannot do without — the union of
the date index's sets over the year — measured in the same run on the same database.

    .venv/bin/python bench/tally.py --records 1000000
    .venv/bin/python bench/tally.py --records 200000 --folder /tmp/stats   # keep it, run again on it

The records are of a small type of their own (a date of report within the last year, a
category of 12, a customer of 50, a status of 5, a duration): a tally reads only the indexes
it names, so the other fields a ticket has would change the time to build, not the time to
count. The aim is a year of statistics at a million records in under a second.
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from BTrees.IIBTree import multiunion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deskbase.objects.definitions import load_definitions  # noqa: E402
from deskbase.objects.store import Store  # noqa: E402

CATEGORIES = [f"c{n:02d}" for n in range(12)]
CUSTOMERS = [f"k{n:02d}" for n in range(50)]
STATUSES = ["open", "waiting", "resolved", "closed", "cancelled"]
DEFINITIONS = f"""
settings: {{timezone: Europe/Paris, languages: [en]}}
roles: {{agent: {{}}}}
types:
  ticket:
    number: "T-{{seq:07d}}"
    fields:
      reported_at: {{kind: datetime}}
      category:    {{kind: enum, values: [{", ".join(CATEGORIES)}]}}
      customer:    {{kind: enum, values: [{", ".join(CUSTOMERS)}]}}
      status:      {{kind: enum, values: [{", ".join(STATUSES)}]}}
      spent:       {{kind: duration}}
    index: [{{range: reported_at}}, category, customer, status, {{range: spent}}]
"""
QUESTIONS = {
    "tickets per month, 12 months": dict(over="reported_at", every="month", periods=12),
    "tickets per month and category": dict(over="reported_at", every="month", periods=12, by="category"),
    "tickets per week, 52 weeks": dict(over="reported_at", every="week", periods=52),
    "hours per month": dict(over="reported_at", every="month", periods=12, measure="sum", of="spent"),
    "hours per customer": dict(by="customer", measure="sum", of="spent"),
    "closed, per month and customer": dict(over="reported_at", every="month", periods=12, by="customer",
                                           filter={"status": "closed"}),
    "average time per category": dict(by="category", measure="average", of="spent"),
}


def build(store: Store, count: int, now: datetime) -> float:
    """Create `count` tickets over the year before `now`; records a second."""
    rng = random.Random(7)

    def rows():
        for _ in range(count):
            yield {"reported_at": now - timedelta(seconds=rng.randint(0, 31_536_000)),   # to the second, as people report
                   "category": rng.choice(CATEGORIES), "customer": rng.choice(CUSTOMERS),
                   "status": rng.choice(STATUSES), "spent": rng.randint(0, 32) * 900}
    started = time.perf_counter()
    last = [started]

    def progress(done: int) -> None:
        if done % 100_000 == 0 or done == count:
            now_ = time.perf_counter()
            print(f"  {done:,} built ({done / (now_ - started):,.0f}/s)", flush=True)
            last[0] = now_
    store.bulk_create("ticket", rows(), batch=5000, progress=progress, notify=False, now=now)
    return count / (time.perf_counter() - started)


def timed(work, repeat: int) -> list[float]:
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        found.append(time.perf_counter() - started)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5, help="times each question is asked (the median is shown)")
    parser.add_argument("--folder", default=None, help="keep the FileStorage here (reused when present)")
    args = parser.parse_args()
    temporary = args.folder is None
    folder = Path(args.folder or tempfile.mkdtemp(prefix="deskbase-bench-statistics-"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app").mkdir(exist_ok=True)
    (folder / "app" / "bench.yaml").write_text(DEFINITIONS)
    definitions = load_definitions(folder / "app")
    now = datetime.now(timezone.utc)
    try:
        with Store.open(f"file://{folder}/Data.fs", definitions) as store:
            have = store.read(lambda s: s.count("ticket"))
            if have < args.records:
                print(f"building {args.records - have:,} tickets…", flush=True)
                rate = build(store, args.records - have, now)
                print(f"built at {rate:,.0f} tickets/s")
            total = store.read(lambda s: s.count("ticket"))
            print(f"\n{total:,} tickets over the last year; each question asked {args.repeat} times, median "
                  f"(first asking, cold caches, in brackets)\n")

            def baseline() -> None:
                def work(session):
                    index = session.container("ticket").indexes.for_field(session.definitions.type("ticket"),
                                                                          "reported_at")
                    low = datetime.combine(date.today().replace(day=1) - timedelta(days=335), datetime.min.time(),
                                           timezone.utc)
                    return len(multiunion(list(index.forward.values(low, None))))
                store.read(work)
            raw = timed(baseline, args.repeat)
            raw_median = statistics.median(raw)
            print(f"{'raw: one union of the date index over the year':48} {raw_median * 1000:8.1f} ms")
            print(f"{'question':48} {'median':>8}  {'first':>8}  {'ratio':>6}")
            worst = 0.0
            for title, spec in QUESTIONS.items():
                spec = dict(spec)
                filter = spec.pop("filter", None)
                found = timed(lambda: store.read(lambda s: s.tally("ticket", filter, **spec)), args.repeat)
                median = statistics.median(found)
                worst = max(worst, median)
                print(f"{title:48} {median * 1000:6.1f} ms  {found[0] * 1000:6.1f} ms  {raw_median / median:6.2f}")
            print(f"\nslowest question: {worst * 1000:.0f} ms at {total:,} tickets "
                  f"(aim: a year of statistics at 1,000,000 in under 1,000 ms)")
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
