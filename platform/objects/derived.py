"""Values the engine works out on the write path, never typed by a person: fields copied
from the records refs point at, computed fields and aggregates over other records, sequence
numbers, and what the write hooks derive (a deadline). Copies and aggregates of other
records follow each change in the same transaction."""
from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from BTrees.OOBTree import OOBTree

from .errors import FieldError, ValidationError
from .expressions import ExpressionError, evaluate
from .fields import ComputedKind, DecimalKind, DurationKind, RefKind, SequenceKind
from .kept_objects import kept_object
from .model import TypeDef
from .records import Record
from .session_part import SessionPart
from .write_path import Change

if TYPE_CHECKING:
    # what a part is at run time: the hooks are given the whole session
    from .session import Session

SEQUENCES_KEY = "deskbase.sequences"     # (type, field, year or 0) → the last number given


class DerivedValues(SessionPart):
    """The derived values of a `Session`'s writes (a part of it)."""

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
                assert isinstance(kind, RefKind)         # a copy goes through a ref (check_copy)
                target = self.container(kind.to).records.get(target_id) if target_id is not None else None
                copied = target.get(source) if target is not None else None
                if copied not in (None, (), ""):
                    break
            result[name] = copied
        return result

    def compute(self, typedef: TypeDef, new: dict[str, Any], only: set[str] | None = None,
                created: bool = False) -> None:
        """Work out the computed fields of a type (those named in `only`) into `new`. A record
        being `created` has nothing counted in its aggregates yet: its id was never given
        before (numbers are not reused, not even after a deletion), so no record names it."""
        for name, field in typedef.fields.items():
            kind = field.kind
            if not isinstance(kind, ComputedKind) or (only is not None and name not in only):
                continue
            try:
                if kind.expression:
                    raw = evaluate(kind.expression, {"record": new, "now": self.now, "today": self.today})
                else:
                    assert kind.aggregate is not None      # a computed field has an expression or an aggregate
                    raw = self._aggregate(kind.aggregate, None if created else new.get("id"))
                new[name] = _computed_value(kind.result, raw)
            except (ExpressionError, FieldError) as error:
                raise ValidationError(typedef.name, {name: str(error)}, typedef.title()) from None

    def _aggregate(self, spec: Mapping[str, Any], record_id: int | None) -> Any:
        function = spec.get("function", "sum")
        if record_id is None:
            return 0 if function in ("sum", "count") else None
        source = self.definitions.type(spec["of"])
        filter_spec: Any = self.store.aggregate_filter(spec)
        context: dict[str, Any] | None = self.context({spec["via"]: record_id})
        if filter_spec is None:      # its `where` reads $record itself: the id is written in
            filter_spec, context = {spec["via"]: record_id}, None
            if spec.get("where"):
                filter_spec = {"all": [filter_spec, spec["where"]]}
        if function == "count":
            return self.query(source.name, filter_spec, limit=0, scoped=False, context=context).total
        page = self.query(source.name, filter_spec, limit=None, scoped=False, context=context)
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
            kind = owner.fields[name].kind
            assert isinstance(kind, ComputedKind)           # only computed fields have an aggregate
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
                    self.compute(owner, values, only={name})
                else:
                    values[name] = _computed_value(kind.result, (values.get(name) or 0) + delta)
                self.compute(owner, values, only=self.store.expressions_of(owner))   # they may read the aggregate
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
                self.compute(owner, new)
                changed = tuple(name for name in new if new.get(name) != old.get(name))
                if not changed:
                    continue
                dependent.replace_values(new)
                container.indexes.update(owner, dependent.id, old, new)
                self._history(owner, dependent, "updated", old, new, changed, f"copied from {change.record.number}")
                followed = Change("update", owner, dependent, old, new, changed)
                self._refresh_aggregates(followed)
                self._refresh_copies(followed, depth + 1)

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
            for name, value in derive(cast("Session", self), typedef, record, old, new).items():
                new[name] = value
                derived.append(name)
        return tuple(derived)


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
