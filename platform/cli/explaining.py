"""`deskbase explain`: why an account may or may not read and change a record, which timer
policy applies to it and how its clocks ran, and what the notification rules did on its
last changes — in sentences, from the engine's own evaluation (`views/explaining.py`)."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime

from deskbase.objects.errors import DeskbaseError
from deskbase.views.explaining import CHANGES_SHOWN, as_text, explain

from .opening import open_store


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """The `explain` command."""
    parser = commands.add_parser("explain", parents=[common],
                                 help="say why an account may read or change a record, how its timers count and "
                                      "who its last changes told")
    parser.add_argument("number", help="a record number such as T-000123")
    parser.add_argument("--as", dest="as_login", required=True, metavar="LOGIN",
                        help="the account whose access is explained")
    parser.add_argument("--changes", type=int, default=CHANGES_SHOWN, metavar="N",
                        help=f"the last history entries whose notifications are explained (default {CHANGES_SHOWN})")
    parser.add_argument("--at", default=None, metavar="MOMENT",
                        help="explain as of this moment (ISO, such as 2026-12-03T09:00+01:00); default now")
    return {"explain": cmd_explain}


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DeskbaseError(f"`--at {text}` is not a moment such as 2026-12-03T09:00+01:00") from None
    if moment.tzinfo is None:
        raise DeskbaseError(f"`--at {text}` names no time zone: add one, such as 2026-12-03T09:00+01:00")
    return moment


def cmd_explain(args) -> int:
    if args.changes < 1:
        raise DeskbaseError("`--changes` counts history entries: give 1 or more")
    now = _moment(args.at)
    with open_store(args) as store:
        print(as_text(explain(store, args.number, args.as_login, now=now, changes=args.changes)), end="")
        return 0
