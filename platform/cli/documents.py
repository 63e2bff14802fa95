"""`deskbase document`: make a PDF document of a record (as the system, or `--as` an account,
showing what it may read), write it to a file, and keep a copy in the record if asked."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from .opening import identity_of_args, open_store


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add this group's sub-commands to `commands`; return their handlers by command name."""
    document = commands.add_parser("document", parents=[common],
                                   help="make a PDF document of a record (see `documents:` in the definitions)")
    document.add_argument("name", help="the document's name in `documents:`")
    document.add_argument("number", help="a record number such as J-0001")
    document.add_argument("--out", default=None, metavar="FILE",
                          help="where to write the PDF (default: the document's file name, here)")
    document.add_argument("--as", dest="as_login", default=None, metavar="LOGIN",
                          help="make it as this account: only what it may read, in its language")
    document.add_argument("--language", default=None, help="the language (default: the account's, else the first)")
    document.add_argument("--attach", action="store_true",
                          help="also keep a copy in the record's field named by the document's `attach_to`")
    return {"document": cmd_document}


def cmd_document(args: argparse.Namespace) -> int:
    """`deskbase document NAME NUMBER [--out FILE] [--as LOGIN] [--attach]`."""
    from deskbase.rules.access.scopes import AccessDenied
    from deskbase.rules.documents.making import keep_copy, render

    with open_store(args) as store:
        identity = identity_of_args(store, args)
        try:
            made = store.read(lambda session: render(session, args.name, args.number, language=args.language),
                              identity=identity)
        except AccessDenied as denied:
            raise AccessDenied("read", f"{args.as_login or 'the system'} may not make `{args.name}`: "
                                       f"{denied.reason}") from None
        target = Path(args.out or made.filename)
        target.write_bytes(made.pdf)
        print(f"wrote {target} ({len(made.pdf) // 1024 + 1} KiB)")
        if args.attach:
            record = store.run(lambda session: keep_copy(session, args.name, args.number, language=args.language),
                               identity=identity)
            print(f"kept a copy in {record.number}")
        return 0
