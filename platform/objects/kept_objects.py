"""Objects upper layers keep beside the store's own in the database's root mapping (accounts,
the outbox, job states, sequences' counters…), each under a key of its own."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


# With `make` there is always an object; without it, perhaps none yet.
@overload
def kept_object(connection: Any, key: str, make: Callable[[], T]) -> T: ...


@overload
def kept_object(connection: Any, key: str, make: None = None) -> Any | None: ...


def kept_object(connection: Any, key: str, make: Callable[[], T] | None = None) -> T | None:
    """The object kept under `key` in the root mapping of the connection's database: made by
    `make` and stored the first time it is asked for with `make`; None while there is none
    and no `make` is given. Making it writes the root mapping, so two transactions making it
    at once conflict and `Store.run` retries one of them, which then finds the other's."""
    root = connection.root()
    found = root.get(key)
    if found is None and make is not None:
        found = root[key] = make()
    return found
