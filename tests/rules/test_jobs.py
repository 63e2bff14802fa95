"""Scheduled jobs: each due occurrence runs once across runners sharing a database, errors
are recorded without stopping other jobs, a crashed run is taken over after its lease."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from deskbase.objects.store import Store
from deskbase.rules.jobs.cron import CronError, JobError
from deskbase.rules.jobs.runner import Job, JobBusy, JobRunner

UTC = timezone.utc
T0 = datetime(2026, 1, 5, 10, 3, tzinfo=UTC)      # a Monday; Paris is UTC+1


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Calls:
    """Work that records the occurrences it was run for; raises `fail` on its first run."""

    def __init__(self, fail: BaseException | None = None):
        self.occurrences: list[datetime] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, store: Store, occurrence: datetime) -> str:
        with self.lock:
            self.occurrences.append(occurrence)
            failure, self.fail = self.fail, None
        if failure is not None:
            raise failure
        return f"done for {occurrence:%H:%M}"


class ProcessDied(BaseException):
    """Stands for the process being killed in the middle of a job."""


def test_a_new_job_waits_for_its_next_occurrence(store):
    calls = Calls()
    runner = JobRunner(store, [Job("tick", "*/5 * * * *", calls)])
    assert runner.run_due(at(0)) == []                 # 10:03: first seen, nothing owed
    assert runner.run_due(at(1)) == []                 # 10:04
    [run] = runner.run_due(at(2.5))                    # 10:05:30
    assert run.occurrence == datetime(2026, 1, 5, 10, 5, tzinfo=UTC)
    assert run.outcome == "ok" and run.result == "'done for 10:05'"
    assert runner.run_due(at(3)) == []
    assert calls.occurrences == [datetime(2026, 1, 5, 10, 5, tzinfo=UTC)]


def test_a_job_does_real_work_through_the_store(store):
    def create_reminder(target: Store, occurrence: datetime) -> int:
        return target.run(lambda s: s.create("task", {"title": f"Reminder {occurrence:%H:%M}"}).id)
    runner = JobRunner(store, {"remind": Job("remind", "0 * * * *", create_reminder)})
    runner.run_due(at(0))
    runner.run_due(at(60))
    assert store.read(lambda s: [r["title"] for r in s.query("task").records]) == ["Reminder 11:00"]


def test_a_schedule_is_read_in_the_definitions_zone_unless_the_job_names_one(store):
    paris, utc = Calls(), Calls()
    runner = JobRunner(store, [Job("paris", "0 11 * * *", paris), Job("utc", "0 11 * * *", utc, zone="UTC")])
    runner.run_due(at(0))
    runner.run_due(at(60))                              # 11:03 UTC = 12:03 in Paris
    assert paris.occurrences == []                      # 11:00 in Paris was before the job was first seen
    assert utc.occurrences == [datetime(2026, 1, 5, 11, 0, tzinfo=UTC)]
    runner.run_due(datetime(2026, 1, 6, 10, 0, tzinfo=UTC))
    assert paris.occurrences == [datetime(2026, 1, 6, 10, 0, tzinfo=UTC)]   # 11:00 in Paris


def test_missed_occurrences_collapse_into_one_run_of_the_latest(store):
    calls = Calls()
    runner = JobRunner(store, [Job("tick", "*/5 * * * *", calls)])
    runner.run_due(at(0))
    runs = runner.run_due(at(32))                       # 10:35: six occurrences missed
    assert [r.occurrence for r in runs] == [datetime(2026, 1, 5, 10, 35, tzinfo=UTC)]


def test_with_catch_up_every_missed_occurrence_runs_oldest_first(store):
    calls = Calls()
    runner = JobRunner(store, [Job("top_up", "0 6 1 * *", calls, catch_up=True)])
    runner.run_due(datetime(2026, 1, 15, tzinfo=UTC))
    runs = runner.run_due(datetime(2026, 4, 2, tzinfo=UTC))
    assert [r.occurrence.strftime("%m-%d %H:%M") for r in runs] == ["02-01 05:00", "03-01 05:00", "04-01 04:00"]
    assert runner.run_due(datetime(2026, 4, 3, tzinfo=UTC)) == []


def test_a_failing_job_is_recorded_and_does_not_stop_the_others(store):
    broken, fine = Calls(fail=ValueError("the report template is missing")), Calls()
    runner = JobRunner(store, [Job("a_broken", "*/5 * * * *", broken), Job("b_fine", "*/5 * * * *", fine)])
    runner.run_due(at(0))
    runs = runner.run_due(at(2))
    assert [(r.name, r.outcome) for r in runs] == [("a_broken", "error"), ("b_fine", "ok")]
    assert runs[0].error.startswith("ValueError: the report template is missing")
    status = {s.name: s for s in runner.status(at(2))}
    last = status["a_broken"].last_run
    assert last["outcome"] == "error" and "the report template is missing" in last["error"]
    assert last["duration"] >= 0 and last["holder"] == runner.holder
    assert status["b_fine"].last_run["outcome"] == "ok"
    # the error consumed its occurrence: the job tries again at the next one, not at once
    assert runner.run_due(at(3)) == []
    assert [r.name for r in runner.run_due(at(7))] == ["a_broken", "b_fine"]


def test_a_crash_mid_job_leaves_the_lease_to_expire_and_then_the_occurrence_runs_again(store):
    calls = Calls(fail=ProcessDied())
    job = Job("report", "0 6 * * *", calls, zone="UTC", lease=timedelta(minutes=30))
    first, second = JobRunner(store, [job], holder="first"), JobRunner(store, [job], holder="second")
    first.run_due(datetime(2026, 1, 5, 5, 0, tzinfo=UTC))
    with pytest.raises(ProcessDied):
        first.run_due(datetime(2026, 1, 5, 6, 0, tzinfo=UTC))
    assert second.run_due(datetime(2026, 1, 5, 6, 20, tzinfo=UTC)) == []          # lease still held
    [run] = second.run_due(datetime(2026, 1, 5, 6, 31, tzinfo=UTC))
    assert run.occurrence == datetime(2026, 1, 5, 6, 0, tzinfo=UTC) and run.outcome == "ok"
    assert calls.occurrences == [run.occurrence, run.occurrence]
    runs = second.status(datetime(2026, 1, 5, 6, 31, tzinfo=UTC))[0].runs
    assert [(r["holder"], r["outcome"]) for r in runs] == [("second", "ok"), ("first", "abandoned")]


def test_a_job_can_be_run_by_hand_without_using_up_its_occurrence(store):
    calls = Calls()
    runner = JobRunner(store, [Job("report", "0 6 * * *", calls, zone="UTC")])
    run = runner.run("report", datetime(2026, 1, 5, 5, 0, tzinfo=UTC))
    assert run.manual and run.occurrence == datetime(2026, 1, 5, 5, 0, tzinfo=UTC)
    [scheduled] = runner.run_due(datetime(2026, 1, 5, 6, 1, tzinfo=UTC))
    assert scheduled.occurrence == datetime(2026, 1, 5, 6, 0, tzinfo=UTC) and not scheduled.manual
    assert runner.status(datetime(2026, 1, 5, 6, 1, tzinfo=UTC))[0].runs[1]["manual"] is True


def test_a_job_running_elsewhere_is_not_run_by_hand(store):
    started, release = threading.Event(), threading.Event()

    def slow(target: Store, occurrence: datetime) -> None:
        started.set()
        release.wait(10)
    job = Job("slow", "* * * * *", slow)
    elsewhere = threading.Thread(target=lambda: JobRunner(store, [job], holder="other").run("slow"))
    elsewhere.start()
    try:
        assert started.wait(10)
        with pytest.raises(JobBusy, match="the job `slow` is running on other"):
            JobRunner(store, [job], holder="me").run("slow")
    finally:
        release.set()
        elsewhere.join()


def test_an_unknown_job_is_named_with_a_suggestion(store):
    runner = JobRunner(store, [Job("monthly_report", "0 6 1 * *", Calls())])
    with pytest.raises(JobError, match="there is no job `monthly_reprot`; did you mean `monthly_report`?"):
        runner.run("monthly_reprot")


def test_a_job_with_a_bad_schedule_is_refused_when_declared():
    with pytest.raises(CronError, match="hour `25`"):
        Job("late", "0 25 * * *", Calls())


def test_status_shows_next_occurrence_and_holder(store):
    runner = JobRunner(store, [Job("tick", "*/5 * * * *", Calls(), zone="UTC")])
    runner.run_due(at(0))
    [status] = runner.status(at(0))
    assert status.next_occurrence == datetime(2026, 1, 5, 10, 5, tzinfo=UTC)
    assert status.schedule == "*/5 * * * *" and status.running_on is None and status.last_run is None


# -- two runners on one database -------------------------------------------------------------

@pytest.fixture
def file_store(tasks_definitions, file_uri):
    """A FileStorage database: conflicts between connections are real."""
    opened = Store.open(file_uri, tasks_definitions)
    yield opened
    opened.close()


class RacingRunner(JobRunner):
    """Waits inside its first claim until the other runner is inside its own: both read the
    same state before either commits, so one of them must get a ConflictError."""

    def __init__(self, *args, barrier: threading.Barrier, log: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.barrier, self.log, self.waited = barrier, log, False

    def _claim(self, session, job, moment, *, manual=False):
        claim = super()._claim(session, job, moment, manual=manual)
        self.log.append(f"{self.holder} claims {'it' if claim else 'nothing'}")
        if not self.waited:
            self.waited = True
            self.barrier.wait(10)
        return claim


def another_process(store: Store) -> Store:
    """A second store on the same database, as another process would open it: the writes of
    one process take turns, so two runners racing in one process could never both claim."""
    return Store(store.db, store.definitions, store.uri, hooks=store.hooks, extensions=store.extensions)


def test_two_runners_racing_for_one_occurrence_run_it_exactly_once(file_store):
    calls = Calls()
    job = Job("tick", "*/5 * * * *", calls)
    JobRunner(file_store, [job]).run_due(at(0))
    barrier, log = threading.Barrier(2), []
    runners = [RacingRunner(store, [job], holder=name, barrier=barrier, log=log)
               for store, name in ((file_store, "a"), (another_process(file_store), "b"))]
    results: dict[str, list] = {}
    threads = [threading.Thread(target=lambda r=r: results.setdefault(r.holder, r.run_due(at(2)))) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls.occurrences == [datetime(2026, 1, 5, 10, 5, tzinfo=UTC)]
    assert sorted(len(runs) for runs in results.values()) == [0, 1]
    # both claimed, one commit was refused as a conflict, and its retry found the claim taken
    loser = "a" if not results["a"] else "b"
    assert sorted(log) == sorted(["a claims it", "b claims it", f"{loser} claims nothing"])


def test_two_runners_polling_together_run_every_occurrence_once(file_store):
    calls = Calls()
    jobs = [Job("tick", "* * * * *", calls), Job("other", "*/2 * * * *", Calls())]
    JobRunner(file_store, jobs).run_due(at(0))
    moments = [at(minutes) for minutes in range(1, 31)]
    minute_passes = threading.Barrier(2)               # the two share one clock, as machines do

    def poll(runner: JobRunner) -> None:
        for moment in moments:
            for _ in range(3):                          # each runner asks several times a minute
                runner.run_due(moment)
            minute_passes.wait(10)

    threads = [threading.Thread(target=poll, args=(JobRunner(file_store, jobs, holder=name),)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(calls.occurrences) == [m.replace(second=0) for m in moments]


def test_serving_runs_each_due_occurrence_until_stopped(store):
    calls = Calls()
    runner = JobRunner(store, [Job("tick", "* * * * *", calls)])
    stop = threading.Event()
    moments = iter(at(minutes) for minutes in range(0, 1000))
    seen = []

    def report(run):
        seen.append(run)
        if len(seen) == 3:
            stop.set()
    serving = threading.Thread(target=runner.serve, args=(stop,),
                               kwargs={"interval": 0.001, "report": report, "now": lambda: next(moments)})
    serving.start()
    serving.join(10)
    assert not serving.is_alive()
    # First seen at 10:03, then one run a minute: 10:04, 10:05, 10:06.
    assert [run.occurrence.strftime("%H:%M") for run in seen] == ["10:04", "10:05", "10:06"]
    assert calls.occurrences == [run.occurrence for run in seen]


def test_serving_survives_a_failure_to_reach_the_database(store):
    runner = JobRunner(store, [Job("tick", "* * * * *", Calls())])
    stop = threading.Event()
    moments = iter([None, at(0), at(1)])
    seen = []

    def clock():
        moment = next(moments)
        if moment is None:
            raise ConnectionError("database unreachable")
        return moment

    def report(run):
        seen.append(run)
        stop.set()
    runner.serve(stop, interval=0.001, report=report, now=clock)
    assert [run.occurrence.strftime("%H:%M") for run in seen] == ["10:04"]


def test_a_job_whose_connector_work_was_not_handed_in_fails_with_a_sentence(helpdesk_definitions):
    from deskbase.rules.application import open_store
    from deskbase.rules.jobs.scheduled import scheduled_jobs
    store = open_store("memory://", helpdesk_definitions)
    try:
        jobs = [job for job in scheduled_jobs(helpdesk_definitions, {}) if job.name == "fetch_mail"]
        run = JobRunner(store, jobs).run("fetch_mail")
        assert run.outcome != "ok" and "`fetch_mail` is work of a connector this process was not given" in run.error
    finally:
        store.close()
