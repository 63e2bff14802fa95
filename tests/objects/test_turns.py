"""The database's write turns between processes (`platform/objects/turns.py`): a writer
that asks for the turn alone waits for the transactions under way, and the ones that
start meanwhile wait for it. Each `turns_for` object is one process's (its own files or
its own PostgreSQL connection), so threads holding separate objects stand for processes."""
from __future__ import annotations

import threading
import time

import pytest
from ZODB.POSException import ConflictError

from deskbase.objects.turns import FileTurns, NoTurns, PostgresTurns, turns_for


def _order_of_turns(make) -> list[str]:
    """Process A writes (shared turn); B asks for the turn alone; C starts a write after B
    asked. What each did, in the order it happened."""
    a, b, c = make(), make(), make()
    events: list[str] = []
    lock = threading.Lock()

    def say(what: str) -> None:
        with lock:
            events.append(what)

    def alone():
        with b.alone():
            say("B alone")
            time.sleep(0.2)
            say("B done")

    def shared():
        with c.shared():
            say("C writes")

    try:
        with a.shared():
            say("A writes")
            asking = threading.Thread(target=alone)
            asking.start()
            time.sleep(0.2)                     # B now waits for A
            starting = threading.Thread(target=shared)
            starting.start()
            time.sleep(0.2)                     # C now waits for B, who waits for A
            say("A done")
        asking.join(5)
        starting.join(5)
        return events
    finally:
        for turns in (a, b, c):
            turns.close()


def test_processes_of_one_machine_take_turns_through_lock_files(tmp_path):
    events = _order_of_turns(lambda: FileTurns(tmp_path, "test"))
    assert events == ["A writes", "A done", "B alone", "B done", "C writes"]


def test_processes_on_postgresql_take_turns_through_an_advisory_lock(postgres_database):
    events = _order_of_turns(lambda: turns_for(postgres_database.uri("turns")))
    assert events == ["A writes", "A done", "B alone", "B done", "C writes"]


def test_shared_turns_do_not_wait_for_each_other(tmp_path):
    one, two = FileTurns(tmp_path, "test"), FileTurns(tmp_path, "test")
    entered = threading.Event()

    def second():
        with two.shared():
            entered.set()
    try:
        with one.shared():
            writer = threading.Thread(target=second)
            writer.start()
            assert entered.wait(2), "a second writer waited for the first"
            writer.join()
    finally:
        one.close()
        two.close()


class _Told(NoTurns):
    """Turns that say which were asked for, in order."""

    def __init__(self):
        self.asked: list[str] = []

    def shared(self):
        self.asked.append("shared")
        return super().shared()

    def alone(self):
        self.asked.append("alone")
        return super().alone()


def test_a_writer_that_lost_three_times_runs_its_next_attempts_alone(store):
    store.turns = told = _Told()
    lost = []

    def work(session):
        if len(lost) < 4:
            lost.append(1)
            raise ConflictError("another process wrote the same bucket")
        return session.create("task", {"title": "written at last"}).number

    assert store.run(work)
    # three attempts with a shared turn, then one turn alone for every attempt after
    assert told.asked == ["shared", "shared", "shared", "alone"]
    assert store.conflicts == {"retried": 4, "gave_up": 0, "alone": 1}
    told.asked.clear()
    store.run(lambda s: s.create("task", {"title": "the next write shares again"}))
    assert told.asked == ["shared"]


@pytest.mark.parametrize("uri, kind", [
    ("memory://", NoTurns), ("file:///tmp/x/Data.fs", NoTurns),
    ("zeo://127.0.0.1:8100?blob_dir=/b&shared_blob_dir=1", FileTurns),
    ("postgres://u:p%40ss@db.example:5432/deskbase?blob_dir=/b&keep_history=false", PostgresTurns),
])
def test_each_database_gets_the_turns_its_processes_share(uri, kind):
    turns = turns_for(uri)
    assert type(turns) is kind
    if isinstance(turns, PostgresTurns):            # the password is unquoted, the options kept out
        assert turns._connect["password"] == "p@ss" and turns._connect["dbname"] == "deskbase"
        assert turns._connect["host"] == "db.example" and turns._connect["port"] == 5432


def test_a_forked_process_takes_turns_of_its_own(tmp_path):
    """A web server that forks its workers after a write: the child must not share the
    parent's lock files, or both would hold one turn."""
    import os
    parent = FileTurns(tmp_path, "test")
    try:
        with parent.shared():
            pass                                    # the files are open in the parent now
        with parent.alone():
            child = os.fork()
            if child == 0:                          # the child's shared turn waits for the parent
                started = time.monotonic()
                with parent.shared():
                    os._exit(0 if time.monotonic() - started >= 0.3 else 1)
            time.sleep(0.5)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        parent.close()
