"""The `documents:` section (P19): which PDF documents exist, for which type, made from which
sandboxed HTML template, by whom, and where a copy is kept; templates are compiled when the
definitions load, so a broken one is reported at start with its place. Also what the
workflow effect `keep_document` accepts."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field as _field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jinja2 import ChainableUndefined, FileSystemLoader, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from deskbase.objects.compiling import Section, definition_error
from deskbase.objects.errors import DefinitionError, DeskbaseError, NotFound, hint_for
from deskbase.objects.fields import AttachmentsKind, label_text
from deskbase.objects.model import Definitions, TypeDef

from .formatting import TEMPLATE_FILTERS

FILENAME_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


class DocumentError(DeskbaseError):
    """A document that could not be made: its template failed, or it cannot be stored."""


@dataclass(frozen=True)
class Document:
    """One document: the type it is made from, its template, who may make it and where a
    copy is kept. `roles` None: whoever may read the record."""

    name: str
    type: str
    label: Any
    folder: Path                 # the template's folder: what the template and the PDF may read
    template: str                # its file name inside `folder`
    environment: Any = _field(repr=False, compare=False)
    roles: tuple[str, ...] | None = None
    attach_to: str | None = None
    filename: str = "{number}.pdf"

    def title(self, language: str = "en") -> str:
        return label_text(self.label, language, self.name.replace("_", " "))


@dataclass(frozen=True)
class Documents:
    """The compiled `documents:` section, by name and by type (in YAML order)."""

    by_name: Mapping[str, Document] = _field(default_factory=lambda: MappingProxyType({}))

    def of_type(self, type_name: str) -> list[Document]:
        return [document for document in self.by_name.values() if document.type == type_name]


_LABEL = {"type": ["string", "object"], "x-noun": "a label: a text or a map of languages such as {en: Report}"}


_SCHEMA = {
    "type": ["object", "null"],
    "x-noun": "a map of documents",
    "description": "PDF documents made from a record with an HTML template, by name",
    "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "a document name in lower_snake_case"},
    "additionalProperties": {
        "type": "object",
        "x-noun": "a document: a map with type, label and template",
        "x-member": "a setting of a document (type, label, template, roles, attach_to, filename)",
        "required": ["type", "template"],
        "properties": {
            "type": {"type": "string", "x-noun": "a type name", "description": "the type of the records it is made from"},
            "label": _LABEL | {"description": "what people read on the button that makes it"},
            "template": {"type": "string", "x-noun": "an HTML file beside the definitions, such as documents/report.html",
                         "description": "its HTML template, beside the definitions, such as documents/report.html"},
            "roles": {"type": "array", "minItems": 1, "items": {"type": "string"}, "x-noun": "a list of role names",
                      "description": "the roles that may make it"},
            "attach_to": {"type": "string", "x-noun": "an attachments field of the type",
                          "description": "an attachments field of the type where its PDF is kept"},
            "filename": {"type": "string", "x-noun": "a file name such as {number}-report.pdf",
                         "description": "the name of its PDF, such as {number}-report.pdf"},
        },
        "additionalProperties": False,
    },
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[Documents, list[DefinitionError]]:
    errors: list[DefinitionError] = []
    environments: dict[Path, SandboxedEnvironment] = {}
    found: dict[str, Document] = {}
    for name, spec in (document.get("documents") or {}).items():
        compiled = _compile_document(name, spec, positions, definitions, environments, errors)
        if compiled is not None:
            found[name] = compiled
    return Documents(MappingProxyType(found)), errors


def _compile_document(name: str, spec: Mapping[str, Any], positions, definitions: Definitions,
                      environments: dict[Path, SandboxedEnvironment], errors: list[DefinitionError]) -> Document | None:
    path = ("documents", name)
    before = len(errors)
    typedef = definitions.types.get(spec["type"])
    if typedef is None:
        errors.append(definition_error(positions, path + ("type",), f"`{spec['type']}` is not a type",
                                       hint_for(spec["type"], definitions.types)))
        return None
    for position, role in enumerate(spec.get("roles") or ()):
        if role not in definitions.roles:
            errors.append(definition_error(positions, path + ("roles", position), f"role `{role}` is not defined "
                                           f"in `roles`", hint_for(role, definitions.roles)))
    attach_to = spec.get("attach_to")
    if attach_to is not None:
        field = typedef.fields.get(attach_to)
        if field is None or not isinstance(field.kind, AttachmentsKind):
            usable = [n for n, f in typedef.fields.items() if isinstance(f.kind, AttachmentsKind)]
            errors.append(definition_error(positions, path + ("attach_to",),
                                           f"`{attach_to}` is not an attachments field of `{typedef.name}`",
                                           hint_for(attach_to, usable) or "declare one: {kind: attachments}"))
    filename = spec.get("filename") or f"{{number}}-{name}.pdf"
    for placeholder in FILENAME_PLACEHOLDER.findall(filename):
        if placeholder != "number" and placeholder not in typedef.fields:
            errors.append(definition_error(positions, path + ("filename",), f"`{{{placeholder}}}` is neither "
                                           f"{{number}} nor a field of `{typedef.name}`",
                                           hint_for(placeholder, list(typedef.fields) + ["number"])))
    # The template is read beside the YAML file that names it (an overlay's own folder, too).
    base = Path(positions.locate(path + ("template",)).file).parent
    template_path = (base / spec["template"])
    if ".." in Path(spec["template"]).parts or Path(spec["template"]).is_absolute():
        errors.append(definition_error(positions, path + ("template",), f"`{spec['template']}` leaves the "
                                       "definitions folder", "keep templates in a folder beside the YAML files, "
                                       "such as documents/report.html"))
        return None
    if not template_path.is_file():
        errors.append(definition_error(positions, path + ("template",), f"there is no file `{template_path}`",
                                       "write the path from the definitions folder, such as documents/report.html"))
        return None
    folder = template_path.parent.resolve()
    if folder not in environments:
        environments[folder] = _environment(folder)
        errors += _template_errors(environments[folder], folder)
    if len(errors) > before:
        return None
    roles = tuple(spec["roles"]) if spec.get("roles") else None
    return Document(name, typedef.name, spec.get("label"), folder, template_path.name, environments[folder], roles,
                    attach_to, filename)


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, refusing out loud: reaching for Python's insides (`record.__class__`,
    `related.__globals__`) stops the document instead of printing nothing."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"a document may not read `{attribute}` of a {type(obj).__name__}")


def _environment(folder: Path) -> SandboxedEnvironment:
    environment = _Sandbox(loader=FileSystemLoader(str(folder)), autoescape=True, auto_reload=False,
                                       undefined=ChainableUndefined,
                                       finalize=lambda value: "" if value is None else value)
    environment.filters.update(TEMPLATE_FILTERS)
    return environment


def _template_errors(environment: SandboxedEnvironment, folder: Path) -> list[DefinitionError]:
    """Compile every HTML template of a folder (those included by others too): a mistake is
    reported at load, at its file and line, not when someone asks for the document."""
    errors = []
    for name in environment.list_templates(extensions=["html"]):
        try:
            environment.get_template(name)
        except TemplateSyntaxError as error:
            errors.append(DefinitionError(str(folder / name), error.lineno or 1, 1, "documents",
                                          f"the template does not read: {error.message}",
                                          "templates are Jinja2: {{ record.text('field') }}, {% for … %}…{% endfor %}"))
    return errors


DOCUMENTS_SECTION = Section("documents", "top", _SCHEMA, _compile)


def documents(definitions: Definitions) -> Documents:
    """The compiled documents of definitions (none when loaded without the section)."""
    return definitions.extensions.get("documents") or Documents()


def document_named(definitions: Definitions, name: str) -> Document:
    """The document called `name`, or NotFound."""
    found = documents(definitions).by_name.get(name)
    if found is None:
        hint = hint_for(name, documents(definitions).by_name)
        raise NotFound(f"there is no document `{name}`" + (f"; {hint}" if hint else ""))
    return found


def check_effect(spec: Any, definitions: Definitions, positions, path: tuple,
                 typedef: TypeDef) -> tuple[tuple[str, ...], list[DefinitionError]]:
    """The names of `attach_document: NAME` (or a list of names) of a transition of `typedef`,
    checked against the `documents:` written in the definitions."""
    names = (spec,) if isinstance(spec, str) else tuple(spec)
    written = definitions.document.get("documents") or {}
    errors = []
    for position, name in enumerate(names):
        where = path if isinstance(spec, str) else path + (position,)
        entry = written.get(name)
        if not isinstance(entry, Mapping):
            errors.append(definition_error(positions, where, f"`{name}` is not a document of `documents:`",
                                           hint_for(name, written)))
        elif entry.get("type") != typedef.name:
            errors.append(definition_error(positions, where, f"`{name}` is made from {entry.get('type')} records, "
                                           f"not from {typedef.name} records"))
        elif not entry.get("attach_to"):
            errors.append(definition_error(positions, where, f"`{name}` has no `attach_to` field to keep it in",
                                           "add `attach_to: <an attachments field>` to the document"))
    return names, errors


EFFECT_SCHEMA: Mapping[str, Any] = {
    "type": ["string", "array"], "items": {"type": "string", "x-noun": "a document name"}, "minItems": 1,
    "x-noun": "a document name (or a list of them) whose PDF is kept in its `attach_to` field",
    "description": "documents made of the record, their PDF kept in their attach_to field"}
