"""The interface's own words are complete in every shipped language: each `t("…")` of the
templates and pages has a translation, with the same placeholders."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from deskbase.views.i18n import LOCALES, catalog, translator

VIEWS = Path(__file__).parents[2] / "platform" / "views"
CALLED = re.compile(r"""\bt\(\s*(?:"([^"]+)"|'([^']+)')""")


def used_words() -> set[str]:
    found = set()
    for path in [*VIEWS.glob("templates/*.html"), *VIEWS.glob("*.py")]:
        found |= {double or single for double, single in CALLED.findall(path.read_text())}
    return found


LANGUAGES = sorted(path.name for path in LOCALES.iterdir() if path.is_dir())


def test_french_is_shipped():
    assert "fr" in LANGUAGES


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_word_of_the_pages_is_translated_with_its_placeholders(language):
    words = catalog(language)
    missing = sorted(used_words() - set(words))
    assert not missing, f"{language} lacks: {missing}"
    for msgid, msgstr in words.items():
        assert set(re.findall(r"{(\w+)}", msgid)) == set(re.findall(r"{(\w+)}", msgstr)), msgid


def test_a_word_without_translation_stays_english():
    assert translator("fr")("Sign in") == "Se connecter"
    assert translator("fr")("{first}–{last} of {total}", first=1, last=25, total=80) == "1–25 sur 80"
    assert translator("de")("Sign in") == "Sign in"
