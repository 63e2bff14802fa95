"""Migrations: changing definitions never loses data."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deskbase.objects.definitions import load_definitions
from deskbase.objects.errors import MigrationError
from deskbase.objects.store import Store


def _edit(folder: Path, change) -> None:
    path = folder / "tasks.yaml"
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))


def _reopen(folder: Path, uri: str) -> Store:
    return Store.open(uri, load_definitions(folder))


@pytest.fixture
def filled(tasks_folder, file_uri):
    with Store.open(file_uri, load_definitions(tasks_folder)) as store:
        with store.session() as s:
            s.create("task", {"title": "Old one", "priority": "high", "estimate": "2h"})
            s.create("task", {"title": "Other", "priority": "low"})
    return tasks_folder, file_uri


def test_a_new_field_gets_its_default_on_existing_records(filled):
    folder, uri = filled
    _edit(folder, lambda d: d["types"]["task"]["fields"].update(region={"kind": "string", "default": "north"}))
    with _reopen(folder, uri) as store:
        assert store.read(lambda s: [s.find(n)["region"] for n in ("TK-00001", "TK-00002")]) == ["north", "north"]


def test_a_removed_field_is_hidden_and_comes_back_with_its_data(filled):
    folder, uri = filled
    original = (folder / "tasks.yaml").read_text()
    _edit(folder, lambda d: d["types"]["task"]["fields"].pop("estimate"))
    with _reopen(folder, uri) as store:
        assert "estimate" not in store.definitions.type("task").fields
    (folder / "tasks.yaml").write_text(original)
    with _reopen(folder, uri) as store:
        assert store.read(lambda s: s.find("TK-00001")["estimate"]) == 7200


def test_a_declared_rename_moves_the_values(filled):
    folder, uri = filled

    def rename(d):
        fields = d["types"]["task"]["fields"]
        fields["effort"] = dict(fields.pop("estimate"), renamed_from="estimate")
    _edit(folder, rename)
    with _reopen(folder, uri) as store:
        record = store.read(lambda s: dict(s.find("TK-00001").values))
    assert record["effort"] == 7200 and "estimate" not in record


def test_a_new_index_is_built_over_existing_records(filled):
    folder, uri = filled
    _edit(folder, lambda d: d["types"]["task"]["index"].append("estimate"))
    with _reopen(folder, uri) as store:
        assert store.read(lambda s: s.count("task", {"estimate": {"gte": "1h"}})) == 1


def test_reordering_an_enum_rebuilds_its_index_so_sorting_follows(filled):
    folder, uri = filled
    _edit(folder, lambda d: d["types"]["task"]["fields"]["priority"].update(values=["low", "medium", "high"]))
    with _reopen(folder, uri) as store:
        titles = store.read(lambda s: [r["title"] for r in s.query("task", sort="priority").records])
    assert titles == ["Other", "Old one"]


def test_a_kind_change_converts_the_values(filled):
    folder, uri = filled
    _edit(folder, lambda d: d["types"]["task"]["fields"].__setitem__("priority", {"kind": "string"}))
    with _reopen(folder, uri) as store:
        assert store.read(lambda s: s.find("TK-00001")["priority"]) == "high"


def test_a_kind_change_that_cannot_convert_is_refused_and_changes_nothing(filled):
    folder, uri = filled
    _edit(folder, lambda d: d["types"]["task"]["fields"].__setitem__("estimate", {"kind": "date"}))
    with pytest.raises(MigrationError) as raised:
        _reopen(folder, uri)
    assert "TK-00001" in str(raised.value) and "Nothing was changed" in str(raised.value)


def test_dry_run_describes_the_plan_without_applying_it(filled):
    folder, uri = filled
    _edit(folder, lambda d: d["types"]["task"]["fields"].update(region={"kind": "string", "default": "north"}))
    store = Store.open(uri, load_definitions(folder), migrate=False)
    plan = store.migration_plan()
    assert any("add the field `region` to 2 records" in line for line in plan.describe())
    assert store.read(lambda s: s.find("TK-00001").get("region")) is None
    store.close()


def test_a_removed_type_keeps_its_records(filled):
    folder, uri = filled
    with _reopen(folder, uri) as store:
        store.run(lambda s: s.create("team", {"name": "Kept team"}))
    original = (folder / "tasks.yaml").read_text()
    _edit(folder, lambda d: (d["types"].pop("team"), d["types"]["task"]["fields"].pop("team"),
                             d["types"]["work"]["fields"].pop("team"), d["types"]["work"]["index"].remove("team"),
                             d["types"]["task"]["index"].remove("team"),
                             d["views"]["open_tasks"]["columns"].remove("team")))
    with _reopen(folder, uri) as store:
        pass
    (folder / "tasks.yaml").write_text(original)
    with _reopen(folder, uri) as store:
        assert store.read(lambda s: s.find("TM-001")["name"]) == "Kept team"


def test_a_rename_that_changes_the_kind_moves_and_converts_the_values(filled):
    folder, uri = filled          # one person in charge becomes a list of people: nobody is lost
    with _reopen(folder, uri) as store:
        store.run(lambda s: s.update("TK-00001", {"owner": "ana"}))

    def widen(d):
        fields = d["types"]["task"]["fields"]
        fields.pop("owner")
        fields["followers"] = {"kind": "users", "renamed_from": "owner"}
        d["types"]["task"]["index"] = [{"keyword": "followers"} if entry == "owner" else entry
                                       for entry in d["types"]["task"]["index"]]
    _edit(folder, widen)
    with _reopen(folder, uri) as store:
        first, second = store.read(lambda s: [dict(s.find(n).values) for n in ("TK-00001", "TK-00002")])
        followed = store.read(lambda s: [r.number for r in s.query("task", {"followers": "ana"}).records])
    assert first["followers"] == ("ana",) and "owner" not in first
    assert not second.get("followers")          # nobody in charge: nobody follows
    assert followed == ["TK-00001"]
