"""Web page benchmark: the server time of list pages, of a ticket's page, of the
header's search and of the home page (its lists counted, its charts drawn) over HTTP on loopback, with N tickets in a FileStorage, signed in as a
supervisor (every ticket in scope) and as a technician (a scope ANDed into every query). The raw baseline, measured in the same run
over the same HTTP stack, is a page of the same size served as bytes by a bare Starlette
route: what HTTP, uvicorn and the client cost before the engine does anything. The ratio
is baseline ÷ engine. Each page is also timed in process (Starlette's test client: the
engine and the template, no socket).

It also reports how building the data went (records/s of each part, to see whether it
stays flat as the data grows), the database's size per ticket, a cold start (opening the
database, then the first list page) and the serving process's peak memory. Build once
with `--folder`, then run again on the same folder: the second run only serves, so its
peak memory is a serving process's, with the cache limited as a deployment would
(`--cache-mb`, the connection cache's target in bytes).

    .venv/bin/python bench/web.py --records 100000 --requests 200
    .venv/bin/python bench/web.py --records 1000000 --folder /tmp/m --requests 0   # build only
    .venv/bin/python bench/web.py --records 1000000 --folder /tmp/m --cache-mb 1200
    .venv/bin/python bench/web.py --records 1000000 --folder /tmp/m --cache-mb 500 --charts-fresh 0

The home page's charts are drawn from figures kept for a minute, as served by default;
`--charts-fresh 0` works them out for every page (what the first page after a minute costs).
"""
from __future__ import annotations

import argparse
import asyncio
import random
import re
import resource
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx  # noqa: E402
import uvicorn  # noqa: E402
from engine import make_row, percentile, prepare_targets  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import HTMLResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from deskbase.objects.store import Store  # noqa: E402
from deskbase.rules.access.identity import identity_of  # noqa: E402
from deskbase.rules.application import load_application, open_store  # noqa: E402
from deskbase.views.app import create_app  # noqa: E402

SCENARIOS = {
    "open tickets, default sort": "/v/open_tickets",
    "open tickets, newest first": "/v/open_tickets?sort=-id",
    "open tickets, page 40": "/v/open_tickets?sort=-id&page=40",
    "urgent, ad-hoc filter": "/v/open_tickets?f=%7Bpriority%3A%20urgent%7D",
    "full text, 1 word": "/v/open_tickets?q=imprimante",
    "search, a word start": "/search?q=impri",
    "search, two word starts": "/search?q=impri quai",
    "a ticket's page": "/r/{ticket}",
    "home page": "/",
}


def serve(app) -> tuple[uvicorn.Server, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def signed_in(url: str, login: str, password: str = "demo-password", client=None) -> httpx.Client:
    client = client or httpx.Client(base_url=url, follow_redirects=False, timeout=60)
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = client.post("/login", data={"login": login, "password": password, "csrf": token})
    assert answer.status_code == 303, answer.text[:300]
    return client


def timed(client: httpx.Client, path: str, count: int) -> list[float]:
    if not count:
        return [0.0]
    client.get(path)                                       # warm the caches once
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get(path)
        samples.append(time.perf_counter() - started)
        assert answer.status_code == 200, (path, answer.status_code)
    return samples


class InProcess:
    """A signed-in client calling the application in this process (ASGI, no socket): what
    a page costs the engine and its template alone."""

    def __init__(self, app, login: str):
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                        follow_redirects=False, timeout=60)
        page = self.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        answer = self.loop.run_until_complete(self.client.post(
            "/login", data={"login": login, "password": "demo-password", "csrf": token}))
        assert answer.status_code == 303, answer.text[:300]

    def get(self, path: str):
        return self.loop.run_until_complete(self.client.get(path))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="tickets in the database")
    parser.add_argument("--requests", type=int, default=100, help="requests timed per scenario")
    parser.add_argument("--definitions", default=str(Path(__file__).resolve().parents[1] / "definitions"))
    parser.add_argument("--folder", default=None, help="keep the FileStorage here (reused when present)")
    parser.add_argument("--charts-fresh", type=float, default=60.0,
                        help="seconds a home page's charts are drawn from figures kept (0: worked out for each page)")
    parser.add_argument("--cache-mb", type=int, default=0,
                        help="the connection cache's target in MB (0: the store's default of 200,000 objects)")
    args = parser.parse_args()

    folder = Path(args.folder or tempfile.mkdtemp(prefix="deskbase-bench-web-"))
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"file://{folder}/Data.fs?blobstorage_dir={folder}/blobs"
    if args.cache_mb:
        uri += f"&connection_cache_size=10000000&connection_cache_size_bytes={args.cache_mb * 1024 * 1024}"
    definitions = load_application(args.definitions)
    try:
        if not (folder / "Data.fs").exists():
            started = time.perf_counter()
            with Store.open(uri, definitions) as store:     # built without the rules' hooks: faster, same data
                targets = prepare_targets(store, args.definitions)
                typedef = store.definitions.type("ticket")
                rng = random.Random(11)
                done = 0
                while done < args.records:
                    size = min(20_000, args.records - done)
                    rows = store.read(lambda s: [make_row(s, typedef, rng, targets) for _ in range(size)])
                    part = time.perf_counter()
                    store.bulk_create("ticket", rows, batch=5000)
                    done += size
                    print(f"  {done:,} / {args.records:,} tickets, this part at "
                          f"{size / (time.perf_counter() - part):,.0f} tickets/s", flush=True)
            print(f"built in {time.perf_counter() - started:.0f} s", flush=True)
        size = (folder / "Data.fs").stat().st_size
        if args.requests == 0:
            print(f"database: {size / 1e9:.2f} GB")
            return
        started = time.perf_counter()
        store = open_store(uri, definitions)
        if not args.cache_mb:
            store.db.setCacheSize(2_000_000)
        opened = time.perf_counter() - started
        app = create_app(store, charts_fresh=args.charts_fresh)
        server, url = serve(app)
        results = []
        first_page = None
        for login in ("cmartin", "sbernard"):
            client = signed_in(url, login)
            inside = InProcess(app, login)
            if first_page is None:
                began = time.perf_counter()
                assert client.get("/v/open_tickets").status_code == 200
                first_page = time.perf_counter() - began
            who = identity_of(store, login)
            ticket = store.read(lambda s: s.query("ticket", sort="-id", limit=1).records[0].number, identity=who)
            for name, path in SCENARIOS.items():
                path = path.format(ticket=ticket)
                page = client.get(path)
                bare_server, bare_url = serve(Starlette(routes=[Route("/page", lambda r, body=page.text:
                                                                      HTMLResponse(body))]))
                with httpx.Client(base_url=bare_url) as bare_client:
                    bare = timed(bare_client, "/page", args.requests)
                bare_server.should_exit = True
                engine = timed(client, path, args.requests)
                in_process = timed(inside, path, args.requests)
                shown = re.search(r"of ([\d,]+)", page.text)
                results.append((login, name, shown.group(1) if shown else "0", engine, bare, in_process))
            client.close()
            inside.close()
        records = store.read(lambda s: s.count("ticket"))
        server.should_exit = True
        store.close()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\n{args.records:,} tickets; {args.requests} requests per line; times in ms over HTTP on loopback, "
              "and in process (no socket)")
        print(f"{'as':<9} {'list':<28} {'matches':>9} {'p50':>7} {'p95':>7} {'bare p95':>9} {'ratio':>6} "
              f"{'in-process p95':>15}")
        for login, name, matches, engine, bare, in_process in results:
            p95, bare_p95 = percentile(engine, 0.95) * 1000, percentile(bare, 0.95) * 1000
            print(f"{login:<9} {name:<28} {matches:>9} {statistics.median(engine) * 1000:7.1f} {p95:7.1f} "
                  f"{bare_p95:9.2f} {bare_p95 / p95:6.2f} {percentile(in_process, 0.95) * 1000:15.1f}")
        print(f"\ndatabase: {size / 1e9:.2f} GB, {size / max(records, 1):,.0f} bytes per ticket "
              f"({records:,} tickets, with the demo data)")
        print(f"cold start: database opened in {opened:.1f} s, first list page in {first_page * 1000:.0f} ms")
        print(f"serving process: peak memory {peak:,.0f} MB"
              + (f" (connection cache target {args.cache_mb:,} MB)" if args.cache_mb else
                 " (connection cache 2,000,000 objects)"))
    finally:
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
