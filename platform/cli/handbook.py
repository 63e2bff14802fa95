"""`deskbase handbook`: the handbook of what the definitions (and overlays) configure, for the
people who will use it, in one of their languages, as HTML or PDF. It reads the definitions
only: no database is opened."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from deskbase.objects.errors import DeskbaseError

from .opening import open_definitions


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add this group's sub-commands to `commands`; return their handlers by command name."""
    made = commands.add_parser("handbook", parents=[common],
                               help="write the handbook of what was configured (roles, types, workflows, service "
                                    "levels, notifications…) as HTML or PDF")
    made.add_argument("--lang", default=None, metavar="LANGUAGE",
                      help="one of the definitions' languages (default: their first)")
    made.add_argument("--format", dest="output_format", default="html", metavar="FORMAT",
                      help="html (default) or pdf")
    made.add_argument("--output", default=None, metavar="FILE",
                      help="where to write it (default: handbook-<language>.<format>, here)")
    return {"handbook": cmd_handbook}


def cmd_handbook(args: argparse.Namespace) -> int:
    """`deskbase handbook [--overlay DIR] [--lang LANGUAGE] [--format html|pdf] [--output FILE]`."""
    from deskbase.views.handbook import handbook

    definitions = open_definitions(args)
    language = args.lang or definitions.languages[0]
    made = handbook(definitions, language, args.output_format)
    target = Path(args.output or f"handbook-{language}.{args.output_format}")
    try:
        target.write_bytes(made)
    except OSError as error:
        raise DeskbaseError(f"cannot write the handbook to `{target}`: {error.strerror}") from None
    print(f"wrote {target} ({len(made) // 1024 + 1} KiB)")
    return 0
