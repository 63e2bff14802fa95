from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import transaction
import ZODB
from BTrees.IIBTree import IITreeSet
from BTrees.OOBTree import OOBTree

from deskbase.objects.errors import MigrationError
from deskbase.objects.fields import EnumKind, IntegerKind
from deskbase.objects.indexes import FieldIndex, KeysTree, KeywordIndex, TextIndex, TypeIndexes, descending_ids
from deskbase.objects.model import IndexDef, TypeDef

UTC = timezone.utc


def held(index, key):
    """The ids under one key of an index, as a plain set."""
    return set(index.ids(key))


def test_sync_creates_the_declared_indexes_and_names_them_for_a_rebuild(item_type):
    indexes = TypeIndexes()
    assert sorted(indexes.sync(item_type)) == sorted(item_type.indexes)
    assert isinstance(indexes.get("status"), FieldIndex)
    assert isinstance(indexes.get("start"), FieldIndex)
    assert isinstance(indexes.get("tags"), KeywordIndex)
    assert isinstance(indexes.get("text"), TextIndex)
    assert indexes.sync(item_type) == []


def test_sync_renews_an_index_whose_fields_or_enum_order_changed(item_type, item_type_with):
    indexes = TypeIndexes()
    indexes.sync(item_type)
    kept = indexes.get("status")
    reordered = item_type_with(priority=EnumKind(values=("low", "medium", "high", "urgent")))
    assert indexes.sync(reordered) == ["priority"]
    assert indexes.get("status") is kept
    retyped = item_type_with(priority=reordered.fields["priority"].kind, title=IntegerKind())
    assert indexes.sync(retyped) == ["title", "text"]   # the text index reads `title` too


def test_sync_drops_indexes_no_longer_declared(item_type, item_type_with):
    indexes = TypeIndexes()
    indexes.sync(item_type)
    assert indexes.sync(item_type_with(text=False)) == []
    assert indexes.get("text") is None


def test_add_indexes_a_record_under_each_key_and_empties_apart(items, values):
    indexes = items(values(1, status="open", size=3, tags=("red", "blue")), values(2, status="open"))
    status, size, tags = indexes.get("status"), indexes.get("size"), indexes.get("tags")
    assert held(status, 1) == {1, 2}                      # enum keys are positions in the list
    assert held(size, 3) == {1} and set(size.empty) == {2}
    assert held(tags, "red") == held(tags, "blue") == {1} and set(tags.empty) == {2}
    assert indexes.key_of(size, 1) == 3 and indexes.key_of(size, 2) is None
    assert set(indexes.all_ids) == {1, 2} and indexes.count == 2


def test_the_sort_keys_of_a_record_are_kept_together_in_one_tuple(items, values, item_type):
    indexes = items(values(1, status="open", size=3, due=date(2026, 3, 1)))
    row = indexes.keys[1]
    assert len(row) == sum(isinstance(indexes.get(name), FieldIndex) for name in item_type.indexes)
    assert row[indexes.get("size").slot] == 3 and row[indexes.get("status").slot] == 1
    assert row[indexes.get("due").slot] == date(2026, 3, 1) and row[indexes.get("flag").slot] is None


def test_adding_a_record_twice_is_refused(items, values, item_type):
    indexes = items(values(1, status="open"))
    with pytest.raises(ValueError, match="indexed already"):
        indexes.add(item_type, 1, values(1, status="done"))


def test_a_key_held_by_one_record_is_a_bare_id_until_a_second_shares_it(items, values, item_type):
    indexes = items(values(1, due=date(2026, 3, 1)))
    due = indexes.get("due")
    assert due.forward[date(2026, 3, 1)] == 1
    indexes.add(item_type, 2, values(2, due=date(2026, 3, 1)))
    assert isinstance(due.forward[date(2026, 3, 1)], IITreeSet)
    assert held(due, date(2026, 3, 1)) == {1, 2}


def test_update_touches_only_indexes_whose_fields_changed(items, values, item_type):
    old = values(1, status="open", size=3, title="Printer")
    indexes = items(old)
    calls = []
    for name in item_type.indexes:
        index = indexes.get(name)
        original = index.move
        index.move = lambda record_id, before, after, name=name, original=original: (
            calls.append(name), original(record_id, before, after))
    new = dict(old, size=4, modified_at=old["modified_at"] + timedelta(minutes=1))
    indexes.update(item_type, 1, old, new)
    assert sorted(calls) == ["modified_at", "size"]
    assert held(indexes.get("size"), 4) == {1} and held(indexes.get("size"), 3) == set()
    assert indexes.key_of(indexes.get("size"), 1) == 4


def test_update_moves_a_record_between_keys_and_to_empty(items, values, item_type):
    old = values(1, status="open", tags=("red",), title="Écran cassé")
    indexes = items(old, values(2, status="open"))
    new = dict(old, status=None, tags=("blue",), title="Tiskárna")
    indexes.update(item_type, 1, old, new)
    status, tags, text = indexes.get("status"), indexes.get("tags"), indexes.get("text")
    assert held(status, 1) == {2} and set(status.empty) == {1}
    assert "red" not in tags.forward and held(tags, "blue") == {1}
    assert "ecran" not in text.forward and held(text, "tiskarna") == {1}


def test_remove_forgets_the_record_and_the_keys_nobody_holds_any_more(items, values, item_type):
    first = values(1, status="open", size=3, tags=("red",), title="Paris")
    indexes = items(first, values(2, status="open", size=3))
    indexes.remove(item_type, 1, first)
    assert set(indexes.all_ids) == {2} and indexes.count == 1
    assert held(indexes.get("status"), 1) == {2} and held(indexes.get("size"), 3) == {2}
    assert "red" not in indexes.get("tags").forward and "paris" not in indexes.get("text").forward
    assert indexes.key_of(indexes.get("size"), 1, "gone") == "gone" and 1 not in indexes.keys
    indexes.remove(item_type, 2, values(2))
    assert not indexes.get("status").forward and indexes.count == 0


def test_text_index_holds_the_folded_words_of_all_its_fields(items, values):
    indexes = items(values(1, title="Tiskárna v Paříži", notes="L'écran ne marche pas"))
    text = indexes.get("text")
    assert held(text, "tiskarna") == held(text, "parizi") == held(text, "ecran") == {1}
    assert set(text.prefix("tisk")) == {1} and set(text.prefix("x")) == set()


def test_a_range_index_finds_the_ids_between_two_keys_without_the_empties(items, values):
    indexes = items(*(values(i, size=i * 10) for i in range(1, 6)), values(6))
    size = indexes.get("size")
    assert set(size.between(20, 40)) == {2, 3, 4}
    assert set(size.between(20, 40, exclude_low=True, exclude_high=True)) == {3}
    assert set(size.between(None, 20)) == {1, 2}
    assert size.holders_between(20) == [2, 3, 4, 5]         # a key held by one record: its bare id
    assert size.holders_between(20, limit=2) is None


def test_the_descending_walk_of_a_deep_tree_gives_every_key_from_the_largest(items, values):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    indexes = items(*(values(i, start=start + timedelta(minutes=i % 5000)) for i in range(1, 6001)))
    start_index = indexes.get("start")
    assert [key for key, _ in start_index.items(descending=True)] == list(reversed(start_index.forward.keys()))
    assert len(start_index.forward) == 5000


def test_the_ids_of_a_deep_tree_set_can_be_read_from_the_largest_down():
    ids = IITreeSet(range(1, 20000, 3))
    ids.update(range(5, 20000, 11))
    assert list(descending_ids(ids)) == sorted(ids, reverse=True)
    assert list(descending_ids(IITreeSet())) == [] and list(descending_ids(IITreeSet([4, 2]))) == [4, 2]


def test_rebuild_refills_every_index_and_the_ids_from_the_records(items, values, item_type):
    records = {i: values(i, status="open", size=i) for i in range(1, 4)}
    indexes = items(values(9, status="done"))
    indexes.rebuild(item_type, records.items())
    assert set(indexes.all_ids) == {1, 2, 3} and indexes.count == 3
    assert held(indexes.get("status"), 1) == {1, 2, 3} and held(indexes.get("status"), 3) == set()


def test_rebuild_of_named_indexes_leaves_the_others(items, values, item_type):
    indexes = items(values(1, status="open", size=1))
    indexes.rebuild(item_type, [(1, values(1, status="done", size=1))], names=["status"])
    assert held(indexes.get("status"), 3) == {1}
    assert indexes.count == 1


def test_rebuild_also_fills_indexes_that_sync_finds_new(items, values, item_type, item_type_with):
    indexes = items(values(1, title="Paris"))
    wider = item_type_with(text=False)
    wider = TypeDef(wider.name, wider.label, wider.number_format, wider.fields,
                    {**wider.indexes, "text": IndexDef("text", "text", ("title", "remark"))})
    indexes.rebuild(wider, [(1, values(1, title="Paris", remark="Lyon"))], names=[])
    assert held(indexes.get("text"), "lyon") == {1}


def test_a_field_index_added_later_is_filled_by_a_rebuild_of_its_name(items, values, item_type,
                                                                     item_type_with):
    records = {1: values(1, status="open", remark="b"), 2: values(2, status="done", remark="a")}
    narrow = item_type_with()
    indexes = items(*records.values())
    wider = TypeDef(narrow.name, narrow.label, narrow.number_format, narrow.fields,
                    {**narrow.indexes, "remark": IndexDef("remark", "field", ("remark",))})
    assert indexes.sync(wider) == ["remark"]
    indexes.rebuild(wider, records.items(), names=["remark"])
    remark = indexes.get("remark")
    assert held(remark, "a") == {2} and indexes.key_of(remark, 1) == "b"
    indexes.update(wider, 1, records[1], dict(records[1], remark="c"))
    assert held(remark, "c") == {1} and held(remark, "b") == set()


def test_a_full_rebuild_gives_the_slots_of_dropped_indexes_out_again(items, values, item_type,
                                                                     item_type_with):
    records = {1: values(1, status="open", size=2)}
    indexes = items(*records.values())
    fewer = TypeDef(item_type.name, item_type.label, item_type.number_format, item_type.fields,
                    {name: index for name, index in item_type.indexes.items() if name != "status"})
    indexes.sync(fewer)
    indexes.rebuild(fewer, records.items())
    slots = sorted(index.slot for index in indexes.indexes.values() if isinstance(index, FieldIndex))
    assert slots == list(range(len(slots))) and len(indexes.keys[1]) == len(slots)
    assert indexes.key_of(indexes.get("size"), 1) == 2


def test_clear_forgets_every_record_but_keeps_the_indexes(items, values):
    indexes = items(values(1, status="open"))
    indexes.clear()
    assert not indexes.all_ids and indexes.count == 0
    assert indexes.get("status") is not None and not indexes.get("status").forward


def test_the_first_record_of_a_never_synced_type_creates_its_indexes(item_type, values):
    indexes = TypeIndexes()
    indexes.add(item_type, 1, values(1, status="open"))
    assert held(indexes.get("status"), 1) == {1}


def test_writing_with_changed_definitions_asks_for_a_migration(items, values, item_type_with):
    indexes = items(values(1, status="open"))
    changed = item_type_with(status=EnumKind(values=("open", "new")))
    with pytest.raises(MigrationError, match="status.*deskbase migrate"):
        indexes.add(changed, 2, values(2, status="open"))


def test_keys_of_every_kind_are_kept_in_one_sorted_tree(items, values):
    indexes = items(values(1, price=Decimal("2.50"), start=datetime(2026, 1, 1, 8, tzinfo=UTC), flag=True),
                    values(2, price=Decimal("10.00"), start=datetime(2026, 1, 1, 7, tzinfo=UTC), flag=False))
    assert list(indexes.get("price").forward.keys()) == [Decimal("2.50"), Decimal("10.00")]
    assert [v for _, v in indexes.get("start").items()] == [2, 1]
    assert list(indexes.get("flag").forward.keys()) == [0, 1]


def test_indexes_survive_a_commit_and_a_fresh_connection(item_type, values):
    db = ZODB.DB(None)
    try:
        with db.transaction() as connection:
            indexes = connection.root.indexes = TypeIndexes()
            for i in range(1, 301):
                indexes.add(item_type, i, values(i, status="open" if i % 2 else "done", size=i % 7))
        with db.transaction() as connection:
            indexes = connection.root.indexes
            assert indexes.count == 300
            assert len(indexes.get("status").ids(1)) == 150
            assert isinstance(indexes.get("size").forward, OOBTree)
            indexes.remove(item_type, 1, values(1))
        with db.transaction() as connection:
            assert connection.root.indexes.count == 299
    finally:
        transaction.abort()
        db.close()


def test_sort_keys_tree_keeps_small_buckets_after_a_commit_and_reload(item_type, values):
    """A create re-pickles the bucket of `keys` holding its row, so that bucket stays small;
    the tree's class (and so its bucket size) must survive pickling."""
    db = ZODB.DB(None)
    try:
        with db.transaction() as connection:
            indexes = connection.root.indexes = TypeIndexes()
            for i in range(1, 201):
                indexes.add(item_type, i, values(i, size=i))
        with db.transaction() as connection:
            indexes = connection.root.indexes
            keys = indexes.keys
            assert type(keys) is KeysTree
            buckets = keys.__getstate__()[0][::2]   # 200 rows: one level of buckets
            assert len(buckets) > 200 // KeysTree.max_leaf_size
            assert all(len(bucket) <= KeysTree.max_leaf_size for bucket in buckets)
            assert indexes.key_of(indexes.get("size"), 150) == 150
            indexes.add(item_type, 201, values(201, size=5))
            assert type(connection.root.indexes.keys) is KeysTree
        with db.transaction() as connection:
            assert connection.root.indexes.key_of(connection.root.indexes.get("size"), 201) == 5
    finally:
        transaction.abort()
        db.close()
