"""Merging definitions: the files of one folder into one document, then overlay files over
it by the rules of docs/overlays.md. Positions follow the merged values, so a
problem in a value an overlay set is reported in the overlay's file."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import DefinitionError, hint_for
from .sourcemap import Append, DocPath, Document, Position, Remove, Replace, SourceMap, describe_path, format_path

# What one entry of each top-level section is called in a sentence.
SECTION_ENTRIES = {"types": "type", "views": "view", "roles": "role", "settings": "setting"}


def merge_folder(documents: Sequence[Document]) -> tuple[Document, list[DefinitionError]]:
    """One document from the files of a base folder, taken in the order given.

    Each top-level section is the union of its entries over the files; an entry (a type, a
    view, a role, a setting) given by two files is an error naming both places."""
    errors: list[DefinitionError] = []
    first_file = documents[0].file if documents else "definitions"
    data: dict[str, Any] = {}
    positions = SourceMap(Position(first_file, 1, 1))
    for document in documents:
        if not isinstance(document.data, dict):
            continue
        for section, value in document.data.items():
            where = document.positions.children[section]
            if section not in data or data[section] is None:
                data[section], positions.children[section] = value, where
                continue
            if value is None:   # an empty section (everything in it commented out)
                continue
            existing = data[section]
            if not (isinstance(existing, dict) and isinstance(value, dict)):
                first = positions.children[section].key_at
                errors.append(_error(where.key_at or where.at, (section,),
                                     f"`{section}` is also given at {first}; give it in one file only"))
                continue
            merged, merged_positions = dict(existing), positions.children[section].copy()
            entry = SECTION_ENTRIES.get(section, "entry")
            for name, item in value.items():
                item_where = where.children[name]
                if name in merged:
                    first = merged_positions.children[name].key_at
                    errors.append(_error(
                        item_where.key_at or item_where.at, (section, name),
                        f"{entry} `{name}` is defined twice: here and at {first}",
                        "define it in one file; to change it for one customer, use an overlay folder"))
                    continue
                merged[name], merged_positions.children[name] = item, item_where
            data[section], positions.children[section] = merged, merged_positions
    return Document(data, positions), errors


def apply_overlay(base: Document, overlay: Document) -> tuple[Document, list[DefinitionError]]:
    """The base document with one overlay file merged over it; neither input is changed."""
    merger = _Merger()
    data = overlay.data if overlay.data is not None else {}
    if not isinstance(base.data, dict) or not isinstance(data, dict):
        return base, merger.errors
    merged, positions = merger.maps(base.data, base.positions, data, overlay.positions, ())
    return Document(merged, positions), merger.errors


def _error(at: Position, path: DocPath, message: str, hint: str | None = None) -> DefinitionError:
    return DefinitionError(at.file, at.line, at.column, format_path(path), message, hint)


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return "a single value" if value is not None else "empty"


class _Merger:
    """Applies one overlay; collects every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[DefinitionError] = []

    def error(self, at: Position, path: DocPath, message: str, hint: str | None = None) -> None:
        self.errors.append(_error(at, path, message, hint))

    def maps(self, base: dict, base_positions: SourceMap, overlay: dict, overlay_positions: SourceMap,
             path: DocPath) -> tuple[dict, SourceMap]:
        """Rule 1: maps merge key by key; `!remove` deletes a key the base has."""
        result, positions = dict(base), base_positions.copy()
        for key, value in overlay.items():
            where = overlay_positions.children[key]
            here = path + (key,)
            if isinstance(value, Remove):
                if key in result:
                    del result[key]
                    positions.children.pop(key, None)
                else:
                    self.error(where.key_at or where.at, here,
                               f"`{key}` cannot be removed: there is no `{key}` in {describe_path(path)}",
                               hint_for(key, result))
            elif key in result:
                result[key], positions.children[key] = self.value(
                    result[key], positions.children.get(key) or where, value, where, here)
            elif isinstance(value, Append):
                self.error(where.at, here,
                           f"`!append` adds to an existing list, but there is no `{key}` in {describe_path(path)}",
                           hint_for(key, result))
            else:
                result[key], positions.children[key] = self.fresh(value, where, here)
        return result, positions

    def value(self, base: Any, base_positions: SourceMap, overlay: Any, overlay_positions: SourceMap,
              path: DocPath) -> tuple[Any, SourceMap]:
        if isinstance(overlay, Append):
            # Rule 4: items are added at the end; the list keeps its place in the base.
            if not isinstance(base, list):
                self.error(overlay_positions.at, path,
                           f"`!append` adds to a list, but `{path[-1]}` is {_shape(base)} here")
                return base, base_positions
            positions = base_positions.copy()
            items = list(base)
            self.items(overlay.items, overlay_positions, path, items, positions)
            return items, positions
        if isinstance(overlay, Replace):
            # Rule 5: the whole map is the overlay's.
            return self.fresh(overlay.mapping, overlay_positions, path)
        if isinstance(overlay, dict) and isinstance(base, dict):
            return self.maps(base, base_positions, overlay, overlay_positions, path)
        # Rule 2: scalars and lists replace; so does a map given where the base has no map.
        return self.fresh(overlay, overlay_positions, path)

    def fresh(self, value: Any, positions: SourceMap, path: DocPath) -> tuple[Any, SourceMap]:
        """A value the base does not have; overlay tags inside it have nothing to act on."""
        if isinstance(value, Replace):
            value = value.mapping
        if isinstance(value, dict):
            return self.maps({}, SourceMap(positions.at, positions.key_at), value, positions, path)
        if isinstance(value, list):
            items: list = []
            item_positions = SourceMap(positions.at, positions.key_at)
            self.items(value, positions, path, items, item_positions)
            return items, item_positions
        if isinstance(value, (Remove, Append)):
            tag = "!remove" if isinstance(value, Remove) else "!append"
            self.error(positions.at, path, f"`{tag}` has nothing to act on here")
            return None, positions
        return value, positions

    def items(self, values: list, positions: SourceMap, path: DocPath, into: list, into_positions: SourceMap) -> None:
        """Add overlay list items at the end of `into`; list items cannot carry overlay tags."""
        for index, item in enumerate(values):
            where = positions.children[index]
            if isinstance(item, (Remove, Append)):
                tag = "!remove" if isinstance(item, Remove) else "!append"
                self.error(where.at, path + (len(into),),
                           f"`{tag}` inside a list has nothing to act on; to change a list, "
                           "give the whole new list, or `!append` the new items to it")
                continue
            value, into_positions.children[len(into)] = self.fresh(item, where, path + (len(into),))
            into.append(value)
