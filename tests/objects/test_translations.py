"""Catalogues of the definitions' labels per language (`locale/<language>.po`): what they
complete, a missing translation reported at its place in the YAML, an overlay's catalogue,
and `deskbase translations LANGUAGE` writing one for a translator."""
from __future__ import annotations

from pathlib import Path

import pytest

from deskbase.cli import main
from deskbase.objects.definitions import load_definitions
from deskbase.objects.errors import DefinitionErrors

CZECH = {"Agent": "Agent", "Team": "Tým", "Category": "Kategorie", "Task": "Úkol", "High": "Vysoká",
         "Work": "Práce", "Open tasks": "Otevřené úkoly"}


def po(entries: dict[str, str], *, fuzzy: tuple[str, ...] = ()) -> str:
    lines = ['msgid ""', 'msgstr ""', '"Language: cs\\n"', '"Content-Type: text/plain; charset=utf-8\\n"', ""]
    for msgid, msgstr in entries.items():
        if msgid in fuzzy:
            lines.append("#, fuzzy")
        lines += [f'msgid "{msgid}"', f'msgstr "{msgstr}"', ""]
    return "\n".join(lines)


def with_czech(folder: Path, entries: dict[str, str] | None = None, **options) -> Path:
    """The tasks app declaring Czech after English and French, with a Czech catalogue."""
    path = folder / "tasks.yaml"
    path.write_text(path.read_text().replace("languages: [en, fr]", "languages: [en, fr, cs]"))
    if entries is not None:
        (folder / "locale").mkdir(exist_ok=True)
        (folder / "locale" / "cs.po").write_text(po(entries, **options))
    return folder


def test_a_catalogue_gives_the_labels_of_its_language_and_the_inline_ones_stay(tasks_folder):
    definitions = load_definitions(with_czech(tasks_folder, CZECH))
    task = definitions.type("task")
    assert task.title("cs") == "Úkol" and task.title("fr") == "Tâche" and task.title("en") == "Task"
    assert task.fields["priority"].kind.text("high", "cs") == "Vysoká"
    assert definitions.views["open_tasks"].label["cs"] == "Otevřené úkoly"


def test_a_label_the_catalogue_lacks_is_reported_where_it_is_written(tasks_folder):
    missing = {msgid: text for msgid, text in CZECH.items() if msgid != "Open tasks"}
    with pytest.raises(DefinitionErrors) as caught:
        load_definitions(with_czech(tasks_folder, missing))
    [error] = caught.value.errors
    line = next(number for number, text in enumerate((tasks_folder / "tasks.yaml").read_text().splitlines(), 1)
                if "Open tasks" in text)
    assert (Path(error.file).name, error.line) == ("tasks.yaml", line)
    assert error.message == "“Open tasks” has no translation in `cs`"
    assert "locale/cs.po" in error.hint and "`deskbase translations cs`" in error.hint


def test_a_fuzzy_entry_is_not_a_translation(tasks_folder):
    with pytest.raises(DefinitionErrors, match="“Work” has no translation in `cs`"):
        load_definitions(with_czech(tasks_folder, CZECH, fuzzy=("Work",)))


def test_a_language_without_a_catalogue_shows_the_first_language(tasks_folder):
    definitions = load_definitions(with_czech(tasks_folder))
    assert definitions.type("task").title("cs") == "Task"


def test_an_overlays_catalogue_wins_and_translates_what_the_overlay_adds(tasks_folder, tmp_path):
    overlay = tmp_path / "overlay"
    (overlay / "locale").mkdir(parents=True)
    (overlay / "tasks.yaml").write_text("views:\n  urgent_tasks:\n    type: task\n"
                                        "    label: {en: Urgent tasks, fr: Tâches urgentes}\n"
                                        "    columns: [id, title]\n    roles: [agent]\n")
    (overlay / "locale" / "cs.po").write_text(po({"Urgent tasks": "Naléhavé úkoly", "Task": "Zadání"}))
    definitions = load_definitions(with_czech(tasks_folder, CZECH), [overlay])
    assert definitions.views["urgent_tasks"].label["cs"] == "Naléhavé úkoly"
    assert definitions.type("task").title("cs") == "Zadání" and definitions.type("team").title("cs") == "Tým"


def test_an_overlay_without_a_catalogue_is_not_held_to_the_language(tasks_folder, tmp_path):
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "tasks.yaml").write_text("views:\n  urgent_tasks:\n    type: task\n"
                                        "    label: {en: Urgent tasks, fr: Tâches urgentes}\n"
                                        "    columns: [id, title]\n    roles: [agent]\n"
                                        "types:\n  task:\n    label: {en: Job, fr: Travail}\n")
    definitions = load_definitions(with_czech(tasks_folder, CZECH), [overlay])
    assert definitions.views["urgent_tasks"].label.get("cs") is None               # shown in English
    assert definitions.type("task").title("cs") == "Job"      # its new text, not the base's translation of Task
    assert definitions.type("team").title("cs") == "Tým"


def test_a_catalogue_that_does_not_read_is_reported_at_its_line(tasks_folder):
    folder = with_czech(tasks_folder, CZECH)
    (folder / "locale" / "cs.po").write_text(po(CZECH) + 'Vysoká priorita\n')
    with pytest.raises(DefinitionErrors) as caught:
        load_definitions(folder)
    problems = [error for error in caught.value.errors if error.file.endswith("cs.po")]
    assert problems and "this catalogue does not read" in problems[0].message
    assert problems[0].line == len(po(CZECH).splitlines()) + 1


def test_the_translations_command_writes_every_text_and_keeps_what_is_translated(tasks_folder, capsys):
    folder = with_czech(tasks_folder, {"Task": "Úkol", "Gone": "Pryč"})
    code = main(["--definitions", str(folder), "translations", "cs"])
    said = capsys.readouterr().out
    assert code == 0
    assert said == f"wrote {folder / 'locale' / 'cs.po'}: 7 texts, 1 translated, 6 to translate (6 new)\n"
    text = (folder / "locale" / "cs.po").read_text()
    assert 'msgid "Task"\nmsgstr "Úkol"' in text and 'msgid "Open tasks"\nmsgstr ""' in text
    assert "Gone" not in text                                  # no longer written anywhere
    assert "#: tasks.yaml:" in text                            # where the translator finds its context
    with pytest.raises(DefinitionErrors, match="has no translation in `cs`"):
        load_definitions(folder)                               # the empty ones are still to do


@pytest.mark.parametrize("language, said", [
    ("de", "`de` is not a language of the definitions (en, fr, cs); add it to `settings.languages` first"),
    ("en", "`en` is the language the labels are written in; name another one"),
])
def test_the_translations_command_refuses_a_language_it_cannot_write(tasks_folder, capsys, language, said):
    assert main(["--definitions", str(with_czech(tasks_folder)), "translations", language]) != 0
    assert said in capsys.readouterr().err
