"""Loading definitions: read a folder of YAML files and its overlays, merge them, validate
them against the meta-schema, cross-check every reference, and compile the result into the
frozen objects of `model.py`. Every problem is reported at once, each at its place."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from . import metaschema
from .compile_fields import FieldCompiling
from .compile_indexes import IndexCompiling
from .compile_views import ViewCompiling
from .compiling import Section, filter_errors, offer_errors
from .errors import DefinitionError, DefinitionErrors, hint_for
from .fields import ComputedKind, EnumKind, RefKind, SequenceKind, StringKind
from .frozen import freeze, freeze_plain
from .model import SYSTEM_FIELDS, Definitions, FieldDef, TypeDef, system_fields
from .overlays import apply_overlay, merge_folder
from .sourcemap import DocPath, Document, format_path, read_yaml
from .translations import translate


def load_definitions(folder: str | Path = "definitions", overlays: Sequence[str | Path] = (),
                     sections: Sequence[Section] = ()) -> Definitions:
    """The compiled definitions of a folder and its overlay folders, with the extra
    `sections` of upper layers; raises DefinitionErrors listing every problem found."""
    errors: list[DefinitionError] = []
    sources: list[str] = []
    _, document = _merged(Path(folder), overlays, errors, sources)
    errors += translate(document.data, document.positions, [folder, *overlays])   # labels from locale/*.po
    schema = schema_of(sections) if sections else None
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


def overlaid_documents(folder: str | Path, overlays: Sequence[str | Path]) -> tuple[Any, Any]:
    """The plain document of a definitions folder alone, and with its overlays laid over it
    (neither validated); raises DefinitionErrors when a file cannot be read or merged."""
    errors: list[DefinitionError] = []
    base, merged = _merged(Path(folder), overlays, errors, [])
    if errors:
        raise DefinitionErrors(errors)
    return base.data, merged.data


def merged_document(folder: str | Path, overlays: Sequence[str | Path]) -> Document:
    """The document of a definitions folder with its overlays laid over it, with the positions
    of its values (not validated); raises DefinitionErrors when a file cannot be read or merged."""
    errors: list[DefinitionError] = []
    _, merged = _merged(Path(folder), overlays, errors, [])
    if errors:
        raise DefinitionErrors(errors)
    return merged


def _merged(folder: Path, overlays: Sequence[str | Path], errors: list[DefinitionError],
            sources: list[str]) -> tuple[Document, Document]:
    """The merged document of the base folder, and of the base with every overlay applied,
    problems added to `errors`."""
    base = _read_folder(folder, False, errors, sources)
    layers = [_read_folder(Path(overlay), True, errors, sources) for overlay in overlays]
    if base is None or any(layer is None for layer in layers):
        # A file that cannot be read at all: every later check would only echo its absence.
        raise DefinitionErrors(errors)
    document, merge_errors = merge_folder(base)
    errors += merge_errors
    merged = document
    for layer in layers:
        for overlay in layer or ():
            merged, merge_errors = apply_overlay(merged, overlay)
            errors += merge_errors
    return document, merged


def schema_of(sections: Sequence[Section]) -> dict:
    """The meta-schema with the extra `sections` of upper layers: what definitions are validated with."""
    return metaschema.extended_schema(
        {section.name: dict(section.schema) for section in sections if section.level == "top"},
        {section.name: dict(section.schema) for section in sections if section.level == "type"})


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


class _Compiler(FieldCompiling, IndexCompiling, ViewCompiling):
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

    def knows_fields(self, type_name: object) -> bool:
        """Whether the fields of a type are known well enough to say that one is missing
        (`type_name` as the document wrote it: anything but a type's name is not)."""
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
        self.check_role_pages(views)
        return Definitions(
            types=MappingProxyType(dict(self.typedefs)),
            views=MappingProxyType(views),
            roles=MappingProxyType({name: freeze(spec) for name, spec in self.roles.items()}),
            settings=freeze(settings),
            document=freeze_plain(self.data),
            sources=sources,
        )

    def check_role_pages(self, views: Mapping[str, Any]) -> None:
        """A role's menu and home page name views that exist and are offered to the role."""
        for role, spec in self.roles.items():
            places: list[tuple[DocPath, Any]] = [
                (("roles", role, "menu", position, "views"), section.get("views") or ())
                for position, section in enumerate(spec.get("menu") or ()) if isinstance(section, dict)]
            places.append((("roles", role, "home"), spec.get("home") or ()))
            for path, names in places:
                for position, name in enumerate(names):
                    view = views.get(name)
                    if view is None:
                        self.error(path + (position,), f"`{name}` is not a view", hint_for(str(name), views))
                    elif view.roles and role not in view.roles:
                        self.error(path + (position,), f"the view `{name}` is not offered to the role `{role}`",
                                   f"add `{role}` to the `roles` of view `{name}`")

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
            label=freeze(spec.get("label")),
            number_format=number,
            fields=MappingProxyType(fields),
            indexes=MappingProxyType(self.indexes(name, spec, fields)),
            title_field=title if isinstance(title, str) and title in fields else None,
            plural=freeze(spec.get("plural")),
            constraints=tuple(freeze_plain(item) for item in spec.get("constraints") or ()
                              if isinstance(item, dict) and len(item) == 1
                              and isinstance(item.get("no_overlap") or item.get("ordered"), dict)),
            summaries=tuple(freeze_plain(item) for item in spec.get("summaries") or () if isinstance(item, dict)),
            page=self.page(name, spec.get("page"), fields),
            forms=self.forms(name, spec.get("forms"), fields),
            history=self.history(name, spec.get("history"), fields),
        )

    def page(self, name: str, spec: Any, fields: Mapping[str, FieldDef]) -> Any:
        """A record page's layout: fields of the type, each placed once; badges are enums;
        the diagram is for roles of the definitions."""
        if not isinstance(spec, dict):
            return None
        path: DocPath = ("types", name, "page")
        placed: dict[str, str] = {}         # field → where on the page it is, for the message of a second place
        places: list[DocPath] = [("badges",), ("main",)]
        places += [("panel", position) for position in range(len(spec.get("panel") or ()))]
        for place in places:
            items = spec.get(place[0]) if len(place) == 1 else (spec["panel"][place[1]] or {}).get("fields")
            where = path + place + (() if len(place) == 1 else ("fields",))
            for position, field_name in enumerate(items or ()):
                if field_name not in fields:
                    self.error(where + (position,), f"`{field_name}` is not a field of type `{name}`",
                               hint_for(str(field_name), fields))
                elif place == ("badges",) and not isinstance(fields[field_name].kind, EnumKind):
                    self.error(where + (position,), f"`{field_name}` is not an enum field: a badge shows an "
                                                    "enum's label in its colour")
                elif field_name in placed and place != ("badges",):
                    self.error(where + (position,), f"`{field_name}` is placed twice on the page (first in "
                                                    f"{placed[field_name]})")
                elif place != ("badges",):
                    placed[field_name] = ".".join(str(part) for part in place)
        for position, role in enumerate((spec.get("diagram") or {}).get("roles") or ()):
            if role not in self.roles:
                self.error(path + ("diagram", "roles", position), f"`{role}` is not a role of the definitions",
                           hint_for(str(role), self.roles))
        return freeze_plain(spec)

    def forms(self, name: str, spec: Any, fields: Mapping[str, FieldDef]) -> Mapping[str, Mapping[str, Any]]:
        """Each role's form: a role of the definitions, fields a person types, values it sets."""
        found = {}
        for role, form, path in self.by_role(name, "forms", spec, fields):
            for position, field_name in enumerate(form.get("fields") or ()):
                field = fields.get(field_name)
                if field is not None and (field.system or not field.kind.writable):
                    self.error(path + ("fields", position), f"`{field_name}` is filled in by the engine: a form "
                                                            "cannot ask it")
            for field_name in form.get("set") or {}:
                if field_name not in fields or fields[field_name].system:
                    self.error(path + ("set", field_name), f"`{field_name}` is not a field of type `{name}`",
                               hint_for(str(field_name), fields), on_key=True)
            found[role] = MappingProxyType({"fields": tuple(form.get("fields") or ()),
                                            "set": freeze_plain(form.get("set") or {})})
        return MappingProxyType(found)

    def history(self, name: str, spec: Any, fields: Mapping[str, FieldDef]) -> Mapping[str, tuple[str, ...]]:
        """Each role's part of the history: the fields whose changes it reads."""
        return MappingProxyType({role: tuple(part.get("fields") or ())
                                 for role, part, _ in self.by_role(name, "history", spec, fields)})

    def by_role(self, name: str, section: str, spec: Any, fields: Mapping[str, FieldDef]):
        """(role, its settings, their path) of a type's section keyed by role (`forms`,
        `history`), each role one of the definitions and each of its `fields` one of the type."""
        for role, part in (spec.items() if isinstance(spec, dict) else ()):
            path = ("types", name, section, role)
            if role not in self.roles:
                self.error(path, f"`{role}` is not a role of the definitions", hint_for(role, self.roles), on_key=True)
            for position, field_name in enumerate((part or {}).get("fields") or ()):
                if field_name not in fields:
                    self.error(path + ("fields", position), f"`{field_name}` is not a field of type `{name}`",
                               hint_for(str(field_name), fields))
            yield role, part or {}, path

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

    # (fields: compile_fields.py; indexes: compile_indexes.py; views: compile_views.py)

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
            if field.join is not None:
                self.check_join(field, path + ("join",))
            if field.offer is not None:
                self.errors += offer_errors(field.offer, self.typedefs, self.roles, path + ("offer",), self.positions)
            if field.snippets is not None:
                self.check_snippets(typedef, field, path + ("snippets",))
            if isinstance(kind, SequenceKind) and kind.assigned_when is not None:
                self.check_filter(kind.assigned_when, typedef, path + ("assigned_when",))


    def check_constraints(self, typedef: TypeDef) -> None:
        """`no_overlap`: the other type, its matched and period fields (indexed), ours;
        `ordered`: two fields of the type of one kind that has an order."""
        for position, constraint in enumerate(typedef.constraints):
            if "ordered" in constraint:
                self.check_order(typedef, constraint["ordered"], ("types", typedef.name, "constraints", position,
                                                                  "ordered", "fields"))
                continue
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

    def check_order(self, typedef: TypeDef, spec: Mapping[str, Any], path: DocPath) -> None:
        kinds = set()
        for position, name in enumerate(spec.get("fields") or ()):
            field = typedef.fields.get(name)
            if field is None or not field.kind.sortable or field.kind.multiple:
                self.error(path + (position,), f"`{name}` is not a field of `{typedef.name}` with an order",
                           hint_for(str(name), [n for n, f in typedef.fields.items() if f.kind.sortable]))
            else:
                kinds.add(field.kind.name)
        if len(kinds) > 1:
            self.error(path, f"`{'` and `'.join(spec['fields'])}` are not of one kind: they cannot be compared")

    def check_summaries(self, typedef: TypeDef) -> None:
        """A summary counts records of `of` pointing here through `via`, by an indexed field."""
        for position, spec in enumerate(typedef.summaries):
            path = ("types", typedef.name, "summaries", position)
            of = spec.get("of")
            source = self.typedefs.get(of) if isinstance(of, str) else None
            if source is None:
                self.error(path + ("of",), f"`{spec.get('of')}` is not a type", hint_for(str(spec.get("of")), self.type_names))
                continue
            if not self.knows_fields(source.name):
                continue
            via_name, by_name = spec.get("via"), spec.get("by")
            via = source.fields.get(via_name) if isinstance(via_name, str) else None
            if via is None or not isinstance(via.kind, RefKind) or via.kind.to != typedef.name \
                    or source.index_for(via.name) is None:
                refs = [n for n, f in source.fields.items() if isinstance(f.kind, RefKind) and f.kind.to == typedef.name]
                self.error(path + ("via",), f"`{spec.get('via')}` is not an indexed ref field of `{source.name}` "
                                            f"pointing at `{typedef.name}`", hint_for(str(spec.get("via")), refs))
            by = source.fields.get(by_name) if isinstance(by_name, str) else None
            if by is None or by.kind.name not in ("enum", "ref", "user", "boolean", "string", "tags") \
                    or source.index_for(by.name) is None:
                self.error(path + ("by",), f"a summary counts the values of an indexed enum, ref, user, boolean, "
                                           f"tags or string field of `{source.name}`; `{spec.get('by')}` is not one")
            if isinstance(spec.get("filter"), Mapping):
                self.check_filter(spec["filter"], source, path + ("filter",))


    def check_filter(self, spec: Any, target: TypeDef, path: DocPath, record_type: TypeDef | None = None) -> None:
        """Compile a filter as the engine will, reporting its problem at the part at fault."""
        self.errors += filter_errors(spec, target, path, self.positions, record_type)

