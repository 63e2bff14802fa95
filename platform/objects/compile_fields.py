"""Compiling the fields of a type: kinds and their options, defaults, computed fields
(expressions, aggregates), copies, suggestions and snippets, each checked against the rest."""
from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType, SimpleNamespace
from typing import Any

from . import metaschema
from .compiling import (
    CONTEXT_WORD,
    DEFAULT_WORDS,
    NUMERIC_KINDS,
    CompilerPart,
    check_expression,
    check_ref_path,
    record_fields_read,
    with_article,
)
from .errors import DefinitionError, FieldError, hint_for
from .fields import (
    KINDS,
    AttachmentsKind,
    ComputedKind,
    DateTimeKind,
    EnumKind,
    Kind,
    RefKind,
    StringKind,
    TextKind,
    parse_duration,
)
from .frozen import freeze, freeze_plain
from .model import SYSTEM_FIELDS, FieldDef, TypeDef
from .sourcemap import DocPath, format_path


def copy_paths(spec: Any) -> tuple[tuple[str, str], ...]:
    """`copied_from` as (ref, field) pairs, whether one path or a list was written."""
    paths = [spec] if isinstance(spec, str) else spec if isinstance(spec, list) else []
    pairs = (path.split(".", 1) for path in paths if isinstance(path, str) and "." in path)
    return tuple((ref, name) for ref, name in pairs)


def _same_values(one: Kind, other: Kind) -> bool:
    """Whether a value of one kind fits the other: the same kind, enum values, ref target."""
    return (type(one) is type(other) and getattr(one, "values", None) == getattr(other, "values", None)
            and getattr(one, "to", None) == getattr(other, "to", None))


class FieldCompiling(CompilerPart):
    """The fields part of the definitions' compiler (`definitions._Compiler`)."""

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
            label=freeze(spec.get("label")),
            required=required if isinstance(required, bool) else False,
            default=default,
            help=freeze(spec.get("help")),
            renamed_from=renamed_from if isinstance(renamed_from, str) else None,
            required_when=freeze_plain(spec["required_when"]) if isinstance(spec.get("required_when"), dict) else None,
            shown_when=freeze_plain(spec["shown_when"]) if isinstance(spec.get("shown_when"), dict) else None,
            copied_from=copy_paths(spec.get("copied_from")),
            suggest=freeze_plain(spec["suggest"]) if isinstance(spec.get("suggest"), dict) else None,
            # the schema refuses these on other kinds; the field then has none
            join=freeze_plain(spec["join"]) if kind_name == "users" and isinstance(spec.get("join"), dict) else None,
            offer=freeze_plain(spec["offer"]) if kind_name == "user" and isinstance(spec.get("offer"), dict) else None,
            snippets=freeze_plain(spec["snippets"]) if kind_name == "text" and isinstance(spec.get("snippets"), dict)
            else None,
            colors=self.colors(kind, spec.get("colors"), path + ("colors",)) if kind_name == "enum" else None,
            format=spec["format"] if kind_name == "text" and spec.get("format") in ("plain", "markdown") else "plain",
        )

    def kind(self, kind_name: str, spec: dict, path: DocPath, zone: str) -> Kind:
        options: dict[str, Any] = {}
        for option in metaschema.KIND_OPTIONS[kind_name]:
            if option in metaschema.FIELD_LEVEL_OPTIONS.get(kind_name, ()):
                continue
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
            return DateTimeKind(zone=zone) if value == "datetime" else KINDS[value]()
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
                labels[name] = freeze(label)
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
        if isinstance(raw, str) and CONTEXT_WORD.fullmatch(raw):
            if raw in DEFAULT_WORDS and kind.name in DEFAULT_WORDS[raw]:
                return raw
            if raw in DEFAULT_WORDS:
                fits = " and ".join(DEFAULT_WORDS[raw])
                self.error(path, f"`{raw}` cannot be the default of {with_article(kind.name)} field; it fits {fits} fields")
            else:
                self.error(path, f"`{raw}` is not a value the engine can fill in; a default may be "
                                 "`$now`, `$today` (dates and times), `$me` (users), `$only_choice` or `$me.person` (refs)",
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
            self.error(path, f"the default `{raw}` does not fit {with_article(kind.name)} field: {exc}")
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
            for read in record_fields_read(kind.expression):
                if read not in fields:
                    self.error(path, f"the expression reads `record.{read}`, but `{read}` is not a field of "
                                     f"type `{type_name}`", hint_for(read, fields))
                elif read == name:
                    self.error(path, f"the expression of `{name}` reads `{name}` itself")

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
        assert spec is not None                     # asked only of a field with an aggregate
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
                          else f"it is {with_article(via_field.kind.name)} field")
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
                if function == "sum" and target_kind.name not in NUMERIC_KINDS:
                    self.error(path + ("field",), f"`{target}` is {with_article(target_kind.name)} field, which cannot be summed",
                               f"sum a field of kind {', '.join(NUMERIC_KINDS)}")
                elif function in ("min", "max") and (not target_kind.sortable or target_kind.multiple):
                    self.error(path + ("field",), f"`{target}` is {with_article(target_kind.name)} field, which has no {function}")
        elif function in ("sum", "min", "max"):
            self.error(path, f"the aggregate `{function}` needs `field`: the field of `{of}` to compute over",
                       on_key=True)
        if function == "count" and kind.result.name != "integer":
            self.error(path + ("function",), f"a count is a whole number, but the result is `{kind.result.name}`",
                       "write `result: integer`")
        where = spec.get("where")
        if isinstance(where, dict):
            self.check_filter(where, source, path + ("where",), typedef)

    def check_suggest(self, typedef: TypeDef, field: FieldDef, path: DocPath) -> None:
        """`suggest: {type, filter}` on a text field: a type with a text index, a filter over it."""
        if not isinstance(field.kind, StringKind):
            self.error(path, f"only string and text fields suggest records as they are typed; `{field.name}` is "
                             f"{with_article(field.kind.name)} field", on_key=True)
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

    def colors(self, kind: Kind, spec: Any, path: DocPath) -> Any:
        """An enum's colours, each for one of its values."""
        if not isinstance(spec, dict):
            return None
        values = getattr(kind, "values", ())
        for value in spec:
            if value not in values:
                self.error(path + (value,), f"`{value}` is not a value of this enum", hint_for(str(value), values),
                           on_key=True)
        return freeze_plain(spec)

    def check_join(self, field: FieldDef, path: DocPath) -> None:
        """`join: {roles}` on a users field: roles the definitions declare."""
        for position, role in enumerate(field.join.get("roles") or ()):
            if role not in self.roles:
                self.error(path + ("roles", position), f"`{role}` is not a role of the definitions",
                           hint_for(str(role), self.roles))

    def check_snippets(self, typedef: TypeDef, field: FieldDef, path: DocPath) -> None:
        """`snippets: {type, via, text, copy, where}` on a text field: a type whose text field
        is inserted, a ref of this type to the record the entry is written on (what `where`
        reads as `$record` and the placeholders by the ref's name), fields copied alike."""
        spec = field.snippets
        source = self.typedefs.get(spec.get("type")) if isinstance(spec.get("type"), str) else None
        if source is None:
            self.error(path + ("type",), f"`{spec.get('type')}` is not a type", hint_for(str(spec.get("type")), self.type_names))
            return
        via = typedef.fields.get(spec.get("via"))
        if via is None or not isinstance(via.kind, RefKind) or via.kind.multiple:
            refs = [n for n, f in typedef.fields.items() if isinstance(f.kind, RefKind) and not f.kind.multiple]
            self.error(path + ("via",), f"`{spec.get('via')}` is not a ref field of `{typedef.name}` to one record",
                       hint_for(str(spec.get("via")), refs))
            return
        if not self.knows_fields(source.name):
            return
        text = source.fields.get(spec.get("text"))
        if text is None or not isinstance(text.kind, (StringKind, TextKind)):
            usable = [n for n, f in source.fields.items() if isinstance(f.kind, StringKind)]
            self.error(path + ("text",), f"`{spec.get('text')}` is not a text field of `{source.name}`",
                       hint_for(str(spec.get("text")), usable))
        for mine, theirs in (spec.get("copy") or {}).items():
            if mine not in typedef.fields:
                self.error(path + ("copy", mine), f"`{mine}` is not a field of `{typedef.name}`",
                           hint_for(mine, typedef.fields), on_key=True)
            elif theirs not in source.fields:
                self.error(path + ("copy", mine), f"`{theirs}` is not a field of `{source.name}`",
                           hint_for(str(theirs), source.fields))
            elif not _same_values(source.fields[theirs].kind, typedef.fields[mine].kind):
                self.error(path + ("copy", mine), f"`{source.name}.{theirs}` and `{typedef.name}.{mine}` do not "
                                                  "hold the same kind of value (the same kind, values or target)")
        if isinstance(spec.get("where"), Mapping) and self.knows_fields(via.kind.to):
            self.check_filter(spec["where"], source, path + ("where",), self.typedefs[via.kind.to])
