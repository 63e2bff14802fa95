"""What an overlay changes, in sentences, on the engine's small test application: the
comparison knows only the meta-schema, nothing of any product."""
from __future__ import annotations

from deskbase.objects.definitions import overlaid_documents
from deskbase.objects.metaschema import build_schema
from deskbase.objects.overlay_diff import overlay_changes, sentences


def _changes(tasks_folder, tmp_path, text: str) -> list[str]:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "changes.yaml").write_text(text)
    base, merged = overlaid_documents(tasks_folder, [overlay])
    return list(sentences(overlay_changes(base, merged, build_schema())))


def test_settings_roles_options_and_value_labels_are_said_by_section(tasks_folder, tmp_path):
    lines = _changes(tasks_folder, tmp_path,
                     "settings: {timezone: Europe/Prague}\n"
                     "roles:\n  agent: {label: Helper}\n  reviewer: {label: {en: Reviewer}, portal: true}\n"
                     "types:\n  task:\n    fields:\n"
                     "      title:\n        max_length: 120\n        required: !remove\n"
                     "      priority: {values: [{high: {en: Urgent, fr: Urgente}}, medium, low]}\n")
    assert lines == [
        "settings:",
        "  `settings.timezone` Europe/Paris → Europe/Prague",
        "roles:",
        "  label of role `agent` in every language set to Helper",
        "  label of role `agent` in English removed (it was Agent)",
        "  label of role `agent` in French removed (it was Agent)",
        "  role `reviewer` added (label Reviewer, portal)",
        "types:",
        "  field `priority` of `task`: values `high` {high: {en: High, fr: Haute}} → {high: {en: Urgent, fr: Urgente}}",
        "  field `title` of `task`: `required` removed",
        "  field `title` of `task`: `max_length` 80 → 120",
    ]


def test_a_list_given_again_in_another_order_is_said_reordered(tasks_folder, tmp_path):
    lines = _changes(tasks_folder, tmp_path, "types:\n  task:\n    fields:\n      priority: {values: [low, medium, "
                                             "{high: {en: High, fr: Haute}}]}\n")
    assert lines == ["types:", "  field `priority` of `task`: values reordered: `low`, `medium`, `high`"]
