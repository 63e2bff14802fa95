"""Local accounts: password hashing and policy, sign-in refusals that never say why,
identities with inherited groups, and the `identity:` section of the definitions."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deskbase.objects.errors import DefinitionErrors, DeskbaseError
from deskbase.objects.store import Store
from deskbase.rules.access import identity as identity_module
from deskbase.rules.access.identity import (
    REFUSED,
    SYSTEM,
    AccountError,
    Identity,
    LoginRefused,
    authenticate,
    create_account,
    disable_account,
    find_account,
    hash_password,
    identity_of,
    list_accounts,
    set_password,
    verify_password,
)
from deskbase.rules.application import load_application

NOTES_APP = Path(__file__).parent / "notes_app"
PASSWORD = "correct horse battery"


@pytest.fixture
def teams(notes_store):
    """Nested teams (root > platform > storage) and a company; their ids by name."""
    def work(session):
        acme = session.create("company", {"name": "Acme"})
        root = session.create("team", {"name": "root"})
        platform = session.create("team", {"name": "platform", "parent": root.id})
        storage = session.create("team", {"name": "storage", "parent": platform.id})
        return {"acme": acme.id, "root": root.id, "platform": platform.id, "storage": storage.id}
    return notes_store.run(work)


def test_password_hash_is_argon2id_with_its_parameters_and_salt():
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in stored


def scrypt_hash(password: str) -> str:
    """A hash as accounts made before Argon2id hold it."""
    import hashlib
    import os
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${2**14}$8$1${salt.hex()}${digest.hex()}"


def test_an_older_scrypt_hash_still_signs_in_and_is_replaced_by_argon2id(notes_store):
    create_account(notes_store, "olga", name="Olga", password="another password", roles=["member"])

    def make_old(session):
        identity_module._accounts(session.connection)["olga"].password_hash = scrypt_hash(PASSWORD)
    notes_store.run(make_old)
    assert find_account(notes_store, "olga").password_hash.startswith("scrypt$")
    with pytest.raises(LoginRefused):
        authenticate(notes_store, "olga", "a wrong password")
    assert find_account(notes_store, "olga").password_hash.startswith("scrypt$")     # nothing changed on a miss
    assert authenticate(notes_store, "olga", PASSWORD).id == "olga"
    upgraded = find_account(notes_store, "olga").password_hash
    assert upgraded.startswith("$argon2id$") and verify_password(PASSWORD, upgraded)
    assert authenticate(notes_store, "olga", PASSWORD).id == "olga"
    assert find_account(notes_store, "olga").password_hash == upgraded                # not made again


def test_password_hash_differs_each_time_and_verifies_only_the_same_password():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + "!", first)
    assert not verify_password(PASSWORD, "not a hash")


def test_authenticate_returns_the_identity_of_the_account(notes_store, teams):
    create_account(notes_store, "alice", name="Alice", password=PASSWORD, roles=["member"],
                   groups=[teams["storage"]], organization=teams["acme"], language="fr")
    me = authenticate(notes_store, "alice", PASSWORD)
    assert (me.id, me.name, me.roles, me.organization, me.language) == ("alice", "Alice", ("member",), teams["acme"], "fr")
    assert me.acting_for is None and not me.superuser


@pytest.mark.parametrize("login, password, disabled", [
    ("nobody", PASSWORD, False),       # unknown login
    ("alice", "wrong password!", False),
    ("alice", PASSWORD, True),         # disabled account
])
def test_every_refused_sign_in_gives_the_same_message(notes_store, login, password, disabled):
    create_account(notes_store, "alice", name="Alice", password=PASSWORD, roles=["member"])
    if disabled:
        disable_account(notes_store, "alice")
    with pytest.raises(LoginRefused) as refused:
        authenticate(notes_store, login, password)
    assert str(refused.value) == REFUSED


def test_unknown_login_costs_a_password_check_too(notes_store, monkeypatch):
    checked = []
    real = identity_module.verify_password
    monkeypatch.setattr(identity_module, "verify_password", lambda p, h: checked.append(h) or real(p, h))
    with pytest.raises(LoginRefused):
        authenticate(notes_store, "nobody", PASSWORD)
    assert len(checked) == 1


@pytest.mark.parametrize("password, problem", [
    ("short", "at least 10 characters"),
    ("alice12345", "cannot be the login"),
])
def test_password_policy_refuses_with_a_clear_message(notes_store, password, problem):
    login = "alice12345" if "login" in problem else "alice"
    with pytest.raises(AccountError, match=problem):
        create_account(notes_store, login, name="Alice", password=password, roles=["member"])


def test_set_password_replaces_the_old_one(notes_store):
    create_account(notes_store, "alice", name="Alice", password=PASSWORD, roles=["member"])
    set_password(notes_store, "alice", "another long secret")
    with pytest.raises(LoginRefused):
        authenticate(notes_store, "alice", PASSWORD)
    assert authenticate(notes_store, "alice", "another long secret").id == "alice"
    with pytest.raises(AccountError, match="at least 10"):
        set_password(notes_store, "alice", "short")


def test_account_with_unknown_role_group_or_taken_login_is_refused(notes_store, teams):
    with pytest.raises(AccountError, match="`membre` is not a role.*did you mean `member`"):
        create_account(notes_store, "alice", name="Alice", password=PASSWORD, roles=["membre"])
    with pytest.raises(AccountError, match="there is no"):
        create_account(notes_store, "alice", name="Alice", password=PASSWORD, roles=["member"], groups=[999])
    create_account(notes_store, "alice", name="Alice", password=PASSWORD, roles=["member"])
    with pytest.raises(AccountError, match="already taken"):
        create_account(notes_store, "alice", name="Other", password=PASSWORD, roles=["member"])
    assert [a.login for a in list_accounts(notes_store)] == ["alice"]


def test_identity_groups_include_every_ancestor_group(notes_store, teams):
    create_account(notes_store, "alice", name="Alice", password=PASSWORD, roles=["member"], groups=[teams["storage"]])
    me = identity_of(notes_store, "alice")
    assert set(me.groups) == {teams["storage"], teams["platform"], teams["root"]}


def test_identity_as_context_is_what_filters_see_as_me():
    me = Identity("alice", "Alice", ("member",), (3, 1), 7)
    context = me.as_context()
    assert context["id"] == "alice" and context["roles"] == ("member",)
    assert context["groups"] == (3, 1) and context["organization"] == 7 and context["acting_for"] is None
    with pytest.raises(TypeError):
        context["id"] = "mallory"   # read-only


def test_superuser_role_and_system_identity_are_unrestricted(notes_store):
    create_account(notes_store, "root", name="Root", password=PASSWORD, roles=["admin"])
    assert identity_of(notes_store, "root").superuser
    assert SYSTEM.superuser and SYSTEM.id == "system"


def test_disabled_account_has_no_identity(notes_store):
    create_account(notes_store, "alice", name="Alice", password=PASSWORD, roles=["member"])
    disable_account(notes_store, "alice")
    with pytest.raises(AccountError, match="disabled"):
        identity_of(notes_store, "alice")


def test_store_without_access_rules_refuses_to_act_for_a_person(notes_definitions):
    with Store.open("memory://", notes_definitions) as bare:
        with pytest.raises(DeskbaseError, match="no access rules installed"):
            bare.read(lambda s: s.count("note"), identity=Identity("alice", roles=("member",)))


def test_identity_section_naming_an_unknown_type_or_field_is_located(tmp_path):
    folder = tmp_path / "app"
    shutil.copytree(NOTES_APP, folder)
    path = folder / "notes.yaml"
    path.write_text(path.read_text().replace("group_type: team", "group_type: teams")
                    .replace("group_parent: parent", "group_parent: parent\n  organization_type: compagny")
                    .replace("  organization_type: company\n", ""))
    with pytest.raises(DefinitionErrors) as caught:
        load_application(folder)
    text = str(caught.value)
    assert f"{path}:11:15: identity.group_type: `teams` is not a type; did you mean `team`?" in text
    assert "identity.organization_type: `compagny` is not a type; did you mean `company`?" in text


def test_a_person_type_names_an_indexed_user_field_and_gives_me_person(tmp_path):
    folder = tmp_path / "app"
    shutil.copytree(NOTES_APP, folder)
    path = folder / "notes.yaml"
    original = path.read_text()
    path.write_text(original.replace("  organization_type: company\n",
                                     "  organization_type: company\n  person_type: note\n  person_login: secret\n"))
    with pytest.raises(DefinitionErrors) as caught:
        load_application(folder)
    assert "identity.person_login: `secret` is not an indexed user field of `note`; use owner" in str(caught.value)
    path.write_text(original.replace("  organization_type: company\n",
                                     "  organization_type: company\n  person_type: note\n  person_login: owner\n"))
    with Store.open("memory://", load_application(folder)) as store:
        mine = store.run(lambda s: s.create("note", {"title": "Alice's card", "owner": "alice"}).id)
        create_account(store, "alice", name="Alice", password="correct horse battery", roles=["member"])
        create_account(store, "bob", name="Bob", password="correct horse battery", roles=["member"])
        assert identity_of(store, "alice").person == mine and identity_of(store, "bob").person is None
        assert identity_of(store, "alice").as_context()["person"] == mine
