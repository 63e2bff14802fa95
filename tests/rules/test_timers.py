"""Timers: clocks counting business time on records, paused and stopped by their state,
targets chosen by policies, thresholds fired once by the timer job, deadlines in fields."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.application import load_application
from deskbase.rules.messages.outbox import list_messages
from deskbase.rules.process.timers import check_due, clocks_of
from deskbase.rules.process.workflows import fire

SLA_APP = Path(__file__).parent / "sla_app"
PARIS = ZoneInfo("Europe/Paris")
UTC = timezone.utc
ANN = Identity("ann", "Ann", ("agent",))
FRIDAY_4PM = datetime(2026, 11, 20, 16, 0, tzinfo=PARIS)


def paris(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture(scope="module")
def definitions():
    return load_application(SLA_APP)


@pytest.fixture
def desk(app_store, definitions):
    with app_store(definitions) as store:
        create_account(store, "ann", name="Ann", password="correct horse battery", roles=["agent"],
                       email="ann@desk.example.org")
        create_account(store, "max", name="Max", password="correct horse battery", roles=["manager"],
                       email="max@desk.example.org")
        yield store


def create(desk, at: datetime, plan: dict | None = None, **values) -> str:
    def work(session):
        if plan is not None:
            values["plan"] = session.create("plan", {"name": "plan", **plan}).id
        return session.create("request", {"title": "printer", "owner": "ann", **values}).number
    return desk.run(work, now=at)


def record(desk, number: str, at: datetime | None = None):
    return desk.read(lambda s: dict(s.find(number).values))


def clocks(desk, number: str, at: datetime) -> dict:
    def work(session):
        session.now = at
        return {c.name: c for c in clocks_of(session, session.find(number))}
    return desk.read(work)


def act(desk, number: str, transition: str, at: datetime) -> None:
    desk.run(lambda s: fire(s, number, transition), identity=ANN, now=at)


def messages(desk) -> list[tuple[str, str, str]]:
    def work(session):
        found = sorted(list_messages(session, limit=1000), key=lambda m: m.queued_at)
        return [(m.recipients[0], m.subject, m.body) for m in found]
    return desk.read(work)


# -- business time and policies ------------------------------------------------------------

def test_deadline_counts_only_office_hours_over_the_weekend(desk):
    number = create(desk, FRIDAY_4PM)
    values = record(desk, number)
    # 4 h from Friday 16:00 with 09:00–17:00 hours: 1 h on Friday, 3 h on Monday.
    assert values["answer_due"] == paris(23, 12).astimezone(UTC)
    # 16 h: 1 h Friday, 8 h Monday, 7 h Tuesday.
    assert values["resolution_due"] == paris(24, 16).astimezone(UTC)
    assert values["resolution_sla"] == "running"
    assert values["update_due"] is None                 # starts only once the request is worked on


def test_holidays_are_not_counted(desk):
    # Wednesday 11 November 2026 is a holiday of the office calendar.
    number = create(desk, paris(10, 16))
    assert record(desk, number)["answer_due"] == paris(12, 12).astimezone(UTC)


def test_policy_through_a_ref_chooses_targets_and_the_plans_calendar(desk):
    number = create(desk, FRIDAY_4PM, plan={"level": "gold", "calendar": "always"})
    values = record(desk, number)
    assert values["answer_due"] == FRIDAY_4PM.astimezone(UTC) + timedelta(hours=1)      # around the clock
    assert values["resolution_due"] == FRIDAY_4PM.astimezone(UTC) + timedelta(hours=8)
    assert clocks(desk, number, FRIDAY_4PM)["resolution"].policy == "gold"


def test_changing_the_priority_chooses_the_policy_again_and_moves_the_deadline(desk):
    number = create(desk, FRIDAY_4PM, plan={"level": "gold", "calendar": "always"})
    later = FRIDAY_4PM + timedelta(hours=1)
    desk.run(lambda s: s.update(number, {"priority": "high"}), now=later)
    values = record(desk, number)
    # 1 h counted already under `gold`; `gold_high` allows 4 h in all, so 3 h are left.
    assert values["resolution_due"] == later.astimezone(UTC) + timedelta(hours=3)
    assert clocks(desk, number, later)["resolution"].policy == "gold_high"


def test_a_first_answer_stops_its_clock_and_is_met_in_time(desk):
    number = create(desk, FRIDAY_4PM)
    act(desk, number, "take", FRIDAY_4PM + timedelta(minutes=30))
    found = clocks(desk, number, paris(23, 12))
    assert found["first_answer"].state == "met"
    assert found["first_answer"].elapsed == timedelta(minutes=30)     # stopped: no longer counting
    assert found["resolution"].state == "running"


def test_waiting_pauses_the_clock_and_the_deadline_moves_by_the_time_paused(desk):
    number = create(desk, paris(23, 9))                       # Monday 09:00
    act(desk, number, "take", paris(23, 10))
    act(desk, number, "wait", paris(23, 11))                  # 2 h counted
    values = record(desk, number)
    assert values["resolution_sla"] == "paused"
    assert values["resolution_due"] is None                  # unknown while waiting
    assert clocks(desk, number, paris(25, 11))["resolution"].elapsed == timedelta(hours=2)
    act(desk, number, "resume", paris(24, 11))                # a day later: 14 h left
    values = record(desk, number)
    assert values["resolution_sla"] == "running"
    assert values["resolution_due"] == paris(25, 17).astimezone(UTC)   # Tue 11–17 (6 h) + Wed 09–17 (8 h)


def test_finishing_late_shows_breached_and_reopening_counts_on(desk):
    number = create(desk, paris(23, 9))
    act(desk, number, "take", paris(23, 9, 30))
    act(desk, number, "finish", paris(25, 12))                # 8 + 8 + 3 = 19 h > 16 h
    assert record(desk, number)["resolution_sla"] == "breached"
    assert clocks(desk, number, paris(27, 12))["resolution"].elapsed == timedelta(hours=19)
    act(desk, number, "reopen", paris(26, 9))                 # `resumes`: it counts again
    assert clocks(desk, number, paris(26, 10))["resolution"].elapsed == timedelta(hours=20)


def test_finishing_in_time_shows_met(desk):
    number = create(desk, paris(23, 9))
    act(desk, number, "take", paris(23, 9, 30))
    act(desk, number, "finish", paris(23, 15))
    assert record(desk, number)["resolution_sla"] == "met"


def test_a_staff_reply_restarts_the_next_update_clock_and_a_customer_reply_does_not(desk):
    number = create(desk, paris(23, 9))
    act(desk, number, "take", paris(23, 9))
    assert record(desk, number)["update_due"] == paris(23, 17).astimezone(UTC)
    request_id = record(desk, number)["id"]
    desk.run(lambda s: s.create("reply", {"request": request_id, "from_staff": False}), now=paris(23, 12))
    assert record(desk, number)["update_due"] == paris(23, 17).astimezone(UTC)
    desk.run(lambda s: s.create("reply", {"request": request_id, "from_staff": True}), identity=ANN,
             now=paris(23, 12))
    assert record(desk, number)["update_due"] == paris(24, 12).astimezone(UTC)    # 8 h from Monday noon
    assert clocks(desk, number, paris(23, 13))["next_update"].elapsed == timedelta(hours=1)
    last = desk.read(lambda s: s.find(number).history.entries[-1])
    assert last["reason"] == "timer next_update restarted" and last["by"] == "system"


# -- the timer job ---------------------------------------------------------------------------

def resolution_passed(report):
    return [(p.percent, p.event) for p in report.passed if p.clock == "resolution"]


def test_job_fires_each_threshold_once_with_messages_history_and_escalation(desk):
    number = create(desk, paris(23, 9), priority="high")
    act(desk, number, "take", paris(23, 9))
    report = check_due(desk, paris(23, 17))                            # 8 h of 16: 50 %
    assert [(p.number, p.clock, p.event) for p in report.passed] == [(number, "next_update", "update_late")]

    assert resolution_passed(check_due(desk, paris(24, 13))) == []      # 12 h: 75 %
    report = check_due(desk, paris(24, 14))                            # 13 h: 81 %
    assert [(p.number, p.clock, p.percent, p.event) for p in report.passed] == [(number, "resolution", 80, "warning")]
    assert messages(desk)[-1][0] == "ann@desk.example.org"
    assert "80% of resolution used" in messages(desk)[-1][1]
    assert "13h of 16h used" in messages(desk)[-1][2]

    assert check_due(desk, paris(24, 15)).passed == []                 # nothing new: nothing again
    report = check_due(desk, paris(25, 9))                             # 16 h: 100 %
    assert resolution_passed(report) == [(100, "breach")]
    values = record(desk, number)
    assert values["escalated"] is True and values["resolution_sla"] == "breached"
    assert messages(desk)[-1][0] == "max@desk.example.org"            # the manager hears of it
    history = desk.read(lambda s: s.find(number).history.entries)
    assert history[-1]["reason"] == "timer resolution 100% (breach)"
    assert history[-1]["changes"]["escalated"] == (None, True)

    report = check_due(desk, paris(25, 17))                            # 24 h: 150 %
    assert resolution_passed(report) == [(150, "critical")]
    sms = desk.read(lambda s: [m for m in list_messages(s, limit=100) if m.channel == "sms"])
    assert [tuple(m.recipients) for m in sms] == [("+33600000001",)]
    assert "150%" in sms[0].body


def test_job_reads_only_records_that_are_due(desk):
    numbers = [create(desk, paris(23, 9)) for _ in range(30)]
    late = create(desk, paris(20, 9))                                  # a Friday earlier
    report = check_due(desk, paris(23, 10))
    assert report.checked == 1                                         # only the old one
    assert {p.number for p in report.passed} == {late}
    assert check_due(desk, paris(23, 10)).checked == 0
    assert len(numbers) == 30


def test_a_paused_clock_fires_nothing(desk):
    number = create(desk, paris(23, 9))
    act(desk, number, "take", paris(23, 9))
    act(desk, number, "wait", paris(23, 10))
    report = check_due(desk, paris(30, 17))
    assert [p for p in report.passed if p.clock == "resolution"] == []


def test_job_in_batches_sees_every_due_record_once(desk):
    numbers = {create(desk, paris(16, 9)) for _ in range(7)}
    report = check_due(desk, paris(23, 10), batch=3)
    assert report.checked == 7
    assert {p.number for p in report.passed if p.clock == "first_answer"} == numbers


def test_deleting_a_record_stops_its_clocks(desk):
    number = create(desk, paris(20, 9))
    desk.run(lambda s: s.delete(number))
    assert check_due(desk, paris(30, 9)).checked == 0


# -- definitions ------------------------------------------------------------------------------

def broken(tmp_path: Path, old: str, new: str) -> str:
    folder = tmp_path / "app"
    shutil.copytree(SLA_APP, folder)
    path = folder / "sla.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(DefinitionErrors) as caught:
        load_application(folder)
    return str(caught.value)


def test_unknown_calendar_is_named_with_the_known_ones(tmp_path):
    message = broken(tmp_path, "plan.calendar, default: office}", "plan.calendar, default: ofice}")
    assert "sla.yaml:" in message and "`ofice` is not a calendar" in message and "did you mean `office`" in message


def test_a_calendar_enum_value_that_is_no_calendar_is_refused(tmp_path):
    message = broken(tmp_path, "values: [office, always], default: office", "values: [office, nights], default: office")
    assert "the value `nights` of `plan.calendar` is not a calendar" in message


def test_deadline_must_be_a_datetime_field(tmp_path):
    message = broken(tmp_path, "deadline: answer_due", "deadline: title")
    assert "`title` is not a datetime field of `request`" in message


def test_state_field_needs_every_state(tmp_path):
    message = broken(tmp_path, "values: [waiting, running, paused, met, breached]", "values: [running, met]")
    assert "it lacks waiting, paused, breached" in message


def test_target_of_an_unknown_clock_is_refused(tmp_path):
    message = broken(tmp_path, "targets: {first_answer: 4h,", "targets: {first_anwser: 4h,")
    assert "`first_anwser` is not a clock of `request`" in message and "did you mean `first_answer`" in message


def test_a_target_that_is_no_duration_is_refused(tmp_path):
    message = broken(tmp_path, "resolution: 16h", "resolution: soon")
    assert "`soon` is not a duration" in message


def test_a_broken_calendar_is_located(tmp_path):
    message = broken(tmp_path, "mon: 09:00-17:00, tue", "mon: 09:00-37:00, tue")
    assert "sla.yaml:" in message and "calendars.office.hours.mon" in message


def test_timer_events_in_a_notification_need_the_timer_event(tmp_path):
    message = broken(tmp_path, "on: {type: request, events: [timer], timers: [warning]}",
                     "on: {type: request, events: [create], timers: [warning]}")
    assert "add it to `events`" in message


def test_a_person_cannot_type_a_deadline(desk):
    from deskbase.rules.access.scopes import AccessDenied
    number = create(desk, paris(23, 9))
    with pytest.raises(AccessDenied) as refused:
        desk.run(lambda s: s.update(number, {"resolution_due": paris(30, 9)}), identity=ANN, now=paris(23, 10))
    assert "resolution_due is kept by the timers" in str(refused.value)
    assert refused.value.fields == {"resolution_due": "kept by the timer `resolution`"}
    assert record(desk, number)["resolution_due"] == paris(24, 17).astimezone(UTC)


def test_a_clock_counts_from_when_the_request_was_reported(app_store, tmp_path):
    folder = tmp_path / "app"
    shutil.copytree(SLA_APP, folder)
    path = folder / "sla.yaml"
    text = path.read_text()
    text = text.replace("      owner:    {kind: user}\n", "      owner:    {kind: user}\n      reported: {kind: datetime}\n")
    text = text.replace("          stop: {status: {ne: new}}\n", "          stop: {status: {ne: new}}\n          counts_from: reported\n")
    path.write_text(text)
    with app_store(folder) as store:
        # Phoned in at 09:00 on Monday, typed in at 12:00: three of the four hours are gone.
        number = create(store, paris(23, 12), reported=paris(23, 9))
        assert record(store, number)["answer_due"] == paris(23, 13).astimezone(UTC)
        # Typed in a day late: the target was passed at 13:00 the day before.
        late = create(store, paris(24, 12), reported=paris(23, 9))
        assert record(store, late)["answer_due"] == paris(23, 13).astimezone(UTC)
        report = check_due(store, paris(24, 12, 1))
        assert {(p.number, p.percent) for p in report.passed if p.clock == "first_answer"} >= {(late, 80), (late, 100)}


def test_records_from_before_the_timers_get_their_clocks_when_started(app_store, definitions):
    import dataclasses

    from deskbase.rules.process.timers import start_missing
    bare = dataclasses.replace(definitions, extensions={**definitions.extensions, "timers": None})
    with app_store(bare) as store:
        number = store.run(lambda s: s.create("request", {"title": "old one"}).number, now=paris(23, 9))
        assert record(store, number)["resolution_due"] is None
        store.definitions = definitions                      # the timers are added to the definitions
        assert start_missing(store) == 1
        values = record(store, number)
        assert values["resolution_sla"] == "running" and values["resolution_due"] is not None
        assert store.read(lambda s: s.find(number).history.entries[-1].get("reason")) == "timers started"
        assert start_missing(store) == 0


def test_a_misspelt_holiday_country_is_located(tmp_path):
    message = broken(tmp_path, "holidays: [12-25, 2026-11-11]", "holidays: {country: Francia, add: [12-25]}")
    assert "sla.yaml:20:" in message and "calendars.office.holidays.country" in message
    assert '"Francia" is not a country whose public holidays are known' in message
