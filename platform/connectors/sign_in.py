"""Signing in, the one way the web (and anything else asking a password) does it: through
the directory when the definitions have a `directory:` section and the login is not one of
its `local_only` logins, with the local accounts otherwise."""
from __future__ import annotations

import logging

from deskbase.objects.store import Store
from deskbase.rules.access.directory import directory_settings
from deskbase.rules.access.identity import Identity, LoginRefused, authenticate, identity_of

from .active_directory import NO_ACCESS, UNREACHABLE, ActiveDirectory, DirectoryError, save_person

log = logging.getLogger("deskbase.directory")

__all__ = ["sign_in", "LoginRefused", "UNREACHABLE", "NO_ACCESS"]


def sign_in(store: Store, login: str, password: str) -> Identity:
    """The identity of a login whose password is right; LoginRefused otherwise, whose `reason`
    is the sentence to show. A directory sign-in creates or updates the local account
    (name, email, phone, department, roles from the groups) before the identity is built."""
    settings = directory_settings(store.definitions)
    if settings is None or settings.is_local(login):
        return authenticate(store, login, password)
    try:
        person = ActiveDirectory(settings).check_password(login, password)
    except DirectoryError as error:
        log.error("directory sign-in of %r impossible: %s", login, error)
        raise LoginRefused(UNREACHABLE) from None
    save_person(store, person)
    if not (person.active and person.roles):
        raise LoginRefused(NO_ACCESS)
    return identity_of(store, person.login)
