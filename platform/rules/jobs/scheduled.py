"""The `jobs:` section: which actions run on which cron schedule, and the actions a
definition may name. Senders and the work of connectors (mail, the directory) come from the
caller, so this layer names the work without knowing how it reaches the outside world."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from deskbase.objects.compiling import Section, definition_error, filter_errors
from deskbase.objects.errors import DefinitionError, hint_for
from deskbase.objects.frozen import freeze_plain
from deskbase.objects.model import Definitions
from deskbase.objects.store import Store
from deskbase.rules.messages.outbox import Sender, deliver_due, purge_sent
from deskbase.rules.process.approvals import remind_and_expire
from deskbase.rules.process.generators import run_generator
from deskbase.rules.process.timers import check_due

from .cron import CronError, CronSchedule, JobError
from .runner import Job

# The work of an action done by a connector (reading mailboxes, the directory), handed to
# `scheduled_jobs` by the caller as senders are: `work(store, occurrence, options)`.
HandedWork = Callable[[Store, datetime, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Action:
    """Work a job may name: `run(store, occurrence, options, senders)`, or None for work a
    connector does and the caller hands in; `options` lists the options it accepts with their
    defaults."""

    run: Callable[[Store, datetime, Mapping[str, Any], Mapping[str, Sender]], Any] | None
    options: Mapping[str, Any]
    description: str
    # The options' own checks against the definitions, where a text or a number is not all
    # they must be: (options, definitions, path, positions) → problems.
    check: Callable[[Mapping[str, Any], Definitions, tuple, Any], list[DefinitionError]] | None = None


def _deliver_messages(store: Store, occurrence: datetime, options: Mapping[str, Any],
                      senders: Mapping[str, Sender]) -> str:
    report = deliver_due(store, senders, limit=int(options["limit"]))
    return f"{len(report.sent)} sent, {len(report.retrying)} to retry, {len(report.failed)} failed"


def _purge_messages(store: Store, occurrence: datetime, options: Mapping[str, Any],
                    senders: Mapping[str, Sender]) -> str:
    removed = purge_sent(store, occurrence - timedelta(days=int(options["keep_days"])))
    return f"{removed} sent messages removed"


def _check_timers(store: Store, occurrence: datetime, options: Mapping[str, Any],
                  senders: Mapping[str, Sender]) -> str:
    return str(check_due(store, occurrence, batch=int(options["batch"])))


def _approval_reminders(store: Store, occurrence: datetime, options: Mapping[str, Any],
                        senders: Mapping[str, Sender]) -> str:
    return str(remind_and_expire(store, occurrence, batch=int(options["batch"])))


def _generate(store: Store, occurrence: datetime, options: Mapping[str, Any],
              senders: Mapping[str, Sender]) -> str:
    return str(run_generator(store, str(options["generator"]), now=occurrence))


def _backup(store: Store, occurrence: datetime, options: Mapping[str, Any], senders: Mapping[str, Sender]) -> str:
    from deskbase.objects.backup import BackupError, backup
    if not options["folder"]:
        raise BackupError("the backup job needs `folder`: where the backups go (another disk, a mounted share)")
    return str(backup(store.uri, options["folder"], keep=int(options["keep"]) or None,
                      full_every_days=float(options["full_every_days"]), now=occurrence))


def _update(store: Store, occurrence: datetime, options: Mapping[str, Any], senders: Mapping[str, Sender]) -> str:
    """Set values on the records a filter finds, through the write path: their rules and
    notifications apply, as they would to a person's change (the filter should no longer
    find a record once set, so that the next run leaves it)."""
    type_name, limit = str(options["type"]), int(options["limit"])

    def work(session) -> tuple[int, int]:
        page = session.query(type_name, dict(options["filter"]) or None, "id", limit=limit)
        for record in page.records:
            session.update(record, dict(options["set"]), reason="job")
        return len(page.records), page.total
    done, found = store.run(work, now=occurrence)
    return f"{done} {type_name} records updated" + (f" of {found}" if found > done else "")


def _check_update(options: Mapping[str, Any], definitions: Definitions, path: tuple, positions) -> list[DefinitionError]:
    type_name = options.get("type")
    typedef = definitions.types.get(type_name) if isinstance(type_name, str) else None
    if typedef is None:
        return [definition_error(positions, path + ("type",), f"`{type_name}` is not a type",
                                 hint_for(type_name, definitions.types))]
    problems: list[DefinitionError] = []
    if not isinstance(options.get("filter"), Mapping) or not options["filter"]:
        problems.append(definition_error(positions, path + ("filter",), "the job needs the `filter` of the records "
                                         "it updates (one they no longer match once updated)"))
    else:
        problems += filter_errors(options["filter"], typedef, path + ("filter",), positions)
    values = options.get("set")
    if not isinstance(values, Mapping) or not values:
        problems.append(definition_error(positions, path + ("set",), "the job needs the values it `set`s"))
    else:
        for name in values:
            if name not in typedef.fields:
                problems.append(definition_error(positions, path + ("set", name), f"`{name}` is not a field of "
                                                 f"`{type_name}`", hint_for(name, typedef.fields), on_key=True))
    return problems


def _pack(store: Store, occurrence: datetime, options: Mapping[str, Any], senders: Mapping[str, Sender]) -> str:
    from deskbase.objects.backup import pack, size_text
    before, after = pack(store, float(options["days"]))
    return f"packed: {size_text(before)} before, {size_text(after)} after" if before is not None else "packed"


ACTIONS: Mapping[str, Action] = MappingProxyType({
    "backup": Action(_backup, MappingProxyType({"folder": "", "keep": 4, "full_every_days": 7}),
                     "back up the embedded database and its files into `folder`: a full copy every "
                     "full_every_days days, what changed in between; the `keep` newest full copies are kept"),
    "pack": Action(_pack, MappingProxyType({"days": 7}),
                   "drop the database's object revisions older than `days` (records keep their own history)"),
    "approval_reminders": Action(_approval_reminders, MappingProxyType({"batch": 200}),
                                 "remind approvers of the steps awaiting them, and expire the chains left too long"),
    "check_timers": Action(_check_timers, MappingProxyType({"batch": 200}),
                           "fire the timer thresholds passed since the last run (warnings, breaches)"),
    "generate": Action(_generate, MappingProxyType({"generator": ""}),
                       "run a generator of `generators:` for its period (the records of last month, …)"),
    "fetch_mail": Action(None, MappingProxyType({"mailbox": "", "limit": 500}),
                         "read new mail of the mailboxes (one, or all when `mailbox` is empty) into records"),
    "deliver_messages": Action(_deliver_messages, MappingProxyType({"limit": 100}),
                               "send the outbox's due messages through the channels"),
    "purge_messages": Action(_purge_messages, MappingProxyType({"keep_days": 30}),
                             "delete sent messages older than keep_days"),
    "sync_directory": Action(None, MappingProxyType({}),
                             "bring the directory's accounts up to date (created, updated, disabled)"),
    "update": Action(_update, MappingProxyType({"type": "", "filter": {}, "set": {}, "limit": 500}),
                     "set values (`set`) on the records of `type` that `filter` finds, through the write path, "
                     "so that their notifications go out (at most `limit` a run)", _check_update),
})


@dataclass(frozen=True)
class JobDefinition:
    """One job of the definitions: its schedule, action and options (defaults filled in)."""

    name: str
    schedule: str
    action: str
    options: Mapping[str, Any]


_SCHEMA = {
    "type": ["object", "null"],
    "x-noun": "a map of jobs such as {deliver_messages: {schedule: '* * * * *', action: deliver_messages}}",
    "description": "periodic work, by name: when it runs and what it does",
    "additionalProperties": {
        "type": "object",
        "x-noun": "a job: a map with schedule, action and options",
        "x-member": "a setting of a job",
        "required": ["schedule", "action"],
        "properties": {"schedule": {"type": "string", "x-noun": "a cron expression such as `30 3 * * *`",
                                    "description": "when it runs: a cron expression such as `30 3 * * *`"},
                       "action": {"type": "string", "x-noun": "an action name",
                                  "description": "what it does, such as deliver_messages or check_timers"},
                       "options": {"type": "object", "x-noun": "a map of the action's options",
                                   "description": "the action's options, such as {limit: 100}"}},
        "additionalProperties": False,
    },
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[Mapping[str, JobDefinition], list[DefinitionError]]:
    errors: list[DefinitionError] = []
    jobs: dict[str, JobDefinition] = {}
    for name, spec in (document.get("jobs") or {}).items():
        path = ("jobs", name)
        try:
            CronSchedule.parse(spec["schedule"])
        except CronError as error:
            errors.append(definition_error(positions, path + ("schedule",), str(error)))
        action = ACTIONS.get(spec["action"])
        if action is None:
            errors.append(definition_error(positions, path + ("action",), f"`{spec['action']}` is not an action: "
                                           f"{', '.join(ACTIONS)}", hint_for(spec["action"], ACTIONS)))
            continue
        options = dict(action.options)
        for key, value in (spec.get("options") or {}).items():
            if key not in action.options:
                errors.append(definition_error(positions, path + ("options", key), f"`{key}` is not an option of "
                                               f"{spec['action']}: {', '.join(action.options) or 'it has none'}",
                                               hint_for(key, action.options), on_key=True))
            elif isinstance(action.options[key], str):     # an option whose default is text takes text
                if not isinstance(value, str):
                    errors.append(definition_error(positions, path + ("options", key), f"`{key}` is a text"))
                else:
                    options[key] = value
            elif isinstance(action.options[key], dict):    # … a map, a map
                if not isinstance(value, Mapping):
                    errors.append(definition_error(positions, path + ("options", key), f"`{key}` is a map"))
                else:
                    options[key] = freeze_plain(value)
            elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
                errors.append(definition_error(positions, path + ("options", key), f"`{key}` is a whole number"))
            else:
                options[key] = value
        if action.check is not None:
            errors += action.check(options, definitions, path + ("options",), positions)
        jobs[name] = JobDefinition(name, spec["schedule"], spec["action"], MappingProxyType(options))
    return MappingProxyType(jobs), errors


JOBS_SECTION = Section("jobs", "top", _SCHEMA, _compile)


def job_definitions(definitions: Definitions) -> Mapping[str, JobDefinition]:
    """The compiled jobs of definitions, by name (none when loaded without the section)."""
    return definitions.extensions.get("jobs") or MappingProxyType({})


def scheduled_jobs(definitions: Definitions, senders: Mapping[str, Sender],
                   handed: Mapping[str, HandedWork] | None = None) -> list[Job]:
    """The jobs of definitions, ready for a JobRunner, their actions given these senders and
    the connectors' work by action name (`handed`). A job whose connector work was not handed
    in fails each run with a sentence saying so."""
    handed = handed or {}

    def work_of(job: JobDefinition) -> Callable[[Store, datetime], Any]:
        action = ACTIONS[job.action]
        run = action.run      # named, so the lambda sees it is not None
        if run is not None:
            return lambda store, occurrence: run(store, occurrence, job.options, senders)
        connector_work = handed.get(job.action)
        if connector_work is None:
            def missing(store: Store, occurrence: datetime) -> Any:
                raise JobError(f"`{job.action}` is work of a connector this process was not given")
            return missing
        return lambda store, occurrence: connector_work(store, occurrence, job.options)
    return [Job(job.name, job.schedule, work_of(job), description=ACTIONS[job.action].description)
            for job in job_definitions(definitions).values()]
