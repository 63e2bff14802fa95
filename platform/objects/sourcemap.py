"""Reading YAML definitions files while remembering where every value was written, so that
any problem found later can be reported as `file:line:column`. Also reads the overlay tags
`!remove`, `!append` and `!replace`, which only an overlay folder may use."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from .errors import DefinitionError

Step = str | int
DocPath = tuple[Step, ...]


class Position(NamedTuple):
    """A place in a file, 1-based like editors count."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SourceMap:
    """Where each part of a document was written: a tree shaped like the document, each node
    holding the position of its value and of the key that names it."""

    __slots__ = ("at", "key_at", "children")

    def __init__(self, at: Position, key_at: Position | None = None,
                 children: dict[Step, SourceMap] | None = None):
        self.at = at
        self.key_at = key_at
        self.children: dict[Step, SourceMap] = children if children is not None else {}

    def child(self, step: Step) -> SourceMap | None:
        """The positions of one key or item, if it was written."""
        return self.children.get(step)

    def copy(self) -> SourceMap:
        """A node sharing its subtrees, so that its own children can be changed."""
        return SourceMap(self.at, self.key_at, dict(self.children))

    def locate(self, path: Iterable[Step]) -> Position:
        """The position of the value at `path`, or of its nearest known ancestor."""
        node, at = self, self.at
        for step in path:
            child = node.children.get(step)
            if child is None:
                break
            node, at = child, child.at
        return at

    def locate_key(self, path: Iterable[Step]) -> Position:
        """The position of the key naming the value at `path` (where a person looks for it)."""
        node = self
        for step in path:
            found = node.children.get(step)
            if found is None:
                return node.at
            node = found
        return node.key_at or node.at


@dataclass
class Document:
    """A value read from YAML together with the positions of its parts."""

    data: Any
    positions: SourceMap

    @property
    def file(self) -> str:
        return self.positions.at.file


# Overlay tags. They only say how to merge; none survives into a merged document.

@dataclass(frozen=True)
class Remove:
    """`!remove`: delete this key from the definitions being overlaid."""


@dataclass(frozen=True)
class Append:
    """`!append [...]`: add these items at the end of the overlaid list."""

    items: list = field(default_factory=list)


@dataclass(frozen=True)
class Replace:
    """`!replace {...}`: use this map instead of merging it into the overlaid one."""

    mapping: dict = field(default_factory=dict)


OVERLAY_TAGS = ("!remove", "!append", "!replace")


def format_path(path: Iterable[Step]) -> str:
    """`types.task.index[1].range` for a path tuple."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


_PATH_STEP = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def parse_path(text: str) -> DocPath:
    """The path tuple for `any[1].priority.gte` (the inverse of `format_path`)."""
    return tuple(int(index) if index else name for index, name in _PATH_STEP.findall(text or ""))


def describe_path(path: DocPath) -> str:
    """What a consultant calls the thing at a path: `field `priority``, `view `open``."""
    path = tuple(path)
    if not path:
        return "the definitions"
    if path == ("settings",):
        return "the settings"
    if len(path) == 2 and path[0] in ("types", "views", "roles"):
        return f"{path[0][:-1]} `{path[1]}`"
    if len(path) >= 4 and path[0] == "types" and path[2] == "fields":
        if len(path) == 4:
            return f"field `{path[3]}`"
        if len(path) == 5 and path[4] == "aggregate":
            return f"the aggregate of field `{path[3]}`"
    if len(path) == 3 and path[0] == "types" and path[2] == "fields":
        return f"the fields of type `{path[1]}`"
    last = path[-1]
    return f"item {last + 1} of `{format_path(path[:-1])}`" if isinstance(last, int) else f"`{format_path(path)}`"


# A YAML 1.2-like reading of plain scalars: only true/false are booleans (`no`, `on`, `y`
# stay words, so an enum may have a value `no`), numbers have no octal or base-60 forms
# (`1:30` is a duration for the engine, not 90), and dates stay text for the field kinds.
_STR, _NULL, _BOOL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool"
_INT, _FLOAT, _MAP = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:map"
_SEQ, _MERGE = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:merge"
_REREAD = {_BOOL, _INT, _FLOAT, "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"}


def _with_reading_rules(loader: type) -> Any:
    reader: Any = type(f"Deskbase{loader.__name__}", (loader,), {})     # a PyYAML loader: no stubs, so untyped
    reader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REREAD]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    reader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    reader.add_implicit_resolver(
        _INT, re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"), list("-+0123456789"))
    reader.add_implicit_resolver(
        _FLOAT,
        re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
                   r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
        list("-+0123456789."))
    return reader


_Loader = _with_reading_rules(yaml.SafeLoader)
# libyaml reads ten times faster; the pure-Python reader is kept for its clearer messages.
_FastLoader = _with_reading_rules(yaml.CSafeLoader) if getattr(yaml, "__with_libyaml__", False) else _Loader

# Hints for the YAML mistakes people actually make, keyed by words of the parser's message.
_SYNTAX_HINTS = (
    ("'\\t'", "indent with spaces: YAML does not accept tabs"),
    ("mapping values are not allowed", "put quotes around a value that contains `: `, or check the indentation"),
    ("could not find expected ':'", "a key needs `:` after it; a value that goes on needs quotes"),
    ("did not find expected key", "check the indentation of this line against the lines above"),
    ("did not find expected '-'", "check the indentation of this list item"),
    ("expected <block end>", "check the indentation of this line against the lines above"),
    ("but found another document", "a definitions file holds one document: remove the `---` line"),
    ("found undefined alias", "an alias `*name` needs an anchor `&name` written before it"),
    ("unexpected end of stream", "a quote or bracket is not closed"),
    ("'<stream end>'", "a quote or bracket is not closed"),
)


def parse_yaml(text: str, file: str, *, overlay: bool = False) -> tuple[Document | None, list[DefinitionError]]:
    """Read YAML text into plain values and their positions; the document is None when
    the text cannot be read at all. Problems are returned, never raised."""
    try:
        try:
            node = yaml.compose(text, Loader=_FastLoader)
        except yaml.YAMLError:
            node = yaml.compose(text, Loader=_Loader)   # raises again, with the clearer message
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_error(exc, file)]
    except yaml.YAMLError as exc:   # a character YAML refuses (ReaderError): no mark of its own
        offset = getattr(exc, "position", 0) or 0
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        reason = getattr(exc, "reason", "cannot be read")
        return None, [DefinitionError(file, line, column, "", f"this is not valid YAML text: {reason}")]
    builder = _Builder(file, overlay)
    if node is None:
        return Document(None, SourceMap(Position(file, 1, 1))), []
    data, positions = builder.build(node, ())
    return Document(data, positions), builder.errors


def read_yaml(path: str | Path, *, overlay: bool = False) -> tuple[Document | None, list[DefinitionError]]:
    """Read a YAML file into plain values and their positions (see `parse_yaml`)."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return None, [DefinitionError(name, 1, 1, "", f"the file cannot be read: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [DefinitionError(name, line, column, "", "the file is not UTF-8 text",
                                      "save it as UTF-8 in your editor")]
    return parse_yaml(text, name, overlay=overlay)


def _syntax_error(exc: yaml.MarkedYAMLError, file: str) -> DefinitionError:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    context = exc.context or ""
    problem = exc.problem or context or "it cannot be read"
    if context and problem.startswith("but "):   # "expected a single document…, but found another"
        problem, context = f"{context}, {problem}", ""
    message = f"this is not valid YAML: {problem}"
    if context and exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
        message += f" ({context} at line {exc.context_mark.line + 1})"
    searched = f"{exc.context or ''} {problem}"
    hint = next((text for words, text in _SYNTAX_HINTS if words in searched), None)
    return DefinitionError(file, line, column, "", message, hint)


class _Builder:
    """Turns composed YAML nodes into plain values, recording positions and problems."""

    def __init__(self, file: str, overlay: bool):
        self.file = file
        self.overlay = overlay
        self.errors: list[DefinitionError] = []
        self._open: set[int] = set()   # collections being built: an alias to one is a loop

    def position(self, node: yaml.Node) -> Position:
        return Position(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, node: yaml.Node, path: DocPath, message: str, hint: str | None = None) -> None:
        at = self.position(node)
        self.errors.append(DefinitionError(at.file, at.line, at.column, format_path(path), message, hint))

    def build(self, node: yaml.Node, path: DocPath, key_at: Position | None = None) -> tuple[Any, SourceMap]:
        if id(node) in self._open:
            self.error(node, path, "an alias refers to the map or list that contains it")
            return None, SourceMap(self.position(node), key_at)
        if node.tag in OVERLAY_TAGS:
            return self._overlay_tag(node, path, key_at)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, key_at)
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node, path, key_at)
        return self._scalar(node, path), SourceMap(self.position(node), key_at)

    def _overlay_tag(self, node, path, key_at):
        tag = node.tag
        if not self.overlay:
            self.error(node, path, f"`{tag}` may only be used in an overlay folder; the base definitions "
                                   "say what exists, so write the value itself or leave it out")
        if tag == "!remove":
            if not isinstance(node, yaml.ScalarNode) or node.value.strip():
                self.error(node, path, "`!remove` takes no value: write `key: !remove`")
            return (Remove() if self.overlay else None), SourceMap(self.position(node), key_at)
        expected = yaml.SequenceNode if tag == "!append" else yaml.MappingNode
        if not isinstance(node, expected):
            shape = "a list, as in `values: !append [on_hold]`" if tag == "!append" else \
                "a map, as in `fields: !replace {name: {kind: string}}`"
            self.error(node, path, f"`{tag}` is followed by {shape}")
            return (Remove() if self.overlay else None), SourceMap(self.position(node), key_at)
        node.tag = _SEQ if tag == "!append" else _MAP
        try:
            value, positions = self.build(node, path, key_at)
        finally:
            node.tag = tag
        if not self.overlay:
            return value, positions
        return (Append(value) if tag == "!append" else Replace(value)), positions

    def _mapping(self, node: yaml.MappingNode, path: DocPath, key_at: Position | None):
        positions = SourceMap(self.position(node), key_at)
        if node.tag != _MAP:
            self.error(node, path, f"the tag `{node.tag}` is not understood here; write a plain map")
        self._open.add(id(node))
        result: dict[str, Any] = {}
        merged: list[tuple[dict, SourceMap]] = []
        seen: dict[str, Position] = {}
        try:
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:   # `<<: *anchor` shares settings between maps
                    merged.extend(self._merge_sources(value_node, path))
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    self.error(key_node, path, "a key must be a plain word, not a map or a list")
                    continue
                key = key_node.value
                key_position = self.position(key_node)
                if key in seen:
                    first = seen[key]
                    self.error(key_node, path + (key,),
                               f"`{key}` is written twice in the same map (first at line {first.line}, "
                               f"column {first.column}); YAML would silently keep only the last one",
                               "remove or rename one of them")
                    continue
                seen[key] = key_position
                result[key], positions.children[key] = self.build(value_node, path + (key,), key_position)
        finally:
            self._open.discard(id(node))
        if merged:
            # Keys written in the map win over merged ones; among merged maps the first wins.
            shared: dict[str, Any] = {}
            shared_positions: dict[str, SourceMap] = {}
            for values, sources in merged:
                for key, value in values.items():
                    if key not in shared:
                        shared[key], shared_positions[key] = value, sources.children[key]
            result = {**{k: v for k, v in shared.items() if k not in result}, **result}
            positions.children = {**{k: v for k, v in shared_positions.items() if k not in seen},
                                  **positions.children}
        return result, positions

    def _merge_sources(self, node, path):
        nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
        sources = []
        for item in nodes:
            if not isinstance(item, yaml.MappingNode):
                self.error(item, path, "`<<` merges maps: write `<<: *name` where `&name` marks a map")
                continue
            sources.append(self._mapping(item, path, None))
        return sources

    def _sequence(self, node: yaml.SequenceNode, path: DocPath, key_at: Position | None):
        positions = SourceMap(self.position(node), key_at)
        if node.tag != _SEQ:
            self.error(node, path, f"the tag `{node.tag}` is not understood here; write a plain list")
        self._open.add(id(node))
        items = []
        try:
            for index, item in enumerate(node.value):
                value, positions.children[index] = self.build(item, path + (index,))
                items.append(value)
        finally:
            self._open.discard(id(node))
        return items, positions

    def _scalar(self, node: yaml.ScalarNode, path: DocPath) -> Any:
        tag, text = node.tag, node.value
        try:
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return text.lower() in ("true", "yes", "on", "y")
            if tag == _INT:
                return int(text.replace("_", ""), 0)
            if tag == _FLOAT:
                lowered = text.lower().replace("_", "")
                if lowered.endswith(".inf"):
                    return float("-inf") if lowered.startswith("-") else float("inf")
                return float("nan") if lowered == ".nan" else float(lowered)
        except ValueError:
            self.error(node, path, f"`{text}` does not read as {tag.rsplit(':', 1)[-1]}")
            return text
        if tag not in (_STR, "tag:yaml.org,2002:value", "tag:yaml.org,2002:timestamp"):
            self.error(node, path, f"the tag `{tag}` is not understood here; write the value without it")
        return text
