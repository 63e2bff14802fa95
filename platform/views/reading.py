"""Values as one person reads them: the titles of the records refs point at (a link only
where the reader may open the record), enum labels, people's names, durations as 1h30,
money, dates and times in the definitions' zone and the reader's language, file names. The
record page's fields and its history both go through here, so that nobody reads an id, a
code, a number of seconds or an ISO timestamp."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from deskbase.objects.fields import (
    AttachmentsKind,
    BooleanKind,
    ComputedKind,
    DateKind,
    DateTimeKind,
    DecimalKind,
    RefKind,
    UserKind,
    UsersKind,
)
from deskbase.objects.model import TypeDef
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import may_read
from deskbase.rules.documents.formatting import datetime_text, plain_text
from deskbase.rules.documents.making import Reader

from .display import moment_of
from .i18n import plural_translator, translator


@dataclass(frozen=True)
class Piece:
    """A part of a value as shown: its text, and where it leads when the reader may go there."""

    text: str
    url: str | None = None
    moment: str | None = None      # a time's ISO form, for the page to show it in the reader's own zone


class Reading(Reader):
    """How values read for one person, within one request (the reader of documents, with
    the words of the pages)."""

    def __init__(self, session, identity: Identity | None, language: str):
        super().__init__(session, identity, language)
        self.t = translator(language)
        self.tn = plural_translator(language)

    def person(self, login: Any) -> str:
        """A person's name from their login (the login when there is no such account)."""
        if login in (None, ""):
            return ""
        account = self.accounts.get(str(login))
        return account.name if account is not None and account.name else str(login)

    def moment(self, value: datetime) -> str:
        return datetime_text(value, self.zone, self.language)

    def pieces(self, typedef: TypeDef, name: str, value: Any) -> list[Piece]:
        """A stored value of a field, as the reader reads it; an empty value: nothing."""
        field = typedef.fields.get(name)
        if value is None or value == () or value == "" or field is None:
            return []
        kind = field.kind.result if isinstance(field.kind, ComputedKind) else field.kind
        if isinstance(kind, RefKind):
            ids = value if isinstance(value, tuple) else (value,)
            return [self._record(kind.to, record_id) for record_id in ids]
        if isinstance(kind, (UserKind, UsersKind)):
            logins = value if isinstance(value, tuple) else (value,)
            return [Piece(self.person(login)) for login in logins]
        if isinstance(kind, AttachmentsKind):
            return [Piece(getattr(item, "filename", None) or str(item.get("filename", "")) if isinstance(item, dict)
                          else item.filename) for item in value]
        return [Piece(self._plain(kind, value), moment=moment_of(value))]

    def text(self, typedef: TypeDef, name: str, value: Any) -> str:
        return ", ".join(piece.text for piece in self.pieces(typedef, name, value))

    def _plain(self, kind, value: Any) -> str:
        if isinstance(kind, BooleanKind):
            return self.t("Yes") if value else self.t("No")
        return plain_text(kind, value, self.zone, self.language)

    def _record(self, type_name: str, record_id: int) -> Piece:
        typedef = self.definitions.type(type_name)
        target = self.session.container(type_name).records.get(record_id)
        if target is None:
            return Piece(typedef.number(record_id))
        if not may_read(self.session, self.identity, typedef, target):
            return Piece(target.number)                 # its title is its content: not theirs to read
        title = target.get(typedef.title_field) if typedef.title_field else None
        return Piece(str(title) if title not in (None, "") else target.number, f"/r/{target.number}")

    def from_history(self, typedef: TypeDef, name: str, value: Any) -> Any:
        """A value as the history keeps it (its JSON form) back as the field stores it."""
        field = typedef.fields.get(name)
        if field is None or value is None:
            return value
        kind = field.kind.result if isinstance(field.kind, ComputedKind) else field.kind
        try:
            if isinstance(kind, DateTimeKind) and isinstance(value, str):
                return datetime.fromisoformat(value)
            if isinstance(kind, DateKind) and isinstance(value, str):
                return date.fromisoformat(value[:10])
            if isinstance(kind, DecimalKind) and isinstance(value, (str, int, float)):
                return Decimal(str(value))
        except (ValueError, InvalidOperation):
            return value
        if isinstance(value, list):
            return tuple(value)
        return value
