"""Web page benchmark: the server time of list pages, of a ticket's page and of the
header's search over HTTP on loopback, with N tickets in a FileStorage, signed in as a
supervisor (every ticket in scope) and as a technician (a scope ANDed into every query). The raw baseline, measured in the same run
over the same HTTP stack, is a page of the same size served as bytes by a bare Starlette
route: what HTTP, uvicorn and the client cost before the engine does anything. The ratio
is baseline ÷ engine.

    .venv/bin/python bench/web.py --records 100000 --requests 200
"""
from __future__ import annotations

import argparse
import random
import re
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


def signed_in(url: str, login: str, password: str = "demo-password") -> httpx.Client:
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = client.post("/login", data={"login": login, "password": password, "csrf": token})
    assert answer.status_code == 303, answer.text[:300]
    return client


def timed(client: httpx.Client, path: str, count: int) -> list[float]:
    client.get(path)                                       # warm the caches once
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get(path)
        samples.append(time.perf_counter() - started)
        assert answer.status_code == 200, (path, answer.status_code)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="tickets in the database")
    parser.add_argument("--requests", type=int, default=100, help="requests timed per scenario")
    parser.add_argument("--definitions", default=str(Path(__file__).resolve().parents[1] / "definitions"))
    parser.add_argument("--folder", default=None, help="keep the FileStorage here (reused when present)")
    args = parser.parse_args()

    folder = Path(args.folder or tempfile.mkdtemp(prefix="deskbase-bench-web-"))
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"file://{folder}/Data.fs?blobstorage_dir={folder}/blobs"
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
                    store.bulk_create("ticket", rows, batch=5000)
                    done += size
                    print(f"  {done:,} / {args.records:,} tickets", flush=True)
            print(f"built in {time.perf_counter() - started:.0f} s", flush=True)
        store = open_store(uri, definitions)
        store.db.setCacheSize(2_000_000)
        server, url = serve(create_app(store))
        results = []
        for login in ("cmartin", "sbernard"):
            client = signed_in(url, login)
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
                shown = re.search(r"of ([\d,]+)", page.text)
                results.append((login, name, shown.group(1) if shown else "0", engine, bare))
            client.close()
        server.should_exit = True
        store.close()
        print(f"\n{args.records:,} tickets; {args.requests} requests per line; times in ms over HTTP on loopback")
        print(f"{'as':<9} {'list':<28} {'matches':>9} {'p50':>7} {'p95':>7} {'bare p95':>9} {'ratio':>6}")
        for login, name, matches, engine, bare in results:
            p95, bare_p95 = percentile(engine, 0.95) * 1000, percentile(bare, 0.95) * 1000
            print(f"{login:<9} {name:<28} {matches:>9} {statistics.median(engine) * 1000:7.1f} {p95:7.1f} "
                  f"{bare_p95:9.2f} {bare_p95 / p95:6.2f}")
    finally:
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
