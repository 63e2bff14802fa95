"""Compiling list views: their type, columns, filter, sort and charts."""
from __future__ import annotations

from typing import Any

from .compiling import NUMERIC_KINDS, CompilerPart, with_article
from .errors import hint_for
from .fields import ComputedKind, Kind, RefKind
from .frozen import freeze, freeze_plain
from .model import TypeDef, ViewDef
from .tallies import EVERY


class ViewCompiling(CompilerPart):
    """The views part of the definitions' compiler (`definitions._Compiler`)."""

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
                               f"cannot sort on `{field_name}`: {with_article(field.kind.name)} field has no order")
        for position, role in enumerate(roles):
            if role not in self.roles:
                self.error(path + ("roles", position), f"role `{role}` is not defined in `roles`",
                           hint_for(role, self.roles))
        view_filter = spec.get("filter")
        if isinstance(view_filter, dict) and typedef is not None and self.knows_fields(type_name):
            self.check_filter(view_filter, typedef, path + ("filter",))
        chart = spec.get("chart") if isinstance(spec.get("chart"), str) else None
        average = total = over = until = None
        every, periods = "month", 12
        settings = spec.get("chart") if isinstance(spec.get("chart"), dict) else {}
        if settings:
            chart, average, total, over, until = (settings.get(key) if isinstance(settings.get(key), str) else None
                                                  for key in ("by", "average", "sum", "over", "open_until"))
            every = str(settings["every"]) if settings.get("every") in EVERY else "month"
            periods = int(settings["periods"]) if isinstance(settings.get("periods"), int) else 12
            if "by" not in settings and "over" not in settings:
                self.error(path + ("chart",), "a chart needs `by` (a field whose values make the bars), `over` (a "
                                              "date field whose periods make the columns), or both")
            if len([part for part in (average, total, until) if part]) > 1:
                self.error(path + ("chart",), "a chart adds up (`sum`), averages (`average`) or counts what is "
                                              "still open (`open_until`): one of them")
            if until and not over:
                self.error(path + ("chart", "open_until"), "what is still open is counted at the end of each period: "
                                                           "give the date that begins a record as `over`")
        if typedef is not None and self.knows_fields(type_name):
            self._check_chart(path, typedef, bool(settings), chart, average, total, over, until)
        bulk = []
        for position, action in enumerate(spec.get("bulk") or ()):
            if not isinstance(action, dict):
                continue
            where = path + ("bulk", position)
            made_name = action.get("create")
            made = self.typedefs.get(made_name) if isinstance(made_name, str) else None
            if made is None:
                self.error(where + ("create",), f"`{action.get('create')}` is not a type",
                           hint_for(action.get("create"), self.type_names))
                continue
            via_name = action.get("via")
            via = made.fields.get(via_name) if isinstance(via_name, str) else None
            if via is None or via.kind.name != "ref" or not isinstance(via.kind, RefKind) or via.kind.to != type_name:
                self.error(where + ("via",), f"`{action.get('via')}` is not a ref field of `{made.name}` pointing "
                                             f"at `{type_name}`",
                           hint_for(action.get("via"), [n for n, f in made.fields.items()
                                                        if f.kind.name == "ref" and isinstance(f.kind, RefKind)
                                                        and f.kind.to == type_name]))
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
            label=freeze(spec.get("label")),
            columns=columns,
            filter=freeze_plain(view_filter) if isinstance(view_filter, dict) else None,
            sort=sort,
            roles=roles,
            chart=chart,
            chart_average=average,
            chart_sum=total,
            chart_open=until,
            chart_over=over,
            chart_every=every,
            chart_periods=periods,
            bulk=tuple(bulk),
        )

    @staticmethod
    def names(value: Any) -> tuple[str, ...]:
        return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()

    @staticmethod
    def sortable(kind: Kind) -> bool:
        kind = kind.result if isinstance(kind, ComputedKind) else kind
        return kind.sortable and not kind.multiple

    def _check_chart(self, path: tuple, typedef: TypeDef, mapped: bool, chart: str | None, average: str | None,
                     total: str | None, over: str | None, until: str | None = None) -> None:
        """A chart's fields: indexed, of the kinds its part counts, adds up or divides in periods."""
        type_name = typedef.name
        for measured, key in ((average, "average"), (total, "sum")):
            if measured:
                number = typedef.fields.get(measured)
                kind = number.kind.result if number is not None and isinstance(number.kind, ComputedKind) else \
                    getattr(number, "kind", None)
                if kind is None or kind.name not in NUMERIC_KINDS or typedef.index_for(measured) is None:
                    verb = "averages" if key == "average" else "adds up"
                    self.error(path + ("chart", key), f"a chart {verb} an indexed number field "
                                                      f"({', '.join(NUMERIC_KINDS)}); `{measured}` is not one",
                               hint_for(measured, [n for n, f in typedef.fields.items() if typedef.index_for(n)]))
        for dated, key in ((over, "over"), (until, "open_until")):
            if not dated:
                continue
            field = typedef.fields.get(dated)
            index = typedef.index_for(dated)
            if field is None or field.kind.name not in ("date", "datetime") or index is None \
                    or index.kind not in ("field", "range"):
                self.error(path + ("chart", key), f"a chart's periods come from an indexed date or datetime "
                                                  f"field; `{dated}` is not one",
                           hint_for(dated, [n for n, f in typedef.fields.items()
                                            if f.kind.name in ("date", "datetime") and typedef.index_for(n)]))
        if chart:
            field = typedef.fields.get(chart)
            if field is None:
                self.error(path + (("chart", "by") if mapped else ("chart",)),
                           f"`{chart}` is not a field of type `{type_name}`", hint_for(chart, typedef.fields))
            elif field.kind.name not in ("enum", "ref", "user", "boolean", "string", "tags") or \
                    typedef.index_for(chart) is None:
                self.error(path + (("chart", "by") if mapped else ("chart",)),
                           f"a chart counts the values of an indexed enum, ref, user, boolean, tags or string "
                           f"field; `{chart}` is not one")
