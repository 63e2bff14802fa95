"""Snippets: texts kept as records (reply templates, say) that a person inserts into a text
field while writing an entry on a record, their placeholders filled from that record as the
person may read it. The text field declares them:

    body: {kind: text, snippets: {type: reply_template, via: order, text: body,
                                  copy: {visibility: visibility}, where: {topic: $record.topic}}}

`where` reads the record the entry is written on as `$record`; the placeholders see it by the
name of the ref (`{{ order.number }}`, `{{ order.text("customer") }}`,
`{{ order.ref("customer").name }}`) and the writer as `me` (`{{ me.name }}`). A value the
person may not read fills in as nothing, as in documents."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from deskbase.objects.errors import DeskbaseError, NotFound, ValidationError
from deskbase.objects.model import FieldDef, TypeDef
from deskbase.objects.records import Record
from deskbase.objects.session import Session
from deskbase.rules.access.identity import Identity

from .making import Reader, RecordView

MAX_OFFERED = 200          # snippets offered in one list at most
_TEMPLATES = SandboxedEnvironment(autoescape=False, finalize=lambda value: "" if value is None else value)


class SnippetError(DeskbaseError):
    """A snippet that cannot be inserted; the message says why."""


@dataclass(frozen=True)
class Filled:
    """An inserted snippet: the text, and the values of the entry's fields it sets (`copy`)."""

    text: str
    values: Mapping[str, Any]


def snippet_fields(typedef: TypeDef, target: str) -> list[FieldDef]:
    """The text fields of an entry type that offer snippets when written on a `target` record."""
    return [field for field in typedef.fields.values()
            if field.snippets is not None and typedef.fields[field.snippets["via"]].kind.to == target]


def check_texts(session: Session, action: str, typedef: TypeDef, record: Record | None,
                values: Mapping[str, Any]) -> None:
    """The write-path check: a text kept to be inserted somewhere must have placeholders that
    read, so that a mistake is told to whoever writes it, not to whoever inserts it."""
    if action == "delete":
        return
    problems = {}
    for name in session.definitions.snippet_texts.get(typedef.name, ()):
        text = values.get(name)
        if not isinstance(text, str):
            continue
        try:
            _TEMPLATES.parse(text)
        except TemplateSyntaxError as error:
            problems[name] = f"its placeholders do not read: {error.message} (line {error.lineno})"
    if problems:
        raise ValidationError(typedef.name, problems, typedef.title())


def offered(session: Session, typedef: TypeDef, field: FieldDef, record: Record) -> list[Record]:
    """The snippets the session's person may read for an entry written on `record`, by title."""
    spec = field.snippets
    source = session.definitions.type(spec["type"])
    page = session.query(source.name, spec.get("where"), source.title_field or "id", limit=MAX_OFFERED,
                         context=session.context(record.values), record_type=record.type_name)
    return list(page.records)


def fill(session: Session, identity: Identity, typedef: TypeDef, field: FieldDef, record: Record,
         snippet_id: Any, language: str) -> Filled:
    """The text of one offered snippet with its placeholders filled from `record` as `identity`
    reads it; SnippetError when it is not offered to them or its placeholders are wrong."""
    spec = field.snippets
    source = session.definitions.type(spec["type"])
    try:
        wanted = int(snippet_id)
    except (TypeError, ValueError):
        raise SnippetError(f"`{snippet_id}` is not a {source.title(language)}") from None
    snippet = next((found for found in offered(session, typedef, field, record) if found.id == wanted), None)
    if snippet is None:
        raise SnippetError(f"there is no {source.title(language)} {source.number(wanted)} for {record.number}")
    reader = Reader(session, identity, language)
    parent = RecordView(reader, session.definitions.type(record.type_name), record)
    me = {"login": identity.id, "name": identity.name or identity.id}
    text = str(snippet.get(spec["text"]) or "")
    try:
        filled = _TEMPLATES.from_string(text).render({spec["via"]: parent, "me": me}).strip()
    except (TemplateError, NotFound) as error:
        raise SnippetError(f"{snippet.number} ({snippet.get(source.title_field) if source.title_field else ''}) "
                           f"cannot be filled in: {error}. A person who keeps these texts can correct it.") from None
    values = {mine: snippet.get(theirs) for mine, theirs in (spec.get("copy") or {}).items()
              if snippet.get(theirs) not in (None, (), "")}
    return Filled(filled, values)
