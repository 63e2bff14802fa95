"""Excel export benchmark: a list view of N records exported through `write_listing` (query,
typed cells, write-only workbook), as a ratio to bare openpyxl write-only writing the same
cells already in memory, measured in the same run, with the export's peak memory.

    .venv/bin/python bench/export.py --records 100000          # default view: all_tickets
    .venv/bin/python bench/export.py --records 20000 --view open_tickets

Records are generated from the type's definition, as in bench/engine.py.
"""
from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import WriteOnlyCell
from openpyxl.styles import Font

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import make_row, prepare_targets  # noqa: E402

from deskbase.objects.store import Store  # noqa: E402
from deskbase.rules.application import load_application  # noqa: E402
from deskbase.views.export import _cell_reader, write_listing  # noqa: E402
from deskbase.views.lists import column_title, read_listing  # noqa: E402


def build(store, type_name, targets, count):
    """N records through the write path, from 20,000 generated rows at most, repeated."""
    typedef = store.definitions.type(type_name)
    rng = random.Random(42)
    generated = store.read(lambda s: [make_row(s, typedef, rng, targets) for _ in range(min(count, 20_000))])
    started = time.perf_counter()
    store.bulk_create(type_name, (generated[i % len(generated)] for i in range(count)), user="bench", batch=5000)
    return count / (time.perf_counter() - started)


def export(store, listing, path):
    started = time.perf_counter()
    rows = store.read(lambda s: write_listing(s, listing, "en", path))
    return time.perf_counter() - started, rows


def cells_of(store, listing):
    """The cells the export writes, computed up front for the bare openpyxl baseline."""
    def work(session):
        zone = ZoneInfo(session.definitions.zone)
        readers = [_cell_reader(session, listing.typedef, name, "en", zone) for name in listing.columns]
        page = session.query(listing.typedef.name, listing.filter, listing.sort, limit=None)
        return [[read(record.values) for read in readers] for record in page.records]
    return store.read(work)


def bare_openpyxl(header, rows, path):
    started = time.perf_counter()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Export")
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:Z{len(rows) + 1}"
    bold = Font(bold=True)
    cells = []
    for title in header:
        cell = WriteOnlyCell(sheet, title)
        cell.font = bold
        cells.append(cell)
    sheet.append(cells)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--view", default="all_tickets", help="the list view to export")
    parser.add_argument("--definitions", default=str(Path(__file__).resolve().parents[1] / "definitions"))
    parser.add_argument("--folder", default=None, help="where the FileStorage goes (default: a temporary folder)")
    args = parser.parse_args()

    folder = Path(args.folder or tempfile.mkdtemp(prefix="deskbase-bench-export-"))
    folder.mkdir(parents=True, exist_ok=True)
    definitions = load_application(args.definitions)
    store = Store.open(f"file://{folder}/export.fs?blobstorage_dir={folder}/blobs", definitions)
    try:
        view = definitions.views[args.view]
        typedef = definitions.type(view.type)
        durations = [n for n, f in typedef.own_fields.items() if f.kind.name == "duration" and n not in view.columns]
        view = replace(view, columns=view.columns + tuple(durations[:1]))     # durations in hours too
        listing = read_listing(definitions, view, {}, None)
        print(f"Deskbase export benchmark: {args.records:,} `{view.type}` records, view `{args.view}` "
              f"({len(listing.columns)} columns: {', '.join(listing.columns)}), FileStorage in {folder}")
        targets = prepare_targets(store, args.definitions)
        rate = build(store, view.type, targets, args.records)
        print(f"built in the write path at {rate:,.0f} records/s", flush=True)

        seconds, rows = export(store, listing, folder / "cold.xlsx")
        print(f"export, cold cache: {rows:,} rows in {seconds:.2f} s ({rows / seconds:,.0f} rows/s)", flush=True)
        engine = min(export(store, listing, folder / "engine.xlsx")[0] for _ in range(2))
        cells = cells_of(store, listing)
        header = [column_title(typedef, name, "en") for name in listing.columns]
        bare = min(bare_openpyxl(header, cells, folder / "bare.xlsx") for _ in range(2))
        del cells
        print(f"export: {engine:.2f} s ({rows / engine:,.0f} rows/s); bare openpyxl write-only, same cells: "
              f"{bare:.2f} s -> ratio {bare / engine:.2f} (aim >= 0.7)", flush=True)

        tracemalloc.start()
        export(store, listing, folder / "traced.xlsx")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        size = (folder / "engine.xlsx").stat().st_size
        print(f"export peak memory (tracemalloc, Python objects): {peak / 2**20:.1f} MiB; process max RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; workbook {size / 2**20:.1f} MiB")
    finally:
        store.close()
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
