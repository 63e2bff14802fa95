"""Loading definitions: read a folder of YAML files and its overlays, merge them, validate
them against the meta-schema, cross-check every reference, and compile the result into the
frozen objects of `model.py`. Every problem is reported at once, each at its place."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jinja2 import TemplateSyntaxError, nodes
from jinja2.parser import Parser
from jinja2.sandbox import SandboxedEnvironment

from . import metaschema
from .errors import DefinitionError, DefinitionErrors, FieldError, QueryError, hint_for
from .fields import (
    KINDS,
    AttachmentsKind,
    ComputedKind,
    EnumKind,
    Kind,
    RefKind,
    SequenceKind,
    StringKind,
    TextKind,
    parse_duration,
)
from .filters import compile_filter
from .model import SYSTEM_FIELDS, SYSTEM_INDEXES, Definitions, FieldDef, IndexDef, TypeDef, ViewDef, system_fields
from .overlays import apply_overlay, merge_folder
from .sourcemap import DocPath, Document, Position, SourceMap, format_path, parse_path, read_yaml

EXPRESSION_NAMES = ("record", "now", "today")
# Which `$` words a default may be, and for which kinds.
DEFAULT_WORDS = {"$now": ("datetime", "date"), "$today": ("date", "datetime"), "$me": ("user",),
                 "$only_choice": ("ref",)}     # the one record the ref's `where` offers, if only one
_CONTEXT_WORD = re.compile(r"\$[A-Za-z_][\w.+-]*")   # `$now`, `$me.groups`; `$5` is plain text
_NUMERIC = ("integer", "decimal", "money", "duration")
_SEARCHABLE = ("string", "text")

_ENVIRONMENT = SandboxedEnvironment()


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


def load_definitions(folder: str | Path = "definitions", overlays: Sequence[str | Path] = (),
                     sections: Sequence[Section] = ()) -> Definitions:
    """The compiled definitions of a folder and its overlay folders, with the extra
    `sections` of upper layers; raises DefinitionErrors listing every problem found."""
    errors: list[DefinitionError] = []
    sources: list[str] = []
    base = _read_folder(Path(folder), False, errors, sources)
    layers = [_read_folder(Path(overlay), True, errors, sources) for overlay in overlays]
    if base is None or any(layer is None for layer in layers):
        # A file that cannot be read at all: every later check would only echo its absence.
        raise DefinitionErrors(errors)
    document, merge_errors = merge_folder(base)
    errors += merge_errors
    for layer in layers:
        for overlay in layer:
            document, merge_errors = apply_overlay(document, overlay)
            errors += merge_errors
    schema = None
    if sections:
        schema = metaschema.extended_schema(
            {section.name: dict(section.schema) for section in sections if section.level == "top"},
            {section.name: dict(section.schema) for section in sections if section.level == "type"})
    errors += metaschema.validate(document.data, document.positions, schema)
    compiled = _Compiler(document, errors).compile(tuple(sources))
    if errors:
        raise DefinitionErrors(errors)
    extensions: dict[str, Any] = {}
    for section in sections:   # a section sees the sections compiled before it (timers, their calendars)
        so_far = dataclasses.replace(compiled, extensions=MappingProxyType(dict(extensions)))
        result, problems = section.compile(compiled.document, document.positions, so_far)
        errors += problems
        extensions[section.name] = result
    if errors:
        raise DefinitionErrors(errors)
    return dataclasses.replace(compiled, extensions=MappingProxyType(extensions)) if sections else compiled


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


def _a(word: str) -> str:
    """`an integer`, `a string`: the article that goes with a kind's name."""
    return f"an {word}" if word[:1] in ("a", "e", "i", "o") else f"a {word}"


def _record_fields(text: str) -> list[str]:
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


class FrozenDict(dict):
    """A dict that refuses changes. The merged document and filter specs use it: they stay
    frozen, yet `json.dumps`, `isinstance(x, dict)` and pickling work as for plain values."""

    def _refuse(self, *args: Any, **kwargs: Any):
        raise TypeError("compiled definitions cannot be changed")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self):
        return (FrozenDict, (dict(self),))


class FrozenList(list):
    """A list that refuses changes (see FrozenDict)."""

    def _refuse(self, *args: Any, **kwargs: Any):
        raise TypeError("compiled definitions cannot be changed")

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce__(self):
        return (FrozenList, (list(self),))


def freeze_plain(value: Any) -> Any:
    """A frozen copy of a YAML value that still reads as plain dicts and lists."""
    if isinstance(value, Mapping):
        return FrozenDict({key: freeze_plain(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return FrozenList(freeze_plain(item) for item in value)
    return value


def _freeze(value: Any) -> Any:
    """A frozen copy for the compiled model: MappingProxyType and tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    return value


def _read_folder(folder: Path, overlay: bool, errors: list[DefinitionError],
                 sources: list[str]) -> list[Document] | None:
    """The documents of the `*.yaml` files directly in a folder, in name order; None when
    one of them (or the folder) cannot be read."""
    role = "overlay folder" if overlay else "definitions folder"
    if not folder.is_dir():
        errors.append(DefinitionError(str(folder), 1, 1, "", f"the {role} `{folder}` does not exist"))
        return None
    files = sorted((p for p in folder.iterdir() if p.suffix == ".yaml" and p.is_file()), key=lambda p: p.name)
    if not files:
        others = sorted(p.name for p in folder.iterdir() if p.suffix == ".yml")
        hint = f"rename {', '.join(others)} to end in .yaml" if others else None
        errors.append(DefinitionError(str(folder), 1, 1, "", f"the {role} `{folder}` has no .yaml file", hint))
        return None
    documents: list[Document] = []
    readable = True
    for path in files:
        sources.append(str(path))
        document, problems = read_yaml(path, overlay=overlay)
        errors += problems
        if document is None:
            readable = False
            continue
        if document.data is None:   # an empty file, or one with only comments
            document.data = {}
        if not isinstance(document.data, dict):
            shape = "a list" if isinstance(document.data, list) else "a single value"
            errors.append(DefinitionError(
                str(path), document.positions.at.line, document.positions.at.column, "",
                f"a definitions file is a map with the sections settings, roles, types and views; this one holds {shape}"))
            continue
        documents.append(document)
    return documents if readable else None


class _Compiler:
    """Cross-checks the validated document and builds the model, collecting every problem.

    It runs even when the schema found problems, so it never trusts a value's shape: each
    check looks at what it needs and skips what the schema has already reported."""

    def __init__(self, document: Document, errors: list[DefinitionError]):
        self.data = document.data if isinstance(document.data, dict) else {}
        self.positions = document.positions
        self.errors = errors
        self.typedefs: dict[str, TypeDef] = {}
        self.broken: set[tuple[str, str]] = set()   # (type, field) whose kind is unknown
        self.vague: set[str] = set()                 # types whose `fields` is not a map

    # -- reporting ------------------------------------------------------------------------

    def error(self, path: DocPath, message: str, hint: str | None = None, *, on_key: bool = False,
              shown_path: str | None = None) -> None:
        at = self.positions.locate_key(path) if on_key else self.positions.locate(path)
        shown = format_path(path) if shown_path is None else shown_path
        self.errors.append(DefinitionError(at.file, at.line, at.column, shown, message, hint))

    def knows_fields(self, type_name: str) -> bool:
        """Whether the fields of a type are known well enough to say that one is missing."""
        return type_name in self.typedefs and type_name not in self.vague

    def section(self, name: str) -> dict:
        value = self.data.get(name)
        return value if isinstance(value, dict) else {}

    # -- the whole ------------------------------------------------------------------------

    def compile(self, sources: tuple[str, ...]) -> Definitions:
        settings = self.section("settings")
        zone = self.zone(settings)
        self.roles = {name: (spec if isinstance(spec, dict) else {}) for name, spec in self.section("roles").items()}
        types = self.section("types")
        self.type_names = list(types)
        for name, spec in types.items():
            if isinstance(spec, dict):
                self.typedefs[name] = self.type(name, spec, zone)
        for name, spec in types.items():
            if isinstance(spec, dict) and name in self.typedefs:
                self.check_links(name)
        self.check_numbers()
        views = {name: self.view(name, spec) for name, spec in self.section("views").items()
                 if isinstance(spec, dict)}
        return Definitions(
            types=MappingProxyType(dict(self.typedefs)),
            views=MappingProxyType(views),
            roles=MappingProxyType({name: _freeze(spec) for name, spec in self.roles.items()}),
            settings=_freeze(settings),
            document=freeze_plain(self.data),
            sources=sources,
        )

    def zone(self, settings: dict) -> str:
        zone = settings.get("timezone", "UTC")
        if not isinstance(zone, str):
            return "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            self.error(("settings", "timezone"), f"`{zone}` is not a time zone",
                       hint_for(zone, available_timezones()) or "write it as Region/City, such as Europe/Paris")
            return "UTC"
        return zone

    # -- types ----------------------------------------------------------------------------

    def type(self, name: str, spec: dict, zone: str) -> TypeDef:
        path = ("types", name)
        declared = spec.get("fields")
        if not isinstance(declared, dict):
            self.vague.add(name)
            declared = {}
        own: dict[str, FieldDef] = {}
        for field_name, field_spec in declared.items():
            if field_name in SYSTEM_FIELDS:
                self.error(path + ("fields", field_name),
                           f"`{field_name}` is a system field: every type has it, kept by the engine",
                           "give your field another name", on_key=True)
                continue
            if isinstance(field_spec, dict):
                own[field_name] = self.field(name, field_name, field_spec, declared, zone)
            else:   # reported by the schema; kept so that what names it is not reported again
                self.broken.add((name, field_name))
                own[field_name] = FieldDef(field_name, StringKind())
        fields = {**system_fields(zone), **own}
        self.check_expressions(name, own, fields)
        title = spec.get("title")
        if isinstance(title, str) and name not in self.vague:
            if title not in fields:
                self.error(path + ("title",), f"the title field `{title}` is not a field of type `{name}`",
                           hint_for(title, fields))
            elif fields[title].kind.multiple:
                self.error(path + ("title",), f"`{title}` holds several values, so it cannot name a {name}",
                           "choose a field with one value, such as a string")
        number = spec.get("number")
        if not isinstance(number, str):
            number = f"{name.upper()}-{{seq:06d}}"
        elif not self.number_format_works(number):
            self.error(path + ("number",),
                       f"`{number}` is not a number format: it must contain `{{seq}}` once, such as \"T-{{seq:06d}}\"",
                       "`{seq:06d}` writes the counter with six digits")
        return TypeDef(
            name=name,
            label=_freeze(spec.get("label")),
            number_format=number,
            fields=MappingProxyType(fields),
            indexes=MappingProxyType(self.indexes(name, spec, fields)),
            title_field=title if isinstance(title, str) and title in fields else None,
            plural=_freeze(spec.get("plural")),
            constraints=tuple(freeze_plain(item) for item in spec.get("constraints") or ()
                              if isinstance(item, dict) and isinstance(item.get("no_overlap"), dict)),
            summaries=tuple(freeze_plain(item) for item in spec.get("summaries") or () if isinstance(item, dict)),
        )

    @staticmethod
    def number_format_works(number: str) -> bool:
        if number.count("{seq") != 1 or number.count("{") != 1:
            return False
        try:
            number.format(seq=1)
        except (KeyError, ValueError, IndexError):
            return False
        return True

    def check_numbers(self) -> None:
        """Two types numbered alike would make `X-000001` ambiguous."""
        seen: dict[str, str] = {}
        for name, typedef in self.typedefs.items():
            prefix = typedef.number_format.partition("{seq")[0].lower()
            if prefix in seen:
                self.error(("types", name, "number"),
                           f"types `{seen[prefix]}` and `{name}` number their records alike "
                           f"(`{typedef.number_format}`), so a number would not say which type it is",
                           "give each type its own prefix")
            seen[prefix] = name

    # -- fields ---------------------------------------------------------------------------

    def field(self, type_name: str, name: str, spec: dict, declared: dict, zone: str) -> FieldDef:
        path = ("types", type_name, "fields", name)
        kind_name = spec.get("kind")
        if isinstance(kind_name, str) and kind_name in KINDS:
            kind = self.kind(kind_name, spec, path, zone)
        else:
            self.broken.add((type_name, name))
            kind = StringKind()
        renamed_from = spec.get("renamed_from")
        if isinstance(renamed_from, str):
            if renamed_from in declared and renamed_from != name:
                self.error(path + ("renamed_from",),
                           f"`{name}` is renamed from `{renamed_from}`, but `{renamed_from}` is still a field "
                           f"of type `{type_name}`", "remove the old field, or remove `renamed_from`")
            elif renamed_from in SYSTEM_FIELDS:
                self.error(path + ("renamed_from",), f"`{renamed_from}` is a system field; it cannot be renamed")
            others = [other for other, other_spec in declared.items() if other != name
                      and isinstance(other_spec, dict) and other_spec.get("renamed_from") == renamed_from]
            if others and list(declared).index(name) > list(declared).index(others[0]):
                self.error(path + ("renamed_from",),
                           f"fields `{others[0]}` and `{name}` are both renamed from `{renamed_from}`")
        default = None
        if "default" in spec and spec["default"] is not None and (type_name, name) not in self.broken:
            default = self.default(kind, spec["default"], path + ("default",))
        required = spec.get("required")
        return FieldDef(
            name=name,
            kind=kind,
            label=_freeze(spec.get("label")),
            required=required if isinstance(required, bool) else False,
            default=default,
            help=_freeze(spec.get("help")),
            renamed_from=renamed_from if isinstance(renamed_from, str) else None,
            required_when=freeze_plain(spec["required_when"]) if isinstance(spec.get("required_when"), dict) else None,
            shown_when=freeze_plain(spec["shown_when"]) if isinstance(spec.get("shown_when"), dict) else None,
            copied_from=_copy_paths(spec.get("copied_from")),
            suggest=freeze_plain(spec["suggest"]) if isinstance(spec.get("suggest"), dict) else None,
        )

    def kind(self, kind_name: str, spec: dict, path: DocPath, zone: str) -> Kind:
        options: dict[str, Any] = {}
        for option in metaschema.KIND_OPTIONS[kind_name]:
            if option in spec and spec[option] is not None:
                value = self.option(kind_name, option, spec[option], path + (option,), zone)
                if value is not None:
                    options[option] = value
        if kind_name == "datetime":
            options["zone"] = zone
        if kind_name == "enum" and "values" in options:
            options["values"], options["labels"] = options["values"]
        if kind_name == "computed":
            has_expression, has_aggregate = "expression" in options, "aggregate" in options
            if has_expression == has_aggregate:
                self.error(path, f"computed field `{path[-1]}` needs " + (
                    "`expression` or `aggregate`, not both" if has_expression else
                    "`expression` (a formula over the record) or `aggregate` (over related records)"),
                    on_key=True)
        for low, high in (("minimum", "maximum"),):
            if low in options and high in options and options[low] > options[high]:
                self.error(path + (low,), f"the minimum {spec[low]} is above the maximum {spec[high]}")
        return KINDS[kind_name](**options)

    def option(self, kind_name: str, option: str, value: Any, path: DocPath, zone: str) -> Any:
        """The dataclass value for one YAML option, or None when it is unusable (reported)."""
        if option in ("max_length", "places", "max_size"):
            return value if isinstance(value, int) and not isinstance(value, bool) else None
        if option in ("currency", "expression", "per"):
            return value if isinstance(value, str) else None
        if option == "format":
            if not isinstance(value, str):
                return None
            try:
                value.format(seq=1, year=2026)
            except (KeyError, IndexError, ValueError) as exc:
                self.error(path, f"`{value}` is not a number format: it may name only {{seq}} and {{year}} ({exc})")
                return None
            return value
        if option == "pattern":
            if not isinstance(value, str):
                return None
            try:
                re.compile(value)
            except re.error as exc:
                self.error(path, f"`{value}` is not a regular expression: {exc.msg} at character {exc.pos}")
                return None
            return value
        if option in ("minimum", "maximum"):
            return self.bound(kind_name, value, path)
        if option == "values":
            return self.enum_values(value, path)
        if option == "to":
            if not isinstance(value, str):
                return None
            if value not in self.type_names:
                self.error(path, f"field `{path[-2]}` refers to `{value}`, which is not a type",
                           hint_for(value, self.type_names))
            return value
        if option in ("where", "aggregate", "assigned_when"):
            return freeze_plain(value) if isinstance(value, dict) else None
        if option == "accept":
            return tuple(str(item) for item in value) if isinstance(value, list) else None
        if option == "result":
            if value not in metaschema.RESULT_KINDS:
                return None
            return KINDS[value](zone=zone) if value == "datetime" else KINDS[value]()
        return None

    def bound(self, kind_name: str, value: Any, path: DocPath) -> Any:
        if isinstance(value, bool):
            return None
        if kind_name == "integer":
            return value if isinstance(value, int) else None
        if kind_name == "duration":
            try:
                return parse_duration(value)
            except FieldError as exc:
                self.error(path, f"`{path[-1]}` of a duration field must be a duration: {exc}")
                return None
        try:
            number = Decimal(str(value))
            if not number.is_finite():
                raise InvalidOperation
            return number
        except InvalidOperation:
            self.error(path, f"`{value}` is not a number")
            return None

    def enum_values(self, value: Any, path: DocPath) -> tuple[tuple[str, ...], Mapping[str, Any]] | None:
        if not isinstance(value, list):
            return None
        names: list[str] = []
        labels: dict[str, Any] = {}
        for index, item in enumerate(value):
            if isinstance(item, str):
                name, label = item, None
            elif isinstance(item, dict) and len(item) == 1:
                (name, label), = item.items()
            else:
                continue
            if name in names:
                self.error(path + (index,), f"`{name}` appears twice in the values", "give each value once")
                continue
            names.append(name)
            if label is not None:
                labels[name] = _freeze(label)
        return tuple(names), MappingProxyType(labels)

    def default(self, kind: Kind, raw: Any, path: DocPath) -> Any:
        field_name = path[-2]
        if isinstance(kind, ComputedKind):
            self.error(path, f"computed field `{field_name}` has no default: the engine computes it",
                       "remove `default`")
            return None
        if isinstance(kind, AttachmentsKind):
            self.error(path, f"attachments field `{field_name}` cannot have a default", "remove `default`")
            return None
        if isinstance(raw, str) and _CONTEXT_WORD.fullmatch(raw):
            if raw in DEFAULT_WORDS and kind.name in DEFAULT_WORDS[raw]:
                return raw
            if raw in DEFAULT_WORDS:
                fits = " and ".join(DEFAULT_WORDS[raw])
                self.error(path, f"`{raw}` cannot be the default of {_a(kind.name)} field; it fits {fits} fields")
            else:
                self.error(path, f"`{raw}` is not a value the engine can fill in; a default may be "
                                 "`$now`, `$today` (dates and times), `$me` (users) or `$only_choice` (refs)",
                           hint_for(raw, DEFAULT_WORDS))
            return None
        if isinstance(kind, EnumKind):
            if not kind.values:   # the values themselves are at fault, already reported
                return None
            if raw not in kind.values:
                self.error(path, f"the default `{raw}` is not one of the values of `{field_name}`: "
                                 f"{', '.join(kind.values)}", hint_for(str(raw), kind.values))
                return None
            return raw
        try:
            return kind.coerce(raw)
        except FieldError as exc:
            self.error(path, f"the default `{raw}` does not fit {_a(kind.name)} field: {exc}")
            return None

    def check_expressions(self, type_name: str, own: dict[str, FieldDef], fields: Mapping[str, FieldDef]) -> None:
        for name, field in own.items():
            kind = field.kind
            if not isinstance(kind, ComputedKind) or not kind.expression:
                continue
            path = ("types", type_name, "fields", name, "expression")
            try:
                check_expression(kind.expression, at=self.positions.locate(path), path=format_path(path))
            except DefinitionError as error:
                self.errors.append(error)
                continue
            for read in _record_fields(kind.expression):
                if read not in fields:
                    self.error(path, f"the expression reads `record.{read}`, but `{read}` is not a field of "
                                     f"type `{type_name}`", hint_for(read, fields))
                elif read == name:
                    self.error(path, f"the expression of `{name}` reads `{name}` itself")

    # -- indexes --------------------------------------------------------------------------

    def indexes(self, type_name: str, spec: dict, fields: Mapping[str, FieldDef]) -> dict[str, IndexDef]:
        entries = spec.get("index") if isinstance(spec.get("index"), list) and type_name not in self.vague else []
        declared: dict[str, IndexDef] = {}
        text_index: IndexDef | None = None
        always = {index.fields[0] for index in SYSTEM_INDEXES}
        for position, entry in enumerate(entries):
            path = ("types", type_name, "index", position)
            if isinstance(entry, str):
                index_kind, target, target_path = None, entry, path
            elif isinstance(entry, dict) and len(entry) == 1:
                (index_kind, target), = entry.items()
                target_path = path + (index_kind,)
            else:
                continue
            if index_kind == "text":
                if text_index is not None:
                    self.error(target_path, f"type `{type_name}` has two text indexes; a type has one",
                               "put all the fields in one entry, such as {text: [title, description]}")
                    continue
                names = [target] if isinstance(target, str) else target if isinstance(target, list) else []
                text_index = self.text_index(type_name, names, target_path, fields, isinstance(target, list))
                continue
            if not isinstance(target, str) or index_kind not in (None, "field", "range", "keyword"):
                continue
            field = fields.get(target)
            if field is None:
                self.error(target_path, f"index over `{target}`, which is not a field of type `{type_name}`",
                           hint_for(target, fields))
                continue
            if target in always or target == "id":
                self.error(target_path, f"`{target}` is always indexed" if target != "id"
                           else "`id` always sorts and needs no index", f"remove `{target}` from `index`")
                continue
            if (type_name, target) in self.broken:
                declared.setdefault(target, IndexDef(target, index_kind or "field", (target,)))
                continue
            kind = field.kind.result if isinstance(field.kind, ComputedKind) else field.kind
            index_kind = index_kind or ("keyword" if kind.multiple else "field")
            problem = self.index_misfit(target, kind, index_kind)
            if problem:
                self.error(target_path, *problem)
                continue
            if target in declared:
                self.error(target_path, f"`{target}` is indexed twice", "keep one entry")
                continue
            declared[target] = IndexDef(target, index_kind, (target,))
        if text_index is not None:
            if "text" in declared:   # an index over a field named `text` would share the name
                self.error(("types", type_name, "fields", "text"),
                           "a field named `text` cannot be indexed in a type that has a text index: "
                           "both indexes would be named `text`", "rename the field", on_key=True)
            declared["text"] = text_index
        return {**declared, **{index.name: index for index in SYSTEM_INDEXES}}

    @staticmethod
    def index_misfit(name: str, kind: Kind, index_kind: str) -> tuple[str, str] | None:
        if isinstance(kind, AttachmentsKind):
            return f"`{name}` holds files, which cannot be indexed", f"remove `{name}` from `index`"
        if index_kind == "keyword" and not kind.multiple:
            return (f"`{name}` holds one value; a keyword index is for fields with several values (refs, tags)",
                    f"write `{name}` alone")
        if index_kind in ("field", "range") and kind.multiple:
            return (f"`{name}` holds several values; a {index_kind} index keeps one value per record",
                    f"write {{keyword: {name}}}")
        if index_kind in ("field", "range") and isinstance(kind, TextKind):
            return (f"`{name}` is long text, which has no order to index",
                    f"search it with a text index: {{text: [{name}]}}")
        return None

    def text_index(self, type_name: str, names: list, path: DocPath, fields: Mapping[str, FieldDef],
                   listed: bool) -> IndexDef | None:
        good = []
        for position, name in enumerate(names):
            if not isinstance(name, str):
                continue
            where = path + (position,) if listed else path
            field = fields.get(name)
            if field is None:
                self.error(where, f"the text index names `{name}`, which is not a field of type `{type_name}`",
                           hint_for(name, fields))
                continue
            kind = field.kind.result if isinstance(field.kind, ComputedKind) else field.kind
            if kind.name not in _SEARCHABLE and (type_name, name) not in self.broken:
                self.error(where, f"`{name}` is {_a(kind.name)} field; a text index searches string and text fields")
                continue
            if name in good:
                self.error(where, f"`{name}` is named twice in the text index")
                continue
            good.append(name)
        return IndexDef("text", "text", tuple(good)) if good else None

    # -- what needs every type ------------------------------------------------------------

    def check_links(self, name: str) -> None:
        """Filters and aggregates, which can only be checked once every type is compiled."""
        typedef = self.typedefs[name]
        self.check_constraints(typedef)
        self.check_summaries(typedef)
        for field_name, field in typedef.own_fields.items():
            kind = field.kind
            path = ("types", name, "fields", field_name)
            if isinstance(kind, RefKind) and kind.where is not None and self.knows_fields(kind.to):
                self.check_filter(kind.where, self.typedefs[kind.to], path + ("where",), typedef)
            if isinstance(kind, ComputedKind) and kind.aggregate is not None:
                self.check_aggregate(typedef, field_name, kind, path + ("aggregate",))
            for option in ("required_when", "shown_when"):
                condition = getattr(field, option)
                if condition is not None:
                    self.check_filter(condition, typedef, path + (option,))
            if field.copied_from is not None:
                self.check_copy(typedef, field_name, field, path + ("copied_from",))
            if field.suggest is not None:
                self.check_suggest(typedef, field, path + ("suggest",))
            if isinstance(kind, SequenceKind) and kind.assigned_when is not None:
                self.check_filter(kind.assigned_when, typedef, path + ("assigned_when",))

    def check_suggest(self, typedef: TypeDef, field: FieldDef, path: DocPath) -> None:
        """`suggest: {type, filter}` on a text field: a type with a text index, a filter over it."""
        if not isinstance(field.kind, StringKind):
            self.error(path, f"only string and text fields suggest records as they are typed; `{field.name}` is "
                             f"{_a(field.kind.name)} field", on_key=True)
        target_name = field.suggest.get("type")
        target = self.typedefs.get(target_name) if isinstance(target_name, str) else None
        if target is None:
            self.error(path + ("type",), f"`{target_name}` is not a type", hint_for(str(target_name), self.type_names))
            return
        if not self.knows_fields(target_name):
            return
        if target.text_index is None:
            self.error(path + ("type",), f"`{target_name}` has no text index to search as people type",
                       f"add `{{text: [...]}}` to the `index` of type `{target_name}`")
        if isinstance(field.suggest.get("filter"), Mapping):
            self.check_filter(field.suggest["filter"], target, path + ("filter",))

    def check_constraints(self, typedef: TypeDef) -> None:
        """`no_overlap`: the other type, its matched and period fields (indexed), ours."""
        for position, constraint in enumerate(typedef.constraints):
            spec = constraint["no_overlap"]
            path = ("types", typedef.name, "constraints", position, "no_overlap")
            other = self.typedefs.get(spec.get("type")) if isinstance(spec.get("type"), str) else None
            if other is None:
                self.error(path + ("type",), f"`{spec.get('type')}` is not a type",
                           hint_for(str(spec.get("type")), self.type_names))
                continue
            if not self.knows_fields(other.name):
                continue
            pairs = [(theirs, ours, path + ("match", theirs)) for theirs, ours in (spec.get("match") or {}).items()]
            pairs += [(theirs, ours, path + (key, position))
                      for key in ("period",) for position, (theirs, ours)
                      in enumerate(zip(spec.get("period") or (), spec.get("during") or ()))]
            for theirs, ours, where in pairs:
                if theirs not in other.fields or other.index_for(theirs) is None:
                    self.error(where, f"`{theirs}` is not an indexed field of `{other.name}`",
                               hint_for(str(theirs), [n for n in other.fields if other.index_for(n)]))
                if ours not in typedef.fields:
                    self.error(where, f"`{ours}` is not a field of `{typedef.name}`", hint_for(str(ours), typedef.fields))
            for key, owner in (("period", other), ("during", typedef)):
                for position, name in enumerate(spec.get(key) or ()):
                    field = owner.fields.get(name)
                    if field is not None and field.kind.name not in ("date", "datetime"):
                        self.error(path + (key, position), f"`{name}` of `{owner.name}` is not a date or datetime field")
            if isinstance(spec.get("where"), Mapping):
                self.check_filter(spec["where"], other, path + ("where",))

    def check_summaries(self, typedef: TypeDef) -> None:
        """A summary counts records of `of` pointing here through `via`, by an indexed field."""
        for position, spec in enumerate(typedef.summaries):
            path = ("types", typedef.name, "summaries", position)
            source = self.typedefs.get(spec.get("of")) if isinstance(spec.get("of"), str) else None
            if source is None:
                self.error(path + ("of",), f"`{spec.get('of')}` is not a type", hint_for(str(spec.get("of")), self.type_names))
                continue
            if not self.knows_fields(source.name):
                continue
            via = source.fields.get(spec.get("via"))
            if via is None or not isinstance(via.kind, RefKind) or via.kind.to != typedef.name \
                    or source.index_for(via.name) is None:
                refs = [n for n, f in source.fields.items() if isinstance(f.kind, RefKind) and f.kind.to == typedef.name]
                self.error(path + ("via",), f"`{spec.get('via')}` is not an indexed ref field of `{source.name}` "
                                            f"pointing at `{typedef.name}`", hint_for(str(spec.get("via")), refs))
            by = source.fields.get(spec.get("by"))
            if by is None or by.kind.name not in ("enum", "ref", "user", "boolean", "string", "tags") \
                    or source.index_for(by.name) is None:
                self.error(path + ("by",), f"a summary counts the values of an indexed enum, ref, user, boolean, "
                                           f"tags or string field of `{source.name}`; `{spec.get('by')}` is not one")
            if isinstance(spec.get("filter"), Mapping):
                self.check_filter(spec["filter"], source, path + ("filter",))

    def check_copy(self, typedef: TypeDef, field_name: str, field: FieldDef, path: DocPath) -> None:
        """Each path of `copied_from`: a ref of the type, then a field of its target of the same kind."""
        def same_kind(source: FieldDef) -> bool:
            return (type(source.kind) is type(field.kind)
                    and getattr(source.kind, "to", None) == getattr(field.kind, "to", None))
        spec = ((self.data.get("types") or {}).get(typedef.name) or {}).get("fields") or {}
        listed = isinstance(spec.get(field_name), dict) and isinstance(spec[field_name].get("copied_from"), list)
        for position, (ref_name, target) in enumerate(field.copied_from):
            ref = typedef.fields.get(ref_name)
            if ref is not None and isinstance(ref.kind, RefKind) and not self.knows_fields(ref.kind.to):
                continue                            # its target's own problem is reported already
            check_ref_path(f"{ref_name}.{target}", typedef, SimpleNamespace(types=self.typedefs), same_kind,
                           f"a {field.kind.name} field like `{field_name}`", path + ((position,) if listed else ()),
                           self.positions, self.errors)

    def check_aggregate(self, typedef: TypeDef, field_name: str, kind: ComputedKind, path: DocPath) -> None:
        spec = kind.aggregate
        of, via, function = spec.get("of"), spec.get("via"), spec.get("function")
        if not isinstance(of, str):
            return
        if of not in self.type_names:
            self.error(path + ("of",), f"the aggregate counts records of `{of}`, which is not a type",
                       hint_for(of, self.type_names))
            return
        source = self.typedefs.get(of)
        if source is None or not self.knows_fields(of):
            return
        if isinstance(via, str):
            via_field = source.fields.get(via)
            if via_field is None:
                self.error(path + ("via",), f"`{via}` is not a field of type `{of}`", hint_for(via, source.fields))
            elif not isinstance(via_field.kind, RefKind) or via_field.kind.to != typedef.name:
                points = (f"it points at `{via_field.kind.to}`" if isinstance(via_field.kind, RefKind)
                          else f"it is {_a(via_field.kind.name)} field")
                refs = [n for n, f in source.own_fields.items() if isinstance(f.kind, RefKind) and f.kind.to == typedef.name]
                self.error(path + ("via",), f"`via` must be a ref field of `{of}` pointing at `{typedef.name}`; "
                                            f"`{via}` is not ({points})",
                           hint_for(via, refs) or (f"use {', '.join(refs)}" if refs else None))
            elif source.index_for(via) is None:
                self.error(path + ("via",), f"`{via}` of type `{of}` must be indexed for the aggregate to find "
                                            f"the related records", f"add `{via}` to the `index` of type `{of}`")
        target = spec.get("field")
        if isinstance(target, str):
            target_field = source.fields.get(target)
            if target_field is None:
                self.error(path + ("field",), f"`{target}` is not a field of type `{of}`",
                           hint_for(target, source.fields))
            else:
                target_kind = target_field.kind
                target_kind = target_kind.result if isinstance(target_kind, ComputedKind) else target_kind
                if function == "sum" and target_kind.name not in _NUMERIC:
                    self.error(path + ("field",), f"`{target}` is {_a(target_kind.name)} field, which cannot be summed",
                               f"sum a field of kind {', '.join(_NUMERIC)}")
                elif function in ("min", "max") and (not target_kind.sortable or target_kind.multiple):
                    self.error(path + ("field",), f"`{target}` is {_a(target_kind.name)} field, which has no {function}")
        elif function in ("sum", "min", "max"):
            self.error(path, f"the aggregate `{function}` needs `field`: the field of `{of}` to compute over",
                       on_key=True)
        if function == "count" and kind.result.name != "integer":
            self.error(path + ("function",), f"a count is a whole number, but the result is `{kind.result.name}`",
                       "write `result: integer`")
        where = spec.get("where")
        if isinstance(where, dict):
            self.check_filter(where, source, path + ("where",), typedef)

    def check_filter(self, spec: Any, target: TypeDef, path: DocPath, record_type: TypeDef | None = None) -> None:
        """Compile a filter as the engine will, reporting its problem at the part at fault."""
        self.errors += filter_errors(spec, target, path, self.positions, record_type)

    # -- views ----------------------------------------------------------------------------

    def view(self, name: str, spec: dict) -> ViewDef:
        path = ("views", name)
        type_name = spec.get("type")
        typedef = self.typedefs.get(type_name) if isinstance(type_name, str) else None
        if isinstance(type_name, str) and type_name not in self.type_names:
            self.error(path + ("type",), f"view `{name}` lists records of `{type_name}`, which is not a type",
                       hint_for(type_name, self.type_names))
        columns = self.names(spec.get("columns"))
        sort = self.names(spec.get("sort"))
        roles = self.names(spec.get("roles"))
        if typedef is not None and self.knows_fields(type_name):
            for position, column in enumerate(columns):
                if column not in typedef.fields:
                    self.error(path + ("columns", position), f"column `{column}` is not a field of type `{type_name}`",
                               hint_for(column, typedef.fields))
            for position, entry in enumerate(sort):
                field_name = entry[1:] if entry.startswith("-") else entry
                field = typedef.fields.get(field_name)
                if not field_name:   # a bare `-`, reported by the schema
                    continue
                if field is None:
                    self.error(path + ("sort", position), f"cannot sort on `{field_name}`: it is not a field of "
                                                          f"type `{type_name}`", hint_for(field_name, typedef.fields))
                elif (type_name, field_name) not in self.broken and not self.sortable(field.kind):
                    self.error(path + ("sort", position),
                               f"cannot sort on `{field_name}`: {_a(field.kind.name)} field has no order")
        for position, role in enumerate(roles):
            if role not in self.roles:
                self.error(path + ("roles", position), f"role `{role}` is not defined in `roles`",
                           hint_for(role, self.roles))
        view_filter = spec.get("filter")
        if isinstance(view_filter, dict) and typedef is not None and self.knows_fields(type_name):
            self.check_filter(view_filter, typedef, path + ("filter",))
        chart = spec.get("chart") if isinstance(spec.get("chart"), str) else None
        average = None
        if isinstance(spec.get("chart"), dict):
            chart = spec["chart"].get("by") if isinstance(spec["chart"].get("by"), str) else None
            average = spec["chart"].get("average") if isinstance(spec["chart"].get("average"), str) else None
        if average and typedef is not None and self.knows_fields(type_name):
            number = typedef.fields.get(average)
            kind = number.kind.result if number is not None and isinstance(number.kind, ComputedKind) else \
                getattr(number, "kind", None)
            if kind is None or kind.name not in _NUMERIC or typedef.index_for(average) is None:
                self.error(path + ("chart", "average"), f"a chart averages an indexed number field "
                                                        f"({', '.join(_NUMERIC)}); `{average}` is not one",
                           hint_for(average, [n for n, f in typedef.fields.items() if typedef.index_for(n)]))
        if chart and typedef is not None and self.knows_fields(type_name):
            field = typedef.fields.get(chart)
            if field is None:
                self.error(path + (("chart", "by") if average else ("chart",)), f"`{chart}` is not a field of type `{type_name}`",
                           hint_for(chart, typedef.fields))
            elif field.kind.name not in ("enum", "ref", "user", "boolean", "string", "tags") or \
                    typedef.index_for(chart) is None:
                self.error(path + ("chart",), f"a chart counts the values of an indexed enum, ref, user, boolean, "
                                              f"tags or string field; `{chart}` is not one")
        bulk = []
        for position, action in enumerate(spec.get("bulk") or ()):
            if not isinstance(action, dict):
                continue
            where = path + ("bulk", position)
            made = self.typedefs.get(action.get("create"))
            if made is None:
                self.error(where + ("create",), f"`{action.get('create')}` is not a type",
                           hint_for(action.get("create"), self.type_names))
                continue
            via = made.fields.get(action.get("via"))
            if via is None or via.kind.name != "ref" or via.kind.to != type_name:
                self.error(where + ("via",), f"`{action.get('via')}` is not a ref field of `{made.name}` pointing "
                                             f"at `{type_name}`",
                           hint_for(action.get("via"), [n for n, f in made.fields.items()
                                                        if f.kind.name == "ref" and f.kind.to == type_name]))
                continue
            split = action.get("split")
            if split is not None and getattr(made.fields.get(split), "kind", None) is not None and \
                    made.fields[split].kind.name not in ("duration", "integer", "decimal", "money"):
                self.error(where + ("split",), f"`{split}` cannot be split: a bulk action shares a duration or a "
                                               f"number among the records it makes")
            elif split is not None and split not in made.fields:
                self.error(where + ("split",), f"`{split}` is not a field of `{made.name}`",
                           hint_for(split, made.fields))
            bulk.append(freeze_plain(action))
        return ViewDef(
            name=name,
            type=type_name if isinstance(type_name, str) else "",
            label=_freeze(spec.get("label")),
            columns=columns,
            filter=freeze_plain(view_filter) if isinstance(view_filter, dict) else None,
            sort=sort,
            roles=roles,
            chart=chart,
            chart_average=average,
            bulk=tuple(bulk),
        )

    @staticmethod
    def names(value: Any) -> tuple[str, ...]:
        return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()

    @staticmethod
    def sortable(kind: Kind) -> bool:
        kind = kind.result if isinstance(kind, ComputedKind) else kind
        return kind.sortable and not kind.multiple


def _copy_paths(spec: Any) -> tuple[tuple[str, str], ...]:
    """`copied_from` as (ref, field) pairs, whether one path or a list was written."""
    paths = [spec] if isinstance(spec, str) else spec if isinstance(spec, list) else []
    return tuple(tuple(path.split(".", 1)) for path in paths if isinstance(path, str) and "." in path)


def thaw(value: Any) -> Any:
    """Plain dicts and lists again, for code that builds on a filter spec."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    return value
