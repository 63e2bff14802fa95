"""Merging a duplicate ticket into the one it repeats: every comment, work entry and file
moves there, both histories say so, the duplicate names the other and is cancelled, and its
requester is told in the other ticket's conversation."""
from __future__ import annotations

import pytest

from deskbase.objects.fields import Upload
from deskbase.rules.access.identity import Identity, create_account
from deskbase.rules.messages.outbox import list_messages
from deskbase.rules.process.workflows import TransitionRefused, fire

TINA = Identity("tina", "Tina", ("technician",))
PASSWORD = "correct horse battery"


@pytest.fixture
def helpdesk(app_store):
    with app_store() as store:
        create_account(store, "tina", name="Tina", password=PASSWORD, roles=["technician"], email="tina@desk.example")
        create_account(store, "kurt", name="Kurt", password=PASSWORD, roles=["technician"], email="kurt@desk.example")

        def setup(session):
            acme = session.create("organization", {"name": "Acme", "code": "ACME"}).id
            carl = session.create("contact", {"name": "Carl", "email": "carl@acme.example", "organization": acme}).id
            first = session.create("ticket", {"title": "Printer jammed", "organization": acme, "requester": carl})
            again = session.create("ticket", {"title": "The printer is jammed again", "organization": acme,
                                              "requester": carl,
                                              "attachments": [Upload("jam.jpg", b"\xff\xd8 photo", "image/jpeg")]})
            session.create("comment", {"ticket": first.id, "body": "Tray 2 it is."})
            for body in ("Still jammed.", "Paper stuck inside."):
                session.create("comment", {"ticket": again.id, "body": body, "author_kind": "customer"})
            session.create("work_entry", {"ticket": again.id, "performer": "tina", "duration": "10m",
                                          "description": "looked at it"})
            return first.number, again.number
        store.first, store.again = store.run(setup)
        yield store


def children(store, number: str) -> dict[str, list]:
    def work(session):
        ticket_id = session.find(number).id
        return {name: sorted(r.number for r in session.query(name, {"ticket": ticket_id}, limit=None).records)
                for name in ("comment", "work_entry")}
    return store.read(work)


def test_merging_moves_every_child_and_the_files_and_both_histories_say_so(helpdesk):
    moved = children(helpdesk, helpdesk.again)
    kept = children(helpdesk, helpdesk.first)
    helpdesk.run(lambda s: fire(s, helpdesk.again, "merge", {"into": helpdesk.first, "time_spent": "5m"}),
                 identity=TINA)
    now = children(helpdesk, helpdesk.first)
    assert now["comment"] == sorted(kept["comment"] + moved["comment"])
    merging = helpdesk.read(lambda s: [r.number for r in s.query("work_entry", limit=None).records
                                       if r.get("duration") == 5 * 60][0])
    assert now["work_entry"] == sorted(kept["work_entry"] + moved["work_entry"] + [merging])   # with the merge's time
    assert children(helpdesk, helpdesk.again) == {"comment": [], "work_entry": []}

    def read(session):
        first, again = session.find(helpdesk.first), session.find(helpdesk.again)
        comment = session.find(moved["comment"][0])
        return (first, again, [e.get("reason") for e in first.history.entries],
                [e.get("reason") for e in comment.history.entries])
    first, again, first_history, comment_history = helpdesk.read(read)
    assert again.get("status") == "cancelled" and again.get("merged_into") == first.id
    assert [item.filename for item in first.get("attachments")] == ["jam.jpg"]
    reason = f"{helpdesk.again} merged into {helpdesk.first}"
    assert f"{reason}: 4 records moved here" in first_history       # 2 comments, 2 work entries
    assert reason in comment_history


def test_the_duplicates_requester_is_told_in_the_other_tickets_conversation_not_of_a_cancellation(helpdesk):
    before = {m.id for m in helpdesk.read(lambda s: list_messages(s, limit=1000))}
    helpdesk.run(lambda s: fire(s, helpdesk.again, "merge", {"into": helpdesk.first, "time_spent": "5m"}),
                 identity=TINA)
    new = [m for m in helpdesk.read(lambda s: list_messages(s, limit=1000)) if m.id not in before]
    to_carl = [m for m in new if m.recipients == ("carl@acme.example",)]
    assert [(m.record, m.subject) for m in to_carl] == [(helpdesk.first, f"[{helpdesk.first}] Printer jammed")]
    assert f"Your request {helpdesk.again} (The printer is jammed again) is the same as ticket {helpdesk.first}" \
        in to_carl[0].body
    assert not [m for m in new if "Cancelled" in m.subject]


def test_a_ticket_is_not_merged_into_itself_nor_into_one_the_technician_may_not_read(helpdesk):
    with pytest.raises(Exception, match="cannot be merged into itself"):
        helpdesk.run(lambda s: fire(s, helpdesk.again, "merge", {"into": helpdesk.again, "time_spent": "5m"}),
                     identity=TINA)
    hidden = helpdesk.run(lambda s: s.create("ticket", {"title": "Kurt's", "organization": s.find(helpdesk.first)
                                                       .get("organization"), "status": "in_progress",
                                                       "assignee": "kurt"}).number)
    with pytest.raises(TransitionRefused) as refused:
        helpdesk.run(lambda s: fire(s, helpdesk.again, "merge", {"into": hidden, "time_spent": "5m"}), identity=TINA)
    assert refused.value.fields == {"into": f"there is no Ticket {hidden}"}
    assert helpdesk.read(lambda s: s.find(helpdesk.again).get("status")) == "awaiting_pickup"   # nothing changed
    assert children(helpdesk, helpdesk.again)["comment"] != []


def test_a_merge_naming_an_input_that_is_no_ref_is_located_with_a_suggestion(tmp_path):
    from shipped import refusal_of_changed
    refused = refusal_of_changed(tmp_path, "merge: {into: into, carry: [attachments, watchers, cc_contacts]}",
                                 "merge: {into: int, carry: [attachements, watchers, cc_contacts]}")
    found = {(error.path, error.message, error.hint) for error in refused.errors}
    assert found >= {      # (sections reading the workflow then name its transitions as missing)
        ("types.ticket.workflow.transitions.merge.merge.into",
         "`int` is not an input of the transition of kind ref to `ticket`", "did you mean `into`?"),
        ("types.ticket.workflow.transitions.merge.merge.carry[0]",
         "`attachements` is not a field of `ticket`", "did you mean `attachments`?")}


def test_in_the_web_a_merge_lands_on_the_ticket_merged_into_and_a_ticket_gone_from_view_on_home(helpdesk):
    from demo_web import sign_in
    from starlette.testclient import TestClient

    from deskbase.views.app import create_app
    other = helpdesk.run(lambda s: s.create("ticket", {"title": "Wrong department", "organization": s.find(
        helpdesk.first).get("organization")}).number)
    with TestClient(create_app(helpdesk), follow_redirects=False) as web:
        token = sign_in(web, "tina", PASSWORD)
        merged = web.post(f"/r/{helpdesk.again}/fire/merge",
                          data={"csrf": token, "into": helpdesk.first, "time_spent": "5m"})
        assert (merged.status_code, merged.headers["location"]) == (303, f"/r/{helpdesk.first}")
        assert web.get(merged.headers["location"]).status_code == 200
        rejected = web.post(f"/r/{other}/fire/reject", data={"csrf": token, "time_spent": "5m"})
        assert (rejected.status_code, rejected.headers["location"]) == (303, "/")     # no longer hers to read
