"""The pieces compiling definitions is made of, shared by the compiler's parts
(`compile_*.py`) and by the sections upper layers own: a Section, errors at their place in
the YAML, checks of filters, expressions and ref paths."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.parser import Parser

from .errors import DefinitionError, QueryError, hint_for
from .expressions import ENVIRONMENT as EXPRESSIONS
from .fields import RefKind
from .filters import compile_filter
from .frozen import thaw
from .model import Definitions, TypeDef
from .sourcemap import DocPath, Position, SourceMap, format_path, parse_path

EXPRESSION_NAMES = ("record", "now", "today")

# Which `$` words a default may be, and for which kinds.
DEFAULT_WORDS = {"$now": ("datetime", "date"), "$today": ("date", "datetime"), "$me": ("user",),
                 "$only_choice": ("ref",),     # the one record the ref's `where` offers, if only one
                 "$me.person": ("ref",)}       # the person record of the signed-in account, if any

CONTEXT_WORD = re.compile(r"\$[A-Za-z_][\w.+-]*")   # `$now`, `$me.groups`; `$5` is plain text

NUMERIC_KINDS = ("integer", "decimal", "money", "duration")

SEARCHABLE_KINDS = ("string", "text")

_ENVIRONMENT = EXPRESSIONS            # the environment expressions run in: the same names are known


class CompilerPart:
    """Base of the parts of the definitions' compiler (fields, indexes, views): what they
    read of the whole, `definitions._Compiler`, declared for the type checker. The
    attributes are set by `_Compiler`, and its methods are the ones that run."""

    data: dict
    positions: SourceMap
    errors: list[DefinitionError]
    typedefs: dict[str, TypeDef]
    type_names: list[str]
    roles: dict[str, dict]
    broken: set[tuple[str, str]]          # (type, field) whose kind is unknown
    vague: set[str]                       # types whose `fields` is not a map

    if TYPE_CHECKING:
        def error(self, path: DocPath, message: str, hint: str | None = None, *, on_key: bool = False,
                  shown_path: str | None = None) -> None: ...

        def knows_fields(self, type_name: object) -> bool: ...

        def check_filter(self, spec: Any, target: TypeDef, path: DocPath,
                         record_type: TypeDef | None = None) -> None: ...

@dataclass(frozen=True)
class Section:
    """A part of the definitions that an upper layer owns (access rules, identity): the
    objects layer validates its shape with the rest and hands it over to be compiled.

    `level` is `top` (a section beside `types`) or `type` (a key inside each type).
    `schema` is its JSON-schema fragment, merged into the meta-schema so its errors read
    like every other. `compile(document, positions, definitions)` receives the merged plain
    document, its source map and the compiled core, and returns (compiled, errors): the
    errors are DefinitionErrors located in the YAML (see `definition_error`). The result
    lands in `Definitions.extensions[name]`. It runs only once the rest is free of
    problems, so it may trust the types, fields and roles it reads."""

    name: str
    level: str
    schema: Mapping[str, Any]
    compile: Callable[[Mapping[str, Any], SourceMap, Definitions], tuple[Any, list[DefinitionError]]]

def definition_error(positions: SourceMap, path: DocPath, message: str, hint: str | None = None, *,
                     on_key: bool = False) -> DefinitionError:
    """A DefinitionError at the place of `path` in the YAML (at its key with `on_key`)."""
    at = positions.locate_key(path) if on_key else positions.locate(path)
    return DefinitionError(at.file, at.line, at.column, format_path(path), message, hint)

def check_ref_path(text: str, typedef: TypeDef, definitions: Any, accepts: Callable[[Any], bool], noun: str,
                   path: DocPath, positions: SourceMap, errors: list[DefinitionError]) -> tuple[str, str] | None:
    """A `ref.field` path written in a section (`organization.approver`): a ref of `typedef`
    holding one record, then a field of its target that `accepts` (`noun` names what it must
    be, such as "a user field"). The (ref, field) pair, or None with the problem in `errors`."""
    ref_name, _, target_field = str(text).partition(".")
    ref = typedef.fields.get(ref_name)
    if ref is None or not isinstance(ref.kind, RefKind) or ref.kind.multiple or not target_field:
        refs = [n for n, f in typedef.fields.items() if isinstance(f.kind, RefKind) and not f.kind.multiple]
        errors.append(definition_error(positions, path, f"`{text}` is not a ref field of `{typedef.name}` then "
                                       f"{noun} of its target", hint_for(ref_name, refs) or "write it as ref.field"))
        return None
    target = definitions.types[ref.kind.to]
    field = target.fields.get(target_field)
    if field is None or not accepts(field):
        usable = [n for n, f in target.fields.items() if accepts(f)]
        errors.append(definition_error(positions, path, f"`{target_field}` is not {noun} of `{target.name}`",
                                       hint_for(target_field, usable)))
        return None
    return ref_name, target_field

def filter_errors(spec: Any, target: TypeDef, path: DocPath, positions: SourceMap,
                  record_type: TypeDef | None = None) -> list[DefinitionError]:
    """The problem of a filter written at `path`, compiled as the engine will, located at
    the part at fault; an empty list when it compiles."""
    try:
        compile_filter(thaw(spec), target, record_type=record_type)
    except QueryError as exc:
        inner = exc.path or ""
        joined = format_path(path) + ("" if not inner or inner.startswith("[") else ".") + inner
        steps = parse_path(inner)
        # A message about a key itself (`dnoe` is not a field) points at the key; one
        # about a value (cannot be compared with `hihg`) at the value.
        about_key = bool(steps) and isinstance(steps[-1], str) and exc.message.startswith(f"`{steps[-1]}`")
        error = definition_error(positions, path + steps, exc.message, exc.hint, on_key=about_key)
        return [dataclasses.replace(error, path=joined)]
    return []

def offer_errors(offer: Mapping[str, Any], types: Mapping[str, TypeDef], roles: Iterable[str], path: DocPath,
                 positions: SourceMap) -> list[DefinitionError]:
    """The problems of an `offer:` on a user field or input: roles the definitions declare;
    a `count` naming a type, a user field of it with an index to count by, and a filter on
    that type."""
    errors = []
    for position, role in enumerate(offer.get("roles") or ()):
        if role not in roles:
            errors.append(definition_error(positions, path + ("roles", position),
                                           f"`{role}` is not a role of the definitions", hint_for(str(role), roles)))
    count = offer.get("count")
    if not isinstance(count, Mapping):
        return errors
    type_name = count.get("type")
    counted = types.get(type_name) if isinstance(type_name, str) else None
    if counted is None:
        return errors + [definition_error(positions, path + ("count", "type"), f"`{count.get('type')}` is not a type",
                                          hint_for(str(count.get("type")), types))]
    field_name = count.get("field")
    field = counted.fields.get(field_name) if isinstance(field_name, str) else None
    if field is None or field.kind.name != "user" or counted.index_for(field.name) is None:
        usable = [n for n, f in counted.fields.items() if f.kind.name == "user" and counted.index_for(n) is not None]
        errors.append(definition_error(positions, path + ("count", "field"),
                                       f"`{count.get('field')}` is not an indexed user field of `{counted.name}`",
                                       hint_for(str(count.get("field")), usable)
                                       or "index it under the type's `indexes` to count by it"))
    if isinstance(count.get("where"), Mapping):
        errors += filter_errors(count["where"], counted, path + ("count", "where"), positions)
    return errors

def check_expression(text: str, *, names: Iterable[str] = EXPRESSION_NAMES,
                     at: Position | None = None, path: str = "") -> None:
    """Raise DefinitionError if a sandboxed Jinja2 expression does not parse or uses a name
    other than `names` (and Jinja2's own globals such as `range`)."""
    at = at or Position("<expression>", 1, 1)
    try:
        tree = Parser(_ENVIRONMENT, text, state="variable").parse_expression()
        _ENVIRONMENT.compile_expression(text)
    except TemplateSyntaxError as exc:
        line = at.line + (exc.lineno or 1) - 1
        column = at.column if (exc.lineno or 1) == 1 else 1
        problem = {"unexpected 'end of template'": "it ends too early (something is missing at the end)",
                   "chunk after expression": "something follows the end of the expression"
                   }.get(exc.message or "", exc.message)
        raise DefinitionError(at.file, line, column, path, f"the expression `{text}` does not parse: {problem}",
                              "an expression is Jinja2, such as `record.quantity * record.unit_price`") from None
    known = set(names) | set(_ENVIRONMENT.globals)
    for name in tree.find_all(nodes.Name):
        if name.name not in known:
            raise DefinitionError(
                at.file, at.line, at.column, path,
                f"`{name.name}` is not known in an expression; it may use {', '.join(sorted(set(names)))}",
                hint_for(name.name, known))

def with_article(word: str) -> str:
    """`an integer`, `a string`: the article that goes with a kind's name."""
    return f"an {word}" if word[:1] in ("a", "e", "i", "o") else f"a {word}"

def record_fields_read(text: str) -> list[str]:
    """The fields an expression reads as `record.x` or `record['x']`."""
    try:
        tree = Parser(_ENVIRONMENT, text, state="variable").parse_expression()
    except TemplateSyntaxError:
        return []
    read = [node.attr for node in tree.find_all(nodes.Getattr)
            if isinstance(node.node, nodes.Name) and node.node.name == "record"]
    read += [node.arg.value for node in tree.find_all(nodes.Getitem)
             if isinstance(node.node, nodes.Name) and node.node.name == "record"
             and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)]
    return read
