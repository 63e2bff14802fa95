"""Active Directory over LDAP with ldap3: a sign-in checked by a simple bind as the person
(over LDAPS or StartTLS only), their attributes and groups (nested ones included) read, and
the sync that keeps the directory's accounts here current. Every value put into a filter
is escaped. Servers are tried in their order; the next one only when one cannot be reached.

What people are told (AD's `data NNN` sub-codes of invalidCredentials, never shown raw):
525 (no such user), 52e (wrong password) and 775 (locked out) get the one sentence of every
failed sign-in. AD answers 775 whatever the password, so telling "locked" would confirm to
a guesser that the login exists. 530/531 (not now / not from here), 532 (password expired),
533 (disabled), 701 (account expired) and 773 (must change the password) are answered only
once the password was proven right, so they are told in a sentence of their own."""
from __future__ import annotations

import logging
import os
import re
import secrets
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ldap3 import NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPStartTLSError
from ldap3.utils.conv import escape_filter_chars

from deskbase.objects.errors import DeskbaseError
from deskbase.objects.store import Store
from deskbase.rules.access.directory import DirectorySettings, directory_settings
from deskbase.rules.access.identity import DIRECTORY, WRONG_LOGIN, LoginRefused, list_accounts, save_directory_account

log = logging.getLogger("deskbase.directory")

UNREACHABLE = "The directory cannot be reached; try again later or ask an administrator."
NO_ACCESS = "Your directory account gives no access here; ask an administrator."
NOT_NOW = "This account may not sign in at this time or from this place; ask an administrator."
PASSWORD_EXPIRED = "Your password has expired: change it (for instance when signing in to Windows), then try again."
DISABLED = "This account is disabled in the directory; ask an administrator."
EXPIRED = "This account has expired in the directory; ask an administrator."
MUST_CHANGE = "Your password must be changed first: change it (for instance when signing in to Windows), then try again."

TOLD = {"530": NOT_NOW, "531": NOT_NOW, "532": PASSWORD_EXPIRED, "533": DISABLED, "701": EXPIRED, "773": MUST_CHANGE}
_SUB_CODE = re.compile(r"\bdata ([0-9a-fA-F]{3,8})\b")
IN_CHAIN = "1.2.840.113556.1.4.1941"            # LDAP_MATCHING_RULE_IN_CHAIN: nested membership
ACCOUNT_DISABLED = 0x2                          # a bit of userAccountControl
NEVER = 0x7FFFFFFFFFFFFFFF                       # accountExpires of an account that never expires
PEOPLE = "(&(objectCategory=person)(objectClass=user))"


def _filetime_now() -> int:
    """Now as AD writes times: 100 ns steps since 1601-01-01."""
    return int((time.time() + 11644473600) * 10_000_000)


_WARNED: set[tuple[str, ...]] = set()


class DirectoryError(DeskbaseError):
    """The directory is set up wrongly or answered unexpectedly; the message is for an administrator."""


class DirectoryUnreachable(DirectoryError):
    """No server of the list could be reached (the message says what each one did)."""


@dataclass(frozen=True)
class Person:
    """Someone of the directory, as an account here would get them. `login` is their
    sAMAccountName; `groups` the DNs of every group they are in, nested ones included
    (for the sync: the mapped groups only); `roles` what those groups give (the default
    role when none does); `active` false when disabled in the directory."""

    login: str
    dn: str
    name: str = ""
    email: str = ""
    phone: str = ""
    department: str = ""
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    active: bool = True


@dataclass
class SyncReport:
    """What a sync did (or, dry, would do), by login."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    dry_run: bool = False

    def __str__(self) -> str:
        text = (f"{len(self.created)} created, {len(self.updated)} updated, {len(self.disabled)} disabled, "
                f"{len(self.unchanged)} unchanged")
        return text + (" (dry run: nothing written)" if self.dry_run else "")


class _Refused(Exception):
    def __init__(self, result: Mapping):
        self.result = result


def _first(attributes: Mapping, name: str) -> str:
    value = attributes.get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return "" if value is None else str(value)


def _entries(response) -> list[tuple[str, Mapping]]:
    return [(item["dn"], item.get("attributes") or {}) for item in response or () if item.get("type") == "searchResEntry"]


def _cn(dn: str) -> str:
    first = re.split(r"(?<!\\),", dn, maxsplit=1)[0]
    return first.partition("=")[2].replace("\\", "")


class ActiveDirectory:
    """The directory of some settings. Secrets (the service account) are read from the
    environment when needed, never stored in the definitions."""

    def __init__(self, settings: DirectorySettings, environ: Mapping[str, str] | None = None):
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        if settings.skip_certificate_check:
            if settings.servers not in _WARNED:        # once per process, not at every sign-in
                _WARNED.add(settings.servers)
                log.warning("directory: skip_certificate_check_INSECURE is set: the certificate of %s is not "
                            "checked, so anyone on the network path can read the passwords people type",
                            ", ".join(settings.servers))
            self.tls = Tls(validate=ssl.CERT_NONE)
        else:
            try:
                self.tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file)
            except LDAPException as error:
                raise DirectoryError(f"the directory's `ca_file` cannot be used: {error}") from None

    # -- connections -----------------------------------------------------------------------

    def _bind(self, user: str, password: str) -> Connection:
        """A connection bound as `user`, on the first server that answers; _Refused when the
        directory says no, DirectoryUnreachable when none answers."""
        if not password:
            raise _Refused({"description": "invalidCredentials", "message": "empty password (an anonymous bind)"})
        failures = []
        for uri in self.settings.servers:
            server = Server(uri, use_ssl=self.settings.security == "ldaps", tls=self.tls, get_info=NONE,
                            connect_timeout=self.settings.connect_timeout)
            connection = Connection(server, user, password, authentication=SIMPLE, read_only=True,
                                    receive_timeout=max(1, round(self.settings.response_timeout)),
                                    raise_exceptions=False)      # ldap3 packs it as a whole number
            try:
                connection.open()
                if self.settings.security == "starttls" and not connection.start_tls():
                    raise LDAPStartTLSError(f"StartTLS refused: {connection.result.get('description')}")
                if connection.bind():
                    return connection
            except LDAPException as error:
                failures.append(f"{uri}: {error}")
                log.warning("directory server %s cannot be reached: %s", uri, error)
                connection.unbind()
                continue
            result = dict(connection.result or {})
            connection.unbind()
            if result.get("description") == "invalidCredentials":
                raise _Refused(result)
            raise DirectoryError(f"{uri} refused the sign-in: {result.get('description')} {result.get('message', '')}"
                                 .strip() + ("; simple binds need ldaps or starttls"
                                             if result.get("description") == "strongerAuthRequired" else ""))
        raise DirectoryUnreachable("no directory server answered: " + "; ".join(failures))

    def _service(self) -> Connection:
        settings = self.settings
        if not settings.has_service_account:
            raise DirectoryError("this needs the directory's service account: set `bind_dn_env` and `password_env` "
                                 "in `directory:` and those environment variables")
        missing = [name for name in (settings.bind_dn_env, settings.password_env) if not self.environ.get(name)]
        if missing:
            raise DirectoryError(f"set the environment variables {settings.bind_dn_env} and {settings.password_env} "
                                 f"(the directory's service account); {', '.join(missing)} is empty or unset")
        try:
            return self._bind(self.environ[settings.bind_dn_env], self.environ[settings.password_env])
        except _Refused as refused:
            raise DirectoryError(f"the directory refused the service account: {refused.result.get('message', '')}") from None

    # -- reading people ----------------------------------------------------------------------

    def _attributes(self) -> list[str]:
        return sorted({*self.settings.attributes.values(), "sAMAccountName", "userAccountControl", "accountExpires"})

    def _filter(self, *conditions: str) -> str:
        extra = self.settings.user_filter or ""
        return f"(&{PEOPLE}{extra}{''.join(conditions)})"

    def _principal(self, login: str) -> tuple[str, str]:
        """What to bind with when there is no service account, and the filter finding that entry."""
        if self.settings.login_attribute == "userPrincipalName":
            upn = login if "@" in login or not self.settings.upn_suffix else f"{login}@{self.settings.upn_suffix}"
            return upn, f"(userPrincipalName={escape_filter_chars(upn)})"
        account = login.rpartition("\\")[2]
        return f"{self.settings.domain}\\{account}", f"(sAMAccountName={escape_filter_chars(account)})"

    def _lookup_value(self, login: str) -> str:
        if self.settings.login_attribute == "userPrincipalName" and "@" not in login and self.settings.upn_suffix:
            return f"{login}@{self.settings.upn_suffix}"
        if self.settings.login_attribute == "sAMAccountName":
            return login.rpartition("\\")[2]        # EXAMPLE\bob is bob
        return login

    def _search(self, connection: Connection, search_filter: str, attributes: list[str]) -> list[tuple[str, Mapping]]:
        if not connection.search(self.settings.base_dn, search_filter, SUBTREE, attributes=attributes):
            if connection.result.get("description") not in ("success", "noSuchObject"):
                raise DirectoryError(f"a search of the directory failed: {connection.result.get('description')} "
                                     f"{connection.result.get('message', '')}".strip())
        return _entries(connection.response)

    def _person(self, dn: str, attributes: Mapping, groups: tuple[str, ...]) -> Person:
        mapped = self.settings.attributes
        control, expires = _first(attributes, "userAccountControl"), _first(attributes, "accountExpires")
        disabled = control.lstrip("-").isdigit() and bool(int(control) & ACCOUNT_DISABLED)
        expired = expires.isdigit() and 0 < int(expires) < NEVER and int(expires) < _filetime_now()
        return Person(login=_first(attributes, "sAMAccountName"), dn=dn,
                      name=_first(attributes, mapped["name"]) or _cn(dn), email=_first(attributes, mapped["email"]),
                      phone=_first(attributes, mapped["phone"]), department=_first(attributes, mapped["department"]),
                      groups=groups, roles=self.roles_of(groups),
                      active=not (disabled or expired))

    def roles_of(self, groups: tuple[str, ...]) -> tuple[str, ...]:
        """The roles groups give, by DN or CN, in the order of the mapping; the default role
        when they give none (no role: no access)."""
        keys = {key for dn in groups for key in (dn.casefold(), _cn(dn).casefold())}
        roles = [role for group, names in self.settings.roles.items() if group in keys for role in names]
        if not roles and self.settings.default_role:
            roles = [self.settings.default_role]
        return tuple(dict.fromkeys(roles))

    def _groups_of(self, connection: Connection, dn: str) -> tuple[str, ...]:
        found = self._search(connection, f"(&(objectClass=group)(member:{IN_CHAIN}:={escape_filter_chars(dn)}))", ["cn"])
        return tuple(sorted(group for group, _ in found))

    # -- the two uses --------------------------------------------------------------------------

    def check_password(self, login: str, password: str) -> Person:
        """The person whose password this is, read as themselves; LoginRefused (with a sentence
        that says nothing a guesser could use) or DirectoryUnreachable otherwise."""
        login, connection = login.strip(), None
        try:
            if not password:
                raise _Refused({"message": "an empty password (AD would take it for an anonymous bind)"})
            if self.settings.has_service_account:
                # found by the service account, then proven by a bind as them on the same
                # connection: one TLS handshake for both
                connection = self._service()
                found = self._search(connection, self._filter(
                    f"({self.settings.login_attribute}={escape_filter_chars(self._lookup_value(login))})"),
                    self._attributes())
                if len(found) != 1:
                    # a bind that fails as a wrong password does, so the time taken does not tell
                    # whether the login exists
                    connection.rebind(f"{self.settings.domain or 'NOBODY'}\\{secrets.token_hex(8)}", password)
                    raise _Refused({"message": f"{len(found)} entries match"})
                if not connection.rebind(found[0][0], password):
                    result = dict(connection.result or {})
                    if result.get("description") != "invalidCredentials":
                        raise DirectoryError(f"the directory refused the sign-in: {result.get('description')}")
                    raise _Refused(result)
            else:
                principal, own = self._principal(login)
                connection = self._bind(principal, password)
                found = self._search(connection, self._filter(own), self._attributes())
                if len(found) != 1:
                    log.warning("directory: %r signed in but %d entries match its filter", login, len(found))
                    raise LoginRefused(NO_ACCESS)
            dn, attributes = found[0]
            return self._person(dn, attributes, self._groups_of(connection, dn))
        except _Refused as refused:
            message = str(refused.result.get("message", ""))
            code = _SUB_CODE.search(message)
            log.info("directory sign-in of %r refused: %s", login, message)
            raise LoginRefused(TOLD.get(code.group(1).lower(), WRONG_LOGIN) if code else WRONG_LOGIN) from None
        except LDAPException as error:
            raise DirectoryUnreachable(f"the directory stopped answering: {error}") from None
        finally:
            if connection is not None:
                connection.unbind()

    def people(self) -> Iterator[Person]:
        """Everyone under base_dn (and the user filter), page by page, with the mapped groups
        they are in (nested included): one search per mapped group, not one per person."""
        connection = self._service()
        try:
            members: dict[str, list[str]] = {}
            for key in self.settings.roles:
                if "=" in key:
                    group_dns = [key]
                else:
                    group_dns = [dn for dn, _ in self._search(
                        connection, f"(&(objectClass=group)(cn={escape_filter_chars(key)}))", [])]
                for group_dn in group_dns:
                    for dn, _ in self._paged(connection, self._filter(
                            f"(memberOf:{IN_CHAIN}:={escape_filter_chars(group_dn)})"), []):
                        members.setdefault(dn.casefold(), []).append(group_dn)
            for dn, attributes in self._paged(connection, self._filter(), self._attributes()):
                yield self._person(dn, attributes, tuple(sorted(set(members.get(dn.casefold(), ())))))
        finally:
            connection.unbind()

    def _paged(self, connection: Connection, search_filter: str, attributes: list[str]) -> Iterator[tuple[str, Mapping]]:
        pages = connection.extend.standard.paged_search(self.settings.base_dn, search_filter, SUBTREE,
                                                        attributes=attributes, paged_size=self.settings.page_size,
                                                        generator=True)
        for item in pages:
            if item.get("type") == "searchResEntry":
                yield item["dn"], item.get("attributes") or {}
        if connection.result.get("description") not in ("success", None):
            raise DirectoryError(f"a paged search of the directory failed: {connection.result.get('description')}")


def directory_of(store: Store, environ: Mapping[str, str] | None = None) -> ActiveDirectory:
    """The directory of a store's definitions; DirectoryError when they have no `directory:`."""
    settings = directory_settings(store.definitions)
    if settings is None:
        raise DirectoryError("the definitions have no `directory:` section: accounts are local only")
    return ActiveDirectory(settings, environ)


def save_person(store: Store, person: Person, *, create: bool = True, write: bool = True) -> str:
    """Create or update the account of a person: `created`, `updated`, `unchanged` (or
    `absent`). An account without roles, or disabled in the directory, is inactive."""
    return save_directory_account(store, person.login, name=person.name, email=person.email, phone=person.phone,
                                  department=person.department, roles=person.roles,
                                  active=person.active and bool(person.roles), create=create, write=write)


def sync_directory(store: Store, *, dry_run: bool = False, environ: Mapping[str, str] | None = None) -> SyncReport:
    """Bring the directory's accounts here up to date: create those who have access, update
    names, addresses and roles, disable those disabled in or removed from the directory
    (only once the whole listing was read). `dry_run` reports without writing."""
    directory = directory_of(store, environ)
    started = time.monotonic()
    accounts = {account.login: account for account in list_accounts(store)}
    report = SyncReport(dry_run=dry_run)
    seen: set[str] = set()
    try:
        listed = list(directory.people())            # read in full before anything is written
    except (LDAPException, OSError) as error:     # cut mid-listing: nobody is disabled on half a list
        raise DirectoryError(f"the directory stopped answering while listing its people ({error}); nothing was "
                             f"changed here: run the sync again") from None
    for person in listed:
        if not person.login or directory.settings.is_local(person.login):
            continue
        seen.add(person.login)
        before = accounts.get(person.login)
        entitled = person.active and bool(person.roles)
        outcome = save_person(store, person, create=entitled, write=not dry_run)
        if outcome == "absent":
            continue
        if outcome == "updated" and before is not None and before.active and not entitled:
            outcome = "disabled"
        getattr(report, outcome).append(person.login)
    for login, account in accounts.items():
        if account.source == DIRECTORY and login not in seen and account.active:
            if not dry_run:
                save_directory_account(store, login, name=account.name, email=account.email, phone=account.phone,
                                       department=account.department, roles=account.roles, active=False)
            report.disabled.append(login)
    log.info("directory sync: %s in %.1f s", report, time.monotonic() - started)
    return report
