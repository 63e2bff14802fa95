"""A real PostgreSQL for the RelStorage tests and benchmarks: a cluster made with initdb in
a temporary folder, owned by the `postgres` user when run as root (PostgreSQL refuses to
run as root), listening on 127.0.0.1 only with trust authentication, started and stopped
with pg_ctl on its own data folder, never the `main` cluster Debian's package may start.
It needs Debian's `postgresql` (version 15 on Debian 12; `make test-services` installs it)
and RelStorage's driver from pip. The test servers are described in docs/development.md."""
from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PORT = 55432                     # the test cluster's usual port; another free one when it is taken
USER = "postgres"
VERSION_BINARIES = "/usr/lib/postgresql/15/bin"


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl (PostgreSQL 15 first), or None when not installed."""
    candidates = [VERSION_BINARIES, *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def missing() -> str | None:
    """Why a PostgreSQL for RelStorage cannot be run here, or None when it can."""
    if binaries() is None:
        return ("PostgreSQL is not installed (no initdb in /usr/lib/postgresql/15/bin): "
                "apt-get install postgresql (make test-services)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            return "there is no `postgres` user to run PostgreSQL as: apt-get install postgresql"
    for module, package in (("relstorage", "relstorage[postgresql]"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed: pip install -e '.[test]'"
    return None


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster: `start()`, `create_database(name)` → a URI, `stop()`."""

    def __init__(self, folder: Path | None = None, port: int | None = None):
        # Not under pytest's temporary folder: its parents are private to root (0700), and the
        # postgres user must reach the data folder.
        self.folder = Path(folder or tempfile.mkdtemp(prefix="deskbase-postgres-"))
        self.port = port or (PORT if not _listening(PORT) else _free_port())
        self.host = "127.0.0.1"
        self.data = self.folder / "data"
        self.log = self.folder / "log"
        self.bin = binaries() or Path("/usr/lib/postgresql/15/bin")
        self.pid: int | None = None

    def _run(self, *command: str, timeout: float = 120) -> str:
        if os.geteuid() == 0:                     # PostgreSQL refuses to run as root
            command = ("su", USER, "-c", " ".join(shlex.quote(part) for part in command))
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                               f"{self.log_tail()}")
        return done.stdout

    def start(self, timeout: float = 60.0) -> "PostgresServer":
        """initdb (trust authentication, user `postgres`), then pg_ctl start; waits until it accepts."""
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.folder, USER)
        if not (self.data / "PG_VERSION").exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "-A", "trust",
                      "--no-sync", "-E", "UTF8")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", str(int(timeout)), "start", timeout=timeout + 10)
        pid_file = self.data / "postmaster.pid"
        self.pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not listen on {self.port} within {timeout:g} s: {self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """pg_ctl stop on the data folder it started (fast: open sessions are ended)."""
        if self.pid is None:
            return
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.pid = None

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def _execute(self, statement: str) -> None:
        import psycopg2
        connection = psycopg2.connect(host=self.host, port=self.port, user=USER, dbname="postgres")
        try:
            connection.autocommit = True          # CREATE/DROP DATABASE refuse a transaction
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def create_database(self, name: str) -> str:
        """A new, empty database; its RelStorage URI without options (see `PostgresDatabase.uri`)."""
        self._execute(f'CREATE DATABASE "{name}"')
        return f"postgres://{USER}@{self.host}:{self.port}/{name}"

    def drop_database(self, name: str) -> None:
        """Drop a database, ending the sessions still open on it (PostgreSQL 13 and later)."""
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PostgresDatabase:
    """One database of the server, as several processes would open it."""

    def __init__(self, server: PostgresServer, name: str, folder: Path):
        self.server = server
        self.name = name
        self.folder = Path(folder)
        self.base_uri = server.create_database(name)

    def uri(self, process: str = "main", *, keep_history: bool = False) -> str:
        """The URI a process (`process` names it) opens: blobs in the database, its own blob
        cache folder, so what one process sees of another's files came through PostgreSQL."""
        cache = self.folder / f"blobs-{process}"
        return (f"{self.base_uri}?blob_dir={cache}&shared_blob_dir=false"
                f"&keep_history={'true' if keep_history else 'false'}")

    def drop(self) -> None:
        self.server.drop_database(self.name)
