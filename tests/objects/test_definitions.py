"""Loading definitions: validation with located sentences, cross-checks, and compilation
into frozen objects (docs/definitions.md)."""
from __future__ import annotations

import json
import pickle
import textwrap
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st
from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from deskbase.objects import compiling
from deskbase.objects.compiling import check_expression
from deskbase.objects.definitions import load_definitions
from deskbase.objects.errors import DefinitionError, DefinitionErrors, QueryError
from deskbase.objects.fields import DateTimeKind, DurationKind, EnumKind, MoneyKind, RefKind
from deskbase.objects.metaschema import SCHEMA
from deskbase.objects.model import SYSTEM_FIELDS, SYSTEM_INDEXES, IndexDef
from deskbase.objects.sourcemap import Position

APP = """
    settings:
      timezone: Europe/Paris
      languages: [en, fr]
    roles:
      agent: {label: {en: Agent, fr: Agent}}
    types:
      organization:
        label: Organization
        title: name
        fields:
          name: {kind: string, required: true}
        index: [name]
      task:
        label: {en: Task, fr: Tâche}
        number: "TK-{seq:05d}"
        title: title
        fields:
          title:    {kind: string, required: true, max_length: 80, pattern: "[A-Z].*"}
          notes:    {kind: text}
          priority: {kind: enum, default: medium, values: [{high: {en: High, fr: Haute}}, medium, low]}
          customer: {kind: ref, to: organization}
          watchers: {kind: refs, to: organization}
          labels:   {kind: tags}
          due:      {kind: date, default: $today}
          reported: {kind: datetime, default: $now}
          owner:    {kind: user, default: $me}
          estimate: {kind: duration, minimum: 15m, maximum: 8h, default: 1h30}
          cost:     {kind: money, currency: USD, minimum: 0, maximum: 999.99}
          done:     {kind: boolean, default: false}
          files:    {kind: attachments, max_size: 1000, accept: [.txt, image/*]}
          spent:    {kind: computed, result: duration,
                     aggregate: {function: sum, of: work, via: task, field: duration}}
          double:   {kind: computed, result: money, expression: "record.cost * 2"}
        index: [priority, customer, watchers, labels, {range: due}, {text: [title, notes]}]
      work:
        fields:
          task:     {kind: ref, to: task, required: true}
          duration: {kind: duration}
        index: [task]
    views:
      open_tasks:
        type: task
        label: {en: Open tasks, fr: Tâches ouvertes}
        columns: [id, title, priority, created_at]
        sort: [-priority, created_at]
        roles: [agent]
    """


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _errors(folder: Path) -> list[DefinitionError]:
    with pytest.raises(DefinitionErrors) as caught:
        load_definitions(folder)
    return caught.value.errors


def _one_error(tmp_path: Path, text: str) -> DefinitionError:
    _write(tmp_path / "defs", "app.yaml", text)
    errors = _errors(tmp_path / "defs")
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "defs"
    _write(folder, "app.yaml", APP)
    return folder


# -- compiling ------------------------------------------------------------------------------

def test_fields_are_the_system_fields_then_the_own_fields_in_definition_order(app):
    task = load_definitions(app).type("task")
    assert list(task.fields)[:6] == list(SYSTEM_FIELDS)
    assert list(task.own_fields) == ["title", "notes", "priority", "customer", "watchers", "labels", "due",
                                     "reported", "owner", "estimate", "cost", "done", "files", "spent", "double"]


def test_field_options_compile_into_the_kind_of_each_field(app):
    fields = load_definitions(app).type("task").fields
    assert (fields["title"].kind.max_length, fields["title"].kind.pattern) == (80, "[A-Z].*")
    assert fields["priority"].kind == EnumKind(values=("high", "medium", "low"),
                                               labels={"high": {"en": "High", "fr": "Haute"}})
    assert fields["customer"].kind == RefKind(to="organization")
    assert fields["estimate"].kind == DurationKind(minimum=900, maximum=28800)
    assert fields["cost"].kind == MoneyKind(currency="USD", minimum=Decimal("0"), maximum=Decimal("999.99"))
    assert (fields["files"].kind.max_size, fields["files"].kind.accept) == (1000, (".txt", "image/*"))
    assert fields["spent"].kind.result == DurationKind()
    assert fields["spent"].kind.aggregate == {"function": "sum", "of": "work", "via": "task", "field": "duration"}
    assert fields["double"].kind.expression == "record.cost * 2"


def test_dates_and_times_are_read_in_the_time_zone_of_the_settings(app):
    fields = load_definitions(app).type("task").fields
    assert fields["reported"].kind == DateTimeKind(zone="Europe/Paris")
    assert fields["created_at"].kind == DateTimeKind(zone="Europe/Paris")


def test_defaults_are_coerced_by_their_kind_and_context_words_are_kept(app):
    fields = load_definitions(app).type("task").fields
    assert fields["priority"].default == "medium"
    assert fields["estimate"].default == 5400
    assert fields["done"].default is False
    assert (fields["due"].default, fields["reported"].default, fields["owner"].default) == ("$today", "$now", "$me")


def test_indexes_are_the_declared_ones_named_by_field_then_the_system_ones(app):
    task = load_definitions(app).type("task")
    assert list(task.indexes) == ["priority", "customer", "watchers", "labels", "due", "text",
                                  *(index.name for index in SYSTEM_INDEXES)]
    assert task.indexes["priority"] == IndexDef("priority", "field", ("priority",))
    assert task.indexes["watchers"].kind == "keyword"   # a plain entry over a multi-valued field
    assert task.indexes["labels"].kind == "keyword"
    assert task.indexes["due"].kind == "range"
    assert task.text_index == IndexDef("text", "text", ("title", "notes"))


def test_numbering_defaults_to_the_type_name_in_capitals(app):
    definitions = load_definitions(app)
    assert definitions.type("task").number(12) == "TK-00012"
    assert definitions.type("work").number_format == "WORK-{seq:06d}"
    assert definitions.type("organization").title_field == "name"


def test_views_roles_and_settings_are_compiled(app):
    definitions = load_definitions(app)
    view = definitions.views["open_tasks"]
    assert (view.type, view.columns, view.sort, view.roles) == (
        "task", ("id", "title", "priority", "created_at"), ("-priority", "created_at"), ("agent",))
    assert definitions.roles["agent"]["label"]["fr"] == "Agent"
    assert definitions.languages == ("en", "fr")


def test_the_document_is_the_merged_plain_definitions_ready_for_a_json_snapshot(app):
    definitions = load_definitions(app)
    assert json.loads(json.dumps(definitions.document))["types"]["task"]["number"] == "TK-{seq:05d}"
    assert pickle.loads(pickle.dumps(definitions.document)) == definitions.document
    assert definitions.sources == (str(app / "app.yaml"),)


def test_compiled_definitions_cannot_be_changed(app):
    definitions = load_definitions(app)
    with pytest.raises(TypeError):
        definitions.types["other"] = None
    with pytest.raises(TypeError):
        definitions.type("task").fields["priority"].kind.labels["low"] = "Low"
    with pytest.raises(TypeError):
        definitions.document["types"]["task"]["fields"].pop("title")
    with pytest.raises(TypeError):
        definitions.document["views"]["open_tasks"]["columns"].append("notes")


def test_yes_and_no_may_be_values_of_an_enum(tmp_path):
    _write(tmp_path / "defs", "app.yaml", "types: {item: {fields: {answer: {kind: enum, values: [yes, no]}}}}\n")
    assert load_definitions(tmp_path / "defs").type("item").fields["answer"].kind.values == ("yes", "no")


def test_the_meta_schema_is_a_valid_draft_2020_12_schema():
    assert validator_for(SCHEMA) is Draft202012Validator      # its `$schema` names draft 2020-12
    Draft202012Validator.check_schema(SCHEMA)                 # SchemaError where a keyword is misused


# -- reading --------------------------------------------------------------------------------

def test_broken_yaml_is_reported_with_its_line_and_column(tmp_path):
    path = _write(tmp_path / "defs", "app.yaml", "types:\n  item:\n    fields: {name: {kind: string}\n")
    [error] = _errors(tmp_path / "defs")
    assert str(error).startswith(f"{path}:4:1: this is not valid YAML")
    assert error.hint == "a quote or bracket is not closed"


def test_a_duplicate_key_is_reported_with_the_first_place(tmp_path):
    error = _one_error(tmp_path, """
        types:
          item:
            fields:
              name: {kind: string}
              name: {kind: text}
        """)
    assert (error.line, error.column, error.path) == (5, 7, "types.item.fields.name")
    assert "`name` is written twice in the same map (first at line 4, column 7)" in error.message


def test_a_missing_folder_and_an_empty_folder_are_reported(tmp_path):
    [missing] = _errors(tmp_path / "nowhere")
    assert missing.message == f"the definitions folder `{tmp_path / 'nowhere'}` does not exist"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "app.yml").write_text("types: {}\n")
    [empty] = _errors(tmp_path / "empty")
    assert empty.message == f"the definitions folder `{tmp_path / 'empty'}` has no .yaml file"
    assert empty.hint == "rename app.yml to end in .yaml"


# -- the schema pass --------------------------------------------------------------------------

def test_an_unknown_field_setting_suggests_the_right_one(tmp_path):
    error = _one_error(tmp_path, "types: {item: {fields: {name: {kind: string, requird: true}}}}\n")
    assert error.message == "`requird` is not a setting of a field of kind string"
    assert error.hint == "did you mean `required`?"
    assert (error.line, error.column, error.path) == (1, 46, "types.item.fields.name.requird")


def test_a_setting_of_another_kind_says_which_kinds_have_it(tmp_path):
    error = _one_error(tmp_path, "types: {item: {fields: {size: {kind: integer, max_length: 3}}}}\n")
    assert error.message == "`max_length` is not a setting of a field of kind integer"
    assert error.hint == "`max_length` is a setting of string and text fields"


def test_a_misspelt_kind_lists_the_kinds_and_suggests_one(tmp_path):
    error = _one_error(tmp_path, "types: {item: {fields: {name: {kind: strng}}}}\n")
    assert error.message.startswith("`strng` is not a kind of field; use one of string, text, integer,")
    assert error.hint == "did you mean `string`?"
    assert (error.line, error.column) == (1, 38)


def test_a_missing_required_option_says_what_it_is_for(tmp_path):
    error = _one_error(tmp_path, """
        types:
          item:
            fields:
              owner: {kind: ref}
        """)
    assert error.message == "field `owner` needs `to`: the type it refers to"
    assert (error.line, error.column) == (4, 7)


def test_a_value_of_the_wrong_type_says_what_was_expected(tmp_path):
    error = _one_error(tmp_path, "types: {item: {fields: {name: {kind: string}}, index: 5}}\n")
    assert error.message == "expected a list of index entries, got a number (5)"


def test_a_name_that_is_not_lower_snake_case_is_refused_with_its_snake_form(tmp_path):
    error = _one_error(tmp_path, "types: {WorkItem: {fields: {name: {kind: string}}}}\n")
    assert error.message.startswith("`WorkItem` is not a type name in lower_snake_case")
    assert error.hint == "write it as `work_item`"


def test_an_unknown_section_suggests_the_right_one(tmp_path):
    error = _one_error(tmp_path, "typs: {}\n")
    assert error.message == "`typs` is not a section of the definitions"
    assert error.hint == "did you mean `types`?"


def test_a_comma_inside_a_label_map_gets_a_hint_about_quotes(tmp_path):
    error = _one_error(tmp_path, "types: {item: {label: {en: Item (small, large)}, fields: {}}}\n")
    assert error.message.startswith("`large)` is not a language code")
    assert "put quotes around a label that contains a comma" in error.hint


# -- cross-checks -----------------------------------------------------------------------------

def test_a_dangling_ref_suggests_the_existing_type(tmp_path):
    error = _one_error(tmp_path, """
        types:
          organization:
            fields: {name: {kind: string}}
          item:
            fields:
              customer: {kind: ref, to: organisation}
        """)
    assert error.message == "field `customer` refers to `organisation`, which is not a type"
    assert error.hint == "did you mean `organization`?"
    assert (error.line, error.column, error.path) == (6, 33, "types.item.fields.customer.to")


def test_an_index_over_an_unknown_field_is_reported_with_a_hint(tmp_path):
    error = _one_error(tmp_path, """
        types:
          item:
            fields: {priority: {kind: integer}}
            index: [priorty]
        """)
    assert error.message == "index over `priorty`, which is not a field of type `item`"
    assert error.hint == "did you mean `priority`?"
    assert (error.line, error.column) == (4, 13)


@pytest.mark.parametrize("entry, message", [
    ("{keyword: size}", "`size` holds one value; a keyword index is for fields with several values (refs, tags)"),
    ("{field: labels}", "`labels` holds several values; a field index keeps one value per record"),
    ("{range: notes}", "`notes` is long text, which has no order to index"),
    ("{text: [size]}", "`size` is an integer field; a text index searches string and text fields"),
    ("created_at", "`created_at` is always indexed"),
])
def test_an_index_must_fit_its_field(tmp_path, entry, message):
    error = _one_error(tmp_path, f"""
        types:
          item:
            fields: {{size: {{kind: integer}}, labels: {{kind: tags}}, notes: {{kind: text}}}}
            index: [{entry}]
        """)
    assert error.message == message


def test_a_type_has_at_most_one_text_index(tmp_path):
    error = _one_error(tmp_path, """
        types:
          item:
            fields: {title: {kind: string}, notes: {kind: text}}
            index: [{text: [title]}, {text: [notes]}]
        """)
    assert error.message == "type `item` has two text indexes; a type has one"


def test_the_title_must_be_a_field_of_the_type(tmp_path):
    error = _one_error(tmp_path, "types: {item: {title: nmae, fields: {name: {kind: string}}}}\n")
    assert error.message == "the title field `nmae` is not a field of type `item`"
    assert error.hint == "did you mean `name`?"


def test_a_number_format_must_contain_the_counter(tmp_path):
    error = _one_error(tmp_path, "types: {item: {number: \"IT-{sq:04d}\", fields: {}}}\n")
    assert error.message.startswith("`IT-{sq:04d}` is not a number format: it must contain `{seq}` once")


def test_two_types_may_not_number_their_records_alike(tmp_path):
    error = _one_error(tmp_path, """
        types:
          item:  {number: "X-{seq}", fields: {}}
          other: {number: "X-{seq:04d}", fields: {}}
        """)
    assert error.message.startswith("types `item` and `other` number their records alike")


@pytest.mark.parametrize("field, message, hint", [
    ("{kind: integer, default: many}", "the default `many` does not fit an integer field: `many` is not a whole number", None),
    ("{kind: date, default: 2026-02-30}", "the default `2026-02-30` does not fit a date field: "
                                          "`2026-02-30` is not a date (write it as 2026-11-24)", None),
    ("{kind: enum, values: [high, low], default: hihg}",
     "the default `hihg` is not one of the values of `size`: high, low", "did you mean `high`?"),
    ("{kind: string, default: $me}", "`$me` cannot be the default of a string field; it fits user fields", None),
    ("{kind: date, default: $tody}", "`$tody` is not a value the engine can fill in; a default may be "
                                     "`$now`, `$today` (dates and times), `$me` (users), `$only_choice` or "
                                     "`$me.person` (refs)",
     "did you mean `$today`?"),
    ("{kind: computed, result: integer, expression: '1', default: 2}",
     "computed field `size` has no default: the engine computes it", "remove `default`"),
])
def test_a_bad_default_is_reported_at_the_default(tmp_path, field, message, hint):
    error = _one_error(tmp_path, f"types:\n  item:\n    fields:\n      size: {field}\n")
    assert (error.message, error.hint) == (message, hint)
    assert error.path == "types.item.fields.size.default"
    assert error.line == 4


def test_a_date_default_is_stored_as_a_date(tmp_path):
    _write(tmp_path / "defs", "app.yaml", "types: {item: {fields: {start: {kind: date, default: 2026-11-24}}}}\n")
    assert load_definitions(tmp_path / "defs").type("item").fields["start"].default == date(2026, 11, 24)


def test_an_enum_value_given_twice_is_reported(tmp_path):
    error = _one_error(tmp_path, "types: {item: {fields: {size: {kind: enum, values: [s, m, s]}}}}\n")
    assert (error.message, error.path) == ("`s` appears twice in the values", "types.item.fields.size.values[2]")


def test_renaming_from_a_field_that_still_exists_is_refused(tmp_path):
    error = _one_error(tmp_path, """
        types:
          item:
            fields:
              name:  {kind: string}
              title: {kind: string, renamed_from: name}
        """)
    assert error.message == "`title` is renamed from `name`, but `name` is still a field of type `item`"


def test_a_system_field_cannot_be_declared(tmp_path):
    error = _one_error(tmp_path, "types:\n  item:\n    fields:\n      created_at: {kind: date}\n")
    assert error.message == "`created_at` is a system field: every type has it, kept by the engine"
    assert (error.line, error.column) == (4, 7)


def test_a_computed_field_needs_an_expression_or_an_aggregate(tmp_path):
    error = _one_error(tmp_path, "types: {item: {fields: {total: {kind: computed, result: integer}}}}\n")
    assert error.message.startswith("computed field `total` needs `expression` (a formula over the record)")


def test_an_aggregate_must_follow_an_indexed_ref_pointing_back(tmp_path):
    _write(tmp_path / "defs", "app.yaml", """
        types:
          item:
            fields:
              spent: {kind: computed, result: duration,
                      aggregate: {function: sum, of: part, via: owner, field: duration}}
              count: {kind: computed, result: integer, aggregate: {function: count, of: part, via: item}}
              worst: {kind: computed, result: integer, aggregate: {function: sum, of: prat, via: item, field: x}}
          part:
            fields:
              item:     {kind: ref, to: item}
              owner:    {kind: ref, to: part}
              duration: {kind: duration}
        """)
    messages = [(e.path, e.message) for e in _errors(tmp_path / "defs")]
    assert messages == [
        ("types.item.fields.spent.aggregate.via",
         "`via` must be a ref field of `part` pointing at `item`; `owner` is not (it points at `part`)"),
        ("types.item.fields.count.aggregate.via",
         "`item` of type `part` must be indexed for the aggregate to find the related records"),
        ("types.item.fields.worst.aggregate.of", "the aggregate counts records of `prat`, which is not a type"),
    ]


def test_an_expression_that_does_not_parse_is_located_at_the_expression(tmp_path):
    error = _one_error(tmp_path, "types:\n  item:\n    fields:\n      total: {kind: computed, result: integer, "
                                 "expression: \"record.size *\"}\n      size: {kind: integer}\n")
    assert error.message == "the expression `record.size *` does not parse: it ends too early (something is missing at the end)"
    assert (error.line, error.column, error.path) == (4, 60, "types.item.fields.total.expression")


def test_an_expression_reading_an_unknown_field_is_reported(tmp_path):
    error = _one_error(tmp_path, "types: {item: {fields: {size: {kind: integer}, "
                                 "total: {kind: computed, result: integer, expression: 'record.szie * 2'}}}}\n")
    assert error.message == "the expression reads `record.szie`, but `szie` is not a field of type `item`"
    assert error.hint == "did you mean `size`?"


def test_check_expression_accepts_jinja_and_names_unknown_variables():
    check_expression("record.quantity * record.unit_price if record.unit_price else 0")
    with pytest.raises(DefinitionError) as caught:
        check_expression("recrod.quantity", at=Position("app.yaml", 7, 20), path="types.item.fields.total.expression")
    assert (caught.value.line, caught.value.column) == (7, 20)
    assert caught.value.hint == "did you mean `record`?"


def test_an_unknown_view_column_is_reported_with_a_hint(app):
    path = app / "app.yaml"
    path.write_text(path.read_text().replace("columns: [id, title, priority, created_at]",
                                             "columns: [id, title, priorty, modified_at]"))
    [error] = _errors(app)
    assert error.message == "column `priorty` is not a field of type `task`"
    assert error.hint == "did you mean `priority`?"
    assert (error.line, error.path) == (_line_of(path, "columns: [id"), "views.open_tasks.columns[2]")


def test_a_view_role_must_be_defined_in_roles(app):
    path = app / "app.yaml"
    path.write_text(path.read_text().replace("roles: [agent]", "roles: [agnet]"))
    [error] = _errors(app)
    assert (error.message, error.hint) == ("role `agnet` is not defined in `roles`", "did you mean `agent`?")


def test_a_view_cannot_sort_on_a_field_without_order(app):
    path = app / "app.yaml"
    path.write_text(path.read_text().replace("sort: [-priority, created_at]", "sort: [-labels]"))
    [error] = _errors(app)
    assert error.message == "cannot sort on `labels`: a tags field has no order"


def test_a_view_of_an_unknown_type_suggests_one(app):
    path = app / "app.yaml"
    path.write_text(path.read_text().replace("type: task", "type: tasks"))
    [error] = _errors(app)
    assert (error.message, error.hint) == ("view `open_tasks` lists records of `tasks`, which is not a type",
                                           "did you mean `task`?")


def test_several_problems_are_reported_together_each_at_its_place(app):
    path = app / "app.yaml"
    text = path.read_text()
    for old, new in [("kind: string, required: true, max_length: 80", "kind: strng, required: true"),
                     ("to: organization}\n", "to: organisation}\n"),
                     ("[id, title, priority, created_at]", "[id, title, priorty]"),
                     ("roles: [agent]", "roles: [agnet]"),
                     ("default: $today", "default: tomorrow")]:
        assert old in text
        text = text.replace(old, new, 1)
    path.write_text(text)
    errors = _errors(app)
    assert len(errors) == 5
    assert [e.line for e in errors] == sorted(e.line for e in errors)
    for error, needle in zip(errors, ["kind: strng", "to: organisation", "due:", "columns:", "roles: [agnet]"]):
        assert str(error).startswith(f"{path}:{_line_of(path, needle)}:{error.column}: ")
        assert error.column > 1


# -- filters --------------------------------------------------------------------------------

def _fake_filters(monkeypatch, failure: QueryError | None, calls: list) -> None:
    """Stand in for the filter language, to see what the loader hands it and does with its errors."""
    def compile_filter(spec, typedef, *, record_type=None):
        calls.append((spec, typedef.name, record_type.name if record_type else None))
        if failure is not None:
            raise failure
    monkeypatch.setattr(compiling, "compile_filter", compile_filter)


def test_every_ref_where_and_view_filter_is_compiled_against_its_type(app, monkeypatch):
    path = app / "app.yaml"
    path.write_text(path.read_text()
                    .replace("customer: {kind: ref, to: organization}",
                             "customer: {kind: ref, to: organization, where: {name: {ne: null}}}")
                    .replace("roles: [agent]", "roles: [agent]\n    filter: {done: false}"))
    calls: list = []
    _fake_filters(monkeypatch, None, calls)
    load_definitions(app)
    assert calls == [({"name": {"ne": None}}, "organization", "task"), ({"done": False}, "task", None)]


def test_a_filter_problem_is_located_at_the_part_of_the_filter_at_fault(app, monkeypatch):
    path = app / "app.yaml"
    path.write_text(path.read_text().replace("roles: [agent]", textwrap.indent(textwrap.dedent("""\
        roles: [agent]
        filter:
          any:
            - {done: true}
            - {priority: {gte: hihg}}
        """), "    ").rstrip("\n").lstrip()))
    _fake_filters(monkeypatch, QueryError("`hihg` is not one of high, medium, low", "any[1].priority.gte",
                                          "did you mean `high`?"), [])
    [error] = _errors(app)
    line = _line_of(path, "{priority: {gte: hihg}}")
    assert (error.line, error.column) == (line, path.read_text().splitlines()[line - 1].index("hihg") + 1)
    assert error.path == "views.open_tasks.filter.any[1].priority.gte"
    assert (error.message, error.hint) == ("`hihg` is not one of high, medium, low", "did you mean `high`?")


def test_a_view_filter_naming_an_unknown_field_is_located_at_that_name(app):
    path = app / "app.yaml"
    path.write_text(path.read_text().replace("roles: [agent]", "roles: [agent]\n    filter: {dnoe: true}"))
    [error] = _errors(app)
    line = _line_of(path, "{dnoe: true}")
    assert (error.line, error.column) == (line, path.read_text().splitlines()[line - 1].index("dnoe") + 1)
    assert error.path == "views.open_tasks.filter.dnoe"
    assert error.hint == "did you mean `done`?"


# -- robustness -----------------------------------------------------------------------------

_WORDS = ["task", "organization", "title", "priority", "id", "-priority", "string", "enum", "ref", "tags",
          "computed", "integer", "$now", "$me", "sum", "count", "range", "keyword", "text", ""]
_VALUES = st.one_of(st.sampled_from(_WORDS), st.integers(-2, 3), st.booleans(), st.none(), st.just([]), st.just({}),
                    st.lists(st.sampled_from(_WORDS), max_size=3),
                    st.dictionaries(st.sampled_from(_WORDS), st.sampled_from(_WORDS), max_size=2))


def _paths(node, path=()):
    yield path
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for step, child in children:
        yield from _paths(child, path + (step,))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.integers(0, 10_000), _VALUES, st.booleans()), min_size=1, max_size=3))
def test_any_damage_to_valid_definitions_is_reported_as_located_sentences(tmp_path_factory, changes):
    document = yaml.safe_load(textwrap.dedent(APP))
    for choice, value, delete in changes:
        path = list(_paths(document))[1:][choice % len(list(_paths(document))[1:])]
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if delete:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    folder = tmp_path_factory.mktemp("defs")
    (folder / "app.yaml").write_text(yaml.safe_dump(document))
    try:
        load_definitions(folder)
    except DefinitionErrors as raised:
        assert all(error.line >= 1 and error.column >= 1 and error.message for error in raised.errors)


def test_a_view_chart_counts_an_indexed_field_only(app):
    path = app / "app.yaml"
    text = path.read_text()
    path.write_text(text.replace("roles: [agent]", "roles: [agent]\n    chart: prioirty"))
    [error] = _errors(app)
    assert (error.message, error.hint) == ("`prioirty` is not a field of type `task`", "did you mean `priority`?")
    path.write_text(text.replace("roles: [agent]", "roles: [agent]\n    chart: title"))
    [error] = _errors(app)
    assert "a chart counts the values of an indexed" in error.message


def test_a_bulk_action_makes_records_that_point_at_the_listed_ones(app):
    path = app / "app.yaml"
    text = path.read_text()
    path.write_text(text.replace("roles: [agent]", "roles: [agent]\n    bulk: [{create: work, via: task, split: duration}]"))
    assert load_definitions(app).views["open_tasks"].bulk[0]["split"] == "duration"
    path.write_text(text.replace("roles: [agent]", "roles: [agent]\n    bulk: [{create: work, via: tsak}]"))
    [error] = _errors(app)
    assert (error.message, error.hint) == ("`tsak` is not a ref field of `work` pointing at `task`", "did you mean `task`?")
    path.write_text(text.replace("roles: [agent]", "roles: [agent]\n    bulk: [{create: work, via: task, split: task}]"))
    [error] = _errors(app)
    assert "`task` cannot be split" in error.message


def test_a_list_where_a_bulk_action_names_a_type_or_a_field_is_reported(app):
    path = app / "app.yaml"
    text = path.read_text()
    for action, message in (("{create: [work], via: task}", "`['work']` is not a type"),
                            ("{create: work, via: [task]}", "`['task']` is not a ref field of `work`")):
        path.write_text(text.replace("roles: [agent]", f"roles: [agent]\n    bulk: [{action}]"))
        assert any(message in error.message for error in _errors(app))   # not a TypeError (unhashable)


def test_join_is_for_users_fields_and_names_declared_roles(tmp_path):
    error = _one_error(tmp_path, "types: {item: {fields: {owner: {kind: user, join: {roles: [staff]}}}}}\n")
    assert error.message == "`join` is not a setting of a field of kind user"
    assert error.hint == "`join` is a setting of users fields"
    error = _one_error(tmp_path, """
        roles: {staff: {label: Staff}}
        types:
          item:
            fields:
              people: {kind: users, join: {roles: [stuff]}}
        """)
    assert (error.path, error.message, error.hint) == (
        "types.item.fields.people.join.roles[0]", "`stuff` is not a role of the definitions", "did you mean `staff`?")


OFFER_APP = """
    roles: {staff: {label: Staff}}
    types:
      job:
        fields:
          owner: {kind: user}
          helper: {kind: user}
          state: {kind: enum, values: [open, done]}
          worker: {kind: user, offer: OFFER}
        index: [owner, state]
"""


@pytest.mark.parametrize("offer, path, message, hint", [
    ("{roles: [stuff]}", "roles[0]", "`stuff` is not a role of the definitions", "did you mean `staff`?"),
    ("{count: {type: jbo, field: owner}}", "count.type", "`jbo` is not a type", "did you mean `job`?"),
    ("{count: {type: job, field: helper}}", "count.field", "`helper` is not an indexed user field of `job`",
     "index it under the type's `indexes` to count by it"),
    ("{count: {type: job, field: owner, where: {stat: open}}}", "count.where.stat", "`stat` is not a field of `job`",
     "did you mean `state`?"),
])
def test_a_wrong_offer_is_reported_where_it_is_written(tmp_path, offer, path, message, hint):
    error = _one_error(tmp_path, OFFER_APP.replace("OFFER", offer))
    assert (error.path, error.message, error.hint) == ("types.job.fields.worker.offer." + path, message, hint)


def test_a_list_where_an_offer_names_a_type_or_a_field_is_reported(tmp_path):
    for offer, message in (("{count: {type: [job], field: owner}}", "`['job']` is not a type"),
                           ("{count: {type: job, field: [owner]}}",
                            "`['owner']` is not an indexed user field of `job`")):
        _write(tmp_path / "defs", "app.yaml", OFFER_APP.replace("OFFER", offer))
        assert any(message in error.message for error in _errors(tmp_path / "defs"))   # not a TypeError (unhashable)


def test_only_a_user_field_offers_people(tmp_path):
    error = _one_error(tmp_path, OFFER_APP.replace("worker: {kind: user, offer: OFFER}",
                                                   "worker: {kind: string, offer: {roles: [staff]}}"))
    assert error.message == "`offer` is not a setting of a field of kind string"


def test_a_roles_history_names_roles_and_fields_of_the_type(tmp_path):
    error = _one_error(tmp_path, OFFER_APP.replace("index: [owner, state]", "index: [owner, state]\n"
                                                   "        history: {stuff: {fields: [state]}}").replace("OFFER", "{}"))
    assert (error.path, error.message, error.hint) == ("types.job.history.stuff", "`stuff` is not a role of the "
                                                       "definitions", "did you mean `staff`?")
    error = _one_error(tmp_path, OFFER_APP.replace("index: [owner, state]", "index: [owner, state]\n"
                                                   "        history: {staff: {fields: [stat]}}").replace("OFFER", "{}"))
    assert (error.path, error.message, error.hint) == ("types.job.history.staff.fields[0]", "`stat` is not a field "
                                                       "of type `job`", "did you mean `state`?")


SNIPPETS_APP = """
    types:
      topic:
        title: name
        fields: {name: {kind: string}}
      template:
        title: title
        fields:
          title: {kind: string}
          words: {kind: text}
          topic: {kind: ref, to: topic}
          mood:  {kind: enum, values: [calm, firm]}
        index: [topic]
      order:
        title: name
        fields:
          name:  {kind: string}
          topic: {kind: ref, to: topic}
      reply:
        fields:
          order: {kind: ref, to: order, required: true}
          mood:  {kind: enum, values: [calm, firm]}
          body:  {kind: text, snippets: SNIPPETS}
        index: [order]
"""


@pytest.mark.parametrize("snippets, path, message, hint", [
    ("{type: templat, via: order, text: words}", "snippets.type", "`templat` is not a type", "did you mean `template`?"),
    ("{type: template, via: ordr, text: words}", "snippets.via",
     "`ordr` is not a ref field of `reply` to one record", "did you mean `order`?"),
    ("{type: template, via: order, text: word}", "snippets.text",
     "`word` is not a text field of `template`", "did you mean `words`?"),
    ("{type: template, via: order, text: words, copy: {mood: topic}}", "snippets.copy.mood",
     "`template.topic` and `reply.mood` do not hold the same kind of value (the same kind, values or target)", None),
    ("{type: template, via: order, text: words, where: {topic: $record.topik}}", "snippets.where.topic",
     None, None),
])
def test_a_wrong_snippet_setting_is_reported_where_it_is_written(tmp_path, snippets, path, message, hint):
    error = _one_error(tmp_path, SNIPPETS_APP.replace("SNIPPETS", snippets))
    assert error.path == "types.reply.fields.body." + path
    if message is not None:
        assert (error.message, error.hint) == (message, hint)
    else:
        assert "topik" in error.message


def test_snippets_are_for_text_fields(tmp_path):
    error = _one_error(tmp_path, SNIPPETS_APP.replace("body:  {kind: text, snippets: SNIPPETS}",
                                                      "body:  {kind: string, snippets: {type: template}}"))
    assert error.message == "`snippets` is not a setting of a field of kind string"


PAGE_APP = """
    types:
      case:
        title: title
        fields:
          title: {kind: string}
          state: {kind: enum, values: [open, done], colors: COLORS}
          owner: {kind: user}
        page: PAGE
"""


@pytest.mark.parametrize("colors, page, path, message, hint", [
    ("{open: blue, dnoe: green}", "{badges: [state]}", "types.case.fields.state.colors.dnoe",
     "`dnoe` is not a value of this enum", "did you mean `done`?"),
    ("{open: bleu}", "{badges: [state]}", "types.case.fields.state.colors.open",
     "`bleu` is not a colour; use one of red, orange, amber, green, teal, blue, purple, grey", "did you mean `blue`?"),
    ("{open: blue}", "{badges: [owner]}", "types.case.page.badges[0]",
     "`owner` is not an enum field: a badge shows an enum's label in its colour", None),
    ("{open: blue}", "{main: [titel]}", "types.case.page.main[0]", "`titel` is not a field of type `case`",
     "did you mean `title`?"),
    ("{open: blue}", "{main: [title], panel: [{label: People, fields: [owner, title]}]}",
     "types.case.page.panel[0].fields[1]", "`title` is placed twice on the page (first in main)", None),
    ("{open: blue}", "{diagram: {roles: [clerk]}}", "types.case.page.diagram.roles[0]",
     "`clerk` is not a role of the definitions", None),
    ("{open: blue}", "{diagram: {roles: [], rols: [clerk]}}", "types.case.page.diagram.rols",
     "`rols` is not a setting of a diagram (roles)", "did you mean `roles`?"),
    ("{open: blue}", "{diagrma: {roles: []}}", "types.case.page.diagrma",
     "`diagrma` is not a setting of a page (badges, main, panel, diagram)", "did you mean `diagram`?"),
])
def test_a_wrong_page_layout_or_colour_is_reported_where_it_is_written(tmp_path, colors, page, path, message, hint):
    error = _one_error(tmp_path, PAGE_APP.replace("COLORS", colors).replace("PAGE", page))
    assert (error.path, error.message, error.hint) == (path, message, hint)


def test_a_form_of_an_unknown_role_or_field_is_reported_where_it_is_written(tmp_path):
    _write(tmp_path / "defs", "app.yaml", """
        roles: {clerk: {label: Clerk}}
        types:
          case:
            fields:
              title: {kind: string}
              number_given: {kind: sequence, format: "C{seq}"}
            forms:
              clerc: {fields: [title]}
              clerk: {fields: [titel, number_given], set: {stat: open}}
        """)
    found = {(error.path, error.message, error.hint) for error in _errors(tmp_path / "defs")}
    assert found == {
        ("types.case.forms.clerc", "`clerc` is not a role of the definitions", "did you mean `clerk`?"),
        ("types.case.forms.clerk.fields[0]", "`titel` is not a field of type `case`", "did you mean `title`?"),
        ("types.case.forms.clerk.fields[1]", "`number_given` is filled in by the engine: a form cannot ask it", None),
        ("types.case.forms.clerk.set.stat", "`stat` is not a field of type `case`", None)}


def test_a_role_menu_or_home_naming_a_view_it_is_not_offered_is_reported(tmp_path):
    _write(tmp_path / "defs", "app.yaml", """
        roles:
          clerk:
            menu: [{label: Mine, views: [my_cases, all_casez]}]
            home: [all_cases]
          boss: {}
        types:
          case: {fields: {title: {kind: string}}}
        views:
          my_cases: {type: case, columns: [title], roles: [clerk]}
          all_cases: {type: case, columns: [title], roles: [boss]}
        """)
    found = {(error.path, error.message, error.hint) for error in _errors(tmp_path / "defs")}
    assert found == {
        ("roles.clerk.menu[0].views[1]", "`all_casez` is not a view", "did you mean `all_cases`?"),
        ("roles.clerk.home[0]", "the view `all_cases` is not offered to the role `clerk`",
         "add `clerk` to the `roles` of view `all_cases`")}


def test_a_sequence_keeps_its_number_format_beside_texts_with_a_format_of_their_own(tmp_path):
    _write(tmp_path / "defs", "app.yaml", """
        types:
          bill:
            fields:
              number: {kind: sequence, format: "B{year}-{seq:04d}"}
              notes:  {kind: text, format: markdown}
        """)
    definitions = load_definitions(tmp_path / "defs")
    fields = definitions.type("bill").fields
    assert fields["number"].kind.render(7, 2026) == "B2026-0007" and fields["notes"].format == "markdown"


def test_an_ordered_constraint_names_two_fields_of_one_kind_with_an_order(tmp_path):
    app = """
        types:
          stay:
            fields:
              arrives: {kind: date}
              leaves: {kind: date}
              note: {kind: string}
              guests: {kind: tags}
            constraints:
              - ordered: {fields: FIELDS}
        """
    assert _one_error(tmp_path, app.replace("FIELDS", "[arrives, leavs]")).message == \
        "`leavs` is not a field of `stay` with an order"
    assert "not of one kind" in _one_error(tmp_path, app.replace("FIELDS", "[arrives, note]")).message
    assert "with an order" in _one_error(tmp_path, app.replace("FIELDS", "[arrives, guests]")).message
