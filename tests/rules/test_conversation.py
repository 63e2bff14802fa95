"""Conversations: a notification rule reaches people along paths of refs of any depth and
the members of a group, and its messages join the conversation of the record a ref points
at (`thread:`), so that a reply to any of them comes back to that record."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deskbase.objects.errors import DefinitionErrors
from deskbase.objects.fields import Upload
from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.application import load_application
from deskbase.rules.messages.outbox import find_by_message_id, list_messages, record_thread

CONVERSATION_APP = Path(__file__).parent / "conversation_app"
ANA = Identity("ana", "Ana", ("agent",))
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def definitions():
    return load_application(CONVERSATION_APP)


@pytest.fixture
def desk(app_store, definitions):
    with app_store(definitions) as store:
        first, second = store.run(lambda s: (s.create("team", {"name": "Front"}).id,
                                             s.create("team", {"name": "Back"}).id))
        create_account(store, "ana", name="Ana", password=PASSWORD, roles=["agent"], groups=[first],
                       email="ana@cases.example.org")
        create_account(store, "bo", name="Bo", password=PASSWORD, roles=["agent"], groups=[first],
                       email="bo@cases.example.org")
        create_account(store, "cy", name="Cy", password=PASSWORD, roles=["agent"], groups=[second],
                       email="cy@cases.example.org")
        store.teams = (first, second)
        yield store


def open_case(desk) -> str:
    def work(session):
        carla = session.create("customer", {"name": "Carla", "email": "carla@example.com"})
        walt = session.create("customer", {"name": "Walt", "email": "walt@example.com"})
        wendy = session.create("customer", {"name": "Wendy", "email": "wendy@example.com"})
        return session.create("case", {"title": "Broken lock", "customer": carla.id, "watchers": [walt.id, wendy.id],
                                       "team": desk.teams[0], "owner": "ana"}).number
    return desk.run(work)


def write_note(desk, case: str, body: str, **values) -> str:
    def work(session):
        return session.create("note", {"case": session.find(case).id, "body": body, **values}).number
    return desk.run(work, identity=ANA)


def messages(desk):
    return desk.read(lambda session: sorted(list_messages(session, limit=1000), key=lambda m: m.queued_at))


def test_a_public_note_reaches_the_customer_the_watchers_and_the_team_in_the_case_conversation(desk):
    case = open_case(desk)
    [opened] = messages(desk)                      # the customer was told the case is open
    note = write_note(desk, case, "The locksmith comes on Monday.",
                      files=[Upload("quote.pdf", b"%PDF-1.4 quote", "application/pdf")])
    told = [m for m in messages(desk) if m.id != opened.id]
    assert sorted(m.recipients[0] for m in told) == ["bo@cases.example.org", "carla@example.com",
                                                    "walt@example.com", "wendy@example.com"]
    for message in told:                           # not Ana, who wrote it; not Cy, of another team
        assert message.subject == f"[{case}] Note on Broken lock"
        assert "The locksmith comes on Monday." in message.body and f"/r/{case}" in message.body
        assert message.record == case              # the case's conversation, not the note's
        assert message.thread[0] == opened.message_id
        assert message.attachments == ((note, "files"),)


def test_a_reply_to_a_note_message_comes_back_to_the_case(desk):
    case = open_case(desk)
    write_note(desk, case, "Which door?")
    def work(session):
        sent = [m for m in list_messages(session, limit=1000) if "Which door?" in m.body]
        return [find_by_message_id(session, m.message_id).record for m in sent], record_thread(session, case)
    found, thread = desk.read(work)
    assert found and set(found) == {case}
    assert len(thread) == 1 + len(found)           # the opening message, then each note's


def test_an_internal_note_reaches_nobody(desk):
    case = open_case(desk)
    before = len(messages(desk))
    write_note(desk, case, "The customer was rude on the phone.", visibility="internal")
    assert len(messages(desk)) == before


def test_the_members_of_the_group_are_read_when_the_note_is_written(desk):
    case = open_case(desk)
    desk.run(lambda session: session.update(case, {"team": desk.teams[1], "watchers": []}))
    write_note(desk, case, "Handed to the back office.")
    told = {m.recipients[0] for m in messages(desk) if "Handed to the back office." in m.body}
    assert told == {"carla@example.com", "cy@cases.example.org"}


def test_an_urgent_note_reaches_the_owner_and_the_team_only_when_nobody_owns_the_case(desk):
    case = open_case(desk)

    def urgent(body: str, login: str) -> set[str]:
        desk.run(lambda session: session.create("note", {"case": session.find(case).id, "body": body,
                                                         "visibility": "internal", "urgent": True}),
                 identity=Identity(login, login.title(), ("agent",)))
        return {m.recipients[0] for m in messages(desk) if m.subject.endswith("Urgent: Broken lock")
                and m.body == body}
    assert urgent("The door is open to the street.", "cy") == {"ana@cases.example.org"}
    desk.run(lambda session: session.update(case, {"owner": None}))
    assert urgent("Still open.", "cy") == {"ana@cases.example.org", "bo@cases.example.org"}   # Front's members


def _problems(tmp_path: Path, old: str, new: str) -> list:
    folder = tmp_path / "app"
    shutil.copytree(CONVERSATION_APP, folder)
    path = folder / "conversation.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))     # the first place it is written
    with pytest.raises(DefinitionErrors) as refused:
        load_application(folder)
    return [(error.line, error.message, error.hint) for error in refused.value.errors]


def _line(text: str) -> int:
    return next(number for number, line in enumerate((CONVERSATION_APP / "conversation.yaml").read_text()
                                                     .splitlines(), 1) if text in line)


@pytest.mark.parametrize("old, new, message, hint", [
    ("{path: case.customer.email}", "{path: case.custmer.email}",
     "`case` leads to `case`, where `custmer` is not a ref field of `case` to go on from", "customer"),
    ("{path: case.customer.email}", "{path: case.customer.mail}",
     "`case.customer` leads to `customer`, where `mail` is not a user or address field of `customer`", "email"),
    ("{members: case.team}", "{members: case.owner}",
     "`case` leads to `case`, where `owner` is not a ref to a group (`team`) of `case`", ""),
    ("    thread: case\n    attach", "    thread: cse\n    attach", "`cse` is not a ref field of `note` pointing at one record",
     "case"),

])
def test_a_mistaken_recipient_or_thread_is_located_with_a_suggestion(tmp_path, old, new, message, hint):
    [(line, said, suggested)] = _problems(tmp_path, old, new)
    assert line == _line(old.split("\n")[0])
    assert said == message and hint in (suggested or "")


def test_a_template_reading_the_parent_of_a_rule_without_a_thread_is_refused(tmp_path):
    found = _problems(tmp_path, "    thread: case\n    attach", "    attach")
    said = "the template reads `parent`, the record of the conversation: only a rule with `thread:` has one"
    hint = "add `thread: <a ref field>` to the rule"
    # The rule's templates, one line higher than in the shipped file, whose `thread:` line is gone.
    assert found == [(_line('subject: "Note on {{ parent.title }}"') - 1, said, hint),
                     (_line('body: "{{ record.body }}\\n\\n{{ parent.number }}') - 1, said, hint)]


def test_each_account_of_a_users_field_is_told_if_it_may_read_the_note_and_its_case(desk):
    case = open_case(desk)
    create_account(desk, "max", name="Max", password=PASSWORD, roles=["guest"], email="max@cases.example.org")
    create_account(desk, "flo", name="Flo", password=PASSWORD, roles=["manager"], email="flo@cases.example.org")
    create_account(desk, "mo", name="Mo", password=PASSWORD, roles=["manager"], email="mo@cases.example.org")
    desk.run(lambda session: session.update(case, {"team": desk.teams[1], "watchers": [], "owner": "flo",
                                                   "followers": ["max", "flo", "mo", "cy", "nobody"]}))
    write_note(desk, case, "The lock is ordered.")
    told = sorted(m.recipients[0] for m in messages(desk) if "The lock is ordered." in m.body)
    # Max, a guest, reads cases but not their notes: he is not told what a note says. Mo, a
    # manager, reads every note but only the cases he owns: the message, in the case's
    # conversation, shows the case, so he is not told either. Flo owns it; Cy is told once,
    # though both a follower and of the team; no account, no one.
    assert told == ["carla@example.com", "cy@cases.example.org", "flo@cases.example.org"]
