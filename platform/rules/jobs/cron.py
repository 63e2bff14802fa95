"""Five-field cron schedules read in a time zone: the moments a scheduled job is due,
daylight-saving changes included (see `CronSchedule`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim

from deskbase.objects.errors import DeskbaseError

UTC = timezone.utc


class JobError(DeskbaseError):
    """A job that cannot be run as asked (unknown name, running elsewhere) or a schedule
    or time zone that cannot be read."""


class CronError(JobError, ValueError):
    """A cron schedule that cannot be read; names the field and the value at fault."""

    def __init__(self, expression: str, message: str, field: str | None = None, value: str | None = None):
        self.expression, self.field, self.value, self.message = expression, field, value, message
        where = f"{field} `{value}`: " if field else ""
        super().__init__(f"schedule `{expression}`: {where}{message}")


# -- cron schedules ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()      # names for low, low+1, …


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    _Field("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")),
)
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_LONGEST_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


@dataclass(frozen=True)
class CronSchedule:
    """A parsed five-field cron schedule: minute hour day-of-month month day-of-week.

    As in Vixie cron, when both day fields are restricted (neither starts with `*`) a day
    matches if either does; otherwise both must. Sunday is 0 or 7.

    Time changes, for a schedule read in a zone with daylight saving time:
    - a wall time that does not exist (02:30 on a spring-forward night) runs once, at the
      first valid moment after the gap (03:00); several such times collapse into that one run;
    - a wall time that happens twice (02:30 on a fall-back night) runs once, the first time,
      unless the hour field is `*` (every hour): then both happen, so an every-15-minutes
      job keeps its rhythm through the repeated hour;
    - a job that runs every hour skips the wall times that do not exist: it runs again at
      its next minute after the gap.
    These are Debian cron's rules; the occurrences are walked by cronsim, which keeps them.
    This class reads the schedule itself, to say which field and value are at fault.
    """

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]         # Python's numbering: Monday 0 … Sunday 6
    days_restricted: bool
    weekdays_restricted: bool
    starred_days: tuple[str, str] = ("*", "*")   # the day fields as written, when they start with `*`

    @classmethod
    def parse(cls, expression: str) -> "CronSchedule":
        """Read `*/5 * * * *`, `0 6 1 * *`, `30 8 * * mon-fri`, `@daily`…; CronError if malformed."""
        if not isinstance(expression, str):
            raise CronError(str(expression), "a schedule is text such as `0 6 * * *`")
        text = " ".join(expression.split())
        expanded = _MACROS.get(text.lower(), text)
        if expanded.startswith("@"):
            raise CronError(text, f"`{text}` is not a known shorthand; use one of {', '.join(sorted(_MACROS))} "
                                  "or five fields")
        parts = expanded.split(" ")
        if len(parts) != 5:
            raise CronError(text, f"a schedule has five fields (minute hour day-of-month month day-of-week), "
                                  f"this one has {len(parts)}")
        sets = [_parse_field(text, spec, part) for spec, part in zip(_FIELDS, parts)]
        weekdays = frozenset((day - 1) % 7 for day in sets[4])      # cron 0/7 = Sunday → Python 6
        schedule = cls(text, frozenset(sets[0]), frozenset(sets[1]), frozenset(sets[2]), frozenset(sets[3]),
                       weekdays, not parts[2].startswith("*"), not parts[4].startswith("*"),
                       (parts[2], parts[4]))
        schedule._check_possible()
        return schedule

    def _check_possible(self) -> None:
        if self.weekdays_restricted and self.days_restricted:
            return                                # either day field may match: always possible
        if any(day <= _LONGEST_MONTH[month] for month in self.months for day in self.days):
            return
        names = ", ".join(_FIELDS[3].names[m - 1] for m in sorted(self.months))
        raise CronError(self.expression, f"never happens: no day {', '.join(map(str, sorted(self.days)))} "
                                         f"in {names}", "day of month", ",".join(map(str, sorted(self.days))))

    def __str__(self) -> str:
        return self.expression

    def matches_day(self, day: date) -> bool:
        """Whether the schedule runs at some time on this calendar day."""
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = day.weekday() in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_day or by_weekday
        return by_day and by_weekday

    def next_after(self, moment: datetime, zone: str | tzinfo = "UTC") -> datetime:
        """The first occurrence strictly after `moment`, as an aware UTC datetime."""
        local = as_utc(moment).astimezone(_zone(zone))
        return next(CronSim(self._walked, local)).astimezone(UTC)

    def latest_at_or_before(self, moment: datetime, zone: str | tzinfo = "UTC") -> datetime | None:
        """The last occurrence at or before `moment`, as an aware UTC datetime (None before year 1)."""
        # Walking backwards, cronsim counts the moment itself only when it has a fraction of a
        # second to strip: one microsecond later makes "at or before" of "before".
        local = (as_utc(moment) + timedelta(microseconds=1)).astimezone(_zone(zone))
        try:
            return next(CronSim(self._walked, local, reverse=True)).astimezone(UTC)
        except (StopIteration, OverflowError, ValueError):
            return None

    @property
    def _walked(self) -> str:
        """The schedule as cronsim walks it: our sets written out in cron's numbering, the
        minute always as a list and the hour as `*` only when it is every hour, so that its
        daylight-saving handling (Debian cron's, for jobs at set hours) applies exactly when
        the class docstring says."""
        def listed(values: frozenset[int]) -> str:
            return ",".join(map(str, sorted(values)))
        # A day field that starts with `*` (`*/10`) stays as written: that is how cron tells
        # "both day fields must match" from "either may".
        days = listed(self.days) if self.days_restricted else self.starred_days[0]
        weekdays = (listed(frozenset((day + 1) % 7 for day in self.weekdays)) if self.weekdays_restricted
                    else self.starred_days[1])
        hours = "*" if len(self.hours) == 24 else listed(self.hours)
        return f"{listed(self.minutes)} {hours} {days} {listed(self.months)} {weekdays}"


def parse_cron(expression: str) -> CronSchedule:
    """A parsed cron schedule; CronError names the field and value at fault."""
    return CronSchedule.parse(expression)


def _parse_field(expression: str, spec: _Field, text: str) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(expression, "an empty item in a list", spec.name, text)
        body, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(expression, "a step is a whole number from 1, as in */5", spec.name, item)
            step = int(step_text)
        if body == "*":
            low, high = spec.low, spec.high
        elif "-" in body:
            first, _, last = body.partition("-")
            low, high = _value(expression, spec, first, item), _value(expression, spec, last, item)
            if spec.name == "day of week" and high == 0 and low > 0:
                high = 7                                # `fri-sun`: Sunday closes the week
            if low > high:
                raise CronError(expression, f"a range goes upwards, such as {spec.low}-{spec.high}; for one "
                                            "that wraps round, write a list such as 22-23,0-2", spec.name, item)
        else:
            low = _value(expression, spec, body, item)
            high = spec.high if slash else low          # `5/15`: from 5 to the end, every 15
        values.update(range(low, high + 1, step))
    if spec.name == "day of week" and text.startswith("*"):
        values.discard(7)                               # 0 already stands for Sunday
    return values


def _value(expression: str, spec: _Field, text: str, item: str) -> int:
    lowered = text.lower()
    if spec.names and lowered in spec.names:
        return spec.names.index(lowered) + spec.low
    if not text.isdigit():
        expected = f"a number from {spec.low} to {spec.high}"
        if spec.names:
            expected += f" or a name such as {spec.names[1] if spec.name == 'day of week' else spec.names[0]}"
        raise CronError(expression, f"expected {expected}", spec.name, item)
    number = int(text)
    if not spec.low <= number <= spec.high:
        raise CronError(expression, f"{number} is out of range {spec.low}–{spec.high}", spec.name, item)
    return number


def as_utc(moment: datetime) -> datetime:
    """The moment in UTC; a moment without a time zone is refused."""
    if moment.tzinfo is None:
        raise JobError("a moment given to a schedule must carry a time zone (use UTC)")
    return moment.astimezone(UTC)


def _zone(zone: str | tzinfo) -> tzinfo:
    if isinstance(zone, tzinfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise JobError(f"`{zone}` is not a time zone; write it as Region/City, such as Europe/Paris") from None


