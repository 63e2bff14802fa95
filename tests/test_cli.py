"""The `deskbase` command as a consultant and an operator use it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deskbase.cli import main


@pytest.fixture
def cli(tasks_folder, tmp_path, capsys):
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--definitions", str(tasks_folder), "--db", uri, *args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_check_reports_valid_definitions(cli):
    code, out, _ = cli("check")
    assert code == 0 and "definitions are valid: 4 types, 1 views" in out


def test_check_exits_non_zero_and_names_the_place_of_each_problem(cli, tasks_folder):
    path = tasks_folder / "tasks.yaml"
    path.write_text(path.read_text().replace("kind: string, required: true, max_length: 80", "kind: strng, required: true"))
    code, _, err = cli("check")
    assert code == 1
    assert "tasks.yaml:" in err and "did you mean `string`?" in err


def test_check_accepts_an_overlay_after_the_command(cli, tmp_path):
    overlay = tmp_path / "acme"
    overlay.mkdir()
    (overlay / "acme.yaml").write_text("types:\n  task:\n    fields:\n      region: {kind: string}\n")
    code, out, _ = cli("check", "--overlay", str(overlay))
    assert code == 0


def test_query_prints_a_table_through_the_indexes(cli, tasks_folder, tmp_path):
    from deskbase.objects.definitions import load_definitions
    from deskbase.objects.store import Store
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    with Store.open(uri, load_definitions(tasks_folder)) as store:
        store.bulk_create("task", [{"title": f"Imprimante {i}", "priority": ["high", "low"][i % 2]} for i in range(30)])
    code, out, _ = cli("query", "task", "--filter", "{priority: high}", "--sort", "-id", "--limit", "5")
    assert code == 0
    lines = out.splitlines()
    assert lines[2].startswith("TK-00029") and "Imprimante 28" in lines[2]
    assert "1–5 of 15 task records" in out
    code, out, _ = cli("query", "task", "--filter", '{"text": "imprimante"}', "--columns", "id,title", "--limit", "1")
    assert "of 30 task records" in out


def test_query_explains_a_bad_filter(cli):
    code, _, err = cli("query", "task", "--filter", "{priorty: high}")
    assert code == 1 and "did you mean `priority`?" in err
    code, _, err = cli("query", "task", "--filter", "{priority: {like: high}}")
    assert code == 1 and "like" in err
    code, _, err = cli("query", "task", "--filter", "{priority: [high")
    assert code == 1 and "not valid JSON or YAML" in err


def test_show_prints_a_record_with_its_history(cli, tasks_folder, tmp_path):
    from deskbase.objects.definitions import load_definitions
    from deskbase.objects.store import Store
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    with Store.open(uri, load_definitions(tasks_folder)) as store:
        with store.session(user="ann") as s:
            team = s.create("team", {"name": "Réseau"})
            s.create("task", {"title": "VPN down", "team": team.id})
        with store.session(user="bob", acting_for="ann") as s:
            s.update("TK-00001", {"priority": "high"})
    code, out, _ = cli("show", "TK-00001")
    assert code == 0
    assert "VPN down" in out and "Réseau" in out
    assert "bob for ann  updated" in out and "priority: medium → High" in out
    code, _, err = cli("show", "TK-99999")
    assert code == 1 and "no record numbered `TK-99999`" in err


def test_migrate_dry_run_and_reindex(cli, tasks_folder):
    assert cli("migrate")[0] == 0
    path = tasks_folder / "tasks.yaml"
    path.write_text(path.read_text().replace("      owner:       {kind: user}\n",
                                             "      owner:       {kind: user}\n      region:      {kind: string, default: north}\n"))
    code, out, _ = cli("migrate", "--dry-run")
    assert code == 0 and "add the field `region`" in out
    code, out, _ = cli("reindex")
    assert code == 0 and "rebuilt the indexes of 4 types" in out


def test_the_console_script_is_installed():
    result = subprocess.run([str(Path(sys.executable).parent / "deskbase"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "check" in result.stdout and "query" in result.stdout


@pytest.fixture
def notes_cli(tmp_path, capsys, monkeypatch):
    """The command on the rules layer's small application, with two notes."""
    from deskbase.rules.application import load_application, open_store
    folder = Path(__file__).parent / "rules" / "notes_app"
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    with open_store(uri, load_application(folder)) as store:
        store.run(lambda s: (s.create("team", {"name": "storage"}),
                             s.create("note", {"title": "published plan", "status": "published", "owner": "bob"}),
                             s.create("note", {"title": "bob draft", "owner": "bob", "secret": "hush"})))

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        import io
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["--definitions", str(folder), "--db", uri, *args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_users_add_reads_the_password_from_stdin_and_users_list_shows_it(notes_cli):
    code, out, _ = notes_cli("users", "add", "alice", "--role", "member", "--group", "storage",
                             "--name", "Alice", "--password-stdin", stdin="a long password\n")
    assert code == 0 and "account `alice` created with the role member" in out
    code, out, _ = notes_cli("users", "list")
    assert code == 0 and "alice" in out and "Alice" in out and "member" in out


def test_users_add_without_a_terminal_asks_for_the_password_on_stdin(notes_cli):
    code, _, err = notes_cli("users", "add", "alice", "--role", "member")    # stdin is no terminal here
    assert code == 1 and "pipe it in with --password-stdin" in err and "Traceback" not in err
    assert "alice" not in notes_cli("users", "list")[1]


def test_loading_the_demo_twice_is_refused_with_the_option_that_forces_it(tmp_path, capsys):
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    definitions = str(Path(__file__).parents[1] / "definitions")
    assert main(["--definitions", definitions, "--db", uri, "demo"]) == 0
    capsys.readouterr()
    assert main(["--definitions", definitions, "--db", uri, "demo"]) == 1
    assert "deskbase demo --force" in capsys.readouterr().err


def test_users_add_refuses_a_short_password(notes_cli):
    code, _, err = notes_cli("users", "add", "alice", "--role", "member", "--password-stdin", stdin="short\n")
    assert code == 1 and "at least 10 characters" in err


def test_query_as_an_account_lists_only_what_it_may_read(notes_cli):
    notes_cli("users", "add", "alice", "--role", "member", "--password-stdin", stdin="a long password\n")
    code, out, _ = notes_cli("query", "note", "--columns", "title")
    assert code == 0 and "of 2 note records" in out
    code, out, _ = notes_cli("query", "note", "--columns", "title", "--as", "alice")
    assert code == 0 and "published plan" in out and "bob draft" not in out and "of 1 note records" in out


def test_show_as_an_account_refuses_what_it_may_not_read_and_hides_hidden_fields(notes_cli):
    notes_cli("users", "add", "bob", "--role", "member", "--password-stdin", stdin="a long password\n")
    notes_cli("users", "add", "alice", "--role", "member", "--password-stdin", stdin="a long password\n")
    code, _, err = notes_cli("show", "N-0002", "--as", "alice")
    assert code == 1 and "alice may not read N-0002" in err
    code, out, _ = notes_cli("show", "N-0002", "--as", "bob")
    assert code == 0 and "bob draft" in out and "hush" not in out
    code, out, _ = notes_cli("show", "N-0002")
    assert "hush" in out


def test_run_loads_the_demo_once_and_prints_the_demo_logins(tmp_path, capsys):
    definitions = str(Path(__file__).parents[1] / "definitions")
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    assert main(["--definitions", definitions, "--db", uri, "run", "--check"]) == 0
    out = capsys.readouterr().out
    assert "first start: loading the demo data" in out
    assert "sbernard" in out and "technician" in out and "demo-password" in out
    assert main(["--definitions", definitions, "--db", uri, "run", "--check"]) == 0
    again = capsys.readouterr().out
    assert "loading the demo data" not in again and "ticket" in again


@pytest.fixture
def repairs_cli(tmp_path, capsys, monkeypatch):
    """The command on the workflow tests' repair shop, with one new repair and a mechanic."""
    from deskbase.rules.access.identity import create_account
    from deskbase.rules.application import load_application, open_store
    folder = Path(__file__).parent / "rules" / "repairs_app"
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    with open_store(uri, load_application(folder)) as store:
        store.run(lambda s: s.create("repair", {"title": "bike", "device": "bicycle"}))
        create_account(store, "max", name="Max", password="a long password", roles=["mechanic"])
        create_account(store, "cleo", name="Cleo", password="a long password", roles=["clerk"])

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--definitions", str(folder), "--db", uri, *args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_fire_prints_the_new_state_or_why_it_was_refused(repairs_cli):
    code, _, err = repairs_cli("fire", "R-0001", "start", "--as", "cleo", "--input", "time_spent=10m")
    assert code == 1 and "your roles (clerk) may not fire `start`: it is for mechanic" in err
    code, _, err = repairs_cli("fire", "R-0001", "start", "--as", "max")
    assert code == 1 and "time_spent: is required" in err
    code, out, _ = repairs_cli("fire", "R-0001", "start", "--as", "max", "--input", "time_spent=10m")
    assert code == 0 and "R-0001: start → open" in out
    code, out, _ = repairs_cli("show", "R-0001", "--as", "max")
    assert "updated (transition start)" in out
    assert "transitions:" in out and "wait" in out and "finish" in out and "drop" not in out


@pytest.fixture
def sla_cli(tmp_path, capsys):
    """The command on the timer tests' service desk: a request ten days old, one new."""
    from datetime import datetime, timedelta, timezone

    from deskbase.rules.application import load_application, open_store
    folder = Path(__file__).parent / "rules" / "sla_app"
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    with open_store(uri, load_application(folder)) as store:
        store.run(lambda s: s.create("request", {"title": "printer"}),
                  now=datetime.now(timezone.utc) - timedelta(days=10))
        store.run(lambda s: s.create("request", {"title": "screen"}))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--definitions", str(folder), "--db", uri, *args])
        out, err = capsys.readouterr()
        return code, out, err
    run.folder, run.uri = folder, uri
    return run


def test_show_prints_the_clocks_of_a_record(sla_cli):
    code, out, _ = sla_cli("show", "RQ-00002")
    assert code == 0
    assert "timers:" in out
    lines = {line.split()[0]: line for line in out.split("timers:")[1].splitlines() if line.strip()}
    assert "running" in lines["First"] and "of 4h (standard)" in lines["First"] and "due " in lines["First"]
    assert "waiting" in lines["next"]


def test_jobs_run_fires_the_passed_thresholds(sla_cli):
    code, out, _ = sla_cli("jobs", "run", "check_timers")
    assert code == 0
    assert "check_timers: ok" in out and "1 records checked" in out
    code, out, _ = sla_cli("show", "RQ-00001")
    assert "breached" in out and "resolution 100% (breach)" in out


def test_worker_runs_until_told_to_stop(sla_cli):
    import signal
    import time
    command = [str(Path(sys.executable).parent / "deskbase"), "--definitions", str(sla_cli.folder),
               "--db", sla_cli.uri, "worker", "--interval", "0.2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        assert "started: check_timers" in first
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "worker stopped" in out


def test_timers_start_says_when_every_record_has_its_clocks(sla_cli):
    code, out, _ = sla_cli("timers", "start")
    assert code == 0 and "every record has its clocks already" in out
    code, _, err = sla_cli("timers", "start", "plan")
    assert code == 1 and "`plan` has no timers; types with timers: request" in err


def test_a_database_password_is_never_printed():
    from deskbase.cli import shown_uri
    assert shown_uri("postgres://deskbase:s3cret@db.example:5432/zodb?blob_dir=/var/cache") == \
        "postgres://deskbase:***@db.example:5432/zodb?blob_dir=/var/cache"
    assert shown_uri("file:///srv/var/Data.fs") == "file:///srv/var/Data.fs"


def test_explain_says_why_an_account_may_or_may_not_read_a_record(notes_cli):
    notes_cli("users", "add", "alice", "--role", "member", "--password-stdin", stdin="a long password\n")
    code, out, _ = notes_cli("explain", "N-0002", "--as", "alice")
    assert code == 0
    assert "alice (alice; roles: member) may not read N-0002." in out
    assert "read scope" in out and "fails: owner is bob, not alice" in out
    assert "Timers of N-0002" in out and "Notifications on the last 5 changes of N-0002" in out


def test_explain_refuses_an_unknown_record_or_login_in_a_sentence(notes_cli):
    notes_cli("users", "add", "alice", "--role", "member", "--password-stdin", stdin="a long password\n")
    code, _, err = notes_cli("explain", "N-9999", "--as", "alice")
    assert code == 1 and err.strip() == "error: there is no record numbered `N-9999`"
    code, _, err = notes_cli("explain", "N-0002", "--as", "nobody")
    assert code == 1 and err.strip() == "error: there is no account `nobody`"
    code, _, err = notes_cli("explain", "N-0002", "--as", "alice", "--changes", "0")
    assert code == 1 and "give 1 or more" in err and "Traceback" not in err
