"""A real Active Directory for tests and benchmarks: a Samba AD domain controller
provisioned in a folder of its own, given users and groups offline (straight into its
database, before it starts), then run in the foreground on 127.0.0.1 ports 389 and 636
and stopped by the PID it was started with. It needs Debian's `samba`, `samba-ad-dc` and
`samba-ad-provision` (`make test-services` installs them) and the fixed ports 389 and 636
free. Users are added offline with `-s smb.conf`: `samba-tool user add -H ldaps://…` fails
while only the LDAP service runs. As in a hardened AD, a simple bind over plain `ldap://`
is refused; over LDAPS the certificate made here for 127.0.0.1 is also its CA. `memberOf`
lists direct groups only: nested ones are found with the LDAP_MATCHING_RULE_IN_CHAIN
filter. The test servers are described in docs/development.md."""
from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

REALM = "EXAMPLE.TEST"
DOMAIN = "EXAMPLE"
SUFFIX = "example.test"
BASE_DN = "DC=example,DC=test"
USERS_DN = f"CN=Users,{BASE_DN}"
ADMIN_PASSWORD = "Passw0rd!Admin"
ADMIN_LOGIN = f"{DOMAIN}\\Administrator"
PORTS = (389, 636)


def missing() -> str | None:
    """Why a Samba AD cannot be run here, or None when it can."""
    for program in ("samba", "samba-tool", "openssl"):
        if shutil.which(program) is None and not Path(f"/usr/sbin/{program}").exists():
            return f"`{program}` is not installed: apt-get install samba samba-ad-dc samba-ad-provision (make test-services)"
    if not Path("/usr/share/samba/setup/ad-schema").is_dir():
        return "samba-ad-provision is not installed: apt-get install samba-ad-provision (make test-services)"
    for port in PORTS:
        if listening(port):
            return f"port {port} of 127.0.0.1 is taken (another directory runs): the test directory needs it"
    return None


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class SambaDirectory:
    """One domain controller in `folder`: `provision()`, add users and groups, `start()`, `stop()`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.conf = self.folder / "etc" / "smb.conf"
        self.certificate = self.folder / "tls" / "cert.pem"     # also the CA: give it as `ca_file`
        self.log = self.folder / "samba.log"
        self.process: subprocess.Popen | None = None

    def _run(self, *command: str) -> str:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])}… failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def tool(self, *arguments: str) -> str:
        """`samba-tool` on the stopped directory's database."""
        return self._run("samba-tool", *arguments, "-s", str(self.conf))

    def provision(self) -> "SambaDirectory":
        """A new domain EXAMPLE.TEST serving only LDAP, with a certificate valid for 127.0.0.1."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._run("samba-tool", "domain", "provision", f"--realm={REALM}", f"--domain={DOMAIN}", "--server-role=dc",
                  "--dns-backend=NONE", f"--adminpass={ADMIN_PASSWORD}", "--use-rfc2307",
                  f"--targetdir={self.folder}", "--option=interfaces=lo", "--option=bind interfaces only=yes")
        tls = self.certificate.parent
        tls.mkdir()
        self._run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                  "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(tls / "key.pem"),
                  "-out", str(self.certificate))
        (tls / "key.pem").chmod(0o600)
        lines = []
        for line in self.conf.read_text().splitlines():
            if line.startswith("\tserver services ="):
                line = "\tserver services = ldap"
            lines.append(line)
            if line == "[global]":
                lines += [f"\ttls keyfile = {tls / 'key.pem'}", f"\ttls certfile = {self.certificate}",
                          f"\ttls cafile = {self.certificate}", f"\tpid directory = {self.folder / 'run'}"]
        self.conf.write_text("\n".join(lines) + "\n")
        return self

    def add_user(self, login: str, password: str, *options: str) -> None:
        """A user, with `samba-tool user add` options such as `--mail-address=…`."""
        self.tool("user", "add", login, password, *options)

    def add_group(self, name: str, *members: str) -> None:
        """A group with members (users or groups, which makes nesting)."""
        self.tool("group", "add", name)
        if members:
            self.tool("group", "addmembers", name, ",".join(members))

    def start(self, timeout: float = 60) -> "SambaDirectory":
        """Run samba in the foreground of a child process until LDAPS accepts connections."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(["samba", "-s", str(self.conf), "-i", "--debug-stdout"],
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not listening(636):
            if self.process.poll() is not None:
                raise RuntimeError(f"samba stopped at start ({self.process.returncode}); see {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"samba did not listen on 636 within {timeout:g} s; see {self.log}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        """Stop the samba started here, by its PID (its children follow it)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None
        deadline = time.monotonic() + 10
        while any(listening(port) for port in PORTS) and time.monotonic() < deadline:
            time.sleep(0.1)

    def admin(self):
        """An ldap3 connection bound as the domain's Administrator, for changes while it runs."""
        from ldap3 import Connection, Server, Tls
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.certificate))
        return Connection(Server("ldaps://127.0.0.1", use_ssl=True, tls=tls, connect_timeout=5),
                          ADMIN_LOGIN, ADMIN_PASSWORD, auto_bind=True, receive_timeout=10)


# The people of the test directory. Groups map to roles in the tests' `directory:` section:
# "Desk Supervisors" → supervisor, Dispatch (by DN) → dispatcher, Support → technician;
# Support-L1 is a member of Support, so its members are technicians through nesting.
PASSWORDS = {login: f"{login.capitalize()}!Passw0rd1" for login in
             ("bob", "alice", "carol", "dave", "erin", "frank", "gina", "hugo", "admin", "pat")}
# Passwords SASLprep would change (a superscript two becomes 2, a non-breaking space a
# space): AD compares the bytes typed, so they must be sent as they are.
PASSWORDS.update(kim="Kvadrat\u00b2-Pass1", nora="Non\u00a0breaking-Pass1")
PAT_PRINCIPAL = "patricia.lee@example.test"     # pat's principal name and mail differ from her login
PAT_MAIL = "p.lee@example.test"


def add_example_people(directory: SambaDirectory) -> None:
    """bob (Dispatch, and Support through Support-L1), alice (Desk Supervisors), carol
    (disabled), dave (must change his password), erin (account expired), frank (no group),
    gina and hugo (Support; the sync tests change them while the directory runs); kim and
    nora (Support, passwords beyond ASCII), admin (Support: the login of the local
    administrator), pat (Support; principal name and mail unlike her login, set by
    `finish_example_people` once the directory runs)."""
    def person(login: str, given: str, surname: str, *options: str) -> None:
        directory.add_user(login, PASSWORDS[login], f"--given-name={given}", f"--surname={surname}",
                           f"--mail-address={login}@{SUFFIX}", *options)
    person("bob", "Bob", "Builder", "--telephone-number=+1 555 0100", "--department=Service desk")
    person("alice", "Alice", "Arnaud", "--department=Management")
    person("carol", "Carol", "Chen")
    person("dave", "Dave", "Dumas", "--must-change-at-next-login")
    person("erin", "Erin", "Evans")
    person("frank", "Frank", "Fischer")
    person("gina", "Gina", "Garcia")
    person("hugo", "Hugo", "Huber", "--telephone-number=+1 555 0199")
    person("kim", "Kim", "Kovac")
    person("nora", "Nora", "Nagy")
    person("admin", "Adam", "Minh")
    directory.add_user("pat", PASSWORDS["pat"], "--given-name=Patricia", "--surname=Lee", f"--mail-address={PAT_MAIL}")
    directory.tool("user", "disable", "carol")
    directory.tool("user", "setexpiry", "erin", "--days=0")
    directory.add_group("Support-L1", "bob")
    directory.add_group("Support", "Support-L1", "carol", "dave", "erin", "gina", "hugo", "kim", "nora", "admin",
                        "pat")
    directory.add_group("Dispatch", "bob")
    directory.add_group("Desk Supervisors", "alice")


def finish_example_people(directory: SambaDirectory) -> None:
    """What `samba-tool user add` cannot say, written once the directory runs: pat's
    principal name."""
    from ldap3 import MODIFY_REPLACE
    admin = directory.admin()
    try:
        admin.search(f"CN=Users,{BASE_DN}", "(sAMAccountName=pat)", attributes=["cn"])
        assert admin.modify(admin.response[0]["dn"], {"userPrincipalName": [(MODIFY_REPLACE, [PAT_PRINCIPAL])]}), \
            admin.result
    finally:
        admin.unbind()
