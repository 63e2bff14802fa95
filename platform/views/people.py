"""People where a login is asked (an assignee, the user fields of a form): offered by name as
they type (a `<datalist>` of the active accounts, "Sophie Bernard" beside `sbernard`), and a
name typed in full taken for its login."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deskbase.objects.kept_objects import kept_object
from deskbase.rules.access.identity import ACCOUNTS_KEY


def people(session) -> list[tuple[str, str]]:
    """(login, name) of the active accounts, by name."""
    accounts = kept_object(session.connection, ACCOUNTS_KEY) or {}
    found = [(account.login, account.name or account.login) for account in accounts.values() if account.active]
    return sorted(found, key=lambda person: person[1].casefold())


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
