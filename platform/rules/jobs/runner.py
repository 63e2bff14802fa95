"""Scheduled jobs (P18): a runner that runs each due occurrence of a job's cron schedule
(cron.py) once across every process sharing the database."""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time as clock
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from BTrees.OOBTree import OOBTree
from persistent import Persistent
from ZODB.POSException import ConflictError

from deskbase.objects.errors import hint_for
from deskbase.objects.kept_objects import kept_object

from .cron import CronSchedule, JobError, as_utc

if TYPE_CHECKING:
    from deskbase.objects.session import Session
    from deskbase.objects.store import Store

UTC = timezone.utc
JOBS_KEY = "deskbase.jobs"       # beside the StoreRoot in the ZODB root mapping
RUNS_KEPT = 20                   # the latest runs of each job kept for an admin page

log = logging.getLogger("deskbase.jobs")


class JobBusy(JobError):
    """The job is running in another process (it holds the job's lease)."""


# -- jobs and their state ------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """Work to run on a schedule: `work(store, occurrence)` opens its own transactions.

    `lease` must be longer than the longest run: past it, another process takes the job
    for a crashed one. With `catch_up`, every missed occurrence runs, oldest first (for
    periodic top-ups); without it, missed occurrences collapse into one run of the latest.
    """

    name: str
    schedule: CronSchedule | str
    work: Callable[["Store", datetime], Any]
    zone: str | None = None                       # None: the definitions' time zone
    lease: timedelta = timedelta(hours=1)
    catch_up: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.schedule, str):
            object.__setattr__(self, "schedule", CronSchedule.parse(self.schedule))

    @property
    def cron(self) -> CronSchedule:
        """The schedule, parsed (a string given is parsed when the job is made)."""
        assert isinstance(self.schedule, CronSchedule)
        return self.schedule


@dataclass(frozen=True)
class JobRun:
    """The result of one run of a job."""

    name: str
    occurrence: datetime             # the scheduled moment, or the moment asked for a manual run
    started_at: datetime
    finished_at: datetime
    duration: float                  # seconds
    outcome: str                     # ok | error
    error: str | None = None
    result: str | None = None        # a short text of what the work returned
    holder: str = ""
    manual: bool = False

    def as_entry(self) -> dict[str, Any]:
        """The run as kept in the database: a plain dict."""
        return {"occurrence": self.occurrence, "started_at": self.started_at, "finished_at": self.finished_at,
                "duration": self.duration, "outcome": self.outcome, "error": self.error,
                "result": self.result, "holder": self.holder, "manual": self.manual}


class JobState(Persistent):
    """What the database knows of one job: the occurrence last handled, the lease of the
    process running it now, and its latest runs. One object per job, so jobs never conflict
    with each other, only two processes claiming the same job do."""

    def __init__(self, name: str, first_seen: datetime):
        self.name = name
        self.first_seen = first_seen             # occurrences before it are not owed
        self.last_occurrence: datetime | None = None
        self.holder: str | None = None
        self.lease_until: datetime | None = None
        self.claimed_occurrence: datetime | None = None
        self.claims = 0                          # a token: which claim a finishing run belongs to
        self.runs: tuple[dict[str, Any], ...] = ()    # newest first, at most RUNS_KEPT

    @property
    def last_run(self) -> dict[str, Any] | None:
        return self.runs[0] if self.runs else None

    def remember(self, entry: dict[str, Any]) -> None:
        """Keep a run's entry in front of the latest runs (replaced, so ZODB sees the change)."""
        self.runs = (entry, *self.runs)[:RUNS_KEPT]

    def leased(self, now: datetime) -> bool:
        """Whether some process holds the job at `now`."""
        return self.holder is not None and self.lease_until is not None and self.lease_until > now


@dataclass(frozen=True)
class JobStatus:
    """A job as an admin page shows it."""

    name: str
    schedule: str
    zone: str
    next_occurrence: datetime
    last_occurrence: datetime | None
    running_on: str | None
    runs: tuple[dict[str, Any], ...]

    @property
    def last_run(self) -> dict[str, Any] | None:
        return self.runs[0] if self.runs else None


@dataclass(frozen=True)
class _Claim:
    job: Job
    occurrence: datetime
    token: int
    manual: bool


# -- the runner ------------------------------------------------------------------------------

class JobRunner:
    """Runs jobs on one store; any number of runners (threads, processes, machines) may share
    the database: each due occurrence runs once."""

    def __init__(self, store: "Store", jobs: Mapping[str, Job] | Iterable[Job], *, holder: str | None = None):
        items = list(jobs.values()) if isinstance(jobs, Mapping) else list(jobs)
        self.store = store
        self.jobs: dict[str, Job] = {job.name: job for job in items}
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"

    def zone(self, job: Job) -> str:
        """The time zone a job's schedule is read in."""
        return job.zone or self.store.definitions.zone

    def run_due(self, now: datetime | None = None) -> list[JobRun]:
        """Run every job whose occurrence is due at `now` and not yet handled anywhere.
        A failing job is recorded and does not stop the others."""
        moment = as_utc(now) if now else datetime.now(UTC)
        self._ensure_states(moment)
        runs: list[JobRun] = []
        for name in sorted(self.jobs):
            job = self.jobs[name]
            for _ in range(1000 if job.catch_up else 1):     # catch-up is bounded per call
                try:
                    claim = self.store.run(lambda session: self._claim(session, job, moment))
                except ConflictError:                       # still contended after the retries: next call
                    log.info("job %s skipped: other runners kept claiming it", name)
                    claim = None
                if claim is None:
                    break
                runs.append(self._execute(claim, moment if now else None))
        return runs

    def serve(self, stop: threading.Event, *, interval: float = 15.0,
              report: Callable[[JobRun], None] | None = None,
              now: Callable[[], datetime] | None = None) -> None:
        """Run due jobs every `interval` seconds until `stop` is set: the scheduler inside a
        server process (start it in a thread) or `deskbase worker`. Any number of processes
        may serve the same database; the leases keep each occurrence to one of them. A failure
        to reach the database is logged and tried again at the next tick, never fatal."""
        while not stop.is_set():
            try:
                runs = self.run_due(now() if now else None)
            except Exception:                               # the database is away: try again later
                log.exception("the job runner could not run the due jobs; trying again in %s s", interval)
                runs = []
            for run in runs:
                if report is not None:
                    report(run)
            stop.wait(interval)

    def run(self, name: str, now: datetime | None = None) -> JobRun:
        """Run one job now, whatever its schedule (`deskbase jobs run NAME`). It takes the job's
        lease, so it never overlaps a scheduled run, and it does not count as an occurrence."""
        job = self._job(name)
        moment = as_utc(now) if now else datetime.now(UTC)
        self._ensure_states(moment)
        claim = self.store.run(lambda session: self._claim(session, job, moment, manual=True))
        if claim is None:
            holder, until = self.store.read(lambda session: (_states(session)[name].holder,
                                                             _states(session)[name].lease_until))
            raise JobBusy(f"the job `{name}` is running on {holder} until "
                          f"{until:%Y-%m-%d %H:%M} UTC at the latest; try again after it")
        return self._execute(claim, moment if now else None)

    def status(self, now: datetime | None = None) -> list[JobStatus]:
        """Every job with its schedule, next occurrence, holder and latest runs."""
        moment = as_utc(now) if now else datetime.now(UTC)

        def work(session: "Session") -> list[JobStatus]:
            states = _states(session) or {}
            found = []
            for name in sorted(self.jobs):
                job, state = self.jobs[name], states.get(name)
                zone = self.zone(job)
                found.append(JobStatus(
                    name, str(job.schedule), zone, job.cron.next_after(moment, zone),
                    state.last_occurrence if state else None,
                    state.holder if state is not None and state.leased(moment) else None,
                    tuple(state.runs) if state else ()))
            return found
        return self.store.read(work)

    # -- steps -------------------------------------------------------------------------------

    def _job(self, name: str) -> Job:
        try:
            return self.jobs[name]
        except KeyError:
            hint = hint_for(name, self.jobs)
            known = ", ".join(sorted(self.jobs)) or "none"
            raise JobError(f"there is no job `{name}`" + (f"; {hint}" if hint else f" (jobs: {known})")) from None

    def _ensure_states(self, moment: datetime) -> None:
        missing = self.store.read(lambda session: [n for n in self.jobs if n not in (_states(session) or {})])
        if not missing:
            return

        def work(session: "Session") -> None:
            # Made once: two runners starting together conflict here and one retries.
            states = kept_object(session.connection, JOBS_KEY, OOBTree)
            for name in missing:
                if name not in states:
                    states[name] = JobState(name, moment)
        self.store.run(work)

    def _claim(self, session: "Session", job: Job, moment: datetime, *, manual: bool = False) -> _Claim | None:
        """In a transaction: take the job's lease for its due occurrence, or return None.

        Two runners claiming the same job at once both write its JobState; ZODB lets one
        commit and raises ConflictError in the other. Store.run retries the loser, which then
        reads the winner's lease (or its finished occurrence) and returns None: it skips.
        """
        state = _states(session)[job.name]
        if state.leased(moment):
            return None
        occurrence: datetime | None
        if manual:
            occurrence = moment
        else:
            occurrence = self._due_occurrence(job, state, moment)
            if occurrence is None:
                return None
        if state.holder is not None:      # a lease ran out without a result: that process died
            state.remember({"occurrence": state.claimed_occurrence, "started_at": None,
                            "finished_at": state.lease_until, "duration": None, "outcome": "abandoned",
                            "error": f"{state.holder} did not finish before its lease ended; run again",
                            "result": None, "holder": state.holder, "manual": False})
        state.claims += 1
        state.holder = self.holder
        state.lease_until = moment + job.lease
        state.claimed_occurrence = None if manual else occurrence
        return _Claim(job, occurrence, state.claims, manual)

    def _due_occurrence(self, job: Job, state: JobState, moment: datetime) -> datetime | None:
        zone = self.zone(job)
        reference = state.last_occurrence or state.first_seen
        schedule = job.cron
        if job.catch_up:
            occurrence = schedule.next_after(reference, zone)
            return occurrence if occurrence <= moment else None
        latest = schedule.latest_at_or_before(moment, zone)
        return latest if latest is not None and latest > reference else None

    def _execute(self, claim: _Claim, fixed_now: datetime | None) -> JobRun:
        started = fixed_now or datetime.now(UTC)
        began = clock.monotonic()
        error = result = None
        try:
            value = claim.job.work(self.store, claim.occurrence)
            result = None if value is None else _short(repr(value))
        except Exception as failure:          # recorded; other jobs go on. BaseException is a crash.
            log.exception("job %s failed", claim.job.name)
            error = _short(f"{type(failure).__name__}: {failure}\n"
                           + "".join(traceback.format_exception(failure)[-6:]), 4000)
        duration = clock.monotonic() - began
        if not error:
            log.info("job %s ran for %s in %.1f s: %s", claim.job.name, claim.occurrence.isoformat(), duration,
                     result if result is not None else "done")
        run = JobRun(claim.job.name, claim.occurrence, started, fixed_now or datetime.now(UTC), duration,
                     "error" if error else "ok", error, result, self.holder, claim.manual)
        self.store.run(lambda session: self._finish(session, claim, run))
        return run

    def _finish(self, session: "Session", claim: _Claim, run: JobRun) -> None:
        state = _states(session)[claim.job.name]
        entry = run.as_entry()
        if state.holder == self.holder and state.claims == claim.token:
            if not claim.manual:
                # An error consumes the occurrence too: the next one tries again, and an admin
                # sees the error and may run the job by hand. Only a crash repeats an occurrence.
                state.last_occurrence = claim.occurrence
            state.holder = state.lease_until = state.claimed_occurrence = None
        else:
            entry["error"] = ((entry["error"] + "\n") if entry["error"] else "") + \
                "the lease had ended before this run finished; another process may have run it too"
        state.remember(entry)


def _states(session: "Session") -> Any:
    return kept_object(session.connection, JOBS_KEY)


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
