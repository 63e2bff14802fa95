"""The words of the web pages in each language the definitions offer. Labels of types,
fields and views come from the definitions; the interface's own words are gettext
catalogues, `locale/<language>/LC_MESSAGES/deskbase.po`, read with Babel when first
needed (no compile step). A missing translation shows the English text.

To add a language: copy `locale/fr` to `locale/<code>` and translate its `msgstr`s;
`tests/views/test_i18n.py` checks that every word the pages use is translated."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALES = Path(__file__).parent / "locale"
DOMAIN = "deskbase"


@lru_cache(maxsize=16)
def catalog(language: str) -> Mapping[str, str]:
    """msgid → msgstr of a language (empty for English or a language without a catalogue)."""
    path = LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return {}
    with path.open("rb") as source:
        read = read_po(source, locale=language, domain=DOMAIN)
    # plural entries (their id a tuple of forms) are not used by the interface
    return {message.id: message.string for message in read
            if message.id and message.string and isinstance(message.id, str) and isinstance(message.string, str)}


@lru_cache(maxsize=16)
def translator(language: str) -> Callable[..., str]:
    """`t("Sign in")` in `language`; named values fill `{placeholders}`."""
    words = catalog(language)

    def translate(text: str, **values) -> str:
        found = words.get(text, text)
        return found.format(**values) if values else found
    return translate
