"""Web sign-in: sessions kept in the database (a random token in an HttpOnly cookie, so
signing out or disabling an account ends them everywhere), the CSRF token of each
session, and the throttling of repeated failed sign-ins."""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from BTrees.OOBTree import OOBTree

from deskbase.objects.kept_objects import kept_object
from deskbase.objects.store import Store

from .limits import KeptMoments

SESSIONS_KEY = "deskbase.web_sessions"
COOKIE = "deskbase_session"
LIFETIME = timedelta(hours=12)
UTC = timezone.utc


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: whose it is, until when, and the token its forms must carry."""

    token: str
    login: str
    csrf: str
    expires_at: datetime

    def csrf_matches(self, given: str | None) -> bool:
        if not given:
            return False
        return hmac.compare_digest(self.csrf, given)


def _sessions(connection) -> OOBTree:
    return kept_object(connection, SESSIONS_KEY, OOBTree)


def open_session(store: Store, login: str, now: datetime | None = None) -> WebSession:
    """A new session for an account that has just proven who it is."""
    now = now or datetime.now(UTC)
    session = WebSession(secrets.token_urlsafe(32), login, secrets.token_urlsafe(32), now + LIFETIME)

    def work(db_session) -> None:
        sessions = _sessions(db_session.connection)
        sessions[session.token] = (session.login, session.csrf, session.expires_at)
        for token, (_, _, expires) in list(sessions.items())[:50]:    # tidy a few expired ones as we go
            if expires < now:
                del sessions[token]
    store.run(work)
    return session


def find_session(store: Store, token: str | None, now: datetime | None = None) -> WebSession | None:
    """The live session of a cookie's token, or None."""
    if not token:
        return None
    now = now or datetime.now(UTC)

    def work(db_session) -> WebSession | None:
        stored = (kept_object(db_session.connection, SESSIONS_KEY) or {}).get(token)
        if stored is None or stored[2] < now:
            return None
        return WebSession(token, *stored)
    return store.read(work)


def close_session(store: Store, token: str | None) -> None:
    """Sign out: the token is forgotten, in every process."""
    if token:
        store.run(lambda s: _sessions(s.connection).pop(token, None))


THROTTLE_KEY = "deskbase.sign_in_failures"


class SignInThrottle:
    """Failed sign-ins, kept in the database so that every server process counts them alike:
    at most `attempts` per login from one address, and `per_address` for any logins from one
    address, within `window` seconds; past either, that address waits until its oldest
    failure leaves the window. A login is never locked for everyone (nobody can lock the
    administrator out from elsewhere); a success clears its address's failures."""

    def __init__(self, store: Store, attempts: int = 5, per_address: int = 50, window: float = 900.0):
        self.failures = KeptMoments(store, THROTTLE_KEY, window)
        self.attempts, self.per_address = attempts, per_address

    def _limits(self, login: str, address: str) -> list[tuple[str, int]]:
        return [(_pair(login, address), self.attempts), (_address(address), self.per_address)]

    def wait_for(self, login: str, address: str) -> int:
        """Seconds before another attempt is allowed (0: allowed now)."""
        return self.failures.waits(self._limits(login, address))

    def failed(self, login: str, address: str) -> None:
        self.failures.add(self._limits(login, address))

    def succeeded(self, login: str, address: str) -> None:
        self.failures.forget([_pair(login, address), _address(address)])


def _pair(login: str, address: str) -> str:
    return f"{address} {login.casefold()}"


def _address(address: str) -> str:
    return f"{address} *"


def close_sessions_of(store: Store, login: str, keep: str | None = None) -> int:
    """End every session of an account but `keep` (after its password changed); how many."""
    def work(db_session) -> int:
        sessions = _sessions(db_session.connection)
        ended = [token for token, (owner, _, _) in sessions.items() if owner == login and token != keep]
        for token in ended:
            del sessions[token]
        return len(ended)
    return store.run(work)
