"""A record page laid out as its type's `page:` says: badges in the header (enum labels in
their declared colours), the fields shown above the conversation, and the side panel's
sections. Without `page:`, the state of its workflow is the badge, long texts go above the
conversation and the rest in one section. A field nobody placed goes to a last section,
folded; an empty field is shown only to someone who may fill it, folded in its section."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deskbase.objects.fields import EnumKind, TextKind, label_text
from deskbase.objects.model import TypeDef
from deskbase.rules.process.workflows import workflow_of


def _placing(definitions, typedef: TypeDef) -> tuple[list[str], list[str], list[tuple[Any, list[str]]]]:
    """(badges, main, [(section label, fields)]) of a type, declared or by default."""
    page = typedef.page
    if page is not None:
        return (list(page.get("badges") or ()), list(page.get("main") or ()),
                [(section.get("label"), list(section.get("fields") or ())) for section in page.get("panel") or ()])
    workflow = workflow_of(definitions, typedef.name)
    badges = [workflow.field] if workflow is not None and isinstance(typedef.fields[workflow.field].kind, EnumKind) \
        else []
    main = [name for name, field in typedef.fields.items() if isinstance(field.kind, TextKind) and not field.system]
    return badges, main, [(None, [name for name in typedef.fields if name not in main])]


def page_layout(definitions, typedef: TypeDef, fields: list[dict[str, Any]], record, language: str,
                t) -> dict[str, Any]:
    """Badges, main fields and panel sections from the field views of a record's page
    (those the person may see: `text`, `editable`, `join`…)."""
    shown = {field["name"]: field for field in fields}
    badge_names, main_names, sections = _placing(definitions, typedef)
    badges = []
    for name in badge_names:
        value = record.get(name)
        if name in shown and value is not None:
            colors = typedef.fields[name].colors or {}
            badges.append({"name": name, "title": shown[name]["title"], "text": shown[name]["text"],
                           "color": colors.get(value, "grey")})
    placed = set(main_names) | {name for _, names in sections for name in names}
    rest = [name for name in shown if name not in placed and name not in badge_names]
    panel = []
    for label, names in sections + ([(t("More details"), rest)] if rest and typedef.page is not None else []):
        filled = [shown[name] for name in names if name in shown and _filled(shown[name])]
        empty = [shown[name] for name in names if name in shown and not _filled(shown[name]) and _fillable(shown[name])]
        if filled or empty:
            panel.append({"label": label_text(label, language, "") if label is not None else "",
                          "fields": filled, "empty": empty, "folded": label is not None and names is rest})
    main = [shown[name] for name in main_names if name in shown and (_filled(shown[name]) or _fillable(shown[name]))]
    return {"badges": badges, "main_fields": main, "panel": panel}


def _filled(field: Mapping[str, Any]) -> bool:
    return bool(field["text"]) or bool(field["join"])        # a list one may join is shown, even empty


def _fillable(field: Mapping[str, Any]) -> bool:
    return bool(field["editable"] or field["join"])
