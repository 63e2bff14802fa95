"""Monthly billing benchmark: the shipped definitions' `monthly_reports` generator over
`--contracts` contracts with `--entries` work entries each in the month, on a FileStorage.
Work entries are made through the write path first (their tokens and amounts computed,
their contract's sums kept up to date); then, in the same run:

- engine: `run_generator(monthly_reports)` — per contract, one report and one line per
  work entry and per flat-rate service, found through the indexes, each report in its
  own transaction, its sums kept up to date line by line;
- again: the same run a second time, which must find every report made and make nothing;
- raw baseline: the same number of persistent records (a report and its lines as bare
  PersistentMappings in an OOBTree) committed per contract, with no lookup, no rule, no
  index and no sum.

The ratio is baseline ÷ engine (above 1: the engine is faster).

    .venv/bin/python bench/billing.py --contracts 200 --entries 50
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import transaction  # noqa: E402
from BTrees.OOBTree import OOBTree  # noqa: E402
from persistent.mapping import PersistentMapping  # noqa: E402

from deskbase.rules.application import load_application, open_store  # noqa: E402
from deskbase.rules.process.generators import month, run_generator  # noqa: E402

DEFINITIONS = Path(__file__).resolve().parents[1] / "definitions"
OCTOBER = month("2026-10")


def fill(store, contracts: int, entries: int) -> None:
    def setup(session):
        made = []
        for n in range(contracts):
            organization = session.create("organization", {"name": f"Customer {n}", "code": f"C{n:05d}"})
            tokens = n % 2 == 0
            contract = session.create("contract", {
                "organization": organization.id, "name": f"Support {n}", "starts": "2026-01-01",
                **({"token_minutes": 15} if tokens else {"hourly_rate": "80"})})
            session.create("contract_service", {"contract": contract.id, "name": "Monitoring", "monthly_price": "90",
                                                "starts": "2026-01-01"})
            ticket = session.create("ticket", {"title": f"Work for customer {n}", "organization": organization.id,
                                               "contract": contract.id})
            made.append(ticket.id)
        return made
    tickets = store.run(setup)
    for ticket in tickets:
        store.run(lambda s: [s.create("work_entry", {"ticket": ticket, "performer": "tina",
                                                     "date": date(2026, 10, 1 + e % 28),
                                                     "duration": f"{15 + 15 * (e % 8)}m",
                                                     "description": f"Step {e}"})
                             for e in range(entries)])


def baseline(connection, contracts: int, lines: int) -> float:
    root = connection.root()
    root["bare"] = OOBTree()
    transaction.commit()
    started = time.perf_counter()
    for n in range(contracts):
        report = PersistentMapping({"contract": n, "period_start": OCTOBER.start, "lines": []})
        root["bare"][("report", n)] = report
        for line in range(lines):
            root["bare"][("line", n, line)] = PersistentMapping({"report": n, "duration": 900, "amount": 20})
        transaction.commit()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contracts", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50, help="work entries per contract in the month")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="deskbase-bench-billing-"))
    try:
        store = open_store(f"file://{folder}/Data.fs?blobstorage_dir={folder}/blobs", load_application(DEFINITIONS))
        started = time.perf_counter()
        fill(store, args.contracts, args.entries)
        filled = time.perf_counter() - started
        now = datetime(2026, 11, 1, 2, tzinfo=timezone.utc)
        started = time.perf_counter()
        report = run_generator(store, "monthly_reports", now=now)
        engine = time.perf_counter() - started
        started = time.perf_counter()
        again = run_generator(store, "monthly_reports", now=now)
        rerun = time.perf_counter() - started
        assert len(report.made) == args.contracts and not report.failed, report
        assert again.existing == args.contracts and not again.made
        lines = store.read(lambda s: s.count("report_line"))
        connection = store.db.open()
        try:
            bare = baseline(connection, args.contracts, lines // args.contracts)
        finally:
            connection.close()
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"contracts {args.contracts}, work entries {args.contracts * args.entries} (made in {filled:.1f} s), "
          f"report lines {lines}")
    print(f"engine:   {engine * 1000:9.0f} ms  ({engine / args.contracts * 1000:.1f} ms a report, "
          f"{engine / lines * 1000:.2f} ms a line)")
    print(f"again:    {rerun * 1000:9.0f} ms  (nothing made: {rerun / args.contracts * 1000:.2f} ms a contract)")
    print(f"baseline: {bare * 1000:9.0f} ms  (bare records, one commit per report)")
    print(f"ratio (baseline / engine): {bare / engine:.2f}")


if __name__ == "__main__":
    main()
