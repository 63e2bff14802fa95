"""`deskbase` commands for writing definitions: the JSON Schema an editor checks them with
while they are typed, and what an overlay changes against the definitions it is laid over."""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from deskbase.objects.errors import DeskbaseError


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add this group's sub-commands to `commands`; return their handlers by command name."""
    # Without the common options: the schema is the engine's, whatever the folder, and its
    # `--overlay` asks for the overlay flavour rather than naming a folder.
    schema = commands.add_parser("schema", help="write the JSON Schema of the definitions, for an editor's YAML "
                                                "language server (completion, descriptions, errors as you type)")
    schema.add_argument("--output", metavar="FILE", default=None,
                        help="write it into FILE (its folder is made if needed) rather than on the standard output")
    schema.add_argument("--overlay", dest="overlay_flavour", action="store_true",
                        help="the schema of an overlay's files: nothing required, any key may be `!remove`d")
    diff = commands.add_parser("diff", parents=[common],
                               help="say, in sentences, what the overlays (--overlay DIR, repeatable) change in "
                                    "the definitions")
    del diff   # its options are the common ones
    return {"schema": cmd_schema, "diff": cmd_diff}


def cmd_schema(args: argparse.Namespace) -> int:
    from deskbase.objects.editor_schema import editor_schema
    from deskbase.rules.application import application_schema
    text = json.dumps(editor_schema(application_schema(), overlay=args.overlay_flavour), indent=2,
                      ensure_ascii=False) + "\n"
    if args.output is None:
        print(text, end="")
        return 0
    target = Path(args.output)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DeskbaseError(f"the schema cannot be written to `{target}`: {exc.strerror or exc}") from None
    flavour = "overlay files" if args.overlay_flavour else "definitions files"
    print(f"wrote the JSON Schema of {flavour} to {target}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    raise DeskbaseError("not yet")
