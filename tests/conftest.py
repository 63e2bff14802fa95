"""Fixtures shared by every layer's tests: definitions folders and stores, and the real
servers tests talk to (an SMTP server with aiosmtpd, an HTTP SMS gateway with http.server),
on loopback in this process, each stopped by its fixture. Outside CI a missing aiosmtpd
skips its tests with a reason; under CI=true it fails."""
from __future__ import annotations

import email
import importlib.util
import json
import shutil
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from servers.required import skip_or_fail

from deskbase.objects.definitions import load_definitions
from deskbase.objects.model import Definitions
from deskbase.objects.store import Store
from deskbase.rules.application import load_application, load_application_demo, open_store

TESTS = Path(__file__).parent
TASKS_APP = TESTS / "objects" / "tasks_app"
NOTES_APP = TESTS / "rules" / "notes_app"
HELPDESK = TESTS.parent / "definitions"


@pytest.fixture
def tasks_folder(tmp_path: Path) -> Path:
    """A private copy of the small test application, free to edit."""
    folder = tmp_path / "definitions"
    shutil.copytree(TASKS_APP, folder)
    return folder


@pytest.fixture
def tasks_definitions(tasks_folder: Path):
    return load_definitions(tasks_folder)


@pytest.fixture
def store(tasks_definitions):
    """An in-memory store of the test application."""
    opened = Store.open("memory://", tasks_definitions)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def notes_definitions():
    """The rules layer's small test application, with its identity and access sections."""
    return load_application(NOTES_APP)


@cache
def shipped_definitions() -> Definitions:
    """The shipped helpdesk and billing definitions, read once for the session."""
    return load_application(HELPDESK)


@pytest.fixture(scope="session")
def helpdesk_definitions():
    """The shipped helpdesk and billing definitions, with their identity and access rules."""
    return shipped_definitions()


@pytest.fixture(scope="session")
def app_store():
    """`with app_store() as store:` an in-memory store of the shipped helpdesk, its rules
    installed, closed when the block ends. `app_store(demo=True)` loads the shipped demo
    (`demo=folder`, another demo folder). Another application is given by its definitions or
    its folder (`app_store(folder, overlays=[...])`). The factory is session-scoped so that
    fixtures of every scope can use it; each store lives as long as its `with` block."""
    @contextmanager
    def opened(app: Definitions | str | Path | None = None, *, overlays: Sequence[str | Path] = (),
               demo: bool | str | Path = False) -> Iterator[Store]:
        if isinstance(app, Definitions):
            assert not overlays, "overlays go with a definitions folder"
            definitions = app
        elif app is None and not overlays:
            definitions = shipped_definitions()
        else:
            definitions = load_application(HELPDESK if app is None else app, overlays)
        with open_store("memory://", definitions) as store:
            if demo:
                load_application_demo(store, HELPDESK / "demo" if demo is True else demo)
            yield store
    return opened


@pytest.fixture(scope="module")
def demo_store(app_store):
    """The shipped application with its demo loaded, shared by the tests of a module."""
    with app_store(demo=True) as store:
        yield store


@pytest.fixture
def file_uri(tmp_path: Path) -> str:
    folder = tmp_path / "var"
    return f"file://{folder}/Data.fs?blobstorage_dir={folder}/blobs"


@pytest.fixture
def notes_store(app_store, notes_definitions):
    """An in-memory store of the small application with access rules, rules installed."""
    with app_store(notes_definitions) as opened:
        yield opened


@pytest.fixture
def mail_store(tasks_definitions):
    """A store of the test application whose settings give the Message-ID domain."""
    import dataclasses

    from deskbase.rules.messages.outbox import ensure_outbox
    settings = {**tasks_definitions.settings, "mail": {"domain": "desk.example.test"}}
    opened = Store.open("memory://", dataclasses.replace(tasks_definitions, settings=settings))
    ensure_outbox(opened)
    yield opened
    opened.close()


# -- real servers ----------------------------------------------------------------------------

def free_port() -> int:
    """A loopback port nobody listens on (now): where a server is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    """A loopback port with no server behind it."""
    return free_port()


# -- SMTP ------------------------------------------------------------------------------------

@dataclass
class ReceivedMail:
    """One message as the SMTP server received it: envelope and parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


class RecordingHandler:
    """Keeps every message received; `data_reply` / `rcpt_reply` make the server refuse."""

    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []
        self.data_reply: str | None = None      # e.g. "451 4.3.0 try later", "554 5.6.0 rejected"
        self.rcpt_reply: str | None = None      # e.g. "550 5.1.1 no such mailbox"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        raw = envelope.original_content or envelope.content
        self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos),
                                          email.message_from_bytes(raw, policy=default_policy), raw))
        return "250 2.0.0 queued"


class SmtpServer:
    """A real SMTP server on 127.0.0.1 that can be stopped and started again on its port."""

    def __init__(self, port: int | None = None):
        self.handler = RecordingHandler()
        self.port = port or 0
        self._controller = None

    @property
    def received(self) -> list[ReceivedMail]:
        return self.handler.received

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> "SmtpServer":
        from aiosmtpd.controller import Controller

        class LoopbackController(Controller):
            # aiosmtpd 1.4 connects to the configured port once started; with port 0 that is
            # not the port the system chose, so read it from the listening socket first.
            def _trigger_server(self):
                self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        controller = LoopbackController(self.handler, hostname="127.0.0.1", port=self.port)
        controller.start()
        self.port = controller.port
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def _need_aiosmtpd() -> None:
    if importlib.util.find_spec("aiosmtpd") is None:
        skip_or_fail("aiosmtpd is not installed: pip install -e '.[test]'")


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running SMTP server that records what it receives."""
    _need_aiosmtpd()
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server_later() -> Iterator[SmtpServer]:
    """An SMTP server not yet started, on a port that nobody listens on until `.start()`."""
    _need_aiosmtpd()
    server = SmtpServer(free_port())
    yield server
    server.stop()


# -- HTTP SMS gateway --------------------------------------------------------------------------

@dataclass
class GatewayRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class SmsGateway:
    """A real HTTP server standing in for an SMS provider; `replies` are (status, body) to
    answer in turn, then 200."""

    url: str
    requests: list[GatewayRequest] = field(default_factory=list)
    replies: list[tuple[int, str]] = field(default_factory=list)
    delay: float = 0.0


@pytest.fixture
def sms_gateway() -> Iterator[SmsGateway]:
    """A running HTTP SMS gateway on 127.0.0.1 recording each JSON request."""
    gateway = SmsGateway(url="")
    answered = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            if gateway.delay:
                answered.wait(gateway.delay)
            gateway.requests.append(GatewayRequest(self.command, self.path, dict(self.headers), body))
            status, text = gateway.replies.pop(0) if gateway.replies else (200, '{"status": "accepted"}')
            payload = text.encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):     # the client gave up waiting: that test's point
                pass

        do_POST = do_PUT = _handle

        def log_message(self, *args: Any) -> None:      # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}/send"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield gateway
    answered.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


# -- Active Directory (Samba AD DC) ------------------------------------------------------------

@pytest.fixture(scope="session")
def samba_directory(tmp_path_factory):
    """A real Samba AD domain controller on 127.0.0.1 (389, 636) with the people of
    tests/servers/samba.py, started once for the session and stopped by its PID. Outside CI
    a machine without Samba skips these tests with a reason; under CI=true it fails."""
    from servers.samba import SambaDirectory, add_example_people, finish_example_people, missing
    reason = missing()
    if reason:
        skip_or_fail(reason)
    directory = SambaDirectory(tmp_path_factory.mktemp("samba") / "dc").provision()
    add_example_people(directory)
    directory.start()
    finish_example_people(directory)
    yield directory
    directory.stop()


# -- IMAP: Dovecot -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def dovecot() -> Iterator[Any]:
    """A real Dovecot IMAP server (tests/servers/dovecot.py) on a free loopback port, one
    account; each test works in a folder of its own (`imap_folder`)."""
    from servers.dovecot import Dovecot, dovecot_binary
    if importlib.util.find_spec("imapclient") is None:
        skip_or_fail("imapclient is not installed: pip install -e .")
    if dovecot_binary() is None:
        skip_or_fail("dovecot is not installed: apt-get install -y dovecot-imapd (make test-services)")
    # Not under pytest's temporary folder: its parents are private to root (0700), and
    # Dovecot's own users must read the account file.
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="deskbase-dovecot-"))
    server = Dovecot(folder).start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def imap_folder(dovecot, request) -> Iterator[str]:
    """A new, empty folder of the Dovecot account for one test; removed after it."""
    import re as _re
    name = "t_" + _re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:60]
    client = dovecot.client()
    if client.folder_exists(name):
        client.delete_folder(name)
    client.create_folder(name)
    client.logout()
    yield name
    client = dovecot.client()
    for folder in (name, name + "_done"):
        if client.folder_exists(folder):
            client.delete_folder(folder)
    client.logout()


# -- PostgreSQL for RelStorage ---------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A real PostgreSQL (tests/servers/postgres.py) made with initdb in a temporary folder, on
    127.0.0.1:55432 (a free port when that one is taken), started once for the session and
    stopped with pg_ctl on the data folder it started. Outside CI a machine without PostgreSQL
    or RelStorage skips these tests with a reason; under CI=true it fails."""
    from servers.postgres import PostgresServer, missing
    reason = missing()
    if reason:
        skip_or_fail(reason)
    server = PostgresServer().start()
    yield server
    server.stop()
    server.remove()


@pytest.fixture
def postgres_database(postgres_server, tmp_path, request) -> Iterator[Any]:
    """A new, empty database of that server for one test, dropped after it; `.uri(process)` is
    the RelStorage URI one process opens (blobs in the database, a blob cache of its own)."""
    import re as _re
    import secrets

    from servers.postgres import PostgresDatabase
    name = "t_" + _re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + "_" + secrets.token_hex(3)
    database = PostgresDatabase(postgres_server, name, tmp_path)
    yield database
    database.drop()
