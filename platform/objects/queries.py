"""Queries of a session, always through the indexes and within the session's read scope:
pages of records, counts, counts and averages by the value of a field."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from BTrees.IIBTree import intersection

from .errors import QueryError
from .indexes import as_set, union_of
from .model import TypeDef
from .query import parse_sort, search
from .records import Record
from .session_part import SessionPart
from .tallies import MEASURES, Tally, by_parts, periods_between, periods_ending, shown_value, tally


@dataclass(frozen=True)
class Page:
    """One page of a query: the records shown and how many match in all."""

    total: int
    records: list[Record]
    offset: int
    limit: int


class Queries(SessionPart):
    """The reads of a `Session` (a part of it: it works on the session's store, definitions,
    identity and clock)."""

    def query(self, type_name: str, filter: Any = None, sort: Any = None, *, offset: int = 0,
              limit: int | None = 50, context: Mapping[str, Any] | None = None,
              record_type: str | None = None, scoped: bool = True) -> Page:
        """Records of a type matching a filter, sorted and paged, through the indexes.
        `record_type` is the type `$record` refers to in the filter (the `where` of a ref);
        `scoped=False` counts past the session's read scope, for values the engine derives."""
        typedef = self.definitions.type(type_name)
        if scoped:   # the scope is part of the index query: pages and totals agree
            readable, filter = self._scoped(typedef, filter)
            if not readable:
                return Page(0, [], offset, limit or 0)
        compiled = self.store.compiled_filter(filter, type_name, record_type) if filter else None
        order = parse_sort(sort or (), typedef)
        container = self.container(type_name)
        total, ids = search(container.indexes, typedef, compiled, order, offset=offset,
                            limit=limit, context=context or self.context(), unindexed=container.unindexed())
        return Page(total, [container.records[i] for i in ids], offset, limit or total)

    def count_by(self, type_name: str, field_name: str, filter: Any = None) -> list[tuple[Any, int]]:
        """(value, how many records) for each value of an indexed field among the records that
        match `filter` and the session's read scope, in the field's order; None stands for the
        records without a value. Counted from the field's index, one set intersection a value."""
        typedef = self.definitions.type(type_name)
        indexes = self.container(type_name).filed(typedef)
        index = indexes.for_field(typedef, field_name)
        if index is None:
            raise QueryError(f"`{field_name}` of `{type_name}` has no index to count by")
        readable, ids = self.matching_ids(typedef, filter)
        if not readable:
            return []
        total = len(ids) if ids is not None else indexes.count
        kind = typedef.fields[field_name].kind
        counts, counted = [], 0
        for key, holder in index.items():
            found = as_set(holder)
            size = len(found) if ids is None else len(intersection(found, ids))
            if size:
                counts.append((shown_value(kind, key), size))
                counted += size
        if total > counted and not kind.multiple:
            counts.append((None, total - counted))
        return counts

    def average_by(self, type_name: str, field_name: str, number_field: str,
                   filter: Any = None) -> list[tuple[Any, Any, int]]:
        """(value, average of `number_field`, how many records have a number) for each value
        of an indexed field among the records that match `filter` and the read scope, in the
        field's order; records without a number are left out. The numbers are read from their
        own index's sort keys, never from the records."""
        typedef = self.definitions.type(type_name)
        indexes = self.container(type_name).filed(typedef)
        index, numbers = indexes.for_field(typedef, field_name), indexes.for_field(typedef, number_field)
        if index is None or numbers is None or not hasattr(numbers, "slot"):
            raise QueryError(f"`{field_name}` and `{number_field}` of `{type_name}` need an index to average by")
        readable, ids = self.matching_ids(typedef, filter)
        if not readable:
            return []
        kind = typedef.fields[field_name].kind
        found = []
        for key, holder in index.items():
            members = as_set(holder) if ids is None else intersection(as_set(holder), ids)
            values = [number for number in (indexes.key_of(numbers, record_id) for record_id in members)
                      if number is not None]
            if values:
                found.append((shown_value(kind, key), sum(values) / len(values), len(values)))
        return found

    def _scoped(self, typedef: TypeDef, filter: Any) -> tuple[bool, Any]:
        """Whether the person may read any record of the type, and `filter` within their read
        scope (None or empty: every record)."""
        scope = self.read_scope(typedef)
        if scope is False:
            return False, None
        if scope is not True:
            filter = {"all": [scope, filter]} if filter else scope
        return True, filter

    def matching_ids(self, typedef: TypeDef, filter: Any) -> tuple[bool, Any]:
        """Whether the person may read any record of the type, and the ids matching `filter`
        within their read scope through the indexes (None: every record)."""
        readable, filter = self._scoped(typedef, filter)
        if not readable or not filter:
            return readable, None
        container = self.container(typedef.name)
        return True, self.store.compiled_filter(filter, typedef.name).ids(container.indexes, typedef, self.context(),
                                                                         container.unindexed())

    def _parts(self, typedef: TypeDef, filter: Any) -> list | None:
        """`filter` within the read scope as parts that share no id (`Filter.parts`), or None."""
        readable, filter = self._scoped(typedef, filter)
        container = self.container(typedef.name)
        if not readable or not filter or container.unindexed():
            return None
        return self.store.compiled_filter(filter, typedef.name).parts(container.indexes, typedef, self.context())

    def count(self, type_name: str, filter: Any = None, context: Mapping[str, Any] | None = None) -> int:
        """How many records of a type match a filter (and the session's read scope)."""
        if not filter and self.read_scope(self.definitions.type(type_name)) is True:
            return self.container(type_name).indexes.count
        return self.query(type_name, filter, limit=0, context=context).total



    def tally(self, type_name: str, filter: Any = None, *, by: str | None = None, over: str | None = None,
              every: str = "month", periods: int = 12, measure: str = "count", of: str | None = None,
              since: date | None = None, until: date | None = None) -> Tally:
        """Statistics of the records of a type that match `filter` and the session's read
        scope: counted (or the `sum` or `average` of the number field `of`) per value of the
        indexed field `by`, per period of the indexed date field `over` — the last `periods`
        of `every` (day, week, month, quarter, year), the current one last — or both. Through
        the indexes alone (`tallies.py`). `until` puts the last period on another day than
        today; `since`, the first (then `periods` is how many it takes to reach `until`)."""
        typedef = self.definitions.type(type_name)
        indexes = self.container(type_name).filed(typedef)
        for name in (by, over, of):
            if name is not None and indexes.for_field(typedef, name) is None:
                raise QueryError(f"`{name}` of `{type_name}` has no index to count by")
        if measure not in MEASURES or (measure != "count" and of is None) or (measure == "open" and not over):
            raise QueryError(f"`{measure}` is not a measure: count, or sum or average of a number field, or the "
                             f"records open at the end of each period (`open`, with `over` and the date they end)")
        # A count by the field whose sets the filter's parts are is their sizes; other parts
        # are the matching ids, merged rather than found again.
        parts = self._parts(typedef, filter) if by and not over and measure == "count" else None
        if by and parts is not None:
            counted = by_parts(typedef, indexes, parts, by)
            if counted is not None:
                return counted
        readable, ids = (True, union_of(parts)) if parts is not None else self.matching_ids(typedef, filter)
        try:
            last = until or self.today
            if over and since is not None:
                periods = periods_between(since, last, every)
            spans = periods_ending(last, every, periods) if over else []
        except ValueError as error:
            raise QueryError(str(error)) from None
        if not readable:
            return Tally(measure, tuple(spans))
        try:
            found = tally(typedef, indexes, ids, by=by, over=over, periods=spans, zone=self.definitions.zone,
                          measure=measure, of=of)
            return replace(found, matched=indexes.count if ids is None else len(ids))
        except ValueError as error:
            raise QueryError(str(error)) from None
