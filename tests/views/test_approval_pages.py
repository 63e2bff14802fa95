"""Approvals in the web interface (P7): what awaits a person is on their home page; on the
record's page an approver approves, rejects or proposes a price, others only comment, and a
decision they may not take is refused with its reason."""
from __future__ import annotations

import html
import re

import pytest
from starlette.testclient import TestClient

from deskbase.views.app import create_app

from .test_web import csrf_of, sign_in


@pytest.fixture
def client(demo_store):
    with TestClient(create_app(demo_store), follow_redirects=False) as test_client:
        yield test_client


def pending_report(store) -> str:
    return store.read(lambda s: s.query("activity_report", {"approval": "pending"}, "id", limit=1).records[0].number)


def test_a_supervisor_finds_the_reports_awaiting_them_and_approving_validates_one(client, demo_store):
    sign_in(client, "cmartin", "demo-password")
    number = pending_report(demo_store)
    home = client.get("/").text
    awaiting = home[home.index('class="awaiting"'):]
    assert f'href="/r/{number}"' in awaiting and "Activity report to validate" in awaiting
    page = client.get(f"/r/{number}").text
    assert f'action="/r/{number}/approval/report_validation"' in page and 'value="approve"' in page
    done = client.post(f"/r/{number}/approval/report_validation", data={"csrf": csrf_of(page), "decision": "approve",
                                                                        "comment": "Checked against the tickets."})
    assert done.status_code == 303
    report = demo_store.read(lambda s: dict(s.find(number).values))
    assert (report["approval"], report["status"]) == ("approved", "validated")
    after = client.get(f"/r/{number}").text
    assert "Checked against the tickets." in after and 'value="approve"' not in after


def test_the_customers_approver_proposes_another_price_from_the_portal(client, demo_store):
    number = demo_store.read(lambda s: s.query("ticket", {"approval": "pending"}, limit=1).records[0].number)
    sign_in(client, "jdupont", "demo-password")
    page = client.get(f"/r/{number}").text
    assert 'name="price"' in page and 'value="reject"' in page
    client.post(f"/r/{number}/approval/costly_request", data={"csrf": csrf_of(page), "decision": "propose",
                                                              "price": "1500", "comment": "Two printers only."})
    shown = html.unescape(client.get(f"/r/{number}").text)
    assert re.search(r"jdupont</strong> propose 1500(\.00)?: Two printers only\.", shown)


def test_someone_who_is_not_awaited_may_comment_but_not_decide(client, demo_store):
    number = demo_store.read(lambda s: s.query("ticket", {"approval": "pending"}, limit=1).records[0].number)
    sign_in(client, "cmartin", "demo-password")            # a supervisor handles the ticket, the customer approves
    page = client.get(f"/r/{number}").text
    assert 'value="comment"' in page and 'value="approve"' not in page
    refused = client.post(f"/r/{number}/approval/costly_request", data={"csrf": csrf_of(page), "decision": "approve"})
    assert refused.status_code == 422 and "you are not an approver" in html.unescape(refused.text)
    assert demo_store.read(lambda s: s.find(number)["approval"]) == "pending"


def test_a_pending_report_is_validated_only_through_its_approval(client, demo_store):
    sign_in(client, "cmartin", "demo-password")
    number = pending_report(demo_store)
    page = client.get(f"/r/{number}").text
    assert f"/r/{number}/inline/approval" not in page and f"/r/{number}/inline/status" not in page
    refused = client.post(f"/r/{number}/fire/validate", data={"csrf": csrf_of(page)})
    assert refused.status_code == 422 and "waits for the approval" in html.unescape(refused.text)
    assert demo_store.read(lambda s: s.find(number)["status"]) == "draft"
