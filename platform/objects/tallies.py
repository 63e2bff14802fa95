"""Statistics through the indexes: the records of a type that match a filter (within the
reader's scope) counted, summed or averaged per value of a field, per period of a date
field, or both — a month of a year, a category, a month of each category.

Nothing reads a record. Counted per period alone, a period's records are the union of the
sets its range of the date index holds (BTrees' `multiunion`, in C), intersected with the
filter's. Per value, or added up, the figures come from the sort keys each record keeps
for its field and range indexes (`TypeIndexes.keys`, one tuple a record): one pass over
the records of the filter, counted by C code — `Counter` over `zip` and `map`, `bisect`
placing each date in its period — where intersecting sets would take a pass per value
(per value and number, for a sum). A field that keeps no sort key (tags, refs: a keyword
index) is counted by intersecting its sets with the periods' and the filter's; a sum then
reads the number field's own index, key by key when it has fewer keys than the cell has
records, else from the records' sort keys.
"""
from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from itertools import islice, repeat
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from BTrees.IIBTree import IISet, intersection

from .fields import EnumKind, Kind
from .filters import FEW_KEYS
from .indexes import FieldIndex, TypeIndexes, _KeyedIndex, as_set, union_of
from .model import TypeDef

EVERY = ("day", "week", "month", "quarter", "year")
MEASURES = ("count", "sum", "average", "open")   # open: the records still open at each period's end
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
    (period index or None, value or None); `matched`, how many records the filter matched
    in all (within the periods or not), as a count of them would say."""

    measure: str
    periods: tuple[tuple[date, date], ...] = ()
    values: tuple[Any, ...] = ()
    cells: dict[tuple[int | None, Any], Cell] = field(default_factory=dict)
    matched: int = 0

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


def periods_between(first: date, last: date, every: str) -> int:
    """How many periods of a kind reach from the one holding `first` to the one holding `last`."""
    if every not in EVERY:
        raise ValueError(f"`{every}` is not a period ({', '.join(EVERY)})")
    start, end, count = _start(first, every), _start(last, every), 1
    while start < end and count <= MAX_PERIODS:
        start, count = _next(start, every), count + 1
    return count


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
    if (by or of) and not (by and measure == "count" and not over and _few_keys(indexes.for_field(typedef, by))):
        found = _by_rows(typedef, indexes, ids, by, over, spans, zone, measure, of)
        if found is not None:
            return found
        if measure == "open":
            raise ValueError(f"the records open per value of `{by}` need a field of one value")
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


def _few_keys(index: Any) -> bool:
    """Whether a count per value of this index is best one set intersection a value: a
    field of few values (a status). At a million records, counting 540,000 of them by a
    state of five values took 200 ms from their sort keys and takes 25 ms from its sets."""
    return isinstance(index, _KeyedIndex) and sum(1 for _ in islice(index.forward.keys(), FEW_KEYS + 1)) <= FEW_KEYS


def by_parts(typedef: TypeDef, indexes: TypeIndexes, parts: list, by: str) -> Tally | None:
    """The count per value of `by` of records given as parts (`Filter.parts`) that are the
    sets of `by`'s own index — the open records counted by status: each value's count is
    the size of its set, nothing is read per record. None when a part is not one of them."""
    index = indexes.for_field(typedef, by)
    if not isinstance(index, FieldIndex):
        return None
    keys = dict(islice(((id(held), key) for key, held in index.forward.items()), FEW_KEYS + 1))
    if len(keys) > FEW_KEYS:
        return None
    keys[id(index.empty)] = None
    kind = typedef.fields[by].kind
    cells: dict[tuple[int | None, Any], Cell] = {}
    for part in parts:
        if id(part) not in keys:
            return None
        size = 1 if part.__class__ is int else len(part)
        if size:
            key = keys[id(part)]
            cells[(None, None if key is None else shown_value(kind, key))] = Cell(size, size)
    return Tally("count", (), _ordered(typedef, indexes, by, {value for _, value in cells}), cells,
                 sum(cell.records for cell in cells.values()))


def _by_rows(typedef: TypeDef, indexes: TypeIndexes, ids: Any, by: str | None, over: str | None,
             spans: tuple[tuple[date, date], ...], zone: str, measure: str, of: str | None) -> Tally | None:
    """The figures read from the sort keys every record keeps for its field and range indexes
    (`TypeIndexes.keys`, a tuple per record), in one pass counted by C code (`Counter` over
    `map` and `zip`, `bisect` for the periods): per value, intersecting sets costs as many
    passes as there are values (or values × keys of the number summed). None when a field
    keeps no sort key (a keyword index): the sets are intersected then."""
    slots: list[int | None] = []
    for name in (over, by, of):
        if name is None:
            slots.append(None)
            continue
        index = indexes.for_field(typedef, name)
        if not isinstance(index, FieldIndex):
            return None
        slots.append(index.slot)
    rows = list(indexes.keys.values()) if ids is None else list(map(indexes.keys.get, ids))
    try:
        return _counted_rows(typedef, indexes, rows, slots, by, over, spans, zone, measure)
    except (IndexError, TypeError):                  # a record without its keys yet: the sets say
        return None


def _counted_rows(typedef: TypeDef, indexes: TypeIndexes, rows: list, slots: list[int | None], by: str | None,
                  over: str | None, spans: tuple[tuple[date, date], ...], zone: str, measure: str) -> Tally:
    """`_by_rows` once the rows are read; IndexError or TypeError when a row lacks a slot."""
    date_slot, by_slot, number_slot = slots
    columns: list[Any] = []
    if over is not None:
        moments = typedef.fields[over].kind.name == "datetime"
        bounds: list[Any] = [(_midnight(start, zone) if moments else start) for start, _ in spans]
        bounds.append(_midnight(spans[-1][1], zone) if moments else spans[-1][1])
        floor: Any = datetime.min.replace(tzinfo=timezone.utc) if moments else date.min
        dates, defaults = map(itemgetter(date_slot), rows), map(itemgetter(date_slot), rows)
        columns.append(map(bisect_right, repeat(bounds), map({None: floor}.get, dates, defaults)))   # None: floor
    else:
        columns.append(repeat(None))
    columns.append(map(itemgetter(by_slot), rows) if by_slot is not None else repeat(None))
    if measure == "open" and over is not None:      # `of`: the moment a record stopped being open
        ceiling: Any = datetime.max.replace(tzinfo=timezone.utc) if moments else date.max
        begins, no_date = map(itemgetter(date_slot), rows), map(itemgetter(date_slot), rows)
        columns[0] = map(bisect_right, repeat(bounds), map({None: ceiling}.get, begins, no_date))   # never begun
        ends, none_yet = map(itemgetter(number_slot), rows), map(itemgetter(number_slot), rows)
        columns.append(map(bisect_right, repeat(bounds), map({None: ceiling}.get, ends, none_yet)))  # still open
        return _open(typedef, indexes, by, spans, Counter(zip(*columns)))
    if number_slot is not None:
        columns.append(map(itemgetter(number_slot), rows))
    counted: Counter[tuple[Any, ...]]
    if over is None and number_slot is None and by_slot is not None:   # one column: counted without pairs
        counted = Counter({(None, value): times for value, times in Counter(map(itemgetter(by_slot), rows)).items()})
    elif over is not None or by_slot is not None or number_slot is not None:
        counted = Counter(zip(*columns))
    else:
        counted = Counter()
    kind = typedef.fields[by].kind if by else None
    totals: dict[tuple[int | None, Any], list[Any]] = {}
    for key, times in counted.items():
        place, value = key[0], key[1]
        if over is not None:
            if not 1 <= place <= len(spans):
                continue                             # before the first period, after the last, or no date
            place -= 1
        if number_slot is not None and key[2] is None:
            continue                                 # no number: not counted in a sum or an average
        cell = totals.setdefault((place, shown_value(kind, value) if kind is not None else None), [0, 0])
        cell[1] += times
        cell[0] += key[2] * times if number_slot is not None else times
    cells = {key: Cell(total if measure != "average" else total / times, times)
             for key, (total, times) in totals.items() if times}
    if measure == "count":
        cells = {key: Cell(times, times) for key, (_, times) in totals.items() if times}
    values = _ordered(typedef, indexes, by, {value for _, value in cells}) if by else ()
    return Tally(measure, spans, values, cells)


def _open(typedef: TypeDef, indexes: TypeIndexes, by: str | None, spans: tuple[tuple[date, date], ...],
          counted: Counter) -> Tally:
    """The records open at the end of each period (the backlog): begun before it ends and not
    ended by then, from how many records began and ended in each place of the bounds (a
    record begun in place b, ended in place e is open at the end of periods b … e-1)."""
    kind = typedef.fields[by].kind if by else None
    found: dict[tuple[int | None, Any], int] = {}
    for (begun, value, ended), times in counted.items():
        shown = shown_value(kind, value) if kind is not None else None
        for period in range(max(begun, 1), min(ended, len(spans) + 1)):
            found[(period - 1, shown)] = found.get((period - 1, shown), 0) + times
    cells = {key: Cell(times, times) for key, times in found.items() if times}
    values = _ordered(typedef, indexes, by, {value for _, value in cells}) if by else ()
    return Tally("open", spans, values, cells)


def _ordered(typedef: TypeDef, indexes: TypeIndexes, by: str, present: set[Any]) -> tuple[Any, ...]:
    """The values of `by` found, in the index's order (an enum's own), records without one last."""
    index = indexes.for_field(typedef, by)
    kind = typedef.fields[by].kind
    ordered = [value for value in (shown_value(kind, key) for key in index.forward.keys()) if value in present] \
        if index is not None and len(present) > 0 else []
    return tuple(ordered + ([None] if None in present else []))


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
    """Local midnight as a UTC moment: compared with the stored moments (in UTC) without
    asking the zone for an offset at each comparison."""
    return datetime.combine(day, time(), ZoneInfo(zone)).astimezone(timezone.utc)
