"""Several processes on one database: RelStorage on a real PostgreSQL (tests/servers/postgres.py).
What an operator checks before running two app servers and a worker on it: each process sees
the others' records and files, concurrent writers both succeed with unique numbers, a job's
occurrence runs in one worker only, the web app lists what another process wrote, and the
indexes agree with the records afterwards. Every writer here is a separate process."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from deskbase.objects.errors import DeskbaseError
from deskbase.rules.application import load_application, open_store

DESKBASE = Path(sys.executable).with_name("deskbase")
PASSWORD = "correct horse battery"
T0 = datetime(2026, 1, 5, 10, 3, tzinfo=timezone.utc)
ACCESS = "    access:\n      agent: {read: true, create: true, update: true, fields: {hide: [spent]}}\n"

# Run at the start of every process script: argv is (definitions folder, URI, meeting folder,
# this process's name, the other's name, arguments as JSON).
PRELUDE = """
import json, sys, time
from pathlib import Path
from deskbase.rules.application import load_application, open_store
folder, uri, meeting, me, other, arguments = sys.argv[1:7]
arguments = json.loads(arguments)
store = open_store(uri, load_application(folder))

def meet(step):
    # a barrier between the two processes: each waits until the other has come this far
    Path(meeting, f"{step}.{me}").touch()
    deadline = time.monotonic() + 60
    while not Path(meeting, f"{step}.{other}").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{me}: {other} never reached {step}")
        time.sleep(0.005)
"""

CREATE_TASKS = PRELUDE + """
import random
store.read(lambda s: s.query("task", {}, "-id", limit=20).records)     # a page served, as app servers do
meet("opened")
numbers, attempts = [], 0
original = store.session
def counting(*args, **kwargs):
    global attempts
    attempts += 1
    return original(*args, **kwargs)
store.session = counting
for i in range(arguments["count"]):
    title = f"{me} printer {i}"
    priority = ("high", "medium", "low")[i % 3]
    number = store.run(lambda s: s.create("task", {"title": title, "priority": priority}).number)
    numbers.append(number)
    time.sleep(random.uniform(*arguments.get("pause", (0.02, 0.06))))   # requests arrive apart (docs/storage.md, "Conflicts")
    if arguments.get("update_every") and i % arguments["update_every"] == 0:
        # a change of a record the other process may be changing too: the first one (its number
        # need not be 1: a number taken by a retried creation is a gap)
        def note(s):
            first = s.query("task", {}, "id", limit=1).records
            if first:
                s.update(first[0], {"notes": f"seen {i}"})
        store.run(note)
print(json.dumps({"numbers": numbers, "attempts": attempts}))
store.close()
"""

WRITE_FILE = PRELUDE + """
from deskbase.objects.fields import Upload
content = bytes(range(256)) * 3
task = store.run(lambda s: s.create("task", {"title": "With a log", "files": [Upload("log.txt", content, "text/plain")]}))
print(json.dumps(store.read(lambda s: {"number": task.number, "blob": s.find(task.number)["files"][0].blob_id})))
store.close()
"""

RUN_JOBS = PRELUDE + """
from datetime import datetime, timedelta, timezone
from deskbase.rules.jobs.runner import Job, JobRunner
T0 = datetime(2026, 1, 5, 10, 3, tzinfo=timezone.utc)

def tick(store, occurrence):
    store.run(lambda s: s.create("team", {"name": f"tick {occurrence:%H:%M} by {me}"}))

class RacingRunner(JobRunner):
    # waits inside its first claim until the other process is inside its own: both read the
    # job's state before either commits, so one commit must fail as a conflict
    waited = False
    def _claim(self, session, job, moment, *, manual=False):
        claim = super()._claim(session, job, moment, manual=manual)
        print(f"{self.holder} claims {'it' if claim else 'nothing'}", flush=True)
        if not self.waited:
            self.waited = True
            meet("claiming")
        return claim

job = Job("tick", "* * * * *", tick)
raced = RacingRunner(store, [job], holder=me).run_due(T0 + timedelta(minutes=2))
print(f"{me} ran {len(raced)}", flush=True)
runner = JobRunner(store, [job], holder=me)
for minute in range(3, 3 + arguments["minutes"]):
    meet(f"minute{minute}")                  # the two share one clock, as machines do
    for _ in range(2):
        runner.run_due(T0 + timedelta(minutes=minute, seconds=30))
store.close()
"""


@pytest.fixture
def app_folder(tasks_folder: Path) -> Path:
    """The tasks application, with an `agent` allowed to read and write tasks (for the web app)."""
    path = tasks_folder / "tasks.yaml"
    text = path.read_text()
    anchor = "    index: [priority, team, category, subcategory, due, owner, done, labels, {text: [title, notes]}]\n"
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + ACCESS))
    return tasks_folder


def deskbase(folder: Path, uri: str, *args: str, stdin: str | None = None) -> str:
    """Run the `deskbase` command in a process of its own; its output (it must succeed)."""
    done = subprocess.run([str(DESKBASE), "--definitions", str(folder), "--db", uri, *args], input=stdin,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"deskbase {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def start(script: str, folder: Path, uri: str, meeting: Path, me: str, other: str = "", **arguments):
    """A Python process running `script` on the database (alone, it meets only itself)."""
    meeting.mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", script, str(folder), uri, str(meeting), me, other or me,
                             json.dumps(arguments)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> str:
    """Wait for a process started by `start`; its output (it must succeed)."""
    try:
        out, err = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    assert process.returncode == 0, f"process failed ({process.returncode}):\n{out}\n{err}"
    return out


def run_pair(script: str, folder: Path, database, tmp_path: Path, **arguments) -> dict[str, str]:
    """Two processes running `script` at once, meeting at their barriers; their outputs by name."""
    return run_group(script, folder, database, tmp_path, "ab", **arguments)


def run_group(script: str, folder: Path, database, tmp_path: Path, names: str, **arguments) -> dict[str, str]:
    """Processes named by the letters of `names` running `script` at once, each meeting the
    next at their barriers (the last meets the first); their outputs by name."""
    meeting = tmp_path / "meeting"
    processes = {me: start(script, folder, database.uri(me), meeting, me, names[(i + 1) % len(names)], **arguments)
                 for i, me in enumerate(names)}
    return {me: finish(process) for me, process in processes.items()}


def sign_in(client, login: str = "ann") -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"login": login, "password": PASSWORD, "csrf": token, "next": "/"})
    assert response.status_code == 303, response.text


# -- one database, several processes ---------------------------------------------------------

def test_records_written_by_one_process_are_read_by_another(app_folder, postgres_database, tmp_path):
    assert "matches the definitions" in deskbase(app_folder, postgres_database.uri("migrate"), "migrate")
    with open_store(postgres_database.uri("reader"), load_application(app_folder)) as reader:
        assert reader.read(lambda s: s.count("task")) == 0          # opened before the others write
        out = finish(start(CREATE_TASKS, app_folder, postgres_database.uri("writer"), tmp_path / "meeting",
                           "writer", count=3))
        assert json.loads(out)["numbers"] == ["TK-00001", "TK-00002", "TK-00003"]
        # a long-running process sees another's commits at its next transaction
        assert reader.read(lambda s: [r["title"] for r in s.query("task", {}, "id").records]) == \
            ["writer printer 0", "writer printer 1", "writer printer 2"]
    listed = deskbase(app_folder, postgres_database.uri("cli"), "query", "task", "--sort", "id", "--columns", "id,title")
    assert "TK-00003" in listed and "writer printer 2" in listed and "of 3 task records" in listed
    info = deskbase(app_folder, postgres_database.uri("cli"), "run", "--check", "--no-worker")
    assert "Deskbase is ready" in info and re.search(r"task\s+3", info)


def test_two_processes_creating_records_of_one_type_at_once_both_succeed_with_unique_numbers(
        app_folder, postgres_database, tmp_path):
    deskbase(app_folder, postgres_database.uri("migrate"), "migrate")
    outputs = run_pair(CREATE_TASKS, app_folder, postgres_database, tmp_path, count=40)
    written = {me: json.loads(out) for me, out in outputs.items()}
    numbers = written["a"]["numbers"] + written["b"]["numbers"]
    assert len(numbers) == 80 and len(set(numbers)) == 80                 # no number given twice
    for me in ("a", "b"):                                                 # each process's in the order made
        assert written[me]["numbers"] == sorted(written[me]["numbers"])
    with open_store(postgres_database.uri("check"), load_application(app_folder)) as store:
        stored = store.read(lambda s: sorted((r.number, r["title"]) for r in s.container("task").records.values()))
    assert len(stored) == 80 and len({number for number, _ in stored}) == 80
    assert sum(title.startswith("a printer") for _, title in stored) == 40


def test_an_attachment_stored_by_one_process_is_downloaded_through_another(app_folder, postgres_database, tmp_path):
    from starlette.testclient import TestClient

    from deskbase.rules.access.identity import create_account
    from deskbase.views.app import create_app
    deskbase(app_folder, postgres_database.uri("migrate"), "migrate")
    written = json.loads(finish(start(WRITE_FILE, app_folder, postgres_database.uri("writer"),
                                      tmp_path / "meeting", "writer")))
    content = bytes(range(256)) * 3
    with open_store(postgres_database.uri("web"), load_application(app_folder)) as store:
        create_account(store, "ann", name="Ann", password=PASSWORD, roles=["agent"])
        assert store.read(lambda s: s.find(written["number"])["files"][0].read()) == content
        with TestClient(create_app(store), follow_redirects=False) as client:
            sign_in(client)
            response = client.get(f"/r/{written['number']}/files/{written['blob']}")
    assert response.status_code == 200 and response.content == content
    assert "attachment" in response.headers["content-disposition"]
    # it came through PostgreSQL: the writer's blob cache is not the reader's
    cached = {path.relative_to(tmp_path).parts[0] for path in tmp_path.glob("blobs-*/**/*.blob")}
    assert {"blobs-writer", "blobs-web"} <= cached


def test_only_one_of_two_worker_processes_runs_each_occurrence_of_a_job(app_folder, postgres_database, tmp_path):
    from deskbase.rules.jobs.runner import Job, JobRunner
    deskbase(app_folder, postgres_database.uri("migrate"), "migrate")
    with open_store(postgres_database.uri("main"), load_application(app_folder)) as store:
        JobRunner(store, [Job("tick", "* * * * *", lambda *_: None)]).run_due(T0)     # the job is known from 10:03
    minutes = 8
    outputs = run_pair(RUN_JOBS, app_folder, postgres_database, tmp_path, minutes=minutes)
    # both claimed the 10:05 occurrence at once; one commit was refused as a conflict, and
    # that process's retry found the lease taken
    ran = sorted(line for out in outputs.values() for line in out.splitlines() if " ran " in line)
    assert ran in (["a ran 0", "b ran 1"], ["a ran 1", "b ran 0"])
    loser = "a" if "a ran 0" in ran else "b"
    assert f"{loser} claims nothing" in outputs[loser]
    with open_store(postgres_database.uri("main"), load_application(app_folder)) as store:
        names = store.read(lambda s: [r["name"] for r in s.container("team").records.values()])
    occurrences = Counter(name.split(" by ")[0] for name in names)
    expected = [f"tick {T0 + timedelta(minutes=m):%H:%M}" for m in range(2, 3 + minutes)]
    assert sorted(occurrences) == sorted(expected)
    assert set(occurrences.values()) == {1}, occurrences            # each occurrence ran once, in one process


def test_the_web_app_lists_records_another_process_writes_while_it_runs(app_folder, postgres_database, tmp_path):
    from starlette.testclient import TestClient

    from deskbase.views.app import create_app
    deskbase(app_folder, postgres_database.uri("migrate"), "migrate")
    deskbase(app_folder, postgres_database.uri("cli"), "users", "add", "ann", "--role", "agent", "--password-stdin",
             stdin=PASSWORD + "\n")
    with open_store(postgres_database.uri("web"), load_application(app_folder)) as store, \
            TestClient(create_app(store), follow_redirects=False) as client:
        sign_in(client)                                    # the account came from another process
        assert "TK-00001" not in client.get("/v/open_tasks").text
        finish(start(CREATE_TASKS, app_folder, postgres_database.uri("writer"), tmp_path / "m1", "writer",
                     count=2))
        page = client.get("/v/open_tasks")
        assert page.status_code == 200
        assert "writer printer 0" in page.text and "writer printer 1" in page.text
        finish(start(CREATE_TASKS, app_folder, postgres_database.uri("other"), tmp_path / "m2", "other",
                     count=1))
        assert "other printer 0" in client.get("/v/open_tasks").text


def test_indexes_and_counts_agree_with_the_records_after_concurrent_writes(app_folder, postgres_database, tmp_path):
    deskbase(app_folder, postgres_database.uri("migrate"), "migrate")
    run_pair(CREATE_TASKS, app_folder, postgres_database, tmp_path, count=30, update_every=5)

    def answers(session):
        records = list(session.container("task").records.values())
        by_priority = {p: session.query("task", {"priority": p}, limit=0).total for p in ("high", "medium", "low")}
        walked = Counter(r["priority"] for r in records)
        return {"count": session.count("task"), "records": len(records), "by_priority": by_priority,
                "walked": dict(walked), "text_a": session.query("task", {"text": "a printer"}, limit=0).total,
                "text_b": session.query("task", {"text": "b printer"}, limit=0).total,
                "ids": sorted(r.id for r in session.query("task", {}, "id", limit=None).records)}

    with open_store(postgres_database.uri("check"), load_application(app_folder)) as store:
        found = store.read(answers)
        assert found["count"] == found["records"] == 60
        assert found["by_priority"] == found["walked"] == {"high": 20, "medium": 20, "low": 20}
        assert found["text_a"] == found["text_b"] == 30
        assert len(found["ids"]) == len(set(found["ids"])) == 60    # numbers taken by a retried write are gaps
        notes = store.read(lambda s: s.query("task", {}, "id", limit=1).records[0]["notes"])
        assert notes and notes.startswith("seen ")
        store.reindex(["task"])                            # indexes rebuilt from the records say the same
        assert store.read(answers) == found


BULK_BESIDE_A_WRITER = PRELUDE + """
meet("opened")
if me == "bulk":
    rows = ({"title": f"imported {i}", "priority": ("high", "low")[i % 2]} for i in range(arguments["rows"]))
    started = time.monotonic()
    created = store.bulk_create("task", rows, batch=1000)
    print(json.dumps({"created": created, "seconds": time.monotonic() - started}), flush=True)
    Path(meeting, "bulk.done").touch()
else:
    numbers = []
    while not Path(meeting, "bulk.done").exists():
        numbers.append(store.run(lambda s: s.create("task", {"title": "live", "priority": "high"}).number))
        time.sleep(0.1)
    print(json.dumps({"numbers": numbers}), flush=True)
store.close()
"""

CREATE_AT_FULL_SPEED = PRELUDE + """
import threading
from collections import Counter
meet("opened")
deadline = time.monotonic() + arguments["seconds"]
outcomes, numbers, lock = Counter(), [], threading.Lock()
def client(n):
    i = 0
    while time.monotonic() < deadline:
        i += 1
        try:
            number = store.run(lambda s: s.create("task", {"title": f"{me}{n} printer {i}",
                                                           "priority": ("high", "low")[i % 2]}).number)
        except Exception as error:
            with lock:
                outcomes[type(error).__name__] += 1
        else:
            with lock:
                outcomes["created"] += 1
                numbers.append(number)
threads = [threading.Thread(target=client, args=(n,)) for n in range(arguments["threads"])]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
print(json.dumps({"outcomes": outcomes, "numbers": numbers, "conflicts": store.conflicts_on,
                  "alone": store.conflicts["alone"]}))
store.close()
"""


@pytest.mark.parametrize("names, threads", [("ab", 4), ("abcd", 2)])
def test_processes_creating_at_full_speed_lose_no_write(app_folder, postgres_database, tmp_path, names, threads):
    """No pause between writes: two processes of four threads, then four of two, conflict as
    often as they can. Every creation succeeds (a writer that keeps losing takes the
    database's turn alone), each with a number of its own."""
    deskbase(app_folder, postgres_database.uri("migrate"), "migrate")
    outputs = run_group(CREATE_AT_FULL_SPEED, app_folder, postgres_database, tmp_path, names, seconds=6,
                        threads=threads)
    written = {me: json.loads(out) for me, out in outputs.items()}
    outcomes = sum((Counter(done["outcomes"]) for done in written.values()), Counter())
    numbers = [number for done in written.values() for number in done["numbers"]]
    conflicts = sum((Counter(done["conflicts"]) for done in written.values()), Counter())
    alone = sum(done["alone"] for done in written.values())
    print(f"{len(names)} processes x {threads} threads, 6 s: {dict(outcomes)}; conflicts retried on {dict(conflicts)}; "
          f"turns alone {alone}")
    assert set(outcomes) == {"created"}, outcomes                        # not one failed
    assert all(done["numbers"] for done in written.values())
    assert len(set(numbers)) == len(numbers)
    with open_store(postgres_database.uri("check"), load_application(app_folder)) as store:
        counted, stored = store.read(lambda s: (s.count("task"), sorted(r.number for r in s.query(
            "task", {}, "id", limit=None).records)))
    assert counted == len(numbers) and stored == sorted(numbers)


def test_a_bulk_import_beside_a_live_writer_succeeds(app_folder, postgres_database, tmp_path):
    """An import of 3,000 rows in batches of 1,000 while another process creates a record
    every 100 ms: both finish, nothing lost, every number unique."""
    deskbase(app_folder, postgres_database.uri("migrate"), "migrate")
    meeting = tmp_path / "meeting"
    processes = {me: start(BULK_BESIDE_A_WRITER, app_folder, postgres_database.uri(me), meeting, me, other, rows=3000)
                 for me, other in (("bulk", "live"), ("live", "bulk"))}
    outputs = {me: json.loads(finish(process)) for me, process in processes.items()}
    print(f"bulk import: {outputs['bulk']}; live writer: {len(outputs['live']['numbers'])} created meanwhile")
    assert outputs["bulk"]["created"] == 3000 and outputs["live"]["numbers"]
    with open_store(postgres_database.uri("check"), load_application(app_folder)) as store:
        numbers = store.read(lambda s: [r.number for r in s.container("task").records.values()])
    assert len(numbers) == 3000 + len(outputs["live"]["numbers"]) == len(set(numbers))


def test_a_shared_database_without_a_blob_folder_is_refused_with_what_to_add(app_folder, postgres_database):
    with pytest.raises(DeskbaseError, match=r"blob_dir=.*shared_blob_dir=false"):
        open_store(postgres_database.base_uri + "?keep_history=false", load_application(app_folder))
