"""Overlays: a customer folder adds, changes or removes pieces of the shipped definitions
without copying them (docs/overlays.md)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deskbase.objects.definitions import load_definitions
from deskbase.objects.errors import DefinitionErrors
from deskbase.objects.fields import StringKind
from deskbase.objects.overlays import apply_overlay
from deskbase.objects.sourcemap import parse_yaml

BASE = """
    settings:
      timezone: Europe/Paris
    roles:
      agent: {label: Agent}
    types:
      organization:
        title: name
        fields:
          name: {kind: string, required: true}
      task:
        label: {en: Task, fr: Tâche}
        title: title
        fields:
          title:    {kind: string, max_length: 80, label: {en: Title, fr: Titre}}
          priority: {kind: enum, values: [high, medium, low], default: medium}
          customer: {kind: ref, to: organization}
        index: [priority, customer]
    views:
      open_tasks:
        type: task
        columns: [id, title, priority]
        roles: [agent]
      all_tasks:
        type: task
        columns: [id, title]
    """


def _folder(root: Path, name: str, **files: str) -> Path:
    folder = root / name
    folder.mkdir()
    for file_name, text in files.items():
        (folder / f"{file_name}.yaml").write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return _folder(tmp_path, "base", app=BASE)


def _errors(folder: Path, *overlays: Path):
    with pytest.raises(DefinitionErrors) as caught:
        load_definitions(folder, overlays)
    return caught.value.errors


def test_overlay_adds_a_field_and_keeps_the_others(base, tmp_path):
    acme = _folder(tmp_path, "acme", extra="""
        types:
          task:
            fields:
              region: {kind: string}
        """)
    task = load_definitions(base, [acme]).type("task")
    assert list(task.own_fields) == ["title", "priority", "customer", "region"]
    assert task.fields["title"].kind == StringKind(max_length=80)


def test_overlay_changes_a_label_and_nothing_else_of_the_field(base, tmp_path):
    acme = _folder(tmp_path, "acme", labels="""
        types:
          task:
            fields:
              title: {label: {en: Subject, fr: Objet}}
        """)
    title = load_definitions(base, [acme]).type("task").fields["title"]
    assert dict(title.label) == {"en": "Subject", "fr": "Objet"}
    assert title.kind.max_length == 80


def test_overlay_list_replaces_an_enums_values(base, tmp_path):
    acme = _folder(tmp_path, "acme", values="""
        types:
          task:
            fields:
              priority: {values: [critical, medium, minor]}
        """)
    priority = load_definitions(base, [acme]).type("task").fields["priority"]
    assert priority.kind.values == ("critical", "medium", "minor")


def test_overlay_appends_to_an_enums_values(base, tmp_path):
    acme = _folder(tmp_path, "acme", values="""
        types:
          task:
            fields:
              priority: {values: !append [someday]}
        """)
    priority = load_definitions(base, [acme]).type("task").fields["priority"]
    assert priority.kind.values == ("high", "medium", "low", "someday")


def test_overlay_removes_a_view_without_copying_the_base(base, tmp_path):
    acme = _folder(tmp_path, "acme", views="""
        views:
          all_tasks: !remove
        """)
    definitions = load_definitions(base, [acme])
    assert list(definitions.views) == ["open_tasks"]
    assert "all_tasks" not in definitions.document["views"]


def test_overlay_replace_swaps_a_whole_map_instead_of_merging(base, tmp_path):
    acme = _folder(tmp_path, "acme", fields="""
        types:
          task:
            fields:
              title: !replace {kind: text}
        """)
    title = load_definitions(base, [acme]).type("task").fields["title"]
    assert title.kind.name == "text"
    assert title.label is None                 # the base label went with the base map
    assert title.kind.max_length == 1_000_000  # and so did max_length: 80


def test_removing_what_the_base_does_not_have_is_an_error_with_a_hint(base, tmp_path):
    acme = _folder(tmp_path, "acme", views="""
        views:
          open_taks: !remove
        """)
    [error] = _errors(base, acme)
    assert (error.file, error.line, error.column) == (str(acme / "views.yaml"), 2, 3)
    assert error.message == "`open_taks` cannot be removed: there is no `open_taks` in `views`"
    assert error.hint == "did you mean `open_tasks`?"


def test_two_overlays_apply_in_the_order_given(base, tmp_path):
    first = _folder(tmp_path, "first", a="""
        types:
          task:
            fields:
              priority: {values: !append [someday], default: someday}
        """)
    second = _folder(tmp_path, "second", a="""
        types:
          task:
            fields:
              priority: {values: !append [never]}
        """)
    priority = load_definitions(base, [first, second]).type("task").fields["priority"]
    assert priority.kind.values == ("high", "medium", "low", "someday", "never")
    assert priority.default == "someday"
    with pytest.raises(DefinitionErrors):   # in the other order `someday` is not there yet
        load_definitions(base, [second, _folder(tmp_path, "default_first", a="""
            types:
              task:
                fields:
                  priority: {default: someday}
            """)])


def test_files_of_an_overlay_folder_apply_one_after_another_in_name_order(base, tmp_path):
    acme = _folder(tmp_path, "acme",
                   b_label="types: {task: {label: Second}}\n",
                   a_label="types: {task: {label: First, plural: Items}}\n")
    task = load_definitions(base, [acme]).type("task")
    assert (task.label, task.plural) == ("Second", "Items")


def test_the_same_type_in_two_base_files_is_an_error_naming_both_files(tmp_path):
    folder = _folder(tmp_path, "base",
                     a_items="types:\n  item:\n    fields: {name: {kind: string}}\n",
                     b_items="types:\n  other:\n    fields: {name: {kind: string}}\n  item:\n    fields: {}\n")
    [error] = _errors(folder)
    assert (error.file, error.line, error.column) == (str(folder / "b_items.yaml"), 4, 3)
    assert error.message == f"type `item` is defined twice: here and at {folder / 'a_items.yaml'}:2:3"
    assert "overlay" in error.hint


def test_settings_may_be_spread_over_the_files_of_a_folder_but_not_repeated(tmp_path):
    folder = _folder(tmp_path, "base",
                     a="settings: {timezone: Europe/Prague}\ntypes: {item: {fields: {name: {kind: string}}}}\n",
                     b="settings: {languages: [cs, en]}\n")
    definitions = load_definitions(folder)
    assert (definitions.zone, definitions.languages) == ("Europe/Prague", ("cs", "en"))
    (folder / "c.yaml").write_text("settings: {timezone: UTC}\n")
    [error] = _errors(folder)
    assert error.message.startswith("setting `timezone` is defined twice: here and at ")


def test_a_problem_in_what_an_overlay_set_is_located_in_the_overlay_file(base, tmp_path):
    acme = _folder(tmp_path, "acme", kinds="""
        types:
          task:
            fields:
              title: {kind: strng}
        """)
    [error] = _errors(base, acme)
    assert (error.file, error.line, error.column) == (str(acme / "kinds.yaml"), 4, 21)
    assert error.hint == "did you mean `string`?"


def test_append_to_something_that_is_not_a_list_is_an_error(base, tmp_path):
    acme = _folder(tmp_path, "acme", a="types: {task: {label: !append [x]}}\n")
    [error] = _errors(base, acme)
    assert error.message == "`!append` adds to a list, but `label` is a map here"


def test_append_to_a_list_the_base_does_not_have_is_an_error_with_a_hint(base, tmp_path):
    acme = _folder(tmp_path, "acme", a="views: {open_tasks: {colums: !append [customer]}}\n")
    [error] = _errors(base, acme)
    assert error.message == "`!append` adds to an existing list, but there is no `colums` in view `open_tasks`"
    assert error.hint == "did you mean `columns`?"


def test_overlay_tags_inside_a_list_are_refused(base, tmp_path):
    acme = _folder(tmp_path, "acme", a="views:\n  open_tasks:\n    columns: [id, !remove ]\n")
    [error] = _errors(base, acme)
    assert error.message.startswith("`!remove` inside a list has nothing to act on")


def test_applying_an_overlay_leaves_the_base_document_unchanged():
    base, _ = parse_yaml("types: {item: {fields: {a: {kind: string}}}}\n", "base.yaml")
    overlay, _ = parse_yaml("types: {item: {fields: {a: !remove , b: {kind: text}}}}\n", "acme.yaml", overlay=True)
    merged, errors = apply_overlay(base, overlay)
    assert errors == []
    assert merged.data == {"types": {"item": {"fields": {"b": {"kind": "text"}}}}}
    assert base.data == {"types": {"item": {"fields": {"a": {"kind": "string"}}}}}
    assert merged.positions.locate(("types", "item", "fields", "b")).file == "acme.yaml"
    assert merged.positions.locate(("types", "item")).file == "base.yaml"
