"""/healthz and /metrics as a load balancer and Prometheus read them: from the monitoring
addresses without a session, from elsewhere only for a signed-in administrator; healthy
while the jobs run and the outbox moves, 503 with the reason when a job falls behind or a
message waits for an hour; metrics in Prometheus text with the requests per route, the
outbox, the quarantine, the jobs' lag, the conflicts and the records per type."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from deskbase.connectors.channels import job_runner
from deskbase.rules.messages.outbox import queue_message
from deskbase.views.app import create_app
from deskbase.views.monitoring import monitoring_networks


@pytest.fixture(scope="module")
def store(app_store):
    with app_store(demo=True) as opened:
        yield opened


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def sign_in(client: TestClient, login: str, password: str = "demo-password") -> None:
    page = client.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"login": login, "password": password, "csrf": token}).status_code == 303


def test_metrics_count_requests_by_route_and_read_the_database(store):
    with TestClient(create_app(store, monitor_from="10.1.0.0/16"), follow_redirects=False,
                    client=("10.1.2.3", 50000)) as web:
        sign_in(web, "cmartin")
        number = store.read(lambda s: s.query("ticket", {}, "id", limit=1).records[0].number)
        for _ in range(3):
            assert web.get(f"/r/{number}").status_code == 200
        text = web.get("/metrics").text
    found = samples(text)
    assert found[("deskbase_http_request_duration_seconds_count",
                  (("method", "GET"), ("route", "/r/{number}"), ("status", "200")))] == 3
    assert found[("deskbase_records", (("type", "ticket"),))] == store.read(lambda s: s.count("ticket"))
    assert ("deskbase_outbox_messages", (("state", "pending"),)) in found
    assert ("deskbase_mail_quarantine_messages", ()) in found
    assert ("deskbase_write_conflicts_total", (("outcome", "retried"),)) in found
    assert any(name == "deskbase_job_lag_seconds" for name, _ in found)
    assert found[("deskbase_records_waiting_to_be_indexed", (("type", "ticket"),))] == 0


def test_metrics_say_how_many_records_wait_to_be_indexed_and_how_many_were(store, monkeypatch):
    from deskbase.objects import indexer
    monkeypatch.setattr(indexer, "QUIET", 60.0)     # the indexer waits for a pause: filed by hand below
    store.indexer.file_now()
    filed = store.indexer.filed
    store.run(lambda s: s.create("ticket", {"title": "Waiting to be filed", "description": "A new one"}),
              identity=None)
    with TestClient(create_app(store), client=("127.0.0.1", 50000)) as web:
        waiting = samples(web.get("/metrics").text)[("deskbase_records_waiting_to_be_indexed", (("type", "ticket"),))]
        store.indexer.file_now()
        found = samples(web.get("/metrics").text)
    assert waiting == 1
    assert found[("deskbase_records_waiting_to_be_indexed", (("type", "ticket"),))] == 0
    assert found[("deskbase_records_indexed_after_commit_total", ())] == filed + 1


def test_a_write_conflict_is_retried_and_counted_by_the_object_met(store):
    ticket = store.read(lambda s: s.query("ticket", {}, "id", limit=1).records[0].id)
    attempts = []

    def edit(session):
        attempts.append(1)
        record = session.get("ticket", ticket)
        if len(attempts) == 1:               # someone else saves the same ticket meanwhile
            store.run(lambda other: other.update(other.get("ticket", ticket), {"title": "Changed meanwhile"}))
        session.update(record, {"title": f"Edited at attempt {len(attempts)}"})
    store.run(edit)
    assert len(attempts) == 2
    assert store.read(lambda s: s.get("ticket", ticket)["title"]) == "Edited at attempt 2"
    with TestClient(create_app(store), client=("127.0.0.1", 50000)) as web:
        found = samples(web.get("/metrics").text)
    assert found[("deskbase_write_conflicts_on_total", (("object", "Record"),))] >= 1
    assert found[("deskbase_write_conflicts_total", (("outcome", "retried"),))] >= 1


def test_a_conflict_its_caller_handles_is_no_write_given_up(store):
    """An API key's "last used" note lets a conflict go: no alarm in /metrics or the log."""
    from ZODB.POSException import ConflictError
    ticket = store.read(lambda s: s.query("ticket", {}, "id", limit=1).records[0].id)
    before = dict(store.conflicts)
    edits = []

    def edit(session):
        edits.append(1)
        record = session.get("ticket", ticket)
        store.run(lambda other: other.update(other.get("ticket", ticket), {"title": f"Changed meanwhile {len(edits)}"}))
        session.update(record, {"title": "Edited"})
    with pytest.raises(ConflictError):
        store.run(edit, attempts=1, handled=True)
    assert store.conflicts["gave_up"] == before["gave_up"]
    with pytest.raises(ConflictError):
        store.run(edit, attempts=1)
    assert store.conflicts["gave_up"] == before["gave_up"] + 1


def test_only_monitoring_addresses_or_an_administrator_read_them(store):
    with TestClient(create_app(store, monitor_from="10.0.0.0/8"), follow_redirects=False) as web:
        assert web.get("/metrics").status_code == 404 and web.get("/healthz").status_code == 404
        sign_in(web, "psvoboda")                             # a customer: still nothing
        assert web.get("/metrics").status_code == 404
    with TestClient(create_app(store, monitor_from="10.0.0.0/8"), follow_redirects=False) as web:
        sign_in(web, "admin", "demo-admin-2026")
        assert web.get("/metrics").status_code == 200
    with pytest.raises(ValueError, match="not an address or a network"):
        monitoring_networks("10.0.0.0/33")


def test_health_is_ok_while_jobs_run_and_says_why_when_not(store):
    app = create_app(store, monitor_from="0.0.0.0/0")
    monitoring = app.state.monitoring
    now = datetime.now(UTC)
    runner = job_runner(store)
    runner.run_due(now)                                    # a worker starts: what is due from now on is owed
    runner.run_due(now + timedelta(minutes=2))             # and runs every job due since
    report = monitoring.health(now + timedelta(minutes=2, seconds=30))
    assert report["status"] == "ok", report["problems"]
    assert report["database"] == "ok" and "deliver_messages" in report["jobs"]
    assert report["jobs"]["check_timers"]["last_success"] is not None
    later = monitoring.health(now + timedelta(minutes=40))  # nobody ran the jobs since
    assert later["status"] == "unhealthy"
    assert any("`check_timers` is" in problem and "minutes late" in problem for problem in later["problems"])
    store.run(lambda s: queue_message(s, "email", ["ops@example.org"], "Disk almost full", "92 %"))
    job_runner(store).run_due(now + timedelta(hours=2))    # jobs caught up; the message cannot be sent
    stuck = monitoring.health(now + timedelta(hours=2, seconds=10))
    assert stuck["outbox"]["pending"] >= 1 and stuck["outbox"]["oldest_pending_seconds"] > 3600
    assert stuck["status"] == "unhealthy"
    assert any("has waited" in problem and "mail server" in problem for problem in stuck["problems"])
    with TestClient(app, client=("127.0.0.1", 50000)) as web:
        answer = web.get("/healthz")
    assert answer.status_code in (200, 503) and answer.json()["database"] == "ok"
    assert answer.headers["cache-control"] == "no-store"
