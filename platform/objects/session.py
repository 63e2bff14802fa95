"""A session: one person's (or the system's) reads and writes inside one transaction
(docs/storage.md, "The write path"). Its parts, one concept each:

- here, who acts (identity, acting for, the engine's own authority) and records by id,
  number or title;
- `queries.py`, pages, counts and averages through the indexes, within the read scope;
- `write_path.py`, create / update / delete: check → coerce and validate → compute →
  store → index → history → effects;
- `derived.py`, the values the engine works out: copies, computed fields and aggregates,
  sequence numbers, what the write hooks derive.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .derived import DerivedValues
from .errors import DeskbaseError, FieldError, NotFound
from .indexer import DEFERRED_PER_TRANSACTION
from .model import TypeDef
from .queries import Queries
from .records import Record, TypeContainer
from .write_path import WritePath

if TYPE_CHECKING:
    from .store import Store

UTC = timezone.utc


class Session(Queries, WritePath, DerivedValues):
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
        # Record numbers are taken outside this transaction (`numbering.py`), this many at a
        # time: a bulk import takes its batch's in one go; the unused ones are gaps.
        self.numbers_ahead = 1
        self._numbers: dict[str, tuple[int, int]] = {}    # type → (next to give, last reserved)
        # Records created here that the store's indexer files after the commit (`indexer.py`).
        self.deferrals_left = DEFERRED_PER_TRANSACTION if store.defers_indexing else 0
        self._waiting: dict[str, list[int]] = {}

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

    # -- records by id, number or title -------------------------------------------------

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
                "today": self.today, "lookup": self.lookup, "session": self}


    def read_scope(self, typedef: TypeDef) -> Any:
        """The filter this session may read of a type: True for every record, False for none."""
        if self.identity is None:
            return True
        read_scope = self.store.hooks.read_scope
        assert read_scope is not None, "an identity is refused on a store without read_scope (__init__, reading_as)"
        return read_scope(self, typedef)

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


