"""Senders built from the `channels:` section, and the job runner of an application with
its scheduled jobs wired to them: what the `deskbase jobs` commands and a worker use."""
from __future__ import annotations

import os

from deskbase.objects.model import Definitions
from deskbase.objects.store import Store
from deskbase.rules.channels import Channel, channels
from deskbase.rules.jobs import JobRunner
from deskbase.rules.outbox import Sender
from deskbase.rules.scheduled_jobs import scheduled_jobs

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


def job_runner(store: Store) -> JobRunner:
    """The runner of the store's scheduled jobs, their actions sending through its channels."""
    return JobRunner(store, scheduled_jobs(store.definitions, senders_for(store.definitions)))
