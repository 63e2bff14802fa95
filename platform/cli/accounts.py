"""`deskbase users` and `deskbase apikeys`: local accounts and the keys of integrations."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from deskbase.objects.errors import DeskbaseError

from .opening import open_store
from .tables import table


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """The `users` and `apikeys` commands."""
    users = commands.add_parser("users", parents=[common], help="local accounts: add, list")
    user_commands = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = user_commands.add_parser("add", parents=[common], help="create an account")
    add.add_argument("login")
    add.add_argument("--name", default=None, help="the person's name (default: the login)")
    add.add_argument("--email", default="")
    add.add_argument("--role", action="append", default=[], required=True, help="a role (repeatable)")
    add.add_argument("--group", action="append", default=[], help="a group, by number or name (repeatable)")
    add.add_argument("--organization", default=None, help="the organization, by number or name")
    add.add_argument("--language", default="en")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input instead of asking for it")
    user_commands.add_parser("list", parents=[common], help="list the accounts")
    apikeys = commands.add_parser("apikeys", parents=[common], help="API keys of integrations: add, list, revoke")
    key_commands = apikeys.add_subparsers(dest="apikeys_command", metavar="ACTION", required=True)
    add_key = key_commands.add_parser("add", parents=[common], help="make a key acting as an account; printed once")
    add_key.add_argument("name", help="what the key is for, one word such as monitoring")
    add_key.add_argument("--as", dest="as_login", required=True, metavar="LOGIN", help="the account the key acts as")
    key_commands.add_parser("list", parents=[common], help="the keys with their account and last use")
    revoke_key = key_commands.add_parser("revoke", parents=[common], help="revoke a key: it opens nothing any more")
    revoke_key.add_argument("name")
    return {"users": cmd_users, "apikeys": cmd_apikeys}


def cmd_users(args) -> int:
    from deskbase.rules.access.identity import create_account, identity_settings, list_accounts
    with open_store(args) as store:
        if args.users_command == "list":
            rows = [[a.login, a.name, ", ".join(a.roles), "yes" if a.active else "no"] for a in list_accounts(store)]
            print(table(rows, ["Login", "Name", "Roles", "Active"]) if rows else "no accounts yet")
            return 0
        settings = identity_settings(store.definitions)

        def ids(type_name: str | None, texts: list[str], what: str) -> list[int]:
            if texts and type_name is None:
                raise DeskbaseError(f"the definitions name no {what} type (`identity: {{{what}_type: …}}`)")
            return store.read(lambda s: [s.lookup(type_name, text) for text in texts]) if texts else []
        groups = ids(settings.group_type, args.group, "group")
        organization = ids(settings.organization_type, [args.organization] if args.organization else [],
                           "organization")
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        elif not sys.stdin.isatty():
            raise DeskbaseError("no terminal to ask the password on: pipe it in with --password-stdin")
        else:
            import getpass
            password = getpass.getpass(f"password for {args.login}: ")
        create_account(store, args.login, name=args.name or args.login, password=password, roles=args.role,
                       groups=groups, organization=organization[0] if organization else None,
                       email=args.email, language=args.language)
        print(f"account `{args.login}` created with the role{'s' if len(args.role) > 1 else ''} "
              f"{', '.join(args.role)}")
        return 0


def cmd_apikeys(args) -> int:
    from deskbase.views.api_keys import add_key, list_keys, revoke_key
    with open_store(args) as store:
        if args.apikeys_command == "add":
            key = add_key(store, args.name, args.as_login)
            print(f"API key `{args.name}` acting as {args.as_login} (shown only now; keep it secret):\n{key}")
        elif args.apikeys_command == "revoke":
            revoke_key(store, args.name)
            print(f"API key `{args.name}` revoked")
        else:
            def moment(at) -> str:
                return at.strftime("%Y-%m-%d %H:%M") if at else ""
            rows = [[k.name, k.login, moment(k.created_at), moment(k.last_used_at), "revoked" if k.revoked_at else "live"]
                    for k in list_keys(store)]
            print(table(rows, ["Name", "Account", "Created", "Last used", "State"]) if rows else "no API keys yet")
        return 0
