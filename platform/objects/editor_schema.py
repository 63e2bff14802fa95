"""The meta-schema as a file for editors: a YAML language server reads it to offer the
sections, settings and field options with their descriptions while a person types, and to
flag what `deskbase check` would refuse. Its overlay flavour fits an overlay's files."""
from __future__ import annotations

import copy
from typing import Any

# YAML language servers read JSON Schema draft-07. The meta-schema keeps to keywords whose
# meaning draft-07 and the engine's draft 2020-12 share, so the file declares draft-07
# without changing what it says (tests/objects/test_editor_schema.py holds it to them).
DRAFT = "http://json-schema.org/draft-07/schema#"
SHARED_KEYWORDS = frozenset({
    "$schema", "$id", "title", "description", "type", "enum", "const", "properties", "additionalProperties",
    "propertyNames", "required", "items", "minItems", "maxItems", "uniqueItems", "minProperties",
    "maxProperties", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "pattern", "allOf", "anyOf", "oneOf", "not", "if", "then", "else"})
# Keywords of our own, which validators ignore: the words of the engine's sentences, and
# the description of each value of an enum that editors show beside it.
OWN_KEYWORDS = frozenset({"x-noun", "x-member", "enumDescriptions"})

# Keywords whose value is data, not a schema: never walked into.
_DATA_KEYWORDS = frozenset({"enum", "const", "enumDescriptions", "default", "examples"})

# What an overlay may write wherever a key of the base may be: `!remove`, which an editor
# reads as an empty value. Written as if/else rather than anyOf, so that a mistake inside
# the value is still reported at its own place.
_REMOVED = {"enum": [None, ""]}
_REMOVED_WORDS = {"description": "`!remove`: the overlay deletes this key from the base"}


def editor_schema(schema: dict, *, overlay: bool = False) -> dict:
    """The meta-schema `schema` (the engine's, with every section) as an editor's file; with
    `overlay`, the flavour an overlay's files satisfy."""
    result = copy.deepcopy(schema)
    if overlay:
        result = _partial(result)
    flavour = "an overlay folder's files" if overlay else "a definitions folder's files"
    return {"$schema": DRAFT,
            "$id": f"urn:deskbase:{'overlay' if overlay else 'definitions'}",
            "title": f"Deskbase definitions ({'overlay' if overlay else 'base'})",
            "description": f"What {flavour} may hold: the sections, types, fields and their options that "
                           "`deskbase check` accepts. Names, paths and references are checked by `deskbase check`.",
            **{key: value for key, value in result.items() if key != "$schema"}}


def _partial(node: Any) -> Any:
    """An overlay names only what differs: nothing is required, and any key of a map may be
    `!remove`d. `!append [...]` is a list and `!replace {...}` a map, as the base has them."""
    if isinstance(node, list):
        return [_partial(item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "required":
            continue
        if key == "if" or key in _DATA_KEYWORDS:
            result[key] = value   # a condition reads what is written; data stays as it is
        elif key == "properties" and isinstance(value, dict):
            result[key] = {name: _removable(_partial(sub)) for name, sub in value.items()}
        elif key == "additionalProperties" and isinstance(value, dict):
            result[key] = _removable(_partial(value))
        else:
            result[key] = _partial(value)
    return result


def _removable(schema: dict) -> dict:
    wrapped: dict[str, Any] = {"if": _REMOVED, "then": _REMOVED_WORDS, "else": schema}
    if "description" in schema:
        wrapped = {"description": schema["description"], **wrapped}
    return wrapped
