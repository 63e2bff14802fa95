"""Operators standing in for one another (P8, T20): the `substitution:` section names the
type whose records are absences — who is away, who stands in, from when until when — and
this module answers, through that type's indexes, who is away now and for whom a person
stands in (`$me.acting_for`, the history's "bob for alice", messages reaching the deputy)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from deskbase.objects.compiling import Section, definition_error
from deskbase.objects.errors import DefinitionError, hint_for
from deskbase.objects.fields import DateKind, DateTimeKind, TagsKind, UserKind
from deskbase.objects.filters import ByType
from deskbase.objects.model import Definitions
from deskbase.objects.session import Session

ROLES = ("person", "deputy", "starts", "ends")     # the settings that name fields of the absence type


@dataclass(frozen=True)
class Substitution:
    """The compiled `substitution:` section: the absence type and its fields. `by_day` is
    true when the period is given by `date` fields (the last day included), false for
    `datetime` fields (the end excluded)."""

    type: str
    person: str
    deputy: str
    starts: str
    ends: str
    by_day: bool
    scope: str | None = None      # a tags field: the types of work the deputy takes over (empty: all)


_WORDS = {"person": "its user field: who is away", "deputy": "its user field: who stands in",
          "starts": "its date or datetime field: when the absence starts",
          "ends": "its date or datetime field: when the absence ends",
          "scope": "its tags field of type names: the work taken over (all without it)"}
_SCHEMA = {
    "type": "object",
    "x-noun": "the absences: a map such as {type: absence, person: operator, deputy: deputy, "
              "starts: starts, ends: ends}",
    "x-member": "a setting of `substitution`",
    "required": ["type", "person", "deputy", "starts", "ends"],
    "description": "absences: the type of their records and which of its fields hold who, who stands in and when",
    "properties": {"type": {"type": "string", "x-noun": "a type name", "description": "the type of the absences"},
                   **{name: {"type": "string", "x-noun": "a field name", "description": _WORDS[name]}
                      for name in (*ROLES, "scope")}},
    "additionalProperties": False,
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions
             ) -> tuple[Substitution | None, list[DefinitionError]]:
    spec = document.get("substitution")
    if not spec:
        return None, []
    type_name = spec["type"]
    typedef = definitions.types.get(type_name)
    if typedef is None:
        return None, [definition_error(positions, ("substitution", "type"), f"`{type_name}` is not a type",
                                       hint_for(type_name, definitions.types))]
    errors: list[DefinitionError] = []
    wanted = {"person": (UserKind,), "deputy": (UserKind,), "starts": (DateKind, DateTimeKind),
              "ends": (DateKind, DateTimeKind)}
    for setting, kinds in wanted.items():
        name, path = spec[setting], ("substitution", setting)
        field = typedef.own_fields.get(name)
        fitting = [n for n, f in typedef.own_fields.items() if isinstance(f.kind, kinds)]
        what = "a user field" if kinds == (UserKind,) else "a date or datetime field"
        if field is None:
            errors.append(definition_error(positions, path, f"`{name}` is not a field of type `{type_name}`",
                                           hint_for(name, fitting)))
        elif not isinstance(field.kind, kinds):
            errors.append(definition_error(positions, path, f"`{name}` is a {field.kind.name} field; "
                                                            f"`{setting}` names {what} of `{type_name}`"))
        elif typedef.index_for(name) is None:
            errors.append(definition_error(positions, path, f"`{name}` is not indexed: absences are found "
                                                            f"through their indexes",
                                           f"add `{name}` to the `index` of `{type_name}`"))
    if not errors and type(typedef.fields[spec["starts"]].kind) is not type(typedef.fields[spec["ends"]].kind):
        errors.append(definition_error(positions, ("substitution", "ends"),
                                       "`starts` and `ends` must be of the same kind (both dates or both datetimes)"))
    scope = spec.get("scope")
    if scope is not None and not isinstance(getattr(typedef.own_fields.get(scope), "kind", None), TagsKind):
        errors.append(definition_error(positions, ("substitution", "scope"), f"`{scope}` is not a tags field of "
                                       f"`{type_name}`: the scope lists the types of work taken over",
                                       hint_for(scope, [n for n, f in typedef.own_fields.items()
                                                        if isinstance(f.kind, TagsKind)])))
    if errors:
        return None, errors
    by_day = isinstance(typedef.fields[spec["starts"]].kind, DateKind)
    return Substitution(type_name, spec["person"], spec["deputy"], spec["starts"], spec["ends"], by_day, scope), []


SUBSTITUTION_SECTION = Section("substitution", "top", _SCHEMA, _compile)


def substitution_of(definitions: Definitions) -> Substitution | None:
    """The compiled `substitution:` section, or None when the application declares no absences."""
    return definitions.extensions.get("substitution")


# -- who is away now -----------------------------------------------------------------------

def _current(settings: Substitution, who: str) -> dict[str, Any]:
    """Absences whose `who` field (person or deputy) is one of `$me.logins` and whose period
    holds now; an empty start or end leaves the period open on that side."""
    now, before, after = ("$today", "lte", "gte") if settings.by_day else ("$now", "lte", "gt")
    return {"all": [{who: "$me.logins"},
                    {"any": [{settings.starts: None}, {settings.starts: {before: now}}]},
                    {"any": [{settings.ends: None}, {settings.ends: {after: now}}]}]}


def _absences(session: Session, who: str, logins: Iterable[str]) -> list[Mapping[str, Any]]:
    """The values of the current absences whose `who` setting names one of `logins`, read
    as the system (who stands in for whom is not limited by what the asker may read)."""
    settings = substitution_of(session.definitions)
    logins = tuple(sorted({str(login) for login in logins if login}))
    if settings is None or not logins:
        return []
    context = {**session.context(), "me": {"id": session.user, "logins": logins}}
    page = session.query(settings.type, _current(settings, getattr(settings, who)), limit=None,
                         context=context, scoped=False)
    return [record.values for record in page.records]


def stands_in_for(session: Session, login: str) -> tuple[str, ...]:
    """The logins `login` stands in for now (the people away whose deputy they are), sorted.
    When an absence has a scope, the result is a `ByType`: in a filter on a type, only the
    people whose absence covers that type."""
    settings = substitution_of(session.definitions)
    if settings is None:
        return ()
    everywhere: set[str] = set()
    scoped: dict[str, set[str]] = {}
    for values in _absences(session, "deputy", (login,)):
        person = values.get(settings.person)
        if not person or person == login:
            continue
        types = tuple(values.get(settings.scope) or ()) if settings.scope else ()
        if types:
            for type_name in types:
                scoped.setdefault(type_name, set()).add(person)
        else:
            everywhere.add(person)
    every = tuple(sorted(everywhere | {p for people in scoped.values() for p in people}))
    if not scoped:
        return every
    return ByType(every, sorted(everywhere), {t: sorted(everywhere | people) for t, people in scoped.items()})


def absent_among(session: Session, logins: Iterable[str]) -> frozenset[str]:
    """Those of `logins` who are away now, with or without a deputy (automatic dispatch
    skips them, T20)."""
    settings = substitution_of(session.definitions)
    if settings is None:
        return frozenset()
    people = (values.get(settings.person) for values in _absences(session, "person", logins))
    return frozenset(person for person in people if person is not None)   # never None: the query asked for them


def with_deputies(session: Session, logins: Iterable[Any]) -> list[Any]:
    """`logins` followed by the deputies of those of them who are away now: a message meant
    for an absent person reaches whoever stands in for them, and still reaches the absent
    person too, who finds it on return. Without absences, `logins` unchanged."""
    logins = list(logins)
    settings = substitution_of(session.definitions)
    if settings is None:
        return logins
    deputies = sorted({deputy for values in _absences(session, "person", logins)
                       if (deputy := values.get(settings.deputy)) is not None})
    return logins + [deputy for deputy in deputies if deputy not in logins]
