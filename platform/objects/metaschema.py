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
#   description  what a key gives, for the reference, for editors (completion shows it,
#                `deskbase schema` writes it) and after "needs `to`: " when it is missing;
#                every property has one (tests/objects/test_editor_schema.py checks).


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

# What each kind of field holds, shown by editors beside the kind (docs/definitions.md §Fields).
KIND_DESCRIPTIONS = MappingProxyType({
    "string": "one line of text",
    "text": "long text, plain or markdown",
    "integer": "a whole number",
    "decimal": "an exact number with decimal places",
    "money": "an amount in a currency",
    "boolean": "yes or no",
    "date": "a day",
    "datetime": "a moment, stored in UTC",
    "duration": "a length of time, written 1h30, 45m or 1:30, stored in seconds",
    "enum": "one value of an ordered list; sorting follows the list",
    "ref": "one record of another type",
    "refs": "several records of another type",
    "tags": "several words",
    "user": "a user login (typed as a name too)",
    "users": "several user logins, each once, in the order given",
    "attachments": "files, kept as blobs",
    "computed": "a value the engine computes on every write: an expression or an aggregate",
    "sequence": "a number the engine gives once, without gaps, such as INV-2026-00042",
})

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
        "where": _FILTER | {"description": "a filter limiting the related records counted"},
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
                           "filter": _FILTER | {"description": "a filter limiting the records suggested"}},
            "additionalProperties": False}
# People who may add or remove themselves on a `users` field from the record's page (to
# follow it), and the words of the two buttons.
_JOIN = {"type": "object", "x-noun": "who may add themselves: {roles: [...], label: ..., leave_label: ...}",
         "x-member": "a setting of join (roles, label, leave_label)", "required": ["roles"],
         "properties": {"roles": {"type": "array", "minItems": 1, "items": _name("a role name"),
                                  "x-noun": "a list of roles", "description": "the roles that may add themselves"},
                        "label": _LABEL | {"description": "the words of the button that adds a person (Add me)"},
                        "leave_label": _LABEL | {"description": "the words of the button that takes a person "
                                                                "off (Remove me)"}},
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
                                  "description": "a figure beside each person: how many records of a type "
                                                 "they hold",
                                  "properties": {"type": _name("a type name") | {"description": "the type counted"},
                                                 "field": _name("a field name") | {
                                                     "description": "its indexed user field naming the person"},
                                                 "where": _FILTER | {"description": "a filter on the records "
                                                                                    "counted (the open ones)"},
                                                 "label": _LABEL | {"description": "the words after the "
                                                                                   "figure (open)"}},
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
                            "copy": {"type": "object",
                                     "description": "fields of the entry the snippet sets, from its own fields",
                                     "x-noun": "a map from a field of the entry to a field of "
                                                                 "the snippet, such as {visibility: visibility}",
                                     "additionalProperties": _name("a field name")},
                            "where": _FILTER | {"description": "a filter on the snippets offered; $record is the "
                                                               "record the entry is written on"}},
             "additionalProperties": False}
# The colours a badge may take (an enum's `colors`), and a record page's layout.
COLORS = ("red", "orange", "amber", "green", "teal", "blue", "purple", "grey")
_PAGE = {"type": "object", "x-noun": "a page layout: {badges: [...], main: [...], panel: [{label, fields}]}",
         "x-member": "a setting of a page (badges, main, panel, diagram)",
         "properties": {"badges": {"type": "array", "items": _name("a field name"), "x-noun": "a list of enum fields",
                                   "description": "enum fields shown in the header, in their colours"},
                        "main": {"type": "array", "items": _name("a field name"), "x-noun": "a list of field names",
                                 "description": "fields shown above the conversation"},
                        "panel": {"type": "array", "x-noun": "a list of sections such as [{label: People, fields: [...]}]",
                                  "description": "the sections of the side panel, in order",
                                  "items": {"type": "object", "required": ["fields"],
                                            "x-noun": "a section: {label: ..., fields: [...]}",
                                            "x-member": "a setting of a section (label, fields)",
                                            "properties": {"label": _LABEL | {"description": "the title of the section"},
                                                           "fields": {"type": "array", "items": _name("a field name"),
                                                                      "x-noun": "a list of field names",
                                                                      "description": "the fields it shows, in order"}},
                                            "additionalProperties": False}},
                        # The workflow's state diagram in a folded section, for people with one of `roles`.
                        "diagram": {"type": "object", "required": ["roles"],
                                    "x-noun": "a diagram: {roles: [...]}",
                                    "x-member": "a setting of a diagram (roles)",
                                    "description": "the workflow's state diagram, folded on the record's page, for "
                                                   "people with one of `roles`",
                                    "properties": {"roles": {"type": "array", "items": _name("a role name"),
                                                             "x-noun": "a list of role names",
                                                             "description": "the roles that see the diagram"}},
                                    "additionalProperties": False}},
         "additionalProperties": False}
_COLORS = {"type": "object", "x-noun": "a map from a value to a colour, such as {urgent: red}",
           "additionalProperties": {"enum": list(COLORS), "x-noun": "a colour"}}
_COPY_PATH = {"type": "string", "pattern": r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
              "x-noun": "a path such as project.owner"}
# Options every field may have, then the options of each kind (docs/definitions.md §Fields).
_KIND_WORDS = "what it holds, such as string, enum or ref"
COMMON_OPTIONS: dict[str, dict] = {
    "kind": {"description": _KIND_WORDS},
    "label": _LABEL | {"description": "what people read for the field, such as {en: Title, fr: Titre}"},
    "help": _LABEL | {"description": "a sentence forms show under the field"},
    "required": {"type": "boolean", "x-noun": "true or false",
                 "description": "whether every record must have a value (default false)"},
    # A filter on the record: the field is required, or offered in forms, only when it matches.
    "required_when": {"type": "object", "x-noun": "a filter on the record such as {kind: incident}",
                      "description": "a filter on the record: the field is required only for the records it matches"},
    "shown_when": {"type": "object", "x-noun": "a filter on the record such as {kind: incident}",
                   "description": "a filter on the record: forms offer the field only when it matches"},
    "default": {"description": "the value a new record gets: a value of the kind, or $now, $today, $me, "
                               "$me.person, $only_choice"},
    "renamed_from": _name("a field name") | {"description": "the field's former name: the next migration moves "
                                                           "its values here"},
    # Kept equal to a field of the record a ref points at (`project.owner`): set by the
    # engine when the record is made or the ref changes, never typed.
    "copied_from": {"anyOf": [_COPY_PATH, {"type": "array", "minItems": 1, "items": _COPY_PATH}],
                    "x-noun": "a path such as project.owner (a ref of the type, then a field of its target), "
                              "or a list of them: the first that gives a value",
                    "description": "a field of the record a ref points at that this field is kept equal to, "
                                   "such as project.owner; a list takes the first that gives a value"},
    "suggest": _SUGGEST | {"description": "records of another type offered as links while the field is typed "
                                          "(string and text fields)"},
}
KIND_OPTIONS: dict[str, dict[str, dict]] = {
    "string": {"max_length": _WHOLE | {"description": "the most characters it holds (default 255)"},
               "pattern": {"type": "string", "x-noun": "a regular expression",
                           "description": "a regular expression the whole value must match"}},
    "text": {"max_length": _WHOLE | {"description": "the most characters it holds"},
             "snippets": _SNIPPETS | {"description": "texts kept as records of another type that a writer inserts "
                                                     "(reply templates)"},
             # How pages show it: as typed (plain), or as CommonMark (markdown), cleaned.
             "format": {"enum": ["plain", "markdown"], "x-noun": "plain or markdown",
                        "description": "how pages show it: as typed (plain), or as CommonMark cleaned by an "
                                       "allow-list (markdown)"}},
    "integer": {"minimum": {"type": "integer", "x-noun": "a whole number", "description": "the smallest value allowed"},
                "maximum": {"type": "integer", "x-noun": "a whole number", "description": "the largest value allowed"}},
    "decimal": {"places": _PLACES | {"description": "the decimal places kept (default 2)"},
                "minimum": _NUMBER | {"description": "the smallest value allowed"},
                "maximum": _NUMBER | {"description": "the largest value allowed"}},
    "money": {"currency": {"type": "string", "pattern": "^[A-Z]{3}$", "x-noun": "a currency code such as EUR",
                           "description": "the currency code of the amounts (default EUR)"},
              "places": _PLACES | {"description": "the decimal places kept (default 2)"},
              "minimum": _NUMBER | {"description": "the smallest amount allowed"},
              "maximum": _NUMBER | {"description": "the largest amount allowed"}},
    "boolean": {},
    "date": {},
    "datetime": {},
    "duration": {"minimum": _DURATION | {"description": "the shortest duration allowed"},
                 "maximum": _DURATION | {"description": "the longest duration allowed"}},
    "enum": {"values": {"type": "array", "minItems": 1, "items": _ENUM_VALUE, "x-noun": "a list of values",
                        "description": "the list of its values"},
             "colors": _COLORS | {"description": "the colour of each value's badge, such as {urgent: red}"}},
    "ref": {"to": _name("a type name") | {"description": "the type it refers to"},
            "where": _FILTER | {"description": "a filter on the records offered; $record.<field> reads the record "
                                               "being edited"}},
    "refs": {"to": _name("a type name") | {"description": "the type it refers to"},
             "where": _FILTER | {"description": "a filter on the records offered; $record.<field> reads the record "
                                                "being edited"}},
    "tags": {},
    "user": {"offer": OFFER | {"description": "whom forms offer as a name is typed, with a figure beside each"}},
    "users": {"join": _JOIN | {"description": "who may add themselves to the list from the record's page, and the "
                                             "words of the buttons"}},
    "attachments": {"max_size": _WHOLE | {"x-noun": "a number of bytes",
                                          "description": "the largest file accepted, in bytes (default 20 MiB)"},
                    "accept": {"type": "array", "items": {"type": "string", "x-noun": "a content type or extension"},
                               "x-noun": "a list of content types and extensions such as [image/*, .pdf]",
                               "description": "the content types and extensions accepted, such as [image/*, .pdf]"}},
    "computed": {"result": {"enum": list(RESULT_KINDS), "x-noun": "a kind a computed field can produce",
                            "description": "the kind of value it computes, such as integer or money"},
                 "expression": {"type": "string", "x-noun": "an expression",
                                "description": "a Jinja2 expression over `record`, `now` and `today`, such as "
                                               "record.quantity * record.unit_price"},
                 "aggregate": _AGGREGATE | {"description": "a sum, count, minimum or maximum over the related "
                                                           "records of another type"}},
    "sequence": {"format": {"type": "string", "pattern": r"\{seq(:[0-9]*d)?\}",
                            "x-noun": "a number format with {seq}, such as \"INV-{year}-{seq:05d}\"",
                            "description": "how the number is written, with {seq} and {year}, such as "
                                           "INV-{year}-{seq:05d}"},
                 "per": {"enum": ["year"], "x-noun": "`year` (counted again each year)",
                         "description": "`year` to count again from 1 each year"},
                 "assigned_when": _FILTER | {"description": "a filter on the record: the number is given when it "
                                                            "first matches (at creation without it)"}},
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
                                "description": _KIND_WORDS,
                                "enumDescriptions": [KIND_DESCRIPTIONS[kind] for kind in KINDS]}},
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
            "field": _name("a field name") | {"description": "a field index on a field with one value"},
            "range": _name("a field name") | {"description": "a field index on a date or a number, named for "
                                                             "what it serves"},
            "keyword": _name("a field name") | {"description": "an index of each value of a field with several "
                                                               "values: refs, tags, users"},
            "text": {"type": ["string", "array"], "x-noun": "a field name or a list of field names",
                     "description": "the full-text index of the type over string and text fields (one per type)",
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
        "where": _FILTER | {"description": "a filter limiting the records that count"},
        "message": _LABEL | {"description": "the sentence a refused write shows"},
    },
    "additionalProperties": False,
}
# Two fields of a record that come in order, such as a start and an end: the second, when
# both are set, is not before the first.
_ORDERED = {"type": "object", "x-noun": "an ordered constraint: {fields: [starts, ends], message: ...}",
            "x-member": "a setting of ordered (fields, message)", "required": ["fields"],
            "properties": {"fields": _PAIR | {"description": "the field that comes first, then the one after it"},
                           "message": _LABEL | {"description": "the sentence a refused write shows"}},
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
        "filter": _FILTER | {"description": "a filter limiting the records counted"},
        "limit": _WHOLE | {"description": "the most values shown, the largest counts first"},
        "label": _LABEL | {"description": "the title of the summary on the page"},
    },
    "additionalProperties": False,
}

_TYPE = {
    "type": "object",
    "x-noun": "a type: a map with its label, fields and indexes",
    "x-member": "a setting of a type",
    "required": ["fields"],
    "properties": {
        "label": _LABEL | {"description": "what people call one record, such as {en: Task}"},
        "plural": _LABEL | {"description": "what people call several records, such as {en: Tasks}"},
        "number": {"type": "string", "x-noun": "a number format such as \"T-{seq:06d}\"",
                   "description": "how records are numbered, with {seq} once, such as T-{seq:06d}"},
        "title": _name("a field name") | {"description": "the field that names a record where it is referenced"},
        "fields": {"type": "object", "x-noun": "a map of fields", "description": "its fields",
                   "propertyNames": _name("a field name"), "additionalProperties": _field_schema()},
        "index": {"type": "array", "x-noun": "a list of index entries", "items": _INDEX_ENTRY,
                  "description": "the indexes that filters, sorts and searches use: a field name or "
                                 "{range: ...}, {keyword: ...}, {text: [...]}"},
        # Writes refused because another record overlaps in time (a visit during an absence).
        "constraints": {"type": "array", "x-noun": "a list of constraints such as [{no_overlap: {...}}]",
                        "description": "writes the engine refuses: periods that overlap, fields out of order",
                        "items": {"type": "object",
                                  "x-noun": "a constraint: {no_overlap: {...}} or {ordered: {...}}",
                                  "x-member": "a kind of constraint (no_overlap, ordered)",
                                  "minProperties": 1, "maxProperties": 1,
                                  "properties": {
                                      "no_overlap": _NO_OVERLAP | {
                                          "description": "refuses a record whose period meets the period of "
                                                         "another record that concerns it"},
                                      "ordered": _ORDERED | {"description": "refuses a second field set before "
                                                                            "the first (an end before its start)"}},
                                  "additionalProperties": False}},
        # Counts of related records by a field's values, shown on each record's page.
        "summaries": {"type": "array", "x-noun": "a list of summaries such as [{of: task, via: project, by: kind}]",
                      "description": "counts of related records by a field's values, shown on each record's "
                                     "page",
                      "items": _SUMMARY},
        # How a record's page is laid out: badges in its header, fields above its
        # conversation, the side panel's sections.
        "page": _PAGE | {"description": "how a record's page is laid out: badges, main fields, side panel"},
        # What a role's form asks when it makes a record, in order, and what it sets (`$me.…`
        # read from who fills it in): the rest takes its defaults and what access pins.
        "forms": {"type": "object", "x-noun": "forms by role, such as {customer: {fields: [title, description]}}",
                  "description": "what a role's form asks when it makes a record, and what it sets",
                  "propertyNames": _name_pattern("a role name"),
                  "additionalProperties": {"type": "object", "required": ["fields"],
                                           "x-noun": "a form: {fields: [...], set: {...}}",
                                           "x-member": "a setting of a form (fields, set)",
                                           "properties": {"fields": {"type": "array", "minItems": 1,
                                                                     "items": _name("a field name"),
                                                                     "x-noun": "a list of field names",
                                                                     "description": "the fields the form asks, "
                                                                                    "in order"},
                                                          "set": {"type": "object", "x-noun": "a map of field "
                                                                  "values such as {requester: $me.person}",
                                                                  "description": "values the form sets whatever "
                                                                                 "is sent, such as {requester: "
                                                                                 "$me.person}"}},
                                           "additionalProperties": False}},
        # What a role reads of a record's history: the changes of these fields only (with the
        # actions that made them), never the engine's notes. Roles not named see what their
        # access shows.
        "history": {"type": "object", "x-noun": "history by role, such as {customer: {fields: [status, title]}}",
                    "description": "what a role reads of a record's history: the changes of the fields named",
                    "propertyNames": _name_pattern("a role name"),
                    "additionalProperties": {"type": "object", "required": ["fields"],
                                             "x-noun": "what a role reads of the history: {fields: [...]}",
                                             "x-member": "a setting of a role's history (fields)",
                                             "properties": {"fields": {"type": "array", "items": _name("a field name"),
                                                                       "x-noun": "a list of field names",
                                                                       "description": "the fields whose changes "
                                                                                      "the role reads"}},
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
        "label": _LABEL | {"description": "the title of the list"},
        "columns": _names("a list of column names", "a field name") | {
            "minItems": 1, "description": "the fields it shows, such as [id, title]"},
        "filter": _FILTER | {"description": "which records it lists, such as {status: open}; $me is the reader"},
        "sort": {"type": "array", "x-noun": "a list of field names",
                 "description": "the order of its rows: field names, `-` in front for descending",
                 "items": {"type": "string", "pattern": r"^-?[a-z][a-z0-9_]*$",
                           "x-noun": "a field name, with `-` in front to sort descending"}},
        "roles": _names("a list of role names", "a role name") | {"description": "the roles it is offered to"},
        # Counted by this field's values on the dashboard, as a bar chart. As a map: per value
        # (`by`), per period of a date (`over`, `every`, `periods`) or both, the records counted
        # or the `sum` or `average` of a number field.
        "chart": {"type": ["string", "object"],
                  "x-noun": "a field name, or {by: <field>, over: <date field>, every: month, sum: <number field>}",
                  "description": "what the dashboard and the list's statistics count: per value of an indexed field, "
                                 "per period of a date, or both",
                  "if": {"type": "object"},
                  "then": {"x-member": "a setting of a chart (by, over, every, periods, sum, average, open_until)",
                           "properties": {"by": _name("a field name") | {"description": "the field whose values "
                                                                                        "make the bars"},
                                          "over": _name("a field name") | {
                                              "description": "the indexed date or datetime field whose periods "
                                                             "make the columns"},
                                          "every": {"enum": ["day", "week", "month", "quarter", "year"],
                                                    "x-noun": "day, week, month, quarter or year",
                                                    "description": "the length of a period (month by default)"},
                                          "periods": {"type": "integer", "minimum": 1, "maximum": 400,
                                                      "x-noun": "a number of periods from 1 to 400",
                                                      "description": "how many periods, the current one last "
                                                                     "(12 by default)"},
                                          "sum": _name("a field name") | {
                                              "description": "the number field added up (instead of counting)"},
                                          "open_until": _name("a field name") | {
                                              "description": "the date or datetime that ends a record: the chart "
                                                             "counts the records begun (`over`) and not yet ended "
                                                             "at the end of each period — a backlog"},
                                          "average": _name("a field name") | {
                                              "description": "the number field averaged per value"}},
                           "additionalProperties": False},
                  "else": _name_pattern("a field name")},
        # Records created at once for the records ticked in the list (one time entry on several tasks).
        "bulk": {"type": "array", "x-noun": "a list such as [{create: work, via: task, split: duration}]",
                 "description": "records created at once for the rows ticked in the list",
                 "items": {"type": "object", "required": ["create", "via"],
                           "x-noun": "a bulk action: a map with create, via, split and label",
                           "x-member": "a setting of a bulk action (create, via, split, label)",
                           "properties": {"create": _name("a type name") | {"description": "the type of the records "
                                                                                           "created"},
                                          "via": _name("a field name") | {"description": "their ref to each ticked "
                                                                                      "record"},
                                          "split": _name("a field name") | {
                                              "description": "a number or duration field whose value is shared "
                                                             "among the records"},
                                          "label": _LABEL | {"description": "the words of the button"}},
                           "additionalProperties": False}},
    },
    "additionalProperties": False,
}

_ROLE = {
    "type": ["object", "null"],
    "x-noun": "a role: a map such as {label: {en: Technician}}",
    "x-member": "a setting of a role",
    "properties": {"label": _LABEL | {"description": "what people call the role, such as {en: Technician}"},
                   # Given every right by the access layer, whatever its rules say.
                   "superuser": {"type": "boolean", "x-noun": "true or false",
                                 "description": "true: the role may do everything, whatever the access rules say"},
                   # People with only such roles get the portal's layout in the web interface.
                   "portal": {"type": "boolean", "x-noun": "true or false",
                              "description": "true: people with only such roles get the portal's layout"},
                   # The role's side menu, in sections of views, and the views its home page shows.
                   "menu": {"type": "array", "x-noun": "a list of menu sections such as [{label: My work, views: [...]}]",
                            "description": "the role's side menu, in sections of views",
                            "items": {"type": "object", "required": ["views"],
                                      "x-noun": "a menu section: {label: ..., views: [...]}",
                                      "x-member": "a setting of a menu section (label, views)",
                                      "properties": {"label": _LABEL | {"description": "the title of the section"},
                                                     "views": _names("a list of view names", "a view name") | {
                                                         "description": "the views the section lists, in order"}},
                                      "additionalProperties": False}},
                   "home": _names("a list of view names", "a view name") | {
                       "description": "the views the role's home page counts and charts, in order"}},
    "additionalProperties": False,
}

_SETTINGS = {
    "type": ["object", "null"],
    "x-noun": "the settings: a map such as {timezone: Europe/Paris}",
    "x-member": "a setting",
    "properties": {
        "timezone": {"type": "string", "x-noun": "a time zone such as Europe/Paris",
                     "description": "the zone times without offset are read in, such as Europe/Paris (default UTC)"},
        "languages": {"type": "array", "minItems": 1, "uniqueItems": True, "x-noun": "a list of language codes",
                      "description": "the languages of the application; the first is the default",
                      "items": {"type": "string", "pattern": LANGUAGE_PATTERN,
                                "x-noun": "a language code such as `en` or `pt-BR`"}},
        # Where the application is reached, for links in messages: `base_url` + `/r/<number>`.
        "base_url": {"type": "string", "x-noun": "an address such as https://desk.example.org",
                     "description": "where the application is reached, for links in messages"},
        "mail": {"type": ["object", "null"], "x-noun": "the mail settings: a map such as {domain: example.org}",
                 "description": "the addresses of the messages sent",
                 "x-member": "a mail setting",
                 "properties": {"domain": {"type": "string", "x-noun": "the domain of Message-IDs",
                                           "description": "the domain of the messages' Message-IDs"},
                                "from": {"type": "string", "x-noun": "an address such as desk@example.org",
                                         "description": "the sender of the messages"},
                                "reply_to": {"type": "string", "x-noun": "an address such as desk@example.org",
                                             "description": "where answers to the messages go"}},
                 "additionalProperties": False},
        # Who the documents come from (their header, the seller they name): name, address, VAT
        # number, bank account… as texts, shown by the templates that name them.
        "issuer": {"type": ["object", "null"], "x-noun": "a map of texts such as {name: …, address: …, vat_number: …}",
                   "description": "who issues the documents: name, address, VAT number, bank account, as texts",
                   "x-member": "a line of the issuer (name, address, vat_number, iban, …)",
                   "additionalProperties": {"type": "string", "x-noun": "a text"}},
    },
    "additionalProperties": False,
}


def build_schema() -> dict:
    """A fresh copy of the meta-schema, as a dict a later layer may extend."""
    def section(noun: str, item: str, entry: dict, description: str) -> dict:
        return {"type": ["object", "null"], "x-noun": noun, "propertyNames": _name(item),
                "additionalProperties": entry, "description": description}

    return copy.deepcopy({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "x-noun": "a map with the sections settings, roles, types and views",
        "x-member": "a section of the definitions",
        "properties": {
            "settings": _SETTINGS | {"description": "the time zone, languages, address and mail of the application"},
            "roles": section("a map of roles", "a role name", _ROLE,
                             "the roles that views and access rules name, by name"),
            "types": section("a map of types", "a type name", _TYPE, "the types of records, by name"),
            "views": section("a map of views", "a view name", _VIEW, "the lists people are offered, by name"),
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
