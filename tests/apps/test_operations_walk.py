"""An operator's first day, end to end with the real commands: `deskbase run` on a fresh
folder (the demo loaded), an administrator makes an account in the web, Prometheus'
scrape of /metrics, a backup while the service runs, the service stopped, a pack, a
restore into a new folder — which holds the new account and every record."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

DESKBASE = Path(sys.executable).with_name("deskbase")
DEFINITIONS = Path(__file__).parents[2] / "definitions"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def deskbase(*args: str, db: str) -> str:
    done = subprocess.run([str(DESKBASE), "--definitions", str(DEFINITIONS), "--db", db, *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"deskbase {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_from_a_fresh_service_to_a_restored_backup(tmp_path):
    live = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    port = free_port()
    service = subprocess.Popen([str(DESKBASE), "--definitions", str(DEFINITIONS), "--db", live, "run", "--port",
                                str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "DESKBASE_LOG_LEVEL": "WARNING"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                pass
            assert service.poll() is None, service.stderr.read()
            assert time.monotonic() < deadline, "the service did not answer within 180 s"
            time.sleep(0.5)
        with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as admin:
            token = re.search(r'name="csrf" value="([^"]+)"', admin.get("/login").text).group(1)
            assert admin.post("/login", data={"login": "admin", "password": "demo-admin-2026",
                                              "csrf": token}).status_code == 303
            page = admin.get("/admin/accounts")
            assert page.status_code == 200, (page.status_code, page.headers, page.text[:300])
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            made = admin.post("/admin/accounts", data={
                "csrf": token, "login": "ops1", "name": "First Operator", "roles": ["technician"],
                "language": "en", "password": "the operator password", "again": "the operator password"})
            assert made.status_code == 303, made.text
        scraped = {sample.name: sample for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text)
                   for sample in family.samples if sample.name == "deskbase_records" and sample.labels["type"] ==
                   "ticket"}
        tickets = scraped["deskbase_records"].value
        assert tickets > 200
        assert "full backup in" in deskbase("backup", str(tmp_path / "backup"), db=live)   # while it runs
    finally:
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=60)
    assert "packed, keeping 0 days" in deskbase("pack", "--days", "0", db=live)
    restored = deskbase("restore", str(tmp_path / "backup"), str(tmp_path / "restored"), db=live)
    copy = re.search(r"--db '([^']+)'", restored).group(1)
    listed = deskbase("users", "list", db=copy)
    assert "ops1" in listed and "First Operator" in listed
    assert f"of {int(tickets)} ticket records" in deskbase("query", "ticket", "--limit", "1", db=copy)
