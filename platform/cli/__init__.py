"""The `deskbase` command: check definitions, migrate, load demo data, query and show
records (as the system, or `--as` an account, within its access), fire workflow
transitions, manage accounts, run jobs, read mail, make documents, write the handbook of what
was configured, and run the product.

Each module of this package is one group of commands, with `add_commands(subparsers,
common) -> {command: handler}`; `opening` opens what they work on, `tables` prints rows."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from deskbase.objects.errors import DefinitionErrors, DeskbaseError

from . import (
    accounts,
    approvals,
    authoring,
    directory,
    documents,
    explaining,
    generators,
    handbook,
    jobs,
    mail,
    operations,
    records,
    scenarios,
    serving,
)
from .logs import configure_logging
from .opening import DEFAULT_DEFINITIONS, common_options, shown_uri

__all__ = ["build_parser", "main", "shown_uri"]

# In the order `deskbase --help` lists them.
COMMAND_GROUPS = (records, authoring, scenarios, explaining, handbook, approvals, accounts, serving, operations, jobs,
                  directory, mail, generators, documents)
Handler = Callable[[argparse.Namespace], int]
# The commands that run as a service: they log what they do (INFO); the others only problems.
SERVICE_COMMANDS = ("run", "serve", "worker", "zeo")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("deskbase")
    except PackageNotFoundError:          # run from a source tree that was not installed
        return "(not installed)"


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The parser of every command, and each command's handler by name."""
    common = common_options()
    parser = argparse.ArgumentParser(prog="deskbase", parents=[common],
                                     description="Deskbase: a configurable object database and the applications "
                                                 "defined on it.")
    parser.add_argument("--version", action="version", version=f"deskbase {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    handlers: dict[str, Handler] = {}
    for group in COMMAND_GROUPS:
        handlers.update(group.add_commands(commands, common))
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `deskbase` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for position, word in enumerate(argv[:-1]):   # `--sort -priority` would read as an unknown option
        if word == "--sort" and argv[position + 1].startswith("-"):
            argv[position:position + 2] = [f"--sort={argv[position + 1]}"]
            break
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    configure_logging("INFO" if args.command in SERVICE_COMMANDS else "WARNING")
    args.definitions = getattr(args, "definitions", DEFAULT_DEFINITIONS)
    args.overlay = getattr(args, "overlay", [])
    args.db = getattr(args, "db", None)
    try:
        return handlers[args.command](args)
    except DefinitionErrors as errors:
        print(errors, file=sys.stderr)
        return 1
    except DeskbaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:   # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted; the transaction in progress was not committed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
