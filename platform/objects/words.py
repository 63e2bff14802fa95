"""`N_("…")` marks a text people read translated, where it is written rather than where it is
translated: a constant, a state's name, a reason carried by an exception. The interface
translates it when it shows it (`t(reason)`); `pybabel extract` (babel.cfg) finds it here,
so that a catalogue lacking it fails tests/views/test_i18n.py."""
from __future__ import annotations


def N_(text: str) -> str:
    """The text itself: a mark for message extraction."""
    return text
