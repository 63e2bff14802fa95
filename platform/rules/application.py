"""An application as the rules layer sees it: definitions with the rules' own sections
(`identity:`, `access:`, `workflow:`, `notifications:`, `channels:`, `jobs:`, `calendars:`,
`timers:`, `substitution:`, `dispatch:`, `approvals:`…), and stores that apply them: `open_store`
is the one place where a store is given what it runs on the write path and on transitions."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from deskbase.objects.compiling import Section
from deskbase.objects.definitions import load_definitions, schema_of
from deskbase.objects.demo import load_demo
from deskbase.objects.model import Definitions
from deskbase.objects.store import Store, WriteHooks

from .access import directory, identity, scopes as access, substitution
from .documents import section as documents, snippets
from .intake import mail_intake, public_forms
from .jobs import scheduled as scheduled_jobs
from .messages import channels, notifications
from .process import approvals, calendars, dispatch, generators, timers, workflows

RULES_SECTIONS: tuple[Section, ...] = (identity.IDENTITY_SECTION, access.ACCESS_SECTION, workflows.WORKFLOW_SECTION,
                                       notifications.NOTIFICATIONS_SECTION, channels.CHANNELS_SECTION,
                                       scheduled_jobs.JOBS_SECTION, calendars.CALENDARS_SECTION,
                                       timers.TIMERS_SECTION, substitution.SUBSTITUTION_SECTION,
                                       dispatch.DISPATCH_SECTION, approvals.APPROVALS_SECTION,
                                       public_forms.PUBLIC_FORMS_SECTION, directory.DIRECTORY_SECTION,
                                       mail_intake.MAILBOXES_SECTION, generators.GENERATORS_SECTION,
                                       documents.DOCUMENTS_SECTION)


def load_application(folder: str | Path = "definitions", overlays: Sequence[str | Path] = ()) -> Definitions:
    """The compiled definitions of an application, with its identity, access, workflow and notification sections."""
    return load_definitions(folder, overlays, sections=RULES_SECTIONS)


def application_schema() -> dict:
    """The meta-schema of an application's definitions, with the rules' sections (a fresh copy)."""
    return schema_of(RULES_SECTIONS)


def write_hooks() -> WriteHooks:
    """What a store of an application runs on its write path, in this order. Checks: access
    (P4), the logins user fields name, the state field kept for transitions, the fields timers keep, approval states, the
    placeholders of texts kept to be inserted.
    Defaults: a workflow's initial state, then the dispatched group. Derived values: the
    timers' deadlines. Effects: automatic transitions, notifications, clocks restarted and
    forgotten, dispatch to an operator, approval chains started."""
    return WriteHooks(
        checks=(access.check_write, identity.check_logins, workflows.check_state, timers.refuse_kept_fields, approvals.check_state_field,
                snippets.check_texts),
        defaults=(workflows.initial_state, dispatch.dispatched_group),
        derive=(timers.derive,),
        effects=(workflows.fire_automatic, notifications.notify, timers.restart, timers.forget,
                 dispatch.dispatch_operator, approvals.start_chains),
        read_scope=access.session_scope)


def transition_checks() -> tuple[workflows.TransitionCheck, ...]:
    """What may hold a person's transition back besides its own rules: approval chains."""
    return (approvals.blocked_transition,)


def open_store(uri: str | None, definitions: Definitions, *, migrate: bool = True) -> Store:
    """A store of an application whose sessions opened with an identity follow its access
    rules, whose records follow their workflows, and whose changes queue their notifications:
    the one place where a store is given its rules."""
    return Store.open(uri, definitions, migrate=migrate, hooks=write_hooks(),
                      extensions={workflows.TRANSITION_CHECKS: transition_checks()})


# Lists a demo file may hold besides records: accounts, and generators run after its records.
DEMO_SECTIONS = MappingProxyType({"users": identity.load_demo_users,
                                  "run_generators": generators.run_demo_generators})


def load_application_demo(store: Store, folder: str | Path, **options: Any) -> dict[str, int]:
    """Load a demo folder, its `users:` and `run_generators:` lists included (the latter
    after its file's records: `{generator: monthly_reports, month: previous}`); options as
    for `load_demo`. Demo records queue no notifications: their people and addresses are
    made up."""
    return load_demo(store, Path(folder), sections=DEMO_SECTIONS, notify=False, **options)
