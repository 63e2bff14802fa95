"""SMS out: the outbox's sender for the `sms` channel, posting JSON to an HTTP gateway.

The gateway's request body is a template, so one class fits most providers; failures are
classified for the outbox (5xx and timeouts retried, other 4xx refused for good).
"""
from __future__ import annotations

import json
import os
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from deskbase.rules.messages.outbox import OutgoingMessage, PermanentFailure, TemporaryFailure

_PLACEHOLDER = re.compile(r"\{(to|text|subject|id|message_id|record)\}")
_RECIPIENTS = "{recipients}"      # a value that is exactly this becomes the list of numbers
_RETRY_CODES = {408, 425, 429}    # 4xx that mean "later", not "never"


class HttpSmsSender:
    """Sends outbox messages to an HTTP SMS gateway as JSON built from `body_template`.

    In the template, the strings `{to}`, `{text}`, `{subject}`, `{id}` and `{record}` are
    replaced wherever they appear (only these names: a template cannot reach anything
    else). A value that is exactly `{recipients}` becomes the list of all numbers and the
    gateway gets one request; otherwise it gets one request per number.
    """

    def __init__(self, url: str, *, method: str = "POST", token_env: str | None = None,
                 body_template: Mapping[str, Any], timeout: float = 10.0,
                 headers: Mapping[str, str] | None = None):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"`{url}` is not an http:// or https:// address of an SMS gateway")
        self.url = url
        self.method = method.upper()
        self.token_env = token_env
        self.body_template = body_template
        self.timeout = timeout
        self.headers = dict(headers or {})

    def send(self, message: OutgoingMessage) -> str | None:
        """Deliver one message; returns the gateway's answers, shortened."""
        token = self._token()
        if _mentions(self.body_template, _RECIPIENTS):
            bodies = [_fill(self.body_template, message, None)]
        else:
            bodies = [_fill(self.body_template, message, number) for number in message.recipients]
        answers = [self._post(body, token) for body in bodies]
        return "; ".join(answer for answer in answers if answer)[:500] or None

    def _token(self) -> str | None:
        if not self.token_env:
            return None
        token = os.environ.get(self.token_env)
        if not token:
            # The settings are incomplete, not the message: retry once the variable is set.
            raise TemporaryFailure(f"the environment variable {self.token_env} holding the SMS gateway's token is not set")
        return token

    def _post(self, body: Any, token: str | None) -> str:
        headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json", **self.headers}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode("utf-8"),
                                         headers=headers, method=self.method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _words(response.read())
        except urllib.error.HTTPError as error:
            text = f"the SMS gateway answered {error.code} {error.reason}: {_words(error.read())}".rstrip(": ")
            if error.code >= 500 or error.code in _RETRY_CODES:
                raise TemporaryFailure(text) from None
            raise PermanentFailure(text) from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise TemporaryFailure(f"the SMS gateway did not answer within {self.timeout:g} seconds") from None
            raise TemporaryFailure(f"cannot reach the SMS gateway {self.url}: {getattr(reason, 'strerror', None) or reason}") from None
        except (socket.timeout, TimeoutError):
            raise TemporaryFailure(f"the SMS gateway did not answer within {self.timeout:g} seconds") from None
        except OSError as error:
            raise TemporaryFailure(f"the connection to the SMS gateway failed: {error}") from None

    def __repr__(self) -> str:
        return f"<HttpSmsSender {self.method} {self.url}>"


def _fill(template: Any, message: OutgoingMessage, number: str | None) -> Any:
    if isinstance(template, Mapping):
        return {key: _fill(value, message, number) for key, value in template.items()}
    if isinstance(template, (list, tuple)):
        return [_fill(value, message, number) for value in template]
    if template == _RECIPIENTS:
        return list(message.recipients)
    if isinstance(template, str):
        values = {"to": number or ",".join(message.recipients), "text": message.body,
                  "subject": message.subject, "id": str(message.id), "message_id": str(message.id),
                  "record": message.record or ""}
        return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
    return template


def _mentions(template: Any, marker: str) -> bool:
    if isinstance(template, Mapping):
        return any(_mentions(value, marker) for value in template.values())
    if isinstance(template, (list, tuple)):
        return any(_mentions(value, marker) for value in template)
    return template == marker


def _words(raw: bytes) -> str:
    return " ".join(raw.decode("utf-8", "replace").split())[:300]
