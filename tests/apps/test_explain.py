"""`deskbase explain` on the helpdesk's demo, as a consultant asks it: why a customer reads her
organization's ticket and not another's, why a technician may not change a ticket someone
else took, which SLA policy counts a ticket's time and when its clock paused for the
customer, and which notification rule told whom on the last changes and why someone was not
told — every answer from the engine's own evaluation; and the same on a record's page, in a
panel only the administrator has."""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

import pytest
from demo_web import sign_in
from starlette.testclient import TestClient

from deskbase.rules.access.identity import identity_of, update_account
from deskbase.rules.process.workflows import fire
from deskbase.views.app import create_app
from deskbase.views.explaining import as_text, explain

MONDAY = datetime(2027, 3, 1, 8, 0, tzinfo=timezone.utc)      # 09:00 in Paris, office hours
LATER = MONDAY + timedelta(hours=5)


@pytest.fixture(scope="module")
def desk(app_store):
    """The demo, with a ticket Jean Dupont (a power user of Transports Chabrier) opened for
    Nathalie Girard under the extended contract, watched by Claire Martin (a supervisor) and
    Karim Haddad (a technician); Sophie Bernard takes it, asks the customer, and resumes
    once answered."""
    with app_store(demo=True) as store:
        for login in ("sbernard", "khaddad", "cmartin"):
            update_account(store, login, email=f"{login}@desk.example")
        jean = identity_of(store, "jdupont")

        def open_ticket(session):
            return session.create("ticket", {
                "kind": "incident", "title": "The scanner jams", "description": "Every second page jams.",
                "criticality": "medium", "impact": "one_person", "organization": jean.organization,
                "requester": "Nathalie Girard", "contract": "Infogérance du siège et des entrepôts"}).number
        number = store.run(open_ticket, identity=jean, now=MONDAY)
        store.run(lambda s: s.update(number, {"watchers": ["cmartin", "khaddad"]}), now=MONDAY + timedelta(minutes=5))
        sophie = identity_of(store, "sbernard")
        steps = [("take", {"time_spent": "10m"}, timedelta(minutes=20)),
                 ("ask_customer", {"time_spent": "5m", "question": "Which tray jams?"}, timedelta(hours=1)),
                 ("resume", {"time_spent": "5m"}, timedelta(hours=3))]
        for transition, inputs, after in steps:
            store.run(lambda s, t=transition, i=inputs: fire(s, number, t, i), identity=sophie, now=MONDAY + after)
        store.ticket = number
        yield store


def said(store, number: str, login: str, **options) -> str:
    return as_text(explain(store, number, login, now=LATER, **options))


def other_organizations_ticket(store) -> str:
    nathalie = identity_of(store, "ngirard")
    return store.read(lambda s: s.query("ticket", {"organization": {"ne": nathalie.organization}},
                                        "id", limit=1).records[0].number)


def test_a_customer_may_read_her_organizations_ticket_and_not_another(desk):
    own = said(desk, desk.ticket, "ngirard")
    assert f"ngirard (Nathalie Girard; roles: customer_user) may read {desk.ticket}." in own
    assert "role customer_user: read scope `{organization: $me.organization}` holds" in own
    assert "`organization: $me.organization` holds: organization is Transports Chabrier SA" in own
    assert f"ngirard may not update {desk.ticket}." in own
    assert "role customer_user may not update Ticket records at all" in own
    assert "Fields hidden from them: " in own and "internal_notes" in own

    other = other_organizations_ticket(desk)
    theirs = said(desk, other, "ngirard")
    assert f"may not read {other}." in theirs
    assert "role customer_user: read scope `{organization: $me.organization}` fails" in theirs
    assert "not Transports Chabrier SA" in theirs


def test_a_technician_may_not_update_a_ticket_another_technician_took(desk):
    text = said(desk, desk.ticket, "khaddad")
    assert f"khaddad may not update {desk.ticket}." in text
    assert "role technician: update scope `{any: [{status: [awaiting_pickup, unassigned]}, {assignee: $me}, " \
           "{assignee: $me.acting_for}]}` fails" in text
    assert "`status: [awaiting_pickup, unassigned]` fails: status is in_progress, not awaiting_pickup or " \
           "unassigned" in text
    assert "`assignee: $me` fails: assignee is sbernard, not khaddad" in text
    # and what the workflow then says of each transition, from its own refusals
    assert "take (Take): `take` cannot be fired while the Ticket" in text
    assert "cancel (Cancel): your roles (technician) may not fire `cancel`" in text

    hers = said(desk, desk.ticket, "sbernard")
    assert f"sbernard may update {desk.ticket}." in hers
    assert "`assignee: $me` holds: assignee is sbernard" in hers
    assert "Transitions they may fire now: release (Release), ask_customer (Ask the customer), resolve (Resolve)" in hers


def test_the_sla_policy_of_a_ticket_and_its_clock_paused_while_waiting_for_the_customer(desk):
    text = said(desk, desk.ticket, "cmartin")
    assert "policy extended_urgent does not apply" in text
    assert "`priority: [urgent, very_high]` fails: priority is medium, not urgent or very_high" in text
    assert "its contract Infogérance du siège et des entrepôts must match `{sla_level: extended}`:" in text
    assert "`sla_level: extended` holds: sla_level is extended" in text
    assert "So the policy extended applies: First response 1h, Resolution 16h, Next update 4h." in text
    assert "policy standard applies" not in text          # the first policy that applies is the one
    resolution = text[text.index("Resolution: running"):text.index("Next update: ")]
    # 09:00–10:00, then 12:00 to now (14:00): the two hours waiting for the customer do not count
    assert "3h counted of 16h" in resolution
    assert "it pauses while `{any: [{status: awaiting_reply}, {approval: pending}]}`: this does not hold now" \
        in resolution
    assert "2027-03-01 09:00 ran (0m counted then)" in resolution
    assert "2027-03-01 10:00 paused (1h counted then)" in resolution
    assert "2027-03-01 12:00 ran (1h counted then)" in resolution


def test_which_rule_told_whom_on_the_last_changes_and_why_someone_was_not_told(desk):
    text = said(desk, desk.ticket, "cmartin", changes=3)
    take = text[text.index("transition take"):text.index("transition ask_customer")]
    told = [line for line in take.splitlines() if "rule ticket_status_staff told" in line]
    assert told and "cmartin (message " in told[0] and "sbernard" not in told[0] and "khaddad" not in told[0]
    assert "rule ticket_status_staff did not tell sbernard: they made the change" in take
    assert "rule ticket_status_staff did not tell khaddad: they may not read it: the role technician may read " \
           "only Ticket records" in take
    assert "rule ticket_status told nathalie.girard@chabrier-transports.fr (message " in take
    asked = text[text.index("transition ask_customer"):text.index("transition resume")]
    assert "rule ticket_status did not run: its condition `{status: {ne: awaiting_reply}, merged_into: null}` " \
           "fails" in asked
    assert "`status: {ne: awaiting_reply}` fails: status is awaiting_reply" in asked
    assert "not listening to transition: new_ticket" in asked
    assert "by demo: created" not in text                  # the last three changes only


def test_a_change_made_without_notifications_says_nothing_was_kept(desk):
    demo_ticket = desk.read(lambda s: s.query("ticket", None, "id", limit=1).records[0].number)
    text = said(desk, demo_ticket, "cmartin", changes=1)
    assert "no decision of the notification rules is kept for this change" in text


# -- the administrator's panel on a record's page ----------------------------------------------

ADMIN_PASSWORD = "demo-admin-2026"


def page_text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_the_administrator_asks_the_record_page_why_and_is_answered_in_place(desk):
    with TestClient(create_app(desk), follow_redirects=False) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        page = admin.get(f"/r/{desk.ticket}").text
        assert 'class="explain-panel"' in page and f'hx-get="/r/{desk.ticket}/explain"' in page
        assert '<option value="khaddad">Karim Haddad</option>' in page
        answer = admin.get(f"/r/{desk.ticket}/explain", params={"login": "khaddad"}, headers={"HX-Request": "true"})
        assert answer.status_code == 200 and "<html" not in answer.text           # a fragment, for htmx
        said_there = page_text(answer.text)
        assert f"khaddad may not update {desk.ticket}." in said_there
        assert "<code>assignee: $me</code> fails: assignee is sbernard, not khaddad" in answer.text   # quoted as code
        assert "So the policy extended applies" in said_there
        assert "rule ticket_status_staff did not tell khaddad: they may not read it" in said_there
        whole = admin.get(f"/r/{desk.ticket}/explain", params={"login": "ngirard"})     # without scripts: a page
        assert whole.status_code == 200 and "<html" in whole.text and "may read" in page_text(whole.text)


def test_the_panel_says_in_a_sentence_what_it_cannot_explain(desk):
    with TestClient(create_app(desk), follow_redirects=False) as admin:
        sign_in(admin, "admin", ADMIN_PASSWORD)
        nobody = admin.get(f"/r/{desk.ticket}/explain", params={"login": "nobody"}, headers={"HX-Request": "true"})
        assert nobody.status_code == 404 and "there is no account `nobody`" in page_text(nobody.text)
        missing = admin.get(f"/r/{desk.ticket}/explain", headers={"HX-Request": "true"})
        assert missing.status_code == 400 and "Give the login of the account to explain." in missing.text
        unknown = admin.get("/r/T-999999/explain", params={"login": "sbernard"}, headers={"HX-Request": "true"})
        assert unknown.status_code == 404 and "there is no record numbered `T-999999`" in page_text(unknown.text)
        hostile = admin.get(f"/r/{desk.ticket}/explain", params={"login": "<script>alert(1)</script>"},
                            headers={"HX-Request": "true"})
        assert hostile.status_code == 404 and "<script>" not in hostile.text


@pytest.mark.parametrize("login", ["sbernard", "ngirard"])
def test_to_a_technician_or_a_customer_the_panel_and_its_address_do_not_exist(desk, login):
    with TestClient(create_app(desk), follow_redirects=False) as client:
        sign_in(client, login)
        page = client.get(f"/r/{desk.ticket}")
        assert page.status_code == 200 and "explain-panel" not in page.text and "/explain" not in page.text
        asked = client.get(f"/r/{desk.ticket}/explain", params={"login": "khaddad"}, headers={"HX-Request": "true"})
        assert asked.status_code == 404 and "may not update" not in asked.text
