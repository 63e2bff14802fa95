"""Business-time arithmetic agrees with a minute-by-minute walk of the local clock, across
clock changes, holidays and exceptions, on generated calendars."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings, strategies as st

from deskbase.rules.process.calendars import BusinessCalendar

UTC = timezone.utc
MINUTE = timedelta(minutes=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Moments around which starts are drawn: the 2026 clock changes of each zone (UTC has none;
# it borrows Paris's dates). Santiago changes at midnight, Lord Howe by half an hour, and
# St John's in 2010 turned its clocks back from 00:01 to 23:01 the day before.
CLOCK_CHANGES = {
    "Europe/Paris": ["2026-03-29T01:00", "2026-10-25T01:00"],
    "America/New_York": ["2026-03-08T07:00", "2026-11-01T06:00"],
    "Australia/Lord_Howe": ["2026-04-04T15:00", "2026-10-03T15:30"],
    "America/Santiago": ["2026-04-05T03:00", "2026-09-06T04:00"],
    "America/St_Johns": ["2010-03-14T03:31", "2010-11-07T02:31"],
    "UTC": ["2026-03-29T01:00", "2026-10-25T01:00"],
}
# Boundaries near the clock changes and the ends of the day are drawn often.
AWKWARD_MINUTES = [0, 1, 30, 60, 61, 90, 105, 120, 135, 150, 165, 180, 210, 240, 1380, 1381, 1410, 1439, 1440]
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Spec:
    """A drawn calendar, read directly by the reference below; minutes since local midnight."""

    zone: str
    week: list[list[tuple[int, int]]]
    holidays: set[date]
    yearly: set[tuple[int, int]]
    exceptions: dict[date, list[tuple[int, int]]]
    anchor: datetime

    def definition(self) -> dict:
        return {
            "timezone": self.zone,
            "hours": {name: [interval_text(i) for i in day] for name, day in zip(WEEKDAYS, self.week)},
            "holidays": [d.isoformat() for d in self.holidays] + [f"{m:02d}-{d:02d}" for m, d in self.yearly],
            "exceptions": {d: [interval_text(i) for i in hours] for d, hours in self.exceptions.items()},
        }

    def weekly_minutes(self) -> int:
        return sum(end - start for day in self.week for start, end in day)

    def open_on_clock(self, clock: datetime) -> bool:
        """Whether a local clock reading falls inside the hours of the date it shows."""
        day = clock.date()
        if day in self.exceptions:
            hours = self.exceptions[day]
        elif day in self.holidays or (day.month, day.day) in self.yearly:
            hours = []
        else:
            hours = self.week[day.weekday()]
        minute = clock.hour * 60 + clock.minute
        return any(start <= minute < end for start, end in hours)


def interval_text(interval: tuple[int, int]) -> str:
    return "-".join(f"{m // 60:02d}:{m % 60:02d}" for m in interval)


def walk(spec: Spec, start: datetime) -> Iterator[bool]:
    """Open or closed for each UTC minute from `start` on, one minute at a time.

    The clock that decides is the latest reading the local clock has shown so far: when the
    clock goes back, the repeated hour is still counted under the reading before the change.
    The walk starts six hours early, longer than any repeated hour, so the reading is known
    at `start`.
    """
    zone, clock = ZoneInfo(spec.zone), None
    minute = start - timedelta(hours=6)
    while True:
        reading = minute.astimezone(zone).replace(tzinfo=None)
        clock = reading if clock is None or reading > clock else clock
        if minute >= start:
            yield spec.open_on_clock(clock)
        minute += MINUTE


def walk_until(spec: Spec, start: datetime, end: datetime) -> list[bool]:
    return list(islice(walk(spec, start), max(0, (end - start) // MINUTE)))


def day_hours(minutes: list[int]) -> list[tuple[int, int]]:
    ordered = sorted(set(minutes))
    return list(zip(ordered[0::2], ordered[1::2]))


boundaries = st.lists(st.one_of(st.sampled_from(AWKWARD_MINUTES), st.integers(0, 1440)), max_size=6)
hours_of_a_day = boundaries.map(day_hours)


@st.composite
def specs(draw) -> Spec:
    zone = draw(st.sampled_from(sorted(CLOCK_CHANGES)))
    anchor = datetime.fromisoformat(draw(st.sampled_from(CLOCK_CHANGES[zone]))).replace(tzinfo=UTC)
    week = draw(st.lists(hours_of_a_day, min_size=7, max_size=7).filter(any))
    nearby = st.integers(-28, 35).map(lambda days: anchor.date() + timedelta(days=days))
    holidays = draw(st.sets(nearby, max_size=6))
    yearly = {(d.month, d.day) for d in draw(st.sets(nearby, max_size=3))}
    dated = draw(st.dictionaries(nearby, hours_of_a_day, max_size=3))
    exceptions = {d: hours for d, hours in dated.items() if d not in holidays}
    return Spec(zone, week, holidays, yearly, exceptions, anchor)


@st.composite
def calendars_and_starts(draw, grid: timedelta = MINUTE):
    spec = draw(specs())
    # Often within the weeks before a clock change, sometimes within hours of it.
    weeks_before = st.integers(-(timedelta(days=21) // grid), timedelta(days=2) // grid)
    hours_around = st.integers(-(timedelta(hours=3) // grid), timedelta(hours=3) // grid)
    steps = draw(st.one_of(weeks_before, hours_around))
    return spec, BusinessCalendar.from_definition(spec.definition()), spec.anchor + steps * grid


@PROPERTY_SETTINGS
@given(calendars_and_starts(grid=timedelta(seconds=1)), st.data())
def test_business_time_between_start_and_add_is_the_duration_added(drawn, data):
    spec, calendar, start = drawn
    duration = timedelta(seconds=data.draw(st.integers(0, 3 * spec.weekly_minutes() * 60)))
    end = calendar.add(start, duration)
    assert end.tzinfo is UTC and end >= start
    assert calendar.between(start, end) == duration


@PROPERTY_SETTINGS
@given(calendars_and_starts(), st.data())
def test_add_never_goes_back_as_the_duration_grows(drawn, data):
    spec, calendar, start = drawn
    limit = 3 * spec.weekly_minutes()
    shorter, longer = sorted(data.draw(st.lists(st.integers(0, limit), min_size=2, max_size=2)))
    first, second = calendar.add(start, shorter * MINUTE), calendar.add(start, longer * MINUTE)
    assert first <= second
    assert (first == second) == (shorter == longer)


@PROPERTY_SETTINGS
@given(calendars_and_starts(), st.data())
def test_a_long_duration_split_in_two_ends_at_the_same_moment(drawn, data):
    # Up to two years each way: whole weeks are skipped, years and yearly holidays crossed.
    spec, calendar, start = drawn
    first, second = (data.draw(st.integers(1, 110 * spec.weekly_minutes())) * MINUTE for _ in range(2))
    middle, end = calendar.add(start, first), calendar.add(start, first + second)
    assert calendar.add(middle, second) == end
    assert calendar.between(start, middle) + calendar.between(middle, end) == calendar.between(start, end)
    assert calendar.between(start, end) == first + second


@PROPERTY_SETTINGS
@given(calendars_and_starts(), st.data())
def test_between_counts_the_open_minutes_of_a_minute_by_minute_walk(drawn, data):
    spec, calendar, start = drawn
    end = start + data.draw(st.integers(0, 21 * 24 * 60)) * MINUTE
    assert calendar.between(start, end) == sum(walk_until(spec, start, end)) * MINUTE


@PROPERTY_SETTINGS
@given(calendars_and_starts(), st.data())
def test_add_stops_where_the_walk_has_counted_the_duration(drawn, data):
    spec, calendar, start = drawn
    minutes = data.draw(st.integers(0, 3 * spec.weekly_minutes()))
    end = calendar.add(start, minutes * MINUTE)
    flags = walk_until(spec, start, end + MINUTE)
    if minutes == 0:
        # A zero duration lands on the first open minute; everything before it is closed.
        assert flags[-1] and not any(flags[:-1])
    else:
        # The duration ends with the minute just before `end`, which is open.
        assert sum(flags[:-1]) == minutes and flags[-2]


@PROPERTY_SETTINGS
@given(calendars_and_starts(), st.integers(0, 59))
def test_is_open_and_next_open_agree_with_the_walk(drawn, seconds):
    spec, calendar, moment = drawn
    within = moment + timedelta(seconds=seconds)
    flags = walk(spec, moment)
    open_now = next(flags)
    assert calendar.is_open(moment) == calendar.is_open(within) == open_now
    # Every drawn calendar has weekly hours, and holidays and exceptions span a few weeks at most.
    wait = 0 if open_now else 1 + next(i for i, flag in enumerate(flags) if flag)
    assert calendar.next_open(moment) == moment + wait * MINUTE
    assert calendar.next_open(within) == (within if open_now else moment + wait * MINUTE)
