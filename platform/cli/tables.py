"""Records and rows printed as the terminal's width allows."""
from __future__ import annotations

import shutil

from deskbase.objects.model import TypeDef
from deskbase.views.display import field_text


def default_columns(typedef: TypeDef) -> list[str]:
    """The columns shown when none are asked: the id, the title and up to five indexed fields."""
    columns = ["id"]
    if typedef.title_field:
        columns.append(typedef.title_field)
    for name, field in typedef.own_fields.items():
        if len(columns) >= 7:
            break
        if name not in columns and field.kind.name not in ("text", "attachments", "computed") and typedef.index_for(name):
            columns.append(name)
    return columns


def cell(session, typedef: TypeDef, record, name: str) -> str:
    """A field of a record as people read it."""
    return field_text(session, typedef, record.values, name, number=record.number, localized=False)


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Rows under their headers, in columns cut to fit the terminal."""
    width = shutil.get_terminal_size((160, 20)).columns
    limit = max(12, (width - 2 * len(headers)) // max(1, len(headers)))
    cut = [[c if len(c) <= limit else c[: limit - 1] + "…" for c in row] for row in rows]
    sizes = [max([len(h)] + [len(r[i]) for r in cut]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(sizes[i]) for i, h in enumerate(headers)).rstrip(),
             "  ".join("-" * s for s in sizes)]
    lines += ["  ".join(c.ljust(sizes[i]) for i, c in enumerate(row)).rstrip() for row in cut]
    return "\n".join(lines)
