"""The example customer overlay `examples/customers/acme/`: layered over the shipped
definitions, it gives what its comments promise, and `deskbase check` accepts it."""
from __future__ import annotations

from pathlib import Path

import pytest

from deskbase.cli import main
from deskbase.rules.application import load_application, open_store

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "definitions"
ACME = ROOT / "examples" / "customers" / "acme"


@pytest.fixture(scope="module")
def shipped():
    return load_application(DEFINITIONS)


@pytest.fixture(scope="module")
def acme():
    return load_application(DEFINITIONS, overlays=[ACME])


def test_acme_adds_a_cost_center_to_assets_and_shows_it_in_the_staff_asset_list(shipped, acme):
    field = acme.type("asset").fields["cost_center"]
    assert field.label == {"en": "Cost center", "fr": "Centre de coûts"}
    assert field.kind.max_length == 20
    assert "cost_center" not in shipped.type("asset").fields
    columns = acme.views["all_assets"].columns
    assert "cost_center" in columns
    assert [c for c in columns if c != "cost_center"] == list(shipped.views["all_assets"].columns)


def test_acme_keeps_every_shipped_field_of_assets(shipped, acme):
    assert set(shipped.type("asset").fields) <= set(acme.type("asset").fields)


def test_acme_adds_a_kind_of_asset_at_the_end_of_the_shipped_list(shipped, acme):
    shipped_kinds = shipped.type("asset").fields["kind"].kind.values
    kinds = acme.type("asset").fields["kind"].kind.values
    assert kinds == (*shipped_kinds, "handheld_scanner")
    assert acme.type("asset").fields["kind"].kind.labels["handheld_scanner"]["fr"] == "Terminal portable"


def test_acme_renames_assets_to_equipment(shipped, acme):
    assert shipped.type("asset").label["en"] == "Asset"
    assert acme.type("asset").label == {"en": "Equipment", "fr": "Matériel"}


def test_acme_warns_at_70_percent_of_a_service_level_target(shipped, acme):
    def thresholds(definitions):
        clock = definitions.extensions["timers"].by_type["ticket"].clocks["resolution"]
        return [(t.percent, t.event) for t in clock.thresholds]
    assert thresholds(shipped) == [(80, "warning"), (100, "breach"), (150, "critical")]
    assert thresholds(acme) == [(70, "warning"), (100, "breach"), (150, "critical")]


def test_acme_texts_its_own_duty_phone(acme):
    rule = next(n for n in acme.extensions["notifications"].by_type["ticket"] if n.name == "sla_critical")
    assert [r.address for r in rule.recipients] == ["+33655501234"]


def test_acme_has_no_public_web_form_and_its_refusal_does_not_point_at_one(shipped, acme):
    assert "web_request" in shipped.extensions["public_forms"]
    assert "web_request" not in acme.extensions["public_forms"]
    assert "/p/web_request" in shipped.extensions["mailboxes"]["support"].refusal["body"]
    refusal = acme.extensions["mailboxes"]["support"].refusal
    assert "/p/web_request" not in refusal["body"]
    assert refusal["subject"] == "Re: {subject}"     # the rest of the mailbox is as shipped


def test_the_new_field_is_stored_and_found_through_its_index(acme):
    store = open_store("memory://", acme)
    try:
        with store.session() as session:
            organization = session.create("organization", {"name": "Acme Logistics", "code": "ACME"})
            session.create("asset", {"name": "Scanner 12", "kind": "handheld_scanner",
                                     "organization": organization.id, "cost_center": "LOG-114"})
            session.create("asset", {"name": "Scanner 13", "kind": "handheld_scanner",
                                     "organization": organization.id, "cost_center": "LOG-200"})
        found = store.read(lambda session: [r["name"] for r in session.query("asset", {"cost_center": "LOG-114"}).records])
        assert found == ["Scanner 12"]
    finally:
        store.close()


def test_deskbase_check_accepts_the_overlay(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = main(["check", "--definitions", "definitions", "--overlay", "examples/customers/acme"])
    out = capsys.readouterr().out
    assert code == 0
    assert "definitions are valid" in out and "examples/customers/acme/10_equipment.yaml" in out
