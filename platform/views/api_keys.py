"""API keys: one per integration, each acting as an account. A key is shown once when it
is made; the database keeps only its SHA-256, under its public id (`dbk_<id>_<secret>`),
so a stolen copy of the database opens nothing."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from BTrees.OOBTree import OOBTree
from persistent import Persistent
from ZODB.POSException import ConflictError

from deskbase.objects.errors import DeskbaseError, NotFound
from deskbase.objects.kept_objects import kept_object
from deskbase.objects.store import Store
from deskbase.rules.access.identity import AccountError, Identity, identity_of

KEYS_KEY = "deskbase.api_keys"
PREFIX = "dbk"
LAST_USED_EVERY = timedelta(hours=1)   # how stale `last_used_at` may get: no write per request
UTC = timezone.utc
REFUSED = "the API key is unknown or revoked, or its account is disabled; send `Authorization: Bearer <key>`"


class KeyRefused(DeskbaseError):
    """A request whose key opens nothing; one message whatever the cause."""

    def __init__(self) -> None:
        super().__init__(REFUSED)


class ApiKey(Persistent):
    """One stored key: its own object, so that noting its use touches nothing else."""

    def __init__(self, key_id: str, name: str, login: str, digest: str, created_at: datetime):
        self.key_id = key_id
        self.name = name
        self.login = login
        self.digest = digest
        self.created_at = created_at
        self.last_used_at: datetime | None = None
        self.revoked_at: datetime | None = None


@dataclass(frozen=True)
class KeyInfo:
    """What `list_keys` tells about a key (never the key itself)."""

    name: str
    login: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _keys(connection, create: bool = False) -> OOBTree | None:
    return kept_object(connection, KEYS_KEY, OOBTree if create else None)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_key(store: Store, name: str, login: str) -> str:
    """Make a key named `name` acting as the account `login`; returns the key, shown only now."""
    name = name.strip()
    if not name or any(c.isspace() for c in name):
        raise AccountError("an API key's name is one word without spaces, such as `monitoring`")
    identity_of(store, login)                       # the account exists and is active
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)

    def work(session) -> None:
        keys = _keys(session.connection, create=True)
        assert keys is not None                     # create=True makes it when missing
        if any(key.name == name and key.revoked_at is None for key in keys.values()):
            raise AccountError(f"there is already an API key named `{name}`; revoke it first")
        keys[key_id] = ApiKey(key_id, name, login, _digest(secret), session.now)
    store.run(work)
    return f"{PREFIX}_{key_id}_{secret}"


def revoke_key(store: Store, name: str) -> None:
    """Revoke the live key named `name`: it opens nothing from now on (it stays listed)."""
    def work(session) -> None:
        keys = _keys(session.connection)
        live = [key for key in (keys.values() if keys is not None else ())
                if key.name == name and key.revoked_at is None]
        if not live:
            raise NotFound(f"there is no live API key named `{name}`")
        for key in live:
            key.revoked_at = session.now
    store.run(work)


def list_keys(store: Store) -> list[KeyInfo]:
    """Every key, live and revoked, by name."""
    def work(session) -> list[KeyInfo]:
        keys = _keys(session.connection)
        return sorted((KeyInfo(k.name, k.login, k.created_at, k.last_used_at, k.revoked_at)
                       for k in (keys.values() if keys is not None else ())),
                      key=lambda info: (info.name, info.created_at))
    return store.read(work)


def identity_of_key(store: Store, presented: str | None, now: datetime | None = None) -> Identity:
    """The identity of the account a presented key acts as; KeyRefused for an unknown or
    revoked key or a disabled account."""
    parts = (presented or "").strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise KeyRefused()
    key_id, secret = parts[1], parts[2]
    now = now or datetime.now(UTC)

    def work(session) -> tuple[str, bool]:
        keys = _keys(session.connection)
        key = keys.get(key_id) if keys is not None else None
        # Compared in constant time; an unknown id compares against a dummy all the same.
        matches = hmac.compare_digest(_digest(secret), key.digest if key is not None else _digest(""))
        if key is None or not matches or key.revoked_at is not None:
            raise KeyRefused()
        return key.login, key.last_used_at is None or now - key.last_used_at > LAST_USED_EVERY
    login, note_use = store.read(work)
    try:
        identity = identity_of(store, login)
    except (AccountError, NotFound):
        raise KeyRefused() from None
    if note_use:
        _note_use(store, key_id, now)
    return identity


def _note_use(store: Store, key_id: str, now: datetime) -> None:
    def work(session) -> None:
        keys = _keys(session.connection)
        key = keys.get(key_id) if keys is not None else None
        if key is not None and (key.last_used_at is None or now - key.last_used_at > LAST_USED_EVERY):
            key.last_used_at = now
    try:
        store.run(work, attempts=1, handled=True)
    except ConflictError:        # another request noted it at the same moment: that will do
        pass
