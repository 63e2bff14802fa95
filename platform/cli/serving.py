"""`deskbase run` and `deskbase serve`: the web interface with the scheduled jobs and the
mailboxes' listeners running beside it."""
from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from deskbase.objects.fields import label_text

from .opening import open_store, shown_uri
from .records import summary
from .tables import table


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """The `run` and `serve` commands."""
    run = commands.add_parser("run", parents=[common],
                              help="prepare the database (migrate, demo data on first use) and run the web interface")
    serve = commands.add_parser("serve", parents=[common], help="run the web interface and the job worker")
    for serving in (run, serve):
        serving.add_argument("--host", default=os.environ.get("DESKBASE_HOST", "127.0.0.1"),
                            help="address to listen on (default 127.0.0.1)")
        serving.add_argument("--port", type=int, default=int(os.environ.get("DESKBASE_PORT", "8000")),
                            help="port (default 8000)")
        serving.add_argument("--no-worker", action="store_true", help="do not run the scheduled jobs in this process")
        serving.add_argument("--trusted-proxies", default=os.environ.get("DESKBASE_TRUSTED_PROXIES", ""),
                             help="addresses of the reverse proxies whose X-Forwarded-For names the client, "
                                  "comma-separated (default: none; $DESKBASE_TRUSTED_PROXIES)")
        serving.add_argument("--monitor-from", default=os.environ.get("DESKBASE_MONITOR_FROM", ""),
                             metavar="ADDRESSES",
                             help="addresses or networks (comma-separated) that read /healthz and /metrics without "
                                  "signing in (default: this machine; $DESKBASE_MONITOR_FROM)")
        serving.add_argument("--workers", type=int, default=int(os.environ.get("DESKBASE_WORKERS", "1")), metavar="N",
                             help="web processes (default 1; $DESKBASE_WORKERS); more than one needs a database "
                                  "processes share: ZEO (`deskbase zeo`) or PostgreSQL")
        serving.add_argument("--reload", action="store_true",
                             help="watch the definitions and overlays: apply a change that checks without a "
                                  "restart, show the errors of one that does not on every page")
        serving.add_argument("--accept-hiding", action="store_true",
                             help="with --reload: apply a change that hides stored values (a removed field or type)")
        serving.add_argument("--check", action="store_true", help=argparse.SUPPRESS)   # prepare, print, do not listen
    return {"run": cmd_run, "serve": cmd_serve}


def cmd_run(args) -> int:
    from deskbase.rules.application import load_application_demo as load_demo
    _check_workers(args)
    with open_store(args) as store:
        demo_folder = Path(args.definitions) / "demo"
        empty = store.read(lambda s: all(s.count(n) == 0 for n in store.definitions.types))
        if empty and demo_folder.is_dir():
            print("first start: loading the demo data…")
            counts = load_demo(store, demo_folder)
            print("  " + ", ".join(f"{n} {t}" for t, n in counts.items()))
        print(f"Deskbase is ready. Database: {shown_uri(store.uri)}")
        print("\n".join(summary(store)))
        accounts = _demo_accounts(demo_folder) if demo_folder.is_dir() else []
        if accounts:
            print("\nDemo accounts (demo only; from definitions/demo/):")
            print(table([[a.get("login", ""), ", ".join(a.get("roles", ())), str(a.get("password", ""))]
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
    _check_workers(args)
    with open_store(args) as store:
        return _serve(store, args)


def _serve(store, args) -> int:
    """Listen for the web interface, with the scheduled jobs running in a thread beside it."""
    import threading

    from deskbase.connectors.channels import job_runner
    from deskbase.views.app import create_app
    from deskbase.views.reloading import Reloading
    reloading = Reloading() if args.reload else None
    app = create_app(store, secure_cookies=os.environ.get("DESKBASE_SECURE_COOKIES") == "1",
                     monitor_from=args.monitor_from or None, reloading=reloading, charts_fresh=charts_fresh())
    print(f"\nWeb interface: http://{'localhost' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{args.port}/"
          "   (Ctrl-C stops it)", flush=True)
    if args.check:
        return 0
    import uvicorn
    stop = threading.Event()
    if reloading:
        from .reloading import start_watching
        start_watching(store, reloading, args.definitions, args.overlay, stop, accept_hiding=args.accept_hiding)
        print("watching the definitions: a change is applied when it checks (--reload)", flush=True)
    if not args.no_worker:
        runner = job_runner(store)
        threading.Thread(target=runner.serve, args=(stop,), kwargs={"interval": 15.0}, daemon=True,
                         name="deskbase-jobs").start()
        listen_to_mailboxes(store, stop)
    served: Any = app
    if args.workers > 1:          # each web process opens the shared database itself (see web_process_app)
        os.environ[WEB_PROCESS] = json.dumps({
            "db": store.uri, "definitions": str(args.definitions), "overlays": [str(o) for o in args.overlay],
            "monitor_from": args.monitor_from or None})
        served = "deskbase.cli.serving:web_process_app"
        print(f"{args.workers} web processes; the jobs run in this one", flush=True)
    try:
        uvicorn.run(served, host=args.host, port=args.port, log_config=None, access_log=True,
                    log_level=logging.getLevelName(logging.getLogger().level).lower(),
                    workers=args.workers if args.workers > 1 else None, factory=args.workers > 1,
                    **proxy_options(args.trusted_proxies))
    finally:
        stop.set()
    return 0


WEB_PROCESS = "DESKBASE_WEB_PROCESS"      # what `--workers` hands each web process it starts


def _check_workers(args) -> None:
    """Several web processes need a database they can all open at once."""
    from deskbase.objects.errors import DeskbaseError
    from deskbase.objects.store import PROCESS_LOCAL, default_uri
    if args.workers < 1:
        raise DeskbaseError("--workers counts web processes: 1 or more")
    if args.workers == 1:
        return
    uri = args.db or default_uri()
    if uri.startswith(PROCESS_LOCAL):
        raise DeskbaseError(f"--workers {args.workers} needs a database several processes can open at once, and "
                            f"`{shown_uri(uri)}` is opened by one process only: serve it with `deskbase zeo` and "
                            "start with the zeo:// URI it prints, or use PostgreSQL (docs/storage.md)")
    if args.reload:
        raise DeskbaseError("--reload watches the definitions for one web process: leave out --workers")


CHARTS_FRESH_VARIABLE = "DESKBASE_CHARTS_FRESH"     # seconds a home page's chart is drawn from figures kept


def charts_fresh() -> float:
    """For how long the charts of home pages are drawn from the figures last worked out:
    DESKBASE_CHARTS_FRESH seconds (0: every time), 60 by default."""
    from deskbase.objects.errors import DeskbaseError
    from deskbase.views.app import CHARTS_FRESH
    given = os.environ.get(CHARTS_FRESH_VARIABLE, "").strip()
    if not given:
        return CHARTS_FRESH
    try:
        seconds = float(given)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86_400:
        raise DeskbaseError(f"{CHARTS_FRESH_VARIABLE}={given!r} is not a number of seconds between 0 and 86400 "
                            "(a day): say for how long a home page's charts may be drawn from figures already worked out, "
                            "0 to work them out for every page")
    return seconds


def web_process_app():
    """The web application of one of the web processes `--workers` starts: it opens the
    shared database with the definitions its parent named (already migrated by the parent)."""
    from deskbase.rules.application import load_application, open_store as open_application_store
    from deskbase.views.app import create_app

    from .logs import configure_logging
    configure_logging("INFO")
    given = json.loads(os.environ[WEB_PROCESS])
    store = open_application_store(given["db"], load_application(given["definitions"], given["overlays"]),
                                   migrate=False)
    return create_app(store, secure_cookies=os.environ.get("DESKBASE_SECURE_COOKIES") == "1",
                      monitor_from=given["monitor_from"], charts_fresh=charts_fresh())


def listen_to_mailboxes(store, stop) -> list:
    """Mailboxes with `idle: true` are listened to in threads of this process until `stop`;
    the threads."""
    from deskbase.connectors.imap import start_idle

    def report(fetched) -> None:
        if fetched.outcomes or fetched.errors:
            print(f"{datetime.now():%H:%M:%S} mail {fetched}", flush=True)
    listening = start_idle(store, stop, report=report)
    if listening:
        print(f"listening to {len(listening)} mailbox(es) with IMAP IDLE", flush=True)
    return listening


def _demo_accounts(folder: Path) -> list[dict]:
    """The `users` entries of the demo files, to print their logins at start."""
    from deskbase.objects.demo import read_demo
    from deskbase.rules.application import DEMO_SECTIONS
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


def proxy_options(trusted: str) -> dict:
    """uvicorn's settings for the reverse proxies named (comma-separated addresses): only
    their X-Forwarded-For names the client; without any, nobody's is believed, so a client
    cannot pose as another address (to the sign-in throttle, say)."""
    trusted = ",".join(part.strip() for part in str(trusted or "").split(",") if part.strip())
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}
