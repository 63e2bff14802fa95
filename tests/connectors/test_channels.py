"""Channels and jobs from the definitions: senders built from `channels:`, the `jobs:`
runner delivering the outbox through a real SMTP server, and their mistakes located."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deskbase.cli import main
from deskbase.connectors.channels import job_runner, senders_for
from deskbase.connectors.sms import HttpSmsSender
from deskbase.connectors.smtp import SmtpSender
from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.application import load_application, open_store
from deskbase.rules.messages.outbox import list_messages
from deskbase.rules.process.workflows import fire

NOTIFYING_APP = Path(__file__).parent.parent / "rules" / "notifying_app"
MARC = Identity("marc", "Marc", ("mechanic",))


def app_with(tmp_path: Path, extra: str) -> Path:
    folder = tmp_path / "app"
    shutil.copytree(NOTIFYING_APP, folder)
    (folder / "delivery.yaml").write_text(extra)
    return folder


def delivery(port: int) -> str:
    return f"""
channels:
  email: {{kind: smtp, host: 127.0.0.1, port: {port}, security: none, password_env: SHOP_SMTP_PASSWORD}}
  sms: {{kind: http, url: "http://127.0.0.1:9/sms", token_env: SHOP_SMS_TOKEN}}
jobs:
  deliver_messages: {{schedule: "* * * * *", action: deliver_messages}}
  purge_messages: {{schedule: "30 3 * * *", action: purge_messages, options: {{keep_days: 7}}}}
"""


def test_senders_are_built_from_the_channels_with_secrets_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOP_SMTP_PASSWORD", "s3cret")
    senders = senders_for(load_application(app_with(tmp_path, delivery(2525))))
    email, sms = senders["email"], senders["sms"]
    assert isinstance(email, SmtpSender) and isinstance(sms, HttpSmsSender)
    assert (email.host, email.port, email.password) == ("127.0.0.1", 2525, "s3cret")
    assert email.sender_address == "shop@example.org"          # settings.mail.from
    assert email.reply_to == "desk@shop.example.org"
    assert sms.token_env == "SHOP_SMS_TOKEN"


def test_the_deliver_job_sends_a_transition_mail_through_the_smtp_server(app_store, tmp_path, smtp_server):
    with app_store(app_with(tmp_path, delivery(smtp_server.port))) as store:
        create_account(store, "marc", name="Marc", password="correct horse battery", roles=["mechanic"],
                       email="marc@shop.example.org")

        def work(session):
            customer = session.create("customer", {"name": "Carla", "email": "carla@example.com"})
            return session.create("repair", {"title": "bike", "customer": customer.id}).number
        number = store.run(work)
        store.run(lambda s: fire(s, number, "start"), identity=MARC)
        run = job_runner(store).run("deliver_messages")
        assert run.outcome == "ok", run.error
        assert len(smtp_server.received) == 2
        mails = sorted((m.message for m in smtp_server.received), key=lambda m: len(m["References"] or ""))
        assert all(number in mail["Subject"] and mail["To"] == "carla@example.com" for mail in mails)
        assert mails[1]["In-Reply-To"] == mails[0]["Message-ID"]
        assert mails[0]["Reply-To"] == "desk@shop.example.org"
        assert {m.state for m in store.read(lambda s: list_messages(s))} == {"sent"}


def test_the_jobs_and_outbox_commands_list_run_and_show(tmp_path, smtp_server, capsys):
    folder = app_with(tmp_path, delivery(smtp_server.port))
    db = f"file://{tmp_path}/Data.fs"
    store = open_store(db, load_application(folder))
    store.run(lambda s: s.create("customer", {"name": "Carla", "email": "carla@example.com"}) and
              s.create("repair", {"title": "bike", "customer": 1}))
    store.close()
    assert main(["outbox", "--state", "pending", "--definitions", str(folder), "--db", db]) == 0
    assert "carla@example.com" in capsys.readouterr().out
    assert main(["jobs", "list", "--definitions", str(folder), "--db", db]) == 0
    listed = capsys.readouterr().out
    assert "deliver_messages" in listed and "30 3 * * *" in listed
    assert main(["jobs", "run", "deliver_messages", "--definitions", str(folder), "--db", db]) == 0
    assert "deliver_messages: ok" in capsys.readouterr().out
    assert len(smtp_server.received) == 1
    assert main(["outbox", "--state", "pending", "--definitions", str(folder), "--db", db]) == 0
    assert "no messages" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message, line", [
    ("channels:\n  email: {kind: smtp, host: h, url: x}\n", "`url` is not a setting of a smtp channel", 2),
    ("channels:\n  sms: {kind: http}\n", "an http channel needs a `url`", 2),
    ("jobs:\n  nightly: {schedule: '61 * * * *', action: deliver_messages}\n", "61", 2),
    ("jobs:\n  nightly: {schedule: '@daily', action: deliver_mesages}\n", "`deliver_mesages` is not an action", 2),
    ("jobs:\n  nightly:\n    schedule: '@daily'\n    action: purge_messages\n    options: {keep: 3}\n",
     "`keep` is not an option of purge_messages", 5),
    ("jobs:\n  flag:\n    schedule: '@daily'\n    action: update\n    options: {type: custmer, filter: {a: 1}, set: {b: 2}}\n",
     "`custmer` is not a type", 5),
    ("jobs:\n  flag:\n    schedule: '@daily'\n    action: update\n    options: {type: customer, set: {name: x}}\n",
     "the job needs the `filter` of the records it updates", 5),
    ("jobs:\n  flag:\n    schedule: '@daily'\n    action: update\n    options:\n      type: repair\n"
     "      filter: {status: new}\n      set: {stauts: open}\n", "`stauts` is not a field of `repair`", 8),
])
def test_a_mistake_in_channels_or_jobs_is_located(tmp_path, extra, message, line):
    with pytest.raises(DefinitionErrors) as raised:
        load_application(app_with(tmp_path, extra))
    [error] = raised.value.errors
    assert message in error.message
    assert error.file.endswith("delivery.yaml") and error.line == line
