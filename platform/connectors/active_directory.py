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
from ldap3.utils.conv import escape_bytes, escape_filter_chars

from deskbase.objects.errors import DeskbaseError
from deskbase.objects.store import Store
from deskbase.objects.words import N_
from deskbase.rules.access.directory import DirectorySettings, directory_settings
from deskbase.rules.access.identity import DIRECTORY, WRONG_LOGIN, LoginRefused, list_accounts, save_directory_account

log = logging.getLogger("deskbase.directory")

UNREACHABLE = N_("The directory cannot be reached; try again later or ask an administrator.")
NO_ACCESS = N_("Your directory account gives no access here; ask an administrator.")
NOT_NOW = N_("This account may not sign in at this time or from this place; ask an administrator.")
PASSWORD_EXPIRED = N_("Your password has expired: change it (for instance when signing in to Windows), then try again.")
DISABLED = N_("This account is disabled in the directory; ask an administrator.")
EXPIRED = N_("This account has expired in the directory; ask an administrator.")
LOCAL_ACCOUNT = ("Your directory account has the login of an account of this site, which it may not open: sign in "
                 "with that account's own login and password, or ask an administrator to link it to the directory.")
MUST_CHANGE = N_("Your password must be changed first: change it (for instance when signing in to Windows), then try again.")

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
    language: str = ""                  # a language tag such as cs-CZ (preferredLanguage)
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
    local: list[str] = field(default_factory=list)    # local accounts of a directory login, left alone
    dry_run: bool = False

    def __str__(self) -> str:
        text = (f"{len(self.created)} created, {len(self.updated)} updated, {len(self.disabled)} disabled, "
                f"{len(self.unchanged)} unchanged" + (f", {len(self.local)} local accounts left alone"
                                                      if self.local else ""))
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
    return [(item["dn"], _with_sid(item)) for item in response or () if item.get("type") == "searchResEntry"]


def _with_sid(item: Mapping) -> Mapping:
    """An entry's attributes, `objectSid` as its bytes (ldap3 decodes a value that happens to
    be valid UTF-8 into text)."""
    attributes = item.get("attributes") or {}
    raw = (item.get("raw_attributes") or {}).get("objectSid")
    return {**attributes, "objectSid": raw[0]} if raw else attributes


def _rid(sid: object) -> int | None:
    """The relative id of a binary SID: its last sub-authority (4 bytes, little-endian)."""
    return int.from_bytes(sid[-4:], "little") if isinstance(sid, bytes) and len(sid) >= 12 else None


def _primary_sid(sid: object, rid: str) -> bytes | None:
    """The SID of a user's primary group: the user's with the group's relative id in its place."""
    if not isinstance(sid, bytes) or _rid(sid) is None or not rid.isdigit():
        return None
    return sid[:-4] + int(rid).to_bytes(4, "little")


def _cn(dn: str) -> str:
    first = re.split(r"(?<!\\),", dn, maxsplit=1)[0]
    return first.partition("=")[2].replace("\\", "")


class ActiveDirectory:
    """The directory of some settings. Secrets (the service account) are read from the
    environment when needed, never stored in the definitions."""

    def __init__(self, settings: DirectorySettings, environ: Mapping[str, str] | None = None):
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self._netbios: str | None = None          # read from the directory when `domain` is not set
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

    def _bind(self, user: str, password: str | bytes) -> Connection:
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
        return sorted({*self.settings.attributes.values(), "sAMAccountName", "userAccountControl", "accountExpires",
                       "objectSid", "primaryGroupID"})

    def _filter(self, *conditions: str) -> str:
        extra = self.settings.user_filter or ""
        return f"(&{PEOPLE}{extra}{''.join(conditions)})"

    def _suffixes(self) -> set[str]:
        """The domains after `@` that name this directory: the UPN suffix and the DNS name of
        `base_dn` (DC=example,DC=org is example.org)."""
        parts = [rdn.partition("=")[2] for rdn in re.split(r"(?<!\\),", self.settings.base_dn)
                 if rdn.strip().casefold().startswith("dc=")]
        return {suffix.casefold() for suffix in (self.settings.upn_suffix, ".".join(parts)) if suffix}

    def _netbios_name(self, connection: Connection) -> str | None:
        """The domain's NetBIOS name (EXAMPLE in EXAMPLE\\bob): `domain` when the settings give
        it, else read once from the directory's partitions."""
        if self.settings.domain:
            return self.settings.domain
        if self._netbios is None:
            connection.search(f"CN=Partitions,CN=Configuration,{self.settings.base_dn}",
                              f"(&(objectClass=crossRef)(nCName={escape_filter_chars(self.settings.base_dn)}))",
                              SUBTREE, attributes=["nETBIOSName"])
            found = [_first(attributes, "nETBIOSName") for _, attributes in _entries(connection.response)]
            self._netbios = found[0] if found and found[0] else ""
        return self._netbios or None

    def _login_filter(self, login: str, netbios: str | None = None) -> str:
        """The filter finding the one entry a typed login names, in any of its forms: `bob`
        (the account name, or the principal name with `upn_suffix`), `EXAMPLE\\bob` (the
        account name, when EXAMPLE is `netbios`, this domain's name), `bob@example.org` (a
        principal name, a mail address, or the account name at one of this directory's
        domains). Matching more than one entry is no match (`check_password` refuses it)."""
        name, mail = "sAMAccountName", self.settings.attributes["email"]
        domain, backslash, account = login.rpartition("\\")
        if backslash:
            if netbios and domain.casefold() != netbios.casefold():
                return "(!(objectClass=*))"                  # another domain's account: nobody here
            return f"({name}={escape_filter_chars(account)})"
        if "@" in login:
            local, _, suffix = login.rpartition("@")
            terms = [f"(userPrincipalName={escape_filter_chars(login)})", f"({mail}={escape_filter_chars(login)})"]
            if suffix.casefold() in self._suffixes():
                terms.append(f"({name}={escape_filter_chars(local)})")
            return f"(|{''.join(terms)})"
        terms = [f"({name}={escape_filter_chars(login)})"]
        if self.settings.upn_suffix:
            principal = f"{login}@{self.settings.upn_suffix}"
            terms.append(f"(userPrincipalName={escape_filter_chars(principal)})")
        return f"(|{''.join(terms)})"

    def _principal(self, login: str) -> str:
        """What to bind with when there is no service account to look the person up: the
        login as typed when it names its domain (`EXAMPLE\\bob`, a principal name
        `bob@example.org`, which AD also takes as account name @ its DNS domain); a bare
        login completed by `login_attribute`: `bob@upn_suffix` or `DOMAIN\\bob`. A mail
        address that is not also the principal name needs the service account."""
        if "\\" in login or "@" in login:
            return login
        if self.settings.login_attribute == "sAMAccountName" and self.settings.domain:
            return f"{self.settings.domain}\\{login}"
        if self.settings.upn_suffix:
            return f"{login}@{self.settings.upn_suffix}"
        return login

    def _own_filter(self, connection: Connection, login: str) -> str:
        """The filter of the entry a connection is bound as: asked to the server ("who am I",
        RFC 4532), whatever form the person typed; by the login's forms if it cannot tell."""
        try:
            who = connection.extend.standard.who_am_i() or ""
        except LDAPException:
            who = ""
        if who.startswith("u:") and "\\" in who:
            account = who.rpartition("\\")[2]
            return f"(sAMAccountName={escape_filter_chars(account)})"
        if who.startswith("dn:") and len(who) > 3:
            return f"(distinguishedName={escape_filter_chars(who[3:])})"
        return self._login_filter(login)

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
                      language=_first(attributes, mapped["language"]) if mapped.get("language") else "",
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

    def _groups_of(self, connection: Connection, dn: str, attributes: Mapping) -> tuple[str, ...]:
        """Every group an entry is in, nested ones included, and its primary group ("Domain
        Users" for most people), which AD keeps out of `member`/`memberOf`, with the groups
        that one is in."""
        groups = {group for group, _ in self._search(
            connection, f"(&(objectClass=group)(member:{IN_CHAIN}:={escape_filter_chars(dn)}))", ["cn"])}
        primary_sid = _primary_sid(attributes.get("objectSid"), _first(attributes, "primaryGroupID"))
        if primary_sid:
            for primary, _ in self._search(connection, f"(&(objectClass=group)(objectSid={escape_bytes(primary_sid)}))",
                                           ["cn"]):
                groups.add(primary)
                groups.update(group for group, _ in self._search(connection, (
                    f"(&(objectClass=group)(member:{IN_CHAIN}:={escape_filter_chars(primary)}))"), ["cn"]))
        return tuple(sorted(groups))

    def _primary_members(self, connection: Connection, group_dn: str) -> Iterator[str]:
        """The people whose primary group is this group or one nested in it."""
        nested = self._search(connection, f"(&(objectClass=group)(|(distinguishedName={escape_filter_chars(group_dn)})"
                                          f"(memberOf:{IN_CHAIN}:={escape_filter_chars(group_dn)})))", ["objectSid"])
        rids = {rid for _, attributes in nested if (rid := _rid(attributes.get("objectSid"))) is not None}
        for rid in sorted(rids):
            for dn, _ in self._paged(connection, self._filter(f"(primaryGroupID={rid})"), []):
                yield dn

    # -- the two uses --------------------------------------------------------------------------

    def check_password(self, login: str, password: str) -> Person:
        """The person whose password this is, read as themselves; LoginRefused (with a sentence
        that says nothing a guesser could use) or DirectoryUnreachable otherwise."""
        login, connection = login.strip(), None
        try:
            if not password:
                raise _Refused({"message": "an empty password (AD would take it for an anonymous bind)"})
            secret = password.encode("utf-8")   # as typed: ldap3 would SASLprep text, AD compares the bytes
            if self.settings.has_service_account:
                # found by the service account whatever form was typed, then proven by a bind
                # as them on the same connection: one TLS handshake for both
                connection = self._service()
                own = self._login_filter(login, self._netbios_name(connection))
                found = self._search(connection, self._filter(own), self._attributes())
                if len(found) != 1:
                    if len(found) > 1:
                        log.warning("directory: %r names %d entries; nobody signs in with it", login, len(found))
                    # a bind that fails as a wrong password does, so the time taken does not tell
                    # whether the login exists
                    connection.rebind(f"{self.settings.domain or 'NOBODY'}\\{secrets.token_hex(8)}", secret)
                    raise _Refused({"message": f"{len(found)} entries match"})
                if not connection.rebind(found[0][0], secret):
                    result = dict(connection.result or {})
                    if result.get("description") != "invalidCredentials":
                        raise DirectoryError(f"the directory refused the sign-in: {result.get('description')}")
                    raise _Refused(result)
            else:
                connection = self._bind(self._principal(login), secret)
                found = self._search(connection, self._filter(self._own_filter(connection, login)), self._attributes())
                if len(found) != 1:
                    log.warning("directory: %r signed in but %d entries match its filter", login, len(found))
                    raise LoginRefused(NO_ACCESS)
            dn, attributes = found[0]
            return self._person(dn, attributes, self._groups_of(connection, dn, attributes))
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

    def find(self, login: str) -> Person:
        """The person a login names (any of its forms), read by the service account;
        DirectoryError when it names nobody or several."""
        connection = self._service()
        try:
            login = login.strip()
            own = self._login_filter(login, self._netbios_name(connection))
            found = self._search(connection, self._filter(own), self._attributes())
            if len(found) != 1:
                raise DirectoryError(f"`{login}` names {len(found)} people in the directory, not one")
            dn, attributes = found[0]
            return self._person(dn, attributes, self._groups_of(connection, dn, attributes))
        finally:
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
                    for dn in self._primary_members(connection, group_dn):
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
                yield item["dn"], _with_sid(item)
        if connection.result.get("description") not in ("success", None):
            raise DirectoryError(f"a paged search of the directory failed: {connection.result.get('description')}")


def directory_of(store: Store, environ: Mapping[str, str] | None = None) -> ActiveDirectory:
    """The directory of a store's definitions; DirectoryError when they have no `directory:`."""
    settings = directory_settings(store.definitions)
    if settings is None:
        raise DirectoryError("the definitions have no `directory:` section: accounts are local only")
    return ActiveDirectory(settings, environ)


def save_person(store: Store, person: Person, *, create: bool = True, write: bool = True,
                adopt: bool = False) -> str:
    """Create or update the account of a person: `created`, `updated`, `unchanged` (or
    `absent`, or `local`: a local account of that login, left alone unless `adopt`). An
    account without roles, or disabled in the directory, is inactive."""
    return save_directory_account(store, person.login, name=person.name, email=person.email, phone=person.phone,
                                  department=person.department, roles=person.roles,
                                  active=person.active and bool(person.roles), create=create, write=write,
                                  adopt=adopt, language=person.language)


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
