"""Dispatch (T10) on the staffing application: a new request goes to its customer's team,
else its product's, and to an agent of that team in turn or the least loaded, never to an
agent away; what its creator chose is kept; a wrong `dispatch:` section is reported at
its place."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from ZODB.POSException import ConflictError

from deskbase.objects.errors import DefinitionErrors

LEAST_LOADED = ("strategy: round_robin}", "strategy: least_loaded, load: {status: [new, assigned]}}")
BY_TRANSITION = ("strategy: round_robin}", "strategy: round_robin, transition: hand_over}")
NO_OPERATOR = ("    operator: {field: handler, strategy: round_robin}\n", "")


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


# -- the group -----------------------------------------------------------------------------

def test_a_new_request_goes_to_its_customers_team_first(staffing):
    teams = staffing.teams
    customer = staffing.create("customer", name="Acme", team=teams["field"])
    product = staffing.create("product", name="Printer", default_team=teams["support"])
    assert staffing.request(customer=customer, product=product)["team"] == teams["field"]


def test_a_customer_without_a_team_leaves_the_request_to_the_products_team(staffing):
    customer = staffing.create("customer", name="Acme")
    product = staffing.create("product", name="Printer", default_team=staffing.teams["support"])
    assert staffing.request(customer=customer, product=product)["team"] == staffing.teams["support"]


def test_a_request_with_neither_team_stays_without_a_team_or_handler(staffing):
    customer = staffing.create("customer", name="Acme")
    created = staffing.request(customer=customer)
    assert (created["team"], created["handler"]) == (None, None)


def test_a_team_chosen_by_the_creator_is_kept(staffing):
    customer = staffing.create("customer", name="Acme", team=staffing.teams["support"])
    created = staffing.request(customer=customer, team=staffing.teams["field"])
    assert (created["team"], created["handler"]) == (staffing.teams["field"], "fay")


def test_the_team_is_given_with_the_creation_in_one_write(staffing):
    customer = staffing.create("customer", name="Acme", team=staffing.teams["empty"])
    created = staffing.request(customer=customer)
    history = staffing.store.read(lambda s: s.get("request", created["id"]).history.entries)
    assert created["version"] == 1 and len(history) == 1 and "team" in history[0]["changes"]


# -- the operator --------------------------------------------------------------------------

def test_round_robin_gives_requests_to_the_team_in_turn(staffing):
    support = staffing.teams["support"]
    handlers = [staffing.request(team=support)["handler"] for _ in range(4)]
    assert handlers == ["ann", "bob", "cid", "ann"]


def test_round_robin_skips_an_agent_away_and_takes_them_back_after(staffing):
    support = staffing.teams["support"]
    leave = staffing.leave("bob", "cid", today(), today())
    assert [staffing.request(team=support)["handler"] for _ in range(3)] == ["ann", "cid", "ann"]
    staffing.store.run(lambda s: s.update(s.get("leave", leave), {"last_day": "2000-01-01"}))
    assert staffing.request(team=support)["handler"] == "bob"


def test_two_requests_dispatched_at_once_conflict_and_the_retry_takes_the_next_turn(staffing):
    support = staffing.teams["support"]
    assert staffing.request(team=support)["handler"] == "ann"
    with pytest.raises(ConflictError):
        with staffing.store.session() as first:
            first.create("request", {"title": "first", "team": support})
            with staffing.store.session() as second:          # commits before the first
                second.create("request", {"title": "second", "team": support})
    retried = staffing.request(team=support)                  # what Store.run does on the conflict
    handlers = staffing.store.read(lambda s: [r["handler"] for r in s.query("request", sort=["id"]).records])
    assert handlers == ["ann", "bob", "cid"] and retried["handler"] == "cid"


def test_least_loaded_gives_the_request_to_the_agent_with_fewest_open_ones(staffing_variant):
    desk = staffing_variant(LEAST_LOADED)
    for handler, status in (("ann", "new"), ("ann", "assigned"), ("bob", "new"), ("cid", "new"), ("cid", "done"),
                            ("cid", "done")):
        desk.request(handler=handler, status=status)
    assert desk.request(team=desk.teams["support"])["handler"] == "bob"     # ann 2, bob 1, cid 1: by login
    assert desk.request(team=desk.teams["support"])["handler"] == "cid"


def test_least_loaded_skips_an_agent_away(staffing_variant):
    desk = staffing_variant(LEAST_LOADED)
    desk.leave("ann", None, today(), None)
    assert desk.request(team=desk.teams["support"])["handler"] == "bob"


def test_nobody_is_given_the_request_when_the_whole_team_is_away(staffing):
    staffing.leave("fay", None, today(), today())
    created = staffing.request(team=staffing.teams["field"])
    assert (created["team"], created["handler"]) == (staffing.teams["field"], None)


def test_a_transition_gives_the_request_so_its_state_follows_the_workflow(staffing_variant):
    desk = staffing_variant(BY_TRANSITION)
    created = desk.request(team=desk.teams["support"])
    assert (created["handler"], created["status"]) == ("ann", "assigned")
    last = desk.store.read(lambda s: s.get("request", created["id"]).history.entries[-1])
    assert (last["by"], last["reason"]) == ("system", "transition hand_over (automatic)")


def test_without_an_operator_rule_only_the_team_is_given(staffing_variant):
    desk = staffing_variant(NO_OPERATOR)
    created = desk.request(team=desk.teams["support"])
    assert (created["team"], created["handler"], created["status"]) == (desk.teams["support"], None, "new")


# -- definitions errors --------------------------------------------------------------------

@pytest.mark.parametrize("old, new, expected", [
    ("dispatch:\n  request:", "dispatch:\n  requests:",
     "staffing.yaml:93:3: dispatch.requests: `requests` is not a type; did you mean `request`?"),
    ("group: {field: team,", "group: {field: title,",
     "dispatch.request.group.field: `title` is not a ref field of `request` holding one record"),
    ("from: [customer.team,", "from: [customer.teem,",
     "dispatch.request.group.from[0]: `teem` is not a ref field pointing at `team` of `customer`; "
     "did you mean `team`?"),
    ("from: [customer.team,", "from: [custome.team,",
     "dispatch.request.group.from[0]: `custome.team` is not a ref field of `request` then a ref field "
     "pointing at `team` of its target; did you mean `customer`?"),
    ("operator: {field: handler,", "operator: {field: title,",
     "dispatch.request.operator.field: `title` is not a user field of `request`"),
    ("strategy: round_robin}", "strategy: round_robin, transition: finish}",
     "dispatch.request.operator.transition: `finish` has no input `handler`"),
    ("strategy: round_robin}", "strategy: round_robin, transition: hand_out}",
     "dispatch.request.operator.transition: `hand_out` is not a transition of `request`; did you mean "
     "`hand_over`?"),
    ("strategy: round_robin}", "strategy: least_loaded, load: {stauts: new}}",
     "dispatch.request.operator.load.stauts: `stauts` is not a field"),
    ("index: [title, customer, product, team, handler, status]", "index: [title, customer, product, team, status]",
     "dispatch.request.operator.field: `handler` is not indexed"),
    ("strategy: round_robin}", "strategy: randomly}", "dispatch.request.operator.strategy"),
])
def test_dispatch_errors_are_located_with_a_suggestion(staffing_with, old, new, expected):
    if "is not indexed" in expected:
        new_text = (LEAST_LOADED, (old, new))
    else:
        new_text = ((old, new),)
    with pytest.raises(DefinitionErrors) as errors:
        staffing_with(*new_text)
    messages = [str(error) for error in errors.value.errors]
    assert any(expected in message for message in messages), messages
