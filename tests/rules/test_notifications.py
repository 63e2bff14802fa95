"""Notification rules: messages queued in the transaction of the change, one per recipient,
threaded by record, never to the actor; definitions errors located in the YAML."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.application import load_application
from deskbase.rules.messages.outbox import list_messages
from deskbase.rules.process.workflows import fire

NOTIFYING_APP = Path(__file__).parent / "notifying_app"
MARC = Identity("marc", "Marc", ("mechanic",))
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def definitions():
    return load_application(NOTIFYING_APP)


@pytest.fixture
def shop(app_store, definitions):
    with app_store(definitions) as store:
        create_account(store, "marc", name="Marc", password=PASSWORD, roles=["mechanic"], email="marc@shop.example.org")
        create_account(store, "nina", name="Nina", password=PASSWORD, roles=["mechanic"], email="nina@shop.example.org",
                       language="fr")
        create_account(store, "mona", name="Mona", password=PASSWORD, roles=["manager"], email="mona@shop.example.org")
        create_account(store, "theo", name="Theo", password=PASSWORD, roles=["trainee"], email="theo@shop.example.org")
        yield store


def new_repair(shop, **values) -> str:
    def work(session):
        customer = session.create("customer", {"name": "Carla", "email": "carla@example.com"})
        return session.create("repair", {"title": "bike", "customer": customer.id, **values}).number
    return shop.run(work)


def messages(shop, **options):
    """The outbox, oldest first, as plain tuples of what the tests look at."""
    def work(session):
        # Ids within one millisecond are not ordered; the transaction's time and the thread are.
        found = sorted(list_messages(session, limit=1000, **options), key=lambda m: (m.queued_at, len(m.thread)))
        return [(m.recipients[0], m.subject, m.body, m.record, m.message_id, m.thread) for m in found]
    return shop.read(work)


def to(shop, address: str):
    return [m for m in messages(shop) if m[0] == address]


def test_a_transition_queues_one_message_per_recipient_with_the_number_and_the_link(shop):
    number = new_repair(shop, assignee="nina")
    before = len(messages(shop))
    shop.run(lambda s: fire(s, number, "start"), identity=MARC)
    queued = messages(shop)[before:]
    assert sorted(m[0] for m in queued) == ["carla@example.com", "nina@shop.example.org"]
    for recipient, subject, body, record, message_id, _ in queued:
        assert number in subject
        assert f"https://shop.example.org/r/{number}" in body
        assert record == number
        assert message_id.endswith("@shop.example.org>")


def test_each_recipient_reads_the_message_in_their_language(shop):
    number = new_repair(shop, assignee="nina")
    shop.run(lambda s: fire(s, number, "start"), identity=MARC)
    assert to(shop, "nina@shop.example.org")[-1][1] == f"[{number}] bike : Ouverte"
    assert to(shop, "carla@example.com")[-1][1] == f"[{number}] bike is Open"


def test_creating_a_record_notifies_its_parties_and_the_users_with_the_role(shop):
    number = new_repair(shop, assignee="nina")
    assert [m[1] for m in to(shop, "mona@shop.example.org")] == [f"New repair {number}"]
    assert len(to(shop, "carla@example.com")) == 1


def test_nobody_hears_of_a_record_their_access_rules_do_not_let_them_read(shop):
    new_repair(shop, assignee="nina")
    assert to(shop, "theo@shop.example.org") == []           # a trainee reads only their own repairs
    number = new_repair(shop, assignee="theo")
    assert f"New repair {number}" in [m[1] for m in to(shop, "theo@shop.example.org")]


def test_a_rolled_back_change_queues_nothing(shop):
    number = new_repair(shop, assignee="nina")
    before = len(messages(shop))

    def work(session):
        fire(session, number, "start")
        raise RuntimeError("the request failed after the transition")
    with pytest.raises(RuntimeError):
        shop.run(work, identity=MARC)
    assert len(messages(shop)) == before


def test_the_actor_is_not_notified_of_their_own_change(shop):
    number = new_repair(shop, assignee="marc")
    before = len(messages(shop))
    shop.run(lambda s: fire(s, number, "start"), identity=MARC)
    assert [m[0] for m in messages(shop)[before:]] == ["carla@example.com"]


def test_a_change_outside_the_rule_filter_or_events_queues_nothing(shop):
    number = new_repair(shop, assignee="nina")
    before = len(messages(shop))
    shop.run(lambda s: s.update(number, {"title": "red bike"}))          # an update, not a transition
    shop.run(lambda s: fire(s, number, "drop"), identity=MARC)          # `when` leaves dropped repairs out
    assert len(messages(shop)) == before


def test_a_second_message_about_a_record_threads_on_the_first(shop):
    number = new_repair(shop, assignee="nina")
    shop.run(lambda s: fire(s, number, "start"), identity=MARC)
    first, second = to(shop, "carla@example.com")
    assert first[4] in second[5]
    about = [m for m in messages(shop) if m[3] == number]
    assert about[0][5] == ()                     # the first message about a record starts its thread
    for position, message in enumerate(about):   # each later one refers to all before it
        assert message[5] == tuple(m[4] for m in about[:position])


def write_app(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "app"
    shutil.copytree(NOTIFYING_APP, folder)
    path = folder / "notifying.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return folder


@pytest.mark.parametrize("old, new, message, line", [
    ("on: {type: repair, events: [create, transition]}", "on: {type: repare, events: [create, transition]}",
     "`repare` is not a type", 51),
    ("- {field: assignee}", "- {field: asignee}", "`asignee` is not a field of type `repair`", 54),
    ("- {path: customer.email}", "- {path: customer.mail}", "`mail` is not a user or address field", 55),
    ("{users: {roles: [manager, trainee]}}", "{users: {roles: [boss, trainee]}}", "role `boss` is not defined", 66),
    ("channel: email", "channel: pigeon", "`pigeon` is not a channel", 56),
    ("is {{ record.status_label }}\"", "is {{ record.status_label \"", "the template does not read", 58),
    ("when: {status: {ne: dropped}}", "when: {state: {ne: dropped}}", "`state`", 52),
])
def test_a_mistake_in_a_notification_rule_is_located(tmp_path, old, new, message, line):
    with pytest.raises(DefinitionErrors) as raised:
        load_application(write_app(tmp_path, old, new))
    errors = raised.value.errors
    assert len(errors) == 1, errors
    assert message in errors[0].message
    assert errors[0].line == line
    assert errors[0].file.endswith("notifying.yaml")


def test_what_each_rule_decided_is_kept_with_the_change_and_only_for_the_last_changes(shop):
    from deskbase.rules.messages.notifications import NOTIFIED_KEPT, decisions_of
    number = new_repair(shop, assignee="nina")

    def decided(session):
        return decisions_of(session, session.find(number))
    created = {outcome.rule: outcome for outcome in shop.read(decided)[-1].outcomes}
    assert [who for who, _ in created["repair_status"].told] == ["nina", "carla@example.com"]
    # theo, a trainee, reads only the repairs assigned to him: the rule that names his role passed him over
    assert [who for who, _ in created["new_repair"].told] == ["mona"]
    assert created["new_repair"].passed[0][0] == "theo"
    assert created["new_repair"].passed[0][1].startswith("may not read: the role trainee may read only")

    shop.run(lambda s: fire(s, number, "drop"), identity=MARC)
    dropped = shop.read(decided)[-1]
    assert dropped.event == "transition" and dropped.version == 2
    outcomes = {outcome.rule: outcome for outcome in dropped.outcomes}
    assert outcomes["repair_status"].outcome == "condition false"
    assert outcomes["repair_status"].conditions == (("status.ne", "status", "not eq", (3,), "dropped"),)
    assert outcomes["new_repair"].outcome == "not heard"

    for title in range(NOTIFIED_KEPT + 2):
        shop.run(lambda s, t=title: s.update(number, {"title": f"bike {t}"}), identity=MARC)
    kept = shop.read(decided)
    assert len(kept) == NOTIFIED_KEPT and kept[-1].version == NOTIFIED_KEPT + 4


def test_the_actor_is_passed_over_as_the_author_of_the_change(shop):
    from deskbase.rules.messages.notifications import decisions_of
    number = new_repair(shop, assignee="marc")
    shop.run(lambda s: fire(s, number, "start"), identity=MARC)
    started = shop.read(lambda s: decisions_of(s, s.find(number)))[-1]
    status = next(outcome for outcome in started.outcomes if outcome.rule == "repair_status")
    assert ("marc", "author") in status.passed and [who for who, _ in status.told] == ["carla@example.com"]
