"""What every `deskbase` command shares: the options naming the definitions, overlays and
database, and opening them (the definitions checked, the store with its rules, the account
of `--as`)."""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from deskbase.objects.errors import DeskbaseError
from deskbase.objects.model import Definitions
from deskbase.objects.store import Store
from deskbase.rules.access.identity import Identity, identity_of
from deskbase.rules.application import load_application, open_store as open_application_store

DEFAULT_DEFINITIONS = os.environ.get("DESKBASE_DEFINITIONS", "definitions")


def shown_uri(uri: str) -> str:
    """A database URI as it may be printed: the password in it replaced by ***."""
    return re.sub(r"(//[^:/@]+:)[^@/]+@", r"\1***@", uri)


def common_options() -> argparse.ArgumentParser:
    """The options every command takes: --definitions, --overlay, --db."""
    # SUPPRESS keeps a value given before the command from being reset by the sub-parser
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--definitions", default=argparse.SUPPRESS, metavar="DIR",
                        help=f"the definitions folder (default: {DEFAULT_DEFINITIONS})")
    common.add_argument("--overlay", action="append", default=argparse.SUPPRESS, metavar="DIR",
                        help="a customer folder layered over the definitions (repeatable, in order)")
    common.add_argument("--db", default=argparse.SUPPRESS, metavar="URI",
                        help="the database: memory://, file:///path/Data.fs?blobstorage_dir=…, postgres://… "
                             "(default: $DESKBASE_DB, else var/Data.fs)")
    return common


def open_definitions(args: argparse.Namespace) -> Definitions:
    """The definitions folder of the arguments, with its overlays, compiled and checked."""
    if not Path(args.definitions).is_dir():
        raise DeskbaseError(f"the definitions folder `{args.definitions}` does not exist")
    return load_application(args.definitions, args.overlay)


def open_store(args: argparse.Namespace, *, migrate: bool = True) -> Store:
    """The database of the arguments, opened with the application's rules (migrated unless told)."""
    return open_application_store(args.db, open_definitions(args), migrate=migrate)


def identity_of_args(store: Store, args: argparse.Namespace) -> Identity | None:
    """The identity of `--as LOGIN`, or None (the system) without it."""
    if not getattr(args, "as_login", None):
        return None
    return identity_of(store, args.as_login)
