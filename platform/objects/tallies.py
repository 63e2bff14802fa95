"""Statistics through the indexes: the records of a type that match a filter (within the
reader's scope) counted, summed or averaged per value of a field, per period of a date
field, or both — a month of a year, a category, a month of each category.

Nothing reads a record. A period's records are the union of the sets its range of the
date index holds (BTrees' `multiunion`, in C); a value's records are the set its index
holds under it; the records of a cell are the intersection of the two with the filter's.
A sum or an average over a number field reads the numbers from that field's own index:
per key of the index when it has fewer keys than the cell has records (durations in
minutes, amounts of a price list: key × how many of the cell's records have it), else
from the sort keys each record keeps for it (`TypeIndexes.keys`).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from BTrees.IIBTree import IISet, intersection

from .fields import EnumKind, Kind
from .indexes import FieldIndex, TypeIndexes, _KeyedIndex, as_set, union_of
from .model import TypeDef

EVERY = ("day", "week", "month", "quarter", "year")
MEASURES = ("count", "sum", "average")
MAX_PERIODS = 400                      # a chart of more periods says nothing more; more days are refused


@dataclass(frozen=True)
class Cell:
    """One figure: the measure (a count, a sum or an average) and how many records it is of."""

    value: Any
    records: int


@dataclass(frozen=True)
class Tally:
    """Figures per period (`periods`: [start, end) dates, oldest first) and per value of a
    field (`values`: the stored values, None for records without one), in `cells` keyed by
    (period index or None, value or None)."""

    measure: str
    periods: tuple[tuple[date, date], ...] = ()
    values: tuple[Any, ...] = ()
    cells: dict[tuple[int | None, Any], Cell] = field(default_factory=dict)

    def cell(self, period: int | None, value: Any = None) -> Cell:
        return self.cells.get((period, value), Cell(None if self.measure != "count" else 0, 0))


def periods_ending(today: date, every: str, count: int) -> list[tuple[date, date]]:
    """The last `count` periods of a kind, the one holding `today` last: [start, end) dates."""
    if every not in EVERY:
        raise ValueError(f"`{every}` is not a period ({', '.join(EVERY)})")
    if not 1 <= count <= MAX_PERIODS:
        raise ValueError(f"between 1 and {MAX_PERIODS} periods, not {count}")
    start = _start(today, every)
    found = []
    for _ in range(count):
        end = _next(start, every)
        found.append((start, end))
        start = _previous(start, every)
    return found[::-1]


def _start(day: date, every: str) -> date:
    if every == "day":
        return day
    if every == "week":
        return day - timedelta(days=day.weekday())
    if every == "month":
        return day.replace(day=1)
    if every == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def _next(start: date, every: str) -> date:
    if every == "day":
        return start + timedelta(days=1)
    if every == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[every]
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def _previous(start: date, every: str) -> date:
    if every == "day":
        return start - timedelta(days=1)
    if every == "week":
        return start - timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[every]
    month = start.month - 1 - months
    return date(start.year + month // 12, month % 12 + 1, 1)


def tally(typedef: TypeDef, indexes: TypeIndexes, ids: Any, *, by: str | None = None,
          over: str | None = None, periods: Iterable[tuple[date, date]] = (), zone: str = "UTC",
          measure: str = "count", of: str | None = None) -> Tally:
    """The figures of the records `ids` (None: every record) as the module says. `by`, `over`
    and `of` name indexed fields (the caller has checked them); `zone` is where a period of a
    datetime field starts and ends."""
    spans = tuple(periods) if over else ()
    period_sets: list[Any] = []
    if over:
        date_index = indexes.for_field(typedef, over)
        assert date_index is not None               # the caller checked the fields it names
        moments = typedef.fields[over].kind.name == "datetime"
        for start, end in spans:
            low, high = (_midnight(start, zone), _midnight(end, zone)) if moments else (start, end)
            found = union_of(list(date_index.forward.values(low, high, excludemax=True)))
            period_sets.append(found if ids is None else intersection(found, ids))
    groups: list[tuple[Any, Any]] = []
    if by:
        by_index = indexes.for_field(typedef, by)
        assert by_index is not None
        kind = typedef.fields[by].kind
        for key, holder in by_index.forward.items():
            groups.append((shown_value(kind, key), as_set(holder)))
        if len(by_index.empty):
            groups.append((None, by_index.empty))
    number = indexes.for_field(typedef, of) if of else None
    cells: dict[tuple[int | None, Any], Cell] = {}
    rows: list[tuple[int | None, Any, Any]] = []
    if over and by:
        rows = [(position, value, intersection(members, found)) for position, found in enumerate(period_sets)
                for value, members in groups]
    elif over:
        rows = [(position, None, found) for position, found in enumerate(period_sets)]
    elif by:
        rows = [(None, value, members if ids is None else intersection(members, ids)) for value, members in groups]
    else:
        rows = [(None, None, indexes.all_ids if ids is None else ids)]
    for period, value, members in rows:
        size = len(members) if members is not None else 0
        if not size:
            continue
        if measure == "count":
            cells[(period, value)] = Cell(size, size)
            continue
        total, counted = _sum(indexes, number, members)
        if not counted:
            continue
        cells[(period, value)] = Cell(total if measure == "sum" else total / counted, counted)
    seen = {value for (_, value) in cells}
    values = tuple(value for value, _ in groups if value in seen)
    return Tally(measure, spans, values, cells)


def _sum(indexes: TypeIndexes, number: _KeyedIndex | None, members: Any) -> tuple[Any, int]:
    """(the sum of a number field over some records, how many of them have one)."""
    if number is None:
        return 0, 0
    forward = number.forward
    if isinstance(number, FieldIndex) and not _fewer_keys(forward, len(members)):
        found = [key for key in (indexes.key_of(number, record_id) for record_id in members) if key is not None]
        return _total(found), len(found)
    total: Any = 0
    counted = 0
    for key, holder in forward.items():
        holder_ids = IISet((holder,)) if holder.__class__ is int else holder
        size = len(intersection(holder_ids, members))
        if size:
            total += key * size
            counted += size
    return total, counted


def _fewer_keys(tree: Any, most: int) -> bool:
    """Whether a BTree has fewer than `most` keys (read no further than that: `len` reads all)."""
    for position, _ in enumerate(tree.keys()):
        if position + 1 >= most:
            return False
    return True


def shown_value(kind: Kind, key: Any) -> Any:
    """The value an index key stands for: an enum's value for its position, a yes or no for
    a boolean's 1 or 0, others as they are."""
    if isinstance(kind, EnumKind) and kind.values and isinstance(key, int) and 0 <= key < len(kind.values):
        return kind.values[key]
    if kind.name == "boolean" and isinstance(key, int):
        return bool(key)
    return key


def _total(keys: list[Any]) -> Any:
    return sum(keys, Decimal(0)) if keys and isinstance(keys[0], Decimal) else sum(keys)


def _midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(), ZoneInfo(zone))
