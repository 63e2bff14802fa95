"""Indexing after the commit: the records a person's write created wait, counted in but not
filed under their keys (`TypeIndexes.wait`), until the store's indexer files them in a
transaction of its own, a moment after the creating one has committed.

Why: a record of a type with 44 indexes is filed in ~70 small persistent objects (the
bucket under each of its keys), and ZODB's cost of a commit grows with the objects it
writes. Filed after the commit, a create writes about ten, and the indexer files the
records of several creates at once, writing the buckets they share once.

What a reader sees does not change: the queries judge the waiting records by their values
(`Filter.ids`, `query.search`) and statistics file them first in their own transaction
(`TypeContainer.filed`). A transaction defers at most DEFERRED_PER_TRANSACTION records: the
records after those (a bulk import's) are filed at once, since every query of the import
would otherwise judge them all by their values.

The indexer is a thread of the store's process, started at the first deferral; it waits
until the writes pause (QUIET seconds) or BATCH records wait, then files those its process
left (`Store.run`, retried on conflicts like any write, taking this process's turn among
its writers, on a connection of its own). If the process stops before its indexer has run,
the records wait in the database and the next store opened on it files them; `Store.close`
files them first.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("deskbase.indexer")
DEFERRED_PER_TRANSACTION = 8   # records a transaction leaves to the indexer; the others are filed at once
QUIET = 0.02                   # seconds without a new deferral before filing
BATCH = 64                     # records waiting that are filed without waiting for a pause
PART = 500                     # records filed per transaction


def _closed(db) -> bool:
    """Whether a ZODB database has been closed (it then drops its storage adapter)."""
    return not hasattr(db, "_mvcc_storage")


class Indexer:
    """Files the waiting records of a store's types, in a thread of its own."""

    def __init__(self, store: "Store"):
        self.store = store
        self._ids: dict[str, set[int]] = {}   # type → ids this process left waiting, not yet filed
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stopping = False
        self.filed = 0                  # records this indexer has filed (for /metrics and tests)
        self._failures = 0              # filings failed in a row (the pause before the next grows)

    def soon(self, ids: Mapping[str, Iterable[int]]) -> None:
        """These records (ids by type) were left waiting by a committed transaction.

        An indexer files the records its own process left: the indexers of several
        processes then never file the same record at once (each would undo the other's
        work as a conflict). Those another process left and did not file — it stopped
        first — are filed by the next store opened on the database (`waiting`), and by
        `file_now`."""
        with self._changed:
            if self._stopping:
                return
            for type_name, record_ids in ids.items():
                self._ids.setdefault(type_name, set()).update(record_ids)
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                # the first deferral, or in a forked child (threads do not survive a fork)
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="deskbase-indexer", daemon=True)
                self._thread.start()
            self._changed.notify()

    def file_now(self) -> int:
        """File every waiting record of every type (whichever process left it), in this
        thread and one transaction; how many."""
        def work(session) -> int:
            filed = 0
            types = session.definitions.types
            for name, container in session.root.containers.items():
                if name in types and container.indexes.has_waiting:
                    filed += container.indexes.catch_up(types[name], container.records)
            return filed
        filed = self.store.run(work, user="system", own=True)
        with self._changed:
            self.filed += filed
            self._ids.clear()
        return filed

    def waiting(self) -> dict[str, list[int]]:
        """The records waiting in the database, by type (left by a process that stopped
        before its indexer ran, or by another process's)."""
        return self.store.read(lambda session: {name: container.indexes.waiting_ids()
                                                for name, container in session.root.containers.items()
                                                if container.indexes.has_waiting})

    def stop(self) -> None:
        """Stop the thread, and file what still waits (the store is closing)."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
            thread = self._thread
        if thread is None:
            return              # nothing was deferred by this process
        if thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=60)
        try:
            self.file_now()
        except Exception:       # they wait in the database: the next store opened files them
            log.exception("filing the waiting records on closing failed")

    def _count(self) -> int:
        return sum(map(len, self._ids.values()))

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._ids and not self._stopping:
                    self._changed.wait()
                # Wait for a pause in the writes, or for a batch: their records share buckets.
                while not self._stopping and self._count() < BATCH:
                    seen = self._count()
                    self._changed.wait(QUIET)
                    if self._count() == seen:
                        break
                taken, self._ids = self._ids, {}
                stopping = self._stopping
            failed = False
            for name, record_ids in sorted(taken.items()):
                try:
                    self._file(name, sorted(record_ids))
                except Exception:   # still waiting, and still found by their values: filed again after a pause
                    if _closed(self.store.db):
                        return      # the database was closed under the store: the next opener files them
                    log.exception("filing the waiting records of `%s` failed", name)
                    failed = True
                    with self._changed:
                        self._ids.setdefault(name, set()).update(record_ids)
            if stopping:
                return
            if failed:   # not again at once: after a pause that doubles while filing keeps failing
                self._failures += 1
                with self._changed:
                    if not self._stopping:
                        self._changed.wait(min(60.0, 0.1 * 2 ** self._failures))
            else:
                self._failures = 0

    def _file(self, type_name: str, record_ids: list[int]) -> int:
        filed = 0
        for start in range(0, len(record_ids), PART):
            part = record_ids[start:start + PART]

            def work(session) -> int:
                containers = session.root.containers
                if type_name not in session.definitions.types or type_name not in containers:
                    return 0
                container = containers[type_name]
                return container.indexes.catch_up(session.definitions.type(type_name), container.records, ids=part)
            filed += self.store.run(work, user="system", own=True)
        with self._changed:
            self.filed += filed
        return filed
