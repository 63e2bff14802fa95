"""A filter of the definitions said in words, in a language: `Status is Awaiting pickup or
Unassigned, or Assignee is the person themselves`. Only what reads plainly is said: a
filter with a text search, an unknown field or a moving date gives None, and is then shown
as written."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from deskbase.objects.fields import BooleanKind, EnumKind, RefKind
from deskbase.objects.model import Definitions, TypeDef
from deskbase.objects.words import N_

from .filter_builder import WORDED
from .i18n import translator

# What the words of the person reading a filter stand for (`$me…`), as a sentence says them.
REFERENCES = {"$me": N_("the person themselves"), "$me.organization": N_("their organization"),
              "$me.groups": N_("one of their groups"), "$me.acting_for": N_("someone they stand in for"),
              "$me.person": N_("their own record"), "$me.roles": N_("one of their roles")}


# Comparisons of numbers say more and less, where those of dates say after and before.
NUMBERS = ("integer", "decimal", "money", "duration")
NUMBER_WORDS = {"gt": N_("more than"), "gte": N_("at least"), "lt": N_("less than"), "lte": N_("at most")}


class _Unsaid(Exception):
    """A part of a filter that words would not say plainly."""


def filter_words(spec: Any, typedef: TypeDef, definitions: Definitions, language: str) -> str | None:
    """The filter as a sentence in `language`, or None when it is better shown as written."""
    if not isinstance(spec, Mapping):
        return None
    try:
        return _all(spec, typedef, definitions, translator(language), language)
    except _Unsaid:
        return None


def _all(spec: Mapping[str, Any], typedef: TypeDef, definitions: Definitions, t: Callable[..., str],
         language: str) -> str:
    parts = [_part(key, operand, typedef, definitions, t, language, alone=len(spec) == 1)
             for key, operand in spec.items()]
    joiner = t("and")
    return f" {joiner} ".join(parts)


def _part(key: str, operand: Any, typedef: TypeDef, definitions: Definitions, t: Callable[..., str], language: str,
          alone: bool) -> str:
    if key in ("all", "any"):
        said = [_all(item, typedef, definitions, t, language) for item in operand if isinstance(item, Mapping)]
        both, either = t("and"), t("or")
        joined = (f" {both} " if key == "all" else f", {either} ").join(said)
        return joined if alone or key == "all" else f"({joined})"
    if key == "not" and isinstance(operand, Mapping):
        return t("not ({condition})", condition=_all(operand, typedef, definitions, t, language))
    if key == "via":
        target = typedef.fields.get(operand)
        if target is None:
            raise _Unsaid(key)
        return t("whose {field} they may read", field=target.title(language))
    field = typedef.fields.get(key)
    if field is None:
        raise _Unsaid(key)
    title = field.title(language)
    if isinstance(operand, Mapping) and isinstance(field.kind, RefKind) \
            and not set(operand) & {*WORDED, "in", "not_in", "gt", "lt"}:     # a filter on the record it points at
        target = definitions.types.get(field.kind.to)
        if target is None:
            raise _Unsaid(key)
        return t("{field}: {condition}", field=title, condition=_all(operand, target, definitions, t, language))
    if operand is None:
        return f"{title} {t(WORDED['empty'])}"
    if isinstance(operand, Mapping):
        said = []
        for operator, value in operand.items():
            if operator == "empty":
                said.append(t(WORDED["empty"]) if value else t("is not empty"))
            elif operator in NUMBER_WORDS and field.kind.name in NUMBERS:
                said.append(f"{t(NUMBER_WORDS[operator])} {_value(value, field.kind, t, language)}")
            elif operator in WORDED:
                said.append(f"{t(WORDED[operator])} {_value(value, field.kind, t, language)}")
            else:
                raise _Unsaid(operator)
        joiner = t("and")
        return f"{title} " + f" {joiner} ".join(said)
    if isinstance(operand, (list, tuple)):
        return f"{title} {t(WORDED['in'])} {_value(operand, field.kind, t, language)}"
    return f"{title} {t(WORDED['eq'])} {_value(operand, field.kind, t, language)}"


def _value(value: Any, kind, t: Callable[..., str], language: str) -> str:
    if isinstance(value, (list, tuple)):            # after "is one of": a list
        return ", ".join(_value(item, kind, t, language) for item in value)
    if isinstance(value, str) and value.startswith("$"):
        if value in REFERENCES:
            return t(REFERENCES[value])
        raise _Unsaid(value)                      # a moving date, a value of the record: as written
    if value is None:
        return t("empty")
    if isinstance(kind, EnumKind):
        return kind.text(value, language)
    if isinstance(kind, BooleanKind) or isinstance(value, bool):
        return t("yes") if value else t("no")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
