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
import shutil
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

from BTrees.OOBTree import OOBTree
from openpyxl import Workbook
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from persistent.mapping import PersistentMapping
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from ZODB.blob import Blob

from deskbase.objects.errors import QueryError
from deskbase.objects.fields import ComputedKind, label_text
from deskbase.objects.kept_objects import kept_object
from deskbase.objects.model import TypeDef
from deskbase.objects.words import N_
from deskbase.rules.access.identity import Identity

from .display import ref_text
from .lists import Listing, column_title, read_listing

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BACKGROUND_ROWS = 5_000      # above this many rows an export runs as a job with a progress page
KEEP_FOR = 3600.0            # seconds a finished job's file stays downloadable
STALLED = 120.0              # seconds without progress after which an unfinished export has stopped
EXPORTS_KEY = "deskbase.exports"
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
    """One export running or done in the background, as read: whose, how far, and whether
    its file is ready."""

    id: str
    owner: str
    filename: str
    total: int = 0
    done: int = 0
    finished: bool = False
    error: str | None = None
    reported: float = 0.0          # when its maker last wrote its progress (monotonic)

    @property
    def percent(self) -> int:
        return 100 if self.finished else int(100 * self.done / self.total) if self.total else 0


class ExportJobs:
    """The background exports of an application, kept in the database (under EXPORTS_KEY):
    any server process in front of it shows an export's progress and serves its file, which
    is kept as a blob once written. The process that started an export writes it; if that
    process stops first, the export says so after STALLED seconds without progress. A job
    is found only by its owner; finished ones are dropped after `keep_for` seconds."""

    def __init__(self, store, threshold: int = BACKGROUND_ROWS, keep_for: float = KEEP_FOR):
        self.store = store
        self.threshold = threshold
        self.keep_for = keep_for

    def start(self, owner: str, filename: str, total: int, work: Callable[[ExportJob, Path], int]) -> ExportJob:
        """Run `work(job, path)` in a thread of its own: it writes the workbook at `path` and
        reports how far it is with `progress`; the workbook is then kept in the database."""
        handle, name = tempfile.mkstemp(prefix="deskbase-export-", suffix=".xlsx")
        os.close(handle)
        path = Path(name)
        job = ExportJob(uuid.uuid4().hex, owner, filename, total=total)

        def register(session) -> None:
            kept = self._kept(session, make=True)
            self._expire(kept)
            kept[job.id] = PersistentMapping({"owner": owner, "filename": filename, "total": total, "done": 0,
                                              "error": None, "finished_at": None, "updated_at": time.time(),
                                              "file": None})
        self.store.run(register)

        def run() -> None:
            try:
                work(job, path)
                self._finish(job, path)
            except Exception as error:            # the page says it failed; the server goes on
                LOG.exception("export %s for %s failed", job.filename, owner)
                self._record(job.id, error=str(error) or type(error).__name__, finished_at=time.time())
            finally:
                path.unlink(missing_ok=True)
        threading.Thread(target=run, name=f"export-{job.id[:8]}", daemon=True).start()
        return job

    def progress(self, job: ExportJob, done: int, total: int) -> None:
        """Record how far `job` is (at most about once a second: each is a write)."""
        job.done, job.total = done, total
        if time.monotonic() - job.reported >= 1.0 or done >= total:
            job.reported = time.monotonic()
            self._record(job.id, done=done, total=total)

    def find(self, job_id: str, owner: str) -> ExportJob | None:
        """The job with this id if `owner` started it; anyone else is told nothing."""
        def work(session) -> ExportJob | None:
            entry = (self._kept(session) or {}).get(job_id)
            if entry is None or entry["owner"] != owner:
                return None
            error = entry["error"]
            if entry["finished_at"] is None and time.time() - entry["updated_at"] > STALLED:
                error = "it stopped: the server making it was stopped or restarted; export the list again"
            return ExportJob(job_id, owner, entry["filename"], total=entry["total"], done=entry["done"],
                             finished=entry["finished_at"] is not None or error is not None, error=error)
        return self.store.read(work)

    def file_of(self, job_id: str, owner: str) -> tuple[str, str] | None:
        """The name and path (the blob's file) of a finished job's workbook, for its owner;
        None for anyone else, or while there is no workbook (running, failed)."""
        def work(session) -> tuple[str, str] | None:
            entry = (self._kept(session) or {}).get(job_id)
            if entry is None or entry["owner"] != owner or entry["file"] is None:
                return None
            return entry["filename"], entry["file"].committed()
        return self.store.read(work)

    def _finish(self, job: ExportJob, path: Path) -> None:
        def work(session) -> None:
            entry = self._kept(session)[job.id]
            blob = Blob()
            with blob.open("w") as target, open(path, "rb") as source:
                shutil.copyfileobj(source, target)
            entry.update(file=blob, done=job.done, total=job.total, finished_at=time.time(), updated_at=time.time())
        self.store.run(work)

    def _record(self, job_id: str, **values: Any) -> None:
        def work(session) -> None:
            entry = (self._kept(session) or {}).get(job_id)
            if entry is not None:
                entry.update(values, updated_at=time.time())
        self.store.run(work)

    def _kept(self, session, make: bool = False):
        return kept_object(session.connection, EXPORTS_KEY, OOBTree if make else None)

    def _expire(self, kept) -> None:
        now = time.time()
        old = [job_id for job_id, entry in kept.items()
               if (entry["finished_at"] or entry["updated_at"] + STALLED) < now - self.keep_for]
        for job_id in old:
            del kept[job_id]


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
        return web.render(request, "error.html", {"message": N_("There is no such list.")}, status=404,
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
            def work(job: ExportJob, path: Path) -> int:
                def progress(done: int, total: int) -> None:
                    jobs.progress(job, done, total)
                return web.store.read(lambda s: write_listing(s, listing, language, path, progress=progress),
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
        return web.render(request, "error.html", {"message": N_("There is no such export.")}, status=404,
                          web_session=web_session, identity=identity)
    template = "_export_progress.html" if request.headers.get("HX-Request") else "export.html"
    return web.render(request, template, {"job": job}, web_session=web_session, identity=identity)


def export_file(web, request: Request, web_session, identity: Identity) -> Response:
    """GET /exports/{export}/file: the finished workbook, for the person who asked for it."""
    found = jobs_of(web).file_of(request.path_params["export"], identity.id)
    if found is None:
        return web.render(request, "error.html", {"message": N_("There is no such export.")}, status=404,
                          web_session=web_session, identity=identity)
    filename, path = found
    return FileResponse(path, media_type=CONTENT_TYPE, filename=filename)
