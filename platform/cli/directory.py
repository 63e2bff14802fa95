"""`deskbase` commands of the directory (Active Directory): test a sign-in, synchronise accounts."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .opening import open_store


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add this group's sub-commands to `commands`; return their handlers by command name."""
    directory = commands.add_parser("directory", parents=[common],
                                    help="the Active Directory of the definitions: test a sign-in, sync accounts")
    actions = directory.add_subparsers(dest="directory_command", metavar="ACTION", required=True)
    test = actions.add_parser("test", parents=[common],
                              help="sign in as LOGIN against the directory and print what the account would get "
                                   "(writes nothing)")
    test.add_argument("login")
    test.add_argument("--password-stdin", action="store_true",
                      help="read the password from standard input instead of asking for it")
    sync = actions.add_parser("sync", parents=[common],
                              help="create, update and disable the directory's accounts here")
    sync.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    adopt = actions.add_parser("adopt", parents=[common],
                               help="make the local account LOGIN the directory's account of that login (its local "
                                    "password stops working); a directory sign-in never does it by itself")
    adopt.add_argument("login")
    return {"directory": cmd_directory}


def cmd_directory(args: argparse.Namespace) -> int:
    """`deskbase directory test LOGIN`, `deskbase directory sync [--dry-run]` and
    `deskbase directory adopt LOGIN`."""
    from deskbase.connectors.active_directory import DirectoryError, directory_of, save_person, sync_directory
    from deskbase.rules.access.identity import LoginRefused
    with open_store(args) as store:
        directory = directory_of(store)
        if directory.settings.skip_certificate_check:
            print("warning: skip_certificate_check_INSECURE is set: the directory's certificate is not checked",
                  file=sys.stderr)
        if args.directory_command == "sync":
            try:
                report = sync_directory(store, dry_run=args.dry_run)
            except DirectoryError as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
            for outcome in ("created", "updated", "disabled"):
                logins = getattr(report, outcome)
                if logins:
                    print(f"{'would be ' if args.dry_run else ''}{outcome}: {', '.join(sorted(logins))}")
            if report.local:
                print(f"left alone (local accounts; `deskbase directory adopt LOGIN` links one): "
                      f"{', '.join(sorted(report.local))}")
            print(report)
            return 0
        if args.directory_command == "adopt":
            try:
                person = directory.find(args.login)
            except DirectoryError as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
            if directory.settings.is_local(person.login):
                print(f"error: `{person.login}` is in `local_only`: it stays a local account", file=sys.stderr)
                return 1
            outcome = save_person(store, person, create=False, adopt=True)
            if outcome == "absent":
                print(f"error: there is no account `{person.login}` here to link; it is made at the first sign-in",
                      file=sys.stderr)
                return 1
            print(f"`{person.login}` is now the directory's account ({person.dn}); its local password no longer "
                  "opens it")
            return 0
        if directory.settings.is_local(args.login):
            print(f"`{args.login}` is in `local_only`: it signs in with its local password, never the directory")
            return 1
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            import getpass
            password = getpass.getpass(f"directory password of {args.login}: ")
        try:
            person = directory.check_password(args.login, password)
        except LoginRefused as refused:
            print(f"refused: {refused.reason}")
            return 1
        except DirectoryError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        access = ", ".join(person.roles) if person.active and person.roles else "none: the account would be disabled"
        for label, value in (("login", person.login), ("dn", person.dn), ("name", person.name),
                             ("email", person.email), ("phone", person.phone), ("department", person.department),
                             ("roles", access), ("groups", "; ".join(person.groups) or "none")):
            print(f"  {label:<11} {value}")
        return 0
