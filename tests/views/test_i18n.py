"""The interface's own words are complete in every shipped language: the messages Babel's
extraction finds (`babel.cfg`, the same as `pybabel extract`: `t("…")`, `tn("…", "…", n)`
and `N_("…")` in the pages, templates, rules and connectors) each have a translation with
the same placeholders, plurals in every form of the language, and no catalogue keeps a
message no page uses any more."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from deskbase.views.i18n import LOCALES, _read, catalog, language_name, plural_translator, plurals, translator

ROOT = Path(__file__).parents[2]
KEYWORDS = {"t": None, "tn": (1, 2), "N_": None}
LANGUAGES = sorted(path.name for path in LOCALES.iterdir() if path.is_dir())


def extracted() -> tuple[set[str], set[tuple[str, str]]]:
    """The singular messages and the (singular, plural) pairs the sources use."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    singular, plural = set(), set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT / "platform"), method_map, options_map, KEYWORDS):
        (plural.add(message) if isinstance(message, tuple) else singular.add(message))
    return singular, plural


WORDS, PLURAL_WORDS = extracted()


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", text))


def test_no_word_hides_from_the_extraction_in_an_f_string():
    # Babel reads no call inside an f-string (before Python 3.12): `t("…")` must stand outside.
    called = re.compile(r"""\bt\(\s*(?:"([^"]+)"|'([^']+)')""")
    hidden = set()
    for path in (ROOT / "platform").rglob("*.py"):
        for double, single in called.findall(path.read_text()):
            if (double or single) not in WORDS:
                hidden.add((path.name, double or single))
    assert not hidden, hidden


def test_the_extraction_finds_the_words_of_every_layer():
    assert {"Sign in", "The login or the password is wrong.", "breached", "approve", "is one of"} <= WORDS
    assert ("{count} record made.", "{count} records made.") in PLURAL_WORDS


def test_the_seed_languages_are_shipped():
    assert {"fr", "cs", "pt", "hr"} <= set(LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_word_of_the_pages_is_translated_with_its_placeholders(language):
    words = catalog(language)
    missing = sorted(WORDS - set(words))
    assert not missing, f"{language} lacks: {missing}"
    for msgid in WORDS:
        assert placeholders(msgid) == placeholders(words[msgid]), (language, msgid)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_plural_has_each_form_of_the_language(language):
    forms, _ = plurals(language)
    wanted = _read(language).num_plurals
    for singular, plural in PLURAL_WORDS:
        assert singular in forms, f"{language} lacks the plural of {singular!r}"
        assert len(forms[singular]) == wanted, (language, singular)
        for form in forms[singular]:
            assert placeholders(form) == placeholders(plural), (language, form)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_catalogue_keeps_a_word_nothing_uses(language):
    unused = sorted(set(catalog(language)) - WORDS) + sorted(set(plurals(language)[0]) - {s for s, _ in PLURAL_WORDS})
    assert not unused, f"{language} keeps: {unused}"


def test_a_word_without_translation_stays_english():
    assert translator("fr")("Sign in") == "Se connecter"
    assert translator("fr")("{first}–{last} of {total}", first=1, last=25, total=80) == "1–25 sur 80"
    assert translator("de")("Sign in") == "Sign in"


@pytest.mark.parametrize("language, counts", [
    ("en", {1: "1 record made.", 3: "3 records made."}),
    ("fr", {0: "0 enregistrement créé.", 1: "1 enregistrement créé.", 2: "2 enregistrements créés."}),
    ("cs", {1: "Byl vytvořen 1 záznam.", 3: "Byly vytvořeny 3 záznamy.", 5: "Bylo vytvořeno 5 záznamů."}),
    ("hr", {1: "Stvoren je 1 zapis.", 3: "Stvorena su 3 zapisa.", 11: "Stvoreno je 11 zapisa.",
            21: "Stvoren je 21 zapis."}),
    ("pt", {1: "1 registo criado.", 2: "2 registos criados."}),
])
def test_a_count_takes_the_form_its_language_gives_it(language, counts):
    tn = plural_translator(language)
    for count, said in counts.items():
        assert tn("{count} record made.", "{count} records made.", count) == said


def test_each_language_is_offered_in_its_own_words():
    assert [language_name(code) for code in ("en", "fr", "cs", "pt", "hr")] == [
        "English", "Français", "Čeština", "Português", "Hrvatski"]
    assert language_name("cs", capital=False) == "čeština"
