"""An application as the rules layer sees it: definitions with the rules' own sections
(`identity:`, `access:`, `workflow:`, `notifications:`, `channels:`, `jobs:`, `calendars:`,
`timers:`, `substitution:`, `dispatch:`, `approvals:`), and stores that apply them. The one place where a
store gets its access rules, workflows and notifications installed is `open_store`."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deskbase.objects.definitions import Section, load_definitions
from deskbase.objects.demo import load_demo
from deskbase.objects.model import Definitions
from deskbase.objects.store import Store

from . import (access, approvals, calendars, channels, dispatch, notifications, public_forms, scheduled_jobs,
               substitution, timers, workflows)
from .directory import DIRECTORY_SECTION
from .documents import DOCUMENTS_SECTION
from .generators import GENERATORS_SECTION, run_demo_generators
from .identity import IDENTITY_SECTION, load_demo_users
from .mail_intake import MAILBOXES_SECTION

RULES_SECTIONS: tuple[Section, ...] = (IDENTITY_SECTION, access.ACCESS_SECTION, workflows.WORKFLOW_SECTION,
                                       notifications.NOTIFICATIONS_SECTION, channels.CHANNELS_SECTION,
                                       scheduled_jobs.JOBS_SECTION, calendars.CALENDARS_SECTION,
                                       timers.TIMERS_SECTION, substitution.SUBSTITUTION_SECTION,
                                       dispatch.DISPATCH_SECTION, approvals.APPROVALS_SECTION,
                                       public_forms.PUBLIC_FORMS_SECTION, DIRECTORY_SECTION,
                                       MAILBOXES_SECTION, GENERATORS_SECTION, DOCUMENTS_SECTION)


def load_application(folder: str | Path = "definitions", overlays: Sequence[str | Path] = ()) -> Definitions:
    """The compiled definitions of an application, with its identity, access, workflow and notification sections."""
    return load_definitions(folder, overlays, sections=RULES_SECTIONS)


def open_store(uri: str | None, definitions: Definitions, *, migrate: bool = True) -> Store:
    """A store of an application whose sessions opened with an identity follow its access
    rules, whose records follow their workflows, and whose changes queue their notifications."""
    store = Store.open(uri, definitions, migrate=migrate)
    access.install(store)
    workflows.install(store)
    notifications.install(store)
    timers.install(store)
    dispatch.install(store)
    approvals.install(store)
    return store


# Lists a demo file may hold besides records: accounts, and generators run after its records.
DEMO_SECTIONS = {"users": load_demo_users, "run_generators": run_demo_generators}


def load_application_demo(store: Store, folder: str | Path, **options: Any) -> dict[str, int]:
    """Load a demo folder, its `users:` and `run_generators:` lists included (the latter
    after its file's records: `{generator: monthly_reports, month: previous}`); options as
    for `load_demo`. Demo
    records queue no notifications: their people and addresses are made up."""
    silenced = notifications.notify in store.hooks.effects
    if silenced:
        store.hooks.effects.remove(notifications.notify)
    try:
        return load_demo(store, Path(folder), sections=DEMO_SECTIONS, **options)
    finally:
        if silenced:
            store.hooks.effects.append(notifications.notify)
