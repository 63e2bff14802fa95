"""Reading YAML with positions: every value knows its file, line and column."""
from __future__ import annotations

import textwrap
from pathlib import Path

from deskbase.objects.sourcemap import Append, Position, Remove, Replace, format_path, parse_path, parse_yaml, read_yaml


def _parse(text: str, *, overlay: bool = False):
    return parse_yaml(textwrap.dedent(text).lstrip("\n"), "app/items.yaml", overlay=overlay)


def test_every_value_knows_its_one_based_line_and_column():
    document, errors = _parse("""
        types:
          task:
            fields:
              priority: {kind: enum, values: [high, low]}
        """)
    assert errors == []
    assert document.positions.locate(("types", "task", "fields", "priority", "kind")) == Position("app/items.yaml", 4, 24)
    assert document.positions.locate(("types", "task", "fields", "priority", "values", 1)) == Position("app/items.yaml", 4, 45)


def test_key_position_points_at_the_key_a_person_looks_for():
    document, _ = _parse("""
        types:
          task:
            label: Task
        """)
    assert document.positions.locate_key(("types", "task", "label")) == Position("app/items.yaml", 3, 5)
    assert document.positions.locate(("types", "task", "label")) == Position("app/items.yaml", 3, 12)


def test_an_unknown_path_is_located_at_its_nearest_known_ancestor():
    document, _ = _parse("""
        views:
          open:
            filter: {status: open}
        """)
    inner = ("views", "open", "filter", "any", 3, "status")
    assert document.positions.locate(inner) == Position("app/items.yaml", 3, 13)


def test_a_syntax_error_is_a_sentence_with_line_and_column():
    document, errors = _parse("types:\n  task:\n\tlabel: Task\n")
    assert document is None
    [error] = errors
    assert (error.file, error.line, error.column) == ("app/items.yaml", 3, 1)
    assert "this is not valid YAML" in error.message
    assert error.hint == "indent with spaces: YAML does not accept tabs"


def test_an_unclosed_bracket_is_reported_with_a_hint():
    _, [error] = _parse("fields: {kind: string\n")
    assert error.line == 2
    assert error.hint == "a quote or bracket is not closed"


def test_a_key_written_twice_is_reported_instead_of_silently_dropped():
    document, [error] = _parse("""
        fields:
          title: {kind: string}
          notes: {kind: text}
          title: {kind: text}
        """)
    assert (error.line, error.column) == (4, 3)
    assert error.path == "fields.title"
    assert error.message.startswith("`title` is written twice in the same map (first at line 2, column 3)")
    assert document.data["fields"]["title"] == {"kind": "string"}


def test_only_true_and_false_are_booleans_so_yes_and_no_stay_words():
    document, _ = _parse("values: [yes, no, on, off, y, n, true, False]\n")
    assert document.data["values"] == ["yes", "no", "on", "off", "y", "n", True, False]


def test_durations_dates_and_leading_zeros_stay_text_for_the_field_kinds():
    document, _ = _parse("a: 1:30\nb: 2026-11-24\nc: 007\nd: 12\ne: 2.5\nf: ~\n")
    assert document.data == {"a": "1:30", "b": "2026-11-24", "c": "007", "d": 12, "e": 2.5, "f": None}


def test_overlay_tags_become_markers_in_an_overlay():
    document, errors = _parse("""
        gone: !remove
        more: !append [a, b]
        whole: !replace {x: 1}
        """, overlay=True)
    assert errors == []
    assert document.data == {"gone": Remove(), "more": Append(["a", "b"]), "whole": Replace({"x": 1})}
    assert document.positions.locate(("more", 1)) == Position("app/items.yaml", 2, 19)


def test_overlay_tags_are_refused_in_a_base_folder():
    document, [error] = _parse("views:\n  open: !remove\n")
    assert (error.line, error.column) == (2, 9)
    assert "`!remove` may only be used in an overlay folder" in error.message
    assert document.data == {"views": {"open": None}}


def test_remove_takes_no_value_and_append_takes_a_list():
    _, errors = _parse("a: !remove yes\nb: !append {x: 1}\n", overlay=True)
    assert [e.message for e in errors] == [
        "`!remove` takes no value: write `key: !remove`",
        "`!append` is followed by a list, as in `values: !append [on_hold]`",
    ]


def test_merge_keys_share_settings_and_keys_written_in_the_map_win():
    document, errors = _parse("""
        short: &short {kind: string, max_length: 20}
        fields:
          code: {<<: *short, max_length: 8}
        """)
    assert errors == []
    assert document.data["fields"]["code"] == {"kind": "string", "max_length": 8}
    assert document.positions.locate(("fields", "code", "kind")) == Position("app/items.yaml", 1, 22)


def test_an_alias_to_its_own_container_is_reported_not_followed_forever():
    _, [error] = _parse("items: &loop [1, *loop]\n")
    assert error.message == "an alias refers to the map or list that contains it"


def test_an_unknown_tag_is_reported():
    _, [error] = _parse("label: !translate Task\n")
    assert error.message == "the tag `!translate` is not understood here; write the value without it"


def test_an_empty_file_reads_as_nothing():
    document, errors = _parse("# only a comment\n")
    assert errors == [] and document.data is None


def test_a_file_that_is_not_utf8_is_reported(tmp_path: Path):
    path = tmp_path / "items.yaml"
    path.write_bytes(b"label: T\xe2che\n")
    document, [error] = read_yaml(path)
    assert document is None
    assert (error.line, error.message) == (1, "the file is not UTF-8 text")


def test_paths_print_as_dotted_names_with_list_indexes_and_read_back():
    path = ("types", "task", "index", 1, "range")
    assert format_path(path) == "types.task.index[1].range"
    assert parse_path("types.task.index[1].range") == path
    assert parse_path("any[1].priority.gte") == ("any", 1, "priority", "gte")
