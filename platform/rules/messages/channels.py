"""The `channels:` section: how each outbox channel reaches the outside (an SMTP server, an
HTTP SMS gateway), as plain frozen settings. Secrets are never written here, only the names
of the environment variables that hold them; the connectors build senders from this."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from deskbase.objects.compiling import Section, definition_error
from deskbase.objects.errors import DefinitionError
from deskbase.objects.model import Definitions

KINDS = ("smtp", "http")
SECURITY = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class Channel:
    """One channel's settings; `kind` says which of the others apply."""

    name: str
    kind: str                                  # smtp | http
    host: str = "localhost"                    # smtp
    port: int = 25
    security: str = "none"
    username_env: str | None = None
    password_env: str | None = None
    sender: str | None = None                  # `from:` in the YAML
    reply_to: str | None = None
    url: str | None = None                     # http
    token_env: str | None = None


_SCHEMA = {
    "type": ["object", "null"],
    "x-noun": "a map of channels such as {email: {kind: smtp, host: localhost}}",
    "description": "how messages leave, by name: e-mail through SMTP, text messages through an HTTP gateway",
    "additionalProperties": {
        "type": "object",
        "x-noun": "a channel: a map with `kind` (smtp or http) and its settings",
        "x-member": "a setting of a channel",
        "required": ["kind"],
        "properties": {
            "kind": {"enum": list(KINDS), "x-noun": "smtp or http",
                     "description": "smtp (e-mail) or http (a text-message gateway)"},
            "host": {"type": "string", "x-noun": "a host name", "description": "the SMTP server"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "x-noun": "a port number",
                     "description": "the SMTP server's port"},
            "security": {"enum": list(SECURITY), "x-noun": "none, starttls or ssl",
                         "description": "how the connection is encrypted: none, starttls or ssl"},
            "username_env": {"type": "string", "x-noun": "the name of an environment variable",
                             "description": "the environment variable holding the user name"},
            "password_env": {"type": "string", "x-noun": "the name of an environment variable",
                             "description": "the environment variable holding the password"},
            "from": {"type": "string", "x-noun": "an address such as desk@example.org",
                     "description": "the sender of the messages"},
            "reply_to": {"type": "string", "x-noun": "an address such as desk@example.org",
                         "description": "where answers to the messages go"},
            "url": {"type": "string", "x-noun": "an http:// or https:// address",
                    "description": "the gateway's address"},
            "token_env": {"type": "string", "x-noun": "the name of an environment variable",
                          "description": "the environment variable holding the gateway's token"},
        },
        "additionalProperties": False,
    },
}

_OWN = {"smtp": ("host", "port", "security", "username_env", "password_env", "from", "reply_to"),
        "http": ("url", "token_env")}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[Mapping[str, Channel], list[DefinitionError]]:
    errors: list[DefinitionError] = []
    channels: dict[str, Channel] = {}
    mail = definitions.settings.get("mail") or {}
    for name, spec in (document.get("channels") or {}).items():
        path = ("channels", name)
        kind = spec["kind"]
        for key in spec:
            if key != "kind" and key not in _OWN[kind]:
                errors.append(definition_error(positions, path + (key,), f"`{key}` is not a setting of a {kind} "
                                               f"channel: {', '.join(_OWN[kind])}", on_key=True))
        if kind == "http" and not str(spec.get("url", "")).startswith(("http://", "https://")):
            errors.append(definition_error(positions, path + (("url",) if "url" in spec else ()),
                                           "an http channel needs a `url` starting with http:// or https://"))
        if kind == "smtp" and "@" not in str(spec.get("from") or mail.get("from") or ""):
            errors.append(definition_error(positions, path, "an smtp channel needs an address to send from",
                                           "write `from:` here or `mail: {from: …}` in settings"))
        security = spec.get("security", "none")
        channels[name] = Channel(name, kind, host=spec.get("host", "localhost"),
                                 port=spec.get("port", 465 if security == "ssl" else 587 if security == "starttls" else 25),
                                 security=security, username_env=spec.get("username_env"),
                                 password_env=spec.get("password_env"), sender=spec.get("from") or mail.get("from"),
                                 reply_to=spec.get("reply_to") or mail.get("reply_to"), url=spec.get("url"),
                                 token_env=spec.get("token_env"))
    return MappingProxyType(channels), errors


CHANNELS_SECTION = Section("channels", "top", _SCHEMA, _compile)


def channels(definitions: Definitions) -> Mapping[str, Channel]:
    """The compiled channels of definitions, by name (none when loaded without the section)."""
    return definitions.extensions.get("channels") or MappingProxyType({})
