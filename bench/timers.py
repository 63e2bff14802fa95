"""Timer job benchmark: one run of the timer job over a store of N records with running
clocks, of which `--due` have passed a threshold. Records are created through the write
path (their clocks with them), on a FileStorage; then, in the same run:

- engine, finding: reading what is due from the index of due moments (`TimerBook.due_ids`);
- engine, run: `check_due` for those records — settling their clocks, passing thresholds,
  writing each record's state field and history through the write path, queuing nothing
  (the bench app has no notification rules) — committed;
- engine, idle run: `check_due` again when nothing is due;
- raw baseline: what a job without that index must do to find the same records, a walk
  over every record's clock state comparing its next checkpoint with now.

Ratios are baseline ÷ engine (above 1: the engine is faster).

    .venv/bin/python bench/timers.py --records 1000000 --due 1000
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deskbase.rules.application import load_application, open_store  # noqa: E402
from deskbase.rules.process.calendars import calendars_of  # noqa: E402
from deskbase.rules.process.timers import _book, _next_checkpoint, check_due, timers  # noqa: E402

START = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)     # a Monday
APP = """
settings: {timezone: Europe/Paris, languages: [en]}
roles: {agent: {label: Agent}}
calendars:
  office:
    timezone: Europe/Paris
    hours: {mon: 08:00-18:00, tue: 08:00-18:00, wed: 08:00-18:00, thu: 08:00-18:00, fri: 08:00-18:00}
types:
  job:
    number: "J-{seq:07d}"
    title: title
    fields:
      title:    {kind: string, required: true}
      urgency:  {kind: enum, values: [high, low], default: low}
      status:   {kind: enum, values: [open, done], default: open}
      due:      {kind: datetime}
      progress: {kind: enum, values: [waiting, running, paused, met, breached]}
    index: [urgency, status, {range: due}, progress]
    timers:
      calendar: office
      clocks:
        resolution: {stop: {status: done}, deadline: due, state: progress}
      policies:
        - {name: fast, when: {urgency: high}, targets: {resolution: 1h}}
        - {name: slow, targets: {resolution: 400h}}
      thresholds: [{at: 80, event: warning}, {at: 100, event: breach}]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="records with running clocks")
    parser.add_argument("--due", type=int, default=1000, help="how many of them have passed a threshold")
    parser.add_argument("--repeat", type=int, default=5, help="timings of the finding step and the baseline")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="deskbase-bench-timers-"))
    try:
        (folder / "app").mkdir()
        (folder / "app" / "app.yaml").write_text(textwrap.dedent(APP))
        store = open_store(f"file://{folder}/Data.fs", load_application(folder / "app"))
        store.db.setCacheSize(500_000)
        every = max(1, args.records // args.due)
        rows = ({"title": f"job {n}", "urgency": "high" if n % every == 0 and n // every < args.due else "low"}
                for n in range(args.records))
        started = time.perf_counter()
        created = _populate(store, rows, args.records)
        print(f"populated {created:,} records in {time.perf_counter() - started:.0f} s")
        now = START + timedelta(hours=2)

        def find(session):
            return _book(session, "job").due_ids(now, args.due * 2)

        def scan(session):
            # Without the index: every record's clocks, their next checkpoint against now.
            calendars = calendars_of(session.definitions)
            clock = timers(session.definitions).by_type["job"].clocks["resolution"]
            book, found = _book(session, "job"), []
            for record_id in book.clocks.keys():
                states = book.load(record_id)
                moment = _next_checkpoint(clock, states["resolution"], calendars)
                if moment is not None and moment <= now:
                    found.append(record_id)
            return found

        finding, baseline = [], []
        for _ in range(args.repeat):
            for samples, work in ((finding, find), (baseline, scan)):
                began = time.perf_counter()
                ids = store.read(work)
                samples.append(time.perf_counter() - began)
                assert len(ids) == args.due, (len(ids), args.due)
        began = time.perf_counter()
        report = check_due(store, now, batch=args.due)
        run = time.perf_counter() - began
        assert report.checked == args.due and len(report.passed) == 2 * args.due, report
        began = time.perf_counter()
        idle = check_due(store, now)
        idle_run = time.perf_counter() - began
        assert idle.checked == 0

        find_ms, scan_ms = min(finding) * 1000, min(baseline) * 1000
        print(f"records {args.records:,}, due {args.due:,}")
        print(f"engine, finding what is due:   {find_ms:9.2f} ms")
        print(f"raw baseline, walking clocks:  {scan_ms:9.2f} ms   ratio {scan_ms / find_ms:,.0f}")
        print(f"engine, whole run ({args.due} records, {len(report.passed)} thresholds, written): {run * 1000:9.1f} ms"
              f"   ratio {scan_ms / (run * 1000):.2f}; {run * 1000 / args.due:.2f} ms a record")
        print(f"engine, idle run (nothing due): {idle_run * 1000:9.2f} ms   ratio {scan_ms / (idle_run * 1000):,.0f}")
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _populate(store, rows, total: int) -> int:
    """Create the records through the write path, all at START, committing every 5,000."""
    created = 0
    batch: list = []

    def flush():
        def work(session):
            for row in batch:
                session.create("job", row)
        store.run(work, now=START)
        batch.clear()

    for row in rows:
        batch.append(row)
        created += 1
        if len(batch) == 5000:
            flush()
            if created % 100_000 == 0:
                print(f"  {created:,} / {total:,}", flush=True)
    if batch:
        flush()
    return created


if __name__ == "__main__":
    main()
