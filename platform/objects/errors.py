"""The object layer's exceptions: each carries what a person needs to fix the problem.

No traceback is ever a user's error message; every class here renders a sentence.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def did_you_mean(name: object, candidates: Iterable[str]) -> str | None:
    """The closest known name to a misspelt one, or None when nothing is close (`name` as
    a document wrote it: read as text, whatever it is)."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return matches[0] if matches else None


def hint_for(name: object, candidates: Iterable[str]) -> str | None:
    """`did you mean `x`?` for a misspelt name, or None."""
    close = did_you_mean(name, candidates)
    return f"did you mean `{close}`?" if close else None


class DeskbaseError(Exception):
    """Base of every error the engine reports to a person."""


@dataclass
class DefinitionError(DeskbaseError):
    """One problem in a definitions file, located by file, line, column and document path."""

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{text}; {self.hint}" if self.hint else text


class DefinitionErrors(DeskbaseError):
    """All problems found in a set of definitions, reported together."""

    def __init__(self, errors: list[DefinitionError]):
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.column, e.message))
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"{count} problem{'s' if count != 1 else ''} in the definitions:"
        return "\n".join([head, *(f"  {e}" for e in self.errors)])


class FieldError(DeskbaseError, ValueError):
    """A single value that cannot be accepted for a field; the message is a sentence."""


class ValidationError(DeskbaseError):
    """A record that fails validation: one message per field, all reported at once."""

    def __init__(self, type_name: str, errors: Mapping[str, str], label: str | None = None):
        self.type_name = type_name
        self.errors = dict(errors)
        self.label = label or type_name
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"the {self.label} was not saved:"]
        lines += [f"  {field}: {message}" for field, message in self.errors.items()]
        return "\n".join(lines)


class StaleEdit(DeskbaseError):
    """An update made from an old version of a record; it is refused so nothing is overwritten."""

    def __init__(self, number: str, expected: int, current: int, by: str | None, at: str | None):
        self.number, self.expected, self.current = number, expected, current
        who = f" by {by}" if by else ""
        when = f" at {at}" if at else ""
        super().__init__(
            f"{number} was changed{who}{when} after you opened it (you edited version {expected}, "
            f"it is now at version {current}); nothing was saved: reload it and apply your change again"
        )


class NotFound(DeskbaseError):
    """A record, type or number that does not exist."""


class QueryError(DeskbaseError):
    """A filter, sort or query that cannot be run; names the part at fault."""

    def __init__(self, message: str, path: str = "", hint: str | None = None):
        self.message, self.path, self.hint = message, path, hint
        text = f"{path}: {message}" if path else message
        super().__init__(f"{text}; {hint}" if hint else text)

    @property
    def said(self) -> str:
        """The sentence for a person: the mistake and the hint, without the engine's path to it
        (a typed filter is one part of the query the engine runs: `all[1]` would mislead)."""
        return f"{self.message}; {self.hint}" if self.hint else self.message


class MigrationError(DeskbaseError):
    """Stored data that cannot follow a change of definitions; nothing was changed."""
