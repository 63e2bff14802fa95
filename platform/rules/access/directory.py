"""The `directory:` section: where people sign in when an Active Directory (LDAP) holds
their accounts, which of their groups give which roles, and which logins stay local. Plain
frozen settings; the connector (connectors/active_directory.py) talks to the servers.
Secrets are never written here, only the names of the environment variables that hold them."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from deskbase.objects.compiling import Section, definition_error
from deskbase.objects.errors import DefinitionError, hint_for
from deskbase.objects.model import Definitions

SECURITY = ("ldaps", "starttls")
LOGIN_ATTRIBUTES = ("userPrincipalName", "sAMAccountName", "mail")
ACCOUNT_FIELDS = ("name", "email", "phone", "department", "language")
DEFAULT_ATTRIBUTES = MappingProxyType({"name": "displayName", "email": "mail", "phone": "telephoneNumber",
                                       "department": "department", "language": "preferredLanguage"})
INSECURE_SWITCH = "skip_certificate_check_INSECURE"


@dataclass(frozen=True)
class DirectorySettings:
    """How to reach the directory and what an account gets from it. `roles` maps a group,
    by its DN or its CN (lower-cased here), to role names; `default_role` is given to people
    in none of those groups (None: they have no access)."""

    servers: tuple[str, ...]
    base_dn: str
    security: str = "ldaps"
    ca_file: str | None = None
    skip_certificate_check: bool = False
    login_attribute: str = "userPrincipalName"
    upn_suffix: str | None = None
    domain: str | None = None
    bind_dn_env: str | None = None
    password_env: str | None = None
    user_filter: str | None = None
    attributes: Mapping[str, str] = field(default_factory=lambda: DEFAULT_ATTRIBUTES)
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    default_role: str | None = None
    local_only: frozenset[str] = frozenset()
    connect_timeout: float = 5.0
    response_timeout: float = 10.0
    page_size: int = 500

    def is_local(self, login: str) -> bool:
        """Whether a login signs in with its local password only, never through the directory."""
        return login.casefold() in self.local_only

    @property
    def has_service_account(self) -> bool:
        return bool(self.bind_dn_env and self.password_env)


_ENV = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "x-noun": "the name of an environment variable"}
_ROLE_NAMES = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
               "x-noun": "a role name or a list of role names"}

_SCHEMA = {
    "type": "object",
    "x-noun": "the directory settings: a map with servers, base_dn and the group → role mapping",
    "x-member": "a setting of `directory`",
    "required": ["servers", "base_dn"],
    "description": "sign-in through Active Directory, and the accounts' sync",
    "properties": {
        "servers": {"type": "array", "minItems": 1, "items": {"type": "string", "x-noun": "an ldaps:// or ldap:// URI"},
                    "x-noun": "a list of server URIs, tried in order",
                    "description": "the directory's servers, tried in order, such as [ldaps://dc1.example.org]"},
        "security": {"enum": list(SECURITY), "x-noun": "ldaps or starttls",
                     "description": "how the connection is encrypted: ldaps or starttls"},
        "ca_file": {"type": "string", "x-noun": "the path of a PEM file of the certificate authorities to trust",
                    "description": "a PEM file of the certificate authorities to trust"},
        INSECURE_SWITCH: {"const": True, "x-noun": "true (or leave the setting out)",
                          "description": "true: the servers' certificates are not checked (tests only)"},
        "base_dn": {"type": "string", "x-noun": "a DN such as DC=example,DC=org",
                    "description": "where the accounts are searched, such as DC=example,DC=org"},
        "login_attribute": {"enum": list(LOGIN_ATTRIBUTES), "x-noun": "userPrincipalName, sAMAccountName or mail",
                            "description": "the directory attribute a login is"},
        "upn_suffix": {"type": "string", "x-noun": "a domain such as example.org",
                       "description": "the domain completing a short login, such as example.org"},
        "domain": {"type": "string", "x-noun": "the NetBIOS domain name such as EXAMPLE",
                   "description": "the NetBIOS domain name, for sAMAccountName logins"},
        "bind_dn_env": _ENV | {"description": "the environment variable holding the DN the sync binds as"},
        "password_env": _ENV | {"description": "the environment variable holding its password"},
        "user_filter": {"type": "string", "x-noun": "an LDAP filter such as (memberOf=CN=Staff,DC=example,DC=org)",
                        "description": "an LDAP filter limiting the accounts"},
        "attributes": {"type": "object", "x-noun": "a map of account fields to directory attributes",
                       "x-member": "an account field (name, email, phone, department)",
                       "description": "the directory attribute of each account field",
                       "properties": {name: {"type": "string", "x-noun": "a directory attribute",
                                             "description": f"the directory attribute of the account's {name}"}
                                      for name in ACCOUNT_FIELDS},
                       "additionalProperties": False},
        "roles": {"type": "object", "x-noun": "a map of groups (DN or CN) to role names",
                  "description": "the roles of the members of each directory group (DN or CN)",
                  "additionalProperties": _ROLE_NAMES},
        "default_role": {"type": ["string", "null"], "x-noun": "a role name, or null for no access",
                         "description": "the role of an account in none of those groups; null: no access"},
        "local_only": {"type": "array", "items": {"type": "string"}, "x-noun": "a list of logins",
                       "description": "logins never asked to the directory"},
        "connect_timeout": {"type": "number", "exclusiveMinimum": 0, "x-noun": "seconds",
                            "description": "seconds to wait for a server to answer a connection"},
        "response_timeout": {"type": "number", "exclusiveMinimum": 0, "x-noun": "seconds",
                             "description": "seconds to wait for a server to answer a request"},
        "page_size": {"type": "integer", "minimum": 1, "maximum": 5000, "x-noun": "a number of entries",
                      "description": "the entries of each page of the sync's searches"},
    },
    "additionalProperties": False,
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions) -> tuple[DirectorySettings | None, list[DefinitionError]]:
    spec = document.get("directory")
    if spec is None:
        return None, []
    errors: list[DefinitionError] = []

    def problem(key: tuple, message: str, hint: str | None = None, **options: Any) -> None:
        errors.append(definition_error(positions, ("directory", *key), message, hint, **options))

    security = spec.get("security", "ldaps")
    scheme = "ldaps://" if security == "ldaps" else "ldap://"
    for index, uri in enumerate(spec["servers"]):
        if not uri.lower().startswith(scheme):
            problem(("servers", index), f"with `security: {security}` a server URI starts with {scheme}",
                    "`ldaps` uses ldaps:// (port 636); `starttls` uses ldap:// (port 389) and then encrypts")
    if INSECURE_SWITCH in spec and "ca_file" in spec:
        problem((INSECURE_SWITCH,), "give either `ca_file` or the insecure switch, not both", on_key=True)
    login_attribute = spec.get("login_attribute", "userPrincipalName")
    service = [key for key in ("bind_dn_env", "password_env") if key in spec]
    if len(service) == 1:
        problem((service[0],), "a service account needs both `bind_dn_env` and `password_env`", on_key=True)
    if login_attribute == "mail" and len(service) != 2:
        problem(("login_attribute",), "signing in by `mail` needs a service account to find the person",
                "add `bind_dn_env` and `password_env`, or use userPrincipalName")
    if login_attribute == "sAMAccountName" and "domain" not in spec and len(service) != 2:
        problem(("login_attribute",), "signing in by `sAMAccountName` needs `domain` (EXAMPLE, as in EXAMPLE\\bob) "
                "or a service account")
    user_filter = spec.get("user_filter")
    if user_filter is not None and not (user_filter.startswith("(") and user_filter.endswith(")")):
        problem(("user_filter",), "an LDAP filter is written in parentheses, such as (department=Support)")
    roles: dict[str, tuple[str, ...]] = {}
    for group, names in (spec.get("roles") or {}).items():
        names = (names,) if isinstance(names, str) else tuple(names)
        for index, name in enumerate(names):
            if name not in definitions.roles:
                where = ("roles", group) if isinstance(spec["roles"][group], str) else ("roles", group, index)
                problem(where, f"`{name}` is not a role of the definitions: {', '.join(definitions.roles)}",
                        hint_for(name, definitions.roles))
        roles[str(group).casefold()] = names
    default_role = spec.get("default_role")
    if default_role is not None and default_role not in definitions.roles:
        problem(("default_role",), f"`{default_role}` is not a role of the definitions; write null for no access",
                hint_for(default_role, definitions.roles))
    attributes = {**DEFAULT_ATTRIBUTES, **(spec.get("attributes") or {})}
    settings = DirectorySettings(
        servers=tuple(spec["servers"]), base_dn=spec["base_dn"], security=security, ca_file=spec.get("ca_file"),
        skip_certificate_check=bool(spec.get(INSECURE_SWITCH)), login_attribute=login_attribute,
        upn_suffix=spec.get("upn_suffix"), domain=spec.get("domain"), bind_dn_env=spec.get("bind_dn_env"),
        password_env=spec.get("password_env"), user_filter=spec.get("user_filter"),
        attributes=MappingProxyType(attributes), roles=MappingProxyType(roles), default_role=default_role,
        local_only=frozenset(login.casefold() for login in spec.get("local_only") or ()),
        connect_timeout=float(spec.get("connect_timeout", 5)), response_timeout=float(spec.get("response_timeout", 10)),
        page_size=int(spec.get("page_size", 500)))
    return settings, errors


DIRECTORY_SECTION = Section("directory", "top", _SCHEMA, _compile)


def directory_settings(definitions: Definitions) -> DirectorySettings | None:
    """The `directory:` settings of compiled definitions, or None: accounts are local only."""
    return definitions.extensions.get("directory")
