"""A workflow drawn as a state diagram: every state placed once and apart from the others,
each arrow from the states it leaves to the state it enters, labels clear of the boxes, and
people's words escaped in the SVG."""
from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
from hypothesis import given, settings, strategies as st

from deskbase.views.state_diagrams import draw, state_diagram, workflow_edges, workflow_layout
from deskbase.views.state_layout import Box, Edge, Layout, layout, ranks

SVG = "{http://www.w3.org/2000/svg}"


def on_border(point, box: Box) -> bool:
    x, y = point
    return box.x <= x <= box.right and y in (box.y, box.bottom)


def assert_well_placed(placed: Layout, states: list[str], edges: list[Edge]) -> None:
    assert sorted(placed.states) == sorted(states)
    boxes = list(placed.states.values())
    for position, box in enumerate(boxes):
        assert box.x >= 0 and box.y >= 0 and box.right <= placed.width and box.bottom <= placed.height
        for other in boxes[position + 1:]:
            assert not box.overlaps(other)
    labels = [edge.label for edge in placed.edges]
    for position, label in enumerate(labels):
        assert label.right <= placed.width + 0.01 and label.bottom <= placed.height
        assert not any(label.overlaps(box) for box in boxes)
        assert not any(label.overlaps(other) for other in labels[position + 1:])
    assert [(edge.sources, edge.target) for edge in placed.edges] == [(edge.sources, edge.target) for edge in edges]
    for edge in placed.edges:
        assert len(edge.inbound) == len(edge.sources)
        for source, route in zip(edge.sources, edge.inbound):
            assert on_border(route[0], placed.states[source]), (source, route[0])
            assert route[-1] == edge.outbound[0]            # every source's line meets at the junction
        assert on_border(edge.outbound[-1], placed.states[edge.target]), (edge.target, edge.outbound[-1])


def test_the_ticket_workflow_is_laid_out_with_every_state_once_and_arrows_between_the_right_states(
        helpdesk_definitions):
    placed = workflow_layout(helpdesk_definitions, "ticket", "en")
    states = list(helpdesk_definitions.extensions["workflow"].by_type["ticket"].states)
    edges = workflow_edges(helpdesk_definitions.extensions["workflow"].by_type["ticket"], "en")
    assert_well_placed(placed, states, edges)
    take = next(edge for edge in placed.edges if any(line.text == "Take" for line in edge.lines))
    assert set(take.sources) == {"awaiting_pickup", "unassigned"} and take.target == "in_progress"
    assert [line.text for line in take.lines] == ["Take", "Assign"]      # same states: one arrow, one label
    assert placed.width < 1100 and placed.height < 600                     # readable on a page


def test_states_stand_in_rows_by_their_distance_from_the_initial_state():
    edges = [Edge(("new",), "open", ()), Edge(("open",), "done", ()), Edge(("done",), "new", ())]
    assert ranks(["new", "open", "done", "lost"], "new", edges) == {"new": 0, "open": 1, "done": 2, "lost": 3}
    placed = layout([("new", "New"), ("open", "Open"), ("done", "Done"), ("lost", "Lost")], "new",
                    [Edge(("new",), "open", (("a", "Open it"),))])
    assert placed.states["new"].y < placed.states["open"].y < placed.states["lost"].y


names = st.sampled_from(["a", "b", "c", "d", "e", "f", "g"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(names, min_size=1, max_size=4, unique=True), names), min_size=1, max_size=14))
def test_any_workflow_is_laid_out_without_overlaps(transitions):
    states = ["a", "b", "c", "d", "e", "f", "g"]
    edges, seen = [], set()
    for number, (sources, target) in enumerate(transitions):
        if (frozenset(sources), target) not in seen:
            seen.add((frozenset(sources), target))
            edges.append(Edge(tuple(sources), target, ((f"t{number}", f"Transition number {number}"),)))
    placed = layout([(state, f"State {state.upper()}") for state in states], "a", edges)
    assert_well_placed(placed, states, edges)


def test_the_svg_escapes_labels_people_wrote():
    hostile = '<script>alert(1)</script>'
    placed = layout([("new", hostile), ("done", '"><img src=x onerror=alert(2)>')], "new",
                    [Edge(("new",), "done", (("finish", "</text><script>alert(3)</script>"),))])
    svg = str(draw(placed, initial="new", title="<b>Tasks</b>"))
    assert "<script" not in svg and "<img" not in svg and "<b>" not in svg
    tree = ElementTree.fromstring(svg)                    # well-formed: the words stayed text
    texts = [element.text for element in tree.iter(f"{SVG}text")]
    assert hostile in texts and "</text><script>alert(3)</script>" in texts


def test_the_current_state_is_highlighted_and_only_the_transitions_named_are_emphasised(helpdesk_definitions):
    svg = str(state_diagram(helpdesk_definitions, "ticket", "fr", current="in_progress",
                            emphasised={"resolve", "release"}))
    tree = ElementTree.fromstring(svg)
    current = [group.get("data-state") for group in tree.iter(f"{SVG}g") if "current" in group.get("class", "")]
    assert current == ["in_progress"]
    strong = {text.get("data-transition") for text in tree.iter(f"{SVG}text") if "may-fire" in text.get("class", "")}
    assert strong == {"resolve", "release"}
    words = {text.text for text in tree.iter(f"{SVG}text")}
    assert {"En cours", "Résoudre", "Remettre en attente", "Réponse du client"} <= words    # labels in French


def test_a_type_without_a_workflow_has_no_diagram(helpdesk_definitions):
    assert state_diagram(helpdesk_definitions, "organization", "en") is None


@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_shipped_workflow_is_laid_out_cleanly(helpdesk_definitions, language):
    for type_name, workflow in helpdesk_definitions.extensions["workflow"].by_type.items():
        placed = workflow_layout(helpdesk_definitions, type_name, language)
        assert_well_placed(placed, list(workflow.states), workflow_edges(workflow, language))
