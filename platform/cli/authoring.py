"""`deskbase` commands for writing definitions: the JSON Schema an editor checks them with
while they are typed, and what an overlay changes against the definitions it is laid over."""
from __future__ import annotations

import argparse
import json
import sys
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
    commands.add_parser("diff", parents=[common],
                        help="say, in sentences, what the overlays (--overlay DIR, repeatable) change in the "
                             "definitions")
    translations = commands.add_parser(
        "translations", parents=[common],
        help="write or update the catalogue of a language of the definitions (locale/LANGUAGE.po): every label "
             "and message in the first language, new ones with an empty translation, the translations kept")
    translations.add_argument("language", help="the language code, one of the definitions' `settings.languages`")
    translations.add_argument("--output", metavar="FILE", default=None,
                              help="the .po file (default: locale/LANGUAGE.po in the last overlay folder, else in "
                                   "the definitions folder)")
    return {"schema": cmd_schema, "diff": cmd_diff, "translations": cmd_translations}


def cmd_translations(args: argparse.Namespace) -> int:
    from deskbase.objects.definitions import merged_document
    from deskbase.objects.translations import catalogue_path, languages_of, update_catalogue
    document = merged_document(args.definitions, args.overlay or ())
    languages = languages_of(document.data)
    if args.language not in languages:
        raise DeskbaseError(f"`{args.language}` is not a language of the definitions ({', '.join(languages)}); "
                            f"add it to `settings.languages` first")
    if args.language == languages[0]:
        raise DeskbaseError(f"`{args.language}` is the language the labels are written in; name another one")
    target = Path(args.output) if args.output else catalogue_path((args.overlay or [args.definitions])[-1],
                                                                  args.language)
    try:
        texts, translated, new = update_catalogue(document.data, document.positions, args.language, target)
    except (OSError, ValueError) as error:
        raise DeskbaseError(f"the catalogue `{target}` cannot be updated: {error}") from None
    print(f"wrote {target}: {texts} texts, {translated} translated, {texts - translated} to translate "
          f"({new} new)")
    return 0


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
    from deskbase.objects.definitions import overlaid_documents
    from deskbase.objects.overlay_diff import overlay_changes, sentences
    from deskbase.rules.application import application_schema
    from deskbase.rules.process.workflows import state_lists
    if not args.overlay:
        raise DeskbaseError("name the overlay folder to compare with the definitions: "
                            "`deskbase diff --overlay DIR` (repeatable, in order)")
    if not Path(args.definitions).is_dir():
        raise DeskbaseError(f"the definitions folder `{args.definitions}` does not exist")
    for folder in args.overlay:
        if not Path(folder).is_dir():
            raise DeskbaseError(f"the overlay folder `{folder}` does not exist")
    base, merged = overlaid_documents(args.definitions, args.overlay)
    changes = overlay_changes(base, merged, application_schema(), {**state_lists(base), **state_lists(merged)})
    folders = ", ".join(args.overlay)
    if not changes:
        print(f"the overlay changes nothing ({folders} over {args.definitions})")
        return 0
    print(f"what {folders} changes in {args.definitions}:")
    for line in sentences(changes):
        print(line)
    _say_problems(args)
    return 0


def _say_problems(args: argparse.Namespace) -> None:
    """The comparison reads the overlays as written; whether the result holds together is
    `deskbase check`'s to say, so its verdict is given in one line."""
    from deskbase.objects.errors import DefinitionErrors
    from deskbase.rules.application import load_application
    try:
        load_application(args.definitions, args.overlay)
    except DefinitionErrors as errors:
        count = len(errors.errors)
        overlays = " ".join(f"--overlay {folder}" for folder in args.overlay)
        print(f"note: the definitions with these overlays have {count} problem{'s' if count != 1 else ''}; "
              f"`deskbase check {overlays}` lists them", file=sys.stderr)
