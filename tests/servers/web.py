"""The web application served by uvicorn in a thread of the test process, on loopback: what
the browser tests drive and what the concurrent clients of the load tests call."""
from __future__ import annotations

import socket
import threading
import time


class LiveServer:
    """The web application served by uvicorn in a thread of this process."""

    def __init__(self, store) -> None:
        import uvicorn

        from deskbase.views.app import create_app
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = store
        config = uvicorn.Config(create_app(store), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the web server did not start within 20 s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def answers(url: str) -> bool:
    """Whether a server answers 200 at `url` (False while it is not listening yet)."""
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False
