"""`deskbase handbook`: what the helpdesk configures, for its people, in English and French,
as HTML or PDF — read back from the PDF as poppler's pdftotext sees it: the roles, the
service-level targets per level and priority, the states of the ticket — and what a
customer's overlay changes."""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from servers.required import skip_or_fail

from deskbase.cli import main

ROOT = Path(__file__).parents[2]
SHIPPED = ROOT / "definitions"
ACME = ROOT / "examples" / "customers" / "acme"


def made(tmp_path: Path, *options: str, output_format: str = "html", language: str = "en") -> Path:
    """The file `deskbase handbook` writes for the shipped definitions (and the options)."""
    target = tmp_path / f"handbook-{language}.{output_format}"
    code = main(["--definitions", str(SHIPPED), "--db", "postgres://nowhere.invalid/none", "handbook", *options,
                 "--lang", language, "--format", output_format, "--output", str(target)])
    assert code == 0
    return target


def pdf_lines(pdf: Path, *options: str) -> list[str]:
    """The lines of a PDF as pdftotext reads them (`-layout`: as the pages lay them out, a
    table's row on one line), spaces made plain."""
    if shutil.which("pdftotext") is None:
        skip_or_fail("pdftotext (poppler-utils) is needed to read the handbook's PDF")
    read = subprocess.run(["pdftotext", *options, str(pdf), "-"], capture_output=True, text=True, check=True)
    return [" ".join(line.replace("\xa0", " ").replace("\u202f", " ").split()) for line in read.stdout.splitlines()]


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory) -> dict[str, dict[str, list[str]]]:
    """Per language, the handbook's lines laid out (`rows`) and in reading order (`text`)."""
    folder = tmp_path_factory.mktemp("handbooks")
    found = {}
    for language in ("en", "fr"):
        pdf = made(folder, output_format="pdf", language=language)
        found[language] = {"rows": pdf_lines(pdf, "-layout"), "text": pdf_lines(pdf)}
    return found


def row(lines: list[str], first: str) -> list[str]:
    """The words of the line that starts with `first`."""
    found = [line.split() for line in lines if line.split()[:1] == [first]]
    assert found, f"no line starts with {first}"
    return found[0]


SLA = {"premium_urgent": ["15m", "4h", "1h"], "premium": ["30m", "8h", "2h"], "standard_urgent": ["1h", "8h", "4h"],
       "standard": ["4h", "24h", "8h"], "basic": ["8h", "40h", "16h"]}


@pytest.mark.parametrize("language, roles, headers, states", [
    ("en", ["Administrator", "Supervisor", "Dispatcher", "Specialist", "Technician", "Customer user",
            "Customer power user", "External contractor"],
     ["Service levels", "First response", "Resolution", "Next update", "Priority is one of Urgent, Very high"],
     ["Awaiting pickup", "Unassigned", "In progress", "Awaiting reply", "Disagreement", "Correction in progress",
      "Resolved", "Rejected", "Cancelled", "Closed"]),
    ("fr", ["Administrateur", "Superviseur", "Dispatcheur", "Spécialiste", "Technicien", "Utilisateur client",
            "Utilisateur client avec pouvoir", "Prestataire externe"],
     ["Niveaux de service", "Première réponse", "Résolution", "Prochain suivi", "Priorité est l’un de Urgente"],
     ["Attente de prise en charge", "Non attribué", "En cours", "Attente de retour", "Désaccord",
      "Correction en cours", "Résolu", "Rejeté", "Annulé", "Clos"]),
])
def test_the_handbook_of_the_helpdesk_names_the_roles_the_service_levels_and_the_states(pdfs, language, roles,
                                                                                        headers, states):
    lines = pdfs[language]["rows"]
    text = " ".join(pdfs[language]["text"])
    for role in roles:
        assert role in text
    for header in headers:
        assert header in text, header
    for policy, targets in SLA.items():               # each policy's targets for the three clocks, on its line
        assert row(lines, policy)[-3:] == targets, policy
    for state in states:
        assert text.count(state) >= 3, state           # in the choices, the diagram and the transitions


def test_the_handbook_says_who_fires_each_transition_and_the_working_hours(pdfs):
    text = " ".join(pdfs["en"]["text"])
    assert "Start the correction" in text and "Customer replied" in text
    assert "automatically, when a Comment is created" in text
    year = dt.date.today().year
    assert "Monday 08:30–12:30, 14:00–18:00" in pdfs["en"]["rows"]
    assert f"Public holidays (France, {year}):" in text and "(Easter Monday)" in text and "(Jan Hus Day)" in text
    french = " ".join(pdfs["fr"]["text"])
    assert "lundi 08:30–12:30, 14:00–18:00" in pdfs["fr"]["rows"]
    assert f"Jours fériés (France, {year}):" in french and "(Lundi de Pâques)" in french
    assert f"Jours fériés (Croatie, {year}):" in french


def test_the_handbook_of_an_overlay_shows_what_it_changes(tmp_path):
    shipped = made(tmp_path, language="fr").read_text()
    acme = made(tmp_path, "--overlay", str(ACME), language="fr").read_text()
    for added in ("Matériel", "Centre de coûts", "Terminal portable", "70 %: warning", "+33655501234"):
        assert added in acme and added not in shipped, added
    assert "/p/web_request" in shipped and "/p/web_request" not in acme        # the public form it removes


def test_the_words_of_the_definitions_stay_text(tmp_path):
    overlay = tmp_path / "hostile"
    overlay.mkdir()
    (overlay / "roles.yaml").write_text('roles:\n  technician: {label: {en: "<script>alert(1)</script>"}}\n')
    page = made(tmp_path, "--overlay", str(overlay)).read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("option, value, said", [
    ("--lang", "de", "error: `de` is not a language of the definitions; choose one of en, fr"),
    ("--format", "docx", "error: `docx` is not a format of the handbook; choose one of html, pdf"),
])
def test_an_unknown_language_or_format_is_refused_with_the_choices(tmp_path, capsys, option, value, said):
    code = main(["--definitions", str(SHIPPED), "handbook", option, value, "--output", str(tmp_path / "out")])
    assert code == 1 and said in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_place_it_cannot_write_to_is_said(tmp_path, capsys):
    code = main(["--definitions", str(SHIPPED), "handbook", "--output", str(tmp_path / "missing" / "handbook.html")])
    assert code == 1 and "error: cannot write the handbook to" in capsys.readouterr().err
