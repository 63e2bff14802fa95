"""The words of the web pages in each language the definitions offer. Labels of types,
fields and views come from the definitions; the interface's own words are gettext
catalogues, `locale/<language>/LC_MESSAGES/deskbase.po`, read with Babel when first
needed (no compile step). A missing translation shows the English text.

To add a language: copy `locale/fr` to `locale/<code>` and translate its `msgstr`s;
`tests/views/test_i18n.py` checks that every word the pages use is translated."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from gettext import c2py
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

LOCALES = Path(__file__).parent / "locale"
DOMAIN = "deskbase"


@lru_cache(maxsize=16)
def _read(language: str) -> Catalog | None:
    path = LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return None
    with path.open("rb") as source:
        return read_po(source, locale=language, domain=DOMAIN)


@lru_cache(maxsize=16)
def catalog(language: str) -> Mapping[str, str]:
    """msgid → msgstr of a language (empty for English or a language without a catalogue)."""
    read = _read(language)
    return {message.id: message.string for message in read or ()
            if message.id and message.string and isinstance(message.id, str) and isinstance(message.string, str)}


@lru_cache(maxsize=16)
def plurals(language: str) -> tuple[Mapping[str, tuple[str, ...]], Callable[[int], int]]:
    """The plural entries of a language (singular msgid → its forms) and the rule choosing a
    form for a count (the catalogue's `Plural-Forms`; English's without a catalogue)."""
    read = _read(language)
    if read is None:
        return {}, _ENGLISH
    forms = {message.id[0]: tuple(message.string) for message in read
             if isinstance(message.id, tuple) and isinstance(message.string, tuple) and all(message.string)}
    return forms, c2py(read.plural_expr)


def _ENGLISH(count: int) -> int:
    return 0 if count == 1 else 1


@lru_cache(maxsize=16)
def translator(language: str) -> Callable[..., str]:
    """`t("Sign in")` in `language`; named values fill `{placeholders}`."""
    words = catalog(language)

    def translate(text: str, **values) -> str:
        found = words.get(text, text)
        return found.format(**values) if values else found
    return translate


@lru_cache(maxsize=16)
def plural_translator(language: str) -> Callable[..., str]:
    """`tn("{count} record made.", "{count} records made.", count)` in `language`: the form
    its plural rule gives for `count` (Czech and Croatian have three); `count` and the named
    values fill the placeholders."""
    forms, rule = plurals(language)

    def translate(singular: str, plural: str, count: int, **values) -> str:
        found = forms.get(singular)
        if found:
            text = found[min(rule(count), len(found) - 1)]
        else:
            text = singular if _ENGLISH(count) == 0 else plural
        return text.format(count=count, **values)
    return translate


@lru_cache(maxsize=64)
def language_name(code: str, *, capital: bool = True) -> str:
    """A language as its speakers write it (`cs` → Čeština; `čeština` within a sentence)."""
    from babel import Locale, UnknownLocaleError
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(code.replace("-", "_")) or code
    except (ValueError, UnknownLocaleError):
        return code
    return name[:1].upper() + name[1:] if capital else name
