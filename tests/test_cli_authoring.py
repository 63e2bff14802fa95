"""The consultant's commands for writing definitions: `deskbase schema` (the file an editor
checks definitions with) and `deskbase diff --overlay DIR` (what an overlay changes)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from deskbase.cli import main
from deskbase.objects.definitions import overlaid_documents
from deskbase.objects.overlay_diff import overlay_changes
from deskbase.rules.application import application_schema

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = str(ROOT / "definitions")
ACME = str(ROOT / "examples" / "customers" / "acme")


@pytest.fixture
def deskbase(capsys):
    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--definitions", DEFINITIONS, *args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


def _lines(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines()]


# -- deskbase schema ----------------------------------------------------------------------------

def test_schema_writes_the_file_an_editor_reads(deskbase, tmp_path):
    target = tmp_path / "var" / "deskbase-definitions.schema.json"
    code, out, _ = deskbase("schema", "--output", str(target))
    assert code == 0 and out == f"wrote the JSON Schema of definitions files to {target}\n"
    schema = json.loads(target.read_text())
    Draft7Validator.check_schema(schema)
    assert schema["$id"] == "urn:deskbase:definitions"
    field = schema["properties"]["types"]["additionalProperties"]["properties"]["fields"]["additionalProperties"]
    assert field["properties"]["kind"]["description"] == "what it holds, such as string, enum or ref"


def test_schema_prints_on_the_standard_output_and_has_an_overlay_flavour(deskbase):
    code, out, _ = deskbase("schema")
    assert code == 0 and json.loads(out)["title"] == "Deskbase definitions (base)"
    code, out, _ = deskbase("schema", "--overlay")
    overlay = json.loads(out)
    assert code == 0 and overlay["$id"] == "urn:deskbase:overlay"
    assert not list(Draft7Validator(overlay).iter_errors({"public_forms": {"web_request": None}}))


def test_schema_says_why_it_cannot_write_the_file(deskbase, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = deskbase("schema", "--output", str(blocker / "schema.json"))
    assert code == 1 and err.startswith(f"error: the schema cannot be written to `{blocker / 'schema.json'}`")


# -- deskbase diff --------------------------------------------------------------------------------

def test_diff_of_the_example_overlay_lists_what_its_files_change(deskbase):
    code, out, err = deskbase("diff", "--overlay", ACME)
    assert code == 0 and err == ""
    assert _lines(out) == [
        f"what {ACME} changes in {DEFINITIONS}:",
        "types:",
        # 10_equipment.yaml
        "label of `asset` in English: Asset → Equipment",
        "label of `asset` in French: Équipement → Matériel",
        "plural of `asset` in English: Assets → Equipment",
        "plural of `asset` in French: Équipements → Matériels",
        "type `asset`: field `cost_center` added (string, label Cost center, max_length 20)",
        "field `kind` of `asset`: values `handheld_scanner` added",
        "type `asset`: index `cost_center` added",
        # 20_service.yaml
        "type `ticket`: timers thresholds {at: 70, event: warning} added",
        "type `ticket`: timers thresholds {at: 80, event: warning} removed",
        "views:",
        "view `all_assets`: columns `cost_center` added",
        "notifications:",
        "notification rule `sla_critical`: to {address: +33655501234} added",
        "notification rule `sla_critical`: to {address: +33600000000} removed",
        "public_forms:",
        "public form `web_request` removed",
        "mailboxes:",
        "mailbox `support`: `refusal.body` changed",
    ]


def test_diff_says_a_label_a_state_its_transitions_a_field_and_a_view_removed(deskbase, tmp_path):
    overlay = tmp_path / "customer"
    overlay.mkdir()
    (overlay / "10_ticket.yaml").write_text(
        "types:\n"
        "  ticket:\n"
        "    label: {fr: Demande}\n"
        "    fields:\n"
        "      status:\n"
        "        values: !append [on_hold]\n"
        "      asset_tag: {kind: string, max_length: 40}\n"
        "    workflow:\n"
        "      transitions:\n"
        "        hold: {from: [in_progress], to: on_hold}\n"
        "        resume_from_hold: {from: [on_hold], to: in_progress, roles: [technician]}\n"
        "views:\n"
        "  my_tickets: !remove\n")
    code, out, err = deskbase("diff", "--overlay", str(overlay))
    assert code == 0
    assert _lines(out) == [
        f"what {overlay} changes in {DEFINITIONS}:",
        "types:",
        "label of `ticket` in French: Ticket → Demande",
        "type `ticket`: field `asset_tag` added (string, max_length 40)",
        "field `status` of `ticket`: state `on_hold` added",
        "type `ticket`: transition `hold` added (from in_progress, to on_hold)",
        "type `ticket`: transition `resume_from_hold` added (from on_hold, to in_progress, roles technician)",
        "views:",
        "view `my_tickets` removed",
    ]
    # The roles' menus still name the view removed: the comparison says so in one line.
    assert err.startswith("note: the definitions with these overlays have ")
    assert f"`deskbase check --overlay {overlay}` lists them" in err


def test_diff_of_an_overlay_that_repeats_the_base_changes_nothing(deskbase, tmp_path):
    overlay = tmp_path / "same"
    overlay.mkdir()
    (overlay / "same.yaml").write_text("types:\n  ticket:\n    label: {en: Ticket}\n")
    code, out, _ = deskbase("diff", "--overlay", str(overlay))
    assert code == 0 and out == f"the overlay changes nothing ({overlay} over {DEFINITIONS})\n"


def test_diff_names_a_field_renamed_once(tmp_path):
    overlay = tmp_path / "renamed"
    overlay.mkdir()
    (overlay / "asset.yaml").write_text(
        "types:\n  asset:\n    fields:\n      serial: !remove\n"
        "      serial_number: {kind: string, renamed_from: serial, max_length: 80}\n")
    base, merged = overlaid_documents(DEFINITIONS, [overlay])
    sentences = [change.sentence for change in overlay_changes(base, merged, application_schema())]
    # One rename, not a field removed and another added; what else differs is said of the new one.
    assert sentences == [
        "type `asset`: field `serial` renamed to `serial_number` (its stored values move to it)",
        "label of field `serial_number` of `asset` in English removed (it was Serial number)",
        "label of field `serial_number` of `asset` in French removed (it was Numéro de série)",
    ]


def test_diff_refuses_a_missing_overlay_folder_and_no_overlay_in_sentences(deskbase, tmp_path):
    code, out, err = deskbase("diff", "--overlay", str(tmp_path / "nowhere"))
    assert (code, out) == (1, "") and err == f"error: the overlay folder `{tmp_path / 'nowhere'}` does not exist\n"
    code, _, err = deskbase("diff")
    assert code == 1 and err.startswith("error: name the overlay folder to compare with the definitions")


def test_diff_reports_an_overlay_that_cannot_be_merged_at_its_place(deskbase, tmp_path):
    overlay = tmp_path / "broken"
    overlay.mkdir()
    (overlay / "broken.yaml").write_text("views:\n  no_such_view: !remove\n")
    code, _, err = deskbase("diff", "--overlay", str(overlay))
    assert code == 1
    assert "broken.yaml:2:3" in err and "`no_such_view` cannot be removed" in err
