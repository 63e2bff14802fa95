"""Logs as an operator reads them: time-stamped lines on standard error, or one JSON object
per line for a log shipper; the level from the environment, a wrong one said and replaced;
the service's access log and its job runs in them."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from deskbase.cli.logs import configure_logging

DESKBASE = Path(sys.executable).with_name("deskbase")
DEFINITIONS = Path(__file__).parents[1] / "definitions"


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_time_level_logger_message_and_extras(capsys):
    assert configure_logging(environ={"DESKBASE_LOG_FORMAT": "json", "DESKBASE_LOG_LEVEL": "info"}) == "INFO"
    logging.getLogger("deskbase.outbox").warning("message %s failed", 42, extra={"record": "T-000042"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"], entry["record"]) == (
        "WARNING", "deskbase.outbox", "message 42 failed", "T-000042")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", entry["time"])


def test_text_lines_are_time_stamped_and_a_wrong_level_is_said(capsys):
    assert configure_logging("WARNING", environ={"DESKBASE_LOG_LEVEL": "loud"}) == "WARNING"
    assert "DESKBASE_LOG_LEVEL=LOUD is not one of DEBUG, INFO, WARNING, ERROR; using WARNING" in capsys.readouterr().err
    logging.getLogger("deskbase.jobs").info("not shown at WARNING")
    logging.getLogger("deskbase.jobs").error("shown")
    err = capsys.readouterr().err
    assert "not shown" not in err
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR   deskbase\.jobs: shown$", err, re.M)


def test_the_service_logs_its_requests_and_its_jobs_as_json(tmp_path):
    port = 18000 + os.getpid() % 1000
    environment = {**os.environ, "DESKBASE_LOG_FORMAT": "json", "DESKBASE_LOG_LEVEL": "INFO"}
    service = subprocess.Popen(
        [str(DESKBASE), "--definitions", str(DEFINITIONS), "--db", f"file://{tmp_path}/Data.fs?blobstorage_dir="
         f"{tmp_path}/blobs", "run", "--port", str(port)], env=environment, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
                    assert answer.status in (200, 503)
                break
            except OSError:
                assert service.poll() is None, service.stderr.read()
                assert time.monotonic() < deadline, "the service did not answer within 120 s"
                time.sleep(0.5)
        time.sleep(2)                                        # the worker's first round
    finally:
        service.send_signal(signal.SIGINT)
        _, err = service.communicate(timeout=60)
    entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert entries, err[-2000:]
    assert any(entry["logger"] == "uvicorn.access" and "GET /healthz" in entry["message"] for entry in entries)
    assert any(entry["logger"].startswith("deskbase") for entry in entries)
    assert not [line for line in err.splitlines() if line.strip() and not line.startswith("{")
                and "Traceback" in line]


def test_every_job_run_is_logged_once_with_its_outcome(store, caplog):
    from datetime import UTC, datetime, timedelta

    from deskbase.rules.jobs.runner import Job, JobRunner
    runner = JobRunner(store, [Job("tick", "* * * * *", lambda s, occurrence: "3 done")])
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    runner.run_due(start)
    with caplog.at_level(logging.INFO, logger="deskbase"):
        runner.run_due(start + timedelta(minutes=1, seconds=5))
    ran = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job tick ran")]
    assert ran == ["job tick ran for 2026-01-05T10:01:00+00:00 in 0.0 s: '3 done'"]
