"""Frozen values: the merged document and the compiled model never change once loaded.
FrozenDict and FrozenList still serialize and compare as plain values."""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class FrozenDict(dict):
    """A dict that refuses changes. The merged document and filter specs use it: they stay
    frozen, yet `json.dumps`, `isinstance(x, dict)` and pickling work as for plain values."""

    def _refuse(self, *args: Any, **kwargs: Any):
        raise TypeError("compiled definitions cannot be changed")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self):
        return (FrozenDict, (dict(self),))

class FrozenList(list):
    """A list that refuses changes (see FrozenDict)."""

    def _refuse(self, *args: Any, **kwargs: Any):
        raise TypeError("compiled definitions cannot be changed")

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce__(self):
        return (FrozenList, (list(self),))

def freeze_plain(value: Any) -> Any:
    """A frozen copy of a YAML value that still reads as plain dicts and lists."""
    if isinstance(value, Mapping):
        return FrozenDict({key: freeze_plain(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return FrozenList(freeze_plain(item) for item in value)
    return value

def freeze(value: Any) -> Any:
    """A frozen copy for the compiled model: MappingProxyType and tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item) for item in value)
    return value

def thaw(value: Any) -> Any:
    """Plain dicts and lists again, for code that builds on a filter spec."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    return value
