"""Field kinds: how a value of each kind is coerced from form strings and JSON, stored,
compared in indexes and filters (its *key*), and written out as JSON.

Every kind is a frozen dataclass holding the options of one field. `coerce` raises
`FieldError` with a sentence; `key` gives the value used by indexes, sorting and both
filter evaluators, so that they agree by construction.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from .errors import FieldError, hint_for

Lookup = Callable[[str, str], int]
"""Turns (type name, record number such as `ORG-0003`) into a record id, or raises FieldError."""

UTC = timezone.utc
TRUE_WORDS = {"true", "yes", "on", "1", "y", "oui", "ano"}
FALSE_WORDS = {"false", "no", "off", "0", "n", "non", "ne"}


def label_text(label: Any, language: str = "en", fallback: str = "") -> str:
    """The text of a label in a language: labels are a string or a map of languages."""
    if label is None:
        return fallback
    if isinstance(label, str):
        return label
    if isinstance(label, Mapping):
        return label.get(language) or label.get("en") or next(iter(label.values()), fallback)
    return str(label)


def _short(raw: Any) -> str:
    """A value as a message quotes it: its first 40 characters."""
    text = str(raw)
    return text if len(text) <= 40 else text[:40] + "…"


def _shortened(message: str) -> str:
    """A message whose quoted values and long words are cut to their first 40 characters."""
    message = re.sub(r"`([^`]{41,})`", lambda m: f"`{m.group(1)[:40]}…`", message)
    return re.sub(r"[^\s`]{41,}", lambda m: m.group()[:40] + "…", message)[:300]


# The ranges every value of a kind keeps to, whatever its own bounds: what people and the
# engine's arithmetic (time zones, sums, indexes) handle.
MAX_DIGITS = 15                     # before the decimal point
YEARS = (1900, 2999)
MAX_DURATION = 100_000 * 3600       # 100,000 hours, 11 years


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip() == "")


@dataclass(frozen=True)
class Kind:
    """Base of all field kinds. Subclasses set `name` and override what differs."""

    name: ClassVar[str] = ""
    multiple: ClassVar[bool] = False   # the value is a tuple of items (keyword-indexable)
    sortable: ClassVar[bool] = True
    writable: ClassVar[bool] = True

    def coerce(self, raw: Any, lookup: Lookup | None = None) -> Any:
        """A stored value from a form string, JSON value or Python value; None for blank."""
        if _blank(raw):
            return self.empty()
        try:
            return self._coerce(raw, lookup)
        except FieldError as refused:
            if len(str(refused)) > 200:                         # quoting a huge value would drown the reason
                raise FieldError(_shortened(str(refused))) from None
            raise
        except (ArithmeticError, ValueError, RecursionError):   # what no rule below foresaw: a sentence still
            raise FieldError(f"`{_short(raw)}` cannot be read as a {self.name} value") from None

    def empty(self) -> Any:
        return () if self.multiple else None

    def _coerce(self, raw: Any, lookup: Lookup | None) -> Any:
        raise NotImplementedError

    def key(self, value: Any) -> Any:
        """The comparable value used by indexes and filters; None for an empty value."""
        if value is None:
            return None
        if self.multiple:
            return tuple(self._key(item) for item in value)
        return self._key(value)

    def _key(self, value: Any) -> Any:
        return value

    def to_json(self, value: Any) -> Any:
        """A JSON-ready form of a stored value."""
        if value is None:
            return None
        if self.multiple:
            return [self._json(item) for item in value]
        return self._json(value)

    def _json(self, value: Any) -> Any:
        return value

    def text(self, value: Any, language: str = "en") -> str:
        """A short human form of a stored value, for tables and history."""
        if value is None or value == ():
            return ""
        if self.multiple:
            return ", ".join(str(self._json(item)) for item in value)
        return str(self._json(value))


@dataclass(frozen=True)
class StringKind(Kind):
    name: ClassVar[str] = "string"
    max_length: int = 255
    pattern: str | None = None

    def _coerce(self, raw, lookup):
        if not isinstance(raw, (str, int, float, Decimal)) or isinstance(raw, bool):
            raise FieldError(f"expected text, got {type(raw).__name__}")
        value = str(raw).strip()
        if "\n" in value and self.name == "string":
            value = " ".join(value.split())
        if len(value) > self.max_length:
            raise FieldError(f"is {len(value)} characters long; at most {self.max_length} are allowed")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise FieldError(f"`{value}` does not have the expected form ({self.pattern})")
        return value


@dataclass(frozen=True)
class TextKind(StringKind):
    name: ClassVar[str] = "text"
    max_length: int = 1_000_000
    sortable: ClassVar[bool] = False

    def _coerce(self, raw, lookup):
        if not isinstance(raw, str):
            raise FieldError(f"expected text, got {type(raw).__name__}")
        value = raw.replace("\r\n", "\n").strip()
        if len(value) > self.max_length:
            raise FieldError(f"is {len(value)} characters long; at most {self.max_length} are allowed")
        return value


def _check_bounds(value, minimum, maximum, shown=None):
    shown = shown if shown is not None else value
    if minimum is not None and value < minimum:
        raise FieldError(f"{shown} is below the minimum of {minimum}")
    if maximum is not None and value > maximum:
        raise FieldError(f"{shown} is above the maximum of {maximum}")
    return value


@dataclass(frozen=True)
class IntegerKind(Kind):
    name: ClassVar[str] = "integer"
    minimum: int | None = None
    maximum: int | None = None

    def _coerce(self, raw, lookup):
        if isinstance(raw, bool):
            raise FieldError("expected a whole number, got true/false")
        try:
            if isinstance(raw, (int, Decimal)) or (isinstance(raw, float) and raw.is_integer()):
                number = int(raw)
                if number != raw:
                    raise ValueError
            else:
                number = int(str(raw).strip().replace(" ", "").replace("_", ""))
        except (TypeError, ValueError):
            raise FieldError(f"`{raw}` is not a whole number") from None
        return _check_bounds(number, self.minimum, self.maximum)


@dataclass(frozen=True)
class DecimalKind(Kind):
    name: ClassVar[str] = "decimal"
    places: int = 2
    minimum: Decimal | None = None
    maximum: Decimal | None = None

    def _coerce(self, raw, lookup):
        if isinstance(raw, bool):
            raise FieldError("expected a number, got true/false")
        text = str(raw).strip().replace(" ", "").replace("\u00a0", "")
        if isinstance(raw, str) and "," in text and "." not in text:
            text = text.replace(",", ".")   # 12,50 as written in French, Czech, Portuguese, Croatian
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise FieldError(f"`{_short(raw)}` is not a number") from None
        if not number.is_finite():
            raise FieldError(f"`{_short(raw)}` is not a number")
        if number and number.adjusted() >= MAX_DIGITS:
            raise FieldError(f"`{_short(raw)}` is too large: at most {MAX_DIGITS} digits before the decimal point")
        quantum = Decimal(1).scaleb(-self.places)
        rounded = number.quantize(quantum)
        if rounded != number:
            raise FieldError(f"{raw} has more than {self.places} decimal places")
        return _check_bounds(rounded, self.minimum, self.maximum)

    def _json(self, value):
        return str(value)


@dataclass(frozen=True)
class MoneyKind(DecimalKind):
    name: ClassVar[str] = "money"
    currency: str = "EUR"

    def text(self, value, language="en"):
        return "" if value is None else f"{value} {self.currency}"


@dataclass(frozen=True)
class BooleanKind(Kind):
    name: ClassVar[str] = "boolean"

    def _coerce(self, raw, lookup):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        word = str(raw).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise FieldError(f"`{raw}` is not yes or no")

    def _key(self, value):
        return int(value)


@dataclass(frozen=True)
class DateKind(Kind):
    name: ClassVar[str] = "date"

    def _coerce(self, raw, lookup):
        if isinstance(raw, datetime):
            return _in_years(raw.date(), raw)
        if isinstance(raw, date):
            return _in_years(raw, raw)
        text = str(raw).strip()
        for pattern in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"):
            try:
                return _in_years(datetime.strptime(text, pattern).date(), raw)
            except ValueError:
                continue
        raise FieldError(f"`{_short(raw)}` is not a date (write it as 2026-11-24)")

    def _json(self, value):
        return value.isoformat()


def _in_years(moment: Any, raw: Any) -> Any:
    if not YEARS[0] <= moment.year <= YEARS[1]:
        raise FieldError(f"`{_short(raw)}` is out of range: a year from {YEARS[0]} to {YEARS[1]}")
    return moment


@dataclass(frozen=True)
class DateTimeKind(Kind):
    """Aware datetimes, stored in UTC; a time without offset is read in the field's time zone."""

    name: ClassVar[str] = "datetime"
    zone: str = "UTC"

    def _coerce(self, raw, lookup):
        if isinstance(raw, datetime):
            moment = raw
        elif isinstance(raw, date):
            moment = datetime(raw.year, raw.month, raw.day)
        else:
            text = str(raw).strip().replace(" ", "T", 1)
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise FieldError(f"`{_short(raw)}` is not a date and time (write it as 2026-11-24 14:30)") from None
        _in_years(moment, raw)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(self.zone))
        return moment.astimezone(UTC)

    def _json(self, value):
        return value.isoformat()

    def text(self, value, language="en"):
        if value is None:
            return ""
        return value.astimezone(ZoneInfo(self.zone)).strftime("%Y-%m-%d %H:%M")


_DURATION_PART = re.compile(r"(\d+(?:[.,]\d+)?)\s*(d|h|m|min|s)", re.I)


def parse_duration(raw: Any) -> int:
    """Seconds from `1h30`, `1h 30m`, `1:30`, `90m`, `45s`, `PT1H30M`, a timedelta or a number of
    minutes; `-` in front for less than nothing (fields refuse it unless their minimum allows)."""
    if isinstance(raw, timedelta):
        return int(raw.total_seconds())
    if isinstance(raw, bool):
        raise FieldError("expected a duration such as 1h30 or 45m, got true/false")
    if isinstance(raw, (int, float, Decimal)):
        return int(round(float(raw) * 60))
    text = str(raw).strip().lower()
    if text.startswith("-") and len(text) > 1:     # a correction: a field whose minimum allows it
        return -parse_duration(text[1:])
    if re.fullmatch(r"\d+(?:[.,]\d+)?", text):
        return int(round(float(text.replace(",", ".")) * 60))
    match = re.fullmatch(r"(\d+):(\d{1,2})(?::(\d{1,2}))?", text)
    if match:
        hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return hours * 3600 + minutes * 60 + seconds
    iso = re.fullmatch(r"p(?:(\d+)d)?(?:t(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?)?", text)
    if iso and text != "p":
        days, hours, minutes, seconds = (int(g or 0) for g in iso.groups())
        return days * 86400 + hours * 3600 + minutes * 60 + seconds
    compact = re.fullmatch(r"(\d+)h(\d{1,2})", text)
    if compact:
        return int(compact.group(1)) * 3600 + int(compact.group(2)) * 60
    parts = _DURATION_PART.findall(text)
    if parts and _DURATION_PART.sub("", text).strip() == "":
        unit_seconds = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1}
        return int(round(sum(float(n.replace(",", ".")) * unit_seconds[u] for n, u in parts)))
    raise FieldError(f"`{_short(raw)}` is not a duration (write it as 1h30, 45m or 1:30)")


def format_duration(seconds: int) -> str:
    """`1h30m` style text for a number of seconds."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return sign + ("".join(parts) or "0m")


@dataclass(frozen=True)
class DurationKind(Kind):
    """Durations stored as whole seconds; a bare number given by a person means minutes."""

    name: ClassVar[str] = "duration"
    minimum: int | None = 0
    maximum: int | None = None

    def _coerce(self, raw, lookup):
        seconds = parse_duration(raw)
        if abs(seconds) > MAX_DURATION:
            raise FieldError(f"`{_short(raw)}` is too long: at most {MAX_DURATION // 3600:,}h")
        return _check_bounds(seconds, self.minimum, self.maximum, format_duration(seconds))

    def text(self, value, language="en"):
        return "" if value is None else format_duration(value)


@dataclass(frozen=True)
class EnumKind(Kind):
    """A value from an ordered list; the key is the position, so sorting follows the list."""

    name: ClassVar[str] = "enum"
    values: tuple[str, ...] = ()
    labels: Mapping[str, Any] = field(default_factory=dict)

    def _coerce(self, raw, lookup):
        text = str(raw).strip()
        if text in self.values:
            return text
        folded = text.casefold()
        for value in self.values:
            if value.casefold() == folded:
                return value
            label = self.labels.get(value)
            texts = label.values() if isinstance(label, Mapping) else [label]
            if any(isinstance(t, str) and t.casefold() == folded for t in texts):
                return value
        hint = hint_for(text, self.values)
        allowed = ", ".join(self.values)
        raise FieldError(f"`{text}` is not one of {allowed}" + (f"; {hint}" if hint else ""))

    def _key(self, value):
        try:
            return self.values.index(value)
        except ValueError:   # a value removed from the list by a later definition: sorts last
            return len(self.values)

    def text(self, value, language="en"):
        return "" if value is None else label_text(self.labels.get(value), language, value)


def _record_id(raw: Any, target: str, lookup: Lookup | None) -> int:
    if isinstance(raw, bool):
        raise FieldError(f"expected a {target}, got true/false")
    if isinstance(raw, int):
        return raw
    record_id = getattr(raw, "id", None)
    if isinstance(record_id, int):
        return record_id
    text = str(raw).strip()
    if text.isdigit():
        return int(text)
    if lookup is None:
        raise FieldError(f"`{text}` is not a {target} id")
    return lookup(target, text)


@dataclass(frozen=True)
class RefKind(Kind):
    """A reference to one record of another type, optionally limited by a `where` filter."""

    name: ClassVar[str] = "ref"
    to: str = ""
    where: Any = None   # a filter over the target type; may use $record.<field> of the edited record

    def _coerce(self, raw, lookup):
        return _record_id(raw, self.to, lookup)


@dataclass(frozen=True)
class RefsKind(RefKind):
    name: ClassVar[str] = "refs"
    multiple: ClassVar[bool] = True
    sortable: ClassVar[bool] = False

    def _coerce(self, raw, lookup):
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple, set, frozenset)):
            items = [items]
        ids = []
        for item in items:
            if _blank(item):
                continue
            record_id = _record_id(item, self.to, lookup)
            if record_id not in ids:
                ids.append(record_id)
        return tuple(ids)


@dataclass(frozen=True)
class TagsKind(Kind):
    name: ClassVar[str] = "tags"
    multiple: ClassVar[bool] = True
    sortable: ClassVar[bool] = False

    def _coerce(self, raw, lookup):
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise FieldError("expected a list of words")
        tags = []
        for item in items:
            tag = str(item).strip()
            if tag and tag not in tags:
                tags.append(tag)
        return tuple(tags)


def _login(raw: Any) -> str:
    login = str(getattr(raw, "login", raw)).strip()
    if not re.fullmatch(r"[^\s,;]{1,200}", login):
        raise FieldError(f"`{login}` is not a user login")
    return login


@dataclass(frozen=True)
class UserKind(Kind):
    """A user account, stored by its login name."""

    name: ClassVar[str] = "user"

    def _coerce(self, raw, lookup):
        return _login(raw)


@dataclass(frozen=True)
class UsersKind(Kind):
    """Several user accounts (the people who follow a record, say), stored by their logins
    in the order given, each once; written as a list or as logins separated by commas."""

    name: ClassVar[str] = "users"
    multiple: ClassVar[bool] = True
    sortable: ClassVar[bool] = False

    def _coerce(self, raw, lookup):
        items = re.split(r"[,;\s]+", raw) if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple, set, frozenset)):
            items = [items]
        return tuple(dict.fromkeys(_login(item) for item in items if not _blank(item)))


# Characters a file name never keeps: controls (C0, DEL, C1), the marks that reorder text
# ("photo\u202Egnp.exe" shows as "photoexe.png") and path separators.
_UNSAFE_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069/\\\\]+")


def safe_filename(name: Any) -> str:
    """A file name as it may be shown, stored and sent: one line, no control or reordering
    characters, no folders, at most 200 characters (the end, with its extension, kept)."""
    name = _UNSAFE_IN_NAMES.sub("_", " ".join(str(name or "").split())).strip(". _") or "attachment"
    return name[-200:]


@dataclass(frozen=True)
class Upload:
    """A file offered to an attachments field, before it is stored as a blob; its name is
    made safe (`safe_filename`) whoever sent it."""

    filename: str
    content: bytes
    content_type: str = "application/octet-stream"

    def __post_init__(self) -> None:
        object.__setattr__(self, "filename", safe_filename(self.filename))


@dataclass(frozen=True)
class AttachmentsKind(Kind):
    """Files kept as ZODB blobs; new uploads are added, existing ones are kept."""

    name: ClassVar[str] = "attachments"
    multiple: ClassVar[bool] = True
    sortable: ClassVar[bool] = False
    max_size: int = 20 * 1024 * 1024
    accept: tuple[str, ...] = ()   # content types (`image/*`) or extensions (`.pdf`); empty: any

    def _coerce(self, raw, lookup):
        items = raw if isinstance(raw, (list, tuple)) else [raw]
        uploads = []
        for item in items:
            if not isinstance(item, Upload):
                if getattr(item, "blob_id", None) is not None:   # an attachment already stored
                    uploads.append(item)
                    continue
                raise FieldError("expected uploaded files")
            if len(item.content) > self.max_size:
                raise FieldError(
                    f"{item.filename} is {len(item.content) // 1024} KiB; "
                    f"files up to {self.max_size // 1024} KiB are accepted")
            if self.accept and not _accepted(item, self.accept):
                raise FieldError(f"{item.filename} is not an accepted kind of file ({', '.join(self.accept)})")
            uploads.append(item)
        return tuple(uploads)

    def key(self, value):
        return None

    def _json(self, value):
        return {"filename": value.filename, "content_type": value.content_type,
                "size": getattr(value, "size", len(getattr(value, "content", b"")))}

    def text(self, value, language="en"):
        return ", ".join(item.filename for item in value or ())


def _accepted(upload: Upload, accept: tuple[str, ...]) -> bool:
    name = upload.filename.lower()
    kind = upload.content_type.lower()
    for pattern in accept:
        pattern = pattern.lower()
        if pattern.startswith(".") and name.endswith(pattern):
            return True
        if pattern.endswith("/*") and kind.startswith(pattern[:-1]):
            return True
        if pattern == kind:
            return True
    return False


@dataclass(frozen=True)
class ComputedKind(Kind):
    """A value the engine computes: an expression over the record, or an aggregate over
    related records. Stored on write so it can be indexed and sorted; never set by hand."""

    name: ClassVar[str] = "computed"
    writable: ClassVar[bool] = False
    result: Kind = field(default_factory=StringKind)
    expression: str | None = None
    aggregate: Mapping[str, Any] | None = None   # {function, of, via, field, where}

    def _coerce(self, raw, lookup):
        return self.result.coerce(raw, lookup)

    def key(self, value):
        return self.result.key(value)

    def to_json(self, value):
        return self.result.to_json(value)

    def text(self, value, language="en"):
        return self.result.text(value, language)


@dataclass(frozen=True)
class SequenceKind(Kind):
    """A number the engine gives a record once and never takes back, without gaps:
    `format` such as `INV-{year}-{seq:05d}`, counted for ever or again each year (`per:
    year`), given when the record first matches `assigned_when` (at creation without it).
    The counter moves in the transaction that gives the number, so a write that fails gives
    none away; a record holding one cannot be deleted."""

    name: ClassVar[str] = "sequence"
    writable: ClassVar[bool] = False
    format: str = "{seq}"
    per: str | None = None                  # "year", or None: one count for ever
    assigned_when: Any = None               # a filter on the record

    def _coerce(self, raw, lookup):
        return str(raw)

    def render(self, seq: int, year: int) -> str:
        return self.format.format(seq=seq, year=year)


KINDS: Mapping[str, type[Kind]] = MappingProxyType({
    kind.name: kind for kind in (
        StringKind, TextKind, IntegerKind, DecimalKind, MoneyKind, BooleanKind, DateKind,
        DateTimeKind, DurationKind, EnumKind, RefKind, RefsKind, TagsKind, UserKind, UsersKind,
        AttachmentsKind, ComputedKind, SequenceKind)
})
