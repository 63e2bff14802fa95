"""Several web processes on one machine: `deskbase zeo` serves the embedded database,
`deskbase run --workers 2` starts two web processes (and runs the jobs in the first), and
eight API clients create tickets at full speed for a bounded time. What an operator checks:
every request answered 201, every ticket stored once with its own number, the count equal
to what was created, and the sign-in throttle counting one address's failures across both
processes. A FileStorage given to --workers is refused with a sentence."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import pytest
from servers.web import answers
from test_concurrent_writes import post

from deskbase.rules.application import load_application, open_store
from deskbase.views.api_keys import add_key

HELPDESK = Path(__file__).parents[2] / "definitions"
DESKBASE = Path(sys.executable).parent / "deskbase"
CLIENTS = 8
SECONDS = 6.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]



def wait_until(condition, what: str, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"{what}: the process ended: {process.stdout.read()[-3000:] if process.stdout else 'see its log'}"
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:.0f} s"
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0]


def test_several_web_processes_on_a_filestorage_are_refused_with_a_sentence(tmp_path):
    done = subprocess.run([str(DESKBASE), "--db", f"file://{tmp_path}/Data.fs?blobstorage_dir={tmp_path}/blobs",
                           "serve", "--workers", "2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "--workers 2 needs a database several processes can open at once" in done.stderr
    assert "deskbase zeo" in done.stderr and not (tmp_path / "Data.fs").exists()


@pytest.mark.slow
def test_two_web_processes_on_zeo_create_without_a_failure_and_share_the_throttle(tmp_path):
    zeo_port, web_port = free_port(), free_port()
    zeo = subprocess.Popen([str(DESKBASE), "--db", f"file://{tmp_path}/Data.fs?blobstorage_dir={tmp_path}/blobs",
                            "zeo", "--listen", f"127.0.0.1:{zeo_port}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    web = None
    try:
        line = zeo.stdout.readline() + zeo.stdout.readline()
        uri = re.search(r"--db '([^']+)'", line).group(1)
        assert uri == f"zeo://127.0.0.1:{zeo_port}?blob_dir={tmp_path / 'blobs'}&shared_blob_dir=1"
        # The log goes to a file: a pipe nobody reads during the load would fill and stop the processes.
        web_log = open(tmp_path / "web.log", "w+")
        web = subprocess.Popen([str(DESKBASE), "--db", uri, "run", "--workers", "2", "--port", str(web_port)],
                               stdout=web_log, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "DESKBASE_LOG_LEVEL": "INFO"})
        url = f"http://127.0.0.1:{web_port}"
        wait_until(lambda: answers(f"{url}/login"), "the web processes' first answer", web)

        with open_store(uri, load_application(HELPDESK), migrate=False) as store:     # a third client of ZEO
            keys = [add_key(store, f"load-{login}", login) for login in ("psvoboda", "sbernard", "cmartin")]
            before = store.read(lambda s: s.count("ticket"))
        answered: Counter[int] = Counter()
        numbers: list[str] = []
        failures: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + SECONDS

        def client(n: int) -> None:
            i = 0
            while time.monotonic() < deadline:
                i += 1
                status, body = post(f"{url}/api/v1/ticket", keys[n % len(keys)], {
                    "title": f"Load {n}-{i}: printer jams", "description": "Paper jam, tray 2."})
                with lock:
                    answered[status] += 1
                    (numbers.append(body["number"]) if status == 201 else failures.append(f"{status} {body}"))
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        print(f"{CLIENTS} clients, 2 web processes on ZEO, {SECONDS:.0f} s: {sum(answered.values())} sent, "
              f"{answered[201]} created, {len(failures)} failed")
        assert not failures, failures[:5]
        assert numbers and len(set(numbers)) == len(numbers)

        # Failed sign-ins from one address, whichever process answers each, are counted once.
        statuses = [sign_in_status(url, "khaddad", "wrong password") for _ in range(6)]
        assert statuses[:5] == [401] * 5 and statuses[5] == 429, statuses

        with open_store(uri, load_application(HELPDESK), migrate=False) as store:
            assert store.read(lambda s: s.count("ticket")) == before + len(numbers)
    finally:
        if web:
            stop(web)
            web_log.seek(0)
        log = web_log.read() if web else ""
        stop(zeo)
    processes = set(re.findall(r"Started server process \[(\d+)\]", log))
    assert len(processes) == 2, log[-3000:]


def sign_in_status(url: str, login: str, password: str) -> int:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{url}/login", timeout=30) as page:
        token = re.search(r'name="csrf" value="([^"]+)"', page.read().decode()).group(1)
    try:
        with opener.open(f"{url}/login", data=urlencode({"login": login, "password": password, "csrf": token}).encode(),
                         timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as answer:
        return answer.code
