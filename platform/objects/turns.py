"""Write turns between processes: a writer that keeps losing gets a turn alone.

Writes are optimistic: two processes write at once and ZODB refuses the second commit
that changed an object the first changed (a ConflictError), which `Store.run` retries.
Between processes that all create records of one type at full speed, the same writer
can lose again and again (four processes of two threads on RelStorage: about one
creation in 150 gave up after 15 attempts) — the buckets that new records share (the
last one of each index, a node that splits) are met by every creation.

So each write transaction holds a *shared* turn of the database, which costs nothing
while nobody asks for more, and a writer that has lost `ALONE_AFTER` times in a row
asks for the turn *alone*: it waits until the transactions under way end, new ones wait
for it, and its next attempt meets nobody. Writers thus never give up for having met
others; they wait a little instead.

Where the turn is kept follows the database:

- `file://` and `memory://`: one process opens the database and its writes already take
  turns (`Store._writing`): nothing more is needed.
- `zeo://`: the processes share a machine (ZEO has no passwords and stays on loopback):
  two lock files in the temporary folder, named by the server's address.
- `postgres://` (RelStorage): PostgreSQL advisory locks, on a connection of the process's
  own; they serve every machine that opens the database, and end with the connection.

A turn is asked for by the thread that holds the store's write lock, so one process
holds at most one turn at a time, and a write run within another write never asks for
one again (the outer one holds it).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

ALONE_AFTER = 3          # conflicts in a row before a writer asks for the turn alone
# The advisory lock's key: one per database (PostgreSQL scopes advisory locks to the
# database a session is connected to): these words as a number, unlike any other key.
ADVISORY_KEY = int.from_bytes(b"deskbase write turn", "big") % (2 ** 63)


class NoTurns:
    """One process opens the database: its own write lock is the turn."""

    @contextmanager
    def shared(self) -> Iterator[None]:
        yield

    @contextmanager
    def alone(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


class FileTurns(NoTurns):
    """Processes of one machine: `flock` on two files. Linux lets new shared locks pass a
    writer waiting for an exclusive one, so every taker first holds a gate for an instant:
    a writer waiting alone holds the gate, and the shared takers queue behind it."""

    def __init__(self, folder: Path, name: str):
        self.gate_path = folder / f"deskbase-turns-{name}.gate"
        self.turn_path = folder / f"deskbase-turns-{name}.lock"
        self._files: tuple[int, int] | None = None
        self._pid = 0

    def _opened(self) -> tuple[int, int]:
        # A lock belongs to an open file, which a forked child shares with its parent: each
        # process opens the files itself, or the two would hold one turn.
        if self._files is None or self._pid != os.getpid():
            self._files = tuple(os.open(path, os.O_RDWR | os.O_CREAT, 0o600)   # type: ignore[assignment]
                                for path in (self.gate_path, self.turn_path))
            self._pid = os.getpid()
        assert self._files is not None
        return self._files

    @contextmanager
    def _held(self, mode: int) -> Iterator[None]:
        gate, turn = self._opened()
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(turn, mode)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)

    def shared(self):
        return self._held(fcntl.LOCK_SH)

    def alone(self):
        return self._held(fcntl.LOCK_EX)

    def close(self) -> None:
        if self._files is not None:
            for descriptor in self._files:
                os.close(descriptor)
            self._files = None


class PostgresTurns(NoTurns):
    """Processes on one PostgreSQL database, on any machine: an advisory lock, shared by
    every write transaction and taken alone by a writer that keeps losing. PostgreSQL
    queues a shared request behind a waiting exclusive one, so the lone writer is not
    starved. The connection is opened at the first write and kept (autocommit)."""

    def __init__(self, connect: dict[str, Any]):
        self._connect = connect
        self._connection: Any = None

    def _cursor(self) -> Any:
        import psycopg2  # comes with RelStorage's PostgreSQL driver (the `postgresql` extra)
        if self._connection is not None and self._connection.closed:
            self._connection = None
        if self._connection is None:
            self._connection = psycopg2.connect(**self._connect)
            self._connection.autocommit = True
            self._pid = os.getpid()
        return self._connection.cursor()

    def _call(self, function: str) -> None:
        with self._cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s)", (ADVISORY_KEY,))

    @contextmanager
    def _held(self, take: str, give: str) -> Iterator[None]:
        import psycopg2
        try:
            self._call(take)
        except psycopg2.Error:
            # The connection was lost (a restarted server ends its locks with it): once more
            # on a new one; a second failure is the database being away, as the write will say.
            self.close()
            self._call(take)
        try:
            yield
        finally:
            try:
                self._call(give)
            except psycopg2.Error:
                self.close()     # a lost connection holds no lock any more

    def shared(self):
        return self._held("pg_advisory_lock_shared", "pg_advisory_unlock_shared")

    def alone(self):
        return self._held("pg_advisory_lock", "pg_advisory_unlock")

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


def turns_for(uri: str) -> NoTurns:
    """The write turns of the database at `uri` (see the module's text)."""
    scheme = uri.split("://", 1)[0].lower()
    if scheme == "zeo":
        address = uri.split("://", 1)[1].split("?", 1)[0]
        name = hashlib.sha256(address.encode()).hexdigest()[:16]
        return FileTurns(Path(tempfile.gettempdir()), name)
    if scheme in ("postgres", "postgresql"):
        parts = urlsplit(uri)
        options = dict(parse_qsl(parts.query))
        connect = {"dbname": unquote(parts.path[1:]), "user": unquote(parts.username or "") or None,
                   "password": unquote(parts.password or "") or None, "host": parts.hostname,
                   "port": parts.port, "connect_timeout": options.get("connect_timeout", 10),
                   "application_name": "deskbase write turns"}
        if options.get("ssl_mode"):
            connect["sslmode"] = options["ssl_mode"]
        return PostgresTurns({key: value for key, value in connect.items() if value is not None})
    return NoTurns()
