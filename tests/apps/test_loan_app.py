"""The equipment-loan desk: a second application written in YAML alone, run by the same
engine as the helpdesk: the proof that the engine knows nothing of helpdesks."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from deskbase.objects.definitions import load_definitions
from deskbase.objects.errors import StaleEdit, ValidationError
from deskbase.objects.store import Store

LOAN_APP = Path(__file__).parent / "loan" / "definitions"


def today() -> date:
    """The engine's today: `$today` and `today` are taken from the session's UTC clock."""
    return datetime.now(timezone.utc).date()


@pytest.fixture(scope="module")
def loan_definitions():
    return load_definitions(LOAN_APP)


@pytest.fixture
def desk(loan_definitions):
    """A store with three items, two borrowers and three loans."""
    store = Store.open("memory://", loan_definitions)
    day = today()

    def stock(s):
        laptop = s.create("item", {"name": "ThinkPad X1 Carbon", "inventory_code": "NB-0012", "kind": "laptop",
                                   "value": "32 990"})
        projector = s.create("item", {"name": "Projektor Epson EB-W49", "inventory_code": "PRJ-004",
                                      "kind": "projector"})
        s.create("item", {"name": "Fotoaparát Canon EOS R8", "inventory_code": "FOTO-001", "kind": "camera"})
        eva = s.create("borrower", {"name": "Eva Horáková", "email": "eva.horakova@example.cz",
                                    "department": "Marketing", "login": "ehorakova"})
        s.create("borrower", {"name": "Ondřej Beneš", "department": "Obchod", "login": "obenes"})
        # Refs may be given as records, as numbers or as titles.
        s.create("loan", {"item": laptop, "borrower": eva, "out_on": day - timedelta(days=20),
                          "due_on": day - timedelta(days=6), "returned_on": day - timedelta(days=8),
                          "status": "returned"})
        s.create("loan", {"item": "IT-0001", "borrower": "Ondřej Beneš", "out_on": day - timedelta(days=5),
                          "due_on": day - timedelta(days=1)})
        s.create("loan", {"item": projector.id, "borrower": "BR-0001", "due_on": day + timedelta(days=3)})

    store.run(stock, user="clerk")
    yield store
    store.close()


def test_loan_app_defines_only_its_own_types(loan_definitions):
    assert set(loan_definitions.types) == {"item", "borrower", "loan"}
    assert set(loan_definitions.views) == {"loans_out", "overdue_loans", "items", "most_lent_items"}
    assert loan_definitions.types["loan"].number(7) == "LN-00007"


def test_loans_are_found_by_filter_and_sorted(desk):
    def read(s):
        out = s.query("loan", filter={"status": "out"}, sort="due_on")
        lent_to_ondrej = s.query("loan", filter={"borrower": s.find("BR-0002").id})
        return [r.number for r in out.records], out.total, lent_to_ondrej.total
    numbers, total, lent_to_ondrej = desk.read(read)
    assert total == 2
    assert numbers == ["LN-00002", "LN-00003"]   # the overdue one first
    assert lent_to_ondrej == 1


def test_a_view_filter_with_dayfinds_the_overdue_loan(desk, loan_definitions):
    view = loan_definitions.views["overdue_loans"]
    page = desk.read(lambda s: s.query(view.type, filter=view.filter, sort=list(view.sort)))
    assert [r.number for r in page.records] == ["LN-00002"]


def test_days_are_computed_from_the_dates(desk):
    days = desk.read(lambda s: [s.get("loan", i)["days"] for i in (1, 2, 3)])
    assert days == [12, 5, 0]


def test_an_item_counts_its_loans_as_they_are_written(desk):
    def counts(s):
        laptop = s.find("IT-0001")
        return laptop["loan_count"], laptop["loans_out"], laptop["days_lent"]
    assert desk.read(counts) == (2, 1, 17)

    def give_back(s):
        loan = s.find("LN-00002")
        s.update(loan, {"status": "returned", "returned_on": today()}, version=loan.version)
    desk.run(give_back, user="clerk")
    assert desk.read(counts) == (2, 0, 17)

    most_lent = desk.read(lambda s: s.query("item", filter={"loan_count": {"gt": 0}}, sort="-loan_count,name"))
    assert [r["inventory_code"] for r in most_lent.records] == ["NB-0012", "PRJ-004"]


def test_a_loan_without_item_is_refused_and_nothing_is_saved(desk):
    with pytest.raises(ValidationError) as refused:
        desk.run(lambda s: s.create("loan", {"borrower": "BR-0001", "due_on": "2030-01-31"}), user="clerk")
    assert refused.value.errors == {"item": "is required"}
    assert "the Loan was not saved" in str(refused.value)
    assert desk.read(lambda s: s.count("loan")) == 3


def test_an_inventory_code_of_the_wrong_form_is_refused(desk):
    with pytest.raises(ValidationError) as refused:
        desk.run(lambda s: s.create("item", {"name": "Tablet", "inventory_code": "tab 1"}), user="clerk")
    assert "does not have the expected form" in refused.value.errors["inventory_code"]


def test_an_edit_made_from_an_old_version_is_refused(desk):
    seen = desk.read(lambda s: s.find("LN-00003"))
    seen_version = seen.version
    desk.run(lambda s: s.update("LN-00003", {"due_on": today() + timedelta(days=10)}, version=seen_version),
             user="ehorakova")
    with pytest.raises(StaleEdit) as stale:
        desk.run(lambda s: s.update("LN-00003", {"status": "lost"}, version=seen_version), user="clerk")
    assert "LN-00003 was changed by ehorakova" in str(stale.value)
    assert desk.read(lambda s: s.find("LN-00003")["status"]) == "out"
