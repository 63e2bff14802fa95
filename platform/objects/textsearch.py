"""Folding of text for search: case and accents are ignored, so `tiskarna` finds
`Tiskárna` and `duro` finds `Đuro`. The text index and the in-memory filter both use it."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

# Letters that NFKD leaves whole because they are not a base letter plus a mark.
_LETTERS = str.maketrans({
    "đ": "d", "ł": "l", "ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "þ": "th", "ı": "i",
    "ð": "d", "ħ": "h", "ŧ": "t", "ŀ": "l",
})
MARKS_KEPT = 20_000   # characters whose folding is remembered


class _Bare(dict):
    """A `str.translate` table that drops combining marks and spells out `_LETTERS`,
    filled as characters are met (most texts use a few dozen), so that folding walks the
    text in C rather than calling `unicodedata.combining` for each character."""

    def __missing__(self, code: int) -> int | str | None:
        kept: int | str | None = None if unicodedata.combining(chr(code)) else code
        if len(self) < MARKS_KEPT:    # bounded: a text of every script cannot grow it forever
            self[code] = kept
        return kept


_BARE = _Bare(_LETTERS)
# A word is a run of letters and digits; `_` separates words like punctuation does.
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """`text` in lower case without accents: `Écran Tiskárna Đuro` → `ecran tiskarna duro`."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKD", text.casefold()).translate(_BARE)


def words(text: str) -> list[str]:
    """The folded words of `text`, in order, repeats kept."""
    return _WORD.findall(fold(text))


def words_of(values: Mapping[str, Any], fields: Iterable[str]) -> frozenset[str]:
    """The distinct folded words of the text held by some fields of a record; items of
    multi-valued fields (tags) count, values that are not text are ignored."""
    found: set[str] = set()
    for name in fields:
        value = values.get(name)
        if isinstance(value, str):
            found.update(words(value))
        elif isinstance(value, (tuple, list)):
            for item in value:
                if isinstance(item, str):
                    found.update(words(item))
    return frozenset(found)
