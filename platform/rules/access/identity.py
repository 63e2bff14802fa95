"""Who is signed in: local accounts (ZODB root key `deskbase.accounts`, login → Account),
their passwords, and the `Identity` every read and write is made as (`$me` in filters).
The `identity:` section of the definitions says which records are groups and organizations."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from BTrees.OOBTree import OOBTree
from persistent import Persistent

from deskbase.objects.compiling import Section, definition_error
from deskbase.objects.errors import DefinitionError, DeskbaseError, FieldError, NotFound, ValidationError, hint_for
from deskbase.objects.fields import RefKind, UserKind, UsersKind
from deskbase.objects.kept_objects import kept_object
from deskbase.objects.model import Definitions
from deskbase.objects.store import Store
from deskbase.objects.words import N_

from .substitution import stands_in_for

ACCOUNTS_KEY = "deskbase.accounts"
MINIMUM_PASSWORD_LENGTH = 10
REFUSED = "the login or the password is wrong, or the account is disabled"
WRONG_LOGIN = N_("The login or the password is wrong.")
LOCAL, DIRECTORY = "local", "directory"


class LoginRefused(DeskbaseError):
    """A sign-in that failed. `reason` is the sentence the person is shown: by default one
    for every cause, so it never says which part was wrong; a cause of its own (such as an
    unreachable directory) only where saying it reveals nothing to a guesser."""

    def __init__(self, reason: str = WRONG_LOGIN) -> None:
        super().__init__(REFUSED if reason == WRONG_LOGIN else reason)
        self.reason = reason


class AccountError(DeskbaseError):
    """An account that cannot be created or changed as asked; the message says why."""


# -- the `identity:` section ---------------------------------------------------------------

@dataclass(frozen=True)
class IdentitySettings:
    """Which type holds groups (and which of its ref fields is a group's parent) and which
    holds organizations; each may be absent."""

    group_type: str | None = None
    group_parent: str | None = None
    organization_type: str | None = None
    person_type: str | None = None       # the records of people (contacts), `$me.person` being one's own
    person_login: str | None = None      # the user field of that type naming the person's login


_SCHEMA = {
    "type": "object",
    "x-noun": "the identity settings: a map such as {group_type: group, organization_type: organization}",
    "x-member": "a setting of `identity`",
    "description": "where accounts find their groups, organization and person record",
    "properties": {
        "group_type": {"type": "string", "x-noun": "a type name",
                       "description": "the type whose records are the groups accounts belong to"},
        "group_parent": {"type": "string", "x-noun": "a field name",
                         "description": "the ref field of a group naming the group above it"},
        "organization_type": {"type": "string", "x-noun": "a type name",
                              "description": "the type whose records are the accounts' organizations"},
        "person_type": {"type": "string", "x-noun": "a type name",
                        "description": "the type whose records are the people accounts belong to ($me.person)"},
        "person_login": {"type": "string", "x-noun": "a field name",
                         "description": "the field of a person record holding its account's login"},
    },
    "additionalProperties": False,
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[IdentitySettings, list[DefinitionError]]:
    spec = document.get("identity") or {}
    errors: list[DefinitionError] = []
    for key in ("group_type", "organization_type"):
        name = spec.get(key)
        if name is not None and name not in definitions.types:
            errors.append(definition_error(positions, ("identity", key), f"`{name}` is not a type",
                                           hint_for(name, definitions.types)))
    group_type, parent = spec.get("group_type"), spec.get("group_parent")
    if parent is not None:
        if group_type is None:
            errors.append(definition_error(positions, ("identity", "group_parent"),
                                           "`group_parent` needs `group_type`: the type whose field it is"))
        elif group_type in definitions.types:
            field = definitions.types[group_type].fields.get(parent)
            if field is None:
                errors.append(definition_error(positions, ("identity", "group_parent"),
                                               f"`{parent}` is not a field of type `{group_type}`",
                                               hint_for(parent, definitions.types[group_type].fields)))
            elif not isinstance(field.kind, RefKind) or field.kind.multiple or field.kind.to != group_type:
                errors.append(definition_error(positions, ("identity", "group_parent"),
                                               f"`{parent}` must be a ref field of `{group_type}` pointing at "
                                               f"`{group_type}` (a group's parent group)"))
    person_type, person_login = spec.get("person_type"), spec.get("person_login")
    if (person_type is None) != (person_login is None):
        errors.append(definition_error(positions, ("identity",), "`person_type` and `person_login` go together: the "
                                       "type of people's records and its user field holding their login"))
    elif person_type is not None:
        typedef = definitions.types.get(person_type)
        if typedef is None:
            errors.append(definition_error(positions, ("identity", "person_type"), f"`{person_type}` is not a type",
                                           hint_for(person_type, definitions.types)))
        else:
            field = typedef.fields.get(person_login)
            if field is None or not isinstance(field.kind, UserKind) or typedef.index_for(person_login) is None:
                users = [n for n, f in typedef.own_fields.items() if isinstance(f.kind, UserKind)]
                errors.append(definition_error(positions, ("identity", "person_login"),
                                               f"`{person_login}` is not an indexed user field of `{person_type}`",
                                               hint_for(person_login, users)
                                               or (f"use {', '.join(users)}" if users else None)))
    settings = IdentitySettings(group_type, parent, spec.get("organization_type"), person_type, person_login)
    return settings, errors


IDENTITY_SECTION = Section("identity", "top", _SCHEMA, _compile)


def identity_settings(definitions: Definitions) -> IdentitySettings:
    """The `identity:` settings of compiled definitions (empty ones when absent)."""
    return definitions.extensions.get("identity") or IdentitySettings()


# -- identities ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    """The person (or job) a session acts as. `groups` holds the direct groups and all
    their ancestors; `superuser` bypasses every access rule (the system, for jobs).
    `acting_for` holds the logins of the people this person stands in for while they are
    away (see substitution.py), or None when they stand in for nobody."""

    id: str
    name: str = ""
    roles: tuple[str, ...] = ()
    groups: tuple[int, ...] = ()
    organization: int | None = None
    acting_for: tuple[str, ...] | None = None
    language: str = "en"
    superuser: bool = False
    person: int | None = None          # one's own record among people's (`identity: person_type`)

    def as_context(self) -> Mapping[str, Any]:
        """What filters see as `$me`: `$me` is the login, `$me.roles`, `$me.groups`, …"""
        return MappingProxyType({"id": self.id, "name": self.name, "roles": self.roles,
                                 "groups": self.groups, "organization": self.organization,
                                 "acting_for": self.acting_for, "language": self.language,
                                 "person": self.person})


SYSTEM = Identity("system", "System", superuser=True)
"""Jobs and imports: unrestricted, yet named in the history."""


# -- accounts ------------------------------------------------------------------------------

class Account(Persistent):
    """An account. Changed only through the functions of this module. `source` is `local`
    (its password is checked here) or `directory` (the directory checks it and keeps the
    name, email, phone, department and roles current; no local password)."""

    source = LOCAL          # class defaults: accounts stored before these existed read as local
    phone = ""
    department = ""
    language_chosen = False     # the person chose their language: the directory's no longer replaces it

    def __init__(self, login: str, name: str, email: str, password_hash: str, roles: tuple[str, ...],
                 groups: tuple[int, ...], organization: int | None, language: str):
        self.login = login
        self.name = name
        self.email = email
        self.password_hash = password_hash
        self.roles = roles
        self.groups = groups
        self.organization = organization
        self.active = True
        self.language = language


# Argon2id (argon2-cffi) at the parameters OWASP gives as its first choice: 19 MiB, two
# passes, one lane — about 60 ms on this project's machines. Hashes made before with scrypt
# (`scrypt$n$r$p$salt$hash`) still open their account and are replaced at its next sign-in.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    """The Argon2id hash of a password (PHC string, with its own random salt)."""
    return _HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    """Whether a password matches a stored hash (Argon2id, or an older scrypt one)."""
    if stored.startswith("$argon2"):
        try:
            return _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(computed, bytes.fromhex(digest))


def needs_rehash(stored: str) -> bool:
    """Whether a hash that just matched should be made again: scrypt, or weaker Argon2."""
    return not stored.startswith("$argon2") or _HASHER.check_needs_rehash(stored)


# Verified against for unknown logins, so that a refusal takes as long whatever its cause.
_DUMMY_HASH = hash_password(secrets.token_hex(16))


def password_problem(login: str, password: str) -> str | None:
    """Why a password is refused by the policy, or None when it is acceptable."""
    if len(password) < MINIMUM_PASSWORD_LENGTH:
        return f"a password needs at least {MINIMUM_PASSWORD_LENGTH} characters (this one has {len(password)})"
    if password.strip().lower() == login.strip().lower():
        return "a password cannot be the login"
    return None


def _accounts(connection, create: bool = False) -> OOBTree | None:
    return kept_object(connection, ACCOUNTS_KEY, OOBTree if create else None)


def check_logins(session, action: str, typedef, record, values: Mapping[str, Any]) -> None:
    """The write-path check that a `user` or `users` field names accounts: a login typed
    wrong (`assignee: cmartn`) would otherwise give a record to nobody, silently. Only the
    logins a write adds are checked (one whose account was removed since stays where it
    is), and the writer's own login is always one. What the engine writes itself (jobs,
    imports, transitions' effects) is its own decision and is not checked here."""
    if action not in ("create", "update") or session.identity is None:
        return
    accounts = None
    problems: dict[str, str] = {}
    for name, raw in values.items():
        field = typedef.fields.get(name)
        if field is None or not isinstance(field.kind, (UserKind, UsersKind)) or raw in (None, "", (), []):
            continue
        try:
            logins = field.kind.coerce(raw, None)
        except FieldError:
            continue                         # the write path says what is wrong with it
        before = record.get(name) if record is not None else None
        kept = set(before if isinstance(before, (tuple, list)) else [before])
        added = [login for login in (logins if isinstance(logins, tuple) else (logins,))
                 if login and login not in kept and login != session.user]
        if not added:
            continue
        if accounts is None:
            accounts = _accounts(session.connection) or {}
        unknown = [login for login in added if login not in accounts]
        if unknown:
            hint = hint_for(unknown[0], list(accounts.keys())) if len(accounts) < 5000 else None
            problems[name] = (f"`{unknown[0]}` is not an account here" + (f"; {hint}" if hint else "") if
                              len(unknown) == 1 else f"{', '.join(f'`{u}`' for u in unknown)} are not accounts here")
    if problems:
        raise ValidationError(typedef.name, problems, typedef.title())


def _check_membership(session, roles: Sequence[str], groups: Sequence[int], organization: int | None) -> None:
    definitions = session.definitions
    for role in roles:
        if role not in definitions.roles:
            hint = hint_for(role, definitions.roles)
            raise AccountError(f"`{role}` is not a role of the definitions" + (f"; {hint}" if hint else ""))
    settings = identity_settings(definitions)
    for kind, type_name, ids in (("group", settings.group_type, groups),
                                 ("organization", settings.organization_type,
                                  () if organization is None else (organization,))):
        if ids and type_name is None:
            raise AccountError(f"the definitions name no {kind} type (`identity: {{{kind}_type: …}}`)")
        for record_id in ids:
            try:
                session.get(type_name, record_id)
            except NotFound as error:
                raise AccountError(str(error)) from None


def create_account(store: Store, login: str, *, name: str, password: str, roles: Iterable[str] = (),
                   groups: Iterable[int] = (), organization: int | None = None, email: str = "",
                   language: str = "en") -> None:
    """Create an active local account; AccountError if the login is taken or a value is wrong."""
    login = login.strip()
    if not login or any(c.isspace() for c in login):
        raise AccountError("a login is one word without spaces, such as `mdupont`")
    problem = password_problem(login, password)
    if problem:
        raise AccountError(problem)
    roles, groups = tuple(roles), tuple(int(g) for g in groups)
    password_hash = hash_password(password)

    def work(session) -> None:
        accounts = _accounts(session.connection, create=True)
        assert accounts is not None                 # create=True makes them when missing
        if login in accounts:
            raise AccountError(f"the login `{login}` is already taken")
        _check_membership(session, roles, groups, organization)
        accounts[login] = Account(login, name, email, password_hash, roles, groups, organization, language)
    store.run(work)


def _account(session, login: str) -> Account:
    accounts = _accounts(session.connection)
    account = accounts.get(login) if accounts is not None else None
    if account is None:
        raise AccountError(f"there is no account `{login}`")
    return account


def set_password(store: Store, login: str, password: str) -> None:
    """Give an account a new password, checked against the policy."""
    problem = password_problem(login, password)
    if problem:
        raise AccountError(problem)
    password_hash = hash_password(password)

    def work(session) -> None:
        _account(session, login).password_hash = password_hash
    store.run(work)


_UNCHANGED: Any = object()


def update_account(store: Store, login: str, *, name: str | None = None, email: str | None = None,
                   roles: Iterable[str] | None = None, groups: Iterable[int] | None = None,
                   organization: Any = _UNCHANGED, language: str | None = None, active: bool | None = None,
                   language_chosen: bool | None = None) -> None:
    """Change what an administrator may change of an account (None, or no `organization`:
    left as it is); AccountError with a sentence when a value is wrong. The roles of a
    directory account are the directory's: they are refused here."""
    def work(session) -> None:
        account = _account(session, login)
        new_roles = account.roles if roles is None else tuple(roles)
        new_groups = account.groups if groups is None else tuple(int(g) for g in groups)
        new_organization = account.organization if organization is _UNCHANGED else organization
        if account.source == DIRECTORY and new_roles != account.roles:
            raise AccountError("the roles of a directory account come from its groups in the directory")
        if language is not None and language not in session.definitions.languages:
            raise AccountError(f"`{language}` is not a language of the definitions: "
                               f"{', '.join(session.definitions.languages)}")
        _check_membership(session, new_roles, new_groups, new_organization)
        for attribute, value in (("name", name), ("email", email), ("language", language), ("active", active),
                                 ("language_chosen", language_chosen)):
            if value is not None and getattr(account, attribute) != value:
                setattr(account, attribute, value)
        if new_roles != account.roles:
            account.roles = new_roles
        if new_groups != account.groups:
            account.groups = new_groups
        if new_organization != account.organization:
            account.organization = new_organization
    store.run(work)


def disable_account(store: Store, login: str) -> None:
    """Stop an account from signing in; it is kept for the history that names it."""
    def work(session) -> None:
        _account(session, login).active = False
    store.run(work)


def find_account(store: Store, login: str) -> Account | None:
    """A read-only copy of an account, or None when there is none of that login."""
    def work(session) -> Account | None:
        accounts = _accounts(session.connection)
        account = accounts.get(login) if accounts is not None else None
        return _detached(account) if account is not None else None
    return store.read(work)


def save_directory_account(store: Store, login: str, *, name: str, email: str = "", phone: str = "",
                           department: str = "", roles: Iterable[str] = (), active: bool = True,
                           create: bool = True, write: bool = True, adopt: bool = False, language: str = "") -> str:
    """Create or bring up to date the account of a person of the directory: `created`,
    `updated`, `unchanged` (or `absent` when not `create`d); `write=False` only tells. A
    local account of the same login is left as it is (`local`): a directory identity never
    takes over an account of this site, whose password (the administrator's) someone of the
    directory could otherwise replace by their own. With `adopt` (an administrator's
    decision, `deskbase directory adopt`), it becomes a directory account and its local
    password is no longer used. Groups and organization stay as set here; the language is the
    directory's (`language`, such as `cs-CZ`, when the definitions offer it) until the person
    chooses one."""
    values: dict[str, Any] = {"name": name, "email": email, "phone": phone, "department": department,
                              "roles": tuple(roles), "active": bool(active)}     # the account's attributes

    def work(session) -> str:
        accounts = _accounts(session.connection, create=write)
        account = accounts.get(login) if accounts is not None else None
        offered = offered_language(language, session.definitions.languages)
        if offered and not (account is not None and account.language_chosen):
            values["language"] = offered
        if account is None:
            if not create:
                return "absent"
            if write:
                assert accounts is not None             # create=write made them
                _check_membership(session, values["roles"], (), None)
                account = Account(login, name, email, "", values["roles"], (), None,
                                  values.get("language") or session.definitions.languages[0])
                account.source, account.phone, account.department = DIRECTORY, phone, department
                account.active = values["active"]
                accounts[login] = account
            return "created"
        if account.source != DIRECTORY and not adopt:
            return "local"
        changed = {key: value for key, value in values.items() if getattr(account, key) != value}
        if account.source != DIRECTORY:
            changed["source"] = DIRECTORY
        if not changed:
            return "unchanged"
        if write:
            if "roles" in changed:
                _check_membership(session, values["roles"], (), None)
            for key, value in changed.items():
                setattr(account, key, value)
            account.password_hash = ""
        return "updated"
    return store.run(work) if write else store.read(work)


def offered_language(tag: str, languages: Iterable[str]) -> str | None:
    """The language of the definitions a language tag of a directory means (`cs-CZ`, `pt_PT`,
    `FR` → cs, pt, fr), or None when it names none of them."""
    wanted = tag.strip().replace("_", "-").lower()
    if not wanted:
        return None
    offered = list(languages)
    for candidate in (wanted, wanted.split("-")[0]):
        for code in offered:
            if code.lower() == candidate:
                return code
    return None


def list_accounts(store: Store) -> list[Account]:
    """Every account, by login (read-only copies of their attributes are safe to keep)."""
    def work(session) -> list[Account]:
        accounts = _accounts(session.connection)
        return [_detached(a) for a in accounts.values()] if accounts is not None else []
    return store.read(work)


def _detached(account: Account) -> Account:
    copy = Account.__new__(Account)
    copy.__dict__.update({k: getattr(account, k) for k in
                          ("login", "name", "email", "password_hash", "roles", "groups", "organization",
                           "active", "language", "source", "phone", "department", "language_chosen")})
    return copy


def _ancestors(session, groups: tuple[int, ...]) -> tuple[int, ...]:
    settings = identity_settings(session.definitions)
    if not groups or settings.group_type is None or settings.group_parent is None:
        return groups
    records = session.container(settings.group_type).records
    found = list(groups)
    pending = list(groups)
    while pending:   # a cycle of parents stops at groups already found
        record = records.get(pending.pop())
        parent = record.get(settings.group_parent) if record is not None else None
        if parent is not None and parent not in found:
            found.append(parent)
            pending.append(parent)
    return tuple(found)


def identity_for_account(session, account: Account) -> Identity:
    """The identity an account acts as, read in an open session (no password asked)."""
    return _identity(session, account)


def _identity(session, account: Account) -> Identity:
    # Built per request or session, so the absences that hold now are read here (one indexed query).
    superuser = any(session.definitions.roles.get(role, {}).get("superuser") for role in account.roles)
    return Identity(account.login, account.name, tuple(account.roles), _ancestors(session, tuple(account.groups)),
                    account.organization, stands_in_for(session, account.login) or None, account.language,
                    bool(superuser), _person(session, account.login))


def _person(session, login: str) -> int | None:
    """The id of the person record naming this login (one indexed query), or None."""
    settings = identity_settings(session.definitions)
    if settings.person_type is None:
        return None
    page = session.query(settings.person_type, {settings.person_login: login}, limit=1, scoped=False)
    return page.records[0].id if page.records else None


def identity_of(store: Store, login: str) -> Identity:
    """The identity of an active account, without a password (jobs, `--as` in the CLI)."""
    def work(session) -> Identity:
        account = _account(session, login)
        if not account.active:
            raise AccountError(f"the account `{login}` is disabled")
        return _identity(session, account)
    return store.read(work)


def authenticate(store: Store, login: str, password: str) -> Identity:
    """The identity of a login whose password matches; LoginRefused (one message for every
    cause) otherwise."""
    def work(session) -> tuple[Identity, bool]:
        accounts = _accounts(session.connection)
        account = accounts.get(login) if accounts is not None else None
        # Hash even when there is no such account: the time taken must not tell.
        matches = verify_password(password, account.password_hash if account is not None else _DUMMY_HASH)
        if account is None or not matches or not account.active or account.source != LOCAL:
            raise LoginRefused()
        return _identity(session, account), needs_rehash(account.password_hash)
    identity, stale = store.read(work)
    if stale:                    # made with an older scheme: hashed again now that the password is known
        fresh = hash_password(password)

        def upgrade(session) -> None:
            accounts = _accounts(session.connection)
            account = accounts.get(login) if accounts is not None else None
            if account is not None and verify_password(password, account.password_hash):
                account.password_hash = fresh
        store.run(upgrade)
    return identity


# -- demo users ----------------------------------------------------------------------------

def load_demo_users(store: Store, entries: Sequence[Mapping[str, Any]], keys: Mapping[str, tuple[str, int]],
                    place: str, *, notify: bool = True, now: datetime | None = None) -> int:
    """Create the accounts of a demo file's `users:` list; groups and organization are given
    by the keys of demo records. Returns how many were created (accounts carry no moment:
    `now` changes nothing)."""
    known = ("login", "name", "email", "roles", "groups", "organization", "password", "language")
    for index, entry in enumerate(entries):
        where = f"{place}: users[{index}]"
        if not isinstance(entry, Mapping) or "login" not in entry or "password" not in entry:
            raise AccountError(f"{where}: each user is a map with at least `login` and `password`")
        for key in entry:
            if key not in known:
                hint = hint_for(str(key), known)
                raise AccountError(f"{where}: `{key}` is not a setting of a user" + (f"; {hint}" if hint else ""))

        def record_id(key: Any) -> int:
            if str(key) not in keys:
                hint = hint_for(str(key), keys)
                raise AccountError(f"{where}: `{key}` is not the key of a demo record" + (f"; {hint}" if hint else ""))
            return keys[str(key)][1]
        try:
            create_account(store, str(entry["login"]), name=str(entry.get("name", entry["login"])),
                           password=str(entry["password"]), roles=entry.get("roles") or (),
                           groups=[record_id(k) for k in entry.get("groups") or ()],
                           organization=record_id(entry["organization"]) if entry.get("organization") else None,
                           email=str(entry.get("email", "")), language=str(entry.get("language", "en")))
        except AccountError as error:
            raise AccountError(str(error) if str(error).startswith(place) else f"{where}: {error}") from None
    return len(entries)


def is_system(session: Any) -> bool:
    """Whether a session acts as the system (no identity, or `identity.SYSTEM`): it may set
    states directly and edit locked records, for imports, demo data and data fixes."""
    return session.identity is None or session.identity == SYSTEM
