"""A request's reads in one transaction (`Store.holding_reads`): they share one connection
and one snapshot, a write in the block is seen by the reads after it, and a write by
someone else meanwhile is not (the page is drawn from one moment)."""
from __future__ import annotations

import threading

import pytest


def _opened(store) -> list[int]:
    opened, real = [], store.db.open

    def counting(*args, **kwargs):
        opened.append(1)
        return real(*args, **kwargs)
    store.db.open = counting
    return opened


def test_the_reads_of_a_block_share_one_connection(store):
    store.run(lambda s: s.create("team", {"name": "Blue"}))
    opened = _opened(store)
    with store.holding_reads():
        names = [store.read(lambda s: s.query("team").records[0]["name"]) for _ in range(5)]
    assert names == ["Blue"] * 5 and len(opened) == 1
    store.read(lambda s: s.count("team"))
    store.read(lambda s: s.count("team"))
    assert len(opened) == 3                           # outside a block, each read its own


def test_a_write_in_the_block_is_seen_by_the_reads_after_it(store):
    with store.holding_reads():
        assert store.read(lambda s: s.count("team")) == 0
        store.run(lambda s: s.create("team", {"name": "Green"}))
        assert store.read(lambda s: s.count("team")) == 1


def test_another_transactions_write_is_not_seen_within_the_block(store):
    with store.holding_reads():
        assert store.read(lambda s: s.count("team")) == 0
        elsewhere = threading.Thread(target=lambda: store.run(lambda s: s.create("team", {"name": "Red"})))
        elsewhere.start()
        elsewhere.join()
        assert store.read(lambda s: s.count("team")) == 0          # one snapshot for the whole page
    assert store.read(lambda s: s.count("team")) == 1


def test_a_write_within_a_read_of_the_block_ends_the_snapshot_once_the_read_returns(store):
    with store.holding_reads():
        def reads_then_writes(session):
            before = session.count("team")
            store.run(lambda s: s.create("team", {"name": "Amber"}))
            return before, session.count("team")                     # still the read's own snapshot
        assert store.read(reads_then_writes) == (0, 0)
        assert store.read(lambda s: s.count("team")) == 1


def test_an_error_in_a_read_leaves_the_block_usable(store):
    with store.holding_reads():
        with pytest.raises(ZeroDivisionError):
            store.read(lambda s: 1 / 0)
        assert store.read(lambda s: s.count("team")) == 0
