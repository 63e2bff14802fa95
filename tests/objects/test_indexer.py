"""Records filed in the indexes after their commit (docs/storage.md, "The write path"):
found at once by their author and everybody, filed a moment later by the store's indexer,
never filed with stale values, never left waiting."""
from __future__ import annotations

import time

import pytest
import transaction
from ZODB.POSException import ConflictError

from deskbase.objects import indexer as indexer_module
from deskbase.objects.indexer import DEFERRED_PER_TRANSACTION
from deskbase.objects.indexes import as_set
from deskbase.objects.store import Store


@pytest.fixture
def paused(monkeypatch):
    """The indexer waits for a pause of a minute: the records stay waiting until filed by hand."""
    monkeypatch.setattr(indexer_module, "QUIET", 60.0)
    monkeypatch.setattr(indexer_module, "BATCH", 10_000)


def _waiting(store, type_name="task") -> list[int]:
    return store.read(lambda s: s.container(type_name).indexes.waiting_ids())


def _filed_under(store, index_name, key, type_name="task") -> set[int]:
    def read(s):
        index = s.container(type_name).indexes.get(index_name)
        return set(as_set(index.forward.get(key)))
    return store.read(read)


def _answers(s):
    """What a person sees of the tasks: a filter, a word, an order, counts and statistics."""
    return (
        [r.number for r in s.query("task", {"priority": "high"}, "due").records],
        [r.number for r in s.query("task", {"text": "printer"}, "-due").records],
        [r.number for r in s.query("task", None, ["due", "-priority"], limit=3).records],
        s.count("task", {"done": False}),
        s.count_by("task", "priority"),
        s.tally("task", by="priority").cells,
    )


def test_a_new_record_is_found_at_once_and_filed_after_its_commit(store, paused):
    store.run(lambda s: [s.create("task", {"title": f"Printer {n}", "priority": "low", "due": f"2026-03-0{n}"})
                         for n in (1, 2)])
    store.indexer.file_now()
    created = store.run(lambda s: s.create("task", {"title": "Printer jams on tray 2", "priority": "high",
                                                    "due": "2026-02-27"}))
    assert _waiting(store) == [created.id]                  # counted in, under no key yet
    assert created.id not in _filed_under(store, "priority", store.definitions.type("task")
                                          .fields["priority"].kind.key("high"))
    before = store.read(_answers)
    assert before[0] == [created.number] and created.number in before[1]
    assert before[2] == [created.number, "TK-00001", "TK-00002"] and before[3] == 3
    assert dict(before[4])["high"] == 1
    assert store.indexer.file_now() == 1 and _waiting(store) == []
    assert store.read(_answers) == before                    # filed: the same answers, from the indexes


def test_a_waiting_record_changed_or_deleted_is_filed_as_it_ends(store, paused):
    first = store.run(lambda s: s.create("task", {"title": "Scanner", "priority": "low"}))
    second = store.run(lambda s: s.create("task", {"title": "Plotter", "priority": "low"}))
    store.run(lambda s: s.update(first, {"priority": "high", "title": "Scanner offline"}))
    store.run(lambda s: s.delete(second))
    assert store.read(lambda s: ([r.id for r in s.query("task", {"priority": "high"}).records],
                                 s.count("task"), s.count("task", {"text": "plotter"}))) == ([first.id], 1, 0)
    assert _waiting(store) == [first.id]
    store.indexer.file_now()
    key = store.definitions.type("task").fields["priority"].kind.key
    assert _filed_under(store, "priority", key("high")) == {first.id}
    assert _filed_under(store, "priority", key("low")) == set()
    assert _filed_under(store, "text", "offline") == {first.id} and _filed_under(store, "text", "plotter") == set()
    assert store.read(lambda s: s.count("task")) == 1


def test_the_indexer_files_the_records_a_moment_after_their_commit(store):
    created = store.run(lambda s: s.create("task", {"title": "Toner low"}))
    deadline = time.monotonic() + 10
    while _waiting(store) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _waiting(store) == []
    assert _filed_under(store, "text", "toner") == {created.id}
    assert store.indexer.filed >= 1


def test_a_transaction_leaves_a_few_records_waiting_and_files_the_others_at_once(store, paused):
    many = DEFERRED_PER_TRANSACTION + 5
    store.run(lambda s: [s.create("task", {"title": f"Import {n}"}) for n in range(many)])
    assert len(_waiting(store)) == DEFERRED_PER_TRANSACTION
    assert store.bulk_create("task", [{"title": f"Bulk {n}"} for n in range(30)], batch=10) == 30
    assert len(_waiting(store)) == DEFERRED_PER_TRANSACTION     # a bulk import files its rows itself
    assert store.read(lambda s: s.count("task", {"text": "import"})) == many


def test_filing_with_values_read_before_a_change_conflicts_instead_of_filing_them(store, paused):
    created_id = store.run(lambda s: s.create("task", {"title": "Router", "priority": "low"}).id)
    # Another process's indexer has read the record, as it was, and files it …
    manager = transaction.TransactionManager(explicit=True)
    connection = store.db.open(transaction_manager=manager)
    manager.begin()
    container = connection.root()["deskbase"].containers["task"]
    typedef = store.definitions.type("task")
    records = {created_id: container.records[created_id]}
    records[created_id].values                               # noqa: B018 – loaded as it is now
    # … while this one changes it, and commits first.
    store.run(lambda s: s.update(created_id, {"priority": "high"}, type_name="task"))
    try:
        assert container.indexes.catch_up(typedef, records) == 1
        with pytest.raises(ConflictError):
            manager.commit()
    finally:
        manager.abort()
        connection.close()
    assert _waiting(store) == [created_id]                  # still waiting: filed again, with its new values
    store.indexer.file_now()
    key = typedef.fields["priority"].kind.key
    assert _filed_under(store, "priority", key("high")) == {created_id}
    assert _filed_under(store, "priority", key("low")) == set()


def test_records_left_waiting_by_a_stopped_process_are_filed_by_the_next(tasks_definitions, file_uri, paused):
    store = Store.open(file_uri, tasks_definitions)
    created = store.run(lambda s: s.create("task", {"title": "Badge reader"}))
    store.db.close()                                         # stopped before its indexer ran
    again = Store.open(file_uri, tasks_definitions)
    try:
        assert _waiting(again) == [created.id]               # handed to its indexer at once
        again.indexer.stop()                                 # which files it before it stops
        assert _waiting(again) == []
        assert _filed_under(again, "text", "badge") == {created.id}
    finally:
        again.close()


def test_a_store_closed_files_what_waits(tasks_definitions, file_uri, paused):
    with Store.open(file_uri, tasks_definitions) as store:
        created = store.run(lambda s: s.create("task", {"title": "Projector"}))
        assert _waiting(store) == [created.id]
    with Store.open(file_uri, tasks_definitions) as store:
        assert _waiting(store) == []
        assert _filed_under(store, "text", "projector") == {created.id}


def test_a_filing_that_fails_is_logged_and_tried_again_while_the_record_stays_found(store, monkeypatch, caplog):
    from deskbase.objects.indexes import TypeIndexes
    catch_up, calls = TypeIndexes.catch_up, []

    def failing_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        return catch_up(self, *args, **kwargs)
    monkeypatch.setattr(TypeIndexes, "catch_up", failing_once)
    created = store.run(lambda s: s.create("task", {"title": "Kiosk"}).id)
    deadline = time.monotonic() + 10
    while _waiting(store) and time.monotonic() < deadline:
        assert store.read(lambda s: [r.id for r in s.query("task", {"text": "kiosk"}).records]) == [created]
        time.sleep(0.02)
    assert _waiting(store) == [] and len(calls) >= 2
    assert "filing the waiting records of `task` failed" in caplog.text and "disk full" in caplog.text
    assert _filed_under(store, "text", "kiosk") == {created}


def test_a_filing_that_meets_a_change_at_its_commit_is_run_again_with_the_new_values(store, paused, monkeypatch):
    from deskbase.objects.indexes import TypeIndexes
    created = store.run(lambda s: s.create("task", {"title": "Dock", "priority": "low"}).id)
    catch_up, calls = TypeIndexes.catch_up, []

    def changed_meanwhile(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:                              # a person changes the record as it is being filed
            store.run(lambda s: s.update(s.get("task", created), {"priority": "high"}))
        return catch_up(self, *args, **kwargs)
    monkeypatch.setattr(TypeIndexes, "catch_up", changed_meanwhile)
    assert store.indexer.file_now() == 1                 # the first attempt conflicted; its connection goes on
    assert len(calls) == 2 and _waiting(store) == []
    key = store.definitions.type("task").fields["priority"].kind.key
    assert _filed_under(store, "priority", key("high")) == {created}
    assert _filed_under(store, "priority", key("low")) == set()
