"""Approval chains: ordered and parallel steps, rejections, a price discussed, reminders and
expiry by the job, transitions held while pending, the history and the messages, and the
mistakes of the `approvals:` section located in the YAML."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.access.identity import Identity, create_account, identity_of
from deskbase.rules.access.scopes import AccessDenied
from deskbase.rules.application import load_application, open_store
from deskbase.rules.jobs.scheduled import ACTIONS
from deskbase.rules.messages.outbox import list_messages
from deskbase.rules.process.approvals import ApprovalRefused, chains_on, decide_approval, pending_for
from deskbase.rules.process.workflows import TransitionRefused, available_transitions, fire

APPROVALS_APP = Path(__file__).parent / "approvals_app"
PASSWORD = "correct horse battery"
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def definitions():
    return load_application(APPROVALS_APP)


@pytest.fixture
def desk(app_store, definitions):
    with app_store(definitions) as store:
        for login, role in (("ben", "buyer"), ("olga", "buyer"), ("hana", "head"), ("fred", "finance"),
                            ("fiona", "finance")):
            create_account(store, login, name=login.title(), password=PASSWORD, roles=[role],
                           email=f"{login}@buy.example")
        yield store


def who(store, login: str):
    return identity_of(store, login)


def new_purchase(store, amount, *, approver="hana", at=MONDAY) -> str:
    department = store.run(lambda s: s.create("department", {"name": "Workshop", "approver": approver}).id)
    values = {"title": "lathe", "department": department, "amount": amount}
    return store.run(lambda s: s.create("purchase", values).number, identity=who(store, "ben"), now=at)


def purchase(store, number: str) -> dict:
    return dict(store.read(lambda s: s.find(number).values))


def decide(store, login, number, decision, at=MONDAY, **options):
    return store.run(lambda s: decide_approval(s, number, decision, **options), identity=who(store, login), now=at)


def history(store, number: str) -> list[str]:
    return [entry.get("reason", "") for entry in store.read(lambda s: list(s.find(number).history.entries))]


def messages_to(store, address: str) -> list[str]:
    found = sorted(store.read(lambda s: list_messages(s, limit=1000)), key=lambda m: m.queued_at)
    return [m.subject for m in found if address in m.recipients]


def test_a_purchase_above_the_threshold_waits_for_its_department_head(desk):
    number = new_purchase(desk, "1200")
    assert purchase(desk, number)["approval"] == "pending"
    [waiting] = pending_for(desk, who(desk, "hana"))
    assert (waiting.number, waiting.chain, waiting.step) == (number, "spending", "head")
    assert pending_for(desk, who(desk, "fred")) == []


def test_a_purchase_below_the_threshold_needs_no_approval(desk):
    number = new_purchase(desk, "300")
    assert purchase(desk, number)["approval"] == "not_needed"
    assert pending_for(desk, who(desk, "hana")) == []


def test_raising_the_amount_above_the_threshold_starts_the_chain(desk):
    number = new_purchase(desk, "300")
    desk.run(lambda s: s.update(number, {"amount": "900"}), identity=who(desk, "ben"))
    assert purchase(desk, number)["approval"] == "pending"
    assert [p.number for p in pending_for(desk, who(desk, "hana"))] == [number]


def test_the_approver_of_a_step_is_told_when_it_starts(desk):
    number = new_purchase(desk, "1200")
    assert messages_to(desk, "hana@buy.example") == [f"[{number}] Approval requested: lathe"]
    decide(desk, "hana", number, "approve")
    assert messages_to(desk, "fred@buy.example") == [f"[{number}] Approval requested: lathe"]
    assert messages_to(desk, "fiona@buy.example") == [f"[{number}] Approval requested: lathe"]


def test_steps_follow_one_another_and_the_end_applies_the_effects(desk):
    number = new_purchase(desk, "1200")
    view = decide(desk, "hana", number, "approve")
    assert (view.state, view.step, view.awaiting) == ("pending", "finance", ("fiona", "fred"))
    assert pending_for(desk, who(desk, "hana")) == []
    assert [p.step for p in pending_for(desk, who(desk, "fred"))] == ["finance"]
    decide(desk, "fred", number, "approve")
    view = decide(desk, "fiona", number, "approve", at=MONDAY + timedelta(hours=2))
    assert view.state == "approved"
    values = purchase(desk, number)
    assert values["approval"] == "approved"
    assert values["status"] == "ordered"                      # on_approved fires `order`
    assert values["approved_on"] == MONDAY.date()


def test_a_step_in_mode_all_waits_for_every_approver(desk):
    number = new_purchase(desk, "1200")
    decide(desk, "hana", number, "approve")
    view = decide(desk, "fred", number, "approve")
    assert (view.state, view.awaiting) == ("pending", ("fiona",))
    assert pending_for(desk, who(desk, "fred")) == []
    assert [p.number for p in pending_for(desk, who(desk, "fiona"))] == [number]
    with pytest.raises(ApprovalRefused) as refused:
        decide(desk, "fred", number, "approve")
    assert str(refused.value) == f"you have approved step `finance` of {number} already; it awaits fiona"


def test_a_rejection_stops_the_chain_and_applies_on_rejected(desk):
    number = new_purchase(desk, "1200")
    view = decide(desk, "hana", number, "reject", comment="buy a used one")
    assert view.state == "rejected"
    values = purchase(desk, number)
    assert (values["approval"], values["status"]) == ("rejected", "refused")
    assert pending_for(desk, who(desk, "fred")) == [] and pending_for(desk, who(desk, "hana")) == []
    with pytest.raises(ApprovalRefused) as refused:
        decide(desk, "hana", number, "approve")
    assert str(refused.value) == f"the approval `spending` of {number} is over: it was rejected"


def test_a_person_who_is_not_an_approver_is_refused_with_a_sentence(desk):
    number = new_purchase(desk, "1200")
    with pytest.raises(ApprovalRefused) as refused:
        decide(desk, "fred", number, "approve")
    assert str(refused.value) == (f"you are not an approver of step `head` of the approval `spending` on {number}: "
                                  f"it awaits hana")
    assert purchase(desk, number)["approval"] == "pending"


def test_a_price_is_discussed_then_approved_at_the_agreed_price(desk):
    number = new_purchase(desk, "1200")
    decide(desk, "hana", number, "propose", price="950", comment="ask for the trade discount")
    view = decide(desk, "ben", number, "propose", price="1000", comment="best offer",   # the buyer answers
                  at=MONDAY + timedelta(hours=1))
    assert view.price == Decimal("1000")
    assert [(d["by"], d["decision"], d["price"]) for d in view.decisions] == [
        ("hana", "propose", Decimal("950")), ("ben", "propose", Decimal("1000"))]
    assert messages_to(desk, "hana@buy.example")[-1] == f"[{number}] New price proposed: lathe"
    decide(desk, "hana", number, "approve", price="1000")
    assert purchase(desk, number)["amount"] == Decimal("1000")
    assert "approval spending: step head approved by hana at 1000.00" in history(desk, number)


def test_someone_who_may_not_handle_the_record_takes_no_part_in_the_discussion(desk):
    number = new_purchase(desk, "1200")
    with pytest.raises(ApprovalRefused):
        decide(desk, "fred", number, "propose", price="900")
    with pytest.raises(ApprovalRefused) as refused:
        decide(desk, "hana", number, "propose")
    assert str(refused.value) == "a proposal needs a price"


def test_the_job_reminds_the_approvers_then_expires_the_chain(desk):
    number = new_purchase(desk, "1200")
    run = ACTIONS["approval_reminders"].run
    assert run(desk, MONDAY + timedelta(hours=23), {"batch": 200}, {}) == "0 reminded, 0 expired"
    assert run(desk, MONDAY + timedelta(days=1, minutes=1), {"batch": 200}, {}) == "1 reminded, 0 expired"
    assert messages_to(desk, "hana@buy.example")[-1] == f"[{number}] Reminder: approval awaited: lathe"
    assert run(desk, MONDAY + timedelta(days=2), {"batch": 200}, {}) == "0 reminded, 0 expired"   # once only
    assert run(desk, MONDAY + timedelta(days=5), {"batch": 200}, {}) == "0 reminded, 1 expired"
    assert purchase(desk, number)["approval"] == "expired"
    assert pending_for(desk, who(desk, "hana")) == []
    assert "approval spending: expired after 5d without a decision" in history(desk, number)


def test_a_blocked_transition_is_refused_while_the_chain_is_pending(desk):
    number = new_purchase(desk, "1200")
    ben = who(desk, "ben")
    with pytest.raises(TransitionRefused) as refused:
        desk.run(lambda s: fire(s, number, "order"), identity=ben)
    assert str(refused.value) == (f"`order` waits for the approval `spending` of {number}: awaiting approval by "
                                  f"hana (step head)")
    assert [name for name, _, _ in desk.read(lambda s: available_transitions(s, number), identity=ben)] == ["refuse"]
    cheap = new_purchase(desk, "100")
    desk.run(lambda s: fire(s, cheap, "order"), identity=ben)
    assert purchase(desk, cheap)["status"] == "ordered"


def test_the_history_shows_every_decision_with_who_made_it(desk):
    number = new_purchase(desk, "1200")
    decide(desk, "hana", number, "comment", comment="which model?")
    decide(desk, "hana", number, "approve", comment="fine")
    decide(desk, "fred", number, "approve")
    decide(desk, "fiona", number, "reject", comment="no budget left")
    reasons = [reason for reason in history(desk, number) if reason.startswith("approval")]
    assert reasons == ["approval spending: started",
                       "approval spending: hana comments: which model?",
                       "approval spending: step head approved by hana: fine",
                       "approval spending: step finance awaits fiona, fred",
                       "approval spending: step finance approved by fred; awaiting fiona",
                       "approval spending: rejected by fiona: no budget left"]
    entries = desk.read(lambda s: list(s.find(number).history.entries))
    rejected = next(e for e in entries if e.get("reason", "").startswith("approval spending: rejected"))
    assert rejected["by"] == "fiona" and rejected["changes"]["approval"] == ("pending", "rejected")
    [view] = desk.read(lambda s: chains_on(s, number))
    assert [(d["by"], d["decision"]) for d in view.decisions] == [
        ("hana", "comment"), ("hana", "approve"), ("fred", "approve"), ("fiona", "reject")]


def test_a_person_may_not_set_the_approval_field_by_hand(desk):
    number = new_purchase(desk, "1200")
    with pytest.raises(AccessDenied) as refused:
        desk.run(lambda s: s.update(number, {"approval": "approved"}), identity=who(desk, "ben"))
    assert "kept by its approval `spending`" in str(refused.value)
    desk.run(lambda s: s.update(number, {"approval": "pending", "title": "big lathe"}), identity=who(desk, "ben"))


def test_a_step_without_an_approver_waits_for_a_superuser(desk):
    number = new_purchase(desk, "1200", approver=None)
    assert "approval spending: step head has no approver; an administrator decides it" in history(desk, number)
    view = desk.run(lambda s: decide_approval(s, number, "approve"))        # the system, like an administrator
    assert (view.state, view.step) == ("pending", "finance")


def test_a_deputy_decides_for_an_absent_approver(desk):
    create_account(desk, "dave", name="Dave", password=PASSWORD, roles=["head"], email="dave@buy.example")
    desk.run(lambda s: s.create("leave", {"who": "hana", "stand_in": "dave", "first_day": "2026-03-01",
                                          "last_day": "2026-03-06"}))
    number = new_purchase(desk, "1200")
    assert messages_to(desk, "dave@buy.example") == [f"[{number}] Approval requested: lathe"]
    dave = Identity("dave", "Dave", ("head",), acting_for=("hana",))    # as signing in during the leave gives
    [waiting] = pending_for(desk, dave)
    assert (waiting.number, waiting.approver) == (number, "hana")
    view = desk.run(lambda s: decide_approval(s, number, "approve"), identity=dave, now=MONDAY)
    assert view.step == "finance"
    assert "approval spending: step head approved by dave for hana" in history(desk, number)


def test_the_command_line_lists_and_decides(desk, definitions, tmp_path, capsys):
    from deskbase.cli import main
    uri = f"file://{tmp_path}/Data.fs?blobstorage_dir={tmp_path}/blobs"
    store = open_store(uri, definitions)
    create_account(store, "hana", name="Hana", password=PASSWORD, roles=["head"], email="hana@buy.example")
    create_account(store, "ben", name="Ben", password=PASSWORD, roles=["buyer"], email="ben@buy.example")
    number = new_purchase(store, "1200")
    store.close()
    options = ["--definitions", str(APPROVALS_APP), "--db", uri]
    assert main(["approvals", "list", "--as", "hana", *options]) == 0
    assert number in capsys.readouterr().out
    assert main(["approvals", "approve", number, "--as", "ben", *options]) == 1
    assert "you are not an approver" in capsys.readouterr().err
    assert main(["approvals", "approve", number, "--as", "hana", "--comment", "ok", *options]) == 0
    assert capsys.readouterr().out.strip() == (f"{number}: Spending above 500 is pending, awaiting an administrator "
                                               f"(step finance)")


def write_app(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "approvals"
    shutil.copytree(APPROVALS_APP, folder)
    path = folder / "approvals.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return folder


@pytest.mark.parametrize("old, new, message, line", [
    ("    type: purchase\n", "    type: purchse\n", "`purchse` is not a type", 52),
    ("{path: department.approver}", "{path: department.aprover}", "`aprover` is not a user field of `department`", 55),
    ("{roles: [finance]}", "{roles: [finances]}", "role `finances` is not defined", 56),
    ("quote: amount", "quote: title", "`title` is not a number or money field", 57),
    ("state_field: approval", "state_field: status", "the enum `status` lacks the values pending, approved, "
                                                     "rejected, expired", 60),
    ("on_rejected: {transition: refuse}", "on_rejected: {transition: refuze}", "`refuze` is not a transition", 62),
    ("blocks: [order]", "blocks: [ordr]", "`ordr` is not a transition of `purchase`", 63),
    ("on_approved: {set: {approved_on: $today}", "on_approved: {set: {aproved_on: $today}",
     "`aproved_on` is not a field of type `purchase`", 61),
    ("remind_after: 1d", "remind_after: soon", "`soon` is not a duration", 58),
])
def test_a_mistake_in_an_approval_chain_is_located(tmp_path, old, new, message, line):
    with pytest.raises(DefinitionErrors) as raised:
        load_application(write_app(tmp_path, old, new))
    errors = raised.value.errors
    assert len(errors) == 1, errors
    assert message in errors[0].message
    assert errors[0].file.endswith("approvals.yaml")
    assert errors[0].line == line
