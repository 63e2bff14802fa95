"""Business calendars: working hours per weekday, holidays and exceptions in one time zone,
and arithmetic in business time, so that timers count only the hours worked
(docs/definitions.md, "Calendars and timers").
"""
from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from deskbase.objects.compiling import Section, definition_error
from deskbase.objects.errors import DeskbaseError, did_you_mean, hint_for
from deskbase.objects.sourcemap import parse_path

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MICROSECOND = timedelta(microseconds=1)
DAY = 86_400_000_000                       # microseconds; all arithmetic below is in whole microseconds
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFINITION_KEYS = ("timezone", "hours", "holidays", "exceptions")
HOLIDAY_KEYS = ("country", "subdivision", "add", "remove")
NAMES_CHECKED = range(2020, 2041)          # the years a holiday removed by name must occur in at least once

Interval = tuple[time, time]
"""Local start and end of a working period; an end of 00:00 means midnight ending the day (24:00)."""
Intervals = tuple[Interval, ...]
Holiday = date | tuple[int, int]
"""A one-off date, or a (month, day) pair that recurs every year."""
Removed = date | tuple[int, int] | str
"""A public holiday worked all the same: its date, its yearly day, or its name (in lower case)."""

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_INTERVAL = re.compile(r"\s*(\S+?)\s*[-–]\s*(\S+?)\s*")
_YEARLY = re.compile(r"(\d{1,2})-(\d{1,2})")


class CalendarError(DeskbaseError, ValueError):
    """A calendar that cannot be built, or a question it cannot answer; the message is a sentence."""

    def __init__(self, message: str, path: str = "", hint: str | None = None):
        self.message, self.path, self.hint = message, path, hint
        text = f"{path}: {message}" if path else message
        super().__init__(f"{text}; {hint}" if hint else text)


@dataclass(frozen=True)
class BusinessCalendar:
    """When work happens: intervals per weekday, closed dates and dated exceptions, in `zone`.

    Precedence on a date: its exception if it has one, else closed if it is a holiday, else the
    weekday's hours. Holidays are the dates and yearly days listed, and, with a `country` (and
    its `subdivision`), that country's public holidays of every year as the maintained
    `holidays` package knows them, less those `removed` (by date, yearly day or name). An interval opens the first time the local clock reaches its start and
    closes the first time the clock reaches its end; what it counts is the real time between.
    So on the night clocks go forward, 01:00–04:00 lasts two hours and a start that the clock
    skips (02:30 in Paris) opens at the jump; on the night they go back, 01:00–04:00 lasts four
    hours, and a start or end inside the repeated hour means its first occurrence. Holidays and
    exceptions are local dates.
    """

    zone: str
    hours: tuple[Intervals, ...]                              # Monday first, seven entries
    holidays: frozenset[Holiday] = frozenset()
    exceptions: tuple[tuple[date, Intervals], ...] = ()      # (date, its own intervals), by date
    country: str | None = None                               # ISO 3166 code whose public holidays close
    subdivision: str | None = None                           # its region, as the `holidays` package names it
    removed: frozenset[Removed] = frozenset()                # public holidays worked all the same
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)
    _week: tuple[tuple[tuple[int, int], ...], ...] = field(init=False, repr=False, compare=False)
    _week_length: int = field(init=False, repr=False, compare=False)
    _dated: dict[int, tuple[tuple[int, int], ...]] = field(init=False, repr=False, compare=False)
    _closed: frozenset[int] = field(init=False, repr=False, compare=False)
    _yearly: frozenset[tuple[int, int]] = field(init=False, repr=False, compare=False)
    _last_opening: int | None = field(init=False, repr=False, compare=False)
    _years: dict[int, _Year] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tz = _zone(self.zone)
        if isinstance(self.hours, Mapping) or len(self.hours) != 7:
            raise CalendarError("give the hours of all seven days, Monday first", "hours")
        hours = tuple(_intervals(day, f"hours.{WEEKDAYS[i]}") for i, day in enumerate(self.hours))
        holidays = frozenset(_holiday(h) for h in self.holidays)
        pairs = self.exceptions.items() if isinstance(self.exceptions, Mapping) else self.exceptions
        exceptions: dict[date, Intervals] = {}
        for day, intervals in pairs:
            if not isinstance(day, date) or isinstance(day, datetime):
                raise CalendarError(f"{day!r} is not a date", "exceptions")
            if day in exceptions:
                raise CalendarError(f"{day} has two sets of hours", "exceptions")
            if day in holidays:
                raise CalendarError(f"{day} is both a holiday and an exception; keep one", "exceptions")
            exceptions[day] = _intervals(intervals, f"exceptions.{day}")
        removed = frozenset(_removed(item, self.country, self.subdivision) for item in self.removed)
        both = sorted(holidays & removed, key=str)
        if both:
            raise CalendarError(f"{_day_text(both[0])} is both added and removed; keep one", "holidays.remove")
        object.__setattr__(self, "hours", hours)
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "removed", removed)
        object.__setattr__(self, "exceptions", tuple(sorted(exceptions.items())))

        week = tuple(tuple(_span(i) for i in day) for day in hours)
        yearly = frozenset(h for h in holidays if isinstance(h, tuple))
        week_length = sum(end - start for day in week for start, end in day)
        forever = week_length > 0 and len(yearly) < 366   # every month-day meets every weekday
        openings = [d.toordinal() for d, intervals in exceptions.items() if intervals]
        object.__setattr__(self, "_tz", tz)
        object.__setattr__(self, "_week", week)
        object.__setattr__(self, "_week_length", week_length)
        object.__setattr__(self, "_dated", {d.toordinal(): tuple(_span(i) for i in v) for d, v in exceptions.items()})
        object.__setattr__(self, "_closed", frozenset(h.toordinal() for h in holidays if isinstance(h, date)))
        object.__setattr__(self, "_yearly", yearly)
        object.__setattr__(self, "_last_opening", None if forever else max(openings, default=0))
        object.__setattr__(self, "_years", {})

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> BusinessCalendar:
        """A calendar from a mapping as YAML gives it: timezone, hours, holidays, exceptions."""
        if not isinstance(definition, Mapping):
            raise CalendarError("a calendar is a mapping with `timezone`, `hours`, `holidays` and `exceptions`")
        for key in definition:
            if key not in DEFINITION_KEYS:
                raise CalendarError(f"`{key}` is not a calendar setting", str(key), hint_for(key, DEFINITION_KEYS))
        if not definition.get("timezone"):
            raise CalendarError("a calendar needs a `timezone`, such as `Europe/Paris`", "timezone")
        zone = definition["timezone"]
        if not isinstance(zone, str):
            raise CalendarError(f"{zone!r} is not a time zone name", "timezone")

        week: list[Intervals] = [()] * 7
        hours = definition.get("hours") or {}
        if not isinstance(hours, Mapping):
            raise CalendarError("`hours` maps days (mon … sun) to intervals such as 08:00-12:00", "hours")
        seen: dict[int, str] = {}
        for name, intervals in hours.items():
            index = _weekday(name)
            if index in seen:
                raise CalendarError(f"`{name}` repeats `{seen[index]}`", f"hours.{name}")
            seen[index] = str(name)
            week[index] = _parse_intervals(intervals, f"hours.{name}")

        holidays: set[Holiday] = set()
        public = definition.get("holidays") or []
        country = subdivision = None
        removed: set[Removed] = set()
        listed, where = public, "holidays"
        if isinstance(public, Mapping):
            for key in public:
                if key not in HOLIDAY_KEYS:
                    raise CalendarError(f"`{key}` is not a setting of holidays (country, subdivision, add, remove)",
                                        f"holidays.{key}", hint_for(key, HOLIDAY_KEYS))
            country, subdivision = _country(public.get("country"), public.get("subdivision"))
            listed, where = public.get("add") or [], "holidays.add"
            unlisted = public.get("remove") or []
            if isinstance(unlisted, (str, date)) or not isinstance(unlisted, Iterable):
                raise CalendarError("`remove` is a list of dates, yearly days and holiday names", "holidays.remove")
            if unlisted and country is None:
                raise CalendarError("only a country's public holidays can be removed; give the `country`",
                                    "holidays.remove")
            for position, raw in enumerate(unlisted):
                removed.add(_parse_removed(raw, f"holidays.remove[{position}]"))
        if isinstance(listed, (str, date)) or not isinstance(listed, Iterable):
            raise CalendarError("`holidays` is a list of dates (2026-12-25) and yearly days (12-25), or a map "
                                "with `country`, `subdivision`, `add` and `remove`", where)
        for position, raw in enumerate(listed):
            holidays.add(_parse_holiday(raw, f"{where}[{position}]"))

        exceptions: dict[date, Intervals] = {}
        dated = definition.get("exceptions") or {}
        if not isinstance(dated, Mapping):
            raise CalendarError("`exceptions` maps dates to their own intervals", "exceptions")
        for raw, intervals in dated.items():
            day = _parse_date(raw, f"exceptions.{raw}")
            exceptions[day] = _parse_intervals(intervals, f"exceptions.{raw}")
        return cls(zone=zone, hours=tuple(week), holidays=frozenset(holidays), exceptions=tuple(exceptions.items()),
                   country=country, subdivision=subdivision, removed=frozenset(removed))

    def public_holidays(self, year: int, language: str = "en") -> list[tuple[date, str]]:
        """The country's public holidays of `year` that close this calendar, with their names in
        `language` where the `holidays` package has them (else English, else the country's own)."""
        if self.country is None:
            return []
        english = _public_year(self.country, self.subdivision, year, "en")
        return [(day, name) for day, name in _public_year(self.country, self.subdivision, year, language).items()
                if not self._worked(day, english[day])]

    def _worked(self, day: date, english: str) -> bool:
        """Whether a public holiday is removed, by its date, its yearly day or one of its names."""
        removed = self.removed
        return bool(day in removed or (day.month, day.day) in removed
                    or any(name.strip().lower() in removed for name in english.split(";")))

    # -- questions --------------------------------------------------------------------------

    def is_open(self, moment: datetime) -> bool:
        """Whether `moment` falls within working hours."""
        instant = _instant(moment, "moment")
        first = moment.astimezone(self._tz).toordinal()
        # Only when the clock goes back over midnight can a moment belong to the next date's hours.
        for ordinal in (first, first + 1):
            for start, end in self._spans(ordinal, self._year(ordinal)):
                if instant < start:
                    return False
                if instant < end:
                    return True
        return False

    def next_open(self, moment: datetime) -> datetime:
        """`moment` itself when open, else the next opening, in UTC."""
        return _moment(self._add(_instant(moment, "moment"), moment.astimezone(self._tz).toordinal(), 0))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment, in UTC, when `duration` of business time has elapsed after `start`.

        Counting begins at `start` if open, else at the next opening; so a zero duration gives
        `next_open(start)`, and a duration that exactly fills the hours ends at closing time.
        """
        left = duration // MICROSECOND
        if left < 0:
            raise CalendarError(f"a business duration cannot be negative (got {duration})")
        instant = _instant(start, "start")
        return _moment(self._add(instant, start.astimezone(self._tz).toordinal(), left))

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The business time in [start, end); zero when `end` is not after `start`."""
        first, last = _instant(start, "start"), _instant(end, "end")
        if last <= first:
            return timedelta(0)
        ordinal, final = start.astimezone(self._tz).toordinal(), end.astimezone(self._tz).toordinal()
        begin, total, week = ordinal, 0, self._week_length
        year = self._year(ordinal)
        while ordinal <= final + 1:
            if ordinal >= year.end:
                year = self._year(ordinal)
            # Whole weeks are skipped as in _add, and only when they end by the end's own date.
            if ordinal > begin + 1 and week and ordinal + 7 <= final:
                weeks = self._plain_weeks(ordinal, (final - ordinal) // 7, year)
                if weeks:
                    total += weeks * week
                    ordinal += 7 * weeks
                    continue
            for open_, close in self._spans(ordinal, year):
                if open_ >= last:
                    return timedelta(microseconds=total)
                total += max(0, min(close, last) - max(open_, first))
            ordinal += 1
        return timedelta(microseconds=total)

    # -- the walk ---------------------------------------------------------------------------

    def _add(self, instant: int, ordinal: int, left: int) -> int:
        # Day by day from the start's local date, skipping whole ordinary weeks in one step.
        # Skipping waits for the second date after the start's: a moment in an hour repeated
        # over midnight belongs to the next date's hours. Measured (Python 3.11, mean over 1000
        # starts in 2026) on a Paris 08:00-12:00/13:30-17:30 calendar with eleven holidays a
        # year: 1-8 h in 4-6 µs, 40 h in 9-15 µs, 300 h in 12-21 µs. The first question about
        # a year in a process costs 0.4-0.7 ms more, to read the zone's offsets for that year.
        begin, week = ordinal, self._week_length
        year = self._year(ordinal)
        while True:
            if ordinal >= year.end:
                year = self._year(ordinal)
            if ordinal > begin + 1 and week and left > week:
                weeks = self._plain_weeks(ordinal, (left - 1) // week, year)  # keep some to place exactly
                if weeks:
                    left -= weeks * week
                    ordinal += 7 * weeks
                    continue
            for open_, close in self._spans(ordinal, year):
                if close <= instant:
                    continue
                open_ = max(open_, instant)
                if left <= close - open_:
                    return open_ + left
                left -= close - open_
            ordinal += 1
            if self._last_opening is not None and ordinal > self._last_opening:
                after = date.fromordinal(max(ordinal - 1, self._last_opening))
                raise CalendarError(f"the calendar has no working time after {after}",
                                    hint="give it weekly hours, or an exception with hours on a later date")

    def _spans(self, ordinal: int, year: _Year) -> list[tuple[int, int]]:
        """The working periods of one local date as UTC microseconds, in order."""
        local = self._dated.get(ordinal)
        if local is None:
            local = () if ordinal in year.closed else self._week[(ordinal + 6) % 7]
        if not local:
            return []
        if ordinal in year.shifted:
            midnight = datetime.combine(date.fromordinal(ordinal), time())
            spans = ((self._reached(midnight + start * MICROSECOND), self._reached(midnight + end * MICROSECOND))
                     for start, end in local)
            return [(start, end) for start, end in spans if start < end]
        base = (ordinal - EPOCH_ORDINAL) * DAY - year.offsets[ordinal - year.first]
        return [(base + start, base + end) for start, end in local]

    def _reached(self, wall: datetime) -> int:
        """The instant the local clock first shows `wall` (or, for a skipped time, jumps past it)."""
        instant = (wall.replace(tzinfo=self._tz) - EPOCH) // MICROSECOND   # fold=0: first occurrence
        if _moment(instant).astimezone(self._tz).replace(tzinfo=None) == wall:
            return instant
        # `wall` lies in a gap: search the jump between the two readings of the offset.
        before = (wall.replace(tzinfo=self._tz, fold=1) - EPOCH) // MICROSECOND
        while instant - before > 1:
            middle = (before + instant) // 2
            if _moment(middle).astimezone(self._tz).replace(tzinfo=None) >= wall:
                instant = middle
            else:
                before = middle
        return instant

    def _plain_weeks(self, ordinal: int, most: int, year: _Year) -> int:
        """How many whole weeks from `ordinal` (in `year`), up to `most`, hold only ordinary days."""
        limit = ordinal + 7 * most
        while True:
            position = bisect_left(year.irregular, ordinal)
            if position < len(year.irregular):
                return min(most, (year.irregular[position] - ordinal) // 7)
            if year.end >= limit:
                return most
            year = self._year(year.end)

    def _year(self, ordinal: int) -> _Year:
        number = date.fromordinal(ordinal).year
        year = self._years.get(number)
        if year is None:
            year = self._years[number] = self._build_year(number)
        return year

    def _build_year(self, number: int) -> _Year:
        first, end = date(number, 1, 1).toordinal(), date(number + 1, 1, 1).toordinal()
        offsets, shifted = _zone_year(self.zone, number)
        closed = {o for o in self._closed if first <= o < end}
        for month, day in self._yearly:
            if month != 2 or day != 29 or end - first == 366:
                closed.add(date(number, month, day).toordinal())
        if self.country is not None:
            for public, english in _public_year(self.country, self.subdivision, number, "en").items():
                if not self._worked(public, english):
                    closed.add(public.toordinal())
        closed -= self._dated.keys()
        # Only dates whose hours differ from their weekday's stop a week from being skipped whole:
        # a holiday or a clock change on a day without hours changes nothing.
        working = {o for o in closed | shifted if self._week[(o + 6) % 7]}
        dated = {o for o in self._dated if first <= o < end}
        return _Year(first, end, offsets, frozenset(closed), shifted, tuple(sorted(working | dated)))


@dataclass(frozen=True)
class _Year:
    """What the walk needs to know about one calendar year, computed once."""

    first: int                    # ordinal of 1 January
    end: int                      # ordinal of 1 January of the next year
    offsets: tuple[int, ...]      # UTC offset at each local midnight from 1 January to 2 January next year
    closed: frozenset[int]        # holidays not overridden by an exception
    shifted: frozenset[int]       # dates whose clock changes: their intervals are converted one by one
    irregular: tuple[int, ...]    # dates whose hours are not their weekday's usual ones, sorted


@lru_cache(maxsize=512)
def _zone_year(zone: str, number: int) -> tuple[tuple[int, ...], frozenset[int]]:
    """Offsets at each local midnight of a year, and the dates on which the clock changes.

    Reading the offset at every midnight finds every change because the tz database never
    changes a zone's offset twice within a day (since 1900 the closest two are four days
    apart). A date also counts as changed when the clock skips or repeats its closing midnight,
    since an interval ending at 24:00 then ends at the change.
    """
    tz = ZoneInfo(zone)
    midnight = datetime(number, 1, 1, tzinfo=tz)
    days = date(number + 1, 1, 1).toordinal() - date(number, 1, 1).toordinal()
    offsets = tuple(_utc_offset(midnight + timedelta(days=i)) // MICROSECOND for i in range(days + 2))
    shifted = set()
    for i in range(days):
        if offsets[i] != offsets[i + 1]:
            shifted.add(midnight.toordinal() + i)
        elif offsets[i + 1] != offsets[i + 2]:
            later = _utc_offset((midnight + timedelta(days=i + 1)).replace(fold=1)) // MICROSECOND
            if later != offsets[i + 1]:
                shifted.add(midnight.toordinal() + i)
    return offsets, frozenset(shifted)


def _utc_offset(moment: datetime) -> timedelta:
    """The UTC offset of an aware datetime (never None: its tzinfo is a ZoneInfo)."""
    offset = moment.utcoffset()
    assert offset is not None
    return offset


# -- reading definitions ------------------------------------------------------------------------

def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise CalendarError(f'"{name}" is not a known time zone', "timezone",
                            hint_for(name, available_timezones())) from None


def _weekday(name: Any) -> int:
    key = str(name).strip().lower()
    if key in WEEKDAYS:
        return WEEKDAYS.index(key)
    if key in WEEKDAY_NAMES:
        return WEEKDAY_NAMES.index(key)
    raise CalendarError(f'"{name}" is not a day of the week (mon … sun)', f"hours.{name}",
                        hint_for(key, WEEKDAYS + WEEKDAY_NAMES))


def _parse_intervals(raw: Any, path: str) -> Intervals:
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)):
        raise CalendarError(f'"{raw}" is not a list of intervals such as 08:00-12:00', path)
    intervals = []
    for position, item in enumerate(items):
        match = _INTERVAL.fullmatch(item) if isinstance(item, str) else None
        if not match:
            raise CalendarError(f'"{item}" is not an interval; write it as 08:00-12:00', f"{path}[{position}]")
        start, end = _parse_clock(match[1], f"{path}[{position}]"), _parse_clock(match[2], f"{path}[{position}]")
        if start is None:
            raise CalendarError("a day's hours cannot start at 24:00", f"{path}[{position}]")
        intervals.append((start, end or time()))
    return tuple(intervals)


def _parse_clock(text: str, path: str) -> time | None:
    """A local time of day; None for 24:00, which may only end an interval."""
    match = _CLOCK.fullmatch(text)
    if match:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour == 24 and minute == 0 and second == 0:
            return None
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    raise CalendarError(f'"{text}" is not a time of day', path, "write hours as HH:MM, from 00:00 to 24:00")


def _parse_holiday(raw: Any, path: str) -> Holiday:
    if isinstance(raw, str):
        match = _YEARLY.fullmatch(raw.strip())
        if match:
            month, day = int(match[1]), int(match[2])
            return _holiday((month, day), path, raw)
    return _parse_date(raw, path)


def _parse_removed(raw: Any, path: str) -> Removed:
    """A removed public holiday: a date, a yearly day, or a name (any other text)."""
    if isinstance(raw, str) and not _YEARLY.fullmatch(raw.strip()) and not re.fullmatch(r"\s*\d{4}-.*", raw):
        if not raw.strip():
            raise CalendarError("an empty name cannot remove a holiday", path)
        return raw.strip()
    return _parse_holiday(raw, path)


def _parse_date(raw: Any, path: str) -> date:
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise CalendarError(f'"{raw}" is not a date', path, "write dates as 2026-12-25, yearly days as 12-25") from None


# -- checking a calendar ------------------------------------------------------------------------

def _holiday(value: Any, path: str = "holidays", text: Any = None) -> Holiday:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(part, int) for part in value):
        try:
            date(2000, *value)   # a leap year, so that 02-29 is accepted
            return value
        except ValueError:
            pass
    shown = text if text is not None else value
    raise CalendarError(f'"{shown}" is not a date or a day of the year', path,
                        "write dates as 2026-12-25, yearly days as 12-25")


def _country(country: Any, subdivision: Any) -> tuple[str | None, str | None]:
    """A country code and subdivision the `holidays` package knows, as it spells them."""
    if country is None:
        if subdivision is not None:
            raise CalendarError("a subdivision needs its `country`", "holidays.subdivision")
        return None, None
    known = _countries()
    code = str(country).strip().upper()
    if code not in known:
        raise CalendarError(f'"{country}" is not a country whose public holidays are known', "holidays.country",
                            hint_for(code, known) or "give its ISO 3166 code, such as FR, CZ, PT or HR")
    import holidays
    code = holidays.country_holidays(code, years=[]).country    # FRA is FR
    if subdivision is None:
        return code, None
    regions = {str(region).upper(): str(region) for region in known[code]}
    region = regions.get(str(subdivision).strip().upper())
    if region is None:
        shown = ", ".join(sorted(regions.values())[:12]) + ("…" if len(regions) > 12 else "")
        raise CalendarError(f'"{subdivision}" is not a subdivision of {code}', "holidays.subdivision",
                            hint_for(str(subdivision), regions.values())
                            or (f"one of {shown}" if regions else f"{code} has no subdivisions; leave it out"))
    return code, region


def _removed(item: Any, country: str | None, subdivision: str | None) -> Removed:
    """A removed public holiday checked against the country's: a date, a yearly day or a name
    that is none of them is a mistake (names in lower case, as they are compared)."""
    if country is None:
        raise CalendarError("only a country's public holidays can be removed; give the `country`", "holidays.remove")
    if isinstance(item, date):
        if item not in _public_year(country, subdivision, item.year, "en"):
            raise CalendarError(f"{item} is not a public holiday of {country}", "holidays.remove")
        return item
    years = [_public_year(country, subdivision, year, "en") for year in NAMES_CHECKED]
    if not isinstance(item, str):
        pair = _holiday(item, "holidays.remove")
        if not any((day.month, day.day) == pair for found in years for day in found):
            raise CalendarError(f"{_day_text(pair)} is not a public holiday of {country}", "holidays.remove")
        return pair
    names = {name.strip().lower(): name.strip() for found in years for english in found.values()
             for name in english.split(";")}
    if item.lower() not in names:
        close = did_you_mean(item.lower(), names)
        raise CalendarError(f'"{item}" is not the name of a public holiday of {country}', "holidays.remove",
                            f"did you mean `{names[close]}`?" if close else
                            "give its date (2027-05-17) or yearly day (05-08) instead")
    return item.lower()


@lru_cache(maxsize=1)
def _countries() -> Mapping[str, list[str]]:
    import holidays
    return holidays.list_supported_countries()


@lru_cache(maxsize=1024)
def _public_year(country: str, subdivision: str | None, year: int, language: str) -> Mapping[date, str]:
    """{date: name} of a country's public holidays in one year; names in `language` when the
    `holidays` package has it (English as `en_US`), else in English, else in its own."""
    import holidays
    kind = holidays.country_holidays(country, subdiv=subdivision, years=[])
    offered = tuple(kind.supported_languages)
    wanted = next((code for code in (language, f"{language}_{country}", "en_US" if language == "en" else "")
                   if code in offered), None)
    if wanted is None:
        wanted = "en_US" if "en_US" in offered else None
    found = holidays.country_holidays(country, subdiv=subdivision, years=year, language=wanted)
    return MappingProxyType(dict(sorted(found.items())))


def _day_text(day: Removed) -> str:
    return f"{day[0]:02d}-{day[1]:02d}" if isinstance(day, tuple) else str(day)


def _intervals(raw: Any, path: str) -> Intervals:
    intervals = []
    for item in raw:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(t, time) for t in item)):
            raise CalendarError(f"{item!r} is not a (start, end) pair of times", path)
        item = tuple(item)
        if any(t.tzinfo is not None for t in item):
            raise CalendarError("hours are local to the calendar's time zone; give times without tzinfo", path)
        start, end = _span(item)
        if end < start:
            raise CalendarError(f"{_interval_text(start, end)} ends before it starts", path,
                                "split a period that runs past midnight into one interval on each day")
        if end == start:
            raise CalendarError(f"{_interval_text(start, end)} is empty", path)
        intervals.append(item)
    intervals.sort(key=_span)
    for before, after in zip(intervals, intervals[1:]):
        if _span(after)[0] < _span(before)[1]:
            raise CalendarError(f"{_interval_text(*_span(after))} overlaps {_interval_text(*_span(before))}", path)
    return tuple(intervals)


def _span(interval: Interval) -> tuple[int, int]:
    """Microseconds since local midnight; an end at 00:00 is the midnight that ends the day."""
    start, end = (((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond for t in interval)
    return start, end or DAY


def _interval_text(start: int, end: int) -> str:
    return f"{_clock(start)}-{_clock(end)}"


def _clock(microseconds: int) -> str:
    seconds = microseconds // 1_000_000
    text = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}"
    return f"{text}:{seconds % 60:02d}" if seconds % 60 else text


# -- instants ---------------------------------------------------------------------------------

def _instant(moment: datetime, name: str) -> int:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise CalendarError(f"the {name} ({moment!r}) has no time zone; business time needs an aware datetime")
    return (moment - EPOCH) // MICROSECOND


def _moment(instant: int) -> datetime:
    return EPOCH + timedelta(microseconds=instant)


# -- the `calendars:` section -------------------------------------------------------------------

_SECTION_SCHEMA = {
    "type": ["object", "null"],
    "x-noun": "a map of calendars such as {office: {timezone: Europe/Paris, hours: {mon: 08:00-18:00}}}",
    "description": "business hours that timers count in, by name: timezone, hours per weekday, holidays, exceptions",
    "additionalProperties": {"type": "object", "x-noun": "a calendar: a map with timezone, hours, holidays, exceptions"},
    "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "a calendar name"},
}


def _compile_section(document: Mapping[str, Any], positions, definitions) -> tuple[Mapping[str, BusinessCalendar], list]:
    calendars: dict[str, BusinessCalendar] = {}
    errors = []
    for name, spec in (document.get("calendars") or {}).items():
        try:
            calendars[name] = BusinessCalendar.from_definition(spec)
        except CalendarError as error:
            path = ("calendars", name) + parse_path(error.path)
            errors.append(definition_error(positions, path, error.message, error.hint))
    return MappingProxyType(calendars), errors


CALENDARS_SECTION = Section("calendars", "top", _SECTION_SCHEMA, _compile_section)


def calendars_of(definitions) -> Mapping[str, BusinessCalendar]:
    """The named calendars of definitions (none when loaded without the section)."""
    return definitions.extensions.get("calendars") or MappingProxyType({})
