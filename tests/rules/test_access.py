"""Access scopes on a small application: the decision and its reason, scopes ANDed into
queries, counts and text search, the write-path check, hidden and read-only fields, and
the located errors of a wrong `access:` section."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deskbase.objects.definitions import load_definitions
from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.access.identity import SYSTEM, Identity
from deskbase.rules.access.scopes import (
    AccessDenied,
    decide,
    describe_filter,
    hidden_fields,
    read_scope,
    visible_values,
)
from deskbase.rules.application import load_application

NOTES_APP = Path(__file__).parent / "notes_app"


@pytest.fixture
def data(notes_store):
    """Two companies, nested teams, and notes in every state; ids by name."""
    def work(session):
        ids = {"acme": session.create("company", {"name": "Acme"}).id,
               "globex": session.create("company", {"name": "Globex"}).id}
        ids["root"] = session.create("team", {"name": "root"}).id
        ids["storage"] = session.create("team", {"name": "storage", "parent": ids["root"]}).id
        notes = {
            "published": {"title": "release plan", "status": "published", "owner": "bob"},
            "alices_draft": {"title": "alice draft plan", "owner": "alice", "secret": "s3", "company": ids["acme"]},
            "bobs_draft": {"title": "bob draft plan", "owner": "bob"},
            "root_team_draft": {"title": "root team plan", "owner": "bob", "team": ids["root"]},
        }
        for key, values in notes.items():
            ids[key] = session.create("note", values).id
        return ids
    return notes_store.run(work)


def alice(data, *roles: str) -> Identity:
    return Identity("alice", "Alice", roles or ("member",), (data["storage"], data["root"]), data["acme"])


def titles(notes_store, identity, filter=None) -> list[str]:
    return notes_store.read(lambda s: sorted(r["title"] for r in s.query("note", filter, limit=None).records),
                      identity=identity)


def test_member_reads_published_own_and_team_notes_only(notes_store, data):
    assert titles(notes_store, alice(data)) == ["alice draft plan", "release plan", "root team plan"]


def test_scope_applies_to_query_count_and_text_search(notes_store, data):
    me = alice(data)
    assert notes_store.read(lambda s: s.count("note"), identity=me) == 3
    assert notes_store.read(lambda s: s.count("note", {"status": "draft"}), identity=me) == 2
    assert notes_store.read(lambda s: s.query("note", {"text": "draft"}).total, identity=me) == 1
    assert titles(notes_store, me, {"text": "plan"}) == ["alice draft plan", "release plan", "root team plan"]
    # the system, by contrast, sees everything
    assert notes_store.read(lambda s: s.count("note")) == 4
    assert notes_store.read(lambda s: s.query("note", {"text": "draft"}).total) == 2


def test_page_totals_come_from_the_scoped_index_query(notes_store, data):
    page = notes_store.read(lambda s: s.query("note", sort="title", limit=2), identity=alice(data))
    assert page.total == 3 and len(page.records) == 2


def test_role_without_rules_for_a_type_reads_nothing(notes_store, data):
    guest = Identity("gail", roles=("guest",))
    assert notes_store.read(lambda s: (s.count("note"), s.count("company")), identity=guest) == (0, 0)
    assert read_scope(guest, notes_store.definitions.type("note"), notes_store.definitions) is False


def test_several_roles_get_the_union_of_their_scopes(notes_store, data):
    reviewer_only = Identity("rita", roles=("reviewer",))
    both = Identity("rita", roles=("reviewer", "member"))
    assert titles(notes_store, reviewer_only) == ["release plan"]
    note = notes_store.definitions.type("note")
    assert read_scope(both, note, notes_store.definitions) == {
        "any": [notes_store.definitions.extensions["access"].types["note"]["reviewer"].actions["read"],
                notes_store.definitions.extensions["access"].types["note"]["member"].actions["read"]]}


def test_superuser_role_reads_and_writes_everything(notes_store, data):
    root = Identity("root", roles=("admin",))
    assert titles(notes_store, root) == titles(notes_store, None)
    notes_store.run(lambda s: s.delete(data["bobs_draft"], type_name="note"), identity=root)
    assert read_scope(SYSTEM, notes_store.definitions.type("note"), notes_store.definitions) is True


def test_denial_reason_names_the_role_the_action_and_the_scope(notes_store, data):
    definitions = notes_store.definitions
    note = definitions.type("note")
    bobs = notes_store.read(lambda s: dict(s.get("note", data["bobs_draft"]).values))
    decision = decide(alice(data), "update", note, bobs, definitions=definitions)
    assert not decision.allowed
    assert decision.reason == ("the role member may update only note records whose owner is you: "
                               "this one is not")
    deletion = decide(alice(data), "delete", note, bobs, definitions=definitions)
    assert deletion.reason.startswith("the role member may not delete note records")
    assert decide(alice(data), "read", note, bobs, definitions=definitions).allowed is False


def test_describe_filter_reads_as_words():
    assert describe_filter({"any": [{"status": ["a", "b"]}, {"owner": "$me"}, {"team": "$me.groups"}]}) == (
        "whose status is a or b, or whose owner is you, or whose team is one of your groups")


def test_update_outside_the_scope_is_refused_by_the_write_path(notes_store, data):
    with pytest.raises(AccessDenied) as denied:
        notes_store.run(lambda s: s.update(data["bobs_draft"], {"title": "mine now"}, type_name="note"),
                  identity=alice(data))
    assert denied.value.action == "update" and "whose owner is you" in denied.value.reason
    notes_store.run(lambda s: s.update(data["alices_draft"], {"title": "alice plan v2"}, type_name="note"),
              identity=alice(data))
    assert notes_store.read(lambda s: s.get("note", data["alices_draft"])["title"]) == "alice plan v2"


def test_create_is_allowed_only_when_the_new_record_fits_the_create_filter(notes_store, data):
    me = alice(data)
    created = notes_store.run(lambda s: s.create("note", {"title": "ours", "company": data["acme"]}).id, identity=me)
    assert notes_store.read(lambda s: s.get("note", created)["created_by"]) == "alice"
    with pytest.raises(AccessDenied, match="may create only note records whose company is your organization"):
        notes_store.run(lambda s: s.create("note", {"title": "theirs", "company": data["globex"]}), identity=me)
    with pytest.raises(AccessDenied, match="may not create"):
        notes_store.run(lambda s: s.create("note", {"title": "x"}), identity=Identity("rita", roles=("reviewer",)))


def test_forged_write_to_a_readonly_field_is_refused_per_field(notes_store, data):
    with pytest.raises(AccessDenied) as denied:
        notes_store.run(lambda s: s.update(data["alices_draft"], {"locked": "forged", "secret": "x", "title": "t"},
                                     type_name="note"), identity=alice(data))
    assert denied.value.fields == {"locked": "is read-only for you", "secret": "is hidden from you"}
    assert notes_store.read(lambda s: s.get("note", data["alices_draft"])["locked"]) is None


def test_hidden_fields_are_left_out_of_visible_values(notes_store, data):
    definitions = notes_store.definitions
    note = definitions.type("note")
    record = notes_store.read(lambda s: dict(s.get("note", data["alices_draft"]).values))
    assert hidden_fields(alice(data), note, definitions) == {"secret"}
    assert "secret" not in visible_values(alice(data), note, record, definitions=definitions)
    assert visible_values(Identity("root", roles=("admin",)), note, record, definitions=definitions)["secret"] == "s3"
    # a field hidden by one role but shown by another is shown: roles add rights
    assert hidden_fields(alice(data, "member", "reviewer"), note, definitions) == frozenset()


def test_system_session_is_unrestricted(notes_store, data):
    notes_store.run(lambda s: s.update(data["bobs_draft"], {"locked": "by the system"}, type_name="note"))
    assert notes_store.read(lambda s: s.get("note", data["bobs_draft"])["locked"]) == "by the system"


# -- definitions errors --------------------------------------------------------------------

def _broken(tmp_path: Path, old: str, new: str) -> tuple[Path, str]:
    folder = tmp_path / "app"
    shutil.copytree(NOTES_APP, folder)
    path = folder / "notes.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(DefinitionErrors) as caught:
        load_application(folder)
    return path, str(caught.value)


def test_access_rule_naming_an_unknown_role_is_located(tmp_path):
    path, text = _broken(tmp_path, "      reviewer:\n", "      reviewr:\n")
    assert f"{path}:49:7: types.note.access.reviewr: role `reviewr` is not defined in `roles`; " \
           f"did you mean `reviewer`?" in text


def test_access_rule_hiding_an_unknown_field_is_located(tmp_path):
    path, text = _broken(tmp_path, "hide: [secret]", "hide: [secrte]")
    assert f"{path}:48:25: types.note.access.member.fields.hide[0]: `secrte` is not a field of type `note`; " \
           f"did you mean `secret`?" in text


def test_access_filter_naming_an_unknown_field_is_located(tmp_path):
    path, text = _broken(tmp_path, "update: {owner: $me}", "update: {ownr: $me}")
    assert f"{path}:46:18: types.note.access.member.update.ownr: `ownr` is not a field of `note`" in text
    assert "did you mean `owner`?" in text


def test_access_with_an_unknown_action_gets_did_you_mean(tmp_path):
    path, text = _broken(tmp_path, "        delete: false\n", "        delet: false\n")
    assert f"{path}:47:9: types.note.access.member.delet: `delet` is not a setting of a role's access" in text
    assert "did you mean `delete`?" in text


def test_definitions_with_access_need_the_rules_sections(tmp_path):
    with pytest.raises(DefinitionErrors, match="`access` is not a setting of a type"):
        load_definitions(NOTES_APP)



@pytest.mark.parametrize("via", ["tema", "title"])
def test_a_via_grant_names_an_indexed_ref_to_one_record(tmp_path, via):
    """`read: {via: <ref>}` (readable when the record the ref points at is): anything but an
    indexed ref of the type is refused where it is written, with the refs it could name."""
    _, text = _broken(tmp_path, "        read: {status: published}\n", f"        read: {{via: {via}}}\n")
    assert f"types.note.access.reviewer.read.via: `{via}` is not an indexed ref field of `note`" in text
    assert "did you mean `team`?" in text or via == "title"

