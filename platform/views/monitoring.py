"""`GET /healthz` and `GET /metrics`: what a load balancer and Prometheus ask a running
service. Reachable without a session only from the monitoring addresses
(`--monitor-from` / `DESKBASE_MONITOR_FROM`, loopback by default); an administrator signed
in reads them from anywhere.

Health is the database answering a read, the outbox not stuck (its oldest pending message
younger than `OUTBOX_STUCK`), and every job run lately (its last due occurrence at most
`JOB_LATE` behind): 200 with the details as JSON, 503 when any of these fails. Metrics
(Prometheus text) are the requests and their durations per route, the outbox's pending and
failed messages and the age of the oldest pending one, the mail quarantine, each job's lag,
the write conflicts retried and given up, and the records of each type."""
from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

if TYPE_CHECKING:
    from deskbase.rules.jobs.runner import JobRunner

ENVIRONMENT_VARIABLE = "DESKBASE_MONITOR_FROM"
DEFAULT_FROM = ("127.0.0.1/32", "::1/128")
OUTBOX_STUCK = timedelta(hours=1)
JOB_LATE = timedelta(minutes=15)
FAILED_COUNTED = 10_000       # the newest messages whose state /metrics counts (the outbox is purged)


def monitoring_networks(given: str | Iterable[str] | None = None) -> tuple[Any, ...]:
    """The networks allowed to read /healthz and /metrics: `given` (addresses or CIDR
    ranges, comma-separated), else $DESKBASE_MONITOR_FROM, else loopback."""
    if given is None:
        given = os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_FROM
    items = [item.strip() for item in (given.split(",") if isinstance(given, str) else given) if item.strip()]
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"`{item}` is not an address or a network such as 10.0.0.0/8") from None
    return tuple(networks)


class Monitoring:
    """The health check, the metrics and the request timings of one web application."""

    def __init__(self, web: Any, networks: tuple[Any, ...]):
        self.web = web
        self.store = web.store
        self.networks = networks
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram("deskbase_http_request_duration_seconds", "Time to answer a request, by route",
                                  ["method", "route", "status"], registry=self.registry,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.registry.register(_StoreCollector(self))
        self._runner: JobRunner | None = None      # made on first use

    # -- the pages ------------------------------------------------------------------------

    def allowed(self, request: Request) -> bool:
        host = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and any(address in network for network in self.networks):
            return True
        _, identity = self.web.visitor(request)
        return identity is not None and getattr(identity, "superuser", False)

    async def healthz(self, request: Request) -> Response:
        if not await run_in_threadpool(self.allowed, request):
            return PlainTextResponse("Not found.", status_code=404)
        report = await run_in_threadpool(self.health)
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503,
                            headers={"Cache-Control": "no-store"})

    async def metrics(self, request: Request) -> Response:
        if not await run_in_threadpool(self.allowed, request):
            return PlainTextResponse("Not found.", status_code=404)
        body = await run_in_threadpool(generate_latest, self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    # -- what they read ---------------------------------------------------------------------

    def health(self, now: datetime | None = None) -> dict[str, Any]:
        """The health report: `status` ok or unhealthy, `problems` in sentences, and the figures."""
        now = now or datetime.now(UTC)
        problems: list[str] = []
        report: dict[str, Any] = {"status": "ok", "problems": problems}
        try:
            figures = self.figures(now)
        except Exception as error:          # whatever the storage raises: the service cannot serve
            problems.append(f"the database does not answer: {type(error).__name__}: {error}")
            report["status"] = "unhealthy"
            return report
        report["database"] = "ok"
        report["outbox"] = {"pending": figures["pending"], "failed": figures["failed"],
                            "oldest_pending_seconds": figures["oldest_pending"]}
        if figures["oldest_pending"] is not None and figures["oldest_pending"] > OUTBOX_STUCK.total_seconds():
            problems.append(f"the oldest message waiting to be sent has waited {figures['oldest_pending'] / 60:.0f} "
                            "minutes: is the worker running, can it reach the mail server?")
        report["quarantine"] = figures["quarantine"]
        report["jobs"] = {}
        for name, job in figures["jobs"].items():
            report["jobs"][name] = {"last_success": job["last_success"], "lag_seconds": job["lag"]}
            if job["lag"] > JOB_LATE.total_seconds():
                problems.append(f"the job `{name}` is {job['lag'] / 60:.0f} minutes late: is a worker running?")
        if problems:
            report["status"] = "unhealthy"
        return report

    def figures(self, now: datetime) -> dict[str, Any]:
        """The figures health and metrics read, in one transaction."""
        from deskbase.connectors.channels import job_runner
        from deskbase.rules.intake.mail_intake import quarantine_size
        from deskbase.rules.messages.outbox import backlog
        if self._runner is None:
            self._runner = job_runner(self.store)
        statuses = self._runner.status(now)

        def work(session) -> dict[str, Any]:
            waiting = backlog(session, now, looked_at=FAILED_COUNTED)
            return {"pending": waiting.pending, "failed": waiting.failed,
                    "oldest_pending": waiting.oldest_pending_seconds, "quarantine": quarantine_size(session),
                    "records": {name: session.count(name) for name in sorted(session.definitions.types)},
                    "waiting": {name: len(session.container(name).unindexed()) for name in
                                sorted(session.definitions.types) if name in session.root.containers}}
        found = self.store.read(work)
        jobs = {}
        for status in statuses:
            owed = self._owed(status, now)
            last = next((run for run in status.runs if run.get("outcome") == "ok"), None)
            jobs[status.name] = {"lag": max(0.0, (now - owed).total_seconds()) if owed else 0.0,
                                 "last_success": last["finished_at"].isoformat() if last and last.get(
                                     "finished_at") else None}
        found["jobs"] = jobs
        return found

    def _owed(self, status, now: datetime) -> datetime | None:
        """The first occurrence of a job not yet handled (None: nothing owed before now)."""
        assert self._runner is not None          # figures() made it before asking
        job = self._runner.jobs[status.name]
        after = status.last_occurrence
        if after is None:
            return None                     # never run here yet: not late before its first run
        following = job.cron.next_after(after, status.zone)
        return following if following <= now else None


class RequestTimer:
    """An ASGI middleware timing every request by the route that answered it (its pattern,
    such as /r/{number}, so that the metrics do not grow with every record)."""

    def __init__(self, app, monitoring: Monitoring):
        self.app, self.monitoring = app, monitoring

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None)
            label = scope.get("root_path", "") + path if path is not None else "unmatched"
            self.monitoring.requests.labels(scope["method"], label, str(status[0])).observe(
                time.perf_counter() - started)


class _StoreCollector:
    """The figures of the database, read at each scrape."""

    def __init__(self, monitoring: Monitoring):
        self.monitoring = monitoring

    def describe(self):
        return []

    def collect(self):
        now = datetime.now(UTC)
        store = self.monitoring.store
        figures = self.monitoring.figures(now)
        outbox = GaugeMetricFamily("deskbase_outbox_messages", "Messages of the outbox by state", labels=["state"])
        outbox.add_metric(["pending"], figures["pending"])
        outbox.add_metric(["failed"], figures["failed"])
        yield outbox
        yield GaugeMetricFamily("deskbase_outbox_oldest_pending_seconds", "Age of the oldest message waiting",
                                value=figures["oldest_pending"] or 0)
        yield GaugeMetricFamily("deskbase_mail_quarantine_messages", "Messages held by the mail intake",
                                value=figures["quarantine"])
        lag = GaugeMetricFamily("deskbase_job_lag_seconds", "How far each job is behind its schedule",
                                labels=["job"])
        for name, job in figures["jobs"].items():
            lag.add_metric([name], job["lag"])
        yield lag
        records = GaugeMetricFamily("deskbase_records", "Records of each type", labels=["type"])
        for name, count in figures["records"].items():
            records.add_metric([name], count)
        yield records
        waiting = GaugeMetricFamily("deskbase_records_waiting_to_be_indexed", "Records written and not yet filed "
                                    "in the indexes by an indexer (found by their values meanwhile)", labels=["type"])
        for name, count in figures["waiting"].items():
            waiting.add_metric([name], count)
        yield waiting
        yield CounterMetricFamily("deskbase_records_indexed_after_commit", "Records this process's indexer has "
                                  "filed in the indexes after their commit", value=store.indexer.filed)
        writes = CounterMetricFamily("deskbase_write_conflicts", "Write conflicts of this process: retried, "
                                     "given up after every retry, or ended by a turn alone", labels=["outcome"])
        for outcome in ("retried", "gave_up", "alone"):
            writes.add_metric([outcome], store.conflicts.get(outcome, 0))
        yield writes
        met = CounterMetricFamily("deskbase_write_conflicts_on", "Write conflicts of this process by the class "
                                  "of the object two writers met on (an index's BTree, a bucket, a row lock)",
                                  labels=["object"])
        for name, count in sorted(store.conflicts_on.items()):
            met.add_metric([name], count)
        yield met
