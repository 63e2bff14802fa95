"""Business calendars: reading definitions, and business-time arithmetic on chosen dates
(docs/definitions.md, "Calendars and timers"). Generated calendars are checked against a
minute walk in test_calendar_properties."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import yaml

from deskbase.objects.errors import DeskbaseError
from deskbase.rules.process.calendars import BusinessCalendar, CalendarError

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
WORKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE = {
    "timezone": "Europe/Paris",
    "hours": {**{day: ["08:00-12:00", "13:30-17:30"] for day in WORKDAYS}, "sat": [], "sun": []},
    "holidays": ["01-01", "05-01", "12-25", "2026-05-14"],
    "exceptions": {"2026-12-24": ["08:00-12:00"]},
}


def paris(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=PARIS)


def every_day(*intervals: str, zone: str = "Europe/Paris") -> BusinessCalendar:
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return BusinessCalendar.from_definition({"timezone": zone, "hours": {day: list(intervals) for day in days}})


@pytest.fixture
def office() -> BusinessCalendar:
    return BusinessCalendar.from_definition(OFFICE)


# -- working hours --------------------------------------------------------------------------

def test_a_request_made_friday_evening_is_due_monday_morning(office):
    assert office.add(paris(2026, 3, 6, 18, 0), timedelta(hours=2)) == paris(2026, 3, 9, 10, 0)


def test_the_lunch_break_is_not_counted(office):
    assert office.add(paris(2026, 3, 3, 11, 0), timedelta(hours=2)) == paris(2026, 3, 3, 14, 30)
    assert office.between(paris(2026, 3, 3, 11, 0), paris(2026, 3, 3, 14, 30)) == timedelta(hours=2)


def test_a_duration_that_fills_the_day_ends_at_closing_time(office):
    assert office.add(paris(2026, 3, 6, 8, 0), timedelta(hours=8)) == paris(2026, 3, 6, 17, 30)


def test_a_duration_of_whole_weeks_ends_at_closing_time(office):
    # Two days, then exactly two ordinary weeks: it ends on Tuesday evening, not Wednesday morning.
    assert office.add(paris(2026, 6, 1, 8, 0), timedelta(hours=96)) == paris(2026, 6, 16, 17, 30)


def test_long_durations_cross_months_holidays_and_clock_changes(office):
    # 6h45 on the first day, 36 full days, then 5h15: past the change to summer time.
    start = paris(2026, 2, 16, 9, 15)
    end = office.add(start, timedelta(hours=300))
    assert end == paris(2026, 4, 8, 14, 45)
    assert office.between(start, end) == timedelta(hours=300)
    # 7h, then a half day on the 24th, two yearly holidays and 36 full days, then 1h.
    assert office.add(paris(2026, 12, 1, 9, 0), timedelta(hours=300)) == paris(2027, 1, 26, 9, 0)


def test_a_closing_moment_is_closed_and_an_opening_moment_is_open(office):
    assert office.is_open(paris(2026, 3, 3, 8, 0))
    assert not office.is_open(paris(2026, 3, 3, 12, 0))
    assert office.is_open(paris(2026, 3, 3, 17, 29, 59))
    assert not office.is_open(paris(2026, 3, 3, 17, 30))
    assert not office.is_open(paris(2026, 3, 7, 10, 0))   # a Saturday


# -- zero durations and openings -------------------------------------------------------------

def test_a_zero_duration_keeps_a_start_within_hours(office):
    start = paris(2026, 3, 3, 10, 17, 3)
    assert office.add(start, timedelta(0)) == start == office.next_open(start)


def test_a_zero_duration_moves_a_closed_start_to_the_next_opening(office):
    assert office.add(paris(2026, 3, 3, 12, 0), timedelta(0)) == paris(2026, 3, 3, 13, 30)
    assert office.next_open(paris(2026, 3, 6, 17, 30)) == paris(2026, 3, 9, 8, 0)


def test_between_is_zero_when_the_end_is_not_after_the_start(office):
    moment = paris(2026, 3, 3, 10, 0)
    assert office.between(moment, moment) == timedelta(0)
    assert office.between(moment, moment - timedelta(hours=5)) == timedelta(0)


def test_a_period_entirely_out_of_hours_counts_nothing(office):
    assert office.between(paris(2026, 3, 6, 17, 30), paris(2026, 3, 9, 8, 0)) == timedelta(0)


# -- holidays and exceptions ------------------------------------------------------------------

def test_holidays_are_skipped(office):
    # 14 May 2026 is a one-off holiday: an hour asked on Wednesday evening is due on Friday.
    assert office.add(paris(2026, 5, 13, 17, 0), timedelta(hours=1)) == paris(2026, 5, 15, 8, 30)


def test_yearly_holidays_recur_every_year(office):
    assert not office.is_open(paris(2027, 1, 1, 10, 0))   # a Friday
    assert not office.is_open(paris(2029, 1, 1, 10, 0))   # a Monday
    assert office.is_open(paris(2029, 1, 2, 10, 0))


def test_a_half_day_exception_closes_at_noon(office):
    assert office.is_open(paris(2026, 12, 24, 11, 0))
    assert not office.is_open(paris(2026, 12, 24, 14, 0))
    # Then Christmas and a weekend: two hours from 11:00 on the 24th end on Monday at 09:00.
    assert office.add(paris(2026, 12, 24, 11, 0), timedelta(hours=2)) == paris(2026, 12, 28, 9, 0)


def test_an_exception_overrides_a_yearly_holiday():
    definition = {**OFFICE, "exceptions": {"2027-01-01": ["09:00-12:00"]}}
    calendar = BusinessCalendar.from_definition(definition)
    assert calendar.is_open(paris(2027, 1, 1, 10, 0))
    assert not calendar.is_open(paris(2028, 1, 1, 10, 0))


def test_an_exception_may_close_an_ordinary_day():
    calendar = BusinessCalendar.from_definition({**OFFICE, "exceptions": {"2026-03-04": []}})
    assert calendar.add(paris(2026, 3, 3, 17, 0), timedelta(hours=1)) == paris(2026, 3, 5, 8, 30)


def test_a_calendar_with_no_more_working_time_says_so():
    calendar = BusinessCalendar.from_definition({"timezone": "UTC", "exceptions": {"2026-06-01": ["09:00-10:00"]}})
    assert calendar.next_open(datetime(2026, 5, 1, tzinfo=UTC)) == datetime(2026, 6, 1, 9, tzinfo=UTC)
    with pytest.raises(CalendarError, match="no working time after 2026-06-01"):
        calendar.add(datetime(2026, 5, 1, tzinfo=UTC), timedelta(hours=2))


# -- time zones and clock changes --------------------------------------------------------------

def test_moments_in_any_zone_give_moments_in_utc(office):
    start = datetime(2026, 3, 3, 4, 0, tzinfo=ZoneInfo("America/New_York"))   # 10:00 in Paris
    due = office.add(start, timedelta(hours=1))
    assert due.tzinfo is UTC and due == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def test_working_hours_follow_the_local_clock_across_a_clock_change(office):
    # Friday 17:00 CET plus one hour is Monday 08:30 CEST, 06:30 UTC.
    assert office.add(paris(2026, 3, 27, 17, 0), timedelta(hours=1)) == datetime(2026, 3, 30, 6, 30, tzinfo=UTC)


def test_the_spring_forward_day_is_an_hour_shorter():
    assert every_day("00:00-24:00").between(paris(2026, 3, 29), paris(2026, 3, 30)) == timedelta(hours=23)
    assert every_day("01:00-04:00").between(paris(2026, 3, 29), paris(2026, 3, 30)) == timedelta(hours=2)


def test_the_fall_back_day_is_an_hour_longer():
    assert every_day("00:00-24:00").between(paris(2026, 10, 25), paris(2026, 10, 26)) == timedelta(hours=25)
    assert every_day("01:00-04:00").between(paris(2026, 10, 25), paris(2026, 10, 26)) == timedelta(hours=4)


def test_a_start_that_the_clock_skips_opens_when_the_clock_jumps():
    # In Paris on 29 March 2026 the clock goes from 02:00 straight to 03:00 (01:00 UTC).
    calendar = every_day("02:30-05:00")
    assert calendar.next_open(datetime(2026, 3, 28, 23, 0, tzinfo=UTC)) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert calendar.between(paris(2026, 3, 29), paris(2026, 3, 30)) == timedelta(hours=2)
    assert every_day("02:15-02:45").between(paris(2026, 3, 29), paris(2026, 3, 30)) == timedelta(0)


def test_an_end_in_the_repeated_hour_means_its_first_occurrence():
    # In Paris on 25 October 2026 the clock shows 02:00-03:00 twice; 02:30 closes the first time.
    calendar = every_day("00:00-02:30")
    assert calendar.between(paris(2026, 10, 25), paris(2026, 10, 26)) == timedelta(hours=2, minutes=30)
    assert calendar.is_open(datetime(2026, 10, 25, 0, 15, tzinfo=UTC))       # 02:15 the first time
    assert not calendar.is_open(datetime(2026, 10, 25, 1, 15, tzinfo=UTC))   # 02:15 the second time


def test_an_hour_repeated_over_midnight_counts_for_the_new_date():
    # In St John's on 7 November 2010 the clock went from 00:01 back to 23:01 the day before;
    # 00:00-01:00 on the 7th then lasts two hours, the repeated hour included.
    calendar = every_day("00:00-01:00", zone="America/St_Johns")
    assert calendar.is_open(datetime(2010, 11, 7, 3, 0, tzinfo=UTC))   # 23:29 on the 6th, shown again
    assert calendar.between(datetime(2010, 11, 7, tzinfo=UTC), datetime(2010, 11, 8, tzinfo=UTC)) == timedelta(hours=2)
    assert calendar.add(datetime(2010, 11, 7, 3, 0, tzinfo=UTC), timedelta(hours=1)) == datetime(2010, 11, 7, 4, 0, tzinfo=UTC)


def test_new_york_hours_keep_their_local_times_through_both_changes():
    calendar = every_day("09:00-17:00", zone="America/New_York")
    assert calendar.next_open(datetime(2026, 3, 8, 0, 0, tzinfo=UTC)) == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    assert calendar.next_open(datetime(2026, 11, 1, 0, 0, tzinfo=UTC)) == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


def test_a_calendar_open_around_the_clock_counts_real_time():
    for zone in ("UTC", "Europe/Paris", "Australia/Lord_Howe"):
        calendar = every_day("00:00-24:00", zone=zone)
        start = datetime(2026, 3, 20, 7, 45, 12, tzinfo=UTC)
        for hours in (0, 1, 100, 24 * 200):
            assert calendar.add(start, timedelta(hours=hours)) == start + timedelta(hours=hours)
        assert calendar.is_open(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))


# -- refusing questions ------------------------------------------------------------------------

def test_a_moment_without_a_time_zone_is_refused(office):
    with pytest.raises(CalendarError, match="has no time zone"):
        office.add(datetime(2026, 3, 3, 10, 0), timedelta(hours=1))


def test_a_negative_duration_is_refused(office):
    with pytest.raises(CalendarError, match="cannot be negative"):
        office.add(paris(2026, 3, 3, 10, 0), timedelta(hours=-1))


# -- reading definitions ---------------------------------------------------------------------

def test_a_calendar_reads_from_yaml_as_a_consultant_writes_it():
    text = """
    timezone: Europe/Paris
    hours:
      monday: [08:00-12:00, 13:30-17:30]
      tue: 08:00-17:00
      sat:
    holidays: [2026-12-25, 01-01]
    exceptions:
      2026-12-24: [08:00-12:00]
    """
    calendar = BusinessCalendar.from_definition(yaml.safe_load(text))
    assert calendar.zone == "Europe/Paris"
    assert calendar.hours[0] == ((time(8), time(12)), (time(13, 30), time(17, 30)))
    assert calendar.hours[1] == ((time(8), time(17)),)
    assert calendar.hours[2:] == ((),) * 5
    assert calendar.holidays == frozenset({date(2026, 12, 25), (1, 1)})
    assert calendar.exceptions == ((date(2026, 12, 24), ((time(8), time(12)),)),)


def test_hours_may_run_to_midnight():
    calendar = every_day("00:00-24:00")
    assert calendar.hours[0] == ((time(0), time(0)),)
    late = every_day("18:00-24:00")
    assert late.between(paris(2026, 3, 3), paris(2026, 3, 4)) == timedelta(hours=6)


def test_a_calendar_can_be_built_from_times():
    weekday = ((time(9), time(17)),)
    calendar = BusinessCalendar(zone="UTC", hours=(weekday,) * 5 + ((), ()), holidays=frozenset({(12, 25)}))
    assert calendar == BusinessCalendar.from_definition(
        {"timezone": "UTC", "hours": {day: ["09:00-17:00"] for day in WORKDAYS}, "holidays": ["12-25"]})
    assert hash(calendar) == hash(BusinessCalendar(zone="UTC", hours=(weekday,) * 5 + ((), ()),
                                                   holidays=frozenset({(12, 25)})))


def test_intervals_are_kept_in_order_of_the_day():
    calendar = BusinessCalendar.from_definition({"timezone": "UTC", "hours": {"mon": ["13:00-17:00", "08:00-12:00"]}})
    assert calendar.hours[0] == ((time(8), time(12)), (time(13), time(17)))


@pytest.mark.parametrize("definition, message", [
    ({"hours": {"mon": ["08:00-25:00"]}}, 'hours.mon[0]: "25:00" is not a time of day'),
    ({"hours": {"mon": ["8h-12h"]}}, 'hours.mon[0]: "8h" is not a time of day'),
    ({"hours": {"mon": ["08:00"]}}, 'hours.mon[0]: "08:00" is not an interval; write it as 08:00-12:00'),
    ({"hours": {"mon": ["24:00-24:00"]}}, "hours.mon[0]: a day's hours cannot start at 24:00"),
    ({"hours": {"mon": ["08:00-12:00", "11:00-14:00"]}}, "hours.mon: 11:00-14:00 overlaps 08:00-12:00"),
    ({"hours": {"mon": ["17:00-08:00"]}}, "hours.mon: 17:00-08:00 ends before it starts"),
    ({"hours": {"mon": ["08:00-08:00"]}}, "hours.mon: 08:00-08:00 is empty"),
    ({"hours": {"tuesdy": ["08:00-12:00"]}}, 'hours.tuesdy: "tuesdy" is not a day of the week (mon … sun); '
                                              "did you mean `tuesday`?"),
    ({"hours": {"mon": [], "monday": []}}, "hours.monday: `monday` repeats `mon`"),
    ({"holidays": ["02-30"]}, 'holidays[0]: "02-30" is not a date or a day of the year'),
    ({"holidays": ["2026-02-30"]}, 'holidays[0]: "2026-02-30" is not a date'),
    ({"holidays": ["2026-12-24"], "exceptions": {"2026-12-24": []}},
     "exceptions: 2026-12-24 is both a holiday and an exception; keep one"),
    ({"holiday": []}, "holiday: `holiday` is not a calendar setting; did you mean `holidays`?"),
])
def test_a_faulty_definition_is_refused_with_a_sentence(definition, message):
    with pytest.raises(CalendarError) as raised:
        BusinessCalendar.from_definition({"timezone": "Europe/Paris", **definition})
    assert str(raised.value).startswith(message)


def test_an_unknown_time_zone_suggests_the_closest():
    with pytest.raises(CalendarError) as raised:
        BusinessCalendar.from_definition({"timezone": "Europe/Pariss", "hours": {}})
    assert str(raised.value) == 'timezone: "Europe/Pariss" is not a known time zone; did you mean `Europe/Paris`?'


def test_a_calendar_without_a_time_zone_is_refused():
    with pytest.raises(CalendarError, match="a calendar needs a `timezone`"):
        BusinessCalendar.from_definition({"hours": {"mon": ["08:00-12:00"]}})


def test_calendar_errors_are_deskbase_errors_carrying_their_path():
    with pytest.raises(DeskbaseError) as raised:
        BusinessCalendar.from_definition({"timezone": "UTC", "hours": {"mon": ["25:00-26:00"]}})
    assert raised.value.path == "hours.mon[0]"
    assert raised.value.hint == "write hours as HH:MM, from 00:00 to 24:00"


# -- a country's public holidays, every year ------------------------------------------------------

def national(holidays, zone: str = "Europe/Paris") -> BusinessCalendar:
    return BusinessCalendar.from_definition({"timezone": zone, "hours": {day: ["08:00-12:00"] for day in WORKDAYS},
                                             "holidays": holidays})


def test_easter_monday_is_a_holiday_every_year_not_only_the_typed_ones():
    france = national({"country": "FR"})
    for easter_monday in (date(2026, 4, 6), date(2028, 4, 17), date(2031, 4, 14), date(2040, 4, 2)):
        assert not france.is_open(paris(*easter_monday.timetuple()[:3], 9))
        assert france.is_open(paris(*(easter_monday + timedelta(days=1)).timetuple()[:3], 9))


def test_an_sla_over_a_moving_holiday_counts_the_day_after():
    # Thursday 25 May 2028, Ascension: four hours asked on Wednesday at noon fall on Friday.
    france = national({"country": "FR"})
    assert france.add(paris(2028, 5, 24, 12), timedelta(hours=4)) == paris(2028, 5, 26, 12).astimezone(UTC)


def test_each_country_closes_on_its_own_days():
    prague, lisbon, zagreb = (national({"country": code}, zone) for code, zone in
                              (("CZ", "Europe/Prague"), ("PT", "Europe/Lisbon"), ("HR", "Europe/Zagreb")))
    jan_hus = datetime(2030, 7, 5, 9, tzinfo=ZoneInfo("Europe/Prague"))     # a Friday
    assert not prague.is_open(jan_hus) and lisbon.is_open(jan_hus) and zagreb.is_open(jan_hus)
    portugal_day = datetime(2027, 6, 10, 9, tzinfo=ZoneInfo("Europe/Lisbon"))   # a Thursday
    assert not lisbon.is_open(portugal_day) and prague.is_open(portugal_day)
    statehood = datetime(2027, 5, 31, 9, tzinfo=ZoneInfo("Europe/Zagreb"))    # 30 May is a Sunday: no shift
    assert zagreb.is_open(statehood)
    assert not zagreb.is_open(datetime(2028, 5, 30, 9, tzinfo=ZoneInfo("Europe/Zagreb")))


def test_a_region_adds_its_own_holidays():
    porto = national({"country": "PT", "subdivision": "13"}, "Europe/Lisbon")
    lisbon = national({"country": "PT", "subdivision": "11"}, "Europe/Lisbon")
    sao_joao = datetime(2027, 6, 24, 9, tzinfo=ZoneInfo("Europe/Lisbon"))        # a Thursday
    assert not porto.is_open(sao_joao) and lisbon.is_open(sao_joao)


def test_the_yaml_adds_and_removes_days():
    france = national({"country": "FR", "add": ["12-26", "2027-05-07"],
                       "remove": ["Pentecost Monday", "2027-05-06", "11-11"]})
    assert not france.is_open(paris(2028, 12, 26, 9)) and not france.is_open(paris(2027, 5, 7, 9))
    assert france.is_open(paris(2028, 6, 5, 9))     # Whit Monday worked, by its name
    assert france.is_open(paris(2027, 5, 6, 9))     # Ascension 2027 worked, by its date
    assert not france.is_open(paris(2028, 5, 25, 9))  # … but Ascension 2028 is closed
    assert france.is_open(paris(2027, 11, 11, 9))   # Armistice worked every year
    assert not france.is_open(paris(2027, 12, 25, 9))


def test_the_handbook_lists_the_holidays_of_a_year_in_the_readers_language():
    france = national({"country": "FR", "remove": ["Pentecost Monday"]})
    named = dict(france.public_holidays(2028, "fr"))
    assert named[date(2028, 4, 17)] == "Lundi de Pâques" and date(2028, 6, 5) not in named
    assert dict(france.public_holidays(2028, "en"))[date(2028, 4, 17)] == "Easter Monday"
    czech = dict(national({"country": "CZ"}, "Europe/Prague").public_holidays(2027, "cs"))
    assert czech[date(2027, 7, 6)] == "Den upálení mistra Jana Husa"


@pytest.mark.parametrize("holidays, message", [
    ({"country": "XQ"}, 'holidays.country: "XQ" is not a country whose public holidays are known; give its ISO 3166 '
                        "code, such as FR, CZ, PT or HR"),
    ({"country": "FR", "subdivision": "99"}, 'holidays.subdivision: "99" is not a subdivision of FR; one of 57,'),
    ({"country": "CZ", "subdivision": "JM"}, 'holidays.subdivision: "JM" is not a subdivision of CZ; CZ has no '
                                             "subdivisions; leave it out"),
    ({"subdivision": "57"}, "holidays.subdivision: a subdivision needs its `country`"),
    ({"country": "FR", "remove": ["Pentcost Monday"]},
     'holidays.remove: "Pentcost Monday" is not the name of a public holiday of FR; did you mean `Pentecost Monday`?'),
    ({"country": "FR", "remove": ["2027-05-18"]}, "holidays.remove: 2027-05-18 is not a public holiday of FR"),
    ({"country": "FR", "remove": ["03-03"]}, "holidays.remove: 03-03 is not a public holiday of FR"),
    ({"remove": ["05-08"]}, "holidays.remove: only a country's public holidays can be removed; give the `country`"),
    ({"country": "FR", "add": ["05-08"], "remove": ["05-08"]}, "holidays.remove: 05-08 is both added and removed"),
    ({"country": "FR", "remove": "05-08"}, "holidays.remove: `remove` is a list of dates, yearly days and holiday"),
    ({"country": "FR", "add": ["13-01"]}, 'holidays.add[0]: "13-01" is not a date or a day of the year'),
    ({"contry": "FR"}, "holidays.contry: `contry` is not a setting of holidays (country, subdivision, add, remove); "
                       "did you mean `country`?"),
])
def test_a_faulty_country_or_change_is_refused_with_a_sentence(holidays, message):
    with pytest.raises(CalendarError) as raised:
        national(holidays)
    assert str(raised.value).startswith(message)
