"""The `deskbase` command: check definitions, migrate, load demo data, query and show
records (as the system, or `--as` an account, within its access), fire workflow
transitions, manage accounts, rebuild indexes, and run the product."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import replace
from datetime import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo


from .objects.errors import DeskbaseError, DefinitionErrors, QueryError
from .objects.fields import format_duration, label_text
from .objects.filters import parse_filter_text
from .objects.model import Definitions, TypeDef
from .views.display import field_text, ref_text

DEFAULT_DEFINITIONS = os.environ.get("DESKBASE_DEFINITIONS", "definitions")


def shown_uri(uri: str) -> str:
    """A database URI as it may be printed: the password in it replaced by ***."""
    import re
    return re.sub(r"(//[^:/@]+:)[^@/]+@", r"\1***@", uri)


def _common_options() -> argparse.ArgumentParser:
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


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(prog="deskbase", parents=[common],
                                     description="Deskbase: a configurable object database and the applications defined on it.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
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
    approvals = commands.add_parser("approvals", parents=[common], help="approval chains: what awaits you, decide")
    approval_commands = approvals.add_subparsers(dest="approvals_command", metavar="ACTION", required=True)
    awaiting = approval_commands.add_parser("list", parents=[common], help="the records awaiting this account's approval")
    awaiting.add_argument("--as", dest="as_login", required=True, metavar="LOGIN")
    for decision in ("approve", "reject", "comment", "propose"):
        deciding = approval_commands.add_parser(decision, parents=[common], help=f"{decision} as this account")
        deciding.add_argument("number", help="a record number such as T-000123")
        deciding.add_argument("--as", dest="as_login", required=True, metavar="LOGIN")
        deciding.add_argument("--comment", default=None, help="what you say with it")
        deciding.add_argument("--price", default=None, help="approve at, or propose, this price")
        deciding.add_argument("--chain", default=None, help="the chain, when the record has several")
    users = commands.add_parser("users", parents=[common], help="local accounts: add, list")
    user_commands = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = user_commands.add_parser("add", parents=[common], help="create an account")
    add.add_argument("login")
    add.add_argument("--name", default=None, help="the person's name (default: the login)")
    add.add_argument("--email", default="")
    add.add_argument("--role", action="append", default=[], required=True, help="a role (repeatable)")
    add.add_argument("--group", action="append", default=[], help="a group, by number or name (repeatable)")
    add.add_argument("--organization", default=None, help="the organization, by number or name")
    add.add_argument("--language", default="en")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input instead of asking for it")
    user_commands.add_parser("list", parents=[common], help="list the accounts")
    apikeys = commands.add_parser("apikeys", parents=[common], help="API keys of integrations: add, list, revoke")
    key_commands = apikeys.add_subparsers(dest="apikeys_command", metavar="ACTION", required=True)
    add_key = key_commands.add_parser("add", parents=[common], help="make a key acting as an account; printed once")
    add_key.add_argument("name", help="what the key is for, one word such as monitoring")
    add_key.add_argument("--as", dest="as_login", required=True, metavar="LOGIN", help="the account the key acts as")
    key_commands.add_parser("list", parents=[common], help="the keys with their account and last use")
    revoke_key = key_commands.add_parser("revoke", parents=[common], help="revoke a key: it opens nothing any more")
    revoke_key.add_argument("name")
    reindex = commands.add_parser("reindex", parents=[common], help="rebuild indexes from the records")
    reindex.add_argument("types", nargs="*", help="types to rebuild (default: all)")
    commands.add_parser("info", parents=[common], help="what the database holds")
    run = commands.add_parser("run", parents=[common],
                              help="prepare the database (migrate, demo data on first use) and run the web interface")
    serve = commands.add_parser("serve", parents=[common], help="run the web interface and the job worker")
    for serving in (run, serve):
        serving.add_argument("--host", default=os.environ.get("DESKBASE_HOST", "127.0.0.1"),
                            help="address to listen on (default 127.0.0.1)")
        serving.add_argument("--port", type=int, default=int(os.environ.get("DESKBASE_PORT", "8000")),
                            help="port (default 8000)")
        serving.add_argument("--no-worker", action="store_true", help="do not run the scheduled jobs in this process")
        serving.add_argument("--check", action="store_true", help=argparse.SUPPRESS)   # prepare, print, do not listen
    for module in _command_modules():
        COMMANDS.update(module.add_commands(commands, common))
    return parser


# Command groups that live beside what they drive, each with
# `add_commands(subparsers, common) -> {command name: handler}`.
COMMAND_MODULES = ("deskbase.connectors.job_commands", "deskbase.connectors.directory_commands",
                   "deskbase.connectors.mail_commands",
                   "deskbase.rules.generator_commands", "deskbase.connectors.document_commands")


def _command_modules() -> list:
    import importlib
    return [importlib.import_module(name) for name in COMMAND_MODULES]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `deskbase` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for position, word in enumerate(argv[:-1]):   # `--sort -priority` would read as an unknown option
        if word == "--sort" and argv[position + 1].startswith("-"):
            argv[position:position + 2] = [f"--sort={argv[position + 1]}"]
            break
    args = build_parser().parse_args(argv)
    args.definitions = getattr(args, "definitions", DEFAULT_DEFINITIONS)
    args.overlay = getattr(args, "overlay", [])
    args.db = getattr(args, "db", None)
    try:
        return COMMANDS[args.command](args)
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


def _definitions(args) -> Definitions:
    from .rules.application import load_application
    if not Path(args.definitions).is_dir():
        raise DeskbaseError(f"the definitions folder `{args.definitions}` does not exist")
    return load_application(args.definitions, args.overlay)


def _store(args, *, migrate: bool = True):
    from .rules.application import open_store
    return open_store(args.db, _definitions(args), migrate=migrate)


def _identity(store, args):
    """The identity of `--as LOGIN`, or None (the system) without it."""
    if not getattr(args, "as_login", None):
        return None
    from .rules.identity import identity_of
    return identity_of(store, args.as_login)


def cmd_check(args) -> int:
    definitions = _definitions(args)
    files = ", ".join(definitions.sources)
    print(f"definitions are valid: {len(definitions.types)} types, {len(definitions.views)} views, "
          f"{len(definitions.roles)} roles ({files})")
    return 0


def cmd_migrate(args) -> int:
    with _store(args, migrate=False) as store:
        if args.dry_run:
            plan = store.migration_plan()
            print("would do:" if plan.steps else "", *plan.describe(), sep="\n  " if plan.steps else "")
            return 0
        plan = store.migrate(progress=lambda text: print(f"  {text}"))
        print("the database matches the definitions" + ("" if plan.steps else " (nothing to do)"))
        return 0


def cmd_demo(args) -> int:
    from .rules.application import load_application_demo
    with _store(args) as store:
        started = time.perf_counter()
        counts = load_application_demo(store, Path(args.definitions) / "demo", force=args.force,
                           progress=lambda type_name, count: print(f"\r  {type_name}: {count}", end="", flush=True))
        print()
        total = sum(counts.values())
        print(f"loaded {total} demo records in {time.perf_counter() - started:.1f} s: "
              + ", ".join(f"{n} {t}" for t, n in counts.items()))
        return 0


def _default_columns(typedef: TypeDef) -> list[str]:
    columns = ["id"]
    if typedef.title_field:
        columns.append(typedef.title_field)
    for name, field in typedef.own_fields.items():
        if len(columns) >= 7:
            break
        if name not in columns and field.kind.name not in ("text", "attachments", "computed") and typedef.index_for(name):
            columns.append(name)
    return columns


def _cell(session, typedef: TypeDef, record, name: str) -> str:
    return field_text(session, typedef, record.values, name, number=record.number)


def _table(rows: list[list[str]], headers: list[str]) -> str:
    width = shutil.get_terminal_size((160, 20)).columns
    limit = max(12, (width - 2 * len(headers)) // max(1, len(headers)))
    cut = [[c if len(c) <= limit else c[: limit - 1] + "…" for c in row] for row in rows]
    sizes = [max([len(h)] + [len(r[i]) for r in cut]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(sizes[i]) for i, h in enumerate(headers)).rstrip(),
             "  ".join("-" * s for s in sizes)]
    lines += ["  ".join(c.ljust(sizes[i]) for i, c in enumerate(row)).rstrip() for row in cut]
    return "\n".join(lines)


def _parse_filter(text: str | None) -> Any:
    return parse_filter_text(text)


def cmd_query(args) -> int:
    with _store(args) as store:
        def work(session):
            typedef = session.definitions.type(args.type)
            columns = args.columns.split(",") if args.columns else _default_columns(typedef)
            for column in columns:
                if column not in typedef.fields:
                    from .objects.errors import hint_for
                    hint = hint_for(column, typedef.fields)
                    raise QueryError(f"`{column}` is not a field of {typedef.name}", "--columns", hint)
            started = time.perf_counter()
            page = session.query(args.type, _parse_filter(args.filter), args.sort,
                                 offset=args.offset, limit=args.limit)
            elapsed = (time.perf_counter() - started) * 1000
            rows = [[_cell(session, typedef, r, c) for c in columns] for r in page.records]
            print(_table(rows, [typedef.fields[c].title() for c in columns]))
            shown = f"{args.offset + 1}–{args.offset + len(rows)}" if rows else "none"
            print(f"\n{shown} of {page.total} {typedef.name} records ({elapsed:.1f} ms)")
        store.read(work, identity=_identity(store, args))
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
    with _store(args) as store:
        zone = ZoneInfo(store.definitions.zone)

        identity = _identity(store, args)

        def work(session):
            from .rules.access import AccessDenied, decide, hidden_fields
            from .rules.timers import clocks_of
            from .rules.workflows import available_transitions
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
                text = _cell(session, typedef, record, name)
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
    from .rules.workflows import fire, workflow_of
    inputs: dict[str, str] = {}
    for text in args.input:
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise DeskbaseError(f"`--input {text}` is not NAME=VALUE, such as --input time_spent=30m")
        inputs[name.strip()] = value
    with _store(args) as store:
        identity = _identity(store, args)

        def work(session):
            record = fire(session, session.find(args.number), args.transition, inputs)
            typedef = session.definitions.type(record.type_name)
            field = workflow_of(session.definitions, record.type_name).field
            language = getattr(identity, "language", None) or session.definitions.languages[0]
            state = record.get(field)
            return f"{record.number}: {args.transition} → {state} ({typedef.fields[field].kind.text(state, language)})"
        print(store.run(work, identity=identity))
        return 0


def cmd_approvals(args) -> int:
    from .rules.approvals import decide_approval, pending_for
    with _store(args) as store:
        identity = _identity(store, args)
        if args.approvals_command == "list":
            rows = [[item.number, item.label, item.step, item.approver if item.approver != identity.id else "",
                     item.since.strftime("%Y-%m-%d %H:%M")] for item in pending_for(store, identity)]
            print(_table(rows, ["Record", "Approval", "Step", "For", "Since"]) if rows else "nothing awaits your approval")
            return 0

        def work(session):
            view = decide_approval(session, args.number, args.approvals_command, chain=args.chain,
                                   comment=args.comment, price=args.price)
            awaiting = (f", awaiting {', '.join(view.awaiting) or 'an administrator'} (step {view.step})"
                        if view.state == "pending" else "")
            return f"{view.number}: {view.label} is {view.state}{awaiting}"
        print(store.run(work, identity=identity))
        return 0


def cmd_reindex(args) -> int:
    with _store(args) as store:
        started = time.perf_counter()
        counts = store.reindex(args.types or None, progress=lambda t, n: print(f"  {t}: {n} records"))
        print(f"rebuilt the indexes of {len(counts)} types in {time.perf_counter() - started:.1f} s")
        return 0


def _summary(store) -> list[str]:
    def work(session):
        return [f"  {name:<16} {session.count(name):>8}" for name in store.definitions.types]
    return store.read(work)


def cmd_info(args) -> int:
    with _store(args) as store:
        print(f"database: {shown_uri(store.uri)}")
        print("\n".join(_summary(store)))
        return 0


def cmd_users(args) -> int:
    from .rules.identity import create_account, identity_settings, list_accounts
    with _store(args) as store:
        if args.users_command == "list":
            rows = [[a.login, a.name, ", ".join(a.roles), "yes" if a.active else "no"] for a in list_accounts(store)]
            print(_table(rows, ["Login", "Name", "Roles", "Active"]) if rows else "no accounts yet")
            return 0
        settings = identity_settings(store.definitions)

        def ids(type_name: str | None, texts: list[str], what: str) -> list[int]:
            if texts and type_name is None:
                raise DeskbaseError(f"the definitions name no {what} type (`identity: {{{what}_type: …}}`)")
            return store.read(lambda s: [s.lookup(type_name, text) for text in texts]) if texts else []
        groups = ids(settings.group_type, args.group, "group")
        organization = ids(settings.organization_type, [args.organization] if args.organization else [],
                           "organization")
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            import getpass
            password = getpass.getpass(f"password for {args.login}: ")
        create_account(store, args.login, name=args.name or args.login, password=password, roles=args.role,
                       groups=groups, organization=organization[0] if organization else None,
                       email=args.email, language=args.language)
        print(f"account `{args.login}` created with the role{'s' if len(args.role) > 1 else ''} "
              f"{', '.join(args.role)}")
        return 0


def cmd_apikeys(args) -> int:
    from .views.api_keys import add_key, list_keys, revoke_key
    with _store(args) as store:
        if args.apikeys_command == "add":
            key = add_key(store, args.name, args.as_login)
            print(f"API key `{args.name}` acting as {args.as_login} (shown only now; keep it secret):\n{key}")
        elif args.apikeys_command == "revoke":
            revoke_key(store, args.name)
            print(f"API key `{args.name}` revoked")
        else:
            def moment(at) -> str:
                return at.strftime("%Y-%m-%d %H:%M") if at else ""
            rows = [[k.name, k.login, moment(k.created_at), moment(k.last_used_at), "revoked" if k.revoked_at else "live"]
                    for k in list_keys(store)]
            print(_table(rows, ["Name", "Account", "Created", "Last used", "State"]) if rows else "no API keys yet")
        return 0


def cmd_run(args) -> int:
    from .rules.application import load_application_demo as load_demo
    with _store(args) as store:
        demo_folder = Path(args.definitions) / "demo"
        empty = store.read(lambda s: all(s.count(n) == 0 for n in store.definitions.types))
        if empty and demo_folder.is_dir():
            print("first start: loading the demo data…")
            counts = load_demo(store, demo_folder)
            print("  " + ", ".join(f"{n} {t}" for t, n in counts.items()))
        print(f"Deskbase is ready. Database: {shown_uri(store.uri)}")
        print("\n".join(_summary(store)))
        accounts = _demo_accounts(demo_folder) if demo_folder.is_dir() else []
        if accounts:
            print("\nDemo accounts (demo only; from definitions/demo/):")
            print(_table([[a.get("login", ""), ", ".join(a.get("roles", ())), str(a.get("password", ""))]
                          for a in accounts], ["login", "roles", "password"]))
        print("\nThe command line works beside it:")
        for line in store.read(_examples):
            print(f"  .venv/bin/deskbase {line}")
        if accounts:
            login = accounts[-1].get("login")
            busiest = store.read(lambda s: max(store.definitions.types, key=s.count))
            print(f"  .venv/bin/deskbase query {busiest} --as {login}    # what one account may see")
        print("  .venv/bin/deskbase --help")
        return _serve(store, args)


def cmd_serve(args) -> int:
    with _store(args) as store:
        return _serve(store, args)


def _serve(store, args) -> int:
    """Listen for the web interface, with the scheduled jobs running in a thread beside it."""
    import threading

    from .connectors.channels import job_runner
    from .views.app import create_app
    app = create_app(store, secure_cookies=os.environ.get("DESKBASE_SECURE_COOKIES") == "1")
    print(f"\nWeb interface: http://{'localhost' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{args.port}/"
          "   (Ctrl-C stops it)", flush=True)
    if args.check:
        return 0
    import uvicorn
    stop = threading.Event()
    if not args.no_worker:
        runner = job_runner(store)
        threading.Thread(target=runner.serve, args=(stop,), kwargs={"interval": 15.0}, daemon=True,
                         name="deskbase-jobs").start()
        _listen_to_mailboxes(store, stop)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        stop.set()
    return 0


def _listen_to_mailboxes(store, stop) -> list:
    """Mailboxes with `idle: true` are listened to in threads of this process until `stop`;
    the threads."""
    from .connectors.imap import start_idle

    def report(fetched) -> None:
        if fetched.outcomes or fetched.errors:
            print(f"{datetime.now():%H:%M:%S} mail {fetched}", flush=True)
    listening = start_idle(store, stop, report=report)
    if listening:
        print(f"listening to {len(listening)} mailbox(es) with IMAP IDLE", flush=True)
    return listening


def _demo_accounts(folder: Path) -> list[dict]:
    """The `users` entries of the demo files, to print their logins at start."""
    from .objects.demo import read_demo
    from .rules.application import DEMO_SECTIONS
    return [dict(user) for _, document, _ in read_demo(folder, extra_keys=tuple(DEMO_SECTIONS))
            for user in document.get("users") or () if isinstance(user, dict)]


def _examples(session) -> list[str]:
    """Command lines that show the first views of the definitions, and one record."""
    lines = []
    views = sorted(session.definitions.views.values(), key=lambda v: -session.count(v.type))
    for view in views[:3]:
        line = f"query {view.type}"
        if view.filter:
            line += " --filter '" + json.dumps(view.filter, ensure_ascii=False, default=str) + "'"
        if view.sort:
            line += f" --sort {','.join(view.sort)}"
        lines.append(line + f"    # {label_text(view.label, session.definitions.languages[0], view.name)}")
    for name in sorted(session.definitions.types, key=lambda t: -session.count(t)):
        page = session.query(name, limit=1, sort="-id")
        if page.records:
            lines.append(f"show {page.records[0].number}")
            break
    return lines


COMMANDS = {
    "check": cmd_check, "migrate": cmd_migrate, "demo": cmd_demo, "query": cmd_query, "show": cmd_show, "fire": cmd_fire, "approvals": cmd_approvals,
    "reindex": cmd_reindex, "info": cmd_info, "run": cmd_run, "users": cmd_users, "apikeys": cmd_apikeys,
    "serve": cmd_serve,
}

if __name__ == "__main__":
    sys.exit(main())
