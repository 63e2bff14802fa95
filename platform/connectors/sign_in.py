"""Signing in, the one way the web (and anything else asking a password) does it: through
the directory when the definitions have a `directory:` section and the login is not one of
its `local_only` logins nor an account of this site (customers' local accounts sign in
beside the directory's people), with the local accounts otherwise. Which account the directory
means is decided on the entry it resolves, not on what was typed: no form of a login
(`admin@…`, `EXAMPLE\admin`) lets a directory identity into a local account."""
from __future__ import annotations

import logging

from deskbase.objects.store import Store
from deskbase.rules.access.directory import directory_settings
from deskbase.rules.access.identity import (
    DIRECTORY,
    WRONG_LOGIN,
    Identity,
    LoginRefused,
    authenticate,
    find_account,
    identity_of,
)

from .active_directory import LOCAL_ACCOUNT, NO_ACCESS, UNREACHABLE, ActiveDirectory, DirectoryError, save_person

log = logging.getLogger("deskbase.directory")

__all__ = ["sign_in", "LoginRefused", "UNREACHABLE", "NO_ACCESS"]


def _is_local_account(store: Store, login: str) -> bool:
    """Whether a login is an account of this site (customers, partners, an administrator),
    which signs in with its own password beside the directory's people."""
    account = find_account(store, login)
    return account is not None and account.source != DIRECTORY


def sign_in(store: Store, login: str, password: str) -> Identity:
    """The identity of a login whose password is right; LoginRefused otherwise, whose `reason`
    is the sentence to show. A directory sign-in creates or updates the local account
    (name, email, phone, department, roles from the groups) before the identity is built."""
    settings = directory_settings(store.definitions)
    if settings is None or settings.is_local(login) or _is_local_account(store, login):
        return authenticate(store, login, password)
    try:
        person = ActiveDirectory(settings).check_password(login, password)
    except DirectoryError as error:
        log.error("directory sign-in of %r impossible: %s", login, error)
        raise LoginRefused(UNREACHABLE) from None
    if settings.is_local(person.login):
        # `admin@example.org` or `EXAMPLE\admin` typed to reach the directory's `admin`: the
        # local-only account of that login is never touched by a directory identity
        log.warning("directory sign-in as %r refused: it is the directory's %r, a local_only login", login,
                    person.login)
        raise LoginRefused(WRONG_LOGIN)
    if save_person(store, person) == "local":
        log.warning("directory sign-in as %r refused: %r is a local account here", login, person.login)
        raise LoginRefused(LOCAL_ACCOUNT)
    if not (person.active and person.roles):
        raise LoginRefused(NO_ACCESS)
    return identity_of(store, person.login)
