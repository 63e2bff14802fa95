"""The JSON Schema `deskbase schema` writes for editors: a valid schema, met by the shipped
definitions and the example overlay, refusing what `deskbase check` refuses, describing
every key it knows, and agreeing with the tables of docs/definitions.md."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from deskbase.objects.editor_schema import OWN_KEYWORDS, SHARED_KEYWORDS, editor_schema
from deskbase.objects.fields import KINDS
from deskbase.objects.metaschema import KIND_DESCRIPTIONS, KIND_OPTIONS
from deskbase.objects.sourcemap import Append, Remove, Replace, parse_yaml, read_yaml
from deskbase.rules.application import application_schema

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "definitions.md").read_text()


@pytest.fixture(scope="module")
def base_schema() -> dict:
    return editor_schema(application_schema())


@pytest.fixture(scope="module")
def overlay_schema() -> dict:
    return editor_schema(application_schema(), overlay=True)


def _as_an_editor_reads(value: Any) -> Any:
    """A YAML language server told `!remove scalar`, `!append sequence`, `!replace mapping`
    reads the tagged values as their nodes: nothing, a list, a map."""
    if isinstance(value, Remove):
        return None
    if isinstance(value, Append):
        return [_as_an_editor_reads(item) for item in value.items]
    if isinstance(value, Replace):
        return _as_an_editor_reads(value.mapping)
    if isinstance(value, dict):
        return {key: _as_an_editor_reads(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_an_editor_reads(item) for item in value]
    return value


def _problems(schema: dict, data: Any) -> list[tuple[str, str]]:
    return [("/".join(map(str, error.absolute_path)), error.message) for error in Draft7Validator(schema).iter_errors(data)]


def _walk(node: Any, path: str = ""):
    """Every (path, keyword, value) of a schema, not looking into data (enum, const)."""
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, path)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    yield from _walk(sub, f"{path}/{name}")
            elif key not in ("enum", "const", "required", "enumDescriptions", "if"):
                yield from _walk(value, path)


def test_the_schema_is_a_valid_draft_07_schema_for_editors_and_2020_12_for_the_engine(base_schema, overlay_schema):
    for schema in (base_schema, overlay_schema):
        Draft7Validator.check_schema(schema)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        assert schema["$id"].startswith("urn:deskbase:") and schema["title"] and schema["description"]
    # No reference to fetch: an editor without network reads it whole.
    assert not [path for path, key, _ in _walk(base_schema) if key == "$ref"]


def test_the_schema_uses_only_keywords_draft_07_and_2020_12_read_alike(base_schema, overlay_schema):
    for schema in (base_schema, overlay_schema):
        used = {key for _, key, _ in _walk(schema)}
        assert used <= SHARED_KEYWORDS | OWN_KEYWORDS, used - SHARED_KEYWORDS - OWN_KEYWORDS


def test_every_key_the_schema_knows_has_a_description(base_schema):
    undescribed = sorted({f"{path}/{name}" for path, key, value in _walk(base_schema) if key == "properties"
                          for name, sub in value.items() if not (isinstance(sub, dict) and sub.get("description"))})
    assert undescribed == []


def test_every_kind_of_field_is_described_beside_its_name(base_schema):
    kind = base_schema["properties"]["types"]["additionalProperties"]["properties"]["fields"][
        "additionalProperties"]["properties"]["kind"]
    assert kind["enum"] == list(KINDS)
    assert kind["enumDescriptions"] == [KIND_DESCRIPTIONS[name] for name in KINDS]
    assert all(KIND_DESCRIPTIONS[name] for name in KINDS)


def test_the_shipped_definitions_meet_the_schema_file_by_file(base_schema):
    files = sorted((ROOT / "definitions").glob("*.yaml"))
    assert files
    for path in files:
        document, errors = read_yaml(path)
        assert not errors and document is not None
        assert _problems(base_schema, document.data) == [], path.name


def test_the_example_overlay_meets_the_overlay_schema(overlay_schema, base_schema):
    for path in sorted((ROOT / "examples" / "customers" / "acme").glob("*.yaml")):
        document, errors = read_yaml(path, overlay=True)
        assert not errors and document is not None
        assert _problems(overlay_schema, _as_an_editor_reads(document.data)) == [], path.name
    # The base schema asks what an overlay leaves out: a new field's type without `fields`.
    removal = {"types": {"asset": {"label": {"en": "Equipment"}}}, "public_forms": {"web_request": None}}
    assert _problems(overlay_schema, removal) == []
    assert ("types/asset", "'fields' is a required property") in _problems(base_schema, removal)


def test_the_overlay_schema_still_refuses_an_unknown_option(overlay_schema):
    document, _ = parse_yaml("types:\n  asset:\n    fields:\n      tag: {kind: string, max_lenght: 40}\n", "o.yaml")
    problems = _problems(overlay_schema, document.data)
    assert [path for path, _ in problems] == ["types/asset/fields/tag"]
    assert "'max_lenght' was unexpected" in problems[0][1]


def test_a_broken_definition_fails_the_schema_at_its_place(base_schema):
    text = ("types:\n"
            "  task:\n"
            "    fields:\n"
            "      title: {kind: string, max_lenght: 80}\n"
            "      size: {kind: strng}\n"
            "      done: {kind: boolean, required: maybe}\n")
    document, _ = parse_yaml(text, "broken.yaml")
    problems = _problems(base_schema, document.data)
    assert ("types/task/fields/title", "Additional properties are not allowed ('max_lenght' was unexpected)") in problems
    assert any(path == "types/task/fields/size/kind" and "'strng' is not one of" in message
               for path, message in problems)
    assert ("types/task/fields/done/required", "'maybe' is not of type 'boolean'") in problems
    assert len(problems) == 3


# -- docs/definitions.md and the schema say the same -------------------------------------------
# The reference's tables name the kinds and their options; the descriptions live in the
# schema only. Both directions are checked, so neither can gain a name the other lacks.

def _kinds_table() -> dict[str, set[str]]:
    table = DOCS.split("| kind | holds | options |", 1)[1].split("\n\n", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        kind, _, options = (cell.strip() for cell in line.strip("|").split("|"))
        # An option is a backticked name outside parentheses: `values` (required), `colors` (...)
        outside = re.sub(r"\([^()]*(\([^()]*\)[^()]*)*\)", "", options)
        rows[kind.strip("`")] = set(re.findall(r"`([a-z_]+)`", outside))
    return rows


def test_the_kinds_table_of_the_docs_names_every_kind_and_option_of_the_schema():
    table = _kinds_table()
    assert set(table) == set(KIND_OPTIONS)
    for kind, options in KIND_OPTIONS.items():
        assert table[kind] == set(options), kind


def test_the_top_level_example_of_the_docs_names_every_section_of_the_schema(base_schema):
    example = DOCS.split("## Top level", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    written = set(re.findall(r"^([a-z_]+):", example, flags=re.MULTILINE))
    assert written == set(base_schema["properties"])
