"""Signed links that act without signing in: a message may carry a link that fires one
transition of one record, or creates one record of a type with some values fixed (an
answer to a survey), for the address it was sent to, until it expires. The signature is an
HMAC with a secret kept in the database; a link is refused once used, expired or altered."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from BTrees.OOBTree import OOBTree

from deskbase.objects.errors import DeskbaseError
from deskbase.objects.kept_objects import kept_object

SECRET_KEY = "deskbase.link_secret"
USED_KEY = "deskbase.links_used"
UTC = timezone.utc
DEFAULT_DAYS = 14


class LinkRefused(DeskbaseError):
    """A link that cannot be followed; the message says why, in words for the person."""


@dataclass(frozen=True)
class Link:
    """What a signed link allows: `fire` a transition of `record`, or `create` a record of
    `type` with `values`, as `address`, until `expires`."""

    action: str                  # fire | create
    address: str
    expires: datetime
    record: str | None = None    # fire: the record's number
    transition: str | None = None
    type: str | None = None      # create: the type and the values it fixes
    values: dict[str, Any] | None = None
    nonce: str = ""

    def as_payload(self) -> dict[str, Any]:
        return {"a": self.action, "to": self.address, "exp": int(self.expires.timestamp()), "r": self.record,
                "t": self.transition, "ty": self.type, "v": self.values, "n": self.nonce}


def _secret(connection) -> bytes:
    return kept_object(connection, SECRET_KEY, lambda: secrets.token_bytes(32))


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(session, link: Link) -> str:
    """The token of a link (goes in a URL)."""
    link = link if link.nonce else Link(**{**link.__dict__, "nonce": secrets.token_urlsafe(6)})
    body = json.dumps(link.as_payload(), separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(_secret(session.connection), body, hashlib.sha256).digest()[:16]
    return f"{_encode(body)}.{_encode(mac)}"


def fire_link(session, number: str, transition: str, address: str, days: int = DEFAULT_DAYS) -> str:
    """A token firing `transition` on record `number` for whoever holds `address`'s message."""
    return sign(session, Link("fire", address, session.now + timedelta(days=days), record=number,
                              transition=transition))


def create_link(session, type_name: str, values: dict[str, Any], address: str, days: int = DEFAULT_DAYS) -> str:
    """A token creating one record of `type_name` with `values` fixed (a survey's answer)."""
    return sign(session, Link("create", address, session.now + timedelta(days=days), type=type_name,
                              values=dict(values)))


def read(session, token: str) -> Link:
    """The link a token stands for; LinkRefused when altered, expired or already used."""
    try:
        body_text, mac_text = token.split(".", 1)
        body, mac = _decode(body_text), _decode(mac_text)
    except (ValueError, TypeError):
        raise LinkRefused("This link is not complete; copy all of it from the message.") from None
    expected = hmac.new(_secret(session.connection), body, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(mac, expected):
        raise LinkRefused("This link is not valid; copy all of it from the message.")
    payload = json.loads(body)
    expires = datetime.fromtimestamp(payload["exp"], UTC)
    if expires < session.now:
        raise LinkRefused(f"This link expired on {expires:%Y-%m-%d}; sign in to do it instead.")
    used = kept_object(session.connection, USED_KEY)
    if used is not None and payload["n"] in used:
        raise LinkRefused("This link has been used already.")
    return Link(payload["a"], payload["to"], expires, payload.get("r"), payload.get("t"), payload.get("ty"),
                payload.get("v"), payload["n"])


def spend(session, link: Link) -> None:
    """Mark a link used, in the transaction that does what it allows."""
    kept_object(session.connection, USED_KEY, OOBTree)[link.nonce] = link.expires
