"""Signing in through a real Active Directory (Samba AD DC, tests/servers/samba.py): the web
sign-in gives the roles of a person's groups, nested ones included; refusals read the same
whether the login exists or not, and say why only once the password was right; filter
injection matches nobody; a dead server is skipped, all dead leaves the local administrator
in; the sync job and the `deskbase directory` commands keep accounts current."""
from __future__ import annotations

import dataclasses
import io
import logging
import re
import shutil
from pathlib import Path
from types import MappingProxyType

import pytest
from starlette.testclient import TestClient

from deskbase.cli import main
from deskbase.connectors import active_directory
from deskbase.connectors.active_directory import (
    DISABLED,
    EXPIRED,
    MUST_CHANGE,
    NO_ACCESS,
    UNREACHABLE,
    ActiveDirectory,
    Person,
    save_person,
    sync_directory,
)
from deskbase.connectors.sign_in import sign_in
from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.access.directory import directory_settings
from deskbase.rules.access.identity import (
    DIRECTORY,
    WRONG_LOGIN,
    LoginRefused,
    authenticate,
    create_account,
    find_account,
    list_accounts,
    update_account,
)
from deskbase.rules.application import load_application, open_store
from deskbase.views.app import create_app

HELPDESK = Path(__file__).parents[2] / "definitions"
ADMIN_PASSWORD = "local admin password"
SERVICE_ENV = {"DESKBASE_TEST_AD_USER": "EXAMPLE\\Administrator", "DESKBASE_TEST_AD_PASSWORD": "Passw0rd!Admin"}

DIRECTORY_YAML = """
directory:
  servers: [ldaps://127.0.0.1:636]
  security: ldaps
  ca_file: {ca_file}
  base_dn: DC=example,DC=test
  login_attribute: userPrincipalName
  upn_suffix: example.test
  bind_dn_env: DESKBASE_TEST_AD_USER
  password_env: DESKBASE_TEST_AD_PASSWORD
  roles:
    Desk Supervisors: supervisor
    CN=Dispatch,CN=Users,DC=example,DC=test: dispatcher
    Support: [technician]
  default_role: null
  local_only: [admin]
  connect_timeout: 2
  response_timeout: 5
  page_size: 2
"""


@pytest.fixture(autouse=True)
def service_account(monkeypatch):
    for name, value in SERVICE_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def directory_folder(samba_directory, tmp_path_factory) -> Path:
    """The shipped definitions plus a `directory:` section for the test directory."""
    folder = tmp_path_factory.mktemp("with_directory") / "definitions"
    shutil.copytree(HELPDESK, folder)
    (folder / "directory.yaml").write_text(DIRECTORY_YAML.format(ca_file=samba_directory.certificate))
    return folder


@pytest.fixture(scope="module")
def directory_definitions(directory_folder):
    return load_application(directory_folder)


def open_with(definitions, **changes):
    """A store whose `directory:` settings differ by `changes`, with the local administrator."""
    settings = dataclasses.replace(directory_settings(definitions), **changes)
    changed = dataclasses.replace(definitions, extensions=MappingProxyType({**definitions.extensions,
                                                                            "directory": settings}))
    store = open_store("memory://", changed)
    create_account(store, "admin", name="Administrator", password=ADMIN_PASSWORD, roles=["administrator"])
    return store


@pytest.fixture
def store(directory_definitions):
    opened = open_with(directory_definitions)
    yield opened
    opened.close()


def web(store) -> TestClient:
    return TestClient(create_app(store), follow_redirects=False)


def web_sign_in(client: TestClient, login: str, password: str):
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"login": login, "password": password, "csrf": csrf, "next": "/"})


def refusal(store, login: str, password: str) -> str:
    with pytest.raises(LoginRefused) as refused:
        sign_in(store, login, password)
    return refused.value.reason


# -- signing in ----------------------------------------------------------------------------

def test_bob_signs_in_on_the_web_with_the_roles_of_his_groups_nested_included(store, samba_directory):
    from servers.samba import PASSWORDS
    with web(store) as client:
        response = web_sign_in(client, "bob", PASSWORDS["bob"])
        assert response.status_code == 303
        assert client.get("/").status_code == 200
    bob = find_account(store, "bob")
    # Dispatch directly; technician through Support-L1, a member of Support
    assert set(bob.roles) == {"dispatcher", "technician"}
    assert (bob.name, bob.email, bob.phone, bob.department) == ("Bob Builder", "bob@example.test", "+1 555 0100",
                                                                 "Service desk")
    assert bob.source == DIRECTORY and bob.active and bob.password_hash == ""


def test_the_full_principal_name_and_the_short_login_are_the_same_account(store):
    from servers.samba import PASSWORDS
    assert sign_in(store, "alice@example.test", PASSWORDS["alice"]).id == "alice"
    assert sign_in(store, "alice", PASSWORDS["alice"]).roles == ("supervisor",)
    assert [a.login for a in list_accounts(store)] == ["admin", "alice"]


def test_a_wrong_password_reads_exactly_like_an_unknown_login(store):
    with web(store) as client:
        wrong = web_sign_in(client, "bob", "not his password")
        unknown = web_sign_in(client, "nobody", "not his password")
    assert wrong.status_code == unknown.status_code == 401
    for response in (wrong, unknown):
        assert WRONG_LOGIN in response.text
        assert not re.search(r"\b(52e|525|data)\b", re.sub(r"<[^>]+>", " ", response.text))   # what it says
    assert find_account(store, "bob") is None


@pytest.mark.parametrize("login, sentence", [("carol", DISABLED), ("erin", EXPIRED), ("dave", MUST_CHANGE)])
def test_disabled_expired_or_must_change_is_told_only_with_the_right_password(store, login, sentence):
    from servers.samba import PASSWORDS
    with web(store) as client:
        told = web_sign_in(client, login, PASSWORDS[login])
        guessed = web_sign_in(client, login, "a wrong guess")
    assert told.status_code == 401 and sentence in told.text
    assert not re.search(r"\b(533|701|773)\b", told.text)
    assert WRONG_LOGIN in guessed.text and sentence not in guessed.text


@pytest.mark.parametrize("login", ["*)(uid=*", "bob*", "*", "b*b", "*)(|(sAMAccountName=*"])
@pytest.mark.parametrize("service", [True, False], ids=["service account", "direct bind"])
def test_filter_characters_in_a_login_match_nobody(directory_definitions, login, service):
    from servers.samba import PASSWORDS
    changes = {} if service else {"bind_dn_env": None, "password_env": None}
    store = open_with(directory_definitions, **changes)
    try:
        assert refusal(store, login, PASSWORDS["bob"]) == WRONG_LOGIN
        assert [a.login for a in list_accounts(store)] == ["admin"]
    finally:
        store.close()


def test_an_empty_password_never_signs_in(store):
    # AD takes a simple bind with a name and no password as an anonymous bind: a success
    assert refusal(store, "bob", "") == WRONG_LOGIN


def test_a_person_in_no_mapped_group_has_no_access_unless_there_is_a_default_role(directory_definitions):
    from servers.samba import PASSWORDS
    store = open_with(directory_definitions)
    assert refusal(store, "frank", PASSWORDS["frank"]) == NO_ACCESS
    assert find_account(store, "frank").active is False
    store.close()
    store = open_with(directory_definitions, default_role="customer_user")
    assert sign_in(store, "frank", PASSWORDS["frank"]).roles == ("customer_user",)
    store.close()


def test_without_a_service_account_people_bind_with_their_principal_name(directory_definitions):
    from servers.samba import PASSWORDS
    store = open_with(directory_definitions, bind_dn_env=None, password_env=None)
    assert set(sign_in(store, "bob", PASSWORDS["bob"]).roles) == {"dispatcher", "technician"}
    assert refusal(store, "bob", "wrong") == refusal(store, "nobody", "wrong") == WRONG_LOGIN
    store.close()


def test_sam_account_names_with_or_without_the_domain(directory_definitions):
    from servers.samba import PASSWORDS
    store = open_with(directory_definitions, login_attribute="sAMAccountName", domain="EXAMPLE",
                      bind_dn_env=None, password_env=None)
    assert sign_in(store, "bob", PASSWORDS["bob"]).id == "bob"
    assert sign_in(store, "EXAMPLE\\bob", PASSWORDS["bob"]).id == "bob"
    store.close()


def test_starttls_on_the_plain_port(directory_definitions):
    from servers.samba import PASSWORDS
    store = open_with(directory_definitions, security="starttls", servers=("ldap://127.0.0.1:389",))
    assert sign_in(store, "alice", PASSWORDS["alice"]).roles == ("supervisor",)
    store.close()


def test_the_next_server_is_used_when_the_first_is_down(directory_definitions):
    from servers.samba import PASSWORDS
    store = open_with(directory_definitions, servers=("ldaps://127.0.0.1:1", "ldaps://127.0.0.1:636"))
    assert sign_in(store, "bob", PASSWORDS["bob"]).id == "bob"
    store.close()


def test_with_every_server_down_the_administrator_still_signs_in_and_bob_is_told(directory_definitions):
    from servers.samba import PASSWORDS
    store = open_with(directory_definitions, servers=("ldaps://127.0.0.1:1", "ldaps://127.0.0.1:2"))
    with web(store) as client:
        for _ in range(6):          # not counted as failed guesses: no password was checked
            bob = web_sign_in(client, "bob", PASSWORDS["bob"])
            assert bob.status_code == 503 and UNREACHABLE in bob.text
        assert web_sign_in(client, "admin", ADMIN_PASSWORD).status_code == 303
    store.close()


def test_a_certificate_not_trusted_is_not_talked_to(directory_definitions, caplog):
    from servers.samba import PASSWORDS
    store = open_with(directory_definitions, ca_file=None)      # the system's authorities only
    assert refusal(store, "bob", PASSWORDS["bob"]) == UNREACHABLE
    store.close()
    store = open_with(directory_definitions, ca_file=None, skip_certificate_check=True)
    active_directory._WARNED.clear()         # warned once per process: make this test the first
    with caplog.at_level(logging.WARNING, logger="deskbase.directory"):
        assert sign_in(store, "bob", PASSWORDS["bob"]).id == "bob"
    assert "not checked" in caplog.text
    store.close()


def test_a_directory_account_changes_no_password_here(store):
    from servers.samba import PASSWORDS
    with web(store) as client:
        web_sign_in(client, "bob", PASSWORDS["bob"])
        page = client.get("/account")
        assert "Your password is managed by the directory." in page.text and 'name="new"' not in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)
        changed = client.post("/account", data={"csrf": csrf, "current": PASSWORDS["bob"],
                                                "new": "a local password", "again": "a local password"})
        assert changed.status_code == 409
    with pytest.raises(LoginRefused):
        authenticate(store, "bob", PASSWORDS["bob"])


def test_the_local_only_administrator_never_asks_the_directory(store):
    assert sign_in(store, "admin", ADMIN_PASSWORD).superuser
    assert refusal(store, "admin", "wrong password") == WRONG_LOGIN


# -- which account a login reaches -------------------------------------------------------------

@pytest.mark.parametrize("login", ["admin@example.test", "EXAMPLE\\admin", "ADMIN@EXAMPLE.TEST"])
@pytest.mark.parametrize("mode", ["principal name", "account name, no service account"])
def test_the_directory_admin_never_takes_over_the_local_only_administrator(directory_definitions, login, mode):
    from servers.samba import PASSWORDS
    changes = ({} if mode == "principal name" else
               {"login_attribute": "sAMAccountName", "domain": "EXAMPLE", "bind_dn_env": None, "password_env": None})
    store = open_with(directory_definitions, **changes)
    try:
        assert refusal(store, login, PASSWORDS["admin"]) == WRONG_LOGIN   # the directory's admin, a technician there
        admin = find_account(store, "admin")
        assert (admin.source, admin.active, admin.roles) != (DIRECTORY, False, ())
        assert admin.source != DIRECTORY and admin.roles == ("administrator",) and admin.password_hash
        assert sign_in(store, "admin", ADMIN_PASSWORD).superuser                # still the local administrator
        assert [a.login for a in list_accounts(store)] == ["admin"]
    finally:
        store.close()


def test_a_directory_person_never_takes_over_a_local_account_of_their_login(store):
    """A customer's local account `pat` beside a directory person `pat`: the local one keeps
    its password and roles; the directory person is told, and an administrator may link them."""
    from servers.samba import PASSWORDS
    create_account(store, "pat", name="Pat (customer)", password="customer password", roles=["customer_user"])
    with web(store) as client:
        refused = web_sign_in(client, "patricia.lee@example.test", PASSWORDS["pat"])
        assert refused.status_code == 401 and "may not open" in refused.text
        assert web_sign_in(client, "pat", "customer password").status_code == 303       # her own account, locally
    pat = find_account(store, "pat")
    assert (pat.source, pat.roles, pat.name) == ("local", ("customer_user",), "Pat (customer)")
    assert sorted(sync_directory(store).local) == ["pat"]                   # the sync leaves it too
    assert find_account(store, "pat").source == "local"


def test_an_administrator_links_a_local_account_to_the_directory(directory_folder, file_uri, capsys):
    from servers.samba import PASSWORDS
    common = ["--definitions", str(directory_folder), "--db", file_uri]
    with open_store(file_uri, load_application(directory_folder)) as store:
        create_account(store, "pat", name="Pat", password="old local password", roles=["customer_user"])
    assert main(["directory", "adopt", "p.lee@example.test", *common]) == 0
    assert "`pat` is now the directory's account" in capsys.readouterr().out
    with open_store(file_uri, load_application(directory_folder)) as store:
        assert sign_in(store, "pat", PASSWORDS["pat"]).roles == ("technician",)
        assert refusal(store, "pat", "old local password") == WRONG_LOGIN
    assert main(["directory", "adopt", "admin", *common]) == 1
    assert "local_only" in capsys.readouterr().err


@pytest.mark.parametrize("login", ["kim", "nora"])
def test_passwords_beyond_ascii_are_sent_as_typed(store, login):
    from servers.samba import PASSWORDS
    assert sign_in(store, login, PASSWORDS[login]).roles == ("technician",)
    # what SASLprep would have sent instead is another password
    assert refusal(store, login, PASSWORDS[login].replace("\u00b2", "2").replace("\u00a0", " ")) == WRONG_LOGIN


def set_language(samba_directory, login: str, tag: str) -> None:
    """Write a person's preferredLanguage in the running directory."""
    from ldap3 import MODIFY_REPLACE
    from servers.samba import USERS_DN
    admin = samba_directory.admin()
    try:
        admin.search(USERS_DN, f"(sAMAccountName={login})", attributes=["cn"])
        assert admin.modify(admin.response[0]["dn"], {"preferredLanguage": [(MODIFY_REPLACE, [tag])]}), admin.result
    finally:
        admin.unbind()


def test_the_language_comes_from_the_directory_until_the_person_chooses_one(store, samba_directory):
    from servers.samba import PASSWORDS
    set_language(samba_directory, "kim", "fr-FR")
    set_language(samba_directory, "nora", "de-AT")         # a language the definitions do not offer
    assert sign_in(store, "kim", PASSWORDS["kim"]).language == "fr"
    assert sign_in(store, "nora", PASSWORDS["nora"]).language == "en"
    update_account(store, "kim", language="en", language_chosen=True)     # her account page
    assert sign_in(store, "kim", PASSWORDS["kim"]).language == "en"
    assert find_account(store, "kim").language_chosen


@pytest.mark.parametrize("login", ["pat", "EXAMPLE\\pat", "pat@example.test", "patricia.lee@example.test",
                                   "p.lee@example.test", "PAT", "example\\Pat"])
def test_every_form_of_a_login_reaches_the_one_account_with_a_service_account(directory_definitions, login):
    from servers.samba import PASSWORDS
    for mode in ({}, {"login_attribute": "sAMAccountName", "domain": "EXAMPLE"}):
        store = open_with(directory_definitions, **mode)
        try:
            assert sign_in(store, login, PASSWORDS["pat"]).id == "pat"
            assert [a.login for a in list_accounts(store)] == ["admin", "pat"]
        finally:
            store.close()


@pytest.mark.parametrize("login", ["pat", "EXAMPLE\\pat", "patricia.lee@example.test"])
def test_without_a_service_account_the_login_the_domain_form_and_the_principal_name_work(directory_definitions, login):
    """Bound as what was typed, the directory says whom it bound ("who am I"). A mail address
    that is not the principal name needs the service account to be found (docs say so)."""
    from servers.samba import PASSWORDS
    for mode in ({"login_attribute": "userPrincipalName"}, {"login_attribute": "sAMAccountName", "domain": "EXAMPLE"}):
        store = open_with(directory_definitions, bind_dn_env=None, password_env=None, **mode)
        try:
            assert sign_in(store, login, PASSWORDS["pat"]).id == "pat", mode
        finally:
            store.close()


def test_another_domain_s_account_name_reaches_nobody(store):
    from servers.samba import PASSWORDS
    assert refusal(store, "OTHER\\bob", PASSWORDS["bob"]) == WRONG_LOGIN


def test_the_primary_group_domain_users_gives_its_role_at_sign_in_and_in_the_sync(directory_definitions):
    """Everyone's primary group is not in `memberOf`: read from primaryGroupID."""
    from servers.samba import PASSWORDS
    settings = directory_settings(directory_definitions)
    store = open_with(directory_definitions, roles={**settings.roles, "domain users": ("customer_user",)})
    try:
        assert sign_in(store, "frank", PASSWORDS["frank"]).roles == ("customer_user",)    # in no other group
        assert set(sign_in(store, "bob", PASSWORDS["bob"]).roles) == {"dispatcher", "technician", "customer_user"}
        report = sync_directory(store)
        assert "frank" in report.unchanged and "Administrator" in report.created
        assert find_account(store, "gina").roles == ("technician", "customer_user")
    finally:
        store.close()


# -- the sync ------------------------------------------------------------------------------

def test_sync_creates_updates_and_disables_and_a_dry_run_writes_nothing(store, samba_directory):
    from ldap3 import MODIFY_REPLACE
    dry = sync_directory(store, dry_run=True)
    # carol disabled, erin expired, frank no group, admin local_only
    assert sorted(dry.created) == ["alice", "bob", "dave", "gina", "hugo", "kim", "nora", "pat"]
    assert [a.login for a in list_accounts(store)] == ["admin"]

    first = sync_directory(store)
    assert sorted(first.created) == sorted(dry.created) and not first.updated and not first.disabled
    assert find_account(store, "hugo").phone == "+1 555 0199"
    assert set(find_account(store, "bob").roles) == {"dispatcher", "technician"}
    assert sorted(sync_directory(store).unchanged) == sorted(dry.created)

    save_person(store, Person("ghost", "CN=Ghost,CN=Users,DC=example,DC=test", name="Gone", roles=("technician",)))
    admin = samba_directory.admin()
    gina = "CN=Gina Garcia,CN=Users,DC=example,DC=test"
    hugo = "CN=Hugo Huber,CN=Users,DC=example,DC=test"
    try:
        assert admin.modify(gina, {"userAccountControl": [(MODIFY_REPLACE, [514])]})       # 512 + disabled
        assert admin.modify(hugo, {"telephoneNumber": [(MODIFY_REPLACE, ["+1 555 0200"])],
                                   "department": [(MODIFY_REPLACE, ["Field"])]})
        preview = sync_directory(store, dry_run=True)
        assert (sorted(preview.disabled), preview.updated) == (["ghost", "gina"], ["hugo"])
        assert find_account(store, "gina").active and find_account(store, "hugo").phone == "+1 555 0199"

        done = sync_directory(store)
        assert (sorted(done.disabled), done.updated) == (["ghost", "gina"], ["hugo"])
        assert not find_account(store, "gina").active and not find_account(store, "ghost").active
        hugo_now = find_account(store, "hugo")
        assert (hugo_now.phone, hugo_now.department) == ("+1 555 0200", "Field")
    finally:
        admin.modify(gina, {"userAccountControl": [(MODIFY_REPLACE, [512])]})
        admin.modify(hugo, {"telephoneNumber": [(MODIFY_REPLACE, ["+1 555 0199"])],
                            "department": [(MODIFY_REPLACE, [])]})
        admin.unbind()


def test_the_sync_job_action_reports_what_it_did(store):
    from datetime import datetime, timezone

    from deskbase.connectors.channels import CONNECTOR_WORK
    from deskbase.rules.jobs.scheduled import ACTIONS
    report = CONNECTOR_WORK["sync_directory"](store, datetime.now(timezone.utc), ACTIONS["sync_directory"].options)
    assert report.startswith("8 created, 0 updated, 0 disabled, 0 unchanged")


def test_listing_people_reads_every_page(directory_definitions):
    people = {p.login: p for p in ActiveDirectory(directory_settings(directory_definitions)).people()}   # page_size 2
    assert {"bob", "alice", "carol", "frank", "Administrator"} <= set(people)
    assert not people["carol"].active and people["frank"].roles == ()
    assert set(people["bob"].roles) == {"dispatcher", "technician"}


# -- the commands --------------------------------------------------------------------------

def test_the_directory_test_command_prints_what_the_account_would_get(directory_folder, file_uri, monkeypatch, capsys):
    from servers.samba import PASSWORDS
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["bob"] + "\n"))
    code = main(["directory", "test", "bob", "--password-stdin", "--definitions", str(directory_folder),
                 "--db", file_uri])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"roles\s+dispatcher, technician", out) and "Bob Builder" in out
    assert "CN=Support,CN=Users,DC=example,DC=test" in out     # the nested group is listed
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    assert main(["directory", "test", "bob", "--password-stdin", "--definitions", str(directory_folder),
                 "--db", file_uri]) == 1
    assert WRONG_LOGIN in capsys.readouterr().out


def test_the_directory_sync_command_with_and_without_dry_run(directory_folder, file_uri, capsys):
    common = ["--definitions", str(directory_folder), "--db", file_uri]
    assert main(["directory", "sync", "--dry-run", *common]) == 0
    out = capsys.readouterr().out
    assert "would be created: alice, bob, dave, gina, hugo, kim, nora, pat" in out and "dry run: nothing written" in out
    assert main(["directory", "sync", *common]) == 0
    assert "8 created" in capsys.readouterr().out
    assert main(["users", "list", *common]) == 0
    assert "bob" in capsys.readouterr().out


# -- the definitions (no directory needed) ---------------------------------------------------------

def test_the_directory_section_names_what_is_wrong(tmp_path):
    folder = tmp_path / "definitions"
    shutil.copytree(HELPDESK, folder)
    (folder / "directory.yaml").write_text(
        "directory:\n"
        "  servers: [ldap://dc.example.org]\n"
        "  base_dn: DC=example,DC=org\n"
        "  login_attribute: mail\n"
        "  roles: {Support: technicain}\n"
        "  default_role: nobody\n")
    with pytest.raises(DefinitionErrors) as raised:
        load_application(folder)
    text = str(raised.value)
    assert "directory.yaml:2" in text and "starts with ldaps://" in text
    assert "`technicain` is not a role" in text and "did you mean `technician`?" in text
    assert "`nobody` is not a role" in text
    assert "signing in by `mail` needs a service account" in text


def test_a_sync_cut_mid_listing_says_so_and_disables_nobody(directory_folder, file_uri, capsys, monkeypatch):
    """The real directory's listing, cut after two people as a dropped connection would: the
    command says it in a sentence (no traceback), and nobody created before is disabled."""
    from ldap3.core.exceptions import LDAPSocketReceiveError

    from deskbase.connectors.active_directory import ActiveDirectory
    common = ["--definitions", str(directory_folder), "--db", file_uri]
    assert main(["directory", "sync", *common]) == 0
    capsys.readouterr()
    listing = ActiveDirectory.people

    def cut(self):
        for position, person in enumerate(listing(self)):
            if position == 2:
                raise LDAPSocketReceiveError("connection reset by peer")
            yield person
    monkeypatch.setattr(ActiveDirectory, "people", cut)
    assert main(["directory", "sync", *common]) == 1
    said = capsys.readouterr()
    assert "stopped answering while listing its people" in said.err and "Traceback" not in said.err + said.out
    monkeypatch.setattr(ActiveDirectory, "people", listing)
    assert main(["users", "list", *common]) == 0
    rows = {line.split()[0]: line.rstrip() for line in capsys.readouterr().out.splitlines() if line.split()}
    for login in ("alice", "bob", "dave", "gina", "hugo"):      # all still active
        assert rows[login].endswith("yes"), rows[login]


def test_the_administrator_tries_a_sign_in_and_syncs_from_the_web(store):
    from servers.samba import PASSWORDS
    with web(store) as client:
        assert web_sign_in(client, "admin", ADMIN_PASSWORD).status_code == 303
        assert 'href="/admin/directory"' in client.get("/").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/directory").text).group(1)
        tried = client.post("/admin/directory", data={"csrf": csrf, "action": "test", "login": "bob",
                                                       "password": PASSWORDS["bob"]})
        assert tried.status_code == 200 and "Bob Builder" in tried.text and "dispatcher" in tried.text
        assert find_account(store, "bob") is None                    # a try writes nothing
        wrong = client.post("/admin/directory", data={"csrf": csrf, "action": "test", "login": "bob",
                                                       "password": "not his password"})
        assert wrong.status_code == 422 and WRONG_LOGIN in wrong.text
        dry = client.post("/admin/directory", data={"csrf": csrf, "action": "sync", "dry": "1"})
        assert "dry run: nothing written" in dry.text and find_account(store, "bob") is None
        done = client.post("/admin/directory", data={"csrf": csrf, "action": "sync"})
        assert done.status_code == 200 and "created" in done.text and find_account(store, "bob") is not None
    with web(store) as client:
        web_sign_in(client, "bob", PASSWORDS["bob"])
        assert client.get("/admin/directory").status_code == 404       # a dispatcher: no such page
