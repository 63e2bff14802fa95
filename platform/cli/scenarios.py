"""`deskbase test`: play the scenario tests written beside the definitions and each overlay
(`scenarios/*.yaml`), each on a fresh in-memory store, and say which failed and where."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from deskbase.objects.errors import DefinitionErrors, DeskbaseError
from deskbase.rules.scenarios.playing import run_scenario
from deskbase.rules.scenarios.reading import Scenario, read_scenario, scenario_files

from .opening import open_definitions


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """The `test` command."""
    test = commands.add_parser("test", parents=[common],
                               help="play the scenario tests (scenarios/*.yaml beside the definitions and each "
                                    "overlay); exit 1 if one fails")
    test.add_argument("files", nargs="*", metavar="FILE", help="scenario files to play (default: every one found)")
    test.add_argument("-k", dest="keyword", default=None, metavar="WORD",
                      help="only the scenarios whose file name or sentence holds WORD")
    return {"test": cmd_test}


def cmd_test(args) -> int:
    definitions = open_definitions(args)
    files = [Path(file) for file in args.files] or scenario_files([args.definitions, *args.overlay])
    if not files:
        folders = ", ".join(str(Path(folder) / "scenarios") for folder in [args.definitions, *args.overlay])
        raise DeskbaseError(f"there is no scenario to play: write them as .yaml files in {folders}")
    started = time.perf_counter()
    passed = failed = 0
    for file in files:
        try:
            scenario = read_scenario(file)
        except DefinitionErrors as errors:
            failed += 1
            print(f"ERROR   {file}")
            print("\n".join(f"    {error}" for error in errors.errors))
            continue
        if args.keyword and not _selected(scenario, args.keyword):
            continue
        result = run_scenario(scenario, definitions, demo=Path(args.definitions) / "demo")
        if result.passed:
            passed += 1
            print(f"ok      {file}  {scenario.title}  ({result.seconds:.1f} s)")
        else:
            failed += 1
            print(f"FAILED  {file}  {scenario.title}")
            print("\n".join(f"    {failure}" for failure in result.failures))
    if not passed + failed:
        raise DeskbaseError(f"no scenario holds `{args.keyword}` in its file name or sentence")
    print(f"\n{passed + failed} scenario{'s' if passed + failed != 1 else ''}: {passed} passed, {failed} failed "
          f"({time.perf_counter() - started:.1f} s)")
    return 1 if failed else 0


def _selected(scenario: Scenario, keyword: str) -> bool:
    word = keyword.lower()
    return word in Path(scenario.file).name.lower() or word in scenario.title.lower()
