"""Values in a document, formatted in the reader's language: money, decimals, dates and
times in the definitions' zone, durations in hours; and the template filters doing it."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChainableUndefined, pass_context


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


@lru_cache(maxsize=64)
def _locale(language: str) -> Any:
    """The Babel locale of a language (English when Babel knows it not), parsed once: a list
    page formats a few dozen values, each parse would cost more than the formatting."""
    from babel import Locale, UnknownLocaleError
    try:
        return Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def money_text(value: Any, currency: str, language: str) -> str:
    from babel.numbers import format_currency
    return format_currency(Decimal(str(value)), currency, locale=_locale(language))


def decimal_text(value: Any, language: str) -> str:
    from babel.numbers import format_decimal
    return format_decimal(Decimal(str(value)), locale=_locale(language))


def date_text(value: Any, language: str, style: str = "medium") -> str:
    from babel.dates import format_date
    if isinstance(value, datetime):
        value = value.date()
    return format_date(value, style, locale=_locale(language))


def datetime_text(value: Any, zone: ZoneInfo, language: str, style: str = "medium") -> str:
    from babel.dates import format_date, format_time
    moment = value.astimezone(zone)
    return f"{format_date(moment.date(), style, locale=_locale(language))} {format_time(moment, 'short', locale=_locale(language))}"


def plain_text(kind: Any, value: Any, zone: ZoneInfo, language: str) -> str:
    """A value of a field kind that names no other record nor person, as a reader in
    `language` reads it: money, decimals, durations as 1h30, dates, times in `zone`; other
    kinds by their own text (enum labels…)."""
    from deskbase.objects.fields import DateKind, DateTimeKind, DecimalKind, DurationKind, MoneyKind
    if isinstance(kind, MoneyKind):
        return money_text(value, kind.currency, language)
    if isinstance(kind, DurationKind):
        return format_hours(value)
    if isinstance(kind, DateTimeKind) and isinstance(value, datetime):
        return datetime_text(value, zone, language)
    if isinstance(kind, DateKind):
        return date_text(value, language)
    if isinstance(kind, DecimalKind):
        return decimal_text(value, language)
    return kind.text(value, language)


def _empty(value: Any) -> bool:
    return value is None or value == "" or isinstance(value, ChainableUndefined)


@pass_context
def _money(context, value: Any, currency: str | None = None) -> str:
    if _empty(value):
        return ""
    settings = context.get("settings") or {}
    return money_text(value, currency or settings.get("currency") or "EUR", context.get("language") or "en")


@pass_context
def _duration(context, value: Any) -> str:
    return "" if _empty(value) else format_hours(value)


@pass_context
def _date(context, value: Any, style: str = "medium") -> str:
    return "" if _empty(value) else date_text(value, context.get("language") or "en", style)


@pass_context
def _datetime(context, value: Any, style: str = "medium") -> str:
    if _empty(value):
        return ""
    if not isinstance(value, datetime):
        return date_text(value, context.get("language") or "en", style)
    return datetime_text(value, ZoneInfo(context.get("zone") or "UTC"), context.get("language") or "en", style)


# The filters a document's template may use: {{ record.amount | money }}, {{ at | datetime }}.
TEMPLATE_FILTERS = {"money": _money, "duration": _duration, "date": _date, "datetime": _datetime}


SKELETONS = {"day": "MMMd", "week": "MMMd", "month": "MMMyyyy", "quarter": "QQQyyyy"}


@lru_cache(maxsize=4096)          # a chart names the same periods page after page
def period_text(start: Any, every: str, language: str, *, short: bool = False) -> str:
    """A period as its first day names it in the reader's language (`Nov 2026`, `Q4 2026`,
    `Nov 16` for a week); `short`, under a column: the month and two digits of the year."""
    from babel.dates import format_date, format_skeleton
    if every == "year":
        return str(start.year)
    if short and every == "month":
        return f"{format_date(start, 'LLL', locale=_locale(language)).rstrip('.')} {start.year % 100:02d}"
    return format_skeleton(SKELETONS[every], start, locale=_locale(language))
