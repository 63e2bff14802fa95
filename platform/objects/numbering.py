"""Record numbers given outside the transaction that creates the record.

Every creation of a type needs the next number of that type's counter. Taken inside the
creating transaction, the counter is the one object all of them write: eight clients
creating at once conflicted on it until their retries ran out. Here a number is taken in a
short transaction of its own on a connection kept for that, committed before the creating
transaction goes on. Creations then never conflict on the counter; a number taken by a
transaction that later aborts is not given again (a gap, as in every database sequence).

Within a process the allocations are serialised by a lock (they never conflict with each
other); between processes a conflict on the counter is retried here, on a transaction of a
few microseconds, never on the caller's. A counter made in the caller's own transaction
(a type added by a migration) is not yet visible to other connections: it is counted in
that transaction, as before.

A database that one process alone opens (`file://`, `memory://`) has no other process to
conflict with, and its writes take turns: there the number is counted in the creating
transaction itself (`local`), which saves a commit and its `fsync` per creation (8 % of a
single create's time, measured by `bench/write_profile.py`) and leaves no gap when a write
is refused.
"""
from __future__ import annotations

import random
import threading
import time
from typing import Any

import transaction
from ZODB.POSException import ConflictError
from ZODB.utils import z64

ATTEMPTS = 200      # a conflict lasts as long as another process's commit of one counter


class NumberAllocator:
    """Gives the numbers of the counters (`records.Sequence`) of one database."""

    def __init__(self, db: Any, *, local: bool = False):
        self._db = db
        self._local = local
        self._lock = threading.Lock()
        self._manager: transaction.TransactionManager | None = None
        self._connection: Any = None

    def take(self, counter: Any, count: int = 1) -> int:
        """Reserve `count` numbers of `counter` (a persistent object with `value`, the last
        number given); the first of them. The caller's view of `counter` is not changed, except
        where the number is counted in the caller's transaction (`local`, or a new counter)."""
        if counter._p_jar is not None:
            counter._p_activate()           # a ghost's serial is unknown until loaded
        if self._local or counter._p_jar is None or counter._p_serial == z64:   # or new in the caller's transaction
            first = counter.value + 1
            counter.value += count
            return first
        with self._lock:
            for attempt in range(1, ATTEMPTS + 1):
                manager, connection = self._opened()
                try:
                    manager.begin()
                    own = connection.get(counter._p_oid)
                    first = own.value + 1
                    own.value += count
                    manager.commit()
                    return first
                except ConflictError:
                    manager.abort()
                    if attempt == ATTEMPTS:
                        raise
                    time.sleep(random.uniform(0, min(0.02, 0.0005 * attempt)))
                except BaseException:
                    manager.abort()
                    raise
        raise AssertionError("unreachable")

    def _opened(self) -> tuple[transaction.TransactionManager, Any]:
        if self._connection is None:
            self._manager = transaction.TransactionManager(explicit=True)
            self._connection = self._db.open(transaction_manager=self._manager)
        return self._manager, self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
