"""People where a login is asked (an assignee, the user fields of a form): offered by name as
they type (a `<datalist>` of the active accounts, "Sophie Bernard" beside `sbernard`), and a
name typed in full taken for its login. A field's or input's `offer:` narrows them to some
roles and shows a figure beside each name ("Sophie Bernard · 4 open"): how many records of
a type they hold, counted through that type's index within what the reader may read."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deskbase.objects.fields import label_text
from deskbase.objects.kept_objects import kept_object
from deskbase.rules.access.identity import ACCOUNTS_KEY


def people(session, offer: Mapping[str, Any] | None = None, language: str = "en") -> list[tuple[str, str]]:
    """(login, what the list shows) of the active accounts `offer` names (every one without
    it), by name; with the figure its `count` asks for beside each name."""
    accounts = kept_object(session.connection, ACCOUNTS_KEY) or {}
    roles = set((offer or {}).get("roles") or ())
    found = sorted(((account.login, account.name or account.login) for account in accounts.values()
                    if account.active and (not roles or roles & set(account.roles))),
                   key=lambda person: person[1].casefold())
    count = (offer or {}).get("count")
    if not count:
        return found
    held = dict(session.count_by(count["type"], count["field"], count.get("where")))
    words = label_text(count.get("label"), language, "")
    return [(login, f"{name} · {held.get(login, 0)}{' ' + words if words else ''}") for login, name in found]


def login_of(session, typed: Any) -> Any:
    """The login `typed` names: itself when it is one; the login of the one active account of
    that name (or "Name (login)"); else what was typed, for the field to refuse with its reason."""
    if not isinstance(typed, str) or not typed.strip():
        return typed
    text = typed.strip()
    accounts = kept_object(session.connection, ACCOUNTS_KEY) or {}
    if text in accounts:
        return text
    if text.endswith(")") and "(" in text:
        inner = text[text.rindex("(") + 1:-1].strip()
        if inner in accounts:
            return inner
    named = [account.login for account in accounts.values()
             if account.active and (account.name or "").casefold() == text.casefold()]
    return named[0] if len(named) == 1 else typed


def logins_of(session, values: Mapping[str, Any], names: set[str]) -> dict[str, Any]:
    """`values` with the people named in the fields `names` as their logins."""
    return {name: login_of(session, value) if name in names else value for name, value in values.items()}


def person_fields(fields: Mapping[str, Any]) -> set[str]:
    """The fields (or inputs) that name one person by login, typed as a name too."""
    return {name for name, field in fields.items() if field.kind.name == "user"}
