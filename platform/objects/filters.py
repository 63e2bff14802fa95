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
  runs; a list it gives means `in`, and one that is missing (no such attribute, no
  record) gives null, so `{assignee: $me.acting_for}` matches empty assignees when the
  user acts for nobody, and a range with a missing bound matches nothing;
- a text starting with `$` is a reference; write `$$` for a literal `$`.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from BTrees.IIBTree import IISet, difference, intersection, multiunion, union

from . import textsearch
from .errors import FieldError, QueryError, did_you_mean, hint_for
from .fields import ComputedKind, IntegerKind, Kind, RefKind
from .indexes import IdSet, KeywordIndex, TypeIndexes
from .model import TypeDef

UTC = timezone.utc
OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "empty")
RANGE_OPERATORS = ("gt", "gte", "lt", "lte")
KEYWORDS = ("all", "any", "not", "text")   # keys of a filter map that are not field names
SOURCES = ("me", "record", "now", "today")
# And checks its remaining children id by id once it holds fewer than 1/NARROW_RATIO of
# the type's records: a reverse lookup costs about as much as NARROW_RATIO ids of set
# operations.
NARROW_RATIO = 64
_SMALLEST_ID, _LARGEST_ID = -2**31, 2**31 - 1   # what an IITreeSet can hold
_REFERENCE = re.compile(
    r"\$(?P<source>\w+)(?:\.(?P<name>\w+))?"
    r"(?:\s*(?P<sign>[+-])\s*(?P<amount>\d+)\s*(?P<unit>[dhm]))?")
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


# -- context -----------------------------------------------------------------------------

class _Scope:
    """The context of one evaluation, with `now` and `today` fixed once."""

    __slots__ = ("me", "record", "now", "today", "lookup")

    def __init__(self, context: Mapping[str, Any] | None):
        context = context or {}
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
            return _attribute(scope.me, self.name or "id")
        if self.source == "record":
            return _attribute(scope.record, self.name)
        if self.source == "now":
            return scope.now + self.offset
        return scope.today + self.offset


# -- operands ----------------------------------------------------------------------------

def _items(raw: Any) -> Sequence[Any]:
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
                empty |= _keys_of(kind, value, scope.lookup, keys)
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


def _passes(key: Any, op: str, bound: Any) -> bool:
    if op == "gt":
        return key > bound
    if op == "gte":
        return key >= bound
    if op == "lt":
        return key < bound
    return key <= bound


# -- the tree ----------------------------------------------------------------------------

class _Run:
    """One evaluation: the indexes (or None in memory), the type and the context."""

    __slots__ = ("indexes", "typedef", "scope")

    def __init__(self, indexes: TypeIndexes | None, typedef: TypeDef, context):
        self.indexes, self.typedef, self.scope = indexes, typedef, _Scope(context)

    def few(self, ids: IdSet) -> bool:
        """Whether `ids` is small enough to check other conditions id by id."""
        return len(ids) * NARROW_RATIO <= self.indexes.count

    def index(self, field_name: str, path: str):
        index = self.indexes.for_field(self.typedef, field_name)
        if index is None:
            if not self.indexes.all_ids:
                return None   # a type nothing was ever stored in: no index yet, no records
            raise QueryError(f"the index of `{field_name}` of `{self.typedef.name}` is missing",
                             path, "run `deskbase migrate`")
        return index

    def key(self, values: Mapping[str, Any], field_name: str) -> Any:
        field = self.typedef.fields.get(field_name)
        value = values.get(field_name)
        return field.kind.key(value) if field is not None else value


@dataclass(frozen=True)
class All:
    """Every record."""

    def ids(self, run: _Run) -> IdSet:
        return run.indexes.all_ids

    def tester(self, run: _Run):
        return lambda record_id: True

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        return True


@dataclass(frozen=True)
class And:
    """Every child holds."""

    children: tuple

    def ids(self, run: _Run) -> IdSet:
        # Sets of single keys first (they are read, not built), ranges and unions later;
        # `not` children are subtracted from what the others found, not from all ids.
        # Once the ids found are few, the other children are checked id by id against
        # the reverse indexes, which is cheaper than building their large sets.
        positives = sorted((c for c in self.children if not isinstance(c, (Not, All))), key=_cost)
        negatives = [c.child for c in self.children if isinstance(c, Not)]
        result = None
        for position, child in enumerate(positives):
            if result is not None and run.few(result):
                return _keep(result, positives[position:], negatives, run)
            found = child.ids(run)
            result = found if result is None else intersection(result, found)
            if not result:
                return IISet()
        if result is None:
            result = run.indexes.all_ids
        if negatives and run.few(result):
            return _keep(result, [], negatives, run)
        for child in negatives:
            result = difference(result, child.ids(run))
            if not result:
                return IISet()
        return result

    def tester(self, run: _Run):
        tests = [child.tester(run) for child in self.children]
        return lambda record_id: all(test(record_id) for test in tests)

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        return all(child.matches(values, run) for child in self.children)


@dataclass(frozen=True)
class Or:
    """At least one child holds."""

    children: tuple

    def ids(self, run: _Run) -> IdSet:
        found = [child.ids(run) for child in self.children]
        if not found:
            return IISet()
        return found[0] if len(found) == 1 else multiunion(found)

    def tester(self, run: _Run):
        tests = [child.tester(run) for child in self.children]
        return lambda record_id: any(test(record_id) for test in tests)

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        return any(child.matches(values, run) for child in self.children)


@dataclass(frozen=True)
class Not:
    """The child does not hold."""

    child: Any

    def ids(self, run: _Run) -> IdSet:
        return difference(run.indexes.all_ids, self.child.ids(run))

    def tester(self, run: _Run):
        test = self.child.tester(run)
        return lambda record_id: not test(record_id)

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        return not self.child.matches(values, run)


@dataclass(frozen=True)
class Empty:
    """The field holds nothing (no value, or no item for multi-valued fields)."""

    field: str
    path: str = dataclasses.field(default="", compare=False)

    def ids(self, run: _Run) -> IdSet:
        if self.field == "id":
            return IISet()
        index = run.index(self.field, self.path)
        return IISet() if index is None else index.empty

    def tester(self, run: _Run):
        index = None if self.field == "id" else run.index(self.field, self.path)
        if index is None:
            return lambda record_id: False
        held = index.reverse.get
        if isinstance(index, KeywordIndex):
            return lambda record_id: not held(record_id)
        return lambda record_id: held(record_id) is None

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        key = run.key(values, self.field)
        return key is None or key == ()


@dataclass(frozen=True)
class Compare:
    """`field op operand` with op eq, in (equal to one of), gt, gte, lt or lte; `ne` and
    `not_in` compile to Not(eq) and Not(in)."""

    field: str
    op: str
    operand: Operand
    kind: Kind = dataclasses.field(compare=False, repr=False, default=None)   # coerces references
    path: str = dataclasses.field(default="", compare=False)

    def ids(self, run: _Run) -> IdSet:
        keys, empty = self.operand.resolve(self.kind, run.scope, self.path)
        if self.field == "id":
            return self._ids_by_id(run.indexes.all_ids, keys)
        index = run.index(self.field, self.path)
        if index is None:
            return IISet()
        if self.op in ("eq", "in"):
            found = index.ids_any(keys) if keys else None
            if empty:
                return union(found, index.empty) if found else index.empty
            return IISet() if found is None else found
        bound = _one_key(keys, empty, self.op, self.path)
        if bound is None:
            return IISet()
        if self.op in ("gt", "gte"):
            return index.between(bound, None, exclude_low=self.op == "gt")
        return index.between(None, bound, exclude_high=self.op == "lt")

    def _ids_by_id(self, all_ids, keys) -> IdSet:
        if self.op in ("eq", "in"):
            return IISet(k for k in keys if _SMALLEST_ID <= k <= _LARGEST_ID and k in all_ids)
        bound = _one_key(keys, False, self.op, self.path)
        if bound is None:
            return IISet()
        low = high = None
        if self.op in ("gt", "gte"):
            low = bound + 1 if self.op == "gt" else bound
            if low > _LARGEST_ID:
                return IISet()
            low = max(low, _SMALLEST_ID)
        else:
            high = bound - 1 if self.op == "lt" else bound
            if high < _SMALLEST_ID:
                return IISet()
            high = min(high, _LARGEST_ID)
        return IISet(all_ids.keys(low, high))

    def tester(self, run: _Run):
        keys, empty = self.operand.resolve(self.kind, run.scope, self.path)
        op = self.op
        bound = None if op in ("eq", "in") else _one_key(keys, empty, op, self.path)
        if self.field == "id":
            if op in ("eq", "in"):
                return keys.__contains__
            return lambda record_id: bound is not None and _passes(record_id, op, bound)
        index = run.index(self.field, self.path)
        if index is None:
            return lambda record_id: False
        held = index.reverse.get
        if op not in ("eq", "in"):
            if bound is None:
                return lambda record_id: False

            def in_range(record_id):
                key = held(record_id)
                return key is not None and not isinstance(key, tuple) and _passes(key, op, bound)
            return in_range
        if isinstance(index, KeywordIndex):
            def contains(record_id):
                held_keys = held(record_id)
                return any(k in keys for k in held_keys) if held_keys else empty
            return contains

        def equals(record_id):
            key = held(record_id)
            return empty if key is None else key in keys
        return equals

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        keys, empty = self.operand.resolve(self.kind, run.scope, self.path)
        key = run.key(values, self.field)
        if self.op in ("eq", "in"):
            if key is None or key == ():
                return empty
            if isinstance(key, tuple):
                return any(k in keys for k in key)
            return key in keys
        if key is None or isinstance(key, tuple):
            return False
        bound = _one_key(keys, empty, self.op, self.path)
        return bound is not None and _passes(key, self.op, bound)


@dataclass(frozen=True)
class Text:
    """Every word is among the record's text words; every prefix starts one of them."""

    words: tuple[str, ...]
    prefixes: tuple[str, ...] = ()
    path: str = dataclasses.field(default="", compare=False)

    def ids(self, run: _Run) -> IdSet:
        index = run.indexes.text(run.typedef)
        if index is None:
            if not run.indexes.all_ids:
                return IISet()
            raise QueryError(f"the text index of `{run.typedef.name}` is missing", self.path,
                             "run `deskbase migrate`")
        result = None
        terms = [(index.ids, word) for word in self.words] + [(index.prefix, p) for p in self.prefixes]
        for find, term in terms:
            found = find(term)
            result = found if result is None else intersection(result, found)
            if not result:
                return IISet()
        return run.indexes.all_ids if result is None else result

    def tester(self, run: _Run):
        index = run.indexes.text(run.typedef)
        if index is None:
            return lambda record_id: False
        held = index.reverse.get
        words, prefixes = self.words, self.prefixes

        def has_words(record_id):
            found = held(record_id, ())
            return (all(word in found for word in words)
                    and all(any(w.startswith(p) for w in found) for p in prefixes))
        return has_words

    def matches(self, values: Mapping[str, Any], run: _Run) -> bool:
        words = textsearch.words_of(values, run.typedef.text_index.fields)
        return (all(word in words for word in self.words)
                and all(any(w.startswith(p) for w in words) for p in self.prefixes))


def _cost(node: Any) -> int:
    """The order in which And evaluates its children: sets read as they are first."""
    if isinstance(node, Compare) and node.op == "eq" and not node.operand.empty:
        return 0
    if isinstance(node, (Empty, Text)) or (isinstance(node, Compare) and node.op == "in"):
        return 1
    if isinstance(node, Compare):
        return 2
    return 3


def _keep(ids: IdSet, positives: list, negatives: list, run: _Run) -> IdSet:
    """The ids for which every positive child holds and no negative one does."""
    tests = [child.tester(run) for child in positives]
    refusals = [child.tester(run) for child in negatives]
    return IISet([i for i in ids if all(t(i) for t in tests) and not any(t(i) for t in refusals)])


@dataclass(frozen=True)
class Filter:
    """A compiled filter over one type."""

    root: Any
    type_name: str
    fields: frozenset[str]           # the fields the filter reads
    record_fields: frozenset[str] = frozenset()   # the fields of $record it reads

    def ids(self, indexes: TypeIndexes, typedef: TypeDef,
            context: Mapping[str, Any] | None = None) -> IdSet:
        """The ids of the matching records, from the indexes (a read-only BTrees set)."""
        return self.root.ids(_Run(indexes, typedef, context))

    def matches(self, values: Mapping[str, Any], typedef: TypeDef,
                context: Mapping[str, Any] | None = None) -> bool:
        """Whether one record, given by its stored values, matches."""
        return self.root.matches(values, _Run(None, typedef, context))


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
    changes = {name: None for name in ("minimum", "maximum", "pattern")
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
            offset = _UNITS[unit] * int(match["amount"]) * (-1 if match["sign"] == "-" else 1)
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

