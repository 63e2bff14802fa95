"""`deskbase generate`: run a generator of the definitions now, for its period or a month."""
from __future__ import annotations

import argparse
from collections.abc import Callable

from .opening import open_store


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """The `generate` command."""
    generate = commands.add_parser("generate", parents=[common],
                                   help="make the records of a generator (the reports of last month, …)")
    generate.add_argument("name", nargs="?", help="the generator's name in `generators:` (none: list them)")
    generate.add_argument("--month", metavar="YYYY-MM", help="the month to make them for (default: its period now)")
    return {"generate": cmd_generate}


def cmd_generate(args: argparse.Namespace) -> int:
    from deskbase.objects.fields import label_text
    from deskbase.rules.process.generators import generators, month, run_generator
    with open_store(args) as store:
        if not args.name:
            for name, generator in generators(store.definitions).items():
                print(f"{name:24} {label_text(generator.label, 'en', name)} ({generator.period}: "
                      f"{generator.type} per {generator.each_type})")
            return 0
        report = run_generator(store, args.name, period=month(args.month) if args.month else None)
        print(report)
        for number in report.made:
            print(f"  {number}")
        return 1 if report.failed else 0
