"""A type's workflow drawn as a state diagram: SVG made by an autoescaped template from the
layout of `state_layout` (labels are people's text). A drawing may highlight the state a
record is in and emphasise the transitions a reader may fire from it; its words are the
definitions' labels in the reader's language."""
from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from deskbase.objects.model import Definitions
from deskbase.rules.process.workflows import Transition, Workflow, workflow_of

from .state_layout import FONT_SIZE, Edge, Layout, Point, layout

TEMPLATES = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=True,
                        auto_reload=False)


def workflow_transitions(workflow: Workflow) -> list[Transition]:
    """The transitions people fire, then those the engine fires, each in declared order."""
    return [*workflow.transitions.values(), *workflow.automatic.values()]


def workflow_edges(workflow: Workflow, language: str) -> list[Edge]:
    """The workflow's transitions grouped by where they lead from and to: one arrow and one
    label for `take` and `assign` when both lead from the same states to the same state."""
    groups: dict[tuple[frozenset[str], str], list[Transition]] = {}
    for transition in workflow_transitions(workflow):
        groups.setdefault((frozenset(transition.sources), transition.target), []).append(transition)
    return [Edge(tuple(members[0].sources), target, tuple((t.name, t.title(language)) for t in members))
            for (_, target), members in groups.items()]


_LAYOUTS: dict[tuple[int, str, str], tuple[Definitions, Layout | None]] = {}


def workflow_layout(definitions: Definitions, type_name: str, language: str) -> Layout | None:
    """The laid-out diagram of a type's workflow, its words in `language`; None without one.
    Laid out once per definitions (a record's page draws it at every visit)."""
    key = (id(definitions), type_name, language)
    known = _LAYOUTS.get(key)
    if known is not None and known[0] is definitions:
        return known[1]
    workflow = workflow_of(definitions, type_name)
    placed = None
    if workflow is not None:
        kind = definitions.type(type_name).fields[workflow.field].kind
        states = [(state, kind.text(state, language)) for state in workflow.states]
        placed = layout(states, workflow.initial, workflow_edges(workflow, language))
    if len(_LAYOUTS) > 256:             # definitions reloaded many times: start again
        _LAYOUTS.clear()
    _LAYOUTS[key] = (definitions, placed)
    return placed


def state_diagram(definitions: Definitions, type_name: str, language: str, *, title: str = "",
                  current: str | None = None, emphasised: Collection[str] | None = None,
                  prefix: str = "diagram") -> Markup | None:
    """The SVG of a type's workflow: `current` highlighted, the transitions named in
    `emphasised` drawn strong (the others muted); None when the type has no workflow.
    `prefix` keeps the ids of several diagrams on one page apart."""
    workflow = workflow_of(definitions, type_name)
    placed = workflow_layout(definitions, type_name, language)
    if workflow is None or placed is None:
        return None
    return draw(placed, initial=workflow.initial, automatic=frozenset(workflow.automatic), title=title,
                current=current, emphasised=emphasised, prefix=prefix)


def draw(placed: Layout, *, initial: str, automatic: Collection[str] = (), title: str = "",
         current: str | None = None, emphasised: Collection[str] | None = None, prefix: str = "diagram") -> Markup:
    """A layout drawn as SVG through the template `_state_diagram.html`."""
    strong = frozenset(emphasised or ())
    leaving = {source for edge in placed.edges for source in edge.sources}
    states = [{"name": name, "text": placed.names[name], "x": _n(box.x), "y": _n(box.y), "width": _n(box.width),
               "height": _n(box.height), "cx": _n(box.x + box.width / 2),
               "baseline": _n(box.y + box.height / 2 + FONT_SIZE * 0.35),
               "current": name == current, "initial": name == initial, "final": name not in leaving}
              for name, box in placed.states.items()]
    edges = []
    for edge in placed.edges:
        keys = [line.key for line in edge.lines]
        fires = any(key in strong for key in keys)
        edges.append({
            "target": edge.target, "strong": fires, "automatic": all(key in automatic for key in keys),
            "inbound": [{"d": _curve(points), "source": source, "strong": fires and source in (current, None)}
                        for source, points in zip(edge.sources, edge.inbound)],
            "outbound": _curve(edge.outbound), "junction": (_n(edge.outbound[0][0]), _n(edge.outbound[0][1])),
            "lines": [{"key": line.key, "text": line.text, "x": _n(line.x), "y": _n(line.y),
                       "strong": line.key in strong, "muted": emphasised is not None and line.key not in strong,
                       "automatic": line.key in automatic} for line in edge.lines]})
    return Markup(TEMPLATES.get_template("_state_diagram.html").render(
        prefix=prefix, title=title, width=_n(placed.width), height=_n(placed.height), states=states, edges=edges))


def _curve(points: Sequence[Point]) -> str:
    """An SVG path through the points: a smooth curve (Catmull-Rom) that leaves the first,
    enters the last and runs along any two points one above the other vertically."""
    tangents = [_tangent(points, position) for position in range(len(points))]
    parts = [f"M{_n(points[0][0])} {_n(points[0][1])}"]
    for position in range(1, len(points)):
        (x0, y0), (x1, y1) = points[position - 1], points[position]
        (a, b), (c, d) = tangents[position - 1], tangents[position]
        parts.append(f"C{_n(x0 + a / 3)} {_n(y0 + b / 3)} {_n(x1 - c / 3)} {_n(y1 - d / 3)} {_n(x1)} {_n(y1)}")
    return " ".join(parts)


def _tangent(points: Sequence[Point], position: int) -> Point:
    x, y = points[position]
    before = points[position - 1] if position > 0 else None
    after = points[position + 1] if position + 1 < len(points) else None
    if before is None or after is None or before[0] == x or after[0] == x:
        return 0.0, (after[1] - y) if after is not None else (y - before[1]) if before is not None else 0.0
    return (after[0] - before[0]) / 2, (after[1] - before[1]) / 2


def _n(value: Any) -> float:
    return round(float(value), 1)
