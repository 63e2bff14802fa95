"""The one write path: create / update / delete go through check → coerce and validate →
compute → store → index → history → effects, in the session's transaction. Nothing writes
records any other way, so no change skips a check, an index or the history; a refused change
raises before anything is touched."""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field as _field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from .errors import FieldError, StaleEdit, ValidationError, hint_for
from .fields import AttachmentsKind, RefKind, SequenceKind, Upload, UserKind, UsersKind, label_text
from .model import TypeDef
from .records import Attachment, Record
from .session_part import SessionPart

if TYPE_CHECKING:
    # what a part is at run time: the hooks are given the whole session
    from .session import Session

UTC = timezone.utc


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
    # What the writer was given with the change and is not stored (a transition's inputs).
    details: Mapping[str, Any] = _field(default_factory=dict)


class WritePath(SessionPart):
    """The writes of a `Session` (a part of it: what it runs is the store's write hooks)."""

    def create(self, type_name: str, values: Mapping[str, Any]) -> Record:
        """Create a record of a type from form or JSON values; ValidationError lists every problem."""
        typedef = self.definitions.type(type_name)
        container = self.container(type_name)
        values = self._copied(typedef, values, None)
        self._check("create", typedef, None, values)
        new, errors = self._coerce(typedef, values, creating=True)
        for name, field in typedef.fields.items():  # the only choice of a ref, before what reads it
            if field.default == "$only_choice" and name not in values:
                assert isinstance(field.kind, RefKind)    # $only_choice is a ref's default (DEFAULT_WORDS)
                new[name] = self._only_choice(typedef, field.kind, new)
        seen = {**values, **{name: value for name, value in new.items() if name not in values}}
        for provide in self.store.hooks.defaults:   # e.g. a workflow's initial state, a dispatched group
            for name, value in provide(cast("Session", self), typedef, seen).items():
                if new.get(name) in (None, ()) and name not in errors:
                    new[name] = typedef.fields[name].kind.coerce(value, self.lookup)
        self._apply_defaults(typedef, new, values)
        self._validate(typedef, new, errors, changed=None)
        record_id = self._record_number(type_name, container)
        new.update(id=record_id, version=1, created_at=self.now, created_by=self.user,
                   modified_at=self.now, modified_by=self.user)
        self._store_attachments(typedef, {}, new)
        self.compute(typedef, new, created=True)
        self._derive(typedef, None, {}, new)
        self._number(typedef, {}, new)
        record = Record(type_name, typedef.number(record_id), new)
        container.records[record_id] = record
        if self.deferrals_left > 0:   # filed after the commit by the store's indexer (`indexer.py`)
            self.deferrals_left -= 1
            container.indexes.wait(typedef, record_id)
            self._deferred(type_name, record_id)
        else:
            container.indexes.add(typedef, record_id, new)
        changed = tuple(name for name, value in new.items()
                        if name in typedef.fields and not typedef.fields[name].system and value not in (None, ()))
        self._history(typedef, record, "created", {}, new, changed)
        self._after(Change("create", typedef, record, {}, new, changed))
        return record

    def _deferred(self, type_name: str, record_id: int) -> None:
        """Hand the record to the store's indexer once this transaction has committed."""
        if not self._waiting:
            def hand_over(committed: bool) -> None:
                if committed:
                    self.store.indexer.soon(self._waiting)
            self.connection.transaction_manager.get().addAfterCommitHook(hand_over)
        self._waiting.setdefault(type_name, []).append(record_id)

    def _record_number(self, type_name: str, container: Any) -> int:
        """The next number of a type's records: unique across every transaction and process
        without the creating transactions conflicting on the counter (`numbering.py`)."""
        given, last = self._numbers.get(type_name, (1, 0))
        if given > last:
            count = max(1, self.numbers_ahead)
            given = self.store.numbers.take(container.sequence, count)
            last = given + count - 1
        self._numbers[type_name] = (given + 1, last)
        return given

    def update(self, target: Any, changes: Mapping[str, Any], *, version: int | None = None,
               type_name: str | None = None, reason: str | None = None,
               details: Mapping[str, Any] | None = None) -> Record:
        """Change some fields of a record. With `version`, an edit made from an older version
        is refused (StaleEdit) instead of overwriting someone else's change; `reason` (such as
        `transition take`) is kept in the history entry; `details` (a transition's inputs) are
        handed to the effects with the change, not stored."""
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
        self.compute(typedef, new)
        derived = self._derive(typedef, record, old, new) + self._number(typedef, old, new)
        changed += tuple(name for name in derived if name not in changed and new.get(name) != old.get(name))
        new.update(version=record.version + 1, modified_at=self.now, modified_by=self.user)
        record.replace_values(new)
        self.container(record.type_name).indexes.update(typedef, record.id, old, new)
        self._history(typedef, record, "updated", old, new, changed, reason)
        self._after(Change("update", typedef, record, old, new, changed, reason, dict(details or {})))
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

    def _check(self, action: str, typedef: TypeDef, record: Record | None, values: Mapping[str, Any]) -> None:
        for check in self.store.hooks.checks:
            check(cast("Session", self), action, typedef, record, values)

    def _after(self, change: Change) -> None:
        self._refresh_aggregates(change)
        self._refresh_copies(change)
        for effect in self.store.hooks.effects:
            effect(cast("Session", self), change)

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
            elif default == "$me.person":
                default = (self.me or {}).get("person")
                if default is None:
                    new[name] = field.kind.empty()
                    continue
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
            if "no_overlap" in constraint:
                self._check_overlap(typedef, constraint["no_overlap"], new, errors, changed)
            else:
                self._check_order(typedef, constraint["ordered"], new, errors)
        if errors:
            raise ValidationError(typedef.name, errors, typedef.title())

    def _check_order(self, typedef: TypeDef, spec: Mapping[str, Any], new: Mapping[str, Any],
                     errors: dict[str, str]) -> None:
        """`ordered`: the second field, when both are set, is not before the first."""
        first, then = spec["fields"]
        if new.get(first) is not None and new.get(then) is not None and new[then] < new[first]:
            language = getattr(self.identity, "language", None) or "en"
            errors.setdefault(then, label_text(spec.get("message"), language, "")
                              or f"is before {typedef.fields[first].title(language)}")

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
        condition: list[dict[str, Any]] = [{theirs: f"$record.{mine}"} for theirs, mine in spec["match"].items()]
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
        if not acting_for:
            return None
        if isinstance(acting_for, str):
            return acting_for
        named = {login for values in (old, new) for name, field in typedef.fields.items()
                 if isinstance(field.kind, (UserKind, UsersKind))
                 for login in ((values.get(name),) if isinstance(field.kind, UserKind) else values.get(name) or ())}
        return ", ".join(login for login in acting_for if login in named) or None


def _json(fields, name: str, value: Any) -> Any:
    field = fields.get(name)
    if field is None or value is None:
        return value
    try:
        return field.kind.to_json(value)
    except (AttributeError, TypeError):
        return str(value)
