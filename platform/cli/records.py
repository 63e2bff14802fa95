"""`deskbase` commands on the definitions and the records: check, migrate, demo, query,
show, fire, reindex, info."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from deskbase.objects.errors import DeskbaseError, QueryError, hint_for
from deskbase.objects.fields import format_duration
from deskbase.objects.filters import parse_filter_text
from deskbase.objects.model import TypeDef
from deskbase.views.display import ref_text

from .opening import identity_of_args, open_definitions, open_store, shown_uri
from .tables import cell, default_columns, table


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """The `check`, `migrate`, `demo`, `query`, `show`, `fire`, `reindex` and `info` commands."""
    commands.add_parser("check", parents=[common], help="validate the definitions; exit 1 on any problem")
    migrate = commands.add_parser("migrate", parents=[common], help="bring the database up to the definitions")
    migrate.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    demo = commands.add_parser("demo", parents=[common], help="load the demo data of the definitions folder")
    demo.add_argument("--force", action="store_true", help="load even if records exist already")
    query = commands.add_parser("query", parents=[common], help="list records of a type through the indexes")
    query.add_argument("type")
    query.add_argument("--filter", default=None, help="a filter as JSON or YAML, e.g. '{priority: high}'")
    query.add_argument("--sort", default=None, help="fields, `-` for descending: -priority,created_at")
    query.add_argument("--limit", type=int, default=20)
    query.add_argument("--offset", type=int, default=0)
    query.add_argument("--columns", default=None, help="fields to show, comma-separated")
    query.add_argument("--as", dest="as_login", default=None, metavar="LOGIN",
                       help="list only what this account may read")
    show = commands.add_parser("show", parents=[common], help="print one record with its history")
    show.add_argument("number", help="a record number such as T-000123")
    show.add_argument("--as", dest="as_login", default=None, metavar="LOGIN",
                      help="show the record as this account sees it (refused if it may not read it)")
    fire = commands.add_parser("fire", parents=[common], help="fire a workflow transition on a record")
    fire.add_argument("number", help="a record number such as T-000123")
    fire.add_argument("transition", help="the transition's name, such as take")
    fire.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                      help="a value the transition asks for, such as time_spent=30m (repeatable)")
    fire.add_argument("--as", dest="as_login", default=None, metavar="LOGIN",
                      help="fire it as this account (default: the system, which may fire every transition)")
    reindex = commands.add_parser("reindex", parents=[common], help="rebuild indexes from the records")
    reindex.add_argument("types", nargs="*", help="types to rebuild (default: all)")
    commands.add_parser("info", parents=[common], help="what the database holds")
    return {"check": cmd_check, "migrate": cmd_migrate, "demo": cmd_demo, "query": cmd_query,
            "show": cmd_show, "fire": cmd_fire, "reindex": cmd_reindex, "info": cmd_info}


def cmd_check(args) -> int:
    definitions = open_definitions(args)
    files = ", ".join(definitions.sources)
    print(f"definitions are valid: {len(definitions.types)} types, {len(definitions.views)} views, "
          f"{len(definitions.roles)} roles ({files})")
    return 0


def cmd_migrate(args) -> int:
    with open_store(args, migrate=False) as store:
        if args.dry_run:
            plan = store.migration_plan()
            print("would do:" if plan.steps else "", *plan.describe(), sep="\n  " if plan.steps else "")
            return 0
        plan = store.migrate(progress=lambda text: print(f"  {text}"))
        print("the database matches the definitions" + ("" if plan.steps else " (nothing to do)"))
        return 0


def cmd_demo(args) -> int:
    from deskbase.rules.application import load_application_demo
    with open_store(args) as store:
        started = time.perf_counter()
        counts = load_application_demo(store, Path(args.definitions) / "demo", force=args.force,
                           progress=lambda type_name, count: print(f"\r  {type_name}: {count}", end="", flush=True))
        print()
        total = sum(counts.values())
        print(f"loaded {total} demo records in {time.perf_counter() - started:.1f} s: "
              + ", ".join(f"{n} {t}" for t, n in counts.items()))
        return 0


def cmd_query(args) -> int:
    with open_store(args) as store:
        def work(session):
            typedef = session.definitions.type(args.type)
            columns = args.columns.split(",") if args.columns else default_columns(typedef)
            for column in columns:
                if column not in typedef.fields:
                    hint = hint_for(column, typedef.fields)
                    raise QueryError(f"`{column}` is not a field of {typedef.name}", "--columns", hint)
            started = time.perf_counter()
            page = session.query(args.type, parse_filter_text(args.filter), args.sort,
                                 offset=args.offset, limit=args.limit)
            elapsed = (time.perf_counter() - started) * 1000
            rows = [[cell(session, typedef, r, c) for c in columns] for r in page.records]
            print(table(rows, [typedef.fields[c].title() for c in columns]))
            shown = f"{args.offset + 1}–{args.offset + len(rows)}" if rows else "none"
            print(f"\n{shown} of {page.total} {typedef.name} records ({elapsed:.1f} ms)")
        store.read(work, identity=identity_of_args(store, args))
        return 0


def _indented(text: str, width: int = 25) -> str:
    return text.replace("\n", "\n" + " " * width)


def _history_value(session, typedef: TypeDef, name: str, value: Any) -> str:
    """A value as the history stored it (JSON form), shown as people read it."""
    field = typedef.fields.get(name)
    if value is None or value == []:
        return "(empty)"
    if field is not None and field.kind.name == "computed":
        field = replace(field, kind=field.kind.result)
    if field is not None and field.kind.name == "ref":
        return ref_text(session, field.kind.to, value)
    if field is not None and field.kind.name == "refs":
        return ", ".join(ref_text(session, field.kind.to, v) for v in value)
    if field is not None and field.kind.name in ("enum", "duration"):
        return field.kind.text(value)
    if field is not None and field.kind.name == "datetime":
        return field.kind.text(datetime.fromisoformat(value))
    if isinstance(value, list):
        return ", ".join(str(v.get("filename", v)) if isinstance(v, dict) else str(v) for v in value)
    return str(value)


def cmd_show(args) -> int:
    with open_store(args) as store:
        zone = ZoneInfo(store.definitions.zone)

        identity = identity_of_args(store, args)

        def work(session):
            from deskbase.rules.access.scopes import AccessDenied, decide, hidden_fields
            from deskbase.rules.process.timers import clocks_of
            from deskbase.rules.process.workflows import available_transitions
            record = session.find(args.number)
            typedef = session.definitions.type(record.type_name)
            hidden: frozenset[str] = frozenset()
            if identity is not None:
                decision = decide(identity, "read", typedef, record, definitions=session.definitions,
                                  context=session.context(record.values))
                if not decision.allowed:
                    raise AccessDenied("read", f"{args.as_login} may not read {record.number}: {decision.reason}")
                hidden = hidden_fields(identity, typedef, session.definitions)
            print(f"{record.number}  {typedef.title()}  (version {record.version})")
            own = [n for n, f in typedef.fields.items() if not f.system and n not in hidden]
            system = [n for n, f in typedef.fields.items() if f.system and n not in ("id", "version")]
            for name in own + system:
                text = cell(session, typedef, record, name)
                if text:
                    print(f"  {typedef.fields[name].title():<22} {_indented(text)}")
            clocks = clocks_of(session, record, getattr(identity, "language", None) or session.definitions.languages[0])
            if clocks:
                print("\ntimers:")
                for clock in clocks:
                    due = f"due {clock.deadline.astimezone(zone):%Y-%m-%d %H:%M}" if clock.deadline else ""
                    used = format_duration(int(clock.elapsed.total_seconds()))
                    target = f" of {format_duration(int(clock.target.total_seconds()))}" if clock.target else ""
                    print(f"  {clock.label:<22} {clock.state:<9} {used}{target} ({clock.policy or 'no policy'})"
                          + (f"  {due}" if due else ""))
            offered = available_transitions(session, record)
            if offered:
                print("\ntransitions:")
                for name, label, inputs in offered:
                    asked = ", ".join(f"{n}{'' if i.required else '?'}" for n, i in inputs.items())
                    print(f"  {name:<22} {label}" + (f"  (--input {asked})" if asked else ""))
            print("\nhistory:")
            for entry in record.history.entries:
                who = entry["by"] + (f" for {entry['acting_for']}" if entry.get("acting_for") else "")
                action = entry["action"] + (f" ({entry['reason']})" if entry.get("reason") else "")
                print(f"  {entry['at'].astimezone(zone):%Y-%m-%d %H:%M}  {who}  {action}")
                for name, (old, new) in entry["changes"].items():
                    if name in hidden:
                        continue
                    label = typedef.fields[name].title() if name in typedef.fields else name
                    shown = _history_value(session, typedef, name, new)
                    if entry["action"] != "created":
                        shown = f"{_history_value(session, typedef, name, old)} → {shown}"
                    print(f"      {label}: {_indented(shown, 8 + len(label))}")
        store.read(work, identity=identity)
        return 0


def cmd_fire(args) -> int:
    from deskbase.rules.process.workflows import fire, workflow_of
    inputs: dict[str, str] = {}
    for text in args.input:
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise DeskbaseError(f"`--input {text}` is not NAME=VALUE, such as --input time_spent=30m")
        inputs[name.strip()] = value
    with open_store(args) as store:
        identity = identity_of_args(store, args)

        def work(session):
            record = fire(session, session.find(args.number), args.transition, inputs)
            typedef = session.definitions.type(record.type_name)
            field = workflow_of(session.definitions, record.type_name).field
            language = getattr(identity, "language", None) or session.definitions.languages[0]
            state = record.get(field)
            return f"{record.number}: {args.transition} → {state} ({typedef.fields[field].kind.text(state, language)})"
        print(store.run(work, identity=identity))
        return 0


def cmd_reindex(args) -> int:
    with open_store(args) as store:
        started = time.perf_counter()
        counts = store.reindex(args.types or None, progress=lambda t, n: print(f"  {t}: {n} records"))
        print(f"rebuilt the indexes of {len(counts)} types in {time.perf_counter() - started:.1f} s")
        return 0


def summary(store) -> list[str]:
    """A line per type: its name and how many records it holds."""
    def work(session):
        return [f"  {name:<16} {session.count(name):>8}" for name in store.definitions.types]
    return store.read(work)


def cmd_info(args) -> int:
    with open_store(args) as store:
        print(f"database: {shown_uri(store.uri)}")
        print("\n".join(summary(store)))
        return 0
