"""Senders built from the `channels:` section, and the job runner of an application with
its scheduled jobs wired to them and to the connectors' work (mail in, the directory): what
the `deskbase jobs` commands and a worker use."""
from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from deskbase.objects.model import Definitions
from deskbase.objects.store import Store
from deskbase.rules.jobs.runner import JobRunner
from deskbase.rules.jobs.scheduled import HandedWork, scheduled_jobs
from deskbase.rules.messages.channels import Channel, channels
from deskbase.rules.messages.outbox import Sender

from .active_directory import sync_directory
from .imap import fetch_mailboxes
from .sms import HttpSmsSender
from .smtp import SmtpSender


def sender_for(channel: Channel) -> Sender:
    """The sender of one channel; secrets are read from the environment now."""
    if channel.kind == "smtp":
        return SmtpSender(channel.host, channel.port, starttls=channel.security == "starttls",
                          ssl=channel.security == "ssl",
                          username=os.environ.get(channel.username_env) if channel.username_env else None,
                          password=os.environ.get(channel.password_env) if channel.password_env else None,
                          sender_address=channel.sender or "", reply_to=channel.reply_to)
    # The gateway gets the number and the text; a provider wanting another shape is a custom sender.
    return HttpSmsSender(channel.url or "", token_env=channel.token_env, body_template={"to": "{to}", "text": "{text}"})


def senders_for(definitions: Definitions) -> dict[str, Sender]:
    """A sender for every channel of the definitions, by channel name."""
    return {name: sender_for(channel) for name, channel in channels(definitions).items()}


def _fetch_mail(store: Store, occurrence: datetime, options: Mapping[str, Any]) -> str:
    names = [options["mailbox"]] if options["mailbox"] else None
    return "; ".join(str(report) for report in fetch_mailboxes(store, names, limit=int(options["limit"]))) \
        or "no mailboxes in the definitions"


def _sync_directory(store: Store, occurrence: datetime, options: Mapping[str, Any]) -> str:
    return str(sync_directory(store))


# The job actions whose work is done here, in the connectors: handed to the jobs as senders are.
CONNECTOR_WORK: Mapping[str, HandedWork] = MappingProxyType({"fetch_mail": _fetch_mail,
                                                             "sync_directory": _sync_directory})


def job_runner(store: Store) -> JobRunner:
    """The runner of the store's scheduled jobs, their actions sending through its channels
    and reading mail and the directory through the connectors."""
    return JobRunner(store, scheduled_jobs(store.definitions, senders_for(store.definitions), CONNECTOR_WORK))
