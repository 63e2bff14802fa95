"""Importing records from an Excel sheet (P11): the first row names the fields (by name or
by their label in any language), every other row is a record. Every row is checked; when
any is refused nothing is written and the report says which row, which field and why.

It lives in views/ beside the export: an uploaded sheet is a form of many rows, read from
the request and written through the same write path as one record's form."""
from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from openpyxl import load_workbook
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.errors import DeskbaseError, ValidationError
from deskbase.objects.model import TypeDef
from deskbase.objects.store import Store
from deskbase.rules.access.scopes import decide

from . import said
from .i18n import plural_translator

if TYPE_CHECKING:
    from .app import Web

MAX_ROWS = 50_000


class NothingImported(DeskbaseError):
    """An import refused as a whole: `problems` are (row, field, why), rows counted from 1 as in Excel."""

    def __init__(self, problems: list[tuple[int, str, str]]):
        self.problems = problems
        shown = "; ".join(f"row {row}, {name}: {why}" for row, name, why in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"nothing was imported: {len(problems)} problems — {shown}{more}")


@dataclass
class ImportReport:
    type_name: str
    numbers: list[str] = field(default_factory=list)


def _columns(typedef: TypeDef, header: tuple[Any, ...]) -> tuple[list[str | None], list[tuple[int, str, str]]]:
    """The field each column fills, from its header: a field's name or its label."""
    by_text: dict[str, str] = {}
    for name, definition in typedef.own_fields.items():
        by_text[name.casefold()] = name
        label = definition.label
        for text in (label.values() if isinstance(label, Mapping) else [label] if label else []):
            by_text.setdefault(str(text).casefold(), name)
    columns, problems = [], []
    for position, cell in enumerate(header, start=1):
        text = "" if cell is None else str(cell).strip()
        name = by_text.get(text.casefold()) if text else None
        if text and name is None:
            problems.append((1, text, f"column {position} names no field of {typedef.title()}"))
        columns.append(name)
    return columns, problems


def _cell(value: Any) -> Any:
    if isinstance(value, datetime) and value.hour == value.minute == value.second == 0:
        return value.date()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value.strip() if isinstance(value, str) else value


def import_rows(store: Store, type_name: str, content: bytes, *, identity: Any = None, user: str = "import") -> ImportReport:
    """Create one record per row of the first sheet, all in one transaction, or none."""
    typedef = store.definitions.type(type_name)
    try:
        sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).worksheets[0]
    except Exception:                                   # not a workbook at all: say so, in words
        raise NothingImported([(0, "file", "this is not an Excel workbook (.xlsx)")]) from None
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        raise NothingImported([(1, "file", "the sheet is empty")])
    columns, problems = _columns(typedef, header)
    if problems:
        raise NothingImported(problems)
    report = ImportReport(type_name)

    def work(session) -> None:
        found: list[tuple[int, str, str]] = []
        for number, row in enumerate(rows, start=2):
            if number > MAX_ROWS + 1:
                found.append((number, "file", f"at most {MAX_ROWS:,} rows at once"))
                break
            values = {name: _cell(value) for name, value in zip(columns, row) if name and value not in (None, "")}
            if not values:
                continue
            try:        # a refused write touches nothing, so the next rows are checked as well
                report.numbers.append(session.create(type_name, values).number)
            except ValidationError as error:
                found += [(number, field_name, why) for field_name, why in error.errors.items()]
            except DeskbaseError as error:
                found.append((number, "row", str(error)))
        if found:
            raise NothingImported(found)                # the transaction is abandoned: nothing written
    store.run(work, identity=identity, user=user)
    return report


def import_page(web: "Web", request: Request, web_session, identity) -> Response:
    """GET: the form; POST: a sheet imported into a type the person may create records of."""
    typedef = web.definitions.types.get(request.path_params["type"])
    if typedef is None or not decide(identity, "create", typedef, definitions=web.definitions):
        return web.render(request, "error.html", {"message": "You may not create records of this kind."},
                          status=403, web_session=web_session, identity=identity)
    language = web.language_of(identity)
    context = {"type": typedef.name, "title": typedef.title(language),
               "columns": [f.title(language) for n, f in typedef.own_fields.items() if f.kind.writable]}
    if request.method == "POST":
        upload = request.state.form.get("sheet")
        if not getattr(upload, "filename", None):
            context["problems"] = [(0, "file", "choose the .xlsx file to import")]
            return web.render(request, "import.html", context, status=422, web_session=web_session,
                              identity=identity)
        try:
            report = import_rows(web.store, typedef.name, upload.file.read(), identity=identity)
        except NothingImported as refused:
            context["problems"] = refused.problems
            return web.render(request, "import.html", context, status=422, web_session=web_session,
                              identity=identity)
        tn = plural_translator(language)
        made = tn("{count} record imported.", "{count} records imported.", len(report.numbers))
        first, last = (report.numbers[0], report.numbers[-1]) if report.numbers else ("", "")
        made += f" {first}" if first == last else f" {first} … {last}"
        return said.say(RedirectResponse(f"/import/{typedef.name}", status_code=303), made)
    return web.render(request, "import.html", context, web_session=web_session, identity=identity)

