"""A real Dovecot IMAP server for tests and benchmarks: its own configuration in a
temporary folder, on a free loopback port, started with `dovecot -c` (it daemonizes) and
stopped by the same configuration, never by name. It needs Debian's `dovecot-imapd`
(`make test-services` installs it) and root: the mail folder is handed to the `dovecot`
user, and the folder must be readable by Dovecot's own users. One account, plain-text
login without TLS (loopback only); tests put messages in with IMAP APPEND. Dovecot's
configuration parser wants each `{` block on lines of its own, as below. The test servers
are described in docs/development.md."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

USER = "support@example.test"
PASSWORD = "secret"

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={dir}/mail/%u
}}
mail_location = maildir:~/Maildir
first_valid_uid = 0
"""


def dovecot_binary() -> str | None:
    """Where the dovecot binary is, or None when it is not installed."""
    return shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Dovecot:
    """One Dovecot instance with one account (`USER` / `PASSWORD`)."""

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = Path(folder)
        self.port = port or _free_port()
        self.host = "127.0.0.1"
        self.user, self.password = USER, PASSWORD
        self.config = self.folder / "dovecot.conf"
        self.binary = dovecot_binary() or "dovecot"

    def start(self, timeout: float = 15.0) -> "Dovecot":
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        for name in ("run", "state", "mail"):
            (self.folder / name).mkdir(exist_ok=True)
        shutil.chown(self.folder / "mail", "dovecot", "dovecot")
        (self.folder / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        self.config.write_text(_CONFIG.format(dir=self.folder, port=self.port))
        # It daemonizes: its output goes to a file, so no pipe is left open behind it.
        with open(self.folder / "start.log", "wb") as output:
            subprocess.run([self.binary, "-c", str(self.config)], check=True, stdin=subprocess.DEVNULL,
                           stdout=output, stderr=output, timeout=30)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as connection:
                    if connection.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen on {self.port} within {timeout:g} s: {self.log()}")

    def stop(self) -> None:
        subprocess.run([self.binary, "-c", str(self.config), "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)

    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def client(self):
        """A logged-in IMAPClient for the test's own reads and APPENDs."""
        from imapclient import IMAPClient
        client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, folder: str, *messages: bytes) -> None:
        """Put messages in a folder, as a mail server delivering them would."""
        client = self.client()
        for raw in messages:
            client.append(folder, raw)
        client.logout()


def new_mail(subject="Printer broken", body="The printer on floor 2 is broken.", sender="ana@client.example",
             attachment: bytes | None = None, **headers) -> bytes:
    """A plain message as a person's mail program sends it (`In_Reply_To="…"` adds headers)."""
    from email.message import EmailMessage
    from email.utils import make_msgid
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "inbox@example.test"
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="client.example")
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    if attachment is not None:
        mail.add_attachment(attachment, maintype="application", subtype="pdf", filename="scan.pdf")
    return bytes(mail)
