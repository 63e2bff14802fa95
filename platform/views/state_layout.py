"""Where a state diagram's boxes, arrows and labels go: a small layered layout, computed
without drawing anything. States stand in rows by their distance from the initial state;
each group of transitions (same sources, same target) gets one label, in a row of labels
beside its target, which the arrows from each source join before one arrow enters the
target. Rows are ordered to cross few arrows, then spaced so that nothing overlaps."""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

Point = tuple[float, float]

# Sizes in pixels, for text of FONT_SIZE; widths of text are estimated from its letters.
FONT_SIZE = 13
LABEL_FONT_SIZE = 12
LINE_HEIGHT = 15
STATE_HEIGHT = 34
STATE_PADDING = 14                   # on each side of a state's name
LABEL_GAP = 6                        # between an arrow and the text of its label
LABEL_WIDTH = 22                     # letters on one line of a label before it wraps
ITEM_GAP = 18                        # between neighbours in a row
DUMMY_HALF = 5                       # half the room an arrow passing through a row takes
ROW_GAP = 24                         # between rows, where the arrows bend
MARGIN = 12
SWEEPS = 8                           # passes that order the rows, and that space them


@dataclass(frozen=True)
class Edge:
    """One group of transitions to lay out: from any of `sources` to `target`, with its
    label's lines as (key, text) — a key per transition, so a drawing can mark some."""

    sources: tuple[str, ...]
    target: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Box:
    """A rectangle: its top-left corner and size."""

    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    def overlaps(self, other: "Box") -> bool:
        return (self.x < other.right and other.x < self.right
                and self.y < other.bottom and other.y < self.bottom)


@dataclass(frozen=True)
class LabelLine:
    """One line of a label: the key it belongs to, its text, where its baseline starts."""

    key: str
    text: str
    x: float
    y: float


@dataclass(frozen=True)
class PlacedEdge:
    """A group of transitions placed: one line from each source to the junction beside the
    label (`inbound`, in the order of `sources`), then one from the junction into the target
    (`outbound`, where the arrowhead goes). Each line is a list of points for a smooth curve,
    which leaves its first point and enters its last one vertically."""

    sources: tuple[str, ...]
    target: str
    inbound: tuple[tuple[Point, ...], ...]
    outbound: tuple[Point, ...]
    label: Box
    lines: tuple[LabelLine, ...]


@dataclass(frozen=True)
class Layout:
    """A laid-out diagram: its size, each state's box (with its name), the edges."""

    width: float
    height: float
    states: Mapping[str, Box]
    names: Mapping[str, str]
    edges: tuple[PlacedEdge, ...]


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """An estimate of the width of `text` in a sans-serif font of `size` pixels."""
    narrow, wide = "iljtfrI.,:;'!| ()", "mwMWÉ"
    units = sum(0.32 if c in narrow else 0.85 if c in wide else 0.68 if c.isupper() else 0.56 for c in text)
    return units * size


def wrap(text: str, width: int = LABEL_WIDTH) -> list[str]:
    """`text` cut into lines of about `width` letters, at spaces."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


# -- the layered graph -----------------------------------------------------------------------

@dataclass
class _Item:
    """Something standing in a row: a state, a label with its junction, or an arrow passing."""

    kind: str                # state | label | dummy
    level: int
    left: float              # room to the left and right of its anchor (where arrows pass)
    right: float
    height: float
    name: str = ""
    x: float = 0.0


def ranks(states: Sequence[str], initial: str, edges: Sequence[Edge]) -> dict[str, int]:
    """Each state's distance from the initial state in transitions; states it never reaches
    come in one row after the others."""
    following: dict[str, list[str]] = {state: [] for state in states}
    for edge in edges:
        for source in edge.sources:
            following.setdefault(source, []).append(edge.target)
    found = {initial: 0}
    waiting = deque([initial])
    while waiting:
        state = waiting.popleft()
        for target in following.get(state, ()):
            if target not in found:
                found[target] = found[state] + 1
                waiting.append(target)
    last = max(found.values(), default=-1) + 1
    return {state: found.get(state, last) for state in states}


class _Graph:
    """The rows of items and the links between items of neighbouring rows."""

    def __init__(self) -> None:
        self.items: list[_Item] = []
        self.links: list[tuple[int, int]] = []          # (upper item, lower item)

    def add(self, item: _Item) -> int:
        self.items.append(item)
        return len(self.items) - 1

    def chain(self, start: int, end: int) -> list[int]:
        """Items from `start` to `end`, with a passing item in each row between them, linked."""
        step = 1 if self.items[end].level > self.items[start].level else -1
        path = [start]
        for level in range(self.items[start].level + step, self.items[end].level, step):
            path.append(self.add(_Item("dummy", level, DUMMY_HALF, DUMMY_HALF, 0.0)))
        path.append(end)
        for one, other in zip(path, path[1:]):
            upper, lower = (one, other) if self.items[one].level < self.items[other].level else (other, one)
            self.links.append((upper, lower))
        return path


def layout(states: Sequence[tuple[str, str]], initial: str, edges: Sequence[Edge]) -> Layout:
    """Lay out a state diagram: `states` as (name, shown name) in their declared order, the
    `initial` one first, `edges` as groups of transitions."""
    names = dict(states)
    rank = ranks([name for name, _ in states], initial, edges)
    graph = _Graph()
    state_item = {}
    met = _discovery(initial, edges, names)
    for name in sorted(names, key=lambda state: (rank[state], met.index(state))):
        half = max(text_width(names[name]) / 2 + STATE_PADDING, 40)
        state_item[name] = graph.add(_Item("state", 2 * rank[name], half, half, STATE_HEIGHT, name))
    chains = []
    for edge in edges:
        # The label stands in the row above its target or below it, whichever is nearer
        # the sources (above when both are as near).
        target_level = 2 * rank[edge.target]
        distance = {side: sum(abs(2 * rank[source] - (target_level + side)) for source in edge.sources)
                    for side in (-1, 1)}
        side = -1 if distance[-1] <= distance[1] else 1
        lines = [(key, line) for key, text in edge.labels for line in wrap(text)]
        # room for the label in bold, as it is drawn when the transition may be fired
        width = max((text_width(line, LABEL_FONT_SIZE) * 1.1 for _, line in lines), default=0)
        junction = graph.add(_Item("label", target_level + side, DUMMY_HALF,
                                   LABEL_GAP + width + 2, len(lines) * LINE_HEIGHT + 4))
        inbound = [graph.chain(state_item[source], junction) for source in edge.sources]
        outbound = graph.chain(junction, state_item[edge.target])
        chains.append((edge, lines, junction, inbound, outbound))
    rows = _order(graph)
    _space(graph, rows)
    tops = _row_tops(graph, rows)
    return _placed(graph, rows, tops, state_item, names, chains)


def _discovery(initial: str, edges: Sequence[Edge], names: Mapping[str, str]) -> list[str]:
    """States in the order a walk from the initial state meets them, following the edges in
    their order; the others after, in their declared order."""
    seen = [initial]
    for state in seen:
        for edge in edges:
            if state in edge.sources and edge.target not in seen:
                seen.append(edge.target)
    return seen + [name for name in names if name not in seen]


# -- ordering the rows -----------------------------------------------------------------------

def _order(graph: _Graph) -> list[list[int]]:
    """The items of each row, left to right, ordered by the mean place of their neighbours
    (down then up, a few times), keeping the order that crosses the fewest links."""
    levels = max(item.level for item in graph.items) + 1
    rows: list[list[int]] = [[] for _ in range(levels)]
    for index, item in enumerate(graph.items):
        rows[item.level].append(index)
    up: dict[int, list[int]] = {index: [] for index in range(len(graph.items))}
    down: dict[int, list[int]] = {index: [] for index in range(len(graph.items))}
    for upper, lower in graph.links:
        down[upper].append(lower)
        up[lower].append(upper)
    best, fewest = [list(row) for row in rows], crossings(graph, rows)
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        for level in (range(1, levels) if downward else range(levels - 2, -1, -1)):
            neighbours = up if downward else down
            place = {index: position for position, index in enumerate(rows[level - 1 if downward else level + 1])}
            rows[level] = _by_mean(rows[level], neighbours, place)
        count = crossings(graph, rows)
        if count < fewest:
            best, fewest = [list(row) for row in rows], count
    return best


def _by_mean(row: list[int], neighbours: Mapping[int, list[int]], place: Mapping[int, int]) -> list[int]:
    def key(position_index: tuple[int, int]) -> float:
        position, index = position_index
        known = [place[other] for other in neighbours[index] if other in place]
        return sum(known) / len(known) if known else position * len(place) / max(len(row), 1)
    return [index for _, index in sorted(enumerate(row), key=key)]


def crossings(graph: _Graph, rows: Sequence[Sequence[int]]) -> int:
    """How many pairs of links between neighbouring rows cross, with the rows in this order."""
    place = {index: position for row in rows for position, index in enumerate(row)}
    by_level: dict[int, list[tuple[int, int]]] = {}
    for upper, lower in graph.links:
        by_level.setdefault(graph.items[upper].level, []).append((place[upper], place[lower]))
    count = 0
    for links in by_level.values():
        for position, (a, b) in enumerate(links):
            count += sum(1 for c, d in links[position + 1:] if (a - c) * (b - d) < 0)
    return count


# -- spacing the rows ------------------------------------------------------------------------

def _space(graph: _Graph, rows: list[list[int]]) -> None:
    """Give each item its x: first packed, then moved towards its neighbours' mean, each row
    as close to those wishes as the room its items need allows."""
    neighbours: dict[int, list[int]] = {index: [] for index in range(len(graph.items))}
    for upper, lower in graph.links:
        neighbours[upper].append(lower)
        neighbours[lower].append(upper)
    for row in rows:
        x = 0.0
        for position, index in enumerate(row):
            item = graph.items[index]
            x += item.left + (_gap(graph, row[position - 1], index) if position else 0)
            item.x = x
            x += item.right
    for sweep in range(SWEEPS * 2):
        order = range(len(rows)) if sweep % 2 == 0 else range(len(rows) - 1, -1, -1)
        for level in order:
            row = rows[level]
            wishes = []
            for index in row:
                # an arrow passing through rows pulls hard on its next part: it stays straight
                known = [(graph.items[other].x, 8.0 if "dummy" in (graph.items[index].kind, graph.items[other].kind)
                          else 1.0) for other in neighbours[index]]
                weight = sum(w for _, w in known)
                wishes.append(sum(x * w for x, w in known) / weight if known else graph.items[index].x)
            gaps = [0.0] + [_gap(graph, a, b) + graph.items[a].right + graph.items[b].left
                            for a, b in zip(row, row[1:])]
            for index, x in zip(row, _closest(wishes, gaps)):
                graph.items[index].x = x
    shift = MARGIN - min(item.x - item.left for item in graph.items)
    for item in graph.items:
        item.x += shift


def _gap(graph: _Graph, one: int, other: int) -> float:
    dummies = graph.items[one].kind == "dummy" and graph.items[other].kind == "dummy"
    return ITEM_GAP / 3 if dummies else ITEM_GAP


def _closest(wishes: Sequence[float], gaps: Sequence[float]) -> list[float]:
    """Positions, left to right, at least `gaps[i]` after the one before, as close to the
    wishes as can be (least squares): pooling adjacent violators on the shifted wishes."""
    offsets, total = [], 0.0
    for gap in gaps:
        total += gap
        offsets.append(total)
    blocks: list[list[float]] = []          # [mean, size]
    for wish, offset in zip(wishes, offsets):
        blocks.append([wish - offset, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, size = blocks.pop()
            blocks[-1] = [(blocks[-1][0] * blocks[-1][1] + mean * size) / (blocks[-1][1] + size), blocks[-1][1] + size]
    shifted = [mean for mean, size in blocks for _ in range(int(size))]
    return [value + offset for value, offset in zip(shifted, offsets)]


def _row_tops(graph: _Graph, rows: list[list[int]]) -> list[tuple[float, float]]:
    """The top and bottom of each row."""
    found, y = [], float(MARGIN)
    for row in rows:
        height = max((graph.items[index].height for index in row), default=0.0)
        found.append((y, y + height))
        y += height + ROW_GAP
    return found


# -- the result ------------------------------------------------------------------------------

def _placed(graph: _Graph, rows, tops, state_item: Mapping[str, int], names: Mapping[str, str],
            chains) -> Layout:
    boxes = {}
    for name, index in state_item.items():
        item = graph.items[index]
        top, _ = tops[item.level]
        boxes[name] = Box(item.x - item.left, top, item.left + item.right, STATE_HEIGHT)
    ports = _ports(graph, boxes, state_item, chains, tops)
    edges = []
    for edge, lines, junction, inbound, outbound in chains:
        item = graph.items[junction]
        top, bottom = tops[item.level]
        middle = (top + bottom) / 2
        text_top = middle - len(lines) * LINE_HEIGHT / 2
        label = Box(item.x + LABEL_GAP, text_top, item.right - LABEL_GAP, len(lines) * LINE_HEIGHT)
        placed_lines = tuple(LabelLine(key, text, label.x, text_top + (position + 1) * LINE_HEIGHT - 3.5)
                             for position, (key, text) in enumerate(lines))
        routes = tuple(_route(graph, path, tops, ports, (item.x, middle), "leaves") for path in inbound)
        entering = _route(graph, list(reversed(outbound)), tops, ports, (item.x, middle), "enters")
        edges.append(PlacedEdge(edge.sources, edge.target, routes, tuple(reversed(entering)), label, placed_lines))
    width = max(item.x + item.right for item in graph.items) + MARGIN
    height = tops[-1][1] + MARGIN
    return Layout(width, height, MappingProxyType(boxes), MappingProxyType(dict(names)), tuple(edges))


def _ports(graph: _Graph, boxes: Mapping[str, Box], state_item: Mapping[str, int], chains,
           tops) -> dict[tuple[int, int, str], float]:
    """Where each link meets a state's box: the links on one side spread along it, in the
    order of the x of their other end (leaving before entering), so that they do not cross
    there."""
    by_side: dict[tuple[int, str], list[tuple[float, str, int]]] = {}
    state_of = {index: name for name, index in state_item.items()}
    for _, _, _, inbound, outbound in chains:
        for path, way in [*((path, "leaves") for path in inbound), (list(reversed(outbound)), "enters")]:
            state, neighbour = path[0], path[1]
            side = "bottom" if graph.items[neighbour].level > graph.items[state].level else "top"
            by_side.setdefault((state, side), []).append((graph.items[neighbour].x, way, neighbour))
    found = {}
    for (state, side), ends in by_side.items():
        box = boxes[state_of[state]]
        ends.sort()
        room = box.width * 0.8
        for position, (_, way, neighbour) in enumerate(ends):
            found[(state, neighbour, way)] = box.x + box.width * 0.1 + room * (position + 1) / (len(ends) + 1)
    return found


def _route(graph: _Graph, path: list[int], tops, ports, junction: Point, way: str) -> tuple[Point, ...]:
    """The points of a line from a state's box (which it `leaves`, or `enters` once
    reversed) through the rows in between to a junction."""
    state, neighbour = path[0], path[1]
    top, bottom = tops[graph.items[state].level]
    downward = graph.items[neighbour].level > graph.items[state].level
    points: list[Point] = [(ports[(state, neighbour, way)], bottom if downward else top)]
    for index in path[1:-1]:                # it passes each row between at its middle
        row_top, row_bottom = tops[graph.items[index].level]
        points.append((graph.items[index].x, (row_top + row_bottom) / 2))
    row_top, row_bottom = tops[graph.items[path[-1]].level]
    points.append((junction[0], row_top if downward else row_bottom))
    points.append(junction)
    return tuple(points)
