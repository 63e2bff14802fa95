"""Demo data: fixed records and reproducible random ones, described in YAML files and
loaded through the store's write path, so every check, index, aggregate and history
entry applies to them exactly as to records typed by a person.

A demo folder (`<definitions>/demo/`) holds `*.yaml` files, read in name order. Each has
two optional lists:

    records:                  # fixed records, created in order
      - {type: organization, key: acme, values: {name: ACME Industries, code: ACME}}
      - {type: contact, key: jdupont, values: {name: Jean Dupont, organization: {ref: acme}}}
      - {update: acme, values: {authorized_requesters: [{ref: jdupont}]}}
    generate:                 # random records, the same ones on every load with the same seed
      - type: task
        count: 240
        seed: 7
        variants:             # optional: one is picked per record and generated first
          - {title: Printer jammed, category: {ref: hardware}}
        values:
          priority: {pick: [urgent, high, medium, low], weights: [1, 3, 6, 4]}
          organization: {pick_ref: organization}
          contact: {pick_ref: contact, where: {organization: $record.organization}}
          reported_at: {between: ["-60d", now]}
          assignee: {when: {status: [new]}, then: null, else: {pick: [alice, bob]}}

`key` names a fixed record for later `{ref: key}` in any file; `update` changes a record
created earlier (by key or by number), e.g. to close a circle of references. A value is
a literal, a list of values, `$record.<field>` (a value generated earlier for the same
record) or one of these maps:

    {ref: key}                            the id of the record created with that key
    {pick: [a, b], weights: [3, 1]}       one of the items; `count: 2` or `count: [0, 3]`
                                          picks that many distinct items as a list
    {pick_ref: type}                      any record of the type, optionally limited by
                                          `where` (a filter) and `keys: [k1, k2]`; `count`
                                          as for pick; nothing when none fits
    {between: [low, high]}                for dates, times, durations and numbers; `step`
                                          rounds (`step: 15m`). Dates and times are
                                          absolute or `now`, `today`, `-60d`, `+2w`, `-3y`,
                                          `-4h`, `-30min`
    {at: "-120d"}                         one date or time, relative to the load (as in
                                          `between`): demo dates that stay current
    {chance: 0.3, value: v}               v three times in ten, else `otherwise` (nothing)
    {when: {field: v or [v1, v2]}, then: a, else: b}   on values generated earlier
    {format: "PC-{n:04d}"}                text with `{n}` (the record's position in its
                                          block, from 1) and `{field}` of the record

An upper layer may add lists of its own to a file (`users:` for accounts) by passing
`sections` to `load_demo`: each is called with the store, the list, the keys of the
records created so far and the file's name, after the file's records, `notify` (whether
the changes it makes may tell people) and `now` (the moment of the load, or None for the
current time).

A value that comes out empty is left out, so the field gets its default. Loading twice
into a store that already holds records of the demo's types is refused unless `force`.
"""
from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .errors import DeskbaseError, FieldError, NotFound, QueryError, ValidationError, hint_for
from .fields import DateKind, DateTimeKind, DecimalKind, DurationKind, IntegerKind, Kind, parse_duration
from .model import TypeDef
from .sourcemap import SourceMap, read_yaml

UTC = timezone.utc
Progress = Callable[[str, int], None]
"""Called with a type name and how many records of it the demo has created so far."""
DemoSection = Callable[..., Any]   # (store, entries, keys, file name, *, notify, now) → anything
"""An upper layer's list in a demo file: called as (store, entries, keys, file name)."""

FILE_KEYS = ("records", "generate")
RECORD_KEYS = ("type", "key", "update", "values")
BLOCK_KEYS = ("type", "count", "seed", "variants", "values")
GENERATORS: dict[str, tuple[str, ...]] = {   # generator name -> the keys its map may have
    "ref": ("ref",),
    "pick": ("pick", "weights", "count"),
    "pick_ref": ("pick_ref", "where", "keys", "count"),
    "between": ("between", "step"),
    "after": ("after", "within", "step"),
    "at": ("at",),
    "chance": ("chance", "value", "otherwise"),
    "when": ("when", "then", "else"),
    "format": ("format",),
}
_OFFSET = re.compile(r"([+-])\s*(\d+)\s*(min|s|m|h|d|w|y)")
_OFFSET_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]*))?\}")


class DemoError(DeskbaseError):
    """A demo file that cannot be loaded; the message names the file, line and entry."""


# -- reading the files ------------------------------------------------------------------

@dataclass(frozen=True)
class _Place:
    """Where an entry stands, for messages: `demo/20_tasks.yaml:14: generate[0] (task)`."""

    file: str
    line: int
    entry: str

    def error(self, message: str) -> DemoError:
        return DemoError(f"{self.file}:{self.line}: {self.entry}: {message}")


def demo_folder(folder: Path) -> Path:
    """The folder of demo files: `folder/demo` when there is one, else `folder` itself."""
    folder = Path(folder)
    return folder / "demo" if (folder / "demo").is_dir() else folder


def read_demo(folder: Path, extra_keys: Iterable[str] = ()) -> list[tuple[str, Mapping[str, Any], SourceMap]]:
    """The demo files of a folder, in name order, as (shown name, document, positions);
    read by the same rules as definitions. `extra_keys` are lists upper layers read."""
    file_keys = FILE_KEYS + tuple(extra_keys)
    folder = demo_folder(folder)
    paths = sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    if not paths:
        raise DemoError(f"{folder}: no demo files (*.yaml) here")
    documents: list[tuple[str, Mapping[str, Any], SourceMap]] = []
    for path in paths:
        shown = f"{folder.name}/{path.name}"
        document, errors = read_yaml(path)
        if errors:
            first = errors[0]
            raise DemoError(f"{shown}:{first.line}: {first.message}")
        assert document is not None                 # None only with errors
        data = document.data if document.data is not None else {}
        if not isinstance(data, dict):
            raise DemoError(f"{shown}:1: a demo file is a map with `records` and/or `generate`")
        for name in data:
            if name not in file_keys:
                raise _Place(shown, 1, name).error(_unknown("key", name, file_keys))
        documents.append((shown, data, document.positions))
    return documents


def _unknown(what: str, name: Any, known: Iterable[str]) -> str:
    known = tuple(known)
    hint = hint_for(str(name), known)
    text = f"`{name}` is not a known {what} (expected {', '.join(known)})"
    return f"{text}; {hint}" if hint else text


# -- loading ----------------------------------------------------------------------------

def load_demo(store: Any, folder: Path, *, user: str = "demo", progress: Progress | None = None,
              force: bool = False, sections: Mapping[str, DemoSection] | None = None,
              notify: bool = True, now: datetime | None = None) -> dict[str, int]:
    """Create the demo records of `folder` in `store`; returns how many were created per type.
    With `notify=False` their changes tell nobody (made-up people and addresses). `now` loads
    it as of that moment (its relative dates and its writes), the same records every time;
    by default the current time."""
    sections = dict(sections or {})
    load = _DemoLoad(store, user, progress, sections, notify=notify, now=now)
    return load.run(read_demo(folder, sections), force=force)


class _DemoLoad:
    """One load of a demo folder into a store."""

    def __init__(self, store: Any, user: str, progress: Progress | None,
                 sections: Mapping[str, DemoSection] | None = None, *, notify: bool = True,
                 now: datetime | None = None):
        self.sections = dict(sections or {})
        self.notify = notify
        self.store = store
        self.definitions = store.definitions
        self.user = user
        self.progress = progress
        self.keys: dict[str, tuple[str, int]] = {}       # key -> (type, id)
        self.key_places: dict[str, _Place] = {}
        self.created: dict[str, int] = {}
        self.now = (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
        self.fixed_now = now          # the moment the writes are made at; None: as they happen
        self.zone = ZoneInfo(self.definitions.zone)

    def run(self, documents: list[tuple[str, Mapping[str, Any], SourceMap]], *, force: bool) -> dict[str, int]:
        self.positions = {shown: positions for shown, _, positions in documents}
        self._refuse_reload(self._check_entries(documents), force)
        for shown, document, _ in documents:
            records = document.get("records") or []
            if records:
                self._fixed(shown, records)
            for index, block in enumerate(document.get("generate") or []):
                self._generate(shown, index, block)
            for name, load_section in self.sections.items():
                entries = document.get(name) or []
                if not isinstance(entries, list):
                    raise _Place(shown, self._line(shown, name), name).error(f"`{name}` must be a list")
                if entries:
                    load_section(self.store, entries, dict(self.keys), shown, notify=self.notify,
                                 now=self.fixed_now)
        return dict(self.created)

    def _typedef(self, name: Any, place: _Place) -> TypeDef:
        try:
            return self.definitions.type(str(name))
        except NotFound as error:
            raise place.error(str(error)) from None

    def _check_entries(self, documents) -> list[str]:
        """Check the shape of every entry before anything is written; the types the demo creates."""
        names: list[str] = []
        for shown, document, _ in documents:
            for section in FILE_KEYS:
                entries = document.get(section) or []
                if not isinstance(entries, list):
                    raise _Place(shown, self._line(shown, section), section).error(f"`{section}` must be a list")
                for index, entry in enumerate(entries):
                    place = _Place(shown, self._line(shown, section, index), f"{section}[{index}]")
                    if not isinstance(entry, dict):
                        raise place.error("each entry is a map")
                    known = RECORD_KEYS if section == "records" else BLOCK_KEYS
                    for name in entry:
                        if name not in known:
                            raise place.error(_unknown("key", name, known))
                    if section == "records" and "update" in entry:
                        continue
                    if "type" not in entry:
                        raise place.error("`type` is missing: which type of record to create?")
                    typedef = self._typedef(entry["type"], place)
                    if typedef.name not in names:
                        names.append(typedef.name)
        return names

    def _refuse_reload(self, type_names: list[str], force: bool) -> None:
        if force or not type_names:
            return
        counts = self.store.read(lambda s: {name: s.count(name) for name in type_names}, user=self.user)
        present = {name: n for name, n in counts.items() if n}
        if present:
            listed = ", ".join(f"{n} {name}" for name, n in present.items())
            raise DemoError(
                f"the store already holds records of the demo's types ({listed}): the demo was "
                "probably loaded before; load it into an empty store, or force the load to add another "
                "copy (force=True; `deskbase demo --force`)")

    def _count(self, type_name: str, added: int) -> None:
        self.created[type_name] = self.created.get(type_name, 0) + added
        if self.progress:
            self.progress(type_name, self.created[type_name])

    # -- fixed records --

    def _line(self, shown: str, *path: Any) -> int:
        return self.positions[shown].locate(path).line

    def _fixed(self, shown: str, entries: list[Mapping[str, Any]]) -> None:
        def work(session) -> tuple[dict[str, tuple[str, int]], dict[str, int]]:
            rng = random.Random(shown)   # here, so that a retried transaction draws the same values
            keys: dict[str, tuple[str, int]] = {}
            created: dict[str, int] = {}
            candidates = _SessionCandidates(session)
            for index, entry in enumerate(entries):
                place = _Place(shown, self._line(shown, "records", index), f"records[{index}]")
                values = entry.get("values") or {}
                if not isinstance(values, dict):
                    raise place.error("`values` must be a map of field names to values")
                if "update" in entry:
                    record = self._target(session, entry["update"], keys, place)
                    typedef = self.definitions.type(record.type_name)
                    row = _Row(self, typedef, rng, candidates, place, {**self.keys, **keys}).values(values)
                    self._write(place, lambda: session.update(record, row))
                    continue
                typedef = self._typedef(entry["type"], place)
                key = entry.get("key")
                if key is not None:
                    place = _Place(place.file, place.line, f"{place.entry} ({typedef.name} {key})")
                    first = self.key_places.get(str(key))
                    if first is not None or str(key) in keys:
                        raise place.error(f"the key `{key}` is already used"
                                          + (f" at {first.file}:{first.line}" if first else " in this file"))
                row = _Row(self, typedef, rng, candidates, place, {**self.keys, **keys}).values(values)
                record = self._write(place, lambda: session.create(typedef.name, row))
                if key is not None:
                    keys[str(key)] = (typedef.name, record.id)
                created[typedef.name] = created.get(typedef.name, 0) + 1
            return keys, created

        keys, created = self.store.run(work, user=self.user, notify=self.notify, now=self.fixed_now)
        for index, entry in enumerate(entries):
            if entry.get("key") is not None:
                self.key_places[str(entry["key"])] = _Place(shown, self._line(shown, "records", index), f"records[{index}]")
        self.keys.update(keys)
        for type_name, added in created.items():
            self._count(type_name, added)

    def _target(self, session, target: Any, keys: Mapping[str, tuple[str, int]], place: _Place):
        key = str(target)
        known = {**self.keys, **keys}
        if key in known:
            type_name, record_id = known[key]
            return session.get(type_name, record_id)
        try:
            return session.find(key)
        except NotFound:
            raise place.error(f"`update: {key}` names no record created earlier (by key or number)"
                              + (f"; {hint_for(key, known)}" if hint_for(key, known) else "")) from None

    @staticmethod
    def _write(place: _Place, write: Callable[[], Any]) -> Any:
        try:
            return write()
        except (ValidationError, FieldError, QueryError, NotFound) as error:
            raise place.error(str(error)) from None

    # -- generated records --

    def _generate(self, shown: str, index: int, block: Mapping[str, Any]) -> None:
        place = _Place(shown, self._line(shown, "generate", index), f"generate[{index}]")
        typedef = self._typedef(block["type"], place)
        place = _Place(shown, place.line, f"generate[{index}] ({typedef.name})")
        count = block.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise place.error(f"`count` must be a whole number of records, not `{count}`")
        values = block.get("values") or {}
        variants = block.get("variants") or []
        if not isinstance(values, dict):
            raise place.error("`values` must be a map of field names to values")
        if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
            raise place.error("`variants` must be a list of maps of field names to values")
        rng = random.Random(block.get("seed", f"{shown}:{index}"))
        candidates = _StoreCandidates(self.store, self.user)
        rows = []
        for number in range(1, count + 1):
            row = _Row(self, typedef, rng, candidates, place, self.keys, number)
            if variants:
                row.values(rng.choice(variants))
            rows.append(row.values(values))
        done = self.created.get(typedef.name, 0)
        progress = self.progress                    # named, so the lambda sees it is not None
        report = (lambda n: progress(typedef.name, done + n)) if progress else None
        try:
            made = self.store.bulk_create(typedef.name, rows, user=self.user, batch=500, progress=report,
                                          notify=self.notify, now=self.fixed_now)
        except (ValidationError, FieldError, QueryError, NotFound) as error:
            raise place.error(f"a generated record was refused: {error}") from None
        self.created[typedef.name] = done + made


# -- where pick_ref finds its candidates ------------------------------------------------

class _SessionCandidates:
    """Candidates read in the loading transaction: fixed records see those created before them."""

    def __init__(self, session):
        self.session = session

    def __call__(self, type_name: str, where: Any) -> list[int]:
        page = self.session.query(type_name, where or None, "id", limit=None)
        return [record.id for record in page.records]


class _StoreCandidates:
    """Candidates among committed records, read once per distinct filter of a block."""

    def __init__(self, store: Any, user: str):
        self.store, self.user = store, user
        self.cache: dict[str, list[int]] = {}

    def __call__(self, type_name: str, where: Any) -> list[int]:
        cache_key = json.dumps([type_name, where], sort_keys=True, default=str)
        if cache_key not in self.cache:
            self.cache[cache_key] = self.store.read(
                lambda s: [r.id for r in s.query(type_name, where or None, "id", limit=None).records],
                user=self.user)
        return self.cache[cache_key]


# -- one record's values ----------------------------------------------------------------

class _Row:
    """The values of one record, generated field by field so later ones can use earlier ones."""

    def __init__(self, load: _DemoLoad, typedef: TypeDef, rng: random.Random, candidates: Callable,
                 place: _Place, keys: Mapping[str, tuple[str, int]], number: int = 1):
        self.load, self.typedef, self.rng = load, typedef, rng
        self.candidates, self.place, self.keys, self.number = candidates, place, keys, number
        self.row: dict[str, Any] = {}

    def values(self, specs: Mapping[str, Any]) -> dict[str, Any]:
        """Generate the fields of `specs` not generated yet; returns the non-empty values."""
        for name, spec in specs.items():
            if name in self.row:
                continue
            if name not in self.typedef.fields or self.typedef.fields[name].system:
                hint = hint_for(str(name), self.typedef.own_fields)
                raise self.place.error(f"`{name}` is not a field of {self.typedef.name}"
                                       + (f"; {hint}" if hint else ""))
            self.row[name] = self.value(spec, name)
        return {name: value for name, value in self.row.items() if value is not None and value != []}

    def error(self, field: str, message: str) -> DemoError:
        return self.place.error(f"{field}: {message}")

    def value(self, spec: Any, field: str) -> Any:
        if isinstance(spec, str) and spec.startswith("$record."):
            return self.earlier(spec[len("$record."):], field)
        if isinstance(spec, list):
            return [self.value(item, field) for item in spec]
        if not isinstance(spec, dict):
            return spec
        generator = next((name for name in GENERATORS if name in spec), None)
        if generator is None:
            name = next(iter(spec), "")
            raise self.error(field, _unknown("value generator", name, GENERATORS))
        for name in spec:
            if name not in GENERATORS[generator]:
                raise self.error(field, f"`{generator}` takes {', '.join(GENERATORS[generator])}, not `{name}`")
        return getattr(self, f"_{generator}")(spec, field)

    def earlier(self, name: str, field: str) -> Any:
        if name not in self.row:
            if name in self.typedef.fields:
                raise self.error(field, f"`$record.{name}` is used before `{name}` is generated; "
                                        f"list `{name}` before `{field}`")
            raise self.error(field, f"`$record.{name}`: " + _unknown("field", name, self.typedef.own_fields))
        return self.row[name]

    def _ref(self, spec, field):
        return self._key(spec["ref"], field)[1]

    def _key(self, key: Any, field: str) -> tuple[str, int]:
        try:
            return self.keys[str(key)]
        except KeyError:
            hint = hint_for(str(key), self.keys)
            raise self.error(field, f"no record was created with the key `{key}` before this one"
                             + (f"; {hint}" if hint else "")) from None

    def _how_many(self, spec, field) -> int | None:
        count = spec.get("count")
        if count is None:
            return None
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            return count
        if (isinstance(count, list) and len(count) == 2 and all(isinstance(c, int) for c in count)
                and 0 <= count[0] <= count[1]):
            return self.rng.randint(count[0], count[1])
        raise self.error(field, f"`count` is a number or [least, most], not `{count}`")

    def _choose(self, items: list, weights: list | None, how_many: int | None) -> Any:
        if how_many is None:
            return self.rng.choices(items, weights)[0] if items else None
        pool, pool_weights = list(items), list(weights) if weights else None
        chosen: list[Any] = []
        while pool and len(chosen) < how_many:
            index = self.rng.choices(range(len(pool)), pool_weights)[0]
            chosen.append(pool.pop(index))
            if pool_weights:
                pool_weights.pop(index)
        return chosen

    def _pick(self, spec, field):
        items, weights = spec["pick"], spec.get("weights")
        if not isinstance(items, list) or not items:
            raise self.error(field, "`pick` needs a list of values to pick from")
        if weights is not None and (not isinstance(weights, list) or len(weights) != len(items)
                                    or not all(isinstance(w, (int, float)) and w >= 0 for w in weights)):
            raise self.error(field, f"`weights` needs one number per value ({len(items)})")
        picked = self._choose(list(range(len(items))), weights, self._how_many(spec, field))
        if isinstance(picked, list):
            return [self.value(items[i], field) for i in picked]
        return self.value(items[picked], field)

    def _pick_ref(self, spec, field):
        type_name = spec["pick_ref"]
        self.load._typedef(type_name, self.place)
        where = self._resolve_filter(spec.get("where"), field)
        try:
            ids = self.candidates(type_name, where)
        except (QueryError, FieldError) as error:
            raise self.error(field, f"`where` of pick_ref: {error}") from None
        if spec.get("keys") is not None:
            wanted = []
            for key in spec["keys"]:
                key_type, record_id = self._key(key, field)
                if key_type != type_name:
                    raise self.error(field, f"the key `{key}` is a {key_type}, not a {type_name}")
                wanted.append(record_id)
            allowed = set(ids)
            ids = [i for i in wanted if i in allowed]
        return self._choose(ids, None, self._how_many(spec, field))

    def _resolve_filter(self, spec: Any, field: str) -> Any:
        if isinstance(spec, str) and spec.startswith("$record."):
            return self.earlier(spec[len("$record."):], field)
        if isinstance(spec, list):
            return [self._resolve_filter(item, field) for item in spec]
        if isinstance(spec, dict):
            if set(spec) == {"ref"}:
                return self._ref(spec, field)
            return {name: self._resolve_filter(value, field) for name, value in spec.items()}
        return spec

    def _chance(self, spec, field):
        probability = spec["chance"]
        if not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
            raise self.error(field, f"`chance` is a number from 0 to 1, not `{probability}`")
        if self.rng.random() < probability:
            return self.value(spec.get("value"), field)
        return self.value(spec.get("otherwise"), field)

    def _when(self, spec, field):
        condition = spec["when"]
        if not isinstance(condition, dict):
            raise self.error(field, "`when` is a map of earlier fields to a value or a list of values")
        holds = True
        for name, expected in self._resolve_filter(dict(condition), field).items():
            actual = self.earlier(name, field)
            options = expected if isinstance(expected, list) else [expected]
            holds = holds and actual in options
        return self.value(spec.get("then") if holds else spec.get("else"), field)

    def _format(self, spec, field):
        names = {**self.row, "n": self.number}

        def fill(match: re.Match) -> str:
            name, form = match.group(1), match.group(2) or ""
            if name not in names:
                raise self.error(field, f"`{{{name}}}` in format: only `n` and fields generated earlier")
            value = names[name]
            try:
                return format(value, form) if value is not None else ""
            except (ValueError, TypeError):
                raise self.error(field, f"`{{{name}:{form}}}` does not fit the value `{value}`") from None
        return _PLACEHOLDER.sub(fill, str(spec["format"]))

    def _between(self, spec, field):
        bounds = spec["between"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise self.error(field, "`between` takes a list of two values: [low, high]")
        kind = self._kind(field)
        try:
            if isinstance(kind, (DateKind, DateTimeKind)):
                return self._between_moments(kind, bounds, spec.get("step"))
            if isinstance(kind, DurationKind):
                low, high = (parse_duration(b) for b in bounds)
                step = parse_duration(spec.get("step") or "1m")
                # a timedelta, because a bare number given to a duration field means minutes
                return timedelta(seconds=self._between_numbers(low, high, step))
            if isinstance(kind, IntegerKind):
                return self._between_numbers(int(bounds[0]), int(bounds[1]), int(spec.get("step") or 1))
            if isinstance(kind, DecimalKind):
                unit = Decimal(1).scaleb(-kind.places)
                step = Decimal(str(spec.get("step") or unit))
                low, high = (Decimal(str(b)) for b in bounds)
                steps = int((high - low) / step)
                return (low + step * self.rng.randint(0, max(steps, 0))).quantize(unit)
        except (ValueError, ArithmeticError, FieldError) as error:
            raise self.error(field, f"`between`: {error}") from None
        raise self.error(field, f"`between` works for dates, times, durations and numbers; "
                                f"`{field}` is a {kind.name}")

    def _after(self, spec, field):
        """A moment some time after an earlier field's (`within` a duration, by `step`): a
        record finished a few hours or days after it began."""
        kind = self._kind(field)
        if not isinstance(kind, DateTimeKind):
            raise self.error(field, f"`after` gives a time; `{field}` is a {kind.name}")
        start = self.earlier(str(spec["after"]), field)
        if start is None:
            return None
        if not isinstance(start, datetime):
            raise self.error(field, f"`after`: `{spec['after']}` is not a time")
        try:
            most = parse_duration(spec.get("within") or "1d")
            step = max(parse_duration(spec.get("step") or "1m"), 1)
        except (ValueError, FieldError) as error:
            raise self.error(field, f"`after`: {error}") from None
        moment = start + timedelta(seconds=step * self.rng.randint(0, max(most // step, 0)))
        return min(moment, self.load.now)                    # never in the future

    def _at(self, spec, field):
        kind = self._kind(field)
        if not isinstance(kind, (DateKind, DateTimeKind)):
            raise self.error(field, f"`at` gives a date or time; `{field}` is a {kind.name}")
        try:
            moment = self._moment(spec["at"])
        except ValueError as error:
            raise self.error(field, f"`at`: {error}") from None
        return moment.astimezone(self.load.zone).date() if isinstance(kind, DateKind) else moment

    def _kind(self, field: str) -> Kind:
        kind = self.typedef.fields[field].kind
        return getattr(kind, "result", kind)

    def _between_numbers(self, low: int, high: int, step: int) -> int:
        if high < low:
            raise ValueError(f"the low bound {low} is above the high bound {high}")
        step = max(step, 1)
        return low + step * self.rng.randint(0, (high - low) // step)

    def _between_moments(self, kind: Kind, bounds: list, step: Any):
        low, high = (self._moment(b) for b in bounds)
        if high < low:
            raise ValueError(f"{bounds[0]} is after {bounds[1]}")
        if isinstance(kind, DateKind):
            low_day, high_day = low.astimezone(self.load.zone).date(), high.astimezone(self.load.zone).date()
            return low_day + timedelta(days=self.rng.randint(0, (high_day - low_day).days))
        seconds = int((high - low).total_seconds())
        step_seconds = parse_duration(step) if step else 60
        return low + timedelta(seconds=self._between_numbers(0, seconds, step_seconds))

    def _moment(self, bound: Any) -> datetime:
        """An aware datetime from `now`, `today`, an offset such as `-60d`, or a date or time."""
        zone = self.load.zone
        now = self.load.now
        if isinstance(bound, datetime):
            return bound if bound.tzinfo else bound.replace(tzinfo=zone)
        if isinstance(bound, date):
            return datetime.combine(bound, time(), zone)
        text = str(bound).strip().lower()
        base = now
        if text.startswith("today"):
            base = datetime.combine(now.astimezone(zone).date(), time(), zone)
            text = text[len("today"):].strip()
        elif text.startswith("now"):
            text = text[len("now"):].strip()
        elif not text or text[0] not in "+-":
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"`{bound}` is not now, today, an offset such as -60d, or a date") from None
            return moment if moment.tzinfo else moment.replace(tzinfo=zone)
        parts = _OFFSET.findall(text)
        if _OFFSET.sub("", text).strip():
            raise ValueError(f"`{bound}` is not now, today, an offset such as -60d, or a date")
        seconds = sum((1 if sign == "+" else -1) * int(amount) * _OFFSET_SECONDS[unit]
                      for sign, amount, unit in parts)
        return base + timedelta(seconds=seconds)
