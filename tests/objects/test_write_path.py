"""The one write path: numbering, validation, stale edits, history, references,
attachments, computed values, deletion and conflict retries."""
from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal

import pytest

from deskbase.objects.errors import NotFound, StaleEdit, ValidationError
from deskbase.objects.fields import Upload
from deskbase.objects.store import Store


def test_records_are_numbered_per_type_with_the_type_format(store):
    with store.session(user="ann") as s:
        team = s.create("team", {"name": "Support"})
        first = s.create("task", {"title": "Replace the toner", "team": team.id})
        second = s.create("task", {"title": "Call back"})
    assert team.number == "TM-001"
    assert (first.number, second.number) == ("TK-00001", "TK-00002")


def test_created_and_modified_by_and_at_and_version_are_kept(store):
    with store.session(user="ann") as s:
        task = s.create("task", {"title": "Install the scanner"})
    with store.session(user="ben") as s:
        task = s.update(task.number, {"priority": "high"}, version=1)
        assert task["created_by"] == "ann" and task["modified_by"] == "ben"
        assert task.version == 2
        assert task["modified_at"] >= task["created_at"]
        assert task["created_at"].tzinfo is not None and task["created_at"].utcoffset().total_seconds() == 0


def test_history_names_who_when_for_whom_and_old_and_new_values(store):
    with store.session(user="ann") as s:
        task = s.create("task", {"title": "Printer jam", "priority": "low"})
    with store.session(user="bob", acting_for="alice") as s:
        s.update(task.number, {"priority": "high", "title": "Printer jam, floor 2"}, version=1)
    with store.session() as s:
        entries = s.find(task.number).history.entries
    assert [e["action"] for e in entries] == ["created", "updated"]
    change = entries[1]
    assert change["by"] == "bob" and change["acting_for"] == "alice"
    assert change["changes"] == {"priority": ("low", "high"), "title": ("Printer jam", "Printer jam, floor 2")}
    assert isinstance(change["at"], datetime)


def test_an_update_that_changes_nothing_keeps_the_version(store):
    with store.session() as s:
        task = s.create("task", {"title": "Same"})
        s.update(task, {"title": "Same"})
        assert task.version == 1 and len(task.history.entries) == 1


def test_all_field_errors_are_reported_at_once_and_nothing_is_written(store):
    with pytest.raises(ValidationError) as raised:
        with store.session() as s:
            s.create("task", {"priority": "hihg", "due": "31/02/2026", "estimate": "soon", "prioity": "x"})
    errors = raised.value.errors
    assert errors["title"] == "is required"
    assert "did you mean `high`" in errors["priority"]
    assert "is not a date" in errors["due"]
    assert "is not a duration" in errors["estimate"]
    assert "is not a field of Task; did you mean `priority`?" == errors["prioity"]
    with store.session() as s:
        assert s.count("task") == 0


def test_values_are_coerced_from_form_strings(store):
    with store.session() as s:
        task = s.create("task", {"title": "  Trim me ", "estimate": "1h30", "due": "2026-12-01",
                                 "cost": "12,50", "done": "yes", "labels": "a, b, a", "priority": "High"})
    assert task["title"] == "Trim me"
    assert task["estimate"] == 5400
    assert task["due"] == date(2026, 12, 1)
    assert task["cost"] == Decimal("12.50")
    assert task["done"] is True
    assert task["labels"] == ("a", "b")
    assert task["priority"] == "high"   # matched by its label


def test_an_edit_made_from_an_old_version_is_refused_and_loses_nothing(store):
    with store.session(user="ann") as s:
        task = s.create("task", {"title": "Shared"})
    with store.session(user="ben") as s:
        s.update(task.number, {"title": "Ben's title"}, version=1)
    with pytest.raises(StaleEdit) as raised:
        with store.session(user="ann") as s:
            s.update(task.number, {"title": "Ann's title"}, version=1)
    message = str(raised.value)
    assert "TK-00001 was changed by ben" in message and "reload" in message
    with store.session() as s:
        assert s.find("TK-00001")["title"] == "Ben's title"


def test_a_reference_to_a_missing_record_is_refused(store):
    with pytest.raises(ValidationError) as raised:
        with store.session() as s:
            s.create("task", {"title": "x", "team": 42})
    assert raised.value.errors["team"] == "there is no Team TM-042"


def test_references_accept_ids_numbers_and_titles(store):
    with store.session() as s:
        team = s.create("team", {"name": "Network"})
        by_number = s.create("task", {"title": "a", "team": "TM-001"})
        by_title = s.create("task", {"title": "b", "team": "Network"})
    assert by_number["team"] == by_title["team"] == team.id


def test_a_subcategory_is_accepted_only_under_its_category(store):
    with store.session() as s:
        hardware = s.create("category", {"name": "Hardware"})
        software = s.create("category", {"name": "Software"})
        printer = s.create("category", {"name": "Printer", "parent": hardware.id})
        task = s.create("task", {"title": "ok", "category": hardware.id, "subcategory": printer.id})
        assert task["subcategory"] == printer.id
    with pytest.raises(ValidationError) as raised:
        with store.session() as s:
            s.create("task", {"title": "wrong", "category": software.id, "subcategory": printer.id})
    assert "C-003 (Printer) cannot be chosen here" in raised.value.errors["subcategory"]
    with pytest.raises(ValidationError) as raised:   # changing the category re-checks the subcategory
        with store.session() as s:
            s.update(task.number, {"category": software.id})
    assert "subcategory" in raised.value.errors


def test_a_subcategory_is_refused_until_a_category_is_chosen(store):
    with store.session() as s:
        top = s.create("category", {"name": "Top"})
        s.create("category", {"name": "Sub", "parent": top.id})
    with pytest.raises(ValidationError) as raised:
        with store.session() as s:
            s.create("task", {"title": "no category yet", "subcategory": top.id})
    assert "cannot be chosen here" in raised.value.errors["subcategory"]


def test_a_top_level_category_cannot_have_a_subcategory_as_parent(store):
    with store.session() as s:
        top = s.create("category", {"name": "Top"})
        sub = s.create("category", {"name": "Sub", "parent": top.id})
    with pytest.raises(ValidationError):
        with store.session() as s:
            s.create("category", {"name": "Deeper", "parent": sub.id})


def test_attachments_are_kept_as_blobs_and_survive_a_restart(tasks_definitions, file_uri):
    store = Store.open(file_uri, tasks_definitions)
    with store.session(user="ann") as s:
        task = s.create("task", {"title": "With a file", "files": [Upload("log.txt", b"line one\n", "text/plain")]})
    with store.session(user="ann") as s:
        s.update(task.number, {"files": [Upload("photo.png", b"\x89PNG....", "image/png")]})
    store.close()
    store = Store.open(file_uri, tasks_definitions)
    with store.session() as s:
        files = s.find("TK-00001")["files"]
        assert [f.filename for f in files] == ["log.txt", "photo.png"]
        assert files[0].read() == b"line one\n" and files[0].size == 9
        assert files[0].uploaded_by == "ann"
    store.close()


def test_an_oversized_or_unaccepted_upload_is_refused_with_its_name(store):
    with pytest.raises(ValidationError) as raised:
        with store.session() as s:
            s.create("task", {"title": "x", "files": [Upload("big.txt", b"x" * 5000, "text/plain")]})
    assert "big.txt is 4 KiB" in raised.value.errors["files"]
    with pytest.raises(ValidationError) as raised:
        with store.session() as s:
            s.create("task", {"title": "x", "files": [Upload("run.exe", b"MZ", "application/x-msdownload")]})
    assert "run.exe is not an accepted kind of file" in raised.value.errors["files"]


def test_a_computed_expression_is_stored_on_write(store):
    with store.session() as s:
        task = s.create("task", {"title": "t"})
        work = s.create("work", {"task": task.id, "duration": "1h30", "rate": "80"})
        assert work["amount"] == Decimal("120.00")


def test_an_aggregate_follows_its_related_records(store):
    with store.session() as s:
        task = s.create("task", {"title": "t"})
        other = s.create("task", {"title": "u"})
        s.create("work", {"task": task.id, "duration": "30m"})
        work = s.create("work", {"task": task.id, "duration": "1h"})
        assert task["spent"] == 5400
        assert task.version == 1   # derived values do not make open edits stale
        s.update(work, {"task": other.id})
        assert (task["spent"], other["spent"]) == (1800, 3600)
        s.delete(work)
        assert other["spent"] == 0
        page = s.query("task", {"id": task.id})
        assert page.records[0]["spent"] == 1800


def test_a_computed_field_cannot_be_set_by_hand(store):
    with pytest.raises(ValidationError) as raised:
        with store.session() as s:
            s.create("task", {"title": "t", "spent": "1h"})
    assert raised.value.errors["spent"] == "is kept by the engine and cannot be set"


def test_a_deleted_record_leaves_queries_but_is_kept_with_its_history(store):
    with store.session() as s:
        task = s.create("task", {"title": "Going away", "priority": "high"})
        s.delete(task)
        assert s.count("task") == 0
        assert s.query("task", {"priority": "high"}).total == 0
        with pytest.raises(NotFound):
            s.find("TK-00001")
        kept = s.container("task").trash[task.id]
        assert kept.history.entries[-1]["action"] == "deleted"


def test_an_error_inside_a_session_writes_nothing(store):
    with pytest.raises(RuntimeError):
        with store.session() as s:
            s.create("task", {"title": "half done"})
            raise RuntimeError("boom")
    with store.session() as s:
        assert s.count("task") == 0


def test_a_write_conflict_is_retried_from_the_start_and_logged_with_the_object_it_met(store, caplog):
    with store.session() as s:
        task = s.create("task", {"title": "contended"})
    attempts = []

    def work(session):
        attempts.append(1)
        record = session.find(task.number)
        if len(attempts) == 1:   # someone else commits a change to the same record meanwhile
            with store.session(user="other") as other:
                other.update(task.number, {"priority": "low"})
        session.update(record, {"title": f"edited after {len(attempts)} attempts"})
        return record.version

    with caplog.at_level(logging.INFO, logger="deskbase.store"):
        assert store.run(work, user="ann") == 3
    assert len(attempts) == 2
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("write conflict")]
    assert len(logged) == 1 and "attempt 1 of 15, retrying (user ann)" in logged[0]
    assert "class deskbase.objects.records.Record" in logged[0]      # which object both changed
    with store.session() as s:
        final = s.find(task.number)
        assert final["priority"] == "low" and final["title"] == "edited after 2 attempts"


def test_bulk_create_commits_in_batches_and_reports_progress(store):
    seen = []
    rows = ({"title": f"row {i}", "priority": ["high", "low"][i % 2]} for i in range(2500))
    assert store.bulk_create("task", rows, user="import", batch=1000, progress=seen.append) == 2500
    assert seen == [1000, 2000, 2500]
    with store.session() as s:
        assert s.count("task", {"priority": "high"}) == 1250
        assert s.find("TK-02500")["created_by"] == "import"


def test_the_default_database_is_a_file_storage_under_var(tmp_path, monkeypatch, tasks_definitions):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DESKBASE_DB", raising=False)
    with Store.open(None, tasks_definitions) as store:
        store.run(lambda s: s.create("team", {"name": "Kept"}))
    assert (tmp_path / "var" / "Data.fs").exists()
    with Store.open(None, tasks_definitions) as store:
        assert store.read(lambda s: s.find("TM-001")["name"]) == "Kept"


def test_the_database_uri_comes_from_the_environment(tmp_path, monkeypatch, tasks_definitions):
    monkeypatch.setenv("DESKBASE_DB", f"file://{tmp_path}/elsewhere/Data.fs")
    with Store.open(None, tasks_definitions) as store:
        assert store.uri.endswith("elsewhere/Data.fs")
    assert (tmp_path / "elsewhere" / "Data.fs").exists()


def test_the_object_cache_is_sized_in_objects_or_in_bytes_by_the_uri(tasks_definitions, file_uri):
    """200,000 objects by default; `connection_cache_size_bytes` bounds a serving process's
    memory at a million records (docs/deployment.md)."""
    with Store.open(file_uri, tasks_definitions) as store:
        assert store.db.getCacheSize() == 200_000 and store.db.getCacheSizeBytes() == 0
    sized = file_uri + "&connection_cache_size=5000000&connection_cache_size_bytes=600MB"
    with Store.open(sized, tasks_definitions) as store:
        assert store.db.getCacheSize() == 5_000_000 and store.db.getCacheSizeBytes() == 600 * 2 ** 20


def test_concurrent_writes_to_different_records_do_not_conflict(tasks_definitions, file_uri):
    """No object is touched by every write: two transactions that edit different records
    and create others commit side by side, without a retry. (BTrees merge concurrent
    changes to one bucket, except removing a bucket's first key or emptying it: those
    rare cases conflict and `Store.run` retries them.)"""
    store = Store.open(file_uri, tasks_definitions)
    store.bulk_create("task", ({"title": f"alpha beta {i}", "priority": ["low", "high"][i % 2]} for i in range(20)))
    one, two = store.session(user="ann"), store.session(user="ben")
    a, b = one.__enter__(), two.__enter__()
    a.update("TK-00005", {"priority": "high", "title": "alpha 4"})
    b.update("TK-00009", {"priority": "high", "title": "alpha 8"})
    a.create("team", {"name": "Created meanwhile"})
    b.create("task", {"title": "alpha", "priority": "low"})
    one.__exit__(None, None, None)
    two.__exit__(None, None, None)   # would raise ConflictError if both wrote one object
    with store.session() as s:
        assert s.count("task", {"priority": "high"}) == 12
        assert s.count("task", {"text": "beta"}) == 18 and s.count("task", {"text": "alpha"}) == 21
        assert s.count("task") == 21
    store.close()


def test_a_copied_field_follows_the_record_its_ref_points_at_whatever_is_given(store):
    with store.session(user="ann") as s:
        support, field = s.create("team", {"name": "Support"}), s.create("team", {"name": "Field"})
        printer = s.create("task", {"title": "Printer", "team": support.id})
        van = s.create("task", {"title": "Van", "team": field.id})
        work = s.create("work", {"task": printer.id, "duration": "1h", "team": field.id})
        assert work["team"] == support.id                      # the task's team, not the one given
        s.update(work.number, {"team": field.id})
        assert work["team"] == support.id                      # typed alone, it changes nothing
        s.update(work.number, {"task": van.id})
        assert work["team"] == field.id                        # moved to another task: its team
        orphan = s.create("work", {"task": s.create("task", {"title": "No team"}).id, "duration": "5m"})
        assert orphan["team"] is None


@pytest.mark.parametrize("path, message", [
    ("task.nothing", "`nothing` is not a ref field like `team` of `task`"),
    ("task.title", "`title` is not a ref field like `team` of `task`"),
    ("duration.team", "`duration.team` is not a ref field of `work`"),
])
def test_a_copy_from_a_field_that_cannot_hold_the_value_is_refused(tasks_folder, path, message):
    from deskbase.objects.definitions import load_definitions
    from deskbase.objects.errors import DefinitionErrors
    file = tasks_folder / "tasks.yaml"
    file.write_text(file.read_text().replace("copied_from: task.team", f"copied_from: {path}"))
    with pytest.raises(DefinitionErrors) as raised:
        load_definitions(tasks_folder)
    assert message in str(raised.value) and "types.work.fields.team.copied_from" in str(raised.value)


def test_a_copied_field_follows_a_later_change_of_the_record_it_comes_from(store):
    with store.session(user="ann") as s:
        support, field = s.create("team", {"name": "Support"}), s.create("team", {"name": "Field"})
        printer = s.create("task", {"title": "Printer", "team": support.id})
        work = s.create("work", {"task": printer.id, "duration": "1h"})
        version = work.version
    with store.session(user="ben") as s:
        s.update(printer.number, {"team": field.id})
        work = s.get("work", work.id)
        assert work["team"] == field.id and work.version == version          # a derived value: no new version
        assert s.query("work", {"team": field.id}).total == 1                 # and its index follows
        assert work.history.entries[-1]["reason"] == f"copied from {printer.number}"


def test_an_aggregate_is_worked_out_on_create_from_a_filter_compiled_once(store):
    with store.session() as s:
        first = s.create("task", {"title": "t"})
        s.create("work", {"task": first.id, "duration": "1h"})
    compiled = len(store._filters)
    with store.session() as s:
        tasks = [s.create("task", {"title": f"t{n}"}) for n in range(5)]
        s.create("work", {"task": tasks[2].id, "duration": "30m"})
        assert [task["spent"] for task in tasks] == [0, 0, 1800, 0, 0]
        assert s.find(first.number)["spent"] == 3600
    assert len(store._filters) == compiled   # each new task's aggregate reused one compiled filter
