"""The base of the parts of a `Session` (queries, the write path, derived values): what
each reads of the whole, declared for the type checker."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Definitions, TypeDef
    from .queries import Page
    from .records import Record, TypeContainer
    from .store import Store
    from .write_path import Change


class SessionPart:
    """What `Session` gives its parts. The attributes are set by `Session.__init__`, and the
    methods that run are the session's or another part's: the ones here exist only for the
    type checker."""

    identity: Any                 # the signed-in person as the rules layer describes them; None: the system
    store: Store
    definitions: Definitions
    connection: Any               # a ZODB connection
    user: str
    acting_for: str | tuple[str, ...] | None
    me: dict[str, Any]
    now: datetime
    today: date
    root: Any                     # the store's root object in the database
    notify: bool
    numbers_ahead: int
    deferrals_left: int           # creations this transaction may still leave to the indexer (`indexer.py`)
    _waiting: dict[str, list[int]]    # type → ids of the records this transaction left to the indexer
    _numbers: dict[str, tuple[int, int]]

    if TYPE_CHECKING:
        # -- Session
        def container(self, type_name: str) -> TypeContainer: ...

        def resolve(self, target: Any, type_name: str | None = None) -> Record: ...

        def context(self, record_values: Mapping[str, Any] | None = None) -> dict[str, Any]: ...

        def read_scope(self, typedef: TypeDef) -> Any: ...

        def lookup(self, type_name: str, text: str) -> int: ...

        # -- Queries
        def query(self, type_name: str, filter: Any = None, sort: Any = None, *, offset: int = 0,
                  limit: int | None = 50, context: Mapping[str, Any] | None = None,
                  record_type: str | None = None, scoped: bool = True) -> Page: ...

        # -- WritePath
        def _history(self, typedef: TypeDef, record: Record, action: str, old: Mapping[str, Any],
                     new: Mapping[str, Any], changed: tuple[str, ...], reason: str | None = None) -> None: ...

        # -- DerivedValues
        def _copied(self, typedef: TypeDef, values: Mapping[str, Any],
                    record: Record | None) -> Mapping[str, Any]: ...

        def compute(self, typedef: TypeDef, new: dict[str, Any], only: set[str] | None = None,
                    created: bool = False) -> None: ...

        def _refresh_aggregates(self, change: Change) -> None: ...

        def _refresh_copies(self, change: Change, depth: int = 0) -> None: ...

        def _number(self, typedef: TypeDef, old: Mapping[str, Any], new: dict[str, Any]) -> tuple[str, ...]: ...

        def _derive(self, typedef: TypeDef, record: Record | None, old: Mapping[str, Any],
                    new: dict[str, Any]) -> tuple[str, ...]: ...
