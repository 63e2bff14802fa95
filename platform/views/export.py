"""Excel export of list views (P11): every list exports what it shows one person — the same
filter, read scope, sort and visible columns, every page — as typed cells (dates as dates,
numbers as numbers, durations in hours, labels in the person's language). A large export
runs in the background, with a progress page and a download link only its owner can use.

It lives in views/, not connectors/: a workbook is another rendering of a list page — the
same columns, labels and read scope as the screen, asked for by the same request — and
openpyxl writes a file here, talking to nothing outside."""
from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from deskbase.objects.errors import QueryError
from deskbase.objects.fields import ComputedKind, label_text
from deskbase.objects.model import TypeDef
from deskbase.rules.access.identity import Identity

from .display import ref_text
from .lists import Listing, column_title, read_listing

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BACKGROUND_ROWS = 5_000      # above this many rows an export runs as a job with a progress page
KEEP_FOR = 3600.0            # seconds a finished job's file stays downloadable
CHUNK = 1_000                # rows between progress reports and trims of the ZODB cache
MAX_TEXT = 32_767            # what one Excel cell holds

CellReader = Callable[[Any], Any]
LOG = logging.getLogger(__name__)


# -- cells --------------------------------------------------------------------------------

def _text(value: str) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", value)[:MAX_TEXT]


def _cell_reader(session, typedef: TypeDef, name: str, language: str, zone: ZoneInfo) -> CellReader:
    """How one column's value becomes an Excel value, decided once per column: a function
    of a record's values."""
    if name == "id":
        return lambda values: typedef.number(values["id"])
    field_def = typedef.fields.get(name)
    if field_def is None:
        return lambda values: None if values.get(name) is None else _text(str(values[name]))
    kind = field_def.kind.result if isinstance(field_def.kind, ComputedKind) else field_def.kind
    if kind.name == "datetime":      # Excel knows no time zones: the application's wall clock
        return lambda values: None if values.get(name) is None else \
            values[name].astimezone(zone).replace(tzinfo=None)
    if kind.name in ("date", "integer", "decimal", "money", "boolean"):
        return lambda values: values.get(name)
    if kind.name == "duration":      # seconds stored; hours shown
        return lambda values: None if values.get(name) is None else values[name] / 3600
    if kind.name == "enum":
        labels = {value: label_text(kind.labels.get(value), language, value) for value in kind.values}
        return lambda values: None if values.get(name) is None else labels.get(values[name], values[name])
    if kind.name in ("ref", "refs"):
        titles: dict[int, str] = {}  # each target's title read once per export

        def title(record_id: int) -> str:
            if record_id not in titles:
                titles[record_id] = _text(ref_text(session, kind.to, record_id))
            return titles[record_id]
        if kind.name == "ref":
            return lambda values: None if values.get(name) is None else title(values[name])
        return lambda values: ", ".join(title(i) for i in values.get(name) or ()) or None
    return lambda values: _text(kind.text(values.get(name), language)) or None


def _safe(value: Any, sheet) -> Any:
    """Text stays text: a title that starts with `=` is never run as a formula, nor is
    `#N/A` read as an error."""
    if isinstance(value, str) and ((value.startswith("=") and len(value) > 1) or value in ERROR_CODES):
        cell = WriteOnlyCell(sheet, value)
        cell.data_type = "s"
        return cell
    return value


def _sheet_title(text: str) -> str:
    return "".join(" " if c in "[]:*?/\\" else c for c in text)[:31] or "Export"


def write_listing(session, listing: Listing, language: str, target: str | os.PathLike | IO[bytes], *,
                  zone: str | None = None, progress: Callable[[int, int], None] | None = None) -> int:
    """Write a list's rows — every page, in its order, as the session may read them — to an
    .xlsx workbook at `target`, with a frozen header row of titles in `language` and an
    autofilter; returns how many rows. openpyxl's write-only mode keeps memory flat: rows
    go to a temporary XML file as they come, and are zipped when the workbook is saved."""
    typedef = listing.typedef
    page = session.query(typedef.name, listing.filter, listing.sort, limit=None)
    wall_clock = ZoneInfo(zone or session.definitions.zone)
    readers = [_cell_reader(session, typedef, name, language, wall_clock) for name in listing.columns]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_sheet_title(label_text(listing.view.label, language, listing.view.name)))
    # Write-only sheets write their views and filter from these before the first row.
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(max(1, len(readers)))}{page.total + 1}"
    bold = Font(bold=True)
    header = []
    for name in listing.columns:
        cell = WriteOnlyCell(sheet, column_title(typedef, name, language))
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    written = 0
    for record in page.records:
        values = record.values
        sheet.append([_safe(read(values), sheet) for read in readers])
        written += 1
        if written % CHUNK == 0:
            session.connection.cacheGC()     # a long read must not keep every record in memory
            if progress:
                progress(written, page.total)
    workbook.save(target)
    if progress:
        progress(written, page.total)
    return written


# -- background exports -----------------------------------------------------------------------

@dataclass
class ExportJob:
    """One export running or done in the background: whose, how far, and its file."""

    id: str
    owner: str
    filename: str
    path: Path
    total: int = 0
    done: int = 0
    finished: bool = False
    error: str | None = None
    finished_at: float | None = None

    @property
    def percent(self) -> int:
        return 100 if self.finished else int(100 * self.done / self.total) if self.total else 0


class ExportJobs:
    """The background exports of one web application, kept in this process's memory: a
    restart forgets them (their files are temporary). A job is found only by its owner."""

    def __init__(self, threshold: int = BACKGROUND_ROWS, keep_for: float = KEEP_FOR):
        self.threshold = threshold
        self.keep_for = keep_for
        self._jobs: dict[str, ExportJob] = {}
        self._lock = threading.Lock()

    def start(self, owner: str, filename: str, total: int, work: Callable[[ExportJob], int]) -> ExportJob:
        """Run `work(job)` in a thread of its own; it writes `job.path` and reports progress."""
        self._expire()
        handle, path = tempfile.mkstemp(prefix="deskbase-export-", suffix=".xlsx")
        os.close(handle)
        job = ExportJob(uuid.uuid4().hex, owner, filename, Path(path), total=total)
        with self._lock:
            self._jobs[job.id] = job

        def run() -> None:
            try:
                work(job)
            except Exception as error:            # the page says it failed; the server goes on
                LOG.exception("export %s for %s failed", job.filename, owner)
                job.error = str(error) or type(error).__name__
            job.finished, job.finished_at = True, time.monotonic()
        threading.Thread(target=run, name=f"export-{job.id[:8]}", daemon=True).start()
        return job

    def find(self, job_id: str, owner: str) -> ExportJob | None:
        """The job with this id if `owner` started it; anyone else is told nothing."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            old = [job for job in self._jobs.values() if job.finished_at and now - job.finished_at > self.keep_for]
            for job in old:
                del self._jobs[job.id]
        for job in old:
            job.path.unlink(missing_ok=True)




def jobs_of(web) -> ExportJobs:
    """The background exports of a `Web` (one registry per application, kept on it)."""
    return web.exports


# -- pages --------------------------------------------------------------------------------------

def export_list(web, request: Request, web_session, identity: Identity) -> Response:
    """GET /v/{view}/export.xlsx: the list with the page's `sort`, `q` and `f`, as a workbook.

    openpyxl writes a zip, which cannot be sent while it is written: the workbook goes to a
    temporary file (this handler already runs in a worker thread) and the file is then
    streamed in chunks and removed. Above the jobs' threshold the export runs in the
    background instead, and the answer is the progress page."""
    view = web.definitions.views.get(request.path_params["view"])
    if view is None or view.name not in {v["name"] for v in web.navigation(identity, "en")}:
        return web.render(request, "error.html", {"message": "There is no such list."}, status=404,
                          web_session=web_session, identity=identity)
    language = web.language_of(identity)
    listing = read_listing(web.definitions, view, request.query_params, identity)
    if listing.problem:      # never export something other than what was asked
        return web.render(request, "error.html", {"message": listing.problem}, status=422,
                          web_session=web_session, identity=identity)
    filename = f"{view.name}-{datetime.now(ZoneInfo(web.definitions.zone)):%Y%m%d-%H%M}.xlsx"
    jobs = jobs_of(web)
    try:
        total = web.store.read(lambda s: s.count(view.type, listing.filter), identity=identity)
        if total > jobs.threshold:
            def work(job: ExportJob) -> int:
                def progress(done: int, total: int) -> None:
                    job.done, job.total = done, total
                return web.store.read(lambda s: write_listing(s, listing, language, job.path, progress=progress),
                                      identity=identity)
            job = jobs.start(identity.id, filename, total, work)
            return RedirectResponse(f"/exports/{job.id}", status_code=303)
        handle, path = tempfile.mkstemp(prefix="deskbase-export-", suffix=".xlsx")
        try:
            with os.fdopen(handle, "wb") as file:
                web.store.read(lambda s: write_listing(s, listing, language, file), identity=identity)
        except BaseException:
            os.unlink(path)
            raise
    except QueryError as error:
        return web.render(request, "error.html", {"message": error.said}, status=422,
                          web_session=web_session, identity=identity)
    return FileResponse(path, media_type=CONTENT_TYPE, filename=filename,
                        background=BackgroundTask(os.unlink, path))


def export_progress(web, request: Request, web_session, identity: Identity) -> Response:
    """GET /exports/{export}: how far a background export is; htmx asks again every
    second until the download link appears."""
    job = jobs_of(web).find(request.path_params["export"], identity.id)
    if job is None:
        return web.render(request, "error.html", {"message": "There is no such export."}, status=404,
                          web_session=web_session, identity=identity)
    template = "_export_progress.html" if request.headers.get("HX-Request") else "export.html"
    return web.render(request, template, {"job": job}, web_session=web_session, identity=identity)


def export_file(web, request: Request, web_session, identity: Identity) -> Response:
    """GET /exports/{export}/file: the finished workbook, for the person who asked for it."""
    job = jobs_of(web).find(request.path_params["export"], identity.id)
    if job is None or not job.finished or job.error:
        return web.render(request, "error.html", {"message": "There is no such export."}, status=404,
                          web_session=web_session, identity=identity)
    return FileResponse(job.path, media_type=CONTENT_TYPE, filename=job.filename)
