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
# A word is a run of letters and digits; `_` separates words like punctuation does.
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """`text` in lower case without accents: `Écran Tiskárna Đuro` → `ecran tiskarna duro`."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return bare.translate(_LETTERS)


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
