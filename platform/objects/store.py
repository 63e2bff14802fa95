"""The object store: a ZODB database chosen by one URI, holding a container per type,
and the transactions through which every read and write happens.

`Store.open(uri, definitions)` applies pending migrations before anything else;
`store.session()` is one transaction, `store.run(fn)` retries `fn` on write conflicts.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import transaction
import ZODB
import zodburi
from BTrees.OOBTree import OOBTree
from persistent import Persistent
from ZODB.blob import BlobStorage
from ZODB.interfaces import IBlobStorage
from ZODB.POSException import ConflictError

from .errors import DeskbaseError
from .fields import RefKind
from .indexer import Indexer
from .model import Definitions, TypeDef
from .numbering import NumberAllocator
from .turns import ALONE_AFTER, turns_for

if TYPE_CHECKING:
    from .session import Session

T = TypeVar("T")
log = logging.getLogger("deskbase.store")
ENVIRONMENT_VARIABLE = "DESKBASE_DB"
ROOT_KEY = "deskbase"
DEFAULT_CACHE_SIZE = 200_000   # objects per connection; `?connection_cache_size=N` in the URI overrides
MIN_BATCH = 50          # the smallest part a bulk import's batch is split into when it meets live writers
PROCESS_LOCAL = ("memory://", "file://")   # storages only this process opens: blobs may go to a folder of its own


def default_uri(base: Path | None = None) -> str:
    """`$DESKBASE_DB`, or an embedded FileStorage with blobs under `var/` of the current folder."""
    if os.environ.get(ENVIRONMENT_VARIABLE):
        return os.environ[ENVIRONMENT_VARIABLE]
    folder = (base or Path.cwd()) / "var"
    return f"file://{folder.resolve()}/Data.fs?blobstorage_dir={folder.resolve()}/blobs"



def _conflicting_class(error: ConflictError) -> str:
    """The class of the object two transactions wrote (or one read as the other wrote)."""
    try:
        name = error.get_class_name()
    except Exception:                  # a storage's own conflict (a row lock) may name none
        name = None
    return str(name or type(error).__name__).rsplit(".", 1)[-1]


def _connection_apart(db: ZODB.DB, manager: transaction.TransactionManager) -> Any:
    """A new connection of `db`, never one the pool holds: `db.open` would hand out the
    connection another thread closed last, with the objects that thread may still read."""
    with db._lock:
        connection = db.klass(db, db._cache_size, None, db._cache_size_bytes)
        db.pool.all.add(connection)    # known to the pool (closing returns it there), never available
    connection.open(manager)
    return connection


class _HeldRead:
    """The transaction the reads of a `holding_reads` block share."""

    def __init__(self, store: "Store"):
        self.store = store
        self.manager: transaction.TransactionManager | None = None
        self.connection = None
        self.busy = 0              # reads running (a read may run within another)
        self.stale = False         # ended while a read ran: released once it returns

    def read(self, work: Callable[[Any], T]) -> T:
        if self.connection is None:
            self.manager = transaction.TransactionManager(explicit=True)
            self.connection = self.store.db.open(transaction_manager=self.manager)
            self.manager.begin()
        self.busy += 1
        try:
            return work(self.connection)
        finally:
            self.busy -= 1
            # A read that changed something is forgotten, as a lone read's would be.
            if self.stale or getattr(self.connection, "_registered_objects", None):
                self.release()

    def release(self) -> None:
        if self.busy:
            self.stale = True
            return
        self.stale = False
        if self.connection is not None:
            try:
                self.manager.abort()
            finally:
                self.connection.close()
                self.connection = self.manager = None


_HELD: ContextVar[_HeldRead | None] = ContextVar("deskbase_held_read", default=None)


class StoreRoot(Persistent):
    """The one object under the ZODB root: containers by type name and the snapshot of the
    definitions last applied. Ordinary writes never change it, so it is no hot spot."""

    def __init__(self) -> None:
        self.containers = OOBTree()
        self.snapshot = "{}"
        self.applied_at = None


Check = Callable[["Session", str, TypeDef, Any, Mapping[str, Any]], None]
Defaults = Callable[["Session", TypeDef, Mapping[str, Any]], Mapping[str, Any]]
Derive = Callable[["Session", TypeDef, Any, Mapping[str, Any], dict[str, Any]], Mapping[str, Any]]
Effect = Callable[["Session", Any], None]
ReadScope = Callable[["Session", TypeDef], Any]


@dataclass(frozen=True)
class WriteHooks:
    """What upper layers run on a store's write path, each list in the order it runs. It is
    built once, when the store is opened, and never changes after.

    - `checks(session, action, typedef, record, values)` run before a change is made and
      may refuse it by raising (AccessDenied, ValidationError…).
    - `defaults(session, typedef, values)` serve a create: they return values for fields the
      caller left empty (a workflow's initial state), applied before the fields' own defaults.
    - `derive(session, typedef, record, old, new)` run once a change is computed and before it
      is stored (`record` is None on create, `new` already has its id): each returns values it
      keeps for fields of the type (a timer's deadline), stored, indexed and in the history.
    - `effects(session, change)` run after the change, in the same transaction (automatic
      transitions, queued notifications).
    - `read_scope(session, typedef)`, when set, answers the filter a session's identity may
      read (True for all, False for none); every query of a session opened with an identity
      ANDs it into its index query. A session with an identity and no `read_scope` is
      refused rather than left unrestricted."""

    checks: tuple[Check, ...] = ()
    defaults: tuple[Defaults, ...] = ()
    derive: tuple[Derive, ...] = ()
    effects: tuple[Effect, ...] = ()
    read_scope: ReadScope | None = None


def _copies_by_source(definitions: Definitions) -> dict[str, list]:
    """For each type, the (type, indexed ref) whose records copy fields from it (`copied_from`)."""
    found: dict[str, list] = {}
    for typedef in definitions.types.values():
        refs = {ref for _, paths in typedef.copies for ref, _ in paths}
        for ref in sorted(refs):
            field = typedef.fields.get(ref)
            if field is not None and isinstance(field.kind, RefKind) and field.kind.to \
                    and typedef.index_for(ref) is not None:
                found.setdefault(field.kind.to, []).append((typedef, ref))
    return found


def _aggregates_by_source(definitions: Definitions) -> dict[str, list]:
    found: dict[str, list] = {}
    for owner in definitions.types.values():
        for name, definition in owner.fields.items():
            spec = getattr(definition.kind, "aggregate", None)
            if spec:
                found.setdefault(spec["of"], []).append((owner, name, spec))
    return found


class Store:
    """An open database with its definitions."""

    def __init__(self, db: ZODB.DB, definitions: Definitions, uri: str, cleanup: Callable[[], None] | None = None,
                 *, hooks: WriteHooks = WriteHooks(), extensions: Mapping[str, Any] | None = None):
        self.db = db
        self.definitions = definitions
        self.uri = uri
        self.hooks = hooks
        # What upper layers keep for this store beside the write path, by the name of the
        # section that reads it (the transition checks of `workflow:`); frozen like `hooks`.
        self.extensions: Mapping[str, Any] = MappingProxyType(dict(extensions or {}))
        self._cleanup = cleanup
        self._filters: dict[Any, Any] = {}
        self._use(definitions)
        self.numbers = NumberAllocator(db, local=uri.startswith(PROCESS_LOCAL))
        # The write transactions of this process take turns (reads never wait). Python runs
        # one thread's code at a time, so concurrent writers gained nothing but conflicts
        # on the buckets every creation of a type touches (the ends of its indexes), each
        # costing a whole retried transaction: 8 threads creating records for 10 s on one
        # FileStorage lost 7 of 113 creations after 10 attempts. In turns they conflict
        # only with other processes (RelStorage, ZEO), which `run` retries. Re-entrant: a
        # write may run another (in its own transaction) from the same thread.
        self._writing = threading.RLock()
        # Between processes, each write transaction holds a shared turn of the database and a
        # writer that keeps losing takes one alone (`turns.py`); `_turn_depth` counts the turns
        # this process holds (only the thread holding `_writing` reads or changes it).
        self.turns = turns_for(uri)
        self._turn_depth = 0
        # Write conflicts of this process (`run`): retried, and given up after every attempt.
        # `alone`: writers that took the database's turn alone after losing ALONE_AFTER times.
        self.conflicts: dict[str, int] = {"retried": 0, "gave_up": 0, "alone": 0}
        self.conflicts_on: Counter[str] = Counter()     # the same, by the class of the object met
        self._counting = threading.Lock()
        # Records created by single writes are filed in the indexes after their commit
        # (`indexer.py`); False files each in its creating transaction (to compare the two).
        self.defers_indexing = True
        self.indexer = Indexer(self)
        self._own: tuple[transaction.TransactionManager, Any] | None = None   # the indexer's connection

    @classmethod
    def open(cls, uri: str | None, definitions: Definitions, *, migrate: bool = True,
             hooks: WriteHooks = WriteHooks(), extensions: Mapping[str, Any] | None = None) -> "Store":
        """Open (creating if needed) the database at `uri` and bring it up to `definitions`;
        its writes run `hooks` (none: the bare write path). Migrations run before any hook."""
        uri = uri or default_uri()
        if uri.startswith("file://"):
            path = Path(uri[len("file://"):].split("?", 1)[0])
            path.parent.mkdir(parents=True, exist_ok=True)
        if uri.startswith(("postgres://", "postgresql://")) and importlib.util.find_spec("relstorage") is None:
            raise DeskbaseError(f"cannot open the database `{uri}`: PostgreSQL needs RelStorage, which is not "
                                "installed: pip install -e '.[postgresql]'")
        try:
            factory, db_options = zodburi.resolve_uri(uri)
        except (KeyError, ValueError) as error:
            raise DeskbaseError(f"cannot open the database `{uri}`: {error}; "
                                "use memory://, file:///path/Data.fs or postgres://…") from None
        try:
            storage = factory()
        except Exception as error:      # server away, wrong password, a schema made with other options…
            raise DeskbaseError(f"cannot open the database `{uri}`: {type(error).__name__}: "
                                f"{str(error).strip()}") from error
        cleanup = None
        if not IBlobStorage.providedBy(storage) and not uri.startswith(PROCESS_LOCAL):
            # Several processes share this database: a blob folder of this process alone would
            # hide each one's attachments from the others (and RelStorage cannot be wrapped).
            storage.close()
            raise DeskbaseError(
                f"the database `{uri}` is set up without attachments (blobs); add a blob folder to the "
                "URI: for postgres://… `?blob_dir=/var/cache/deskbase/blobs&shared_blob_dir=false` "
                "(files kept in the database, the folder a cache of this machine), for zeo://… `?blob_dir=…`")
        if not IBlobStorage.providedBy(storage):   # memory:// has no blobs: keep them in a temporary folder
            folder = tempfile.mkdtemp(prefix="deskbase-blobs-")
            storage = BlobStorage(folder, storage)
            cleanup = lambda: shutil.rmtree(folder, ignore_errors=True)
        options = {k: v for k, v in db_options.items()
                   if k in ("cache_size", "cache_size_bytes", "pool_size", "database_name")}
        if "connection_cache_size" not in uri:
            # indexes of large types span far more than ZODB's default 10,000 cached objects;
            # evicting them makes every write read its buckets back from disk
            options["cache_size"] = DEFAULT_CACHE_SIZE
        db = ZODB.DB(storage, **options)
        store = cls(db, definitions, uri, cleanup, hooks=hooks, extensions=extensions)
        store._ensure_root()
        if migrate:
            store.migrate()
        left = store.indexer.waiting()
        if left:
            store.indexer.soon(left)
        return store

    def close(self) -> None:
        self.indexer.stop()         # what waits is filed first
        if self._own is not None:
            self._own[1].close()
        self.numbers.close()
        self.turns.close()
        self.db.close()
        if self._cleanup:
            self._cleanup()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ensure_root(self) -> None:
        with self._transaction() as connection:
            root = connection.root()
            if ROOT_KEY not in root:
                root[ROOT_KEY] = StoreRoot()

    @contextmanager
    def _transaction(self, *, own: bool = False) -> Iterator[Any]:
        held = _HELD.get()
        if held is not None and held.store is self:
            held.release()                  # the held reads after this write see it
        with self._writing, self._turn(alone=False):
            if own:
                # The indexer's connection, kept apart from the pool: another thread's records,
                # loaded by a connection it closed, are never reloaded or ghosted by its work.
                if self._own is None:
                    manager = transaction.TransactionManager(explicit=True)
                    self._own = (manager, _connection_apart(self.db, manager))
                manager, connection = self._own
            else:
                manager = transaction.TransactionManager(explicit=True)
                connection = self.db.open(transaction_manager=manager)
            try:
                manager.begin()
                try:
                    yield connection
                    manager.commit()
                except BaseException:   # a commit that failed (a conflict) ends its transaction too
                    manager.abort()
                    raise
            finally:
                if not own:
                    connection.close()

    @contextmanager
    def _turn(self, *, alone: bool) -> Iterator[None]:
        """This process's turn of the database among its other processes (the caller holds
        `_writing`): shared, or alone; nothing when a write of this thread already holds one."""
        if self._turn_depth:
            self._turn_depth += 1
            try:
                yield
            finally:
                self._turn_depth -= 1
            return
        with self.turns.alone() if alone else self.turns.shared():
            self._turn_depth = 1
            try:
                yield
            finally:
                self._turn_depth = 0

    @contextmanager
    def session(self, user: str = "system", acting_for: str | None = None, *,
                me: Mapping[str, Any] | None = None, identity: Any = None,
                now: datetime | None = None, notify: bool = True, own: bool = False) -> Iterator["Session"]:
        """One transaction: commits when the block ends, aborts (writing nothing) on an error.
        With `identity` (see `Session`), reads and writes are those of that person; without,
        of the system, unrestricted. `now` fixes the session's clock (jobs, tests);
        `notify=False` tells nobody of its changes (demo data); `own`, on the indexer's
        connection (`indexer.py`)."""
        from .session import Session
        with self._transaction(own=own) as connection:
            yield Session(self, connection, user=user, acting_for=acting_for, me=me, identity=identity, now=now,
                          notify=notify)

    def run(self, work: Callable[["Session"], T], *, user: str = "system", acting_for: str | None = None,
            me: Mapping[str, Any] | None = None, identity: Any = None, attempts: int = 15,
            now: datetime | None = None, notify: bool = True, handled: bool = False, own: bool = False) -> T:
        """Run `work(session)` in a transaction, again from the start after a write conflict.
        Within `holding_reads`, the reads after it see what it wrote. `handled`: the caller
        deals with a conflict that outlasts the attempts itself (it tries a smaller part, or
        lets a note go), so it is not counted nor logged as a write given up."""
        with ExitStack() as alone:
            for attempt in range(1, attempts + 1):
                try:
                    with self.session(user, acting_for, me=me, identity=identity, now=now, notify=notify,
                                      own=own) as session:
                        return work(session)
                except ConflictError as conflict:
                    given_up = attempt == attempts
                    with self._counting:
                        if not (given_up and handled):
                            self.conflicts["gave_up" if given_up else "retried"] += 1
                        self.conflicts_on[_conflicting_class(conflict)] += 1
                    # ZODB's sentence names the object both transactions changed (oid and class):
                    # what an operator needs to see which part of the database is contended.
                    if given_up and handled:
                        raise
                    if given_up:
                        log.warning("write conflict: given up after %d attempts (user %s): %s", attempts, user,
                                    conflict)
                        raise
                    log.info("write conflict: attempt %d of %d, retrying (user %s): %s", attempt, attempts, user,
                             conflict)
                    if attempt == ALONE_AFTER:
                        # Lost three times in a row to other processes: the next attempts run
                        # with the database's turn alone (`turns.py`), so they meet nobody; only
                        # the others' commits not yet seen (ZEO's invalidations arrive a moment
                        # late) can still make one retry. A write within a write keeps the
                        # turn its outer write holds.
                        alone.enter_context(self._writing)
                        if not self._turn_depth:
                            alone.enter_context(self._turn(alone=True))
                            with self._counting:
                                self.conflicts["alone"] += 1
                    # Another transaction has just committed and is likely starting its next one:
                    # start again after a random pause whose bound doubles with each attempt
                    # (10 ms, 20 ms, … up to half a second), so that writers that met stop meeting.
                    # Two processes creating records of one type on RelStorage (tests/objects/
                    # test_relstorage.py): 5 attempts with pauses of 10 ms × attempt failed in 2
                    # runs of 8; bounds capped at 50 ms held two processes of four threads but not
                    # four processes of two (6 of 119 creations failed, on the BTree nodes every
                    # creation reads); capped at 0.5 s, none failed. Alone, a short pause lets the
                    # last commits of the others arrive.
                    pause = 0.01 if attempt >= ALONE_AFTER else min(0.5, 0.005 * 2 ** attempt)
                    time.sleep(random.uniform(0, pause))
        raise AssertionError("unreachable")

    @contextmanager
    def holding_reads(self) -> Iterator[None]:
        """The reads of this block (in this thread of control) share one transaction: one
        connection, one consistent snapshot, opened at the first read and ended with the
        block. A write in the block ends it, so that the reads after the write see it."""
        held = _HeldRead(self)
        token = _HELD.set(held)
        try:
            yield
        finally:
            _HELD.reset(token)
            held.release()

    def read(self, work: Callable[["Session"], T], *, user: str = "system", me: Mapping[str, Any] | None = None,
             identity: Any = None, now: datetime | None = None) -> T:
        """Run `work(session)` in a transaction that is never committed; within `holding_reads`,
        in the transaction the block holds. `now` fixes the session's clock, as for `session`."""
        from .session import Session
        held = _HELD.get()
        if held is not None and held.store is self:
            return held.read(lambda connection: work(Session(self, connection, user=user, me=me, identity=identity,
                                                             now=now)))
        manager = transaction.TransactionManager(explicit=True)
        connection = self.db.open(transaction_manager=manager)
        try:
            manager.begin()
            try:
                return work(Session(self, connection, user=user, me=me, identity=identity, now=now))
            finally:
                manager.abort()
        finally:
            connection.close()

    def bulk_create(self, type_name: str, rows: Iterable[Mapping[str, Any]], *, user: str = "system",
                    batch: int = 1000, progress: Callable[[int], None] | None = None, notify: bool = True,
                    now: datetime | None = None) -> int:
        """Create many records through the write path, committing every `batch` records (at
        `now`, by default the current time). A failing row stops the import; the batches
        before it stay committed.

        Beside live writers of the same type (another process creating a record every 100 ms),
        a transaction of 1,000 creations lasts long enough to meet one of theirs at nearly
        every attempt. So a part that keeps meeting them is halved (down to MIN_BATCH rows)
        and the parts grow back by doubling after each success: the import slows down
        instead of failing, and the live writers are never the ones held back long."""
        created = 0
        size = batch
        waiting: list[Mapping[str, Any]] = []

        def commit(rows_now: list[Mapping[str, Any]]) -> bool:
            """Whether the part was committed (False: it kept meeting others; nothing written)."""
            def work(session):
                session.numbers_ahead = len(rows_now)
                session.deferrals_left = 0   # filed at once: the rows' queries would judge the waiting ones one by one
                return [session.create(type_name, row) for row in rows_now]
            try:
                small = len(rows_now) <= MIN_BATCH
                self.run(work, user=user, notify=notify, now=now, attempts=10 if small else 3, handled=not small)
            except ConflictError:
                if len(rows_now) <= MIN_BATCH:
                    raise
                return False
            return True

        def flush(final: bool) -> None:
            nonlocal created, size
            while len(waiting) >= size or (final and waiting):
                part = waiting[:size]
                if commit(part):
                    del waiting[:len(part)]
                    created += len(part)
                    size = min(batch, size * 2)
                    if progress:
                        progress(created)
                else:
                    size = max(MIN_BATCH, size // 2)

        for row in rows:
            waiting.append(row)
            if len(waiting) >= batch:
                flush(final=False)
        flush(final=True)
        return created

    def aggregates_over(self, type_name: str) -> list[tuple[TypeDef, str, Mapping[str, Any]]]:
        """The computed aggregates (owner type, field, spec) that records of `type_name` count in."""
        return self._aggregates.get(type_name, [])

    def copies_from(self, type_name: str) -> list[tuple[TypeDef, str]]:
        """The (type, ref) pairs whose records copy fields from records of `type_name` through
        an indexed ref: they follow a change of the record they copy from."""
        return self._copies.get(type_name, [])

    def expressions_of(self, typedef: TypeDef) -> set[str]:
        """The computed fields of a type worked out by an expression (not an aggregate)."""
        return {name for name, f in typedef.fields.items()
                if getattr(f.kind, "expression", None) and getattr(f.kind, "aggregate", None) is None}

    def aggregate_filter(self, spec: Mapping[str, Any]) -> Any:
        """The filter of the records an aggregate counts, with the counting record's id read
        from `$record.<via>` instead of written in: one object per aggregate, compiled once
        rather than at every write that works the aggregate out. None when the aggregate's
        `where` reads `$record` itself (it is then built with the id written in, as before)."""
        key = ("aggregate", id(spec))
        hit = self._filters.get(key)
        if hit is not None and hit[0] is spec:
            return hit[1]
        via, where = spec["via"], spec.get("where")
        built: Any = {via: f"$record.{via}"}
        if where and "$record" in json.dumps(where, default=str):
            built = None
        elif where:
            built = {"all": [built, where]}
        self._filters[key] = (spec, built)
        return built

    def compiled_filter(self, spec: Any, type_name: str, record_type: str | None = None):
        """A compiled filter, cached by its text: filters of views and scopes repeat."""
        from .filters import IdsAmong, compile_filter
        fast_key = (type_name, record_type, id(spec))   # definitions' filters are frozen: same object, same filter
        hit = self._filters.get(fast_key)
        if hit is not None and hit[0] is spec:
            return hit[1]
        held: list[IdsAmong] = []

        def text_of(value: Any) -> str:
            if isinstance(value, IdsAmong):
                held.append(value)
            return str(value)
        key = (type_name, record_type, json.dumps(spec, sort_keys=True, default=text_of))
        compiled = self._filters.get(key)
        if compiled is None:
            typedef = self.definitions.type(type_name)
            record_typedef = self.definitions.type(record_type) if record_type else None
            compiled = compile_filter(spec, typedef, record_type=record_typedef)
        if held:                                        # lives as long as its set of ids: not kept
            return compiled
        if len(self._filters) > 4096:                   # bounded: ad-hoc filters come and go
            self._filters.clear()
        self._filters[key] = compiled
        self._filters[fast_key] = (spec, compiled)
        return compiled

    # -- definitions changes -------------------------------------------------------------

    def migration_plan(self):
        """What opening with these definitions would change, without changing it."""
        from .migrations import plan_migration
        return self.read(lambda s: plan_migration(self.definitions, s.root))

    def redefine(self, definitions: Definitions, *, accept_hiding: bool = False):
        """Switch this open store to new definitions of the same application (a reload while
        it runs): the migration is applied, then the definitions and the store's derived
        tables swapped, between two writes of this process; if the migration fails, the
        store keeps its definitions. A migration
        that would hide stored values is refused (HidingRefused) unless `accept_hiding`.
        Returns the plan applied. The hooks stay: they read the definitions of each session."""
        from .migrations import HidingRefused, plan_migration
        with self._writing:
            plan = self.read(lambda s: plan_migration(definitions, s.root))
            if plan.hiding and not accept_hiding:
                raise HidingRefused(plan.hiding)
            # Migrated through a second store object on the same database, so that pages read
            # meanwhile keep the old definitions over data that is not yet migrated; the old
            # definitions read the migrated data well (new containers and fields are unknown
            # to them, hidden ones kept). Then they are swapped.
            shadow = Store(self.db, definitions, self.uri, hooks=self.hooks, extensions=self.extensions)
            try:
                shadow.migrate()
            finally:
                shadow.numbers.close()
                shadow.turns.close()
            self._use(definitions)
            return plan

    def _use(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self._filters = {}
        self._aggregates = _aggregates_by_source(definitions)
        self._copies = _copies_by_source(definitions)

    def migrate(self, progress: Callable[[str], None] | None = None):
        """Apply the difference between the stored snapshot and the definitions."""
        from .migrations import apply_migration, plan_migration

        def work(session):
            plan = plan_migration(self.definitions, session.root)
            if plan.steps or session.root.snapshot != plan.snapshot:
                apply_migration(plan, session, progress)
            return plan
        return self.run(work, user="system", attempts=2)

    def reindex(self, type_names: Iterable[str] | None = None,
                progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
        """Rebuild the indexes of some or all types from the records; returns records per type."""
        names = list(type_names or self.definitions.types)
        for name in names:
            self.definitions.type(name)

        def work(session):
            counts = {}
            for name in names:
                typedef = self.definitions.type(name)
                container = session.container(name)
                container.indexes.sync(typedef)
                container.indexes.clear()
                container.indexes.rebuild(typedef, ((r.id, r.values) for r in container.records.values()))
                counts[name] = len(container.records)
                if progress:
                    progress(name, counts[name])
            return counts
        return self.run(work, user="system", attempts=2)
