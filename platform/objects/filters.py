"""The filter language (docs/definitions.md, "Filters"), compiled once and evaluated two
ways: over a type's indexes with BTrees set operations, to find records, and over one
record's values in memory, for guards and conditions. Both compare `Kind.key` values, as
the indexes store them, so they agree; a property test holds them equal.

Semantics shared by both evaluators:
- a map is AND; `field: value` is `eq`, `field: [a, b]` is `in`, `field: null` is empty;
- for multi-valued fields (refs, tags) `eq` means contains, `in` contains any, `ne` and
  `not_in` contain none, `empty: true` holds no item;
- `ne`, `not_in` and `not` match records whose value is empty; `gt`, `gte`, `lt` and `lte`
  never do;
- a reference to the context (`$me.groups`, `$record.category`) is read when the filter
  runs; a list it gives means `in`, and one without a value (no such attribute, no
  record, null) matches nothing: `{assignee: $me.acting_for}` finds no record for a user
  who stands in for nobody (so a permission scope never widens to every empty field), and
  a range with a missing bound matches nothing too; write `null` to ask for empties;
- a text starting with `$` is a reference; write `$$` for a literal `$`;
- in code only, a ref field may be compared with `IdsAmong(ids)`, a set of ids worked out
  before (the records of another type a reader may read): it is held as a set, so a few
  records are checked against it at their own cost, however large it is.
"""
from __future__ import annotations

import dataclasses
import itertools
import operator
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import yaml
from BTrees.IIBTree import IISet, difference, intersection, multiunion, union

from . import textsearch
from .errors import FieldError, QueryError, did_you_mean, hint_for
from .fields import ComputedKind, IntegerKind, Kind, RefKind
from .indexes import LAST_LETTER, IdSet, TypeIndexes, as_set, in_any, size_of, union_of
from .model import TypeDef

UTC = timezone.utc
OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "empty")
KEYWORDS = ("all", "any", "not", "text")   # keys of a filter map that are not field names
SOURCES = ("me", "record", "now", "today")
# What checking one id costs, in ids passed through a set operation (~20 ns measured):
# looking it up in a set of ids (~0.1 µs), or reading its sort keys from
# `TypeIndexes.keys` and comparing one (~0.6 µs). And compares these with the size of
# the sets it would build.
MEMBER_COST = 6
# An `all` is given in parts (`Filter.parts`) when the keys it leaves hold at least this
# many ids; below, merging them costs little and `And` checks the other conditions on them.
PARTS_FROM = 10_000
KEY_READ_COST = 30
FEW_KEYS = 16   # a range or prefix over at most this many keys is checked against their sets
# A range over more keys than lie beyond it is found as the records it leaves out when the
# keys beyond are at most this many (both sides are read key by key in turn to know which
# is the shorter, so past this many each the range is merged as it stands).
OUTSIDE_KEYS = 50_000
_SMALLEST_ID, _LARGEST_ID = -2**31, 2**31 - 1   # what an IITreeSet can hold
_REFERENCE = re.compile(
    r"\$(?P<source>\w+)(?:\.(?P<name>\w+))?"
    r"(?:\s*(?P<sign>[+-])\s*(?P<amount>\d+)\s*(?P<unit>[dhm]))?")
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
MAX_OFFSET_DAYS = 36_500          # `$now-…`, `$today+…`: a century either way
MAX_FILTER_TEXT = 20_000          # characters of a filter typed in a page or a request
MAX_FILTER_DEPTH = 32             # maps and lists within each other
_TOO_DEEP = f"the filter nests too deeply: at most {MAX_FILTER_DEPTH} levels of maps and lists"


class _NoAliases(yaml.SafeLoader):
    """YAML without anchors and aliases: a filter is small, and aliases can make a few hundred
    characters expand to millions of values."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            raise yaml.composer.ComposerError(None, None, "a filter takes no YAML aliases (*name)",
                                              event.start_mark)
        return super().compose_node(parent, index)


def _depth(value: Any, limit: int) -> int:
    """How deeply maps and lists nest in `value`, counted up to `limit` + 1 at most."""
    if limit < 0 or not isinstance(value, (dict, list)):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(item, limit - 1) for item in items), default=0)


def parse_filter_text(text: str | None, path: str = "") -> Any:
    """A filter typed as JSON or YAML (`{status: open}`), as the command line, list pages and
    the API take it; None when empty; QueryError with the column of a mistake."""
    if not text or not str(text).strip():
        return None
    if len(text) > MAX_FILTER_TEXT:
        raise QueryError(f"the filter is too long: at most {MAX_FILTER_TEXT:,} characters", path)
    try:
        value = yaml.load(text, Loader=_NoAliases)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at column {mark.column + 1}" if mark else ""
        raise QueryError(f"the filter is not valid JSON or YAML{where}: {getattr(error, 'problem', error)}",
                         path) from None
    except RecursionError:
        raise QueryError(_TOO_DEEP, path) from None
    if _depth(value, MAX_FILTER_DEPTH) > MAX_FILTER_DEPTH:
        raise QueryError(_TOO_DEEP, path)
    if not isinstance(value, dict):
        raise QueryError("a filter is a map such as {status: open}", path)
    return value


# -- context -----------------------------------------------------------------------------

class ByType(tuple):
    """A value of `$me` that depends on the type a filter is about: as a tuple, every item;
    in a filter on type T, the items of `by_type[T]` when T is named there, else `default`.
    (A deputy stands in for Alice on every kind of work, for Bob on one kind only.)"""

    default: tuple
    by_type: dict[str, tuple]

    def __new__(cls, every: Sequence[Any], default: Sequence[Any], by_type: Mapping[str, Sequence[Any]]):
        made = super().__new__(cls, every)
        made.default, made.by_type = tuple(default), {k: tuple(v) for k, v in by_type.items()}
        return made

    def for_type(self, type_name: str | None) -> tuple:
        return self.by_type.get(type_name, self.default) if type_name else tuple(self)


class _Scope:
    """The context of one evaluation, with `now` and `today` fixed once."""

    __slots__ = ("me", "record", "now", "today", "lookup", "type_name")

    def __init__(self, context: Mapping[str, Any] | None, type_name: str | None = None):
        context = context or {}
        self.type_name = type_name
        self.me = context.get("me") or {}
        self.record = context.get("record") or {}
        self.now = context.get("now") or datetime.now(UTC)
        self.today = context.get("today") or self.now.date()
        self.lookup = context.get("lookup")


def _attribute(source: Any, name: str) -> Any:
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


@dataclass(frozen=True)
class Reference:
    """A value read from the context when the filter runs: `$me`, `$me.groups`,
    `$record.category`, `$now`, `$today-7d`."""

    text: str
    source: str                     # me | record | now | today
    name: str | None = None         # the attribute of $me, the field of $record
    offset: timedelta = timedelta()

    def resolve(self, scope: _Scope) -> Any:
        """The value this reference stands for in `scope`; None when it is missing."""
        if self.source == "me":
            value = _attribute(scope.me, self.name or "id")
            return (value.for_type(scope.type_name) or None) if isinstance(value, ByType) else value
        if self.source == "record":
            assert self.name is not None            # the compiler refuses a bare `$record`
            return _attribute(scope.record, self.name)
        if self.source == "now":
            return scope.now + self.offset
        return scope.today + self.offset


# -- operands ----------------------------------------------------------------------------

def _items(raw: Any) -> Collection[Any]:
    return raw if isinstance(raw, (list, tuple, set, frozenset)) else (raw,)


def _keys_of(kind: Kind, raw: Any, lookup, keys: set) -> bool:
    """Add the keys of the values in `raw` to `keys`; whether an empty value was among them."""
    empty = False
    for item in _items(raw):
        key = kind.key(kind.coerce(item, lookup))
        if key is None or key == ():
            empty = True
        elif isinstance(key, tuple):
            keys.update(k for k in key if k is not None)
        else:
            keys.add(key)
    return empty


@dataclass(frozen=True)
class Operand:
    """What a field is compared with: the keys of literal values, known when compiling,
    plus references and record numbers (of ref fields) resolved when the filter runs."""

    keys: frozenset = frozenset()
    empty: bool = False                      # null is among the values
    references: tuple[Reference, ...] = ()
    numbers: tuple[str, ...] = ()            # `ORG-0003`: needs the context's lookup

    def resolve(self, kind: Kind, scope: _Scope, path: str) -> tuple[frozenset, bool]:
        """(keys, whether empty values match) in this context."""
        if not self.references and not self.numbers:
            return self.keys, self.empty
        keys, empty = set(self.keys), self.empty
        for reference in self.references:
            value = reference.resolve(scope)
            try:
                # a reference without a value adds no key: `{owner: $me.acting_for}` for a
                # user who stands in for nobody matches no record, not every unowned one
                _keys_of(kind, value, scope.lookup, keys)
            except FieldError as error:
                raise QueryError(f"`{reference.text}` is `{value}`, which does not fit here: {error}",
                                 path) from None
        if self.numbers:
            if scope.lookup is None:
                raise QueryError(f"record numbers such as `{self.numbers[0]}` need a lookup in the "
                                 f"context", path, "give the record id instead")
            try:
                empty |= _keys_of(kind, list(self.numbers), scope.lookup, keys)
            except FieldError as error:
                raise QueryError(str(error), path) from None
        return frozenset(keys), empty


def _one_key(keys: frozenset, empty: bool, op: str, path: str) -> Any:
    """The single bound of a range comparison; None (matches nothing) when it is empty."""
    if len(keys) > 1:
        raise QueryError(f"`{op}` compares with one value, but the reference gives {len(keys)}", path)
    return next(iter(keys)) if keys else None


# -- the tree ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Checked:
    """One part of a filter as the in-memory evaluator found it on one record, kept when
    someone asks why a record matched or not: a condition on a field (`field`, its operator,
    the keys it was compared with once references were read, the value the record holds) or
    a combination of parts (`op` all, any or not). `path` says where it is written in the
    filter (`any[1].assignee`, `status.ne`), as a QueryError would."""

    path: str
    held: bool
    op: str
    field: str | None = None
    wanted: tuple = ()
    found: Any = None
    parts: tuple[Checked, ...] = ()


class _Run:
    """One evaluation: the indexes (None in memory), the type and the context; `trace`, a
    list that the in-memory evaluation fills with what it checked (None: nothing kept)."""

    __slots__ = ("indexes", "typedef", "scope", "population", "probes", "trace")

    def __init__(self, indexes: TypeIndexes | None, typedef: TypeDef, context, trace: list | None = None):
        self.indexes, self.typedef, self.scope = indexes, typedef, _Scope(context, typedef.name)
        self.population = indexes.count if indexes is not None else 0
        self.probes: dict[int, _Probe] = {}
        self.trace = trace

    def kept(self, node: Any, held: bool, wanted: Any = (), found: Any = None) -> bool:
        """Keep what a condition found on the record (when tracing); `held` as it was."""
        assert self.trace is not None              # called only when tracing
        self.trace.append(Checked(node.path, held, getattr(node, "op", "text"), getattr(node, "field", None),
                                  tuple(sorted(wanted, key=str)), found))
        return held

    def grouped(self, op: str, children: tuple, values: Mapping[str, Any]) -> bool:
        """Evaluate every child (not only up to the first that decides, so that each reason is
        known) and keep them as one part; whether the group holds, as without the trace."""
        outer, self.trace = self.trace, []
        assert outer is not None                   # called only when tracing
        results = [child.matches(values, self) for child in children]
        held = all(results) if op == "all" else any(results) if op == "any" else not results[0]
        parts, self.trace = tuple(self.trace), outer
        outer.append(Checked("", held, op, parts=parts))
        return held

    @property
    def stored(self) -> TypeIndexes:
        """The indexes, for the walk by ids (`ids`), which always has them: only `matches`
        runs without."""
        assert self.indexes is not None
        return self.indexes

    def index(self, field_name: str, path: str):
        index = self.stored.for_field(self.typedef, field_name)
        if index is None:
            if not self.stored.all_ids:
                return None   # a type nothing was ever stored in: no index yet, no records
            raise QueryError(f"the index of `{field_name}` of `{self.typedef.name}` is missing",
                             path, "run `deskbase migrate`")
        return index

    def key(self, values: Mapping[str, Any], field_name: str) -> Any:
        field = self.typedef.fields.get(field_name)
        value = values.get(field_name)
        return field.kind.key(value) if field is not None else value


@dataclass(frozen=True)
class _Probe:
    """How a node keeps, of some ids, those it holds for, using the indexes; what that
    costs per id; and about how many ids the node finds by set operations (`size`)."""

    keep: Callable[[IdSet], IdSet]
    size: int
    cost: int


def _none(ids: IdSet) -> IdSet:
    return IISet()


_NOTHING = _Probe(_none, 0, 0)


def _membership(index, holders: list) -> _Probe:
    """A probe that looks ids up in forward values (bare ids and sets of ids)."""
    singles = frozenset(h for h in holders if h.__class__ is int)
    sets = [h for h in holders if h.__class__ is not int]

    def keep(ids):
        found = [IISet([i for i in ids if i in held]) for held in sets]
        if singles:
            found.append(IISet([i for i in ids if i in singles]))
        if len(found) == 1:
            return found[0]
        return multiunion(found) if found else IISet()
    size = len(singles) + sum(index.estimate(held) for held in sets)
    return _Probe(keep, size, MEMBER_COST * len(sets) + (1 if singles else 0))


def _all_of(probes: list, population: int) -> _Probe:
    ordered = sorted(probes, key=lambda probe: probe.size)

    def keep(ids):
        for probe in ordered:
            if not ids:
                break
            ids = probe.keep(ids)
        return ids
    return _Probe(keep, ordered[0].size if ordered else population, sum(p.cost for p in probes))


def _narrows(found: int, probe: _Probe) -> bool:
    """Whether checking `found` ids one by one beats building the probed node's set."""
    return found * probe.cost < probe.size


class _Node:
    """What every node does: find its ids in the indexes (`ids`), check one record's
    values in memory (`matches`), and check single ids against the indexes (`probe`),
    which And uses once it holds few ids."""

    def ids(self, run: _Run) -> IdSet:
        raise NotImplementedError

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        raise NotImplementedError

    def probe(self, run: _Run) -> _Probe:
        found = run.probes.get(id(self))
        if found is None:
            found = run.probes[id(self)] = self._probe(run)
        return found

    def _probe(self, run: _Run) -> _Probe:
        raise NotImplementedError


@dataclass(frozen=True)
class All(_Node):
    """Every record."""

    def ids(self, run: _Run) -> IdSet:
        return run.stored.all_ids

    def _probe(self, run: _Run) -> _Probe:
        return _Probe(lambda ids: ids, run.population, 0)

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        return True


@dataclass(frozen=True)
class And(_Node):
    """Every child holds."""

    children: tuple

    def ids(self, run: _Run) -> IdSet:
        # The children that find the fewest ids go first; `not` children are subtracted
        # from what the others found, never from all ids. Once the ids found are few
        # compared with what a child would find, that child checks them one by one
        # instead of building its own large set.
        # A range that leaves out fewer keys than it holds is the records it leaves out,
        # subtracted like a `not` (`Compare.outside`).
        positives = [c for c in self.children if not isinstance(c, (Not, All))]
        negatives = [c.child for c in self.children if isinstance(c, Not)]
        outsides = {n: outside for n, child in enumerate(positives) if child.__class__ is Compare
                    and (outside := child.outside(run)) is not None}
        ordered = sorted((child.probe(run).size, n, child) for n, child in enumerate(positives) if n not in outsides)
        result = None
        for _, _, child in ordered:
            if result is not None and _narrows(len(result), child.probe(run)):
                result = child.probe(run).keep(result)
            else:
                found = child.ids(run)
                result = found if result is None else intersection(result, found)
            if not result:
                return IISet()
        for n, outside in outsides.items():
            if result is not None and _narrows(len(result), positives[n].probe(run)):
                result = positives[n].probe(run).keep(result)
            else:
                result = difference(run.stored.all_ids if result is None else result, union_of(outside))
            if not result:
                return IISet()
        if result is None:
            result = run.stored.all_ids
        for child in negatives:
            if _narrows(len(result), child.probe(run)):
                result = difference(result, child.probe(run).keep(result))
            else:
                result = difference(result, child.ids(run))
            if not result:
                return IISet()
        return result

    def _probe(self, run: _Run) -> _Probe:
        return _all_of([child.probe(run) for child in self.children], run.population)

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        if run.trace is not None:
            return run.grouped("all", self.children, values)
        return all(child.matches(values, run) for child in self.children)


@dataclass(frozen=True)
class Or(_Node):
    """At least one child holds."""

    children: tuple

    def ids(self, run: _Run) -> IdSet:
        found = [child.ids(run) for child in self.children]
        if not found:
            return IISet()
        return found[0] if len(found) == 1 else multiunion(found)

    def _probe(self, run: _Run) -> _Probe:
        probes = [child.probe(run) for child in self.children]

        def keep(ids):
            found = [probe.keep(ids) for probe in probes]
            return multiunion(found) if found else IISet()
        return _Probe(keep, min(run.population, sum(p.size for p in probes)), sum(p.cost for p in probes))

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        if run.trace is not None:
            return run.grouped("any", self.children, values)
        return any(child.matches(values, run) for child in self.children)


@dataclass(frozen=True)
class Not(_Node):
    """The child does not hold."""

    child: Any

    def ids(self, run: _Run) -> IdSet:
        others = _other_keys(self.child, run)
        if others is not None:
            return others
        return difference(run.stored.all_ids, self.child.ids(run))

    def _probe(self, run: _Run) -> _Probe:
        probe = self.child.probe(run)
        return _Probe(lambda ids: difference(ids, probe.keep(ids)), run.population, probe.cost)

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        if run.trace is not None:
            return run.grouped("not", (self.child,), values)
        return not self.child.matches(values, run)


@dataclass(frozen=True)
class Empty(_Node):
    """The field holds nothing (no value, or no item for multi-valued fields)."""

    field: str
    path: str = dataclasses.field(default="", compare=False)

    def ids(self, run: _Run) -> IdSet:
        index = None if self.field == "id" else run.index(self.field, self.path)
        return IISet() if index is None else index.empty

    def _probe(self, run: _Run) -> _Probe:
        index = None if self.field == "id" else run.index(self.field, self.path)
        return _NOTHING if index is None else _membership(index, [index.empty])

    op = "empty"

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        key = run.key(values, self.field)
        held = key is None or key == ()
        return held if run.trace is None else run.kept(self, held, (), values.get(self.field))


class IdsAmong:
    """Record ids a ref field is compared with, worked out before the filter is made (the
    records of another type a reader may read, from that type's indexes): `{ref:
    IdsAmong(ids)}`. The set is never listed key by key. Each one is a filter of its own:
    its text (`str`) carries a number no other one has, and a filter holding one is not
    kept in the store's cache of compiled filters (it lives as long as the set)."""

    _numbers = itertools.count(1)

    def __init__(self, ids: IdSet):
        self.ids = ids
        self.text = f"$ids-among-{next(IdsAmong._numbers)}"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Among(_Node):
    """A ref field points at one of the ids of an `IdsAmong`. Found from the field's index
    under each id; a few ids already found are checked by the key their sort-key row holds,
    so that a large set costs nothing to a query that another condition narrows first."""

    field: str
    among: IdsAmong = dataclasses.field(compare=False)
    path: str = dataclasses.field(default="", compare=False)

    op = "among"

    def ids(self, run: _Run) -> IdSet:
        index = run.index(self.field, self.path)
        return IISet() if index is None else union_of(index.holders(self.among.ids))

    def _probe(self, run: _Run) -> _Probe:
        index = run.index(self.field, self.path)
        if index is None:
            return _NOTHING
        slot = getattr(index, "slot", None)
        if slot is None:
            return _membership(index, index.holders(self.among.ids))
        return _by_sort_keys(run, slot, self.among.ids.__contains__)

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        key = run.key(values, self.field)
        held = key.__class__ is int and key in self.among.ids
        return held if run.trace is None else run.kept(self, held, (), values.get(self.field))


_COMPARISONS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_BEYOND = {"gt": "lte", "gte": "lt", "lt": "gte", "lte": "gt"}     # the keys a range leaves out
_END = object()


def _bounds(op: str, bound: Any) -> dict:
    """The arguments of `FieldIndex.between` for a range `op bound`."""
    if op in ("gt", "gte"):
        return {"low": bound, "exclude_low": op == "gt"}
    return {"high": bound, "exclude_high": op == "lt"}


def _holds_more(values: Iterator[Any], count: int) -> bool:
    """Whether `values` go on past `count` of them (reading at most one more)."""
    return sum(1 for _ in itertools.islice(values, count + 1)) > count


def _fewer(these: Iterator[Any], those: Iterator[Any], most: int) -> list | None:
    """All of `these` when they are fewer than `those` and at most `most`, read one of each
    in turn (so the cost is twice the shorter); None otherwise."""
    taken: list[Any] = []
    for _ in range(most):
        one = next(these, _END)
        if one is _END:
            return taken
        if next(those, _END) is _END:
            return None
        taken.append(one)
    return None


def _by_sort_keys(run: _Run, slot: int, holds: Callable[[Any], bool]) -> _Probe:
    """A probe that keeps the ids whose key at `slot` of their sort-key row (`TypeIndexes.keys`)
    is set and `holds`: what checking a few ids costs without building a set of the rest."""
    held = run.stored.keys.get

    def keep(ids):
        return IISet([i for i in ids if (row := held(i)) is not None and len(row) > slot
                      and (key := row[slot]) is not None and holds(key)])
    return _Probe(keep, run.population, KEY_READ_COST)


def _other_keys(node: Any, run: _Run) -> IdSet | None:
    """The records that `node`, an `eq` or `in` on a field of one value with few distinct
    keys (a status), does not hold, as the union of the field's other keys (and its
    empties): every filed record is under one key or among the empties, so this is the
    complement without going through every id (`status not_in [closed, …]` at a million
    records: 14 ms instead of 34). None when the field does not lend itself to it."""
    others = _other_holders(node, run)
    return None if others is None else union_of(others)


def _one_key_each(node: Any, run: _Run):
    """The index of the field `node` compares, when `node` is an `eq` or `in` on a field
    that files each record under one key (or among its empties); None otherwise."""
    if node.__class__ is not Compare or node.op not in ("eq", "in") or node.field == "id" or node.kind.multiple:
        return None
    index = run.index(node.field, node.path)
    if getattr(index, "slot", None) is None:       # not one key per record (no index, or keywords)
        return None
    return index


def _parts(node: Any, run: _Run) -> list | None:
    """`Filter.parts` of one node: an `eq`/`in` on a field of one key per record is the
    sets under its keys; `not` of one, the sets under the field's other keys; `any`, the
    parts of its largest child with the ids of the others that those do not hold as one
    more part; `all`, the keys its conditions on such a field leave (`status` neither
    closed nor …), taken into the branches of at most one other condition, an `any`
    (the read scope `{any: [{status: […]}, {assignee: $me}]}` of a list of open records)."""
    if node.__class__ is Compare:
        return None if _one_key_each(node, run) is None else node._holders(run)[1]
    if node.__class__ is Not:
        return _other_holders(node.child, run)
    if node.__class__ is Or:
        return _any_parts(node.children, run)
    if node.__class__ is And:
        return _all_parts(node.children, run)
    return None


def _keys_left(node: Any, run: _Run) -> tuple[Any, frozenset, bool] | None:
    """(field, its keys, whether its empties) that `node` lets through, when `node` is an
    `eq`/`in` on a field of one key per record, or `not` of one on a field of few keys."""
    inverted = node.__class__ is Not
    compare = node.child if inverted else node
    index = _one_key_each(compare, run)
    if index is None:
        return None
    keys, empty = compare.operand.resolve(compare.kind, run.scope, compare.path)
    if not inverted:
        return compare.field, frozenset(keys), empty
    every = list(itertools.islice(index.forward.keys(), FEW_KEYS + 1))
    if len(every) > FEW_KEYS:
        return None
    return compare.field, frozenset(every) - keys, not empty


def _all_parts(children: tuple, run: _Run) -> list | None:
    narrowing: list[Any] = []
    others: list[Any] = []
    for child in children:
        left = _keys_left(child, run)
        (others if left is None else narrowing).append(left or child)
    if not narrowing or len({field for field, _, _ in narrowing}) > 1 or len(others) > 1:
        return None
    field = narrowing[0][0]
    keys = frozenset.intersection(*(keys for _, keys, _ in narrowing))
    empty = all(empty for _, _, empty in narrowing)
    index = run.index(field, "")
    holders = index.holders(keys) + ([index.empty] if empty and index.empty else [])
    if size_of(holders) < PARTS_FROM:      # few: the other conditions are best checked on them (And)
        return None
    if not others:
        return holders
    if others[0].__class__ is not Or:
        return None
    lefts = [_keys_left(child, run) for child in others[0].children]
    if not any(left is not None and left[0] == field for left in lefts):
        return None                       # no branch on the field: no parts to keep (And)
    branches: list[Any] = []
    for child, left in zip(others[0].children, lefts, strict=True):
        if left is not None and left[0] == field:
            both = keys & left[1]
            branches.append(index.holders(both) + ([index.empty] if empty and left[2] and index.empty else []))
        else:
            branches.append(_held_by(child.ids(run), holders))
    return _united(branches)


def _held_by(ids: IdSet, holders: list) -> IdSet:
    """Those of `ids` that one of `holders` (forward values) holds."""
    if not ids or not holders:
        return IISet()
    if len(ids) * len(holders) * 16 < size_of(holders):     # few: each checked against the holders
        return IISet([i for i in ids if in_any(i, holders)])
    return intersection(ids, union_of(holders))


def _any_parts(children: tuple, run: _Run) -> list | None:
    branches = [_parts(child, run) for child in children]
    if all(branch is None for branch in branches):
        return None
    return _united([child.ids(run) if branch is None else branch for child, branch in zip(children, branches,
                                                                                        strict=True)])


def _united(branches: list) -> list:
    """Parts for the union of some branches (each parts, a list, or a set of ids): the
    largest list of parts, and what the other branches hold beyond it as one part."""
    lists = [branch for branch in branches if isinstance(branch, list)]
    largest = max(lists, key=size_of)
    rest = [union_of(branch) if isinstance(branch, list) else branch for branch in branches
            if branch is not largest]
    extra = union_of([ids for ids in rest if ids])
    if not extra:
        return largest
    if len(extra) * len(largest) * 16 < size_of(largest):       # few: each checked against the parts
        extra = IISet([i for i in extra if not in_any(i, largest)])
    else:
        for held in largest:
            extra = difference(extra, as_set(held))
    return largest + [extra] if extra else largest


def _other_holders(node: Any, run: _Run) -> list | None:
    """The forward values (and the empties) that hold the records `node` does not hold,
    as `_other_keys` unites them."""
    index = _one_key_each(node, run)
    if index is None:
        return None
    held = list(itertools.islice(index.forward.items(), FEW_KEYS + 1))
    if len(held) > FEW_KEYS:
        return None
    keys, empty = node.operand.resolve(node.kind, run.scope, node.path)
    others = [ids for key, ids in held if key not in keys]
    if not empty:
        others.append(index.empty)
    return others


@dataclass(frozen=True)
class Compare(_Node):
    """`field op operand`, op being eq, in (equal to one of), gt, gte, lt or lte;
    `ne` and `not_in` compile to Not(eq) and Not(in)."""

    field: str
    op: str
    operand: Operand
    kind: Kind = dataclasses.field(compare=False, repr=False)   # coerces references
    path: str = dataclasses.field(default="", compare=False)

    def _holders(self, run: _Run) -> tuple[Any, list | None, Any]:
        """(index, the forward values holding the matching ids or None when a range spans
        too many keys to list, the range's bound); index None: nothing can match."""
        keys, empty = self.operand.resolve(self.kind, run.scope, self.path)
        index = run.index(self.field, self.path)
        if index is None:
            return None, [], None
        if self.op in ("eq", "in"):
            holders = index.holders(keys)
            if empty and index.empty:
                holders.append(index.empty)
            return index, holders, None
        bound = _one_key(keys, empty, self.op, self.path)
        if bound is None:
            return None, [], None
        return index, index.holders_between(**_bounds(self.op, bound), limit=FEW_KEYS), bound

    def ids(self, run: _Run) -> IdSet:
        if self.field == "id":
            return self._ids_by_id(run)
        index, holders, bound = self._holders(run)
        if holders is not None:
            return union_of(holders)
        outside = self.outside(run)
        if outside is not None:
            return difference(run.stored.all_ids, union_of(outside))
        return index.between(**_bounds(self.op, bound))

    def outside(self, run: _Run) -> list | None:
        """The forward values holding every record a range does not hold — the keys beyond
        its bound and the empties — when the field files each record under one key and
        fewer keys lie beyond the bound than within it; None otherwise. `due lte $now+7d`
        over a year of past deadlines is every key of 900,000 within and none beyond: the
        records it leaves out are the 100,000 empties, 10 ms to subtract where merging the
        range took 240 ms."""
        if self.op in ("eq", "in") or self.field == "id" or self.kind.multiple:
            return None
        index = run.index(self.field, self.path)
        if getattr(index, "slot", None) is None:
            return None
        keys, empty = self.operand.resolve(self.kind, run.scope, self.path)
        bound = _one_key(keys, empty, self.op, self.path)
        if bound is None:
            return None
        within = index.holders_within(**_bounds(self.op, bound))
        # The range must hold more keys than the few checked one by one, and more than the
        # empties it leaves out too (a key holding about one record, as moments do).
        if not _holds_more(within, max(FEW_KEYS, index.estimate(index.empty))):
            return None
        found = _fewer(index.holders_within(**_bounds(_BEYOND[self.op], bound)), within, OUTSIDE_KEYS)
        return None if found is None else found + [index.empty]

    def _ids_by_id(self, run: _Run) -> IdSet:
        all_ids = run.stored.all_ids
        keys, empty = self.operand.resolve(self.kind, run.scope, self.path)
        if self.op in ("eq", "in"):
            return IISet(k for k in keys if _SMALLEST_ID <= k <= _LARGEST_ID and k in all_ids)
        bound = _one_key(keys, empty, self.op, self.path)
        if bound is None:
            return IISet()
        if self.op in ("gt", "gte"):
            low = bound + 1 if self.op == "gt" else bound
            return IISet() if low > _LARGEST_ID else IISet(all_ids.keys(max(low, _SMALLEST_ID)))
        high = bound - 1 if self.op == "lt" else bound
        return IISet() if high < _SMALLEST_ID else IISet(all_ids.keys(None, min(high, _LARGEST_ID)))

    def _probe(self, run: _Run) -> _Probe:
        if self.field == "id":
            keys, empty = self.operand.resolve(self.kind, run.scope, self.path)
            if self.op in ("eq", "in"):
                return _Probe(lambda ids: IISet([i for i in ids if i in keys]), len(keys), 1)
            bound, passes = _one_key(keys, empty, self.op, self.path), _COMPARISONS[self.op]
            if bound is None:
                return _NOTHING
            return _Probe(lambda ids: IISet([i for i in ids if passes(i, bound)]), run.population, 1)
        index, holders, bound = self._holders(run)
        if index is None:
            return _NOTHING
        if holders is not None:
            return _membership(index, holders)
        passes = _COMPARISONS[self.op]
        return _by_sort_keys(run, index.slot, lambda key: passes(key, bound))   # too many keys to count them

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        keys, empty = self.operand.resolve(self.kind, run.scope, self.path)
        key = run.key(values, self.field)
        if self.op in ("eq", "in"):
            if key is None or key == ():
                held = empty
            elif isinstance(key, tuple):
                held = any(k in keys for k in key)
            else:
                held = key in keys
        elif key is None or isinstance(key, tuple):
            held = False
        else:
            bound = _one_key(keys, empty, self.op, self.path)
            held = bound is not None and _COMPARISONS[self.op](key, bound)
        return held if run.trace is None else run.kept(self, held, keys, values.get(self.field))


@dataclass(frozen=True)
class Text(_Node):
    """Every word is among the record's text words, and every prefix starts one of them."""

    words: tuple[str, ...]
    prefixes: tuple[str, ...] = ()
    path: str = dataclasses.field(default="", compare=False)

    def _index(self, run: _Run):
        index = run.stored.text(run.typedef)
        if index is None and run.stored.all_ids:
            raise QueryError(f"the text index of `{run.typedef.name}` is missing", self.path,
                             "run `deskbase migrate`")
        return index

    def ids(self, run: _Run) -> IdSet:
        index = self._index(run)
        if index is None:
            return IISet()
        result = None
        terms = [(index.ids, word) for word in self.words] + [(index.prefix, p) for p in self.prefixes]
        for find, term in terms:
            found = find(term)
            result = found if result is None else intersection(result, found)
            if not result:
                return IISet()
        return run.stored.all_ids if result is None else result

    def _probe(self, run: _Run) -> _Probe:
        index = self._index(run)
        if index is None:
            return _NOTHING
        probes = [_membership(index, index.holders([word])) for word in self.words]
        for prefix in self.prefixes:
            holders = index.holders_between(prefix, prefix + LAST_LETTER, limit=FEW_KEYS)
            if holders is not None:
                probes.append(_membership(index, holders))
                continue
            def keep(ids: IdSet, prefix: str = prefix) -> IdSet:
                return intersection(ids, index.prefix(prefix))
            probes.append(_Probe(keep, run.population, KEY_READ_COST))   # too many words to count
        return _all_of(probes, run.population)

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        text_index = run.typedef.text_index
        assert text_index is not None               # a text filter is compiled only for a type with one
        words = textsearch.words_of(values, text_index.fields)
        held = (all(word in words for word in self.words)
                and all(any(w.startswith(p) for w in words) for p in self.prefixes))
        return held if run.trace is None else run.kept(self, held, self.words + self.prefixes)


@dataclass(frozen=True)
class Filter:
    """A compiled filter over one type."""

    root: _Node
    type_name: str
    fields: frozenset[str]                        # the fields the filter reads
    record_fields: frozenset[str] = frozenset()   # the fields of $record it reads

    def ids(self, indexes: TypeIndexes, typedef: TypeDef, context: Mapping[str, Any] | None = None,
            unindexed: Mapping[int, Mapping[str, Any]] | None = None) -> IdSet:
        """The ids of the matching records, from the indexes (a read-only BTrees set);
        `unindexed`, the values of the records not filed in them yet (by id), which are
        judged by their values instead (`TypeIndexes.catch_up`)."""
        found = self.root.ids(_Run(indexes, typedef, context))
        if not unindexed:
            return found
        run = _Run(None, typedef, context)
        held = IISet([i for i, values in unindexed.items() if self.root.matches(values, run)])
        return union(difference(found, IISet(unindexed)), held)

    def parts(self, indexes: TypeIndexes, typedef: TypeDef,
              context: Mapping[str, Any] | None = None) -> list | None:
        """The matching ids as forward values of the indexes (ids and sets of ids) that no
        two of them share, when the filter is one `eq`, `in`, `ne` or `not_in` on a field
        that files each record under one key (`status: {not_in: [closed, …]}`); None for
        any other filter. Their union is `ids`, but a page and a count can be had from the
        parts without merging them (`query.search`)."""
        return _parts(self.root, _Run(indexes, typedef, context))

    def matches(self, values: Mapping[str, Any], typedef: TypeDef,
                context: Mapping[str, Any] | None = None, trace: list | None = None) -> bool:
        """Whether one record, given by its stored values, matches. With `trace` (a list), the
        evaluation also appends what it checked, as one `Checked` (every part evaluated)."""
        if trace is None:
            return self.root.matches(values, _Run(None, typedef, context))
        run = _Run(None, typedef, context, [])
        held = self.root.matches(values, run)
        trace.append(run.trace[0] if run.trace else Checked("", held, "all"))
        return held


# -- compiling ---------------------------------------------------------------------------

def compile_filter(spec: Any, typedef: TypeDef, *, record_type: TypeDef | None = None) -> Filter:
    """A Filter from its YAML/JSON form; `record_type` is the type `$record.<field>` names
    (the record being edited, for a ref's `where`; by default `typedef` itself)."""
    compiler = _Compiler(typedef, record_type or typedef)
    root = compiler.filter(spec, "")
    return Filter(root, typedef.name, frozenset(compiler.fields), frozenset(compiler.record_fields))


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _shown(value: Any) -> str:
    return "null" if value is None else str(value)


def _unbounded(kind: Kind) -> Kind:
    """A kind that coerces like `kind` but accepts any bound: `{quantity: {lt: 1000}}` is
    a fair question even when quantities stop at 100."""
    changes: dict[str, Any] = {name: None for name in ("minimum", "maximum", "pattern")
                               if getattr(kind, name, None) is not None}
    if isinstance(kind, ComputedKind):
        changes["result"] = _unbounded(kind.result)
    return dataclasses.replace(kind, **changes) if changes else kind


class _Compiler:
    def __init__(self, typedef: TypeDef, record_type: TypeDef):
        self.typedef, self.record_type = typedef, record_type
        self.fields: set[str] = set()
        self.record_fields: set[str] = set()

    def error(self, message: str, path: str, hint: str | None = None) -> QueryError:
        return QueryError(message, path, hint)

    def filter(self, spec: Any, path: str):
        if spec is None:
            return All()
        if not isinstance(spec, Mapping):
            raise self.error(f"a filter is a map such as `{{status: open}}`, not `{spec}`", path)
        nodes = [self.entry(str(key), operand, _join(path, key)) for key, operand in spec.items()]
        nodes = [node for node in nodes if not isinstance(node, All)]
        if not nodes:
            return All()
        return nodes[0] if len(nodes) == 1 else And(tuple(nodes))

    def entry(self, key: str, operand: Any, path: str):
        if key in ("all", "any"):
            if not isinstance(operand, (list, tuple)):
                raise self.error(f"`{key}` expects a list of filters, such as `[{{status: open}}, "
                                 f"{{assignee: $me}}]`", path)
            children = tuple(self.filter(item, f"{path}[{i}]") for i, item in enumerate(operand))
            if key == "all":
                children = tuple(c for c in children if not isinstance(c, All))
                return All() if not children else children[0] if len(children) == 1 else And(children)
            if any(isinstance(c, All) for c in children):
                return All()
            return children[0] if len(children) == 1 else Or(children)
        if key == "not":
            if not isinstance(operand, Mapping):
                raise self.error("`not` expects one filter (a map), such as `{status: closed}`", path)
            return Not(self.filter(operand, path))
        if key == "text":
            return self.text(operand, path)
        return self.field(key, operand, path)

    def text(self, operand: Any, path: str):
        index = self.typedef.text_index
        name = self.typedef.name
        if index is None:
            raise self.error(f"`{name}` has no text index to search", path,
                             f"add `{{text: [fields]}}` to `index:` of `{name}`")
        if not isinstance(operand, (str, int, float)) or isinstance(operand, bool):
            raise self.error("`text` expects words to search, such as `printer paris` or `prin*`", path)
        words: list[str] = []
        prefixes: list[str] = []
        for token in str(operand).split():
            found = textsearch.words(token)
            if found and token.endswith("*"):
                words.extend(found[:-1])
                prefixes.append(found[-1])
            else:
                words.extend(found)
        self.fields.update(index.fields)
        if not words and not prefixes:
            return All()
        return Text(tuple(dict.fromkeys(words)), tuple(dict.fromkeys(prefixes)), path)

    def field(self, name: str, operand: Any, path: str):
        typedef = self.typedef
        if name not in typedef.fields and name != "id":
            raise self.error(f"`{name}` is not a field of `{typedef.name}`", path,
                             hint_for(name, [*typedef.fields, *KEYWORDS]))
        if name == "id":
            index = None
            kind = typedef.fields["id"].kind if "id" in typedef.fields else IntegerKind()
        else:
            index = typedef.index_for(name)
            if index is None:
                raise self.error(f"field `{name}` of `{typedef.name}` has no index", path,
                                 f"add it to `index:` of `{typedef.name}`")
            kind = typedef.fields[name].kind
        self.fields.add(name)
        if isinstance(operand, IdsAmong):
            if not isinstance(kind, RefKind) or kind.multiple:
                raise self.error(f"`{name}` is not a ref to one record, so it cannot be among ids", path)
            return Among(name, operand, path)
        if isinstance(operand, Mapping):
            if not operand:
                raise self.error(f"an empty map compares `{name}` with nothing; give an operator "
                                 f"({', '.join(OPERATORS)})", path)
            nodes = [self.operator(name, kind, index, str(op), value, _join(path, op))
                     for op, value in operand.items()]
            return nodes[0] if len(nodes) == 1 else And(tuple(nodes))
        if isinstance(operand, (list, tuple)):
            return self.operator(name, kind, index, "in", operand, path)
        return self.operator(name, kind, index, "eq", operand, path)

    def operator(self, name: str, kind: Kind, index, op: str, value: Any, path: str):
        if op not in OPERATORS:
            raise self.error(f"`{op}` is not an operator; use one of {', '.join(OPERATORS)}", path,
                             hint_for(op, OPERATORS))
        if op == "empty":
            if not isinstance(value, bool):
                raise self.error(f"`empty` is true or false, not `{_shown(value)}`", path)
            return Empty(name, path) if value else Not(Empty(name, path))
        if op in ("eq", "ne"):
            if isinstance(value, (list, tuple, Mapping)):
                plural = "in" if op == "eq" else "not_in"
                raise self.error(f"`{op}` compares with one value; use `{plural}` for a list", path)
            node = self.equal(name, kind, [value], op, path)
            return Not(node) if op == "ne" else node
        if op in ("in", "not_in"):
            if isinstance(value, str) and value.startswith("$") and not value.startswith("$$"):
                values = [value]   # a reference that gives a list
            elif isinstance(value, (list, tuple)):
                values = list(value)
            else:
                raise self.error(f"`{op}` expects a list of values, such as `[a, b]`, "
                                 f"not `{_shown(value)}`", path)
            node = self.equal(name, kind, values, op, path, listed=True)
            return Not(node) if op == "not_in" else node
        # gt gte lt lte
        multiple = kind.multiple or (index is not None and index.kind == "keyword")
        if multiple:
            raise self.error(f"`{name}` holds several values, so `{op}` cannot compare it; "
                             f"use eq, in, not_in or empty", path)
        if not kind.sortable:
            raise self.error(f"`{name}` ({kind.name}) has no order, so `{op}` cannot compare it", path)
        if value is None:
            raise self.error(f"`{op}` needs a value; to find records without `{name}` use "
                             f"`empty: true`", path)
        if isinstance(value, (list, tuple, Mapping)):
            raise self.error(f"`{op}` compares with one value, not a list or a map", path)
        operand = self.operand(name, _unbounded(kind), [value], path, listed=False)
        return Compare(name, op, operand, _unbounded(kind), path)

    def equal(self, name: str, kind: Kind, values: list, op: str, path: str, listed: bool = False):
        operand = self.operand(name, kind, values, path, listed)
        if operand.empty and not (operand.keys or operand.references or operand.numbers):
            return Empty(name, path)
        return Compare(name, "in" if listed else "eq", operand, kind, path)

    def operand(self, name: str, kind: Kind, values: list, path: str, listed: bool) -> Operand:
        keys: set = set()
        empty = False
        references: list[Reference] = []
        numbers: list[str] = []
        for position, value in enumerate(values):
            where = f"{path}[{position}]" if listed else path
            if isinstance(value, (list, tuple, Mapping)):
                raise self.error(f"a value inside a list cannot be a list or a map: "
                                 f"`{value}`", where)
            if isinstance(value, str) and value.startswith("$"):
                if value.startswith("$$"):
                    value = value[1:]
                else:
                    references.append(self.reference(value, kind, name, where))
                    continue
            if value is None:
                empty = True
                continue
            if (isinstance(kind, RefKind) and isinstance(value, str)
                    and not value.strip().isdigit() and value.strip()):
                numbers.append(value)   # a record number such as ORG-0003: looked up when run
                continue
            try:
                empty |= _keys_of(kind, value, None, keys)
            except FieldError as error:
                raise self.error(f"`{name}` cannot be compared with `{value}`: {error}", where) from None
        return Operand(frozenset(keys), empty, tuple(references), tuple(numbers))

    def reference(self, text: str, kind: Kind, name: str, path: str) -> Reference:
        match = _REFERENCE.fullmatch(text.strip())
        usage = "use $me, $me.<attribute>, $record.<field>, $now, $today, $now+4h or $today-7d"
        if match is None:
            raise self.error(f"`{text}` is not a reference; {usage}", path,
                             "write `$$` for a text that starts with `$`")
        source, attribute, unit = match["source"], match["name"], match["unit"]
        if source not in SOURCES:
            close = did_you_mean(source, SOURCES)
            raise self.error(f"`${source}` is not a reference; {usage}", path,
                             f"did you mean `${close}`?" if close else None)
        if unit and source in ("me", "record"):
            raise self.error(f"`{text}`: only `$now` and `$today` take an offset", path)
        if attribute and source in ("now", "today"):
            raise self.error(f"`{text}`: `${source}` has no attributes", path)
        offset = timedelta()
        if unit:
            if source == "today" and unit != "d":
                raise self.error(f"`{text}`: `$today` moves by whole days, such as `$today-7d`", path,
                                 "use `$now` for hours and minutes")
            amount = int(match["amount"]) if len(match["amount"]) <= 7 else MAX_OFFSET_DAYS + 1
            if amount * _UNITS[unit] > timedelta(days=MAX_OFFSET_DAYS):
                raise self.error(f"`{_shown(text)}` moves too far: at most {MAX_OFFSET_DAYS} days", path)
            offset = _UNITS[unit] * amount * (-1 if match["sign"] == "-" else 1)
        if source == "record":
            fields = self.record_type.fields
            if not attribute:
                raise self.error("`$record` needs a field, such as `$record.category`", path)
            if attribute not in fields:
                raise self.error(f"`{attribute}` is not a field of `{self.record_type.name}`", path,
                                 hint_for(attribute, fields))
            self.record_fields.add(attribute)
        reference = Reference(text.strip(), source, attribute, offset)
        if source in ("now", "today"):
            sample = datetime(2000, 1, 1, tzinfo=UTC) if source == "now" else date(2000, 1, 1)
            try:
                kind.coerce(sample)
            except (FieldError, TypeError, ValueError):
                what = "a moment" if source == "now" else "a day"
                raise self.error(f"`{text}` is {what}, which `{name}` ({kind.name}) cannot hold",
                                 path) from None
        return reference

