"""Moments of something done (a failed sign-in, a public form sent), counted per key within a
window and kept in the database, so that every server process in front of one database —
several web processes on ZEO or PostgreSQL behind one address — counts them alike."""
from __future__ import annotations

import time
from collections.abc import Iterable

from BTrees.OOBTree import OOBTree

from deskbase.objects.kept_objects import kept_object
from deskbase.objects.store import Store

STALE_AFTER = 10_000        # keys kept before those whose last moment left the window are dropped


class KeptMoments:
    """The recent moments per key under one key of the database root, within `window` seconds."""

    def __init__(self, store: Store, root_key: str, window: float):
        self.store, self.root_key, self.window = store, root_key, window

    def waits(self, limits: Iterable[tuple[str, int]], now: float | None = None) -> int:
        """Seconds before any key reaches below its limit again (0: all are below)."""
        now = time.time() if now is None else now

        def work(session) -> int:
            kept = kept_object(session.connection, self.root_key)
            return self._wait(kept, limits, now) if kept is not None else 0
        return self.store.read(work)

    def add(self, limits: Iterable[tuple[str, int]], now: float | None = None) -> None:
        """Count one moment now for each key, keeping no more than its limit."""
        now = time.time() if now is None else now
        self.store.run(lambda session: self._add(self._kept(session), limits, now))

    def take(self, key: str, limit: int, now: float | None = None) -> bool:
        """Count one moment for `key` if it is below its limit, in one transaction (two
        processes cannot both take the last place); whether it was."""
        now = time.time() if now is None else now

        def work(session) -> bool:
            kept = self._kept(session)
            if self._wait(kept, [(key, limit)], now):
                return False
            self._add(kept, [(key, limit)], now)
            return True
        return self.store.run(work)

    def forget(self, keys: Iterable[str]) -> None:
        def work(session) -> None:
            kept = kept_object(session.connection, self.root_key)
            for key in keys:
                if kept is not None and key in kept:
                    del kept[key]
        self.store.run(work)

    def _kept(self, session) -> OOBTree:
        kept = kept_object(session.connection, self.root_key, OOBTree)
        assert kept is not None
        return kept

    def _recent(self, kept, key: str, now: float) -> list[float]:
        return [moment for moment in kept.get(key, ()) if now - moment < self.window]

    def _wait(self, kept, limits: Iterable[tuple[str, int]], now: float) -> int:
        waits = []
        for key, limit in limits:
            recent = self._recent(kept, key, now)
            if len(recent) >= limit:
                waits.append(int(self.window - (now - recent[-limit])) + 1)
        return max(waits, default=0)

    def _add(self, kept, limits: Iterable[tuple[str, int]], now: float) -> None:
        if len(kept) > STALE_AFTER:                  # forget the keys that stopped coming
            for stale in [key for key, moments in kept.items() if now - moments[-1] >= self.window]:
                del kept[stale]
        for key, limit in limits:
            kept[key] = tuple(self._recent(kept, key, now)[-limit:]) + (now,)
