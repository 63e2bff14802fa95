"""The ticket lifecycle of the shipped helpdesk (T5, T11, T15): taking, asking the customer,
resolving, accepting or disputing, closing and reopening; time spent logged on every
transition a technician fires; a customer's comment bringing a ticket back to work."""
from __future__ import annotations

import pytest

from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import AccessDenied
from deskbase.rules.process.workflows import TransitionRefused, available_transitions, fire, workflow_of

TINA = Identity("tina", "Tina", ("technician",))
DISPATCHER = Identity("dora", "Dora", ("dispatcher",))
SUPERVISOR = Identity("sam", "Sam", ("supervisor",))
ADMIN = Identity("admin", "Admin", ("administrator",), superuser=True)


@pytest.fixture(scope="module")
def helpdesk(app_store):
    with app_store() as store:
        store.acme = store.run(lambda s: s.create("organization", {"name": "Acme", "code": "ACME"}).id)
        yield store


def customer(helpdesk, role: str = "customer_user") -> Identity:
    return Identity("carl", "Carl", (role,), organization=helpdesk.acme, language="fr")


def ticket(helpdesk, status: str | None = None, **values) -> int:
    """A ticket of Acme, put in a state by the system (as an import or the demo would)."""
    values = {"title": "printer jammed", "organization": helpdesk.acme, **values}
    if status:
        values["status"] = status
    return helpdesk.run(lambda s: s.create("ticket", values).id)


def fire_as(helpdesk, identity, ticket_id: int, name: str, inputs=None) -> str:
    return helpdesk.run(lambda s: fire(s, s.get("ticket", ticket_id), name, inputs)["status"], identity=identity)


def get(helpdesk, ticket_id: int) -> dict:
    return helpdesk.read(lambda s: dict(s.get("ticket", ticket_id).values))


def test_a_new_ticket_awaits_pickup(helpdesk):
    created = helpdesk.run(lambda s: s.create("ticket", {"title": "help", "organization": helpdesk.acme})["status"],
                           identity=customer(helpdesk, "customer_power_user"))
    assert created == "awaiting_pickup"


def test_a_technician_takes_a_ticket_and_logs_the_time_spent(helpdesk):
    number = ticket(helpdesk)
    assert fire_as(helpdesk, TINA, number, "take", {"time_spent": "20m", "work_done": "called the customer"}) == \
        "in_progress"
    values = get(helpdesk, number)
    assert values["assignee"] == "tina" and values["time_spent"] == 20 * 60
    entries = helpdesk.read(lambda s: [dict(r.values) for r in s.query("work_entry", {"ticket": number}).records])
    assert [(e["performer"], e["duration"], e["billable"], e["organization"], e["description"]) for e in entries] \
        == [("tina", 1200, True, helpdesk.acme, "called the customer")]


def test_the_full_lifecycle_from_pickup_to_closure(helpdesk):
    number = ticket(helpdesk)
    work = {"time_spent": "15m"}
    assert fire_as(helpdesk, TINA, number, "take", work) == "in_progress"
    assert fire_as(helpdesk, TINA, number, "ask_customer", {**work, "question": "Which tray?"}) == "awaiting_reply"
    assert fire_as(helpdesk, TINA, number, "resume", work) == "in_progress"
    assert fire_as(helpdesk, TINA, number, "resolve", work) == "resolved"
    assert fire_as(helpdesk, customer(helpdesk), number, "dispute", {"reason": "still jammed"}) == "disagreement"
    assert fire_as(helpdesk, TINA, number, "correct", work) == "correction_in_progress"
    assert fire_as(helpdesk, TINA, number, "resolve", work) == "resolved"
    assert fire_as(helpdesk, customer(helpdesk), number, "accept") == "closed"
    assert get(helpdesk, number)["time_spent"] == 6 * 15 * 60
    history = helpdesk.read(lambda s: [e.get("reason") for e in s.get("ticket", number).history.entries])
    assert history[1:] == [f"transition {name}" for name in
                           ("take", "ask_customer", "resume", "resolve", "dispute", "correct", "resolve", "accept")]


def test_a_dispute_becomes_a_public_customer_comment(helpdesk):
    number = ticket(helpdesk, "resolved", assignee="tina")
    fire_as(helpdesk, customer(helpdesk), number, "dispute", {"reason": "toujours en panne"})
    comments = helpdesk.read(lambda s: [(r["author"], r["author_kind"], r["visibility"], r["body"])
                                        for r in s.query("comment", {"ticket": number}).records])
    assert comments == [("carl", "customer", "public", "toujours en panne")]


@pytest.mark.parametrize("name", ["take", "release", "ask_customer", "resume", "resolve", "reject", "correct"])
def test_every_transition_a_technician_fires_asks_for_the_time_spent(helpdesk, name):
    transition = workflow_of(helpdesk.definitions, "ticket").transitions[name]
    assert transition.inputs["time_spent"].required
    source = transition.sources[0]
    number = ticket(helpdesk, source, assignee="tina" if source not in ("awaiting_pickup", "unassigned") else None)
    with pytest.raises(TransitionRefused) as refused:
        fire_as(helpdesk, TINA, number, name)
    asked = {"time_spent": "is required"} | ({"question": "is required"} if name == "ask_customer" else {})
    assert refused.value.fields == asked


def test_the_transitions_a_technician_may_fire_all_ask_for_the_time_spent(helpdesk):
    workflow = workflow_of(helpdesk.definitions, "ticket")
    for transition in workflow.transitions.values():
        if transition.roles and "technician" in transition.roles:
            assert transition.inputs["time_spent"].required, transition.name


def test_only_the_customer_or_an_administrator_reopens_a_closed_ticket(helpdesk):
    for identity in (customer(helpdesk), customer(helpdesk, "customer_power_user"), ADMIN):
        number = ticket(helpdesk, "closed", assignee="tina")
        assert fire_as(helpdesk, identity, number, "reopen") == "in_progress"
        assert get(helpdesk, number)["assignee"] == "tina"
    number = ticket(helpdesk, "closed", assignee="tina")
    for identity in (TINA, SUPERVISOR, DISPATCHER):
        with pytest.raises(TransitionRefused, match="may not fire `reopen`: it is for customer_user, "
                                                    "customer_power_user, administrator"):
            fire_as(helpdesk, identity, number, "reopen")


@pytest.mark.parametrize("state", ["resolved", "rejected", "cancelled", "in_progress", "awaiting_pickup"])
def test_a_ticket_is_reopened_only_once_closed(helpdesk, state):
    number = ticket(helpdesk, state, assignee="tina")
    with pytest.raises(TransitionRefused) as refused:
        fire_as(helpdesk, ADMIN, number, "reopen")
    assert refused.value.reason.endswith("it is allowed only from `closed`")


def test_a_closed_ticket_is_no_longer_edited(helpdesk):
    number = ticket(helpdesk, "closed", assignee="tina")
    for identity in (TINA, SUPERVISOR, ADMIN):
        with pytest.raises(AccessDenied, match="is `closed`: a Ticket in this state is not edited"):
            helpdesk.run(lambda s: s.update(number, {"priority": "high"}, type_name="ticket"), identity=identity)


def test_a_ticket_is_editable_until_closed(helpdesk):
    for state in ("in_progress", "resolved", "rejected"):
        number = ticket(helpdesk, state, assignee="tina")
        assert get(helpdesk, number)["priority"] != "high"
        helpdesk.run(lambda s: s.update(number, {"priority": "high"}, type_name="ticket"), identity=SUPERVISOR)
        values = get(helpdesk, number)
        assert (values["status"], values["priority"]) == (state, "high"), state


def test_the_status_changes_only_through_transitions(helpdesk):
    number = ticket(helpdesk, "in_progress", assignee="tina")
    with pytest.raises(AccessDenied) as denied:
        helpdesk.run(lambda s: s.update(number, {"status": "resolved"}, type_name="ticket"), identity=SUPERVISOR)
    assert denied.value.fields == {"status": "changes only through transitions"}


def test_a_customer_reply_brings_a_ticket_awaiting_it_back_to_work(helpdesk):
    number = ticket(helpdesk, "awaiting_reply", assignee="tina")
    helpdesk.run(lambda s: s.create("comment", {"ticket": number, "organization": helpdesk.acme,
                                                "author_kind": "customer", "body": "c'est réparé ?"}),
                 identity=customer(helpdesk))
    assert get(helpdesk, number)["status"] == "in_progress"


def test_a_staff_comment_leaves_a_ticket_awaiting_the_customers_reply(helpdesk):
    number = ticket(helpdesk, "awaiting_reply", assignee="tina")
    helpdesk.run(lambda s: s.create("comment", {"ticket": number, "body": "reminder sent"}), identity=TINA)
    assert get(helpdesk, number)["status"] == "awaiting_reply"


def test_a_customer_cannot_take_a_ticket(helpdesk):
    number = ticket(helpdesk)
    with pytest.raises(TransitionRefused, match=r"your roles \(customer_user\) may not fire `take`"):
        fire_as(helpdesk, customer(helpdesk), number, "take", {"time_spent": "1m"})


def test_a_dispatcher_assigns_without_logging_time(helpdesk):
    number = ticket(helpdesk)
    assert fire_as(helpdesk, DISPATCHER, number, "assign", {"assignee": "tina"}) == "in_progress"
    assert get(helpdesk, number)["assignee"] == "tina"
    assert helpdesk.read(lambda s: s.count("work_entry", {"ticket": number})) == 0


def test_transitions_offered_follow_the_state_and_the_role(helpdesk):
    def offered(identity, number):
        return helpdesk.read(lambda s: [name for name, _, _ in available_transitions(s, s.get("ticket", number))],
                             identity=identity)
    waiting = ticket(helpdesk)
    assert offered(TINA, waiting) == ["take", "reject", "merge"]
    assert offered(DISPATCHER, waiting) == ["assign", "cancel"]
    resolved = ticket(helpdesk, "resolved", assignee="tina")
    assert offered(customer(helpdesk), resolved) == ["accept", "dispute"]
    labels = helpdesk.read(lambda s: [label for _, label, _ in available_transitions(s, s.get("ticket", resolved))],
                           identity=customer(helpdesk))
    assert labels == ["Valider la résolution", "Contester la résolution"]
