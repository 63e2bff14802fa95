"""The JSON Schema (Draft 2020-12) every merged definitions document must satisfy, and the
translation of its violations into located sentences a consultant can act on.

Cross-references (a field a view names, the type a ref points at) are checked afterwards by
`definitions.py`; this schema only says what shape each part has."""
from __future__ import annotations

import copy
import re
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from .errors import DefinitionError, hint_for
from .fields import KINDS
from .sourcemap import DocPath, SourceMap, describe_path, format_path

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"

# Kinds a computed field may produce: the ones that need no options of their own.
RESULT_KINDS = ("string", "text", "integer", "decimal", "money", "boolean", "date", "datetime",
                "duration", "user")
INDEX_KINDS = ("field", "range", "keyword", "text")
AGGREGATE_FUNCTIONS = ("sum", "count", "min", "max")

# Besides the standard keywords, the schema carries three annotations for the sentences:
#   x-noun    what a value at this place is ("a list of column names"),
#   x-member  what a key of this map is ("a setting of a view"),
#   description  what a required key gives, after "needs `to`: ".


def _name(noun: str = "a name") -> dict:
    return {"type": "string", **_name_pattern(noun)}


def _name_pattern(noun: str) -> dict:
    # Without `type`: for the `else` of an if/then whose `type` is checked beside it.
    return {"pattern": NAME_PATTERN,
            "x-noun": f"{noun} in lower_snake_case (letters a-z, digits and `_`, starting with a letter)"}


def _names(noun: str, item: str) -> dict:
    return {"type": "array", "items": _name(item), "uniqueItems": True, "x-noun": noun}


_LABEL = {
    "type": ["string", "object"],
    "x-noun": "a label: a text or a map of languages such as {en: Task, fr: Tâche}",
    "if": {"type": "object"},
    "then": {
        "x-noun": "a label: a map with at least one language, such as {en: Task}",
        "minProperties": 1,
        "propertyNames": {"pattern": LANGUAGE_PATTERN, "x-noun": "a language code such as `en` or `pt-BR`"},
        "additionalProperties": {"type": "string", "x-noun": "the text of a label"},
    },
}
_FILTER = {"type": "object", "x-noun": "a filter: a map such as {status: open}"}
_WHOLE = {"type": "integer", "minimum": 1, "x-noun": "a whole number"}
_PLACES = {"type": "integer", "minimum": 0, "maximum": 12, "x-noun": "a number of decimal places"}
_NUMBER = {"type": ["number", "string"], "x-noun": "a number"}
_DURATION = {"type": ["string", "number"], "x-noun": "a duration such as 1h30 or 45m"}

_ENUM_VALUE = {
    "type": ["string", "object"],
    "minLength": 1,
    "x-noun": "a value: a word or a one-key map from the word to its label, such as {high: {en: High}}",
    "if": {"type": "object"},
    "then": {"minProperties": 1, "maxProperties": 1, "additionalProperties": _LABEL,
             "x-noun": "a one-key map from a value to its label, such as {high: {en: High}}"},
}

_AGGREGATE = {
    "type": "object",
    "x-noun": "an aggregate: {function: sum, of: <type>, via: <ref field>, field: <field>}",
    "x-member": "a setting of an aggregate",
    "required": ["function", "of", "via"],
    "properties": {
        "function": {"enum": list(AGGREGATE_FUNCTIONS), "x-noun": "an aggregate function",
                     "description": f"what to compute: {', '.join(AGGREGATE_FUNCTIONS)}"},
        "of": _name("a type name") | {"description": "the type of the related records"},
        "via": _name("a field name") | {"description": "the ref field of those records that points at this one"},
        "field": _name("a field name") | {"description": "the field of those records to compute over"},
        "where": _FILTER,
        "disclosed_to": {"type": "array", "items": _name("a role name"), "uniqueItems": True,
                         "x-noun": "a list of role names",
                         "description": "roles that may read this total though they may not read every record it "
                                        "adds up (a decision the definitions make, see the access checks)"},
    },
    "additionalProperties": False,
}

# Records of another type offered as links while a person types the field (found by their
# text index among those the person may read): articles that may answer a question.
_SUGGEST = {"type": "object", "x-noun": "a suggestion: {type: <type with a text index>, filter: {...}}",
            "x-member": "a setting of a suggestion (type, filter)", "required": ["type"],
            "properties": {"type": _name("a type name") | {"description": "the type of the records suggested"},
                           "filter": _FILTER},
            "additionalProperties": False}
# People who may add or remove themselves on a `users` field from the record's page (to
# follow it), and the words of the two buttons.
_JOIN = {"type": "object", "x-noun": "who may add themselves: {roles: [...], label: ..., leave_label: ...}",
         "x-member": "a setting of join (roles, label, leave_label)", "required": ["roles"],
         "properties": {"roles": {"type": "array", "minItems": 1, "items": _name("a role name"),
                                  "x-noun": "a list of roles", "description": "the roles that may add themselves"},
                        "label": _LABEL, "leave_label": _LABEL},
         "additionalProperties": False}
# Whom a user field or input offers while a name is typed (accounts with one of `roles`),
# and a figure beside each: how many records of a type they hold (the open ones they work on).
OFFER = {"type": "object", "x-noun": "an offer: {roles: [...], count: {type, field, where, label}}",
         "x-member": "a setting of offer (roles, count)",
         "properties": {"roles": {"type": "array", "minItems": 1, "items": _name("a role name"),
                                  "x-noun": "a list of roles", "description": "the roles of the people offered"},
                        "count": {"type": "object", "required": ["type", "field"],
                                  "x-noun": "a count: {type: <type>, field: <its user field>, where: {...}, label: ...}",
                                  "x-member": "a setting of count (type, field, where, label)",
                                  "properties": {"type": _name("a type name"), "field": _name("a field name"),
                                                 "where": _FILTER, "label": _LABEL},
                                  "additionalProperties": False}},
         "additionalProperties": False}
# Records of another type whose text a person inserts into a text field while writing an
# entry on a record (reply templates), their placeholders filled from that record.
_SNIPPETS = {"type": "object",
             "x-noun": "snippets: {type: <type>, via: <ref field>, text: <text field of that type>, where: {...}}",
             "x-member": "a setting of snippets (type, via, text, copy, where)", "required": ["type", "via", "text"],
             "properties": {"type": _name("a type name") | {"description": "the type whose records are inserted"},
                            "via": _name("a ref field") | {"description": "the ref to the record the entry is written on"},
                            "text": _name("a field name") | {"description": "the field of that type holding the text"},
                            "copy": {"type": "object", "x-noun": "a map from a field of the entry to a field of "
                                                                 "the snippet, such as {visibility: visibility}",
                                     "additionalProperties": _name("a field name")},
                            "where": _FILTER},
             "additionalProperties": False}
# The colours a badge may take (an enum's `colors`), and a record page's layout.
COLORS = ("red", "orange", "amber", "green", "teal", "blue", "purple", "grey")
_PAGE = {"type": "object", "x-noun": "a page layout: {badges: [...], main: [...], panel: [{label, fields}]}",
         "x-member": "a setting of a page (badges, main, panel)",
         "properties": {"badges": {"type": "array", "items": _name("a field name"), "x-noun": "a list of enum fields"},
                        "main": {"type": "array", "items": _name("a field name"), "x-noun": "a list of field names"},
                        "panel": {"type": "array", "x-noun": "a list of sections such as [{label: People, fields: [...]}]",
                                  "items": {"type": "object", "required": ["fields"],
                                            "x-noun": "a section: {label: ..., fields: [...]}",
                                            "x-member": "a setting of a section (label, fields)",
                                            "properties": {"label": _LABEL,
                                                           "fields": {"type": "array", "items": _name("a field name"),
                                                                      "x-noun": "a list of field names"}},
                                            "additionalProperties": False}}},
         "additionalProperties": False}
_COLORS = {"type": "object", "x-noun": "a map from a value to a colour, such as {urgent: red}",
           "additionalProperties": {"enum": list(COLORS), "x-noun": "a colour"}}
_COPY_PATH = {"type": "string", "pattern": r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
              "x-noun": "a path such as project.owner"}
# Options every field may have, then the options of each kind (docs/definitions.md §Fields).
COMMON_OPTIONS: dict[str, dict] = {
    "kind": {},
    "label": _LABEL,
    "help": _LABEL,
    "required": {"type": "boolean", "x-noun": "true or false"},
    # A filter on the record: the field is required, or offered in forms, only when it matches.
    "required_when": {"type": "object", "x-noun": "a filter on the record such as {kind: incident}"},
    "shown_when": {"type": "object", "x-noun": "a filter on the record such as {kind: incident}"},
    "default": {},
    "renamed_from": _name("a field name"),
    # Kept equal to a field of the record a ref points at (`project.owner`): set by the
    # engine when the record is made or the ref changes, never typed.
    "copied_from": {"anyOf": [_COPY_PATH, {"type": "array", "minItems": 1, "items": _COPY_PATH}],
                    "x-noun": "a path such as project.owner (a ref of the type, then a field of its target), "
                              "or a list of them: the first that gives a value"},
    "suggest": _SUGGEST,          # string and text fields only (checked when compiled)
}
KIND_OPTIONS: dict[str, dict[str, dict]] = {
    "string": {"max_length": _WHOLE, "pattern": {"type": "string", "x-noun": "a regular expression"}},
    "text": {"max_length": _WHOLE, "snippets": _SNIPPETS,
             # How pages show it: as typed (plain), or as CommonMark (markdown), cleaned.
             "format": {"enum": ["plain", "markdown"], "x-noun": "plain or markdown"}},
    "integer": {"minimum": {"type": "integer", "x-noun": "a whole number"},
                "maximum": {"type": "integer", "x-noun": "a whole number"}},
    "decimal": {"places": _PLACES, "minimum": _NUMBER, "maximum": _NUMBER},
    "money": {"currency": {"type": "string", "pattern": "^[A-Z]{3}$", "x-noun": "a currency code such as EUR"},
              "places": _PLACES, "minimum": _NUMBER, "maximum": _NUMBER},
    "boolean": {},
    "date": {},
    "datetime": {},
    "duration": {"minimum": _DURATION, "maximum": _DURATION},
    "enum": {"values": {"type": "array", "minItems": 1, "items": _ENUM_VALUE, "x-noun": "a list of values",
                        "description": "the list of its values"},
             "colors": _COLORS},
    "ref": {"to": _name("a type name") | {"description": "the type it refers to"}, "where": _FILTER},
    "refs": {"to": _name("a type name") | {"description": "the type it refers to"}, "where": _FILTER},
    "tags": {},
    "user": {"offer": OFFER},
    "users": {"join": _JOIN},
    "attachments": {"max_size": _WHOLE | {"x-noun": "a number of bytes"},
                    "accept": {"type": "array", "items": {"type": "string", "x-noun": "a content type or extension"},
                               "x-noun": "a list of content types and extensions such as [image/*, .pdf]"}},
    "computed": {"result": {"enum": list(RESULT_KINDS), "x-noun": "a kind a computed field can produce",
                            "description": "the kind of value it computes, such as integer or money"},
                 "expression": {"type": "string", "x-noun": "an expression"},
                 "aggregate": _AGGREGATE},
    "sequence": {"format": {"type": "string", "pattern": r"\{seq(:[0-9]*d)?\}",
                            "x-noun": "a number format with {seq}, such as \"INV-{year}-{seq:05d}\""},
                 "per": {"enum": ["year"], "x-noun": "`year` (counted again each year)"},
                 "assigned_when": _FILTER},
}
# Options kept on the field rather than its kind: they bear on pages, not on stored values.
FIELD_LEVEL_OPTIONS = MappingProxyType({"user": frozenset({"offer"}), "users": frozenset({"join"}),
                                        "text": frozenset({"snippets", "format"}),
                                        "enum": frozenset({"colors"})})   # by kind: a sequence's `format` is its own
REQUIRED_OPTIONS = {"enum": ["values"], "ref": ["to"], "refs": ["to"], "computed": ["result"]}


def _field_schema() -> dict:
    # One `if kind == k then …` per kind: an unknown option is then reported once, against
    # the options of the kind actually written, instead of once per kind as oneOf would.
    return {
        "type": "object",
        "x-noun": "a field: a map with `kind` and its settings, such as {kind: string}",
        "required": ["kind"],
        "properties": {"kind": {"enum": list(KINDS), "x-noun": "a kind of field",
                                "description": "what it holds, such as string, enum or ref"}},
        "allOf": [
            {"if": {"type": "object", "required": ["kind"], "properties": {"kind": {"const": kind}}},
             "then": {"properties": {**COMMON_OPTIONS, **options},
                      "required": REQUIRED_OPTIONS.get(kind, []),
                      "additionalProperties": False,
                      "x-member": f"a setting of a field of kind {kind}"}}
            for kind, options in KIND_OPTIONS.items()
        ],
    }


_INDEX_ENTRY = {
    "type": ["string", "object"],
    "x-noun": "an index entry: a field name or a one-key map such as {range: due_date}",
    "if": {"type": "object"},
    "then": {
        "x-noun": "a one-key map such as {range: due_date}",
        "minProperties": 1,
        "maxProperties": 1,
        "propertyNames": {"enum": list(INDEX_KINDS), "x-noun": "a kind of index"},
        "properties": {
            "field": _name("a field name"),
            "range": _name("a field name"),
            "keyword": _name("a field name"),
            "text": {"type": ["string", "array"], "x-noun": "a field name or a list of field names",
                     "if": {"type": "array"},
                     "then": {"minItems": 1, "items": _name("a field name"), "x-noun": "a list of field names"},
                     "else": _name_pattern("a field name")},
        },
    },
    "else": _name_pattern("a field name"),
}

_PAIR = {"type": "array", "minItems": 2, "maxItems": 2, "items": _name("a field name"),
         "x-noun": "two field names: [start, end]"}
_NO_OVERLAP = {
    "type": "object",
    "x-noun": "a no_overlap constraint: {type, match, period, during}",
    "x-member": "a setting of no_overlap (type, match, period, during, where, message)",
    "required": ["type", "match", "period", "during"],
    "properties": {
        "type": _name("a type name") | {"description": "the type of the records that must not overlap"},
        "match": {"type": "object", "minProperties": 1, "x-noun": "a map from their field to ours: {operator: technician}",
                  "additionalProperties": _name("a field name"), "description": "which of them concern this record"},
        "period": _PAIR | {"description": "their start and end fields"},
        "during": _PAIR | {"description": "this record's start and end fields"},
        "where": _FILTER,
        "message": _LABEL,
    },
    "additionalProperties": False,
}
# Two fields of a record that come in order, such as a start and an end: the second, when
# both are set, is not before the first.
_ORDERED = {"type": "object", "x-noun": "an ordered constraint: {fields: [starts, ends], message: ...}",
            "x-member": "a setting of ordered (fields, message)", "required": ["fields"],
            "properties": {"fields": _PAIR | {"description": "the field that comes first, then the one after it"},
                           "message": _LABEL},
            "additionalProperties": False}
_SUMMARY = {
    "type": "object",
    "x-noun": "a summary: {of: <type>, via: <ref field>, by: <field>}",
    "x-member": "a setting of a summary (of, via, by, filter, limit, label)",
    "required": ["of", "via", "by"],
    "properties": {
        "of": _name("a type name") | {"description": "the type of the related records counted"},
        "via": _name("a field name") | {"description": "their ref field that points at this record"},
        "by": _name("a field name") | {"description": "the indexed field whose values are counted"},
        "filter": _FILTER,
        "limit": _WHOLE,
        "label": _LABEL,
    },
    "additionalProperties": False,
}

_TYPE = {
    "type": "object",
    "x-noun": "a type: a map with its label, fields and indexes",
    "x-member": "a setting of a type",
    "required": ["fields"],
    "properties": {
        "label": _LABEL,
        "plural": _LABEL,
        "number": {"type": "string", "x-noun": "a number format such as \"T-{seq:06d}\""},
        "title": _name("a field name"),
        "fields": {"type": "object", "x-noun": "a map of fields", "description": "its fields",
                   "propertyNames": _name("a field name"), "additionalProperties": _field_schema()},
        "index": {"type": "array", "x-noun": "a list of index entries", "items": _INDEX_ENTRY},
        # Writes refused because another record overlaps in time (a visit during an absence).
        "constraints": {"type": "array", "x-noun": "a list of constraints such as [{no_overlap: {...}}]",
                        "items": {"type": "object",
                                  "x-noun": "a constraint: {no_overlap: {...}} or {ordered: {...}}",
                                  "x-member": "a kind of constraint (no_overlap, ordered)",
                                  "minProperties": 1, "maxProperties": 1,
                                  "properties": {"no_overlap": _NO_OVERLAP, "ordered": _ORDERED},
                                  "additionalProperties": False}},
        # Counts of related records by a field's values, shown on each record's page.
        "summaries": {"type": "array", "x-noun": "a list of summaries such as [{of: task, via: project, by: kind}]",
                      "items": _SUMMARY},
        # How a record's page is laid out: badges in its header, fields above its
        # conversation, the side panel's sections.
        "page": _PAGE,
        # What a role's form asks when it makes a record, in order, and what it sets (`$me.…`
        # read from who fills it in): the rest takes its defaults and what access pins.
        "forms": {"type": "object", "x-noun": "forms by role, such as {customer: {fields: [title, description]}}",
                  "propertyNames": _name_pattern("a role name"),
                  "additionalProperties": {"type": "object", "required": ["fields"],
                                           "x-noun": "a form: {fields: [...], set: {...}}",
                                           "x-member": "a setting of a form (fields, set)",
                                           "properties": {"fields": {"type": "array", "minItems": 1,
                                                                     "items": _name("a field name"),
                                                                     "x-noun": "a list of field names"},
                                                          "set": {"type": "object", "x-noun": "a map of field "
                                                                  "values such as {requester: $me.person}"}},
                                           "additionalProperties": False}},
        # What a role reads of a record's history: the changes of these fields only (with the
        # actions that made them), never the engine's notes. Roles not named see what their
        # access shows.
        "history": {"type": "object", "x-noun": "history by role, such as {customer: {fields: [status, title]}}",
                    "propertyNames": _name_pattern("a role name"),
                    "additionalProperties": {"type": "object", "required": ["fields"],
                                             "x-noun": "what a role reads of the history: {fields: [...]}",
                                             "x-member": "a setting of a role's history (fields)",
                                             "properties": {"fields": {"type": "array", "items": _name("a field name"),
                                                                       "x-noun": "a list of field names"}},
                                             "additionalProperties": False}},
    },
    "additionalProperties": False,
}

_VIEW = {
    "type": "object",
    "x-noun": "a view: a map with its type, columns, filter and sort",
    "x-member": "a setting of a view",
    "required": ["type", "columns"],
    "properties": {
        "type": _name("a type name") | {"description": "the type of the records it lists"},
        "label": _LABEL,
        "columns": _names("a list of column names", "a field name") | {
            "minItems": 1, "description": "the fields it shows, such as [id, title]"},
        "filter": _FILTER,
        "sort": {"type": "array", "x-noun": "a list of field names",
                 "items": {"type": "string", "pattern": r"^-?[a-z][a-z0-9_]*$",
                           "x-noun": "a field name, with `-` in front to sort descending"}},
        "roles": _names("a list of role names", "a role name"),
        # Counted by this field's values on the dashboard, as a bar chart.
        # `{by: team, average: rating}`: the average of a number per value instead of a count.
        "chart": {"type": ["string", "object"], "x-noun": "a field name, or {by: <field>, average: <number field>}",
                  "description": "the indexed field whose values the dashboard counts",
                  "if": {"type": "object"},
                  "then": {"required": ["by", "average"], "x-member": "a setting of a chart (by, average)",
                           "properties": {"by": _name("a field name"), "average": _name("a field name")},
                           "additionalProperties": False},
                  "else": _name_pattern("a field name")},
        # Records created at once for the records ticked in the list (one time entry on several tasks).
        "bulk": {"type": "array", "x-noun": "a list such as [{create: work, via: task, split: duration}]",
                 "items": {"type": "object", "required": ["create", "via"],
                           "x-noun": "a bulk action: a map with create, via, split and label",
                           "x-member": "a setting of a bulk action (create, via, split, label)",
                           "properties": {"create": _name("a type name"), "via": _name("a field name"),
                                          "split": _name("a field name"), "label": _LABEL},
                           "additionalProperties": False}},
    },
    "additionalProperties": False,
}

_ROLE = {
    "type": ["object", "null"],
    "x-noun": "a role: a map such as {label: {en: Technician}}",
    "x-member": "a setting of a role",
    "properties": {"label": _LABEL,
                   # Given every right by the access layer, whatever its rules say.
                   "superuser": {"type": "boolean", "x-noun": "true or false"},
                   # People with only such roles get the portal's layout in the web interface.
                   "portal": {"type": "boolean", "x-noun": "true or false"},
                   # The role's side menu, in sections of views, and the views its home page shows.
                   "menu": {"type": "array", "x-noun": "a list of menu sections such as [{label: My work, views: [...]}]",
                            "items": {"type": "object", "required": ["views"],
                                      "x-noun": "a menu section: {label: ..., views: [...]}",
                                      "x-member": "a setting of a menu section (label, views)",
                                      "properties": {"label": _LABEL,
                                                     "views": _names("a list of view names", "a view name")},
                                      "additionalProperties": False}},
                   "home": _names("a list of view names", "a view name")},
    "additionalProperties": False,
}

_SETTINGS = {
    "type": ["object", "null"],
    "x-noun": "the settings: a map such as {timezone: Europe/Paris}",
    "x-member": "a setting",
    "properties": {
        "timezone": {"type": "string", "x-noun": "a time zone such as Europe/Paris"},
        "languages": {"type": "array", "minItems": 1, "uniqueItems": True, "x-noun": "a list of language codes",
                      "items": {"type": "string", "pattern": LANGUAGE_PATTERN,
                                "x-noun": "a language code such as `en` or `pt-BR`"}},
        # Where the application is reached, for links in messages: `base_url` + `/r/<number>`.
        "base_url": {"type": "string", "x-noun": "an address such as https://desk.example.org"},
        "mail": {"type": ["object", "null"], "x-noun": "the mail settings: a map such as {domain: example.org}",
                 "x-member": "a mail setting",
                 "properties": {"domain": {"type": "string", "x-noun": "the domain of Message-IDs"},
                                "from": {"type": "string", "x-noun": "an address such as desk@example.org"},
                                "reply_to": {"type": "string", "x-noun": "an address such as desk@example.org"}},
                 "additionalProperties": False},
    },
    "additionalProperties": False,
}


def build_schema() -> dict:
    """A fresh copy of the meta-schema, as a dict a later layer may extend."""
    def section(noun: str, item: str, entry: dict) -> dict:
        return {"type": ["object", "null"], "x-noun": noun, "propertyNames": _name(item),
                "additionalProperties": entry}

    return copy.deepcopy({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "x-noun": "a map with the sections settings, roles, types and views",
        "x-member": "a section of the definitions",
        "properties": {
            "settings": _SETTINGS,
            "roles": section("a map of roles", "a role name", _ROLE),
            "types": section("a map of types", "a type name", _TYPE),
            "views": section("a map of views", "a view name", _VIEW),
        },
        "additionalProperties": False,
    })


SCHEMA = build_schema()
_VALIDATOR = Draft202012Validator(SCHEMA)


def extended_schema(top: dict[str, dict], per_type: dict[str, dict]) -> dict:
    """The meta-schema with extra top-level sections and extra keys of a type, as declared
    by an upper layer's `Section`s."""
    schema = build_schema()
    schema["properties"].update(copy.deepcopy(top))
    schema["properties"]["types"]["additionalProperties"]["properties"].update(copy.deepcopy(per_type))
    return schema


def validate(document: Any, positions: SourceMap, schema: dict | None = None) -> list[DefinitionError]:
    """Every way the merged document breaks the meta-schema (or `schema`, an extended copy
    of it), each as a located sentence."""
    validator = _VALIDATOR if schema is None else Draft202012Validator(schema)
    sentences = [sentence for error in validator.iter_errors(document) for sentence in _sentences(error, document)]
    # A key whose name is wrong is reported once; what its value lacks would only repeat it.
    bad_names = {path for path, _, _, on_key in sentences if on_key}
    errors: list[DefinitionError] = []
    reported: set[tuple] = set()
    for path, message, hint, on_key in sentences:
        if (path, message) in reported or (not on_key and path in bad_names):
            continue
        reported.add((path, message))
        at = positions.locate_key(path) if on_key else positions.locate(path)
        errors.append(DefinitionError(at.file, at.line, at.column, format_path(path), message, hint))
    return errors


_TYPE_NOUNS = {"string": "a text", "integer": "a whole number", "number": "a number",
               "boolean": "true or false", "object": "a map", "array": "a list", "null": "nothing"}


def _got(value: Any) -> str:
    """How a wrong value is named in a sentence: `got a number (5)`."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a text (`{shown}`)"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a map" if value else "an empty map"
    return type(value).__name__


def _noun(schema: dict) -> str:
    if isinstance(schema, dict) and schema.get("x-noun"):
        return schema["x-noun"]
    kinds = schema.get("type", []) if isinstance(schema, dict) else []
    kinds = [kinds] if isinstance(kinds, str) else kinds
    return " or ".join(_TYPE_NOUNS.get(k, k) for k in kinds) or "something else"


def _suggest_name(text: str) -> str | None:
    snake = re.sub(r"[^a-z0-9]+", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", text).lower()).strip("_")
    if snake and snake[0].isdigit():
        return None
    return f"write it as `{snake}`" if snake and snake != text else None


def _sentences(error: ValidationError, document: Any) -> list[tuple[DocPath, str, str | None, bool]]:
    """(path, message, hint, located on the key?) for one schema violation."""
    path: DocPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    value = error.instance
    keyword = error.validator

    if "propertyNames" in error.absolute_schema_path:
        # The name of a key is at fault (`Task:` instead of `task:`); point at that key.
        where = path + (value,)
        if keyword == "enum":
            allowed = error.validator_value
            return [(where, f"`{value}` is not {_noun(schema)}; use one of {', '.join(allowed)}",
                     hint_for(value, allowed), True)]
        hint = _suggest_name(str(value))
        if schema.get("pattern") == LANGUAGE_PATTERN and _value_at(document, where) is None:
            hint = ("a comma inside {...} starts a new entry: put quotes around a label that contains "
                    "a comma, such as {en: \"Size (small, large)\"}")
        return [(where, f"`{value}` is not {_noun(schema)}", hint, True)]

    if keyword == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        member = schema.get("x-member", f"a setting of {describe_path(path)}")
        result = []
        for key in value:
            if key in allowed:
                continue
            hint = hint_for(key, allowed) or _belongs_to(key, path)
            result.append((path + (key,), f"`{key}` is not {member}", hint, True))
        return result

    if keyword == "required":
        result = []
        for key in error.validator_value:
            if isinstance(value, dict) and key not in value:
                what = schema.get("properties", {}).get(key, {}).get("description")
                message = f"{describe_path(path)} needs `{key}`" + (f": {what}" if what else "")
                result.append((path, message, None, True))
        return result

    if keyword == "type":
        return [(path, f"expected {_noun(schema)}, got {_got(value)}", None, False)]

    if keyword == "enum":
        allowed = [str(a) for a in error.validator_value]
        if not isinstance(value, str):
            return [(path, f"expected {_noun(schema)}, got {_got(value)}; use one of {', '.join(allowed)}",
                     None, False)]
        return [(path, f"`{value}` is not {_noun(schema)}; use one of {', '.join(allowed)}",
                 hint_for(value, allowed), False)]

    if keyword == "pattern":
        return [(path, f"`{value}` is not {_noun(schema)}", _suggest_name(str(value)), False)]

    if keyword in ("minItems", "minLength") and not value:
        return [(path, f"expected {_noun(schema)}, got {_got(value)}", None, False)]

    if keyword in ("minProperties", "maxProperties"):
        count = len(value)
        shape = "an empty map" if count == 0 else f"a map with {count} keys"
        return [(path, f"expected {_noun(schema)}, got {shape}", None, False)]

    if keyword == "uniqueItems":
        seen: list[Any] = []         # lists, not sets: the items may be maps or lists
        twice: list[Any] = []
        for item in value:
            (twice if item in seen and item not in twice else seen).append(item)
        named = ", ".join(f"`{item}`" for item in twice)
        return [(path, f"{named} appears more than once", "give each item once", False)]

    if keyword in ("minimum", "maximum"):
        side = "at least" if keyword == "minimum" else "at most"
        return [(path, f"must be {side} {error.validator_value}, got {value}", None, False)]

    return [(path, error.message, None, False)]


def _value_at(document: Any, path: DocPath) -> Any:
    for step in path:
        try:
            document = document[step]
        except (KeyError, IndexError, TypeError):
            return None
    return document


def _belongs_to(key: str, path: DocPath) -> str | None:
    """For an option written on a field of the wrong kind: the kinds it does belong to."""
    if len(path) != 4 or path[2] != "fields":
        return None
    kinds = [kind for kind, options in KIND_OPTIONS.items() if key in options]
    if not kinds:
        return None
    named = ", ".join(kinds[:-1]) + f" and {kinds[-1]}" if len(kinds) > 1 else kinds[0]
    return f"`{key}` is a setting of {named} fields"
