"""Scale-out benchmark: several web processes and a worker on one shared database, under a
mixed load from a bounded client on loopback, checked afterwards for lost or doubled writes.

    .venv/bin/python bench/scaleout.py                          # RelStorage, then ZEO, 60 s each
    .venv/bin/python bench/scaleout.py --storage zeo --seconds 20 --web 2 --records 20000

For each storage it prepares a database with the shipped definitions and their demo (plus
`--records` generated tickets), starts the database server (a PostgreSQL of its own, as the
tests do, or `deskbase zeo`), `--web` processes `deskbase serve --no-worker` on ports of
their own and one `deskbase worker`, then runs the load for `--seconds` from a fixed number
of client threads, each waiting for every answer, sending round-robin to the web processes:

- creates: tickets through the JSON API, by two customers' keys;
- transitions: technicians take those tickets, then resolve them (API);
- comments: a supervisor comments on them (API);
- list pages and searches: signed-in web pages of a supervisor and a technician;
- the baseline: a static file served by the same processes, in the same run, under the
  same load — what HTTP, uvicorn and the shared machine cost before the engine does anything.

Each kind is paced to a target rate; the achieved rate is printed beside it. Afterwards
the web processes and the worker are stopped and the database is read back: every
acknowledged create, comment and transition must be there, once, and no number may be
given twice. Conflict retries come from each web process's /metrics. CPU seconds are read
from /proc for each server process, the database server (PostgreSQL with its backends) and
this client, beside the whole machine's. The last line is `failed writes: N`.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
from BTrees.Interfaces import IBTree  # noqa: E402
from engine import make_row, percentile, prepare_targets  # noqa: E402

from deskbase.objects.store import ROOT_KEY  # noqa: E402
from deskbase.rules.application import load_application, load_application_demo, open_store  # noqa: E402
from deskbase.views.api_keys import add_key  # noqa: E402
from deskbase.views.sessions import COOKIE, open_session  # noqa: E402

DESKBASE = Path(sys.executable).parent / "deskbase"
CUSTOMERS = ("psvoboda", "jdupont")              # customer power users: they open tickets
TECHNICIANS = ("sbernard", "khaddad", "tdvorak")  # take and resolve them
SUPERVISOR = "cmartin"                            # comments on them; reads every list
READERS = ("cmartin", "sbernard")                 # list pages and searches, each with a web session
WRITES = ("create", "transition", "comment")
LIST_PAGES = ("/v/open_tickets", "/v/open_tickets?sort=-id", "/v/tickets_awaiting_pickup",
              "/v/open_tickets?f=" + quote("{priority: urgent}"), "/v/open_tickets?q=printer",
              "/v/open_tickets?sort=-id&page=2")
SEARCHES = ("/search?q=impri", "/search?q=printer", "/search?q=scale%20floor", "/search?q=disk")
BASELINE = "/static/deskbase.css"
TICKS = os.sysconf("SC_CLK_TCK")
QUIET = 20              # requests of each kind timed one at a time before the load
IDLE_KEPT = 2.0          # seconds a kept-alive connection may stay idle before the client opens a new one


@dataclass
class Kind:
    """One kind of request: its target rate, its client threads, and what was seen."""

    name: str
    rate: float
    threads: int
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    skipped: int = 0                       # nothing to do yet (no ticket to take): not sent
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Written:
    """What the server acknowledged, to be found in the database afterwards."""

    tickets: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)        # ticket → status after its last transition
    to_take: deque = field(default_factory=deque)               # (ticket, technician)
    to_resolve: deque = field(default_factory=deque)            # (ticket, technician, taken at)
    lock: threading.Lock = field(default_factory=threading.Lock)


# -- processes -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Processes:
    """The server processes of one run, each logging to a file of the run's folder; all
    stopped (SIGINT, then SIGKILL) by `stop_all`, whatever happened."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *arguments: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "w")
        process = subprocess.Popen([str(DESKBASE), *arguments], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env={**os.environ, "DESKBASE_LOG_LEVEL": "INFO"})
        log.close()
        self.started[name] = process
        return process

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for(self, name: str, ready, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            if self.started[name].poll() is not None:
                raise RuntimeError(f"{name} ended before it was ready:\n{self.log(name)[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} was not ready within {seconds:.0f} s:\n{self.log(name)[-3000:]}")
            time.sleep(0.2)

    def stop(self, name: str) -> None:
        process = self.started.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.started):
            self.stop(name)


def answers(port: int, path: str = BASELINE) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", path)
        status = connection.getresponse().status
        connection.close()
        return status == 200
    except OSError:
        return False


# -- CPU -------------------------------------------------------------------------------------

def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and of its descendants, living and ended (those it waited for)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat:
                children[int(stat[1])].append(int(entry))
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        stat = _stat(current)
        if stat:
            total += sum(int(value) for value in stat[11:15]) / TICKS     # utime stime cutime cstime
            pending.extend(children.get(current, ()))
    return total


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's name (state, ppid, …)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_cpu() -> float:
    """CPU seconds every core of the machine spent busy since it started (all processes)."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]                   # idle, iowait
    return (sum(values[:8]) - idle) / TICKS


# -- the client ------------------------------------------------------------------------------

class Client:
    """HTTP/1.1 connections kept open per thread and web process; requests go round-robin."""

    def __init__(self, ports: list[int], keys: dict[str, str], cookies: dict[str, str]):
        self.ports, self.keys, self.cookies = ports, keys, cookies
        self.turn = itertools.count()
        self.local = threading.local()

    def _connection(self, port: int) -> http.client.HTTPConnection:
        """This thread's open connection to a web process. One left idle longer than the
        server keeps it (uvicorn: 5 s) is opened again first: a request sent into a
        connection the server is closing would fail without ever reaching it."""
        connections = self.local.__dict__.setdefault("connections", {})
        connection, used = connections.get(port, (None, 0.0))
        if connection is not None and time.monotonic() - used > IDLE_KEPT:
            connection.close()
            connection = None
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connections[port] = (connection, time.monotonic())
        return connection

    def send(self, method: str, path: str, *, key: str | None = None, cookie: str | None = None,
             body: dict | None = None) -> tuple[int, bytes]:
        port = self.ports[next(self.turn) % len(self.ports)]
        headers = {}
        if key:
            headers["Authorization"] = f"Bearer {self.keys[key]}"
        if cookie:
            headers["Cookie"] = f"{COOKIE}={self.cookies[cookie]}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection = self._connection(port)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            answer = response.status, response.read()
            self.local.connections[port] = (connection, time.monotonic())
            return answer
        except (OSError, http.client.HTTPException):
            connection.close()
            del self.local.connections[port]
            raise


class Load:
    """The mixed load of one run: each kind's threads send at its target rate until the end."""

    def __init__(self, client: Client, kinds: dict[str, Kind], seconds: float, written: Written):
        self.client, self.kinds, self.seconds, self.written = client, kinds, seconds, written
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        self.rng = random.Random(7)

    def quiet(self, count: int) -> None:
        """Each kind's requests one at a time, on servers doing nothing else (before the load)."""
        for kind in self.kinds.values():
            work = getattr(self, f"_{kind.name}")
            for _ in range(count):
                self._timed(kind, work)

    def run(self) -> None:
        self.end = time.monotonic() + self.seconds
        threads = [threading.Thread(target=self._paced, args=(kind, n), daemon=True, name=f"{kind.name}-{n}")
                   for kind in self.kinds.values() for n in range(kind.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _paced(self, kind: Kind, n: int) -> None:
        """Send this thread's share of the kind's rate on a fixed schedule: late requests are
        sent at once, but a thread more than a second behind drops the missed slots."""
        interval = kind.threads / kind.rate
        due = time.monotonic() + interval * n / kind.threads
        work = getattr(self, f"_{kind.name}")
        while True:
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            if time.monotonic() >= self.end:
                return
            self._timed(kind, work)
            due += interval
            if time.monotonic() - due > 1.0:
                due = time.monotonic()

    def _timed(self, kind: Kind, work) -> None:
        started = time.perf_counter()
        try:
            outcome = work()
        except (OSError, http.client.HTTPException) as error:
            outcome = f"connection: {type(error).__name__}"
        took = time.perf_counter() - started
        with self.lock:
            if outcome is None:
                kind.skipped += 1
                return
            kind.sent += 1
            if outcome is True:
                kind.acknowledged += 1
                kind.latencies.append(took)
            else:
                kind.failed += 1
                kind.errors[str(outcome)[:200]] += 1

    @staticmethod
    def _answer(status: int, body: bytes, expected: int) -> bool | str:
        return True if status == expected else f"{status} {body[:160].decode(errors='replace')}"

    # -- each kind: True when acknowledged, None when there was nothing to send, else why not

    def _create(self) -> bool | str:
        n = next(self.counter)
        status, body = self.client.send("POST", "/api/v1/ticket", key=CUSTOMERS[n % len(CUSTOMERS)], body={
            "title": f"Scale-out {n}: printer on floor {n % 9} jams", "channel": "api",
            "description": "Paper jam in tray 2 since this morning; the display says E-204."})
        answer = self._answer(status, body, 201)
        if answer is True:
            number = json.loads(body)["number"]
            written = self.written
            with written.lock:
                written.tickets.append(number)
                written.state[number] = "awaiting_pickup"
                written.to_take.append((number, TECHNICIANS[n % len(TECHNICIANS)]))
        return answer

    def _transition(self) -> bool | str | None:
        """Resolve a ticket taken at least 2 s ago, else take the oldest one waiting."""
        written = self.written
        with written.lock:
            if written.to_resolve and time.monotonic() - written.to_resolve[0][2] >= 2:
                number, technician, _ = written.to_resolve.popleft()
                name, target = "resolve", "resolved"
            elif written.to_take:
                number, technician = written.to_take.popleft()
                name, target = "take", "in_progress"
            else:
                return None
        status, body = self.client.send("POST", f"/api/v1/ticket/{number}/transitions/{name}", key=technician,
                                        body={"time_spent": "5m", "work_done": f"Scale-out: {name}"})
        answer = self._answer(status, body, 200)
        if answer is True:
            with written.lock:
                written.state[number] = target
                if name == "take":
                    written.to_resolve.append((number, technician, time.monotonic()))
        return answer

    def _comment(self) -> bool | str | None:
        with self.written.lock:
            if not self.written.tickets:
                return None
            number = self.rng.choice(self.written.tickets[-200:])
        status, body = self.client.send("POST", "/api/v1/comment", key=SUPERVISOR, body={
            "ticket": number, "visibility": "internal", "action": "information",
            "body": "Scale-out: the spare tray is on its way."})
        answer = self._answer(status, body, 201)
        if answer is True:
            with self.written.lock:
                self.written.comments.append(json.loads(body)["number"])
        return answer

    def _page(self, paths: tuple[str, ...]) -> bool | str:
        status, body = self.client.send("GET", self.rng.choice(paths), cookie=self.rng.choice(READERS))
        return self._answer(status, body, 200)

    def _list(self) -> bool | str:
        return self._page(LIST_PAGES)

    def _search(self) -> bool | str:
        return self._page(SEARCHES)

    def _baseline(self) -> bool | str:
        status, body = self.client.send("GET", BASELINE)
        return self._answer(status, body, 200)


# -- one storage -----------------------------------------------------------------------------

def prepare(uri: str, args) -> tuple[dict[str, str], dict[str, str], int]:
    """Load the demo (and `--records` tickets) into the database at `uri`; API keys for the
    writers and web sessions for the readers; the tickets before the run."""
    definitions = load_application(args.definitions)
    with open_store(uri, definitions) as store:
        targets = prepare_targets(store, args.definitions) if args.records else None
        if args.records:
            typedef = definitions.type("ticket")
            rng = random.Random(42)
            rows = store.read(lambda s: [make_row(s, typedef, rng, targets) for _ in range(1000)])
            store.bulk_create("ticket", (rows[i % len(rows)] for i in range(args.records)), user="bench", batch=1000)
        else:
            load_application_demo(store, Path(args.definitions) / "demo", user="bench")
        keys = {login: add_key(store, f"scaleout-{login}", login) for login in (*CUSTOMERS, *TECHNICIANS, SUPERVISOR)}
        cookies = {login: open_session(store, login).token for login in READERS}
        before = store.read(lambda s: s.count("ticket"))
    return keys, cookies, before


def conflicts(port: int) -> dict[str, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    return {outcome: float(value) for outcome, value in
            re.findall(r'^deskbase_write_conflicts_total\{outcome="(\w+)"\} ([0-9.e+]+)$', text, re.M)}


def check(uri: str, args, written: Written, before: int, conflicted: set[int]) -> dict:
    """Read the database back: duplicates, the acknowledged writes missing or wrong, and
    what the objects that met write conflicts are."""
    with open_store(uri, load_application(args.definitions), migrate=False) as store:
        def work(session) -> dict:
            numbers = {name: Counter(r.number for r in session.container(name).records.values())
                       for name in ("ticket", "comment", "work_entry")}
            statuses = {r.number: r.get("status") for r in session.container("ticket").records.values()
                        if r.number in written.state}
            names = named_objects(session) if conflicted else {}
            return {"numbers": numbers, "statuses": statuses, "count": session.count("ticket"),
                    "conflicted": {oid: names.get(oid, "gone by the end (an emptied bucket?)") for oid in conflicted},
                    "searched": session.count("ticket", {"text": "scale-out printer floor jams"})}
        found = store.read(work)
    numbers = found["numbers"]
    duplicates = {name: sorted(n for n, c in counted.items() if c > 1) for name, counted in numbers.items()}
    missing_tickets = [n for n in written.tickets if numbers["ticket"][n] != 1]
    missing_comments = [n for n in written.comments if numbers["comment"][n] != 1]
    wrong_state = [n for n, state in written.state.items() if found["statuses"].get(n) != state]
    return {"duplicates": duplicates, "missing_tickets": missing_tickets, "missing_comments": missing_comments,
            "wrong_state": wrong_state, "count": found["count"], "expected_count": before + len(written.tickets),
            "searched": found["searched"], "conflicted": found["conflicted"]}


def run_storage(name: str, args, folder: Path) -> int:
    """Run the load on one storage and print its figures; its failed writes."""
    processes = Processes(folder)
    server = None
    try:
        if name == "relstorage":
            from servers.postgres import PostgresServer, missing
            reason = missing()
            if reason:
                raise SystemExit(f"cannot start PostgreSQL: {reason}")
            server = PostgresServer(port=free_port()).start()
            base = server.create_database("scaleout")
            title = f"RelStorage + PostgreSQL {server.bin.parent.name}"
            database_pid = server.pid

            def uri(process: str) -> str:
                return f"{base}?blob_dir={folder / ('blobs-' + process)}&shared_blob_dir=false&keep_history=false"
            print(f"{title}: preparing the database…", flush=True)
            keys, cookies, before = prepare(uri("bench"), args)
        else:
            file_uri = f"file://{folder}/Data.fs?blobstorage_dir={folder}/blobs"
            title = "ZEO (FileStorage served by `deskbase zeo`)"
            print(f"{title}: preparing the database…", flush=True)
            keys, cookies, before = prepare(file_uri, args)
            zeo_port = free_port()
            zeo = processes.start("zeo", "--definitions", args.definitions, "--db", file_uri,
                                  "zeo", "--listen", f"127.0.0.1:{zeo_port}")
            processes.wait_for("zeo", lambda: "--db '" in processes.log("zeo"))
            client_uri = re.search(r"--db '([^']+)'", processes.log("zeo")).group(1)
            database_pid = zeo.pid

            def uri(process: str) -> str:
                return client_uri
        ports = [free_port() for _ in range(args.web)]
        for i, port in enumerate(ports):
            processes.start(f"web{i + 1}", "--definitions", args.definitions, "--db", uri(f"web{i + 1}"),
                            "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port))
        processes.start("worker", "--definitions", args.definitions, "--db", uri("worker"), "worker")
        for i, port in enumerate(ports):
            processes.wait_for(f"web{i + 1}", lambda port=port: answers(port))
        processes.wait_for("worker", lambda: "worker " in processes.log("worker") and " started" in processes.log("worker"))
        print(f"{args.web} web processes and a worker ready; loading for {args.seconds:g} s…", flush=True)

        client = Client(ports, keys, cookies)
        written = Written()
        kinds = {kind.name: kind for kind in (
            Kind("create", args.create_rate, 6), Kind("transition", args.write_rate, 3),
            Kind("comment", args.write_rate, 3), Kind("list", args.read_rate * 0.6, 8),
            Kind("search", args.read_rate * 0.4, 6), Kind("baseline", 5, 1))}
        quiet = {name: Kind(name, kind.rate, 1) for name, kind in kinds.items()}
        for warming in (True, False):        # the first round fills each process's caches, the second is timed
            Load(client, quiet, 0, written).quiet(QUIET)
            for kind in quiet.values() if warming else ():
                kind.latencies.clear()
        conflicts_before = [conflicts(port) for port in ports]
        pids = {name: process.pid for name, process in processes.started.items() if name != "zeo"}
        pids["database"] = database_pid
        cpu_before = {name: tree_cpu(pid) for name, pid in pids.items()}
        cpu_before["client"], cpu_before["machine"] = client_cpu(), machine_cpu()
        load = Load(client, kinds, args.seconds, written)
        started = time.monotonic()
        load.run()
        elapsed = time.monotonic() - started
        cpu = {name: tree_cpu(pid) - cpu_before[name] for name, pid in pids.items()}
        cpu["client"], cpu["machine"] = client_cpu() - cpu_before["client"], machine_cpu() - cpu_before["machine"]
        load_average = os.getloadavg()
        conflicts_after = [conflicts(port) for port in ports]
        for i in range(args.web):
            processes.stop(f"web{i + 1}")
        processes.stop("worker")
        conflict_log = conflicts_logged(processes, args.web)
        checked = check(uri("bench"), args, load.written, before, {int(oid, 16) for _, oid, _, _ in conflict_log})
    finally:
        processes.stop_all()
        if server is not None:
            server.stop()
            server.remove()
    retried = sum(a.get("retried", 0) - b.get("retried", 0) for a, b in zip(conflicts_after, conflicts_before))
    gave_up = sum(a.get("gave_up", 0) - b.get("gave_up", 0) for a, b in zip(conflicts_after, conflicts_before))
    return report(title, args, kinds, quiet, elapsed, retried, gave_up, cpu, load_average, checked, conflict_log)


def conflicts_logged(processes: Processes, web: int) -> list[tuple[str, str, str, bool]]:
    """The write conflicts the web processes logged: (user, oid, class, given up)."""
    found = []
    for i in range(web):
        for line in processes.log(f"web{i + 1}").splitlines():
            conflict = re.search(r"write conflict: (given up|attempt).*\(user ([^)]*)\).*oid (0x[0-9a-f]+), "
                                 r"class ([\w.]+)", line)
            if conflict:
                found.append((conflict.group(2), conflict.group(3), conflict.group(4),
                              conflict.group(1) == "given up"))
    return found


def named_objects(session) -> dict[int, str]:
    """What each persistent object of the types' containers and of the root is, by oid: the
    type's records, its sort keys, each index (its tree, and the id sets under its keys)."""
    names: dict[int, str] = {}

    def walk(tree, name: str) -> None:
        if getattr(tree, "_p_oid", None) is not None:
            names.setdefault(int.from_bytes(tree._p_oid, "big"), name)
            tree._p_activate()
        state = tree.__getstate__() if hasattr(tree, "__getstate__") else None
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], tuple):
            for child in state[0][::2]:          # a tree node: its children, then their buckets
                if getattr(child, "_p_oid", None) is not None:
                    walk(child, name)

    def kept(value, name: str, depth: int) -> None:
        """An object kept beside the types, and what it holds, `depth` levels down."""
        walk(value, name)
        if depth == 0:
            return
        if IBTree.providedBy(value):
            held = [(f"{name}[{key!r}]", item) for key, item in value.items()]
        else:
            held = [(f"{name}.{attribute}", item) for attribute, item in getattr(value, "__dict__", {}).items()]
        for inner, item in held:
            if getattr(item, "_p_oid", None) is not None:
                kept(item, inner, depth - 1)

    for key, value in session.connection.root().items():    # the outbox, the timers, the sessions…
        if key != ROOT_KEY:
            kept(value, f"root[{key}]", 2)
    for type_name in session.definitions.types:
        container = session.container(type_name)
        walk(container, f"{type_name} container")
        walk(container.records, f"{type_name}.records")
        walk(container.sequence, f"{type_name} number counter")
        indexes = container.indexes
        walk(indexes, f"{type_name} indexes")
        walk(indexes.all_ids, f"{type_name}.all_ids")
        walk(indexes.keys, f"{type_name} sort keys (KeysTree)")
        for index_name, index in indexes.indexes.items():
            walk(index, f"{type_name} index {index_name}")
            walk(index.forward, f"{type_name} index {index_name}")
            walk(index.empty, f"{type_name} index {index_name} (no value)")
            for key, ids in index.forward.items():
                if ids.__class__ is not int:
                    walk(ids, f"{type_name} index {index_name}: ids of one key")
    return names


def ms(samples: list[float], fraction: float) -> float:
    return percentile(samples, fraction) * 1000 if samples else float("nan")


def report(title, args, kinds, quiet, elapsed, retried, gave_up, cpu, load_average, checked, conflict_log) -> int:
    """Print one storage's figures; its failed writes."""
    print(f"\n{title}: {args.web} web processes + 1 worker, {elapsed:.0f} s, "
          f"{'demo' if not args.records else f'demo + {args.records:,} tickets'} before the run")
    print_latencies(kinds, quiet, elapsed)
    writes = sum(kinds[name].acknowledged for name in WRITES)
    print(f"conflict retries: {100 * retried / max(writes, 1):.1f} per 100 writes ({retried:.0f} retried, "
          f"{gave_up:.0f} given up, {writes} writes acknowledged); the objects met, from the logs:")
    where = Counter((checked["conflicted"].get(int(oid, 16), "?"), kind, given_up)
                    for _, oid, kind, given_up in conflict_log)
    for (name, kind, given_up), count in where.most_common(12):
        print(f"  {count:>4} × {name} ({kind.rsplit('.', 1)[-1]}){': given up' if given_up else ''}")
    duplicates = sum(len(numbers) for numbers in checked["duplicates"].values())
    print(f"duplicate numbers: {duplicates}"
          + "".join(f"; {name}: {', '.join(n[:5])}" for name, n in checked["duplicates"].items() if n))
    print(f"database read back: {checked['count']} tickets counted, {checked['expected_count']} expected; "
          f"{checked['searched']} found by their words; {len(checked['missing_tickets'])} acknowledged tickets and "
          f"{len(checked['missing_comments'])} comments missing, {len(checked['wrong_state'])} tickets not in the "
          f"state of their last acknowledged transition")
    print_cpu(title, args, cpu, elapsed, load_average)
    failed = (sum(kinds[name].failed + quiet[name].failed for name in WRITES) + len(checked["missing_tickets"])
              + len(checked["missing_comments"]) + len(checked["wrong_state"])
              + (checked["count"] != checked["expected_count"]))
    print(f"failed writes ({title.split(' ')[0]}): {failed}", flush=True)
    return failed


def print_latencies(kinds: dict[str, Kind], quiet: dict[str, Kind], elapsed: float) -> None:
    base_p95 = ms(kinds["baseline"].latencies, 0.95)
    print(f"{'kind':<11} {'sent':>6} {'acked':>6} {'failed':>6} {'rate/s':>7} {'target':>7} "
          f"{'quiet p50':>9} {'p50 ms':>8} {'p95 ms':>8} {'ratio p95':>9}")
    for name, kind in kinds.items():
        p95 = ms(kind.latencies, 0.95)
        print(f"{name:<11} {kind.sent:>6} {kind.acknowledged:>6} {kind.failed:>6} "
              f"{kind.acknowledged / elapsed:>7.1f} {kind.rate:>7.1f} {ms(quiet[name].latencies, 0.5):>9.1f} "
              f"{ms(kind.latencies, 0.5):>8.1f} {p95:>8.1f} {base_p95 / p95:>9.3f}")
    print(f"baseline = {BASELINE} from the same processes; ratio = its p95 under the same load ÷ the kind's p95; "
          f"quiet p50: {QUIET} requests of each kind one at a time before the load, after as many to warm the caches")
    reads = kinds["list"].acknowledged + kinds["search"].acknowledged
    print(f"achieved: creates {kinds['create'].acknowledged / elapsed:.1f}/s (target {kinds['create'].rate:g}), "
          f"list pages and searches {reads / elapsed:.1f}/s (target {kinds['list'].rate + kinds['search'].rate:g})")
    print(f"requests: {sum(k.sent for k in kinds.values())} sent, "
          f"{sum(k.acknowledged for k in kinds.values())} acknowledged, {sum(k.failed for k in kinds.values())} "
          f"failed; before the load {sum(k.sent for k in quiet.values())} sent, "
          f"{sum(k.failed for k in quiet.values())} failed")
    for name in kinds:
        for error, count in (kinds[name].errors + quiet[name].errors).most_common(3):
            print(f"  {name} failed {count}×: {error}")


def print_cpu(title: str, args, cpu: dict[str, float], elapsed: float, load_average: tuple[float, ...]) -> None:
    web = [cpu[f"web{i + 1}"] for i in range(args.web)]
    named = sum(web) + cpu["worker"] + cpu["database"] + cpu["client"]
    cores = os.cpu_count() or 1
    print(f"CPU seconds over {elapsed:.0f} s ({cores} cores shared: {cores * elapsed:.0f} s at most): web "
          f"{' + '.join(f'{c:.1f}' for c in web)} = {sum(web):.1f}; worker {cpu['worker']:.1f}; "
          f"{'PostgreSQL' if 'PostgreSQL' in title else 'ZEO'} {cpu['database']:.1f}; client {cpu['client']:.1f}; "
          f"other processes of the machine {cpu['machine'] - named:.1f} (load average {load_average[0]:.2f} "
          "at the end)")


def interrupted(*_) -> None:
    """SIGTERM stops the run as Ctrl-C does: every process and folder is cleaned up."""
    raise KeyboardInterrupt()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", choices=("relstorage", "zeo", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs (default 60)")
    parser.add_argument("--web", type=int, default=4, help="web processes (default 4)")
    parser.add_argument("--records", type=int, default=0, help="generated tickets besides the demo (default none)")
    parser.add_argument("--create-rate", type=float, default=20.0, help="creates per second (default 20)")
    parser.add_argument("--read-rate", type=float, default=100.0,
                        help="list pages and searches per second (default 100)")
    parser.add_argument("--write-rate", type=float, default=5.0,
                        help="transitions per second, and comments per second (default 5 each)")
    parser.add_argument("--definitions", default=str(ROOT / "definitions"))
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, interrupted)
    storages = ("relstorage", "zeo") if args.storage == "both" else (args.storage,)
    failed = 0
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          "at the start", flush=True)
    for name in storages:
        folder = Path(tempfile.mkdtemp(prefix=f"deskbase-bench-scaleout-{name}-"))
        try:
            failed += run_storage(name, args, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"failed writes: {failed}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted: the servers were stopped and their folders removed", file=sys.stderr)
        sys.exit(130)
