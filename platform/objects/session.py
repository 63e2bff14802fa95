"""The one write path and the reads that go with it, inside one transaction
(docs/storage.md, "The write path").

create / update / delete: check → coerce and validate → compute → store → index →
history → effects. Nothing writes records any other way, so no change skips a check,
an index or the history. A refused change raises before anything is touched.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from BTrees.IIBTree import intersection
from BTrees.OOBTree import OOBTree

from .errors import DeskbaseError, FieldError, NotFound, QueryError, StaleEdit, ValidationError, hint_for
from .expressions import ExpressionError, evaluate
from .fields import (
    AttachmentsKind,
    ComputedKind,
    DecimalKind,
    DurationKind,
    RefKind,
    SequenceKind,
    Upload,
    UserKind,
    label_text,
)
from .indexes import as_set
from .kept_objects import kept_object
from .model import TypeDef
from .query import parse_sort, search
from .records import Attachment, Record, TypeContainer

if TYPE_CHECKING:
    from .store import Store

UTC = timezone.utc
SEQUENCES_KEY = "deskbase.sequences"     # (type, field, year or 0) → the last number given


@dataclass(frozen=True)
class Change:
    """What one write did, as the hooks of upper layers see it."""

    action: str                  # create | update | delete
    typedef: TypeDef
    record: Record
    old: Mapping[str, Any]       # values before (empty for create)
    new: Mapping[str, Any]       # values after (empty for delete)
    fields: tuple[str, ...]      # the fields whose value changed
    reason: str | None = None    # why, when the writer said (`transition take`), as in the history


@dataclass(frozen=True)
class Page:
    """One page of a query: the records shown and how many match in all."""

    total: int
    records: list[Record]
    offset: int
    limit: int


class Session:
    """Reads and writes of one user inside one transaction.

    `identity` is the signed-in person as the rules layer describes them (any object with
    `id`, `acting_for` and `as_context()`); None is the system, which reads and writes
    everything. `acting_for` is one login, or several (the people a deputy stands in for):
    see `_acting_for` for what the history then says. With an identity, queries are
    limited by `store.hooks.read_scope` and writes are checked by the hooks the access
    layer installs."""

    def __init__(self, store: "Store", connection, *, user: str, acting_for: str | tuple[str, ...] | None = None,
                 me: Mapping[str, Any] | None = None, now: datetime | None = None, identity: Any = None,
                 notify: bool = True):
        if identity is not None:
            if store.hooks.read_scope is None:
                # Unrestricted reads for a person would be a silent hole: refuse instead.
                raise DeskbaseError("this store has no access rules installed, so it cannot act for a person; "
                                    "open it with deskbase.rules.application.open_store")
            user, acting_for, me = identity.id, identity.acting_for, identity.as_context()
        self.identity = identity
        self.store = store
        self.definitions = store.definitions
        self.connection = connection
        self.user = user
        self.acting_for = acting_for
        self.me = dict(me or {"id": user})
        self.me.setdefault("id", user)
        self.me.setdefault("acting_for", acting_for)
        self.now = now.astimezone(UTC) if now is not None else datetime.now(UTC)
        self.today = self.now.astimezone(ZoneInfo(self.definitions.zone)).date()   # the day where people are
        self.root = connection.root()["deskbase"]
        # Whether the changes of this session tell people (notifications): demo data, whose
        # people and addresses are made up, is loaded with notify=False.
        self.notify = notify
        self._containers: dict[str, TypeContainer] = {}

    # -- on whose behalf -----------------------------------------------------------------

    @contextmanager
    def as_engine(self, *, system: bool = False) -> Iterator[None]:
        """Inside the block, writes carry the engine's authority rather than the person's:
        no identity, so no access check and no field limits (the caller has decided the
        change is due, such as a transition the person may fire). With `system`, the
        history also says the system made them (automatic transitions, jobs)."""
        saved = (self.identity, self.user, self.acting_for, self.me)
        self.identity = None
        if system:
            self.user, self.acting_for, self.me = "system", None, {"id": "system", "acting_for": None}
        try:
            yield
        finally:
            self.identity, self.user, self.acting_for, self.me = saved

    @contextmanager
    def reading_as(self, identity: Any) -> Iterator[None]:
        """Inside the block, reads are bounded by what `identity` may read (None: the
        system's, everything); who writes stays the same. A document made for a person
        shows only what that person may read."""
        if identity is not None and self.store.hooks.read_scope is None:
            raise DeskbaseError("this store has no access rules installed, so it cannot read as a person")
        saved = self.identity
        self.identity = identity
        try:
            yield
        finally:
            self.identity = saved

    # -- reads ---------------------------------------------------------------------------

    def container(self, type_name: str) -> TypeContainer:
        container = self._containers.get(type_name)
        if container is not None:
            return container
        try:
            container = self._containers[type_name] = self.root.containers[type_name]
            return container
        except KeyError:
            self.definitions.type(type_name)   # a clear message for an unknown type
            raise NotFound(f"the type `{type_name}` has no storage yet; run `deskbase migrate`") from None

    def get(self, type_name: str, record_id: int) -> Record:
        """The record of a type with this id, or NotFound."""
        record = self.container(type_name).records.get(record_id)
        if record is None:
            typedef = self.definitions.type(type_name)
            raise NotFound(f"there is no {typedef.title()} {typedef.number(record_id)}")
        return record

    def find(self, number: str) -> Record:
        """The record with this number (`T-000123`), whatever its type."""
        for typedef in self.definitions.types.values():
            record_id = typedef.parse_number(number)
            if record_id is not None and typedef.name in self.root.containers:
                record = self.root.containers[typedef.name].records.get(record_id)
                if record is not None:
                    return record
        raise NotFound(f"there is no record numbered `{number}`")

    def resolve(self, target: Any, type_name: str | None = None) -> Record:
        """A record from a Record, a number, or an id of `type_name`."""
        if isinstance(target, Record):
            return target
        if isinstance(target, int) and type_name:
            return self.get(type_name, target)
        if isinstance(target, str):
            if type_name and target.isdigit():
                return self.get(type_name, int(target))
            return self.find(target)
        raise NotFound(f"`{target}` does not name a record")

    def context(self, record_values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What filters and expressions may refer to: $me, $record, $now, $today."""
        return {"me": self.me, "record": record_values or {}, "now": self.now,
                "today": self.today, "lookup": self.lookup}

    def query(self, type_name: str, filter: Any = None, sort: Any = None, *, offset: int = 0,
              limit: int | None = 50, context: Mapping[str, Any] | None = None,
              record_type: str | None = None, scoped: bool = True) -> Page:
        """Records of a type matching a filter, sorted and paged, through the indexes.
        `record_type` is the type `$record` refers to in the filter (the `where` of a ref);
        `scoped=False` counts past the session's read scope, for values the engine derives."""
        typedef = self.definitions.type(type_name)
        scope = self.read_scope(typedef) if scoped else True   # derived values count every record
        if scope is False:
            return Page(0, [], offset, limit or 0)
        if scope is not True:   # the scope is part of the index query: pages and totals agree
            filter = {"all": [scope, filter]} if filter else scope
        compiled = self.store.compiled_filter(filter, type_name, record_type) if filter else None
        order = parse_sort(sort or (), typedef)
        container = self.container(type_name)
        total, ids = search(container.indexes, typedef, compiled, order, offset=offset,
                            limit=limit, context=context or self.context())
        return Page(total, [container.records[i] for i in ids], offset, limit or total)

    def count_by(self, type_name: str, field_name: str, filter: Any = None) -> list[tuple[Any, int]]:
        """(value, how many records) for each value of an indexed field among the records that
        match `filter` and the session's read scope, in the field's order; None stands for the
        records without a value. Counted from the field's index, one set intersection a value."""
        typedef = self.definitions.type(type_name)
        indexes = self.container(type_name).indexes
        index = indexes.for_field(typedef, field_name)
        if index is None:
            raise QueryError(f"`{field_name}` of `{type_name}` has no index to count by")
        readable, ids = self._matching_ids(typedef, filter)
        if not readable:
            return []
        total = len(ids) if ids is not None else indexes.count
        kind = typedef.fields[field_name].kind
        counts, counted = [], 0
        for key, holder in index.items():
            found = as_set(holder)
            size = len(found) if ids is None else len(intersection(found, ids))
            if size:
                value = kind.values[key] if getattr(kind, "values", None) and isinstance(key, int) \
                    and 0 <= key < len(kind.values) else key
                counts.append((value, size))
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
        indexes = self.container(type_name).indexes
        index, numbers = indexes.for_field(typedef, field_name), indexes.for_field(typedef, number_field)
        if index is None or numbers is None or not hasattr(numbers, "slot"):
            raise QueryError(f"`{field_name}` and `{number_field}` of `{type_name}` need an index to average by")
        readable, ids = self._matching_ids(typedef, filter)
        if not readable:
            return []
        kind = typedef.fields[field_name].kind
        found = []
        for key, holder in index.items():
            members = as_set(holder) if ids is None else intersection(as_set(holder), ids)
            values = [number for number in (indexes.key_of(numbers, record_id) for record_id in members)
                      if number is not None]
            if values:
                value = kind.values[key] if getattr(kind, "values", None) and isinstance(key, int) \
                    and 0 <= key < len(kind.values) else key
                found.append((value, sum(values) / len(values), len(values)))
        return found

    def _matching_ids(self, typedef: TypeDef, filter: Any) -> tuple[bool, Any]:
        """Whether the person may read any record of the type, and the ids matching `filter`
        within their read scope through the indexes (None: every record)."""
        scope = self.read_scope(typedef)
        if scope is False:
            return False, None
        if scope is not True:
            filter = {"all": [scope, filter]} if filter else scope
        if not filter:
            return True, None
        indexes = self.container(typedef.name).indexes
        return True, self.store.compiled_filter(filter, typedef.name).ids(indexes, typedef, self.context())

    def count(self, type_name: str, filter: Any = None, context: Mapping[str, Any] | None = None) -> int:
        """How many records of a type match a filter (and the session's read scope)."""
        if not filter and self.read_scope(self.definitions.type(type_name)) is True:
            return self.container(type_name).indexes.count
        return self.query(type_name, filter, limit=0, context=context).total

    def read_scope(self, typedef: TypeDef) -> Any:
        """The filter this session may read of a type: True for every record, False for none."""
        if self.identity is None:
            return True
        return self.store.hooks.read_scope(self, typedef)

    def lookup(self, type_name: str, text: str) -> int:
        """The id of a record of `type_name` from its number, or from its exact title."""
        typedef = self.definitions.type(type_name)
        records = self.container(type_name).records
        record_id = typedef.parse_number(text)
        if record_id is not None and record_id in records:
            return record_id
        if typedef.title_field and typedef.index_for(typedef.title_field):
            page = self.query(type_name, {typedef.title_field: text}, limit=2)
            if page.total == 1:
                return page.records[0].id
            if page.total > 1:
                raise FieldError(f"several {typedef.title()} records are named `{text}`; give the number")
        raise FieldError(f"there is no {typedef.title()} `{text}`")

    # -- the write path ------------------------------------------------------------------

    def create(self, type_name: str, values: Mapping[str, Any]) -> Record:
        """Create a record of a type from form or JSON values; ValidationError lists every problem."""
        typedef = self.definitions.type(type_name)
        container = self.container(type_name)
        values = self._copied(typedef, values, None)
        self._check("create", typedef, None, values)
        new, errors = self._coerce(typedef, values, creating=True)
        for name, field in typedef.fields.items():  # the only choice of a ref, before what reads it
            if field.default == "$only_choice" and name not in values:
                new[name] = self._only_choice(typedef, field.kind, new)
        seen = {**values, **{name: value for name, value in new.items() if name not in values}}
        for provide in self.store.hooks.defaults:   # e.g. a workflow's initial state, a dispatched group
            for name, value in provide(self, typedef, seen).items():
                if new.get(name) in (None, ()) and name not in errors:
                    new[name] = typedef.fields[name].kind.coerce(value, self.lookup)
        self._apply_defaults(typedef, new, values)
        self._validate(typedef, new, errors, changed=None)
        record_id = container.sequence.next()
        new.update(id=record_id, version=1, created_at=self.now, created_by=self.user,
                   modified_at=self.now, modified_by=self.user)
        self._store_attachments(typedef, {}, new)
        self._compute(typedef, new)
        self._derive(typedef, None, {}, new)
        self._number(typedef, {}, new)
        record = Record(type_name, typedef.number(record_id), new)
        container.records[record_id] = record
        container.indexes.add(typedef, record_id, new)
        changed = tuple(name for name, value in new.items()
                        if name in typedef.fields and not typedef.fields[name].system and value not in (None, ()))
        self._history(typedef, record, "created", {}, new, changed)
        self._after(Change("create", typedef, record, {}, new, changed))
        return record

    def update(self, target: Any, changes: Mapping[str, Any], *, version: int | None = None,
               type_name: str | None = None, reason: str | None = None) -> Record:
        """Change some fields of a record. With `version`, an edit made from an older version
        is refused (StaleEdit) instead of overwriting someone else's change; `reason` (such as
        `transition take`) is kept in the history entry."""
        record = self.resolve(target, type_name)
        typedef = self.definitions.type(record.type_name)
        if version is not None and int(version) != record.version:
            last = record.history.entries[-1] if record.history.entries else {}
            at = last.get("at")
            raise StaleEdit(record.number, int(version), record.version, last.get("by"),
                            at.strftime("%Y-%m-%d %H:%M UTC") if isinstance(at, datetime) else None)
        changes = self._copied(typedef, changes, record)
        self._check("update", typedef, record, changes)
        coerced, errors = self._coerce(typedef, changes, creating=False)
        old = record.values
        new = dict(old)
        new.update(coerced)
        for name, kind in ((n, f.kind) for n, f in typedef.fields.items() if n in coerced):
            if isinstance(kind, AttachmentsKind):   # uploads add to what is there; nothing is dropped
                new[name] = tuple(old.get(name) or ()) + tuple(
                    item for item in coerced[name] if item not in (old.get(name) or ()))
        changed = tuple(name for name in coerced if new.get(name) != old.get(name))
        self._validate(typedef, new, errors, changed=set(changed))
        if not changed:
            return record
        self._store_attachments(typedef, old, new)
        self._compute(typedef, new)
        derived = self._derive(typedef, record, old, new) + self._number(typedef, old, new)
        changed += tuple(name for name in derived if name not in changed and new.get(name) != old.get(name))
        new.update(version=record.version + 1, modified_at=self.now, modified_by=self.user)
        record.replace_values(new)
        self.container(record.type_name).indexes.update(typedef, record.id, old, new)
        self._history(typedef, record, "updated", old, new, changed, reason)
        self._after(Change("update", typedef, record, old, new, changed, reason))
        return record

    def delete(self, target: Any, *, version: int | None = None, type_name: str | None = None) -> None:
        """Remove a record from lists and queries; it is kept, with its history, in the type's trash."""
        record = self.resolve(target, type_name)
        typedef = self.definitions.type(record.type_name)
        if version is not None and int(version) != record.version:
            raise StaleEdit(record.number, int(version), record.version, None, None)
        self._check("delete", typedef, record, {})
        numbered = [n for n, f in typedef.fields.items() if isinstance(f.kind, SequenceKind) and record.get(n)]
        if numbered:
            raise ValidationError(typedef.name, {numbered[0]: f"{record.get(numbered[0])} was given and numbers "
                                                 "must not go missing: this record cannot be deleted"},
                                  typedef.title())
        container = self.container(record.type_name)
        old = record.values
        container.indexes.remove(typedef, record.id, old)
        del container.records[record.id]
        container.trash[record.id] = record
        self._history(typedef, record, "deleted", old, {}, ())
        self._after(Change("delete", typedef, record, old, {}, ()))

    def note(self, record: Record, text: str) -> None:
        """Write in a record's history something that happened to it without changing a
        field (a deadline passed); the record itself is not touched."""
        self._history(self.definitions.type(record.type_name), record, "noted", record.values, {}, (), text)

    # -- steps of the write path ---------------------------------------------------------

    def _check(self, action: str, typedef: TypeDef, record: Record | None, values: Mapping[str, Any]) -> None:
        for check in self.store.hooks.checks:
            check(self, action, typedef, record, values)

    def _copied(self, typedef: TypeDef, values: Mapping[str, Any], record: Record | None) -> Mapping[str, Any]:
        """`values` with the fields copied from the records refs point at (`copied_from`)
        set from them: on create, and on update when the ref changes; in the order of the
        fields, so a copy may follow a ref copied before it. Whatever was given for such a
        field is replaced, so rules judge the value the record will hold."""
        copies = typedef.copies
        if not copies:
            return values
        result = dict(values)
        for name, paths in copies:
            if record is not None and not any(ref in result for ref, _ in paths):
                result.pop(name, None)           # its refs stay: so does the copy
                continue
            copied = None
            for ref, source in paths:
                raw = result.get(ref) if ref in result else (record.get(ref) if record is not None else None)
                try:                             # a ref copied just before counts (a copy of a copy)
                    target_id = typedef.fields[ref].kind.coerce(raw, self.lookup) if raw not in (None, "") else None
                except (FieldError, TypeError, ValueError):
                    continue                     # the ref's own problem is reported by validation
                kind = typedef.fields[ref].kind
                target = self.container(kind.to).records.get(target_id) if target_id is not None else None
                copied = target.get(source) if target is not None else None
                if copied not in (None, (), ""):
                    break
            result[name] = copied
        return result

    def _number(self, typedef: TypeDef, old: Mapping[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
        """Give the sequence fields whose moment has come their number; their names. The
        counters live in one tree keyed by (type, field, year): two transactions giving the
        same counter a number conflict and one is retried, so numbers are unique and gapless."""
        given = []
        for name, field in typedef.fields.items():
            kind = field.kind
            if not isinstance(kind, SequenceKind) or old.get(name) or new.get(name):
                continue
            if kind.assigned_when is not None and not self.store.compiled_filter(
                    kind.assigned_when, typedef.name).matches(new, typedef, self.context(new)):
                continue
            year = self.now.astimezone(ZoneInfo(self.definitions.zone)).year
            counters = kept_object(self.connection, SEQUENCES_KEY, OOBTree)
            key = (typedef.name, name, year if kind.per == "year" else 0)
            seq = counters.get(key, 0) + 1
            counters[key] = seq
            new[name] = kind.render(seq, year)
            given.append(name)
        return tuple(given)

    def _derive(self, typedef: TypeDef, record: Record | None, old: Mapping[str, Any],
                new: dict[str, Any]) -> tuple[str, ...]:
        """Let the hooks add the values they keep (a deadline) to the change; their names."""
        derived: list[str] = []
        for derive in self.store.hooks.derive:
            for name, value in derive(self, typedef, record, old, new).items():
                new[name] = value
                derived.append(name)
        return tuple(derived)

    def _after(self, change: Change) -> None:
        self._refresh_aggregates(change)
        self._refresh_copies(change)
        for effect in self.store.hooks.effects:
            effect(self, change)

    def _refresh_copies(self, change: Change, depth: int = 0) -> None:
        """Fields of other records copied from this one follow its change — a record moved
        to another organization takes the organization of its entries along, so nobody keeps
        reading them through the old one. A derived value: written with a history entry that
        says where it came from, without a new version (nobody's open edit becomes stale)."""
        if change.action != "update" or depth > 4 or not change.fields:
            return
        for owner, ref in self.store.copies_from(change.typedef.name):
            reads = {source for _, paths in owner.copies for path_ref, source in paths if path_ref == ref}
            if not reads & set(change.fields):
                continue
            container = self.container(owner.name)
            for dependent in self.query(owner.name, {ref: change.record.id}, limit=None, scoped=False).records:
                old = dependent.values
                new = dict(old)
                new.update({name: value for name, value in self._copied(owner, {ref: old.get(ref)}, dependent).items()
                            if name != ref})
                self._compute(owner, new)
                changed = tuple(name for name in new if new.get(name) != old.get(name))
                if not changed:
                    continue
                dependent.replace_values(new)
                container.indexes.update(owner, dependent.id, old, new)
                self._history(owner, dependent, "updated", old, new, changed, f"copied from {change.record.number}")
                followed = Change("update", owner, dependent, old, new, changed)
                self._refresh_aggregates(followed)
                self._refresh_copies(followed, depth + 1)

    def _coerce(self, typedef: TypeDef, values: Mapping[str, Any], *, creating: bool):
        coerced: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, raw in values.items():
            field = typedef.fields.get(name)
            if field is None:
                hint = hint_for(name, typedef.own_fields)
                errors[name] = f"is not a field of {typedef.title()}" + (f"; {hint}" if hint else "")
            elif field.system or not field.kind.writable:
                errors[name] = "is kept by the engine and cannot be set"
            else:
                try:
                    coerced[name] = field.kind.coerce(raw, self.lookup)
                except FieldError as error:
                    errors[name] = str(error)
        return coerced, errors

    def _apply_defaults(self, typedef: TypeDef, new: dict[str, Any], given: Mapping[str, Any]) -> None:
        for name, field in typedef.fields.items():
            if field.system or name in new or name in given:
                continue
            default = field.default
            if default is None:
                new[name] = field.kind.empty()
                continue
            if default == "$now":
                default = self.now
            elif default == "$today":
                default = self.today
            elif default == "$me":
                default = self.user
            new[name] = field.kind.coerce(default, self.lookup)

    def _only_choice(self, typedef: TypeDef, kind: RefKind, new: Mapping[str, Any]) -> int | None:
        """The one record a ref's `where` offers for these values, or None when there are
        none or several (a person then chooses)."""
        if kind.where is None:
            return None
        page = self.query(kind.to, kind.where, limit=2, context=self.context(new), record_type=typedef.name)
        return page.records[0].id if page.total == 1 else None

    def _validate(self, typedef: TypeDef, new: dict[str, Any], errors: dict[str, str],
                  changed: set[str] | None) -> None:
        for name, field in typedef.fields.items():
            if field.system or name in errors:
                continue
            value = new.get(name)
            if field.required and value in (None, (), ""):
                errors[name] = "is required"
            elif field.required_when is not None and value in (None, (), "") and self._asks(typedef, field, new,
                                                                                           changed):
                errors[name] = "is required here"
            elif isinstance(field.kind, RefKind) and value not in (None, ()) and (
                    changed is None or name in changed or self._where_reads(typedef, field.kind, changed)):
                problem = self._check_reference(typedef, name, field.kind, value, new)
                if problem:
                    errors[name] = problem
        for constraint in typedef.constraints:
            self._check_overlap(typedef, constraint["no_overlap"], new, errors, changed)
        if errors:
            raise ValidationError(typedef.name, errors, typedef.title())

    def _check_overlap(self, typedef: TypeDef, spec: Mapping[str, Any], new: Mapping[str, Any],
                       errors: dict[str, str], changed: set[str] | None) -> None:
        """`no_overlap`: refuse a record whose period [during] meets the period of a record of
        `type` that matches it (`match`: their field → ours) and `where`. Their empty end is
        open; periods that only touch do not overlap. Checked on creation and when one of the
        fields it reads changes, over every record (not only those the person may read)."""
        ours = tuple(spec["match"].values()) + tuple(spec["during"])
        if changed is not None and not set(ours) & changed:
            return
        start, end = (new.get(name) for name in spec["during"])
        if start is None or end is None or any(new.get(name) in (None, ()) for name in spec["match"].values()):
            return
        their_start, their_end = spec["period"]
        our_start, our_end = spec["during"]
        condition = [{theirs: f"$record.{mine}"} for theirs, mine in spec["match"].items()]
        condition += [{their_start: {"lt": f"$record.{our_end}"}},
                      {"any": [{their_end: None}, {their_end: {"gt": f"$record.{our_start}"}}]}]
        if spec.get("where"):
            condition.append(spec["where"])
        page = self.query(spec["type"], {"all": condition}, their_start, limit=5, scoped=False,
                          context=self.context(new), record_type=typedef.name)
        other = self.definitions.type(spec["type"])
        clash = next((record for record in page.records
                      if not (other.name == typedef.name and record.id == new.get("id"))), None)
        if clash is None:
            return
        zone = ZoneInfo(self.definitions.zone)

        def moment(value: Any) -> str:
            if isinstance(value, datetime):
                return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            return "…" if value is None else str(value)
        words = {"number": clash.number, "from": moment(clash.get(their_start)), "until": moment(clash.get(their_end)),
                 "value": ", ".join(str(new.get(mine)) for mine in spec["match"].values()),
                 "type": other.title()}
        template = label_text(spec.get("message"), getattr(self.identity, "language", None) or "en", "") \
            or "{value}: {type} {number} from {from} to {until} overlaps this period"
        try:
            message = template.format(**words)
        except (KeyError, IndexError, ValueError):
            message = template
        errors.setdefault(next(iter(spec["match"].values())), message)

    def _asks(self, typedef: TypeDef, field, new: Mapping[str, Any], changed: set[str] | None) -> bool:
        """Whether a field's `required_when` holds for these values. On an update it is asked
        only when the field or one its condition reads changes, so a record made before the
        rule can still be edited otherwise."""
        condition = self.store.compiled_filter(field.required_when, typedef.name)
        if changed is not None and not ({field.name} | set(condition.fields)) & changed:
            return False
        return condition.matches(new, typedef, self.context(new))

    def _where_reads(self, typedef: TypeDef, kind: RefKind, changed: set[str]) -> bool:
        """Whether a ref's `where` reads one of the changed fields through $record."""
        if not kind.where:
            return False
        return bool(self.store.compiled_filter(kind.where, kind.to, typedef.name).record_fields & changed)

    def _check_reference(self, typedef: TypeDef, name: str, kind: RefKind, value: Any, new: Mapping[str, Any]) -> str | None:
        target_type = self.definitions.type(kind.to)
        records = self.container(kind.to).records
        ids = value if isinstance(value, tuple) else (value,)
        where = self.store.compiled_filter(kind.where, kind.to, typedef.name) if kind.where else None
        context = self.context(new) if where else None
        # Of a type the person reads in part, what they may not read does not exist for them
        # (a type closed to them is named by id only, as their own organization is).
        scope = self.read_scope(target_type)
        readable = None if isinstance(scope, bool) else self.store.compiled_filter(scope, kind.to)
        for record_id in ids:
            target = records.get(record_id)
            if target is None or (readable is not None and not readable.matches(
                    target.values, target_type, self.context(target.values))):
                return f"there is no {target_type.title()} {target_type.number(record_id)}"
            if where is not None and not where.matches(target.values, target_type, context):
                shown = target.get(target_type.title_field) if target_type.title_field else None
                return (f"{target.number}{f' ({shown})' if shown else ''} cannot be chosen here: "
                        f"it does not fit the other fields of this {typedef.title()}")
        return None

    def _store_attachments(self, typedef: TypeDef, old: Mapping[str, Any], new: dict[str, Any]) -> None:
        for name, field in typedef.fields.items():
            if isinstance(field.kind, AttachmentsKind) and new.get(name):
                new[name] = tuple(
                    Attachment(uuid.uuid4().hex, item.filename, item.content_type, item.content, self.now, self.user)
                    if isinstance(item, Upload) else item
                    for item in new[name])

    def _compute(self, typedef: TypeDef, new: dict[str, Any], only: set[str] | None = None) -> None:
        for name, field in typedef.fields.items():
            kind = field.kind
            if not isinstance(kind, ComputedKind) or (only is not None and name not in only):
                continue
            try:
                if kind.expression:
                    raw = evaluate(kind.expression, {"record": new, "now": self.now, "today": self.today})
                else:
                    raw = self._aggregate(kind.aggregate, new.get("id"))
                new[name] = _computed_value(kind.result, raw)
            except (ExpressionError, FieldError) as error:
                raise ValidationError(typedef.name, {name: str(error)}, typedef.title()) from None

    def _aggregate(self, spec: Mapping[str, Any], record_id: int | None) -> Any:
        function = spec.get("function", "sum")
        if record_id is None:
            return 0 if function in ("sum", "count") else None
        source = self.definitions.type(spec["of"])
        filter_spec: dict[str, Any] = {spec["via"]: record_id}
        if spec.get("where"):
            filter_spec = {"all": [filter_spec, spec["where"]]}
        if function == "count":
            return self.query(source.name, filter_spec, limit=0, scoped=False).total
        page = self.query(source.name, filter_spec, limit=None, scoped=False)
        values = [r.get(spec["field"]) for r in page.records if r.get(spec["field"]) is not None]
        if function == "sum":
            return sum(values) if values else 0
        if not values:
            return None
        return min(values) if function == "min" else max(values)

    def _refresh_aggregates(self, change: Change) -> None:
        """Bring up to date the aggregates of the records that `change` counts in. Counts and
        sums move by the change's own contribution, so a write costs the same however many
        related records exist; minimum and maximum are computed again."""
        for owner, name, spec in self.store.aggregates_over(change.typedef.name):
            via, function = spec["via"], spec.get("function", "sum")
            records = self.container(owner.name).records
            if function in ("count", "sum"):
                deltas: dict[int, Any] = {}
                for values, sign in ((change.old, -1), (change.new, 1)):
                    for target_id in _targets(values.get(via) if values else None):   # a refs field: each
                        share = self._contribution(change.typedef, spec, values)
                        deltas[target_id] = deltas.get(target_id, 0) + sign * share
                updates = {target_id: delta for target_id, delta in deltas.items() if delta}
            else:
                updates = {t: None for t in set(_targets(change.old.get(via))) | set(_targets(change.new.get(via)))}
            for target_id, delta in updates.items():
                target = records.get(target_id)
                if target is None:
                    continue
                values = dict(target.values)
                if delta is None:
                    self._compute(owner, values, only={name})
                else:
                    values[name] = _computed_value(owner.fields[name].kind.result, (values.get(name) or 0) + delta)
                self._compute(owner, values, only=self.store.expressions_of(owner))   # they may read the aggregate
                if values[name] != target.values.get(name):
                    # a derived value: no new version, so nobody's open edit becomes stale
                    old = target.values
                    target.replace_values(values)
                    self.container(owner.name).indexes.update(owner, target.id, old, values)

    def _contribution(self, typedef: TypeDef, spec: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
        if spec.get("where"):
            where = self.store.compiled_filter(spec["where"], typedef.name)
            if not where.matches(values, typedef, self.context(values)):
                return 0
        if spec.get("function") == "count":
            return 1
        return values.get(spec["field"]) or 0

    def _history(self, typedef: TypeDef, record: Record, action: str, old: Mapping[str, Any],
                 new: Mapping[str, Any], changed: tuple[str, ...], reason: str | None = None) -> None:
        fields = typedef.fields
        entry = {
            "at": self.now, "by": self.user, "acting_for": self._acting_for(typedef, old, new), "action": action,
            "version": new.get("version", old.get("version")),
            "changes": {name: (_json(fields, name, old.get(name)), _json(fields, name, new.get(name)))
                        for name in changed},
        }
        if reason:
            entry["reason"] = reason
        record.history.append(entry)

    def _acting_for(self, typedef: TypeDef, old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
        """Whom a change was made for, as its history entry says. One login is said of every
        change; several (a deputy standing in for people away) are narrowed to those a user
        field of the record names before or after the change, so Bob editing Alice's record
        writes "bob for alice" while his own work stays his alone."""
        acting_for = self.acting_for
        if not acting_for or isinstance(acting_for, str):
            return acting_for or None
        named = {values.get(name) for values in (old, new)
                 for name, field in typedef.fields.items() if isinstance(field.kind, UserKind)}
        return ", ".join(login for login in acting_for if login in named) or None


def _targets(value: Any) -> tuple:
    """The ids a ref (one) or refs (several) field holds."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _computed_value(kind, raw: Any) -> Any:
    """A computed result in its kind: numbers are rounded, not refused; durations are seconds."""
    if raw is None:
        return kind.empty()
    if isinstance(kind, DurationKind) and isinstance(raw, (int, float, Decimal)) and not isinstance(raw, bool):
        return int(round(raw))
    if isinstance(kind, DecimalKind) and isinstance(raw, (int, float, Decimal)) and not isinstance(raw, bool):
        return Decimal(str(raw)).quantize(Decimal(1).scaleb(-kind.places), ROUND_HALF_UP)
    return kind.coerce(raw)


def _json(fields, name: str, value: Any) -> Any:
    field = fields.get(name)
    if field is None or value is None:
        return value
    try:
        return field.kind.to_json(value)
    except (AttributeError, TypeError):
        return str(value)
