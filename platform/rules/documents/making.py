"""Documents (P19): PDF files made from a record with a sandboxed HTML template — a report, a
protocol of work done — for whoever may read the record, showing only what they may read.
The `documents:` section names them; templates are compiled when the definitions load.

Making a PDF lives in rules/, not connectors/: a document is made inside a transition's
transaction (`keep_document`) and bounded by the reader's access rules, and WeasyPrint turns
HTML into PDF in this process without talking to anything outside (it fetches no URL; see
`folder_fetcher`)."""
from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass, field as _field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import ChainableUndefined, FileSystemLoader, TemplateError, TemplateSyntaxError, pass_context
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from deskbase.objects.compiling import Section, definition_error
from deskbase.objects.errors import DefinitionError, DeskbaseError, NotFound, hint_for
from deskbase.objects.fields import (
    AttachmentsKind,
    DateKind,
    DateTimeKind,
    DecimalKind,
    DurationKind,
    MoneyKind,
    RefKind,
    Upload,
    UserKind,
    label_text,
)
from deskbase.objects.kept_objects import kept_object
from deskbase.objects.model import Definitions, TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session
from deskbase.rules.access.identity import ACCOUNTS_KEY, Identity, identity_for_account
from deskbase.rules.access.scopes import AccessDenied, access_rules, decide, hidden_fields
from deskbase.rules.process.timers import clocks_of

MAX_ROWS = 5000            # records one `related` or `query` call gives a template at most
PDF = "application/pdf"
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_UNSAFE_IN_FILENAME = re.compile(r"[^\w.()\- ]+")


class DocumentError(DeskbaseError):
    """A document that could not be made: its template failed, or it cannot be stored."""


# -- compiled definitions ------------------------------------------------------------------

@dataclass(frozen=True)
class Document:
    """One document: the type it is made from, its template, who may make it and where a
    copy is kept. `roles` None: whoever may read the record."""

    name: str
    type: str
    label: Any
    folder: Path                 # the template's folder: what the template and the PDF may read
    template: str                # its file name inside `folder`
    environment: Any = _field(repr=False, compare=False)
    roles: tuple[str, ...] | None = None
    attach_to: str | None = None
    filename: str = "{number}.pdf"

    def title(self, language: str = "en") -> str:
        return label_text(self.label, language, self.name.replace("_", " "))


@dataclass(frozen=True)
class Documents:
    """The compiled `documents:` section, by name and by type (in YAML order)."""

    by_name: Mapping[str, Document] = _field(default_factory=lambda: MappingProxyType({}))

    def of_type(self, type_name: str) -> list[Document]:
        return [document for document in self.by_name.values() if document.type == type_name]


_LABEL = {"type": ["string", "object"], "x-noun": "a label: a text or a map of languages such as {en: Report}"}
_SCHEMA = {
    "type": ["object", "null"],
    "x-noun": "a map of documents",
    "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "a document name in lower_snake_case"},
    "additionalProperties": {
        "type": "object",
        "x-noun": "a document: a map with type, label and template",
        "x-member": "a setting of a document (type, label, template, roles, attach_to, filename)",
        "required": ["type", "template"],
        "properties": {
            "type": {"type": "string", "x-noun": "a type name"},
            "label": _LABEL,
            "template": {"type": "string", "x-noun": "an HTML file beside the definitions, such as documents/report.html"},
            "roles": {"type": "array", "minItems": 1, "items": {"type": "string"}, "x-noun": "a list of role names"},
            "attach_to": {"type": "string", "x-noun": "an attachments field of the type"},
            "filename": {"type": "string", "x-noun": "a file name such as {number}-report.pdf"},
        },
        "additionalProperties": False,
    },
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[Documents, list[DefinitionError]]:
    errors: list[DefinitionError] = []
    environments: dict[Path, SandboxedEnvironment] = {}
    found: dict[str, Document] = {}
    for name, spec in (document.get("documents") or {}).items():
        compiled = _compile_document(name, spec, positions, definitions, environments, errors)
        if compiled is not None:
            found[name] = compiled
    return Documents(MappingProxyType(found)), errors


def _compile_document(name: str, spec: Mapping[str, Any], positions, definitions: Definitions,
                      environments: dict[Path, SandboxedEnvironment], errors: list[DefinitionError]) -> Document | None:
    path = ("documents", name)
    before = len(errors)
    typedef = definitions.types.get(spec["type"])
    if typedef is None:
        errors.append(definition_error(positions, path + ("type",), f"`{spec['type']}` is not a type",
                                       hint_for(spec["type"], definitions.types)))
        return None
    for position, role in enumerate(spec.get("roles") or ()):
        if role not in definitions.roles:
            errors.append(definition_error(positions, path + ("roles", position), f"role `{role}` is not defined "
                                           f"in `roles`", hint_for(role, definitions.roles)))
    attach_to = spec.get("attach_to")
    if attach_to is not None:
        field = typedef.fields.get(attach_to)
        if field is None or not isinstance(field.kind, AttachmentsKind):
            usable = [n for n, f in typedef.fields.items() if isinstance(f.kind, AttachmentsKind)]
            errors.append(definition_error(positions, path + ("attach_to",),
                                           f"`{attach_to}` is not an attachments field of `{typedef.name}`",
                                           hint_for(attach_to, usable) or "declare one: {kind: attachments}"))
    filename = spec.get("filename") or f"{{number}}-{name}.pdf"
    for placeholder in _PLACEHOLDER.findall(filename):
        if placeholder != "number" and placeholder not in typedef.fields:
            errors.append(definition_error(positions, path + ("filename",), f"`{{{placeholder}}}` is neither "
                                           f"{{number}} nor a field of `{typedef.name}`",
                                           hint_for(placeholder, list(typedef.fields) + ["number"])))
    # The template is read beside the YAML file that names it (an overlay's own folder, too).
    base = Path(positions.locate(path + ("template",)).file).parent
    template_path = (base / spec["template"])
    if ".." in Path(spec["template"]).parts or Path(spec["template"]).is_absolute():
        errors.append(definition_error(positions, path + ("template",), f"`{spec['template']}` leaves the "
                                       "definitions folder", "keep templates in a folder beside the YAML files, "
                                       "such as documents/report.html"))
        return None
    if not template_path.is_file():
        errors.append(definition_error(positions, path + ("template",), f"there is no file `{template_path}`",
                                       "write the path from the definitions folder, such as documents/report.html"))
        return None
    folder = template_path.parent.resolve()
    if folder not in environments:
        environments[folder] = _environment(folder)
        errors += _template_errors(environments[folder], folder)
    if len(errors) > before:
        return None
    roles = tuple(spec["roles"]) if spec.get("roles") else None
    return Document(name, typedef.name, spec.get("label"), folder, template_path.name, environments[folder], roles,
                    attach_to, filename)


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, refusing out loud: reaching for Python's insides (`record.__class__`,
    `related.__globals__`) stops the document instead of printing nothing."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"a document may not read `{attribute}` of a {type(obj).__name__}")


def _environment(folder: Path) -> SandboxedEnvironment:
    environment = _Sandbox(loader=FileSystemLoader(str(folder)), autoescape=True, auto_reload=False,
                                       undefined=ChainableUndefined,
                                       finalize=lambda value: "" if value is None else value)
    environment.filters.update(money=_money, duration=_duration, date=_date, datetime=_datetime)
    return environment


def _template_errors(environment: SandboxedEnvironment, folder: Path) -> list[DefinitionError]:
    """Compile every HTML template of a folder (those included by others too): a mistake is
    reported at load, at its file and line, not when someone asks for the document."""
    errors = []
    for name in environment.list_templates(extensions=["html"]):
        try:
            environment.get_template(name)
        except TemplateSyntaxError as error:
            errors.append(DefinitionError(str(folder / name), error.lineno or 1, 1, "documents",
                                          f"the template does not read: {error.message}",
                                          "templates are Jinja2: {{ record.text('field') }}, {% for … %}…{% endfor %}"))
    return errors


DOCUMENTS_SECTION = Section("documents", "top", _SCHEMA, _compile)


def documents(definitions: Definitions) -> Documents:
    """The compiled documents of definitions (none when loaded without the section)."""
    return definitions.extensions.get("documents") or Documents()


def document_named(definitions: Definitions, name: str) -> Document:
    """The document called `name`, or NotFound."""
    found = documents(definitions).by_name.get(name)
    if found is None:
        hint = hint_for(name, documents(definitions).by_name)
        raise NotFound(f"there is no document `{name}`" + (f"; {hint}" if hint else ""))
    return found


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
    reader = _Reader(session, identity, language)
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
    text = _PLACEHOLDER.sub(value, document.filename)
    text = _UNSAFE_IN_FILENAME.sub("-", text).strip(" .-") or document.name
    return text if text.lower().endswith(".pdf") else text + ".pdf"


# -- what a template sees ----------------------------------------------------------------------

class _Reader:
    """The person a document is made for, with what is needed to show values in their words."""

    def __init__(self, session: Session, identity: Identity | None, language: str):
        self.session = session
        self.identity = identity
        self.language = language
        self.definitions = session.definitions
        self.zone = ZoneInfo(session.definitions.zone)
        self.accounts = kept_object(session.connection, ACCOUNTS_KEY) or {}

    def may_read(self, typedef: TypeDef, record: Record) -> bool:
        return bool(decide(self.identity, "read", typedef, record, definitions=self.definitions,
                           context=self.session.context(record.values)))

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

    def __init__(self, reader: _Reader, typedef: TypeDef, record: Record):
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
        if isinstance(kind, UserKind):
            account = reader.accounts.get(str(value))
            return account.name if account is not None and account.name else str(value)
        if isinstance(kind, MoneyKind):
            return _format_money(value, kind.currency, reader.language)
        if isinstance(kind, DurationKind):
            return format_hours(value)
        if isinstance(kind, DateTimeKind):
            return _format_datetime(value, reader.zone, reader.language)
        if isinstance(kind, DateKind):
            return _format_date(value, reader.language)
        if isinstance(kind, DecimalKind):
            return _format_decimal(value, reader.language)
        return kind.text(value, reader.language)


def _context(reader: _Reader, view: RecordView) -> dict[str, Any]:
    session, record = reader.session, view._record
    filter_context = session.context(record.values)

    def query(type_name: str, filter: Any = None, sort: Any = None, limit: int | None = None) -> list[RecordView]:
        """Records of a type the reader may read, matching a filter (`$record.x` is this record)."""
        limit = min(int(limit), MAX_ROWS) if limit is not None else MAX_ROWS
        page = session.query(type_name, _plain(filter) or None, sort, limit=limit, context=filter_context)
        return reader.views(type_name, page.records)

    def related(type_name: str, via: str, sort: Any = None, where: Any = None) -> list[RecordView]:
        """The records of a type whose ref `via` points at this record, as the reader may read them."""
        condition = {via: record.id}
        return query(type_name, {"all": [condition, _plain(where)]} if where else condition, sort)

    def count(type_name: str, filter: Any = None) -> int:
        """How many records of a type the reader may read match a filter (through the indexes)."""
        return session.count(type_name, _plain(filter) or None, context=filter_context)

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

    return {"record": view, "related": related, "query": query, "count": count, "clocks": clocks, "t": t,
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


# -- formatting, in the reader's language --------------------------------------------------------

def format_hours(seconds: Any) -> str:
    """`1h30`, `2h`, `45m`: a duration in seconds (or a timedelta) to the minute."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if seconds is None:
        return ""
    minutes = int(round(float(seconds) / 60))
    sign, minutes = ("-" if minutes < 0 else ""), abs(minutes)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{sign}{hours}h{minutes:02d}"
    return f"{sign}{hours}h" if hours else f"{sign}{minutes}m"


def _locale(language: str) -> str:
    from babel import Locale, UnknownLocaleError
    try:
        Locale.parse(language)
        return language
    except (UnknownLocaleError, ValueError):
        return "en"


def _format_money(value: Any, currency: str, language: str) -> str:
    from babel.numbers import format_currency
    return format_currency(Decimal(str(value)), currency, locale=_locale(language))


def _format_decimal(value: Any, language: str) -> str:
    from babel.numbers import format_decimal
    return format_decimal(Decimal(str(value)), locale=_locale(language))


def _format_date(value: Any, language: str, style: str = "medium") -> str:
    from babel.dates import format_date
    if isinstance(value, datetime):
        value = value.date()
    return format_date(value, style, locale=_locale(language))


def _format_datetime(value: Any, zone: ZoneInfo, language: str, style: str = "medium") -> str:
    from babel.dates import format_date, format_time
    moment = value.astimezone(zone)
    return f"{format_date(moment.date(), style, locale=_locale(language))} {format_time(moment, 'short', locale=_locale(language))}"


def _empty(value: Any) -> bool:
    return value is None or value == "" or isinstance(value, ChainableUndefined)


@pass_context
def _money(context, value: Any, currency: str | None = None) -> str:
    if _empty(value):
        return ""
    settings = context.get("settings") or {}
    return _format_money(value, currency or settings.get("currency") or "EUR", context.get("language") or "en")


@pass_context
def _duration(context, value: Any) -> str:
    return "" if _empty(value) else format_hours(value)


@pass_context
def _date(context, value: Any, style: str = "medium") -> str:
    return "" if _empty(value) else _format_date(value, context.get("language") or "en", style)


@pass_context
def _datetime(context, value: Any, style: str = "medium") -> str:
    if _empty(value):
        return ""
    if not isinstance(value, datetime):
        return _format_date(value, context.get("language") or "en", style)
    return _format_datetime(value, ZoneInfo(context.get("zone") or "UTC"), context.get("language") or "en", style)


# -- the workflow effect `attach_document` ---------------------------------------------------------

def check_effect(spec: Any, definitions: Definitions, positions, path: tuple,
                 typedef: TypeDef) -> tuple[tuple[str, ...], list[DefinitionError]]:
    """The names of `attach_document: NAME` (or a list of names) of a transition of `typedef`,
    checked against the `documents:` written in the definitions."""
    names = (spec,) if isinstance(spec, str) else tuple(spec)
    written = definitions.document.get("documents") or {}
    errors = []
    for position, name in enumerate(names):
        where = path if isinstance(spec, str) else path + (position,)
        entry = written.get(name)
        if not isinstance(entry, Mapping):
            errors.append(definition_error(positions, where, f"`{name}` is not a document of `documents:`",
                                           hint_for(name, written)))
        elif entry.get("type") != typedef.name:
            errors.append(definition_error(positions, where, f"`{name}` is made from {entry.get('type')} records, "
                                           f"not from {typedef.name} records"))
        elif not entry.get("attach_to"):
            errors.append(definition_error(positions, where, f"`{name}` has no `attach_to` field to keep it in",
                                           "add `attach_to: <an attachments field>` to the document"))
    return names, errors


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


EFFECT_SCHEMA: Mapping[str, Any] = {
    "type": ["string", "array"], "items": {"type": "string", "x-noun": "a document name"}, "minItems": 1,
    "x-noun": "a document name (or a list of them) whose PDF is kept in its `attach_to` field"}

