"""Packed sets of ids (`platform/objects/idsets.py`): stored and loaded back they hold the
same ids as BTrees' own sets, two transactions adding different ids to one bucket still
merge, and sets stored before as plain `IITreeSet` keep working beside them."""
from __future__ import annotations

import shutil
import tempfile

import transaction
import ZODB
from BTrees.IIBTree import IITreeSet, multiunion
from hypothesis import given, settings, strategies as st
from ZODB.FileStorage import FileStorage
from ZODB.POSException import ConflictError

from deskbase.objects.idsets import IdTreeSet

IDS = st.integers(min_value=-2 ** 31, max_value=2 ** 31 - 1)


def _opened(db):
    manager = transaction.TransactionManager(explicit=True)
    connection = db.open(transaction_manager=manager)
    manager.begin()
    return manager, connection


@settings(max_examples=60, deadline=None)
@given(st.lists(IDS, max_size=1500), st.lists(IDS, max_size=300))
def test_a_packed_set_loads_back_the_ids_it_was_given(added, removed):
    with tempfile.TemporaryDirectory() as folder:
        db = ZODB.DB(FileStorage(f"{folder}/Data.fs"))
        manager, connection = _opened(db)
        connection.root()["ids"] = ids = IdTreeSet(added)
        for number in removed:
            ids.discard(number)
        manager.commit()
        connection.close()
        db.close()
        db = ZODB.DB(FileStorage(f"{folder}/Data.fs"))        # nothing cached: read from the file
        manager, connection = _opened(db)
        loaded = connection.root()["ids"]
        assert type(loaded) is IdTreeSet
        assert list(loaded) == sorted(set(added) - set(removed))
        assert list(multiunion([loaded, IITreeSet([7])])) == sorted((set(added) - set(removed)) | {7})
        manager.abort()
        connection.close()
        db.close()


def test_a_packed_bucket_pickles_as_one_value():
    ids = IdTreeSet(range(100_000, 100_200))
    state = ids.__getstate__()
    first_bucket = state[0][0]
    assert type(first_bucket.__getstate__()[0]) is bytes
    assert type(IdTreeSet([1, 2, 3]).__getstate__()[0][0][0]) is bytes    # a small set, inline in its tree


def _conflicting(start, first, second):
    """Two transactions each add ids to the same set; the second commit's outcome and the ids."""
    folder = tempfile.mkdtemp()
    db = ZODB.DB(FileStorage(f"{folder}/Data.fs"))
    manager, connection = _opened(db)
    connection.root()["ids"] = start
    manager.commit()
    one, one_connection = _opened(db)
    two, two_connection = _opened(db)
    for number in first:
        one_connection.root()["ids"].add(number)
    for number in second:
        two_connection.root()["ids"].add(number)
    one.commit()
    try:
        two.commit()
        outcome = "merged"
    except ConflictError:
        two.abort()
        outcome = "conflict"
    check, check_connection = _opened(db)
    found = list(check_connection.root()["ids"])
    check.abort()
    for opened in (connection, one_connection, two_connection, check_connection):
        opened.close()
    db.close()
    shutil.rmtree(folder)
    return outcome, found


def test_two_writers_adding_different_ids_to_one_small_set_merge():
    assert _conflicting(IdTreeSet([10, 20, 30]), [15], [25]) == ("merged", [10, 15, 20, 25, 30])


def test_two_writers_adding_different_ids_to_one_bucket_of_a_large_set_merge():
    start = IdTreeSet(range(0, 2000, 2))
    outcome, found = _conflicting(start, [501], [503])
    assert outcome == "merged"
    assert found == sorted(set(range(0, 2000, 2)) | {501, 503})


def test_two_writers_adding_the_same_id_conflict_as_before():
    outcome, found = _conflicting(IdTreeSet([10, 20, 30]), [15], [15])
    assert outcome == "conflict" and found == [10, 15, 20, 30]


def test_sets_stored_before_as_plain_tree_sets_are_read_as_they_are():
    outcome, found = _conflicting(IITreeSet([10, 20, 30]), [15], [25])
    assert outcome == "merged" and found == [10, 15, 20, 25, 30]
