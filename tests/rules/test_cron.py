"""Cron schedules: what parses and what is refused (naming the field and value), and the
next occurrence in a time zone, daylight saving changes included."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from deskbase.objects.errors import DeskbaseError
from deskbase.rules.jobs.cron import CronError, CronSchedule, JobError, parse_cron

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")


def local(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold)


def walk(schedule: CronSchedule, moment: datetime, zone, count: int) -> list[str]:
    """The next `count` occurrences as local wall times with their offset."""
    found = []
    for _ in range(count):
        moment = schedule.next_after(moment, zone)
        found.append(moment.astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone).strftime("%m-%d %H:%M%z"))
    return found


# -- parsing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, field, values", [
    ("*/5 * * * *", "minutes", set(range(0, 60, 5))),
    ("0 6 1 * *", "hours", {6}),
    ("0 6 1 * *", "days", {1}),
    ("0-10/5,30 * * * *", "minutes", {0, 5, 10, 30}),
    ("5/20 * * * *", "minutes", {5, 25, 45}),
    ("0 8-18/2 * * *", "hours", {8, 10, 12, 14, 16, 18}),
    ("0 0 * jan,JUL-sep *", "months", {1, 7, 8, 9}),
    ("0 0 * * mon-fri", "weekdays", {0, 1, 2, 3, 4}),
    ("0 0 * * 0", "weekdays", {6}),
    ("0 0 * * 7", "weekdays", {6}),
    ("0 0 * * sat-sun", "weekdays", {5, 6}),
    ("0 0 * * fri-0", "weekdays", {4, 5, 6}),
    ("@hourly", "minutes", {0}),
    ("  0   6 1  *   * ", "hours", {6}),
])
def test_valid_schedules_are_read_into_sets(text, field, values):
    assert set(getattr(parse_cron(text), field)) == values


@pytest.mark.parametrize("text, message", [
    ("* * * *", "has five fields (minute hour day-of-month month day-of-week), this one has 4"),
    ("* * * * * *", "this one has 6"),
    ("60 * * * *", "minute `60`: 60 is out of range 0–59"),
    ("* 24 * * *", "hour `24`: 24 is out of range 0–23"),
    ("* * 0 * *", "day of month `0`: 0 is out of range 1–31"),
    ("* * * 13 *", "month `13`: 13 is out of range 1–12"),
    ("* * * * 8", "day of week `8`: 8 is out of range 0–7"),
    ("*/0 * * * *", "minute `*/0`: a step is a whole number from 1"),
    ("*/x * * * *", "minute `*/x`: a step is a whole number from 1"),
    ("10-5 * * * *", "minute `10-5`: a range goes upwards"),
    ("* * * smarch *", "month `smarch`: expected a number from 1 to 12 or a name such as jan"),
    ("* * * * funday", "day of week `funday`: expected a number from 0 to 7 or a name such as mon"),
    ("1,,2 * * * *", "minute `1,,2`: an empty item"),
    ("0 0 30 feb *", "day of month `30`: never happens: no day 30 in feb"),
    ("0 0 31 4,6 *", "never happens: no day 31 in apr, jun"),
    ("@reboot", "`@reboot` is not a known shorthand"),
])
def test_invalid_schedules_are_refused_naming_the_field_and_value(text, message):
    with pytest.raises(CronError) as caught:
        parse_cron(text)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"schedule `{' '.join(text.split())}`")
    assert isinstance(caught.value, DeskbaseError)


def test_a_cron_error_carries_its_parts():
    with pytest.raises(CronError) as caught:
        parse_cron("0 25 * * *")
    assert (caught.value.field, caught.value.value) == ("hour", "25")


def test_29_february_is_possible():
    assert parse_cron("0 0 29 2 *").next_after(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2028, 2, 29, tzinfo=UTC)


# -- occurrences -----------------------------------------------------------------------------

def test_every_five_minutes():
    start = datetime(2026, 1, 5, 9, 2, 30, tzinfo=UTC)
    assert walk(parse_cron("*/5 * * * *"), start, "UTC", 3) == ["01-05 09:05+0000", "01-05 09:10+0000", "01-05 09:15+0000"]


def test_the_next_occurrence_is_strictly_after_the_moment():
    at = datetime(2026, 1, 5, 9, 5, tzinfo=UTC)
    assert parse_cron("*/5 * * * *").next_after(at) == at + timedelta(minutes=5)


def test_monthly_at_six_in_the_schedules_zone():
    moment = parse_cron("0 6 1 * *").next_after(local(PARIS, 2026, 1, 15, 12, 0), "Europe/Paris")
    assert moment == local(PARIS, 2026, 2, 1, 6, 0)
    assert moment.tzinfo == UTC and moment.hour == 5


def test_both_day_fields_restricted_means_either_day():
    schedule = parse_cron("0 9 13 * fri")       # the 13th, and every Friday
    moments = walk(schedule, datetime(2026, 3, 1, tzinfo=UTC), "UTC", 4)
    assert moments == ["03-06 09:00+0000", "03-13 09:00+0000", "03-20 09:00+0000", "03-27 09:00+0000"]
    schedule = parse_cron("0 9 12 * fri")
    assert walk(schedule, datetime(2026, 3, 1, tzinfo=UTC), "UTC", 3) == [
        "03-06 09:00+0000", "03-12 09:00+0000", "03-13 09:00+0000"]


def test_one_day_field_starred_means_the_other_decides():
    schedule = parse_cron("0 9 */10 * mon")     # `*/10` counts as starred: Mondays that are the 1st, 11th, 21st or 31st
    assert walk(schedule, datetime(2026, 1, 1, tzinfo=UTC), "UTC", 3) == [
        "05-11 09:00+0000", "06-01 09:00+0000", "08-31 09:00+0000"]


def test_a_job_at_0230_on_the_spring_forward_day_runs_once_at_0300():
    schedule = parse_cron("30 2 * * *")
    assert walk(schedule, local(PARIS, 2026, 3, 28, 3, 0), "Europe/Paris", 3) == [
        "03-29 03:00+0200", "03-30 02:30+0200", "03-31 02:30+0200"]


def test_times_inside_the_spring_gap_collapse_into_one_run():
    schedule = parse_cron("*/20 2 * * *")
    assert walk(schedule, local(PARIS, 2026, 3, 28, 12, 0), "Europe/Paris", 2) == [
        "03-29 03:00+0200", "03-30 02:00+0200"]


def test_an_every_hour_job_skips_its_times_inside_the_spring_gap():
    schedule = parse_cron("30 * * * *")
    assert walk(schedule, local(PARIS, 2026, 3, 29, 1, 0), "Europe/Paris", 3) == [
        "03-29 01:30+0100", "03-29 03:30+0200", "03-29 04:30+0200"]


def test_a_job_at_0230_on_the_fall_back_day_runs_once_the_first_time():
    schedule = parse_cron("30 2 * * *")
    assert walk(schedule, local(PARIS, 2026, 10, 24, 3, 0), "Europe/Paris", 2) == [
        "10-25 02:30+0200", "10-26 02:30+0100"]


def test_an_every_hour_job_runs_in_both_copies_of_the_repeated_hour():
    schedule = parse_cron("*/30 * * * *")
    assert walk(schedule, local(PARIS, 2026, 10, 25, 1, 45), "Europe/Paris", 5) == [
        "10-25 02:00+0200", "10-25 02:30+0200", "10-25 02:00+0100", "10-25 02:30+0100", "10-25 03:00+0100"]


def test_daylight_saving_in_new_york():
    zone = ZoneInfo("America/New_York")
    schedule = parse_cron("30 2 * * *")
    assert walk(schedule, local(zone, 2026, 3, 7, 12, 0), zone, 2) == ["03-08 03:00-0400", "03-09 02:30-0400"]
    repeated = parse_cron("30 1 * * *")          # New York repeats 01:00–01:59
    assert walk(repeated, local(zone, 2026, 10, 31, 12, 0), zone, 2) == ["11-01 01:30-0400", "11-02 01:30-0500"]


def test_the_latest_occurrence_at_or_before_a_moment():
    schedule = parse_cron("0 6 * * mon-fri")
    saturday = local(PARIS, 2026, 3, 7, 12, 0)
    assert schedule.latest_at_or_before(saturday, PARIS) == local(PARIS, 2026, 3, 6, 6, 0)
    assert schedule.latest_at_or_before(local(PARIS, 2026, 3, 6, 6, 0), PARIS) == local(PARIS, 2026, 3, 6, 6, 0)


def test_a_moment_without_a_zone_or_an_unknown_zone_is_refused():
    with pytest.raises(JobError, match="must carry a time zone"):
        parse_cron("* * * * *").next_after(datetime(2026, 1, 1))
    with pytest.raises(JobError, match="is not a time zone"):
        parse_cron("* * * * *").next_after(datetime(2026, 1, 1, tzinfo=UTC), "Mars/Olympus")


# -- the DST rules against a minute-by-minute walk -----------------------------------------------

def reference_next(schedule: CronSchedule, moment: datetime, zone: ZoneInfo, limit: timedelta) -> datetime | None:
    """The first UTC minute after `moment` at which the schedule fires, found by walking
    minutes: a matching wall time fires (its second copy only for every-hour schedules),
    and, for schedules at set hours, the first minute after a gap fires if a wall time
    inside the gap matched (an every-hour schedule just runs at its next minute)."""
    def matches(wall: datetime) -> bool:
        return wall.minute in schedule.minutes and wall.hour in schedule.hours and schedule.matches_day(wall.date())

    minute = timedelta(minutes=1)
    t = moment.astimezone(UTC).replace(second=0, microsecond=0) + minute
    end = t + limit
    while t < end:
        here = t.astimezone(zone)
        wall = here.replace(tzinfo=None)
        if matches(wall) and (here.fold == 0 or len(schedule.hours) == 24):
            return t
        skipped = (t - minute).astimezone(zone).replace(tzinfo=None) + minute
        while skipped < wall and len(schedule.hours) < 24:
            if matches(skipped):
                return t
            skipped += minute
        t += minute
    return None


ZONES = [ZoneInfo(name) for name in ("Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC")]
TRANSITION_DAYS = [datetime(2026, 3, 27), datetime(2026, 10, 23), datetime(2026, 3, 6), datetime(2026, 10, 30),
                   datetime(2026, 4, 3), datetime(2026, 10, 2)]

schedules = st.builds(
    lambda *parts: " ".join(parts),
    st.sampled_from(["*", "0", "30", "*/15", "5,35", "0-10", "*/7"]),
    st.sampled_from(["*", "2", "1-3", "*/6", "23", "0,2"]),
    st.sampled_from(["*", "1", "*/2", "4,5"]),
    st.sampled_from(["*", "3,4", "10", "mar-oct"]),
    st.sampled_from(["*", "sun", "1-5", "6"]),
)


@settings(max_examples=400, deadline=None)
@given(schedules, st.sampled_from(ZONES), st.sampled_from(TRANSITION_DAYS),
       st.integers(min_value=0, max_value=4 * 24 * 60))
def test_next_after_equals_a_minute_by_minute_walk(text, zone, day, minutes):
    schedule = parse_cron(text)
    moment = day.replace(tzinfo=UTC) + timedelta(minutes=minutes, seconds=17)
    expected = reference_next(schedule, moment, zone, timedelta(days=3))
    found = schedule.next_after(moment, zone)
    if expected is None:
        assert found >= moment + timedelta(days=3)
    else:
        assert found == expected
        assert schedule.latest_at_or_before(found, zone) == found
        assert (schedule.latest_at_or_before(found - timedelta(microseconds=1), zone) or moment) <= moment
