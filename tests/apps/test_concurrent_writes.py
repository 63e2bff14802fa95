"""Eight clients at once on the embedded database: the API of a real web server (uvicorn on
loopback) over a FileStorage with the shipped demo, customers and technicians creating
tickets as fast as they are answered for a bounded time. What an operator checks: every
request is answered 201 (no 500, no 503), every ticket is stored once with a number of its
own, and the lists (indexes) count exactly what was created."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from servers.web import LiveServer

from deskbase.rules.application import load_application_demo, open_store
from deskbase.views.api_keys import add_key

DEMO = Path(__file__).parents[2] / "definitions" / "demo"

CLIENTS = 8
SECONDS = 6.0


@pytest.fixture
def file_store(file_uri, helpdesk_definitions):
    with open_store(file_uri, helpdesk_definitions) as store:
        load_application_demo(store, DEMO)
        yield store


def post(url: str, key: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"error": error.read().decode(errors="replace")[:300]}


def test_eight_api_clients_creating_tickets_at_full_speed_all_succeed_with_unique_numbers(file_store):
    keys = [add_key(file_store, f"load-{login}", login)
            for login in ("psvoboda", "sbernard", "cmartin")]
    before = file_store.read(lambda s: s.count("ticket"))
    server = LiveServer(file_store).start()
    answers: Counter[int] = Counter()
    numbers: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client(n: int) -> None:
        key = keys[n % len(keys)]
        i = 0
        while time.monotonic() < deadline:
            i += 1
            status, body = post(f"{server.url}/api/v1/ticket", key, {
                "title": f"Load {n}-{i}: printer on floor {i % 7} jams", "description": "Paper jam, tray 2."})
            with lock:
                answers[status] += 1
                if status == 201:
                    numbers.append(body["number"])
                else:
                    failures.append(f"{status} {body}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        server.stop()
    print(f"{CLIENTS} clients, {SECONDS:.0f} s: {sum(answers.values())} sent, {answers[201]} created, "
          f"{len(failures)} failed")
    assert not failures, failures[:5]
    assert answers[201] >= CLIENTS                        # each client was answered, more than once
    assert len(set(numbers)) == len(numbers)              # no number given twice

    def stored(session):
        records = list(session.container("ticket").records.values())
        return (session.count("ticket"), len(records), sorted(r.number for r in records if r.number in set(numbers)),
                session.count("ticket", {"text": "printer floor jams"}))
    counted, kept, found, searched = file_store.read(stored)
    assert counted == kept == before + len(numbers)       # the count (an index) agrees with the records
    assert found == sorted(numbers)                       # every answered ticket is there, once
    assert searched == len(numbers)                       # and the text index found each of them
