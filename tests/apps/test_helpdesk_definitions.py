"""The shipped helpdesk and billing definitions and their demo data, as a consultant
checks them and as operators and customers query them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from deskbase.objects.demo import DemoError
from deskbase.objects.errors import ValidationError
from deskbase.objects.store import Store
from deskbase.rules.application import load_application, load_application_demo

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "definitions"


@pytest.fixture(scope="module")
def definitions():
    return load_application(DEFINITIONS)


@pytest.fixture(scope="module")
def demo(app_store, definitions):
    """A memory store with the demo loaded once for every test of this module (read-only use)."""
    with app_store(definitions) as store:
        store.created = load_application_demo(store, DEFINITIONS / "demo")
        yield store


@pytest.fixture
def empty_store(definitions):
    store = Store.open("memory://", definitions)
    yield store
    store.close()


def key_of(store, type_name: str, field: str, value):
    """The id of the one record of a type whose `field` is `value`."""
    page = store.read(lambda s: s.query(type_name, {field: value}, limit=2))
    assert page.total == 1, f"{page.total} {type_name} records have {field} = {value}"
    return page.records[0].id


# -- the definitions --------------------------------------------------------------------

LANGUAGES = {"en", "fr", "cs", "pt", "hr"}

def test_shipped_definitions_load_without_a_problem(definitions):
    assert {"organization", "contact", "group", "category", "asset", "project", "ticket",
            "contract", "service_range"} <= set(definitions.types)
    assert definitions.zone == "Europe/Paris"
    assert definitions.languages == ("en", "fr", "cs", "pt", "hr")
    assert set(definitions.roles) == {"administrator", "supervisor", "dispatcher", "specialist", "technician",
                                      "customer_user", "customer_power_user", "partner"}


def test_check_command_finds_the_shipped_definitions_valid(capsys):
    from deskbase.cli import main
    assert main(["--definitions", str(DEFINITIONS), "check"]) == 0
    assert "definitions are valid" in capsys.readouterr().out


def test_every_label_is_given_in_the_five_languages(definitions):
    # English and French inline, Czech, Portuguese and Croatian from definitions/locale
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("label", "plural", "help"):
                    if not (isinstance(value, dict) and LANGUAGES <= set(value)):
                        missing.append(f"{path}.{key}")
                else:
                    walk(value, f"{path}.{key}")
        elif isinstance(node, (list, tuple)):
            for index, item in enumerate(node):
                if isinstance(item, dict) and len(item) == 1 and path.endswith(".values"):
                    (name, label), = item.items()
                    if not (isinstance(label, dict) and LANGUAGES <= set(label)):
                        missing.append(f"{path}[{index}]")
                else:
                    walk(item, f"{path}[{index}]")

    document = _plain(definitions.document)
    walk(document, "")
    for type_name, spec in document["types"].items():
        for field_name, field in spec["fields"].items():
            if "label" not in field:
                missing.append(f"types.{type_name}.fields.{field_name} (no label)")
            if field["kind"] == "enum" and any(isinstance(v, str) for v in field["values"]):
                missing.append(f"types.{type_name}.fields.{field_name}.values (a value without label)")
    assert missing == []


def test_ticket_statuses_priorities_and_criticalities_are_those_of_the_requirements(definitions):
    fields = definitions.types["ticket"].fields
    assert fields["status"].kind.values == (
        "awaiting_pickup", "unassigned", "in_progress", "awaiting_reply", "disagreement",
        "correction_in_progress", "resolved", "rejected", "cancelled", "closed")
    assert fields["status"].default == "awaiting_pickup"
    assert fields["priority"].kind.values == ("urgent", "very_high", "high", "medium", "low", "very_low")
    assert fields["criticality"].kind.values == ("critical", "serious", "medium", "low")
    assert fields["kind"].kind.values == ("service_request", "incident")
    assert fields["attachments"].kind.max_size == 25 * 1024 * 1024


def test_the_engine_knows_no_helpdesk_words():
    words = re.compile(r"ticket|invoice|contract|helpdesk", re.I)
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for path in (ROOT / "platform").rglob("*") if path.suffix in (".py", ".html", ".json", ".yaml", ".js")
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if words.search(line)]
    assert offenders == []


# -- the demo data ----------------------------------------------------------------------

def test_demo_loads_every_kind_of_record(demo):
    created = demo.created
    assert created["ticket"] >= 240
    assert created["organization"] >= 4 and created["contact"] >= 20 and created["asset"] >= 12
    assert created["category"] >= 15 and created["group"] >= 5 and created["contract"] >= 4
    assert demo.read(lambda s: s.count("ticket")) == created["ticket"]


@pytest.mark.parametrize("field", ["status", "priority", "criticality", "channel", "kind"])
def test_demo_tickets_use_every_value_of(demo, definitions, field):
    values = definitions.types["ticket"].fields[field].kind.values
    counts = demo.read(lambda s: {value: s.count("ticket", {field: value}) for value in values})
    assert all(counts.values()), counts


def test_demo_tickets_were_reported_over_the_last_sixty_days(demo):
    def spread(s):
        return (s.count("ticket", {"reported_at": {"gte": "$now-61d"}}),
                s.count("ticket", {"reported_at": {"lt": "$now-30d"}}),
                s.count("ticket"))
    recent, older_than_a_month, total = demo.read(spread)
    assert recent == total
    assert older_than_a_month > total // 5               # about half the finished ones


def test_demo_tickets_awaiting_pickup_have_no_assignee(demo):
    assert demo.read(lambda s: s.count("ticket", {"status": ["awaiting_pickup", "unassigned"],
                                                  "assignee": {"empty": False}})) == 0


def test_demo_refuses_to_load_twice(demo):
    with pytest.raises(DemoError, match="already holds records of the demo's types"):
        load_application_demo(demo, DEFINITIONS / "demo")


def test_demo_accepts_the_definitions_folder_and_reports_progress(empty_store):
    seen = {}
    created = load_application_demo(empty_store, DEFINITIONS, progress=lambda type_name, n: seen.__setitem__(type_name, n))
    assert seen == created


def test_demo_is_the_same_on_every_load(demo, definitions):
    def tickets(s):
        return [(r["title"], r["status"], r["priority"], r["assignee"])
                for r in s.query("ticket", sort="id", limit=None).records]
    with Store.open("memory://", definitions) as again:
        load_application_demo(again, DEFINITIONS / "demo")
        assert again.read(tickets) == demo.read(tickets)


# -- rules the definitions enforce ------------------------------------------------------

def test_a_subcategory_of_another_category_is_refused(demo):
    hardware = key_of(demo, "category", "name", "Matériel")
    printers = key_of(demo, "category", "name", "Imprimantes")
    vpn = key_of(demo, "category", "name", "VPN")
    with pytest.raises(ValidationError) as refused:
        demo.run(lambda s: s.create("ticket", {"title": "Imprimante HS", "category": hardware, "subcategory": vpn}),
                 user="sbernard")
    message = refused.value.errors["subcategory"]
    assert "VPN" in message and "cannot be chosen here" in message
    assert set(refused.value.errors) == {"subcategory"}

    # A top-level category is no subcategory, even under no category at all.
    with pytest.raises(ValidationError) as refused:
        demo.run(lambda s: s.create("ticket", {"title": "Imprimante HS", "subcategory": hardware}), user="sbernard")
    assert "subcategory" in refused.value.errors

    def accepted(s):
        ticket = s.create("ticket", {"title": "Imprimante HS", "category": hardware, "subcategory": printers})
        number = ticket.number
        s.delete(ticket)
        return number
    assert demo.run(accepted, user="sbernard").startswith("T-")


def test_a_category_cannot_be_put_three_levels_deep(demo):
    printers = key_of(demo, "category", "name", "Imprimantes")
    with pytest.raises(ValidationError) as refused:
        demo.run(lambda s: s.create("category", {"name": "Laser", "parent": printers}), user="admin")
    assert "parent" in refused.value.errors


def test_the_contact_of_a_ticket_must_belong_to_its_organization(demo):
    chabrier = key_of(demo, "organization", "code", "CHAB")
    jana = key_of(demo, "contact", "name", "Jana Nováková")
    with pytest.raises(ValidationError) as refused:
        demo.run(lambda s: s.create("ticket", {"title": "Souris cassée", "organization": chabrier, "contact": jana}),
                 user="sbernard")
    assert "Jana Nováková" in refused.value.errors["contact"]


def test_an_attachment_of_an_unaccepted_kind_is_refused(demo):
    from deskbase.objects.fields import Upload
    with pytest.raises(ValidationError) as refused:
        demo.run(lambda s: s.create("ticket", {"title": "Virus ?", "attachments": [
            Upload("facture.exe", b"MZ", "application/x-msdownload")]}), user="sbernard")
    assert "facture.exe is not an accepted kind of file" in refused.value.errors["attachments"]


# -- what users look for ----------------------------------------------------------------

def test_text_search_finds_czech_titles_without_accents(demo):
    page = demo.read(lambda s: s.query("ticket", {"text": "tiskarna"}, limit=None))
    assert page.total >= 2
    assert all("tiskárn" in (r["title"] + " " + r["description"]).lower() for r in page.records)
    assert any(r["title"].startswith("Tiskárna v účtárně") for r in page.records)
    assert demo.read(lambda s: s.count("ticket", {"text": "TISKÁRNA účtárně"})) >= 1


def test_text_search_finds_french_words_by_prefix(demo):
    page = demo.read(lambda s: s.query("ticket", {"text": "imprim*"}, limit=None))
    assert page.total > 0
    assert all("imprim" in (r["title"] + " " + r["description"]).lower() for r in page.records)


def test_open_tickets_of_a_customer_most_urgent_first(demo):
    chabrier = key_of(demo, "organization", "code", "CHAB")
    order = ("urgent", "very_high", "high", "medium", "low", "very_low")

    def read(s):
        return s.query("ticket", {"organization": chabrier,
                                  "status": {"not_in": ["resolved", "rejected", "cancelled", "closed"]}},
                       sort="priority,-reported_at", limit=None).records
    records = demo.read(read)
    assert records
    assert all(r["organization"] == chabrier for r in records)
    ranks = [order.index(r["priority"]) for r in records]
    assert ranks == sorted(ranks)


def test_my_tickets_view_shows_the_technicians_own_open_work(demo, definitions):
    view = definitions.views["my_tickets"]
    page = demo.read(lambda s: s.query(view.type, view.filter, list(view.sort), limit=None),
                     user="sbernard", me={"id": "sbernard"})
    assert page.total > 0
    assert {r["assignee"] for r in page.records} == {"sbernard"}
    assert not {r["status"] for r in page.records} & {"rejected", "cancelled", "closed"}


def test_a_customer_sees_only_the_tickets_of_their_organization(demo, definitions):
    strojirny = key_of(demo, "organization", "code", "STROJ")
    view = definitions.views["my_organization_tickets"]
    page = demo.read(lambda s: s.query(view.type, view.filter, list(view.sort), limit=None),
                     user="psvoboda", me={"id": "psvoboda", "organization": strojirny})
    total = demo.read(lambda s: s.count("ticket", {"organization": strojirny}))
    assert page.total == total > 0


def test_every_view_runs_on_the_demo_data(demo, definitions):
    chabrier = key_of(demo, "organization", "code", "CHAB")
    me = {"id": "lfontaine", "organization": chabrier, "groups": []}
    totals = {}
    for name, view in definitions.views.items():
        page = demo.read(lambda s: s.query(view.type, view.filter, list(view.sort), limit=5),
                         user="lfontaine", me=me)
        totals[name] = page.total
    empty = {name for name, total in totals.items() if total == 0}
    # lfontaine follows nothing in the demo, and is nobody's contractor; Chabrier's contracts use no tokens
    assert empty <= {"tickets_i_follow", "tickets_for_us", "our_token_balance"}, totals


def test_the_assets_that_fail_most_are_counted_from_their_tickets(demo):
    def read(s):
        page = s.query("asset", {"incident_count": {"gt": 0}}, sort="-incident_count,name", limit=None)
        top = page.records[0]
        incidents = s.count("ticket", {"asset": top.id, "kind": "incident"})
        return page.records, top, incidents, s.count("ticket", {"asset": top.id})
    records, top, incidents, tickets = demo.read(read)
    assert [r["incident_count"] for r in records] == sorted((r["incident_count"] for r in records), reverse=True)
    assert top["incident_count"] == incidents and top["ticket_count"] == tickets


def test_a_ticket_is_found_by_its_number_with_its_relations(demo):
    def read(s):
        vendor_ticket = s.query("ticket", {"text": "PrintServis fixační"}).records[0]
        related = s.get("ticket", vendor_ticket["related_tickets"][0])
        again = s.find(vendor_ticket.number)
        tasks = s.query("ticket", {"parent": {"empty": False}}).records
        return vendor_ticket, related, again, tasks
    vendor_ticket, related, again, tasks = demo.read(read)
    assert again.id == vendor_ticket.id and vendor_ticket.number.startswith("T-")
    assert related["title"].startswith("Tiskárna v účtárně")
    assert any(t["title"].startswith("Substituir o cartão") for t in tasks)


def _plain(value):
    if hasattr(value, "items"):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def test_demo_has_an_account_for_every_role(demo):
    from deskbase.rules.access.identity import authenticate, list_accounts
    roles = {role for account in list_accounts(demo) for role in account.roles}
    assert roles == set(demo.definitions.roles)
    technician = authenticate(demo, "sbernard", "demo-password")
    assert technician.roles == ("technician",) and technician.groups
