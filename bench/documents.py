"""Documents benchmark: making a PDF document of a record (access checks, the sandboxed
template, its queries, WeasyPrint) as a ratio to WeasyPrint alone turning the same HTML
into a PDF with the same style sheet, measured in the same run; plus absolute medians.

    .venv/bin/python bench/documents.py                      # the helpdesk's service protocol
    .venv/bin/python bench/documents.py --document sla_report --runs 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deskbase.rules.application import load_application, load_application_demo, open_store  # noqa: E402
from deskbase.rules.documents.making import render  # noqa: E402
from deskbase.rules.documents.section import document_named  # noqa: E402

DEFINITIONS = Path(__file__).resolve().parents[1] / "definitions"


def timed(work, runs: int) -> list[float]:
    found = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        found.append(time.perf_counter() - started)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--document", default="service_protocol", choices=("service_protocol", "sla_report"))
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    definitions = load_application(DEFINITIONS)
    store = open_store("memory://", definitions)
    load_application_demo(store, DEFINITIONS / "demo")
    if args.document == "service_protocol":
        number = store.read(lambda s: s.get("ticket", s.query("work_entry", None, limit=1).records[0]
                                            .get("ticket")).number)
    else:
        number = store.run(lambda s: s.create("sla_report", {"title": "Last 60 days", "starts": s.today.fromordinal(
            s.today.toordinal() - 60), "ends": s.today}).number)
    document = document_named(definitions, args.document)
    made = store.read(lambda s: render(s, args.document, number))
    store.read(lambda s: render(s, args.document, number))            # warm: fonts, imports
    whole = timed(lambda: store.read(lambda s: render(s, args.document, number)), args.runs)
    from weasyprint import HTML
    base = document.folder.as_uri() + "/"
    raw = timed(lambda: HTML(string=made.html, base_url=base).write_pdf(), args.runs)
    template = timed(lambda: store.read(lambda s: render(s, args.document, number, pdf=False)), args.runs)
    print(f"{args.document} of {number}: {len(made.pdf) // 1024} KiB PDF, {args.runs} runs")
    print(f"  document (template + PDF)   median {statistics.median(whole) * 1000:8.1f} ms")
    print(f"  raw WeasyPrint, same HTML   median {statistics.median(raw) * 1000:8.1f} ms")
    print(f"  template alone              median {statistics.median(template) * 1000:8.1f} ms")
    print(f"  ratio document / raw WeasyPrint: {statistics.median(whole) / statistics.median(raw):.2f}")
    store.close()


if __name__ == "__main__":
    main()
