"""Making documents (P19): PDF files made from a record with a sandboxed HTML template — a
report, a protocol of work done — for whoever may read the record, showing only what they
may read. What exists is the `documents:` section (section.py); values are formatted in the
reader's language (formatting.py).

Making a PDF lives in rules/, not connectors/: a document is made inside a transition's
transaction (`keep_document`) and bounded by the reader's access rules, and WeasyPrint turns
HTML into PDF in this process without talking to anything outside (it fetches no URL; see
`folder_fetcher`)."""
from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError

from deskbase.objects.errors import DeskbaseError, NotFound
from deskbase.objects.fields import RefKind, Upload, UserKind, UsersKind, label_text
from deskbase.objects.kept_objects import kept_object
from deskbase.objects.model import TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session
from deskbase.rules.access.identity import ACCOUNTS_KEY, Identity, identity_for_account
from deskbase.rules.access.scopes import AccessDenied, access_rules, decide, hidden_fields, may_read
from deskbase.rules.process.timers import clocks_of

from .formatting import period_text, plain_text
from .section import FILENAME_PLACEHOLDER, Document, DocumentError, document_named, documents

MAX_ROWS = 5000            # records one `related` or `query` call gives a template at most
PDF = "application/pdf"
_UNSAFE_IN_FILENAME = re.compile(r"[^\w.()\- ]+")


# -- who may make which document -------------------------------------------------------------

def refusal(session: Session, document: Document, record: Record) -> str | None:
    """Why the session's person may not make `document` of `record`, or None. A record they
    may not read raises NotFound: for them it does not exist."""
    identity = session.identity
    typedef = session.definitions.type(record.type_name)
    if record.type_name != document.type:
        raise NotFound(f"`{document.name}` is made from {document.type} records, not from {record.number}")
    if not decide(identity, "read", typedef, record, definitions=session.definitions,
                  context=session.context(record.values)):
        raise NotFound(f"there is no record numbered `{record.number}`")
    if document.roles is None or identity is None or identity.superuser \
            or set(identity.roles) & (set(document.roles) | access_rules(session.definitions).superusers):
        return None
    return (f"`{document.name}` is made by {', '.join(document.roles)}; your roles: "
            f"{', '.join(identity.roles) or 'none'}")


def offered(session: Session, record: Record) -> list[Document]:
    """The documents of the record's type the session's person may make of it."""
    return [document for document in documents(session.definitions).of_type(record.type_name)
            if refusal(session, document, record) is None]


def may_keep_copy(session: Session, document: Document, record: Record) -> bool:
    """Whether the person may store a copy in the document's field (they may update it there)."""
    if document.attach_to is None:
        return False
    typedef = session.definitions.type(record.type_name)
    identity = session.identity
    return bool(decide(identity, "update", typedef, record, definitions=session.definitions,
                       context=session.context(record.values))) \
        and document.attach_to not in hidden_fields(identity, typedef, session.definitions)


# -- making one ------------------------------------------------------------------------------

@dataclass(frozen=True)
class MadeDocument:
    """A rendered document: its file name, the HTML and the PDF bytes."""

    filename: str
    html: str
    pdf: bytes


def render(session: Session, name: str, record: Record | str, *, language: str | None = None,
           pdf: bool = True) -> MadeDocument:
    """Make a document of a record as the session's person, in their language. Raises
    NotFound (no such record for them), AccessDenied (not theirs to make) or DocumentError."""
    document = document_named(session.definitions, name)
    record = session.resolve(record)
    reason = refusal(session, document, record)
    if reason:
        raise AccessDenied("read", reason)
    return _make(session, document, record, language, pdf)


def _make(session: Session, document: Document, record: Record, language: str | None, pdf: bool = True) -> MadeDocument:
    name, identity = document.name, session.identity
    language = language or getattr(identity, "language", None) or session.definitions.languages[0]
    reader = Reader(session, identity, language)
    view = reader.view(session.definitions.type(record.type_name), record)
    context = _context(reader, view)
    try:
        html = document.environment.get_template(document.template).render(context)
    except (TemplateError, DeskbaseError, ArithmeticError, TypeError, ValueError, LookupError) as error:
        raise DocumentError(f"the document `{name}` of {record.number} could not be made: "
                            f"{_where(error)}{error}") from None
    content = html_to_pdf(html, document.folder) if pdf else b""
    return MadeDocument(_filename(document, view), html, content)


def keep_copy(session: Session, name: str, record: Record | str, *, language: str | None = None) -> Record:
    """Make a document as the session's person and store it in its `attach_to` field, through
    the write path (so their right to change that field is checked)."""
    document = document_named(session.definitions, name)
    record = session.resolve(record)
    if document.attach_to is None:
        raise DocumentError(f"`{name}` has no `attach_to` field to keep a copy in")
    made = render(session, name, record, language=language)
    return session.update(record, {document.attach_to: [Upload(made.filename, made.pdf, PDF)]},
                          reason=f"document {name}")


def html_to_pdf(html: str, folder: Path) -> bytes:
    """PDF bytes of an HTML page whose images and style sheets are read from `folder` only."""
    from weasyprint import HTML  # imported when a document is made: loading Pango takes a while
    return HTML(string=html, base_url=folder.as_uri() + "/", url_fetcher=folder_fetcher(folder)).write_pdf()


def folder_fetcher(folder: Path):
    """A WeasyPrint URL fetcher that serves the files inside `folder` and nothing else: no
    network, no other file. What it refused is listed in its `refused`."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    root = Path(folder).resolve()

    class FolderFetcher(URLFetcher):
        def __init__(self) -> None:
            super().__init__(allowed_protocols=("file", "data"), allow_redirects=False)
            self.refused: list[str] = []

        def fetch(self, url, headers=None):
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data":
                return super().fetch(url, headers)
            target = Path(unquote(urlsplit(url).path)).resolve() if scheme == "file" else None
            if target is None or not target.is_relative_to(root) or not target.is_file():
                self.refused.append(url)
                raise ValueError(f"a document reads only the files beside its template, not {url}")
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            return URLFetcherResponse(target.as_uri(), target.read_bytes(), {"Content-Type": kind})

    return FolderFetcher()


def _where(error: BaseException) -> str:
    """`report.html line 12: ` for an error raised while a template ran (Jinja2 puts the
    template's own lines in the traceback), else nothing."""
    line = ""
    traceback = error.__traceback__
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename.endswith((".html", ".htm")):
            line = f"{Path(filename).name} line {traceback.tb_lineno}: "
        traceback = traceback.tb_next
    if isinstance(error, TemplateSyntaxError) and error.lineno:
        line = f"{Path(error.filename or '').name} line {error.lineno}: "
    return line


def _filename(document: Document, view: "RecordView") -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name == "number":
            return view.number
        raw = view[name]
        return raw.isoformat()[:10] if isinstance(raw, (date, datetime)) else view.text(name)
    text = FILENAME_PLACEHOLDER.sub(value, document.filename)
    text = _UNSAFE_IN_FILENAME.sub("-", text).strip(" .-") or document.name
    return text if text.lower().endswith(".pdf") else text + ".pdf"


# -- what a template sees ----------------------------------------------------------------------

class Reader:
    """The person a document is made for, with what is needed to show values in their words."""

    def __init__(self, session: Session, identity: Identity | None, language: str):
        self.session = session
        self.identity = identity
        self.language = language
        self.definitions = session.definitions
        self.zone = ZoneInfo(session.definitions.zone)
        self.accounts = kept_object(session.connection, ACCOUNTS_KEY) or {}

    def may_read(self, typedef: TypeDef, record: Record) -> bool:
        return may_read(self.session, self.identity, typedef, record)

    def view(self, typedef: TypeDef, record: Record) -> "RecordView":
        return RecordView(self, typedef, record)

    def views(self, type_name: str, records) -> list["RecordView"]:
        typedef = self.definitions.type(type_name)
        return [RecordView(self, typedef, record) for record in records]


class RecordView:
    """A record as a template sees it: `record.title` or `record["title"]` (the raw values the
    reader may see; hidden fields read as nothing), `record.number`, `record.text(name)` (the
    value as people read it), `record.ref(name)` (the record a ref points at, if the reader may
    read it) and `record.field_label(name)`."""

    def __init__(self, reader: Reader, typedef: TypeDef, record: Record):
        self._reader = reader
        self._typedef = typedef
        self._record = record
        hidden = hidden_fields(reader.identity, typedef, reader.definitions)
        self._values = {name: value for name, value in record.values.items() if name not in hidden}
        self.number = record.number

    def __getitem__(self, name: str) -> Any:
        if name not in self._values and name not in self._typedef.fields:
            raise KeyError(name)
        return self._values.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def __str__(self) -> str:
        title = self._typedef.title_field
        return str(self._values.get(title)) if title and self._values.get(title) is not None else self.number

    def field_label(self, name: str) -> str:
        """The label of a field in the reader's language."""
        field = self._typedef.fields.get(name)
        return field.title(self._reader.language) if field is not None else name

    def ref(self, name: str) -> "RecordView | None":
        """The record a ref field points at, or None when empty or not readable by the reader."""
        field = self._typedef.fields.get(name)
        value = self._values.get(name)
        if field is None or not isinstance(field.kind, RefKind) or value in (None, ()):
            return None
        target_type = self._reader.definitions.type(field.kind.to)
        target = self._reader.session.container(target_type.name).records.get(
            value[0] if isinstance(value, tuple) else value)
        if target is None or not self._reader.may_read(target_type, target):
            return None
        return RecordView(self._reader, target_type, target)

    def text(self, name: str) -> str:
        """A field's value as people read it in the reader's language: titles of the records
        refs point at, labels of enums, people's names, durations as 1h30, money, dates."""
        if name == "number":
            return self.number
        field = self._typedef.fields.get(name)
        value = self._values.get(name)
        if field is None or value in (None, (), ""):
            return ""
        kind = field.kind
        kind = getattr(kind, "result", None) or kind          # a computed field shows as its result
        reader = self._reader
        if isinstance(kind, RefKind):
            ids = value if isinstance(value, tuple) else (value,)
            target_type = reader.definitions.type(kind.to)
            records = reader.session.container(target_type.name).records
            shown = []
            for record_id in ids:
                target = records.get(record_id)
                if target is None or not reader.may_read(target_type, target):
                    shown.append(target_type.number(record_id))
                else:
                    shown.append(str(RecordView(reader, target_type, target)))
            return ", ".join(shown)
        if isinstance(kind, (UserKind, UsersKind)):
            logins = value if isinstance(value, tuple) else (value,)
            names = [getattr(reader.accounts.get(str(login)), "name", "") or str(login) for login in logins]
            return ", ".join(names)
        return plain_text(kind, value, reader.zone, reader.language)


class Figures:
    """A tally as a template reads it: `periods` (each with `start`, `end` and `label`), the
    `values` of `by` (each with `value` and `label`), and `cell(period, value)` — period an
    index into `periods` or none, value one of `values` or none — with its `value` (the
    count, sum or average) and `records` (how many it is of)."""

    def __init__(self, found: Any, reader: Reader, type_name: str, by: str | None, every: str):
        typedef = reader.definitions.type(type_name)
        self._found = found
        self.periods = [{"start": start, "end": end, "label": period_text(start, every, reader.language)}
                        for start, end in found.periods]
        self.values = [{"value": value, "label": "—" if value is None or by is None
                        else RecordView(reader, typedef, _Shown({by: value})).text(by)}  # type: ignore[arg-type]
                       for value in found.values]

    def cell(self, period: int | None = None, value: Any = None) -> dict[str, Any]:
        found = self._found.cell(period, value)
        return {"value": found.value, "records": found.records}


class _Shown:
    """A value standing in for a record's, to show one field's value as people read it."""

    number = ""

    def __init__(self, values: dict[str, Any]):
        self.values = values


def _day(value: Any) -> date | None:
    if value is None or isinstance(value, ChainableUndefined):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _context(reader: Reader, view: RecordView) -> dict[str, Any]:
    session, record = reader.session, view._record
    filter_context = session.context(record.values)

    def query(type_name: str, filter: Any = None, sort: Any = None, limit: int | None = None) -> list[RecordView]:
        """Records of a type the reader may read, matching a filter (`$record.x` is this record).
        A `limit` the template gives is its own choice; without one, every matching record
        is given — and where more than MAX_ROWS match, the document is refused with a
        sentence rather than made from the first of them (a total would undercount)."""
        asked = int(limit) if limit is not None else None
        page = session.query(type_name, _plain(filter) or None, sort, limit=MAX_ROWS if asked is None else min(asked, MAX_ROWS),
                             context=filter_context)
        if page.total > len(page.records) and (asked is None or asked > MAX_ROWS):
            label = reader.definitions.type(type_name).title(reader.language)
            raise DocumentError(f"{page.total:,} records of {label} (`{type_name}`) match, and a document lists "
                                f"{MAX_ROWS:,} at most; narrow the filter, split the period, or give a `limit` "
                                f"to list only the first ones")
        return reader.views(type_name, page.records)

    def related(type_name: str, via: str, sort: Any = None, where: Any = None) -> list[RecordView]:
        """The records of a type whose ref `via` points at this record, as the reader may read them."""
        condition = {via: record.id}
        return query(type_name, {"all": [condition, _plain(where)]} if where else condition, sort)

    def count(type_name: str, filter: Any = None) -> int:
        """How many records of a type the reader may read match a filter (through the indexes)."""
        return session.count(type_name, _plain(filter) or None, context=filter_context)

    def tally(type_name: str, filter: Any = None, *, by: str | None = None, over: str | None = None,
              every: str = "month", since: Any = None, until: Any = None, periods: int = 12,
              sum: str | None = None, average: str | None = None) -> Figures:
        """Statistics of the records the reader may read (`Session.tally`, through the indexes):
        counted, or the `sum` or `average` of a number field, per value of `by` and/or per
        period of the date `over` from `since` to `until` (the last `periods` by default)."""
        measure, of = ("sum", sum) if sum else ("average", average) if average else ("count", None)
        found = session.tally(type_name, _plain(filter) or None, by=by, over=over, every=every, periods=periods,
                              measure=measure, of=of, since=_day(since), until=_day(until))
        return Figures(found, reader, type_name, by, every)

    def clocks(of: RecordView | None = None) -> dict[str, dict[str, Any]]:
        """The timers of a record (this one by default) by name: label, state, elapsed and
        target (seconds), deadline."""
        target = of if isinstance(of, RecordView) else view
        found = {}
        for clock in clocks_of(session, target._record, reader.language):
            found[clock.name] = {"label": clock.label, "state": clock.state,
                                 "elapsed": int(clock.elapsed.total_seconds()),
                                 "target": int(clock.target.total_seconds()) if clock.target is not None else None,
                                 "deadline": clock.deadline}
        return found

    def t(label: Any, fallback: str = "") -> str:
        """A label in the reader's language: a map such as {en: Total, fr: Total}, a type's
        name (its label) or `type.field` (the field's label)."""
        if isinstance(label, str):
            type_name, _, field_name = label.partition(".")
            typedef = reader.definitions.types.get(type_name)
            if typedef is not None and not field_name:
                return typedef.title(reader.language)
            if typedef is not None and field_name in typedef.fields:
                return typedef.fields[field_name].title(reader.language)
        return label_text(label, reader.language, fallback)

    def choices(path: str) -> list[tuple[str, str]]:
        """The values of an enum field, `type.field`, with their labels: [(value, label)]."""
        type_name, _, field_name = path.partition(".")
        field = reader.definitions.type(type_name).fields.get(field_name)
        values = getattr(getattr(field, "kind", None), "values", None) or ()
        return [(value, field.kind.text(value, reader.language)) for value in values]

    return {"record": view, "related": related, "query": query, "count": count, "tally": tally, "clocks": clocks,
            "t": t,
            "choices": choices,
            "language": reader.language, "now": session.now, "today": session.today,
            "zone": reader.definitions.zone, "settings": reader.definitions.settings,
            "me": getattr(reader.identity, "name", None) or session.user,
            "days": lambda number: timedelta(days=number),
            "type_label": session.definitions.type(record.type_name).title(reader.language)}


def _plain(value: Any) -> Any:
    """A filter written in a template, with the values it took from records made plain: a
    RecordView stands for its id."""
    if isinstance(value, RecordView):
        return value["id"]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# --kflow effect `keep_document` ---------------------------------------------------------


def apply_effect(session: Session, record: Record, names: tuple[str, ...]) -> None:
    """Make the documents and keep them in their fields, in the transition's transaction. They
    are made as the person who fired it (what they may read), or as the system for the
    engine's own transitions."""
    reader = session.identity if session.identity is not None else _account_identity(session)
    for name in names:
        document = document_named(session.definitions, name)
        with session.reading_as(reader):
            # The transition decided this document is made: its `roles` are not asked of the
            # person firing it, but what they may read still bounds what it shows.
            made = _make(session, document, record, None)
        session.update(record, {document.attach_to: [Upload(made.filename, made.pdf, PDF)]},
                       reason=f"document {name}")


def _account_identity(session: Session) -> Identity | None:
    account = (kept_object(session.connection, ACCOUNTS_KEY) or {}).get(session.user)
    if account is None or not account.active:
        return None
    return identity_for_account(session, account)


