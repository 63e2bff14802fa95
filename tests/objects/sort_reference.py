"""The documented order of query results, written as a plain comparison sort: each key in
turn, empties last in both directions, then ascending ids. Tests hold `search` to it."""
from functools import cmp_to_key


def reference_order(records, order, typedef):
    """The ids of `records` (stored values) in the documented order."""
    def compare(a, b):
        for name, descending in order:
            kind = typedef.fields[name].kind
            x, y = kind.key(a.get(name)), kind.key(b.get(name))
            if x == y:
                continue
            if x is None or y is None:
                return 1 if x is None else -1
            return (1 if x < y else -1) if descending else (-1 if x < y else 1)
        return a["id"] - b["id"]
    return [r["id"] for r in sorted(records, key=cmp_to_key(compare))]
