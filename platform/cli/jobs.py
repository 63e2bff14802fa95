"""`deskbase` commands of the work done beside the web interface: the scheduled jobs (list,
run one, run what is due), the worker that runs them until stopped (and listens to the
mailboxes), the timers records lack, and the outbox."""
from __future__ import annotations

import argparse
from collections.abc import Callable

from .opening import open_store
from .serving import listen_to_mailboxes
from .tables import table


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """The `jobs`, `timers`, `worker` and `outbox` commands."""
    jobs = commands.add_parser("jobs", parents=[common], help="scheduled jobs: list, run one, run what is due")
    job_commands = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    job_commands.add_parser("list", parents=[common], help="the jobs with their schedule and last run")
    run_job = job_commands.add_parser("run", parents=[common], help="run one job now")
    run_job.add_argument("name", help="the job's name in `jobs:`")
    job_commands.add_parser("due", parents=[common], help="run the jobs that are due (call it from cron every minute)")
    timer_parser = commands.add_parser("timers", parents=[common], help="timers: start the clocks records lack")
    timer_commands = timer_parser.add_subparsers(dest="timers_command", required=True, metavar="ACTION")
    start = timer_commands.add_parser("start", parents=[common],
                                      help="give clocks to records created before their type had timers")
    start.add_argument("types", nargs="*", metavar="TYPE", help="only these types (default: every type with timers)")
    worker = commands.add_parser("worker", parents=[common],
                                 help="run the scheduled jobs (timers, outbox delivery) and listen to the mailboxes "
                                      "until stopped")
    worker.add_argument("--interval", type=float, default=15.0, metavar="SECONDS",
                        help="how often to look for due jobs (default 15)")
    outbox = commands.add_parser("outbox", parents=[common], help="the newest messages of the outbox")
    outbox.add_argument("--state", choices=("pending", "sending", "failed", "sent"), help="only messages in this state")
    outbox.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    return {"jobs": cmd_jobs, "timers": cmd_timers, "worker": cmd_worker, "outbox": cmd_outbox}


def _run_line(run) -> str:
    text = f"{run.name}: {run.outcome} in {run.duration:.1f} s"
    return text + (f" ({run.result})" if run.result else "") + (f": {run.error}" if run.error else "")


def cmd_jobs(args) -> int:

    from deskbase.connectors.channels import job_runner
    with open_store(args) as store:
        runner = job_runner(store)
        if args.jobs_command == "list":
            rows = [[status.name, f"{status.schedule} ({status.zone})",
                     status.next_occurrence.strftime("%Y-%m-%d %H:%M %Z"),
                     (status.last_run or {}).get("outcome", "never run")] for status in runner.status()]
            print(table(rows, ["job", "schedule", "next", "last run"]) if rows else "no jobs in the definitions")
            return 0
        runs = [runner.run(args.name)] if args.jobs_command == "run" else runner.run_due()
        for run in runs:
            print(_run_line(run))
        return 1 if any(run.outcome != "ok" for run in runs) else 0


def cmd_timers(args) -> int:
    from deskbase.rules.process.timers import start_missing
    with open_store(args) as store:
        started = start_missing(store, args.types or None,
                                progress=lambda type_name, done: print(f"  {type_name}: {done} started", flush=True))
        print(f"{started} records got their clocks" if started else "every record has its clocks already")
        return 0


def cmd_worker(args) -> int:
    import signal
    import threading

    from deskbase.connectors.channels import job_runner
    with open_store(args) as store:
        runner = job_runner(store)
        stop = threading.Event()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signal_number, lambda *_: stop.set())
        listening = listen_to_mailboxes(store, stop)
        if not runner.jobs and not listening:
            print("no jobs and no mailbox to listen to in the definitions: nothing to run")
            return 0
        print(f"worker {runner.holder} started: {', '.join(sorted(runner.jobs)) or 'no jobs'}; "
              f"looking every {args.interval:g} s; Ctrl-C stops it", flush=True)
        if runner.jobs:
            runner.serve(stop, interval=args.interval, report=lambda run: print(_run_line(run), flush=True))
        else:
            while not stop.wait(1.0):           # wakes for the signal handlers now and then
                pass
        print("worker stopped", flush=True)
        return 0


def cmd_outbox(args) -> int:
    from deskbase.rules.messages.outbox import list_messages
    with open_store(args) as store:
        def work(session):
            return [[str(m.id), m.queued_at.strftime("%Y-%m-%d %H:%M"), m.state, m.channel, ", ".join(m.recipients),
                     m.subject[:60], m.last_error or ""] for m in list_messages(session, args.state, limit=args.limit)]
        rows = store.read(work)
        print(table(rows, ["id", "queued", "state", "channel", "to", "subject", "last error"]) if rows
              else "no messages")
        return 0
