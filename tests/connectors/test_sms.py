"""SMS through the outbox to a real HTTP gateway: JSON from a template, a bearer token from
the environment, 5xx and timeouts retried, other 4xx refused for good."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from deskbase.connectors.sms import HttpSmsSender
from deskbase.rules.messages.outbox import (
    FAILED,
    SENT,
    OutgoingMessage,
    PermanentFailure,
    RetryPolicy,
    TemporaryFailure,
    deliver_due,
    get_message,
    queue_message,
)

UTC = timezone.utc
TEMPLATE = {"to": "{to}", "text": "{text}", "reference": "deskbase-{id}", "options": {"flash": False}}


def message(**values) -> OutgoingMessage:
    defaults = dict(id=7, channel="sms", recipients=("+33600000001",), subject="", body="Urgent: TK-00001 opened",
                    record="TK-00001")
    return OutgoingMessage(**{**defaults, **values})


def test_each_number_gets_a_json_request_built_from_the_template(sms_gateway, monkeypatch):
    monkeypatch.setenv("SMS_TOKEN", "s3cret")
    sender = HttpSmsSender(sms_gateway.url, token_env="SMS_TOKEN", body_template=TEMPLATE)
    sender.send(message(recipients=("+33600000001", "+33600000002")))
    assert [r.body for r in sms_gateway.requests] == [
        {"to": "+33600000001", "text": "Urgent: TK-00001 opened", "reference": "deskbase-7", "options": {"flash": False}},
        {"to": "+33600000002", "text": "Urgent: TK-00001 opened", "reference": "deskbase-7", "options": {"flash": False}},
    ]
    request = sms_gateway.requests[0]
    assert request.method == "POST" and request.path == "/send"
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["Content-Type"].startswith("application/json")


def test_a_recipients_placeholder_sends_one_request_with_every_number(sms_gateway):
    sender = HttpSmsSender(sms_gateway.url, method="PUT", body_template={"numbers": "{recipients}", "message": "{text}"})
    sender.send(message(recipients=("+33600000001", "+33600000002")))
    assert len(sms_gateway.requests) == 1
    assert sms_gateway.requests[0].method == "PUT"
    assert sms_gateway.requests[0].body == {"numbers": ["+33600000001", "+33600000002"], "message": "Urgent: TK-00001 opened"}


def test_a_template_reaches_only_the_named_placeholders(sms_gateway):
    sender = HttpSmsSender(sms_gateway.url, body_template={"text": "{text.__class__} {to!r} {0}"})
    sender.send(message())
    assert sms_gateway.requests[0].body == {"text": "{text.__class__} {to!r} {0}"}


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_a_server_error_or_a_please_wait_is_a_temporary_failure(sms_gateway, status):
    sms_gateway.replies.append((status, '{"error": "gateway overloaded"}'))
    sender = HttpSmsSender(sms_gateway.url, body_template=TEMPLATE)
    with pytest.raises(TemporaryFailure, match=f"answered {status}.*gateway overloaded"):
        sender.send(message())


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_client_error_is_a_permanent_failure_with_the_gateways_words(sms_gateway, status):
    sms_gateway.replies.append((status, '{"error": "invalid number +336"}'))
    sender = HttpSmsSender(sms_gateway.url, body_template=TEMPLATE)
    with pytest.raises(PermanentFailure, match=f"answered {status}.*invalid number \\+336"):
        sender.send(message())


def test_a_gateway_that_does_not_answer_in_time_is_a_temporary_failure(sms_gateway):
    sms_gateway.delay = 2
    sender = HttpSmsSender(sms_gateway.url, body_template=TEMPLATE, timeout=0.3)
    with pytest.raises(TemporaryFailure, match="did not answer within 0.3 seconds"):
        sender.send(message())


def test_an_unreachable_gateway_is_a_temporary_failure(unused_port):
    sender = HttpSmsSender(f"http://127.0.0.1:{unused_port}/send", body_template=TEMPLATE, timeout=2)
    with pytest.raises(TemporaryFailure, match="cannot reach the SMS gateway"):
        sender.send(message())


def test_a_missing_token_is_a_temporary_failure_naming_the_variable(sms_gateway, monkeypatch):
    monkeypatch.delenv("SMS_TOKEN_UNSET", raising=False)
    sender = HttpSmsSender(sms_gateway.url, token_env="SMS_TOKEN_UNSET", body_template=TEMPLATE)
    with pytest.raises(TemporaryFailure, match="SMS_TOKEN_UNSET"):
        sender.send(message())
    assert sms_gateway.requests == []


def test_an_sms_queued_in_a_transaction_is_delivered_after_commit_and_failed_on_a_4xx(store, sms_gateway):
    sender = HttpSmsSender(sms_gateway.url, body_template=TEMPLATE)
    policy = RetryPolicy()
    first = store.run(lambda s: queue_message(s, "sms", ["+33600000001"], "", "Server down"))
    moment = datetime.now(UTC) + timedelta(seconds=1)
    assert deliver_due(store, {"sms": sender}, now=moment, policy=policy).sent == [first]
    sms_gateway.replies.append((400, '{"error": "unknown number"}'))
    second = store.run(lambda s: queue_message(s, "sms", ["+1"], "", "Server down"))
    report = deliver_due(store, {"sms": sender}, now=moment + timedelta(seconds=1), policy=policy)
    assert "unknown number" in report.failed[second]
    states = store.read(lambda s: (get_message(s, first).state, get_message(s, second).state))
    assert states == (SENT, FAILED)
    assert [r.body["text"] for r in sms_gateway.requests] == ["Server down", "Server down"]


def test_a_gateway_address_must_be_http():
    with pytest.raises(ValueError, match="not an http"):
        HttpSmsSender("ftp://gateway.example.test", body_template=TEMPLATE)
