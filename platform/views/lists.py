"""What a list view shows one person: the view's filter with the page's search and ad-hoc
filter, its sort and the columns they may see. The list page and its Excel export both
read a list through `read_listing`, so an export holds exactly what the page shows."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deskbase.objects.errors import QueryError
from deskbase.objects.filters import KEYWORDS, parse_filter_text
from deskbase.objects.model import Definitions, TypeDef, ViewDef
from deskbase.rules.access.scopes import hidden_fields


@dataclass(frozen=True)
class Listing:
    """A list view as one person asked for it. `filter` goes to `Session.query`, which ANDs
    the person's read scope in; `problem` says why part of the request was left out."""

    view: ViewDef
    typedef: TypeDef
    filter: Any
    sort: str
    text: str                   # the search box, as typed
    extra: str                  # the ad-hoc filter, as typed
    columns: tuple[str, ...]    # the view's columns less the fields hidden from the person
    problem: str | None = None

    @property
    def state(self) -> dict[str, str]:
        """The query parameters that reproduce this list (`sort`, `q`, `f`)."""
        return {"sort": self.sort, "q": self.text, "f": self.extra}


def read_listing(definitions: Definitions, view: ViewDef, params: Mapping[str, str], identity: Any) -> Listing:
    """The filter, sort and visible columns of `view` for `identity`, from a page's query
    parameters: `sort` (as `-priority,reported_at`), `q` (full text) and `f` (a filter in
    the filter language). A sort or filter naming a hidden field is left out with a
    problem, so nobody can sort or filter their way to a value they may not see."""
    typedef = definitions.type(view.type)
    hidden = hidden_fields(identity, typedef, definitions)
    problem = None
    sort = params.get("sort") or ",".join(view.sort)
    hidden_keys = [key for key in sort.split(",") if key.strip().lstrip("+-").strip() in hidden]
    if hidden_keys:
        problem = f"This list cannot be sorted by `{hidden_keys[0].strip().lstrip('+-')}`."
        sort = ",".join(view.sort)
    text = (params.get("q") or "").strip()
    extra = None
    if params.get("f"):
        try:
            extra = parse_filter_text(params["f"])
        except QueryError as error:
            problem = f"The filter does not read ({error.said}); write it like {{status: open}}."
        named = sorted(_field_names(extra) & hidden)
        if named:
            problem, extra = f"The filter names `{named[0]}`, which this list cannot filter on.", None
    filters = [f for f in (view.filter, extra, {"text": text} if text and typedef.text_index else None) if f]
    spec = {"all": filters} if len(filters) > 1 else (filters[0] if filters else None)
    columns = tuple(c for c in view.columns if c not in hidden)
    return Listing(view, typedef, spec, sort, text, params.get("f", ""), columns, problem)


def column_title(typedef: TypeDef, name: str, language: str) -> str:
    """A column's header in `language`: the field's label; `id` is the record's number."""
    field = typedef.fields.get(name)
    if field is not None:
        return field.title(language)
    return "Number" if name == "id" else name


def _field_names(spec: Any) -> set[str]:
    """Every field a filter names, at any depth (`all`, `any`, `not` hold other filters)."""
    if isinstance(spec, list):
        return set().union(*(_field_names(item) for item in spec)) if spec else set()
    if not isinstance(spec, Mapping):
        return set()
    names = set()
    for key, operand in spec.items():
        if key in KEYWORDS:
            names |= _field_names(operand) if key != "text" else set()
        else:
            names.add(str(key))
    return names
