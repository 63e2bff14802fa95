"""Playing a scenario on a fresh in-memory store of an application: its `given` made, then each
step done through the product's own write path — as the named account, so access checks,
workflows, timers, notifications and approvals all run — at the scenario's moment, which only
`time passes` moves (running the jobs that act on records when they fall due)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from deskbase.objects.errors import DeskbaseError, FieldError, NotFound, ValidationError, hint_for
from deskbase.objects.fields import RefKind, parse_duration
from deskbase.objects.model import Definitions
from deskbase.objects.records import Record
from deskbase.objects.session import Session
from deskbase.objects.store import Store
from deskbase.rules.access.identity import (
    AccountError,
    Identity,
    create_account,
    find_account,
    identity_for_account,
    list_accounts,
)
from deskbase.rules.application import load_application_demo, open_store
from deskbase.rules.intake.mail_intake import ingest, mailbox_named, mailboxes
from deskbase.rules.jobs.cron import CronSchedule
from deskbase.rules.jobs.scheduled import ACTIONS as JOB_ACTIONS, JobDefinition, job_definitions
from deskbase.rules.messages.outbox import list_messages, record_thread
from deskbase.rules.process.approvals import decide_approval, next_reminder
from deskbase.rules.process.timers import next_checkpoint
from deskbase.rules.process.workflows import fire

from .expectations import ALL_MESSAGES, check
from .reading import Failure, Scenario, Step, StepFailed

T = TypeVar("T")
UTC = timezone.utc
# A Monday morning: a scenario without `given: {now: …}` starts then, in the settings' zone.
DEFAULT_START = "2026-03-02 09:00"
# The people of a scenario sign in nowhere: their accounts get this password.
PASSWORD = "scenario account password"
# The jobs whose work depends only on the database and the time: `time passes` runs them when
# they fall due. The others reach the outside world (mail, the directory, backups) and do not run.
TIMED_ACTIONS = ("check_timers", "approval_reminders", "generate")
MOST_JOB_RUNS = 10_000        # in one `time passes`: more means a job keeps finding work


@dataclass
class ScenarioResult:
    """How one scenario went: passed when it has no failure."""

    scenario: Scenario
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


def run_scenario(scenario: Scenario, definitions: Definitions, *, demo: str | Path | None = None) -> ScenarioResult:
    """Play a scenario on a fresh `memory://` store of the definitions; `demo` is the demo
    folder a scenario with `given: {demo: true}` loads."""
    started = time.perf_counter()
    result = ScenarioResult(scenario)
    with open_store("memory://", definitions) as store:
        step: Step | None = None
        try:
            play = Play(store, scenario)
            play.prepare(demo)
            for step in scenario.steps:
                play.do(step)
        except StepFailed as failed:
            number = step.number if step else None
            result.failures += [Failure(scenario.file, line, number, message)
                                for line, message in ((failed.line, failed.message), *failed.also)]
    result.seconds = time.perf_counter() - started
    return result


class Play:
    """One playing of a scenario: the store, the scenario's moment and the records it named."""

    def __init__(self, store: Store, scenario: Scenario):
        self.store = store
        self.scenario = scenario
        self.definitions = store.definitions
        self.zone = ZoneInfo(self.definitions.zone)
        self.now = self._moment(scenario.given.get("now", DEFAULT_START), scenario.given_line("now"))
        self.names: dict[str, tuple[str, int]] = {}      # name → (type, id)
        self.messages_seen: set[int] = set()              # ids of the messages an expectation looked at
        self.step: Step | None = None

    # -- given ---------------------------------------------------------------------------

    def prepare(self, demo: str | Path | None) -> None:
        """Load the demo, create the records and the accounts of `given`, as the system."""
        given = self.scenario.given
        if given.get("demo"):
            if demo is None or not Path(demo).is_dir():
                raise StepFailed(self.scenario.given_line("demo"), "`demo: true`, but the application has no "
                                                                   "demo folder")
            self._given(("demo",), lambda: load_application_demo(self.store, demo, now=self.now))
        for name, spec in (given.get("records") or {}).items():
            type_name, values = next(iter(spec.items()))
            record = self._given(("records", name), lambda: self.store.run(
                lambda session: session.create(type_name, self.values(session, type_name, values)), now=self.now))
            self.names[name] = (type_name, record.id)
        for login, spec in (given.get("accounts") or {}).items():
            self._given(("accounts", login), lambda: create_account(
                self.store, login, name=spec.get("name", login), password=PASSWORD, roles=spec.get("roles", ()),
                email=spec.get("email", ""), language=spec.get("language", "en"),
                groups=[self._named_id(group, ("accounts", login, "groups")) for group in spec.get("groups", ())],
                organization=self._named_id(spec["organization"], ("accounts", login, "organization"))
                if spec.get("organization") else None))
        self.messages_seen = {message.id for message in self.read(lambda s: list_messages(s, limit=ALL_MESSAGES))}

    def _given(self, path: tuple, work: Callable[[], T]) -> T:
        try:
            return work()
        except StepFailed:
            raise
        except DeskbaseError as error:
            raise StepFailed(self.scenario.given_line(*path), f"`given: {path[0]}` could not be made: "
                                                              f"{_sentence(error)}") from None

    def _named_id(self, name: str, path: tuple) -> int:
        if name not in self.names:
            raise StepFailed(self.scenario.given_line(*path), f"`{name}` is not a record of `given: records`"
                             + _hint(name, self.names))
        return self.names[name][1]

    # -- reading and writing at the scenario's moment ---------------------------------------

    def write(self, work: Callable[[Session], T], login: str | None = None) -> T:
        """`work` in a transaction at the scenario's moment, as `login` (None: the system)."""
        return self.store.run(work, identity=self.identity(login), now=self.now)

    def read(self, work: Callable[[Session], T], login: str | None = None) -> T:
        """`work` at the scenario's moment, as `login`, changing nothing that stays."""
        return self.store.read(work, identity=self.identity(login), now=self.now)

    def identity(self, login: str | None) -> Identity | None:
        """The identity of an account as it stands at the scenario's moment (the absent colleagues
        it stands in for then included), or None for the system."""
        if login is None:
            return None
        account = find_account(self.store, login)
        where = ("expect", "as") if self.step is not None and self.step.action == "expect" else ("as",)
        if account is None:
            known = [account.login for account in list_accounts(self.store)]
            raise self.failed(where, f"`{login}` is not an account" + _hint(login, known)
                              + " (accounts come from the demo or `given: accounts`)")
        if not account.active:
            raise self.failed(where, f"the account `{login}` is disabled")
        return self.store.read(lambda session: identity_for_account(session, account), now=self.now)

    def record(self, session: Session, reference: Any, *path: Any) -> Record:
        """The record a step names: a name given in the scenario, or a number."""
        if isinstance(reference, str) and reference in self.names:
            type_name, record_id = self.names[reference]
            return session.get(type_name, record_id)
        try:
            return session.find(str(reference))
        except NotFound:
            raise self.failed(path, f"`{reference}` names no record: name one with `name:` on the step that "
                                    "creates it, in `given: records`, or give its number"
                              + _hint(str(reference), self.names)) from None

    def values(self, session: Session, type_name: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Values as written, a record's name in a reference field standing for that record."""
        typedef = session.definitions.type(type_name)
        return {name: self.referred(typedef.fields[name].kind, value) if name in typedef.fields else value
                for name, value in values.items()}

    def referred(self, kind: Any, value: Any) -> Any:
        """A value of a field of `kind`, a name of the scenario given to a reference standing
        for the id of the record so named (if it is of the type referred to)."""
        if not isinstance(kind, RefKind):
            return value
        if isinstance(value, list):
            return [self.referred(kind, item) for item in value]
        if isinstance(value, str) and value in self.names and self.names[value][0] == kind.to:
            return self.names[value][1]
        return value

    def with_numbers(self, text: str) -> str:
        """Text with `{name}` replaced by the number of the record so named."""
        for name in self.names:
            if "{" + name + "}" in text:
                text = text.replace("{" + name + "}", self.read(lambda session: self._number(session, name)))
        return text

    def _number(self, session: Session, name: str) -> str:
        return self.record(session, name).number

    def failed(self, path: Any, message: str) -> StepFailed:
        """A StepFailed at the line of a keyword of the current step."""
        path = path if isinstance(path, tuple) else (path,)
        return StepFailed(self.step.line(*path) if self.step else 1, message)

    # -- steps -----------------------------------------------------------------------------

    def do(self, step: Step) -> None:
        """Do one step; StepFailed when it does not go as written."""
        self.step = step
        if step.action == "expect":
            check(self, step)
        elif step.action == "time passes":
            self.pass_time(step.data["time passes"])
        else:
            self._act(step)

    def _act(self, step: Step) -> None:
        data, action = step.data, step.action
        what = self._described(step)
        expected = data.get("refused")
        try:
            done = _DOERS[action](self, step)
        except StepFailed:
            raise
        except DeskbaseError as error:
            sentence = _sentence(error)
            if expected is None or expected is False:
                raise self._at_fault(step, error, f"could not {what}: {sentence}") from None
            if isinstance(expected, str) and expected.lower() not in sentence.lower():
                raise self.failed("refused", f"expects {what} to be refused saying `{expected}`, but the "
                                             f"refusal says: {sentence}") from None
            return
        if expected not in (None, False):
            raise self.failed("refused", f"expects {what} to be refused, but it was done"
                              + (f" ({done})" if done else ""))

    def _at_fault(self, step: Step, error: DeskbaseError, message: str) -> StepFailed:
        """At the line of the value the engine refused, when it names one."""
        for key in ("values", "inputs"):
            fields = getattr(error, "errors", None) or {}
            written = [name for name in fields if name in (step.data.get(key) or {})]
            if written:
                return self.failed((key, written[0]), message)
        return self.failed(step.action, message)

    @staticmethod
    def _described(step: Step) -> str:
        data, action = step.data, step.action
        who = f" as {data['as']}" if data.get("as") else ""
        if action == "create":
            article = "an" if data["create"][:1].lower() in "aeiou" else "a"
            return f"create {article} {data['create']}{who}"
        if action == "update":
            return f"update {data['update']}{who}"
        if action == "fire":
            return f"fire `{data['fire']}` on {data['record']}{who}"
        if action == "mail arrives":
            return f"take in the message from {data['mail arrives']['from']}"
        return f"{action} {data[action]}{who}"

    def create(self, step: Step) -> str:
        data = step.data
        record = self.write(lambda s: s.create(data["create"], self.values(s, data["create"], data.get("values") or {})),
                            data.get("as"))
        if data.get("name"):
            self.names[data["name"]] = (record.type_name, record.id)
        return record.number

    def update(self, step: Step) -> str:
        data = step.data

        def work(session: Session) -> str:
            record = self.record(session, data["update"], "update")
            return session.update(record, self.values(session, record.type_name, data.get("values") or {})).number
        return self.write(work, data.get("as"))

    def fire(self, step: Step) -> str:
        data = step.data

        def work(session: Session) -> str:
            record = self.record(session, data["record"], "record")
            return fire(session, record, data["fire"], dict(data.get("inputs") or {})).number
        return self.write(work, data.get("as"))

    def decide(self, step: Step) -> str:
        data, decision = step.data, step.action

        def work(session: Session) -> str:
            record = self.record(session, data[decision], decision)
            view = decide_approval(session, record, decision, chain=data.get("chain"), comment=data.get("comment"),
                                   price=data.get("price"))
            return f"{view.chain} {view.state}"
        return self.write(work, data.get("as"))

    # -- mail ------------------------------------------------------------------------------

    def mail_arrives(self, step: Step) -> str:
        spec = step.data["mail arrives"]
        boxes = mailboxes(self.definitions)
        if "mailbox" in spec:
            mailbox = mailbox_named(self.definitions, spec["mailbox"])
        elif len(boxes) == 1:
            mailbox = next(iter(boxes.values()))
        else:
            raise self.failed("mail arrives", "the definitions have " + (
                f"{len(boxes)} mailboxes ({', '.join(boxes)}): say which with `mailbox:`" if boxes
                else "no mailbox (`mailboxes:`): no mail can arrive"))
        message = EmailMessage()
        message["From"] = spec["from"]
        message["To"] = spec.get("to") or mailbox.address or f"{mailbox.name}@localhost"
        message["Date"] = format_datetime(self.now)
        message["Message-ID"] = f"<scenario-step-{step.number}.{int(self.now.timestamp())}@scenario.invalid>"
        subject = self.with_numbers(spec.get("subject", ""))
        if "replying to" in spec:
            number, thread, last_subject = self.read(lambda s: self._thread_of(s, spec["replying to"]))
            if thread:
                message["In-Reply-To"] = thread[-1]
                message["References"] = " ".join(thread)
            subject = subject or f"Re: {last_subject or f'[{number}]'}"
        message["Subject"] = subject
        message.set_content(self.with_numbers(spec.get("body", "")))
        outcome = ingest(self.store, mailbox, message.as_bytes(), now=self.now)
        if outcome.action not in ("created", "replied"):
            raise MailHeld(f"the message from {parseaddr(spec['from'])[1]} was {outcome.action}"
                           + (f": {outcome.reason}" if outcome.reason else ""))
        made = outcome.record or outcome.number
        if spec.get("name") and made:
            record = self.read(lambda s: s.find(made))
            self.names[spec["name"]] = (record.type_name, record.id)
        return f"{outcome.action} {made}"

    def _thread_of(self, session: Session, reference: Any) -> tuple[str, tuple[str, ...], str | None]:
        record = self.record(session, reference, "mail arrives", "replying to")
        thread = record_thread(session, record)
        subjects = [m.subject for m in list_messages(session, limit=ALL_MESSAGES)
                    if m.record == record.number and m.message_id in thread]
        return record.number, thread, subjects[0] if subjects else None

    # -- time ------------------------------------------------------------------------------

    def pass_time(self, text: str) -> None:
        """Move the scenario's moment on, running on the way each job of the definitions that acts
        on records at the first of its occurrences where it has something to do, as a worker
        running all along would."""
        until = self._until(text)
        jobs = [job for job in job_definitions(self.definitions).values() if job.action in TIMED_ACTIONS]
        for _ in range(MOST_JOB_RUNS):
            due = [(moment, job.name, job) for job in jobs
                   for moment in [self._next_run(job)] if moment is not None and moment <= until]
            if not due:
                self.now = until
                return
            moment, _, job = min(due, key=lambda item: (item[0], item[1]))
            self.now = moment
            try:
                JOB_ACTIONS[job.action].run(self.store, moment, job.options, {})
            except DeskbaseError as error:
                raise self.failed("time passes", f"the job `{job.name}` failed at "
                                                 f"{self.shown(moment)}: {_sentence(error)}") from None
        raise self.failed("time passes", f"the jobs ran more than {MOST_JOB_RUNS} times while the time passed; "
                                         "some job keeps finding work")

    def _next_run(self, job: JobDefinition) -> datetime | None:
        """The first occurrence of a job after now at which it has work to do."""
        schedule = CronSchedule.parse(job.schedule)
        if job.action == "generate":
            return schedule.next_after(self.now, self.zone)
        work_at = next_checkpoint(self.store) if job.action == "check_timers" else next_reminder(self.store)
        if work_at is None:
            return None
        return schedule.next_after(max(self.now, work_at - timedelta(microseconds=1)), self.zone)

    def _until(self, text: str) -> datetime:
        words = text.strip()
        if words.lower().startswith("until "):
            moment = self._moment(words[len("until "):], self.step.line("time passes") if self.step else 1)
            if moment < self.now:
                raise self.failed("time passes", f"{self.shown(moment)} is before the scenario's moment, "
                                                 f"{self.shown(self.now)}: time passes forward only")
            return moment
        try:
            seconds = parse_duration(words)
        except FieldError as error:
            raise self.failed("time passes", f"{error}; or write `until 2026-04-01 08:00`") from None
        if seconds < 0:
            raise self.failed("time passes", "time passes forward only")
        return self.now + timedelta(seconds=seconds)

    def _moment(self, text: str, line: int) -> datetime:
        """A moment written `2026-03-02 09:00`, optionally followed by a time zone, or with an offset."""
        words = str(text).strip().split()
        zone = self.zone
        if len(words) == 3 or (len(words) == 2 and "/" in words[-1]):
            try:
                zone = ZoneInfo(words.pop())
            except (ZoneInfoNotFoundError, ValueError):
                raise StepFailed(line, f"`{text}`: the time zone is not known (write one such as "
                                       "Europe/Paris)") from None
        try:
            moment = datetime.fromisoformat("T".join(words))
        except ValueError:
            raise StepFailed(line, f"`{text}` is not a moment: write it like 2026-03-02 09:00") from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(UTC)

    def shown(self, moment: datetime) -> str:
        return f"{moment.astimezone(self.zone):%Y-%m-%d %H:%M}"


class MailHeld(DeskbaseError):
    """A message the mailbox held (quarantined, refused, ignored) instead of making a record."""


_DOERS: Mapping[str, Callable[[Play, Step], str]] = {
    "create": Play.create, "update": Play.update, "fire": Play.fire, "approve": Play.decide,
    "reject": Play.decide, "mail arrives": Play.mail_arrives}


def _sentence(error: Exception) -> str:
    """The engine's sentence on one line (a refused record lists its fields on lines of their own)."""
    if isinstance(error, ValidationError):
        return "; ".join(f"{name}: {message}" for name, message in error.errors.items())
    if isinstance(error, AccountError):
        return str(error)
    return " ".join(str(error).split())


def _hint(name: str, known: Iterable[str]) -> str:
    hint = hint_for(name, list(known))
    return f"; {hint}" if hint else ""
