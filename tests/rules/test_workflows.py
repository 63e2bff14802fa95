"""Workflows on a small repair-shop application: each refusal and its sentence, inputs,
`set` and `create` effects, the history naming the transition, the state field kept for
transitions, locked states, automatic transitions, and the located errors of a wrong
`workflow:` section."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.access.identity import SYSTEM, Identity
from deskbase.rules.access.scopes import AccessDenied
from deskbase.rules.application import load_application
from deskbase.rules.process.workflows import TransitionRefused, available_transitions, fire, workflow_of

REPAIRS_APP = Path(__file__).parent / "repairs_app"
MECHANIC = Identity("max", "Max", ("mechanic",))
OTHER_MECHANIC = Identity("mia", "Mia", ("mechanic",))
CLERK = Identity("cleo", "Cleo", ("clerk",), language="fr")
OWNER = Identity("olga", "Olga", ("owner",))
ADMIN = Identity("ada", "Ada", ("admin",), superuser=True)


@pytest.fixture(scope="module")
def definitions():
    return load_application(REPAIRS_APP)


@pytest.fixture
def shop(app_store, definitions):
    with app_store(definitions) as store:
        yield store


def new_repair(shop, state: str | None = None, **values) -> int:
    """A repair created by the system, which may put it in any state."""
    values = {"title": "bike", "device": "bicycle", **values}
    if state:
        values["status"] = state
    return shop.run(lambda s: s.create("repair", values).id)


def fire_as(shop, identity, repair_id: int, name: str, inputs=None):
    return shop.run(lambda s: fire(s, s.get("repair", repair_id), name, inputs)["status"], identity=identity)


def status(shop, repair_id: int) -> str:
    return shop.read(lambda s: s.get("repair", repair_id)["status"])


# -- states and effects --------------------------------------------------------------------

def test_a_new_record_starts_in_the_initial_state(shop):
    assert status(shop, new_repair(shop)) == "new"
    created = shop.run(lambda s: s.create("repair", {"title": "lamp"})["status"], identity=MECHANIC)
    assert created == "new"


def test_firing_sets_the_state_the_set_values_and_creates_records(shop):
    repair = new_repair(shop)
    assert fire_as(shop, MECHANIC, repair, "start", {"time_spent": "1h30", "note": "diagnosis"}) == "open"
    values = shop.read(lambda s: dict(s.get("repair", repair).values))
    assert values["assignee"] == "max" and values["started_on"] is not None
    logs = shop.read(lambda s: [dict(r.values) for r in s.query("work_log", {"repair": repair}).records])
    assert [(log["duration"], log["by"], log["note"]) for log in logs] == [(5400, "max", "diagnosis")]


def test_history_names_the_transition(shop):
    repair = new_repair(shop)
    fire_as(shop, MECHANIC, repair, "start", {"time_spent": "10m"})
    entry = shop.read(lambda s: s.get("repair", repair).history.entries[-1])
    assert entry["reason"] == "transition start"
    assert entry["by"] == "max"
    assert entry["changes"]["status"] == ("new", "open")


def test_transitions_without_roles_need_the_right_to_update(shop):
    repair = new_repair(shop, "open", assignee="mia")
    with pytest.raises(TransitionRefused) as refused:
        fire_as(shop, MECHANIC, repair, "finish")
    assert refused.value.reason.startswith("you may not fire `finish`: the role mechanic may update only")
    assert fire_as(shop, OTHER_MECHANIC, repair, "finish") == "done"


# -- refusals ------------------------------------------------------------------------------

def test_a_transition_is_refused_from_a_state_it_does_not_leave(shop):
    repair = new_repair(shop, "done")
    with pytest.raises(TransitionRefused) as refused:
        fire_as(shop, MECHANIC, repair, "wait")
    assert refused.value.reason == ("`wait` cannot be fired while the repair R-%04d is `done` (done); "
                                    "it is allowed only from `open`" % repair)


def test_a_role_not_listed_may_not_fire_the_transition(shop):
    repair = new_repair(shop)
    with pytest.raises(TransitionRefused) as refused:
        fire_as(shop, CLERK, repair, "start", {"time_spent": "5m"})
    assert refused.value.reason == "your roles (clerk) may not fire `start`: it is for mechanic"
    assert status(shop, repair) == "new"


def test_a_failed_guard_gives_its_message_in_the_users_language(shop):
    repair = new_repair(shop, device=None)
    with pytest.raises(TransitionRefused, match="^Name the device first$"):
        fire_as(shop, MECHANIC, repair, "start", {"time_spent": "5m"})
    french_mechanic = Identity("marc", "Marc", ("mechanic",), language="fr")
    with pytest.raises(TransitionRefused, match="^Indiquez d'abord l'appareil$"):
        fire_as(shop, french_mechanic, repair, "start", {"time_spent": "5m"})


def test_required_inputs_are_asked_and_checked_one_by_one(shop):
    repair = new_repair(shop)
    with pytest.raises(TransitionRefused) as refused:
        fire_as(shop, MECHANIC, repair, "start", {"note": "x" * 300, "time_spnet": "5m"})
    assert refused.value.fields["time_spent"] == "is required"
    assert "time_spnet" in refused.value.fields and "did you mean `time_spent`?" in refused.value.fields["time_spnet"]
    assert "note" in refused.value.fields
    with pytest.raises(TransitionRefused) as refused:
        fire_as(shop, MECHANIC, repair, "start", {"time_spent": "soon"})
    assert refused.value.fields == {"time_spent": "`soon` is not a duration (write it as 1h30, 45m or 1:30)"}
    assert status(shop, repair) == "new"
    assert shop.read(lambda s: s.count("work_log")) == 0


def test_an_unknown_transition_is_named_with_a_suggestion(shop):
    repair = new_repair(shop)
    with pytest.raises(TransitionRefused, match="`strat` is not a transition of repair; did you mean `start`?"):
        fire_as(shop, MECHANIC, repair, "strat")


def test_an_automatic_transition_cannot_be_fired_by_hand(shop):
    repair = new_repair(shop, "waiting")
    with pytest.raises(TransitionRefused, match="fired by the engine only"):
        fire_as(shop, ADMIN, repair, "wake_on_owner_note")


def test_the_system_and_a_superuser_may_fire_every_transition(shop):
    repair = new_repair(shop, "archived")
    assert fire_as(shop, ADMIN, repair, "reopen") == "open"
    assert shop.run(lambda s: fire(s, s.get("repair", repair), "wait")["status"]) == "waiting"


# -- the state field belongs to the workflow -----------------------------------------------

def test_a_person_cannot_change_the_state_field_by_an_update(shop):
    repair = new_repair(shop, "open", assignee="max")
    with pytest.raises(AccessDenied) as denied:
        shop.run(lambda s: s.update(repair, {"status": "done"}, type_name="repair"), identity=MECHANIC)
    assert denied.value.fields == {"status": "changes only through transitions"}
    # sending the current state back, as a form does, is no change
    shop.run(lambda s: s.update(repair, {"status": "open", "title": "bike (front wheel)"}, type_name="repair"),
             identity=MECHANIC)


def test_a_person_cannot_create_a_record_in_another_state(shop):
    with pytest.raises(AccessDenied, match="a new repair starts as `new`"):
        shop.run(lambda s: s.create("repair", {"title": "kettle", "status": "done"}), identity=MECHANIC)


def test_a_locked_record_is_not_edited_only_moved_on_by_a_transition(shop):
    repair = new_repair(shop, "archived", assignee="max")
    with pytest.raises(AccessDenied, match="is `archived`: a repair in this state is not edited"):
        shop.run(lambda s: s.update(repair, {"title": "renamed"}, type_name="repair"), identity=MECHANIC)
    assert fire_as(shop, OWNER, repair, "reopen") == "open"


def test_the_system_may_set_states_directly_for_data_fixes(shop):
    repair = new_repair(shop, "archived")
    shop.run(lambda s: s.update(repair, {"status": "done", "title": "fixed by a script"}, type_name="repair"))
    assert status(shop, repair) == "done"
    shop.run(lambda s: s.update(repair, {"status": "archived"}, type_name="repair"), identity=SYSTEM)
    assert status(shop, repair) == "archived"


# -- automatic transitions -----------------------------------------------------------------

def test_an_owners_note_wakes_a_waiting_repair(shop):
    repair = new_repair(shop, "waiting")
    shop.run(lambda s: s.create("repair_note", {"repair": repair, "from_owner": True, "body": "any news?"}),
             identity=OWNER)
    assert status(shop, repair) == "open"
    entry = shop.read(lambda s: s.get("repair", repair).history.entries[-1])
    assert entry["by"] == "system" and entry["reason"] == "transition wake_on_owner_note (automatic)"


def test_a_mechanics_note_leaves_a_waiting_repair_waiting(shop):
    repair = new_repair(shop, "waiting")
    shop.run(lambda s: s.create("repair_note", {"repair": repair, "body": "ordered the part"}), identity=MECHANIC)
    assert status(shop, repair) == "waiting"


def test_an_owners_note_does_not_move_a_repair_in_another_state(shop):
    repair = new_repair(shop, "done")
    shop.run(lambda s: s.create("repair_note", {"repair": repair, "from_owner": True}), identity=OWNER)
    assert status(shop, repair) == "done"


# -- what may be fired ---------------------------------------------------------------------

def test_available_transitions_are_those_the_person_may_fire_now(shop):
    repair = new_repair(shop)
    offered = shop.read(lambda s: available_transitions(s, s.get("repair", repair)), identity=MECHANIC)
    assert [(name, label) for name, label, _ in offered] == [("start", "Start")]
    assert list(offered[0][2]) == ["time_spent", "note"]
    offered = shop.read(lambda s: available_transitions(s, s.get("repair", repair)), identity=CLERK)
    assert [name for name, _, _ in offered] == ["drop"]
    assert shop.read(lambda s: [n for n, _, _ in available_transitions(s, s.get("repair", repair))]) == \
        ["start", "drop"]


def test_compiled_workflow_is_frozen(definitions):
    workflow = workflow_of(definitions, "repair")
    assert workflow.states == ("new", "open", "waiting", "done", "archived", "dropped")
    assert workflow.locked == {"archived", "dropped"}
    with pytest.raises(Exception):
        workflow.initial = "open"


# -- definitions errors --------------------------------------------------------------------

def broken(tmp_path: Path, old: str, new: str) -> list[str]:
    folder = tmp_path / "repairs"
    shutil.copytree(REPAIRS_APP, folder)
    path = folder / "repairs.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(DefinitionErrors) as errors:
        load_application(folder)
    return [str(error) for error in errors.value.errors]


@pytest.mark.parametrize("old, new, expected", [
    ("          to: waiting\n", "          to: wiating\n",
     "repairs.yaml:46:15: types.repair.workflow.transitions.wait.to: `wiating` is not a state of `status`: "
     "new, open, waiting, done, archived, dropped; did you mean `waiting`?"),
    ("      initial: new", "      initial: neww",
     "repairs.yaml:28:16: types.repair.workflow.initial: `neww` is not a state of `status`"),
    ("          roles: [clerk]\n        drop", "          roles: [clrek]\n        drop",
     "repairs.yaml:54:19: types.repair.workflow.transitions.archive.roles[0]: role `clrek` is not defined in "
     "`roles`; did you mean `clerk`?"),
    ("set: {assignee: $me,", "set: {asignee: $me,",
     "repairs.yaml:41:17: types.repair.workflow.transitions.start.set.asignee: `asignee` is not a field of type "
     "`repair`; did you mean `assignee`?"),
    ("duration: $input.time_spent", "duration: $input.time_spnet",
     "types.repair.workflow.transitions.start.create[0].values.duration: `$input.time_spnet` names no input of "
     "this transition; did you mean `time_spent`?"),
    ("{type: work_log, values: {repair", "{type: work_lgo, values: {repair",
     "types.repair.workflow.transitions.start.create[0].type: `work_lgo` is not a type; did you mean `work_log`?"),
    ("by: $me, note: $input.note", "bye: $me, note: $input.note",
     "types.repair.workflow.transitions.start.create[0].values.bye: `bye` is not a field of type `work_log`; "
     "did you mean `by`?"),
    ("      field: status", "      field: title",
     "types.repair.workflow.field: `title` is a string field; the states of a workflow are the values of an enum"),
    ('guard: "record.device"', 'guard: "record.device and"',
     "types.repair.workflow.transitions.start.guard: the expression `record.device and` does not parse"),
    ("on: {create: repair_note, via: repair,", "on: {create: repair_not, via: repair,",
     "types.repair.workflow.automatic.wake_on_owner_note.on.create: `repair_not` is not a type; did you mean "
     "`repair_note`?"),
    ("where: {from_owner: true}", "where: {from_ownr: true}",
     "types.repair.workflow.automatic.wake_on_owner_note.on.where.from_ownr: `from_ownr` is not a field"),
    ("values: [new, open, waiting, done, archived, dropped]",
     "values: [new, open, waiting, done, archived, dropped]\n        default: open",
     "types.repair.fields.status.default: the default `open` differs from the workflow's initial state `new`"),
    ("set: {assignee: $me,", "set: {status: done, assignee: $me,",
     "types.repair.workflow.transitions.start.set.status: `status` is the state field: `to` sets it"),
    ("time_spent: {kind: duration, required: true", "time_spent: {kind: duraton, required: true",
     "types.repair.workflow.transitions.start.inputs.time_spent.kind: `duraton` is not a kind an input may have"),
    ("set: {assignee: $me,", "set: {assignee: $myself,",
     "types.repair.workflow.transitions.start.set.assignee: `$myself` is not a value a transition knows"),
    ("on: {create: repair_note, via: repair,", "on: {create: repair_note, via: body,",
     "types.repair.workflow.automatic.wake_on_owner_note.on.via: `via` must be a ref field of `repair_note` "
     "pointing at `repair`; `body` is not"),
    ("          from: [archived]", "          from: [archivd]",
     "types.repair.workflow.transitions.reopen.from[0]: `archivd` is not a state of `status`"),
    ("note:       {kind: string}", "note:       {kind: string, offer: {roles: [clerk]}}",
     "types.repair.workflow.transitions.start.inputs.note.offer: only a user input offers people"),
    ("note:       {kind: string}", "note:       {kind: user, offer: {roles: [clrek]}}",
     "types.repair.workflow.transitions.start.inputs.note.offer.roles[0]: `clrek` is not a role of the "
     "definitions; did you mean `clerk`?"),
    ("note:       {kind: string}", "note:       {kind: user, offer: {count: {type: repair, field: started_on}}}",
     "types.repair.workflow.transitions.start.inputs.note.offer.count.field: `started_on` is not an indexed user "
     "field of `repair`; index it under the type's `indexes` to count by it"),
    ("  repair_note:\n    fields:", "  repair_note:\n    page: {diagram: {roles: [clerk]}}\n    fields:",
     "types.repair_note.page.diagram: the diagram draws the workflow of `repair_note`, which has none; add a "
     "`workflow:` to the type or remove `diagram`"),
])
def test_workflow_errors_are_located_with_a_suggestion(tmp_path, old, new, expected):
    errors = broken(tmp_path, old, new)
    assert any(expected in error for error in errors), errors


def test_an_unknown_key_of_a_transition_is_reported_by_the_schema(tmp_path):
    errors = broken(tmp_path, "          roles: [owner]", "          rolse: [owner]")
    assert any("types.repair.workflow.transitions.reopen.rolse" in error for error in errors), errors
