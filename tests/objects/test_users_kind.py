"""A `users` field holds several accounts by login: written as a list or with commas, each
once, found through a keyword index (`$me` matches a record whose list names the reader)."""
from __future__ import annotations

import pytest

from deskbase.objects.definitions import load_definitions
from deskbase.objects.errors import FieldError, ValidationError
from deskbase.objects.fields import UsersKind
from deskbase.objects.store import Store


def test_logins_are_kept_in_order_each_once():
    kind = UsersKind()
    assert kind.coerce("ana, bo;ana cy") == ("ana", "bo", "cy")
    assert kind.coerce(["bo", "", "bo"]) == ("bo",)
    assert kind.coerce("") == () and kind.coerce(None) == ()
    assert kind.text(("ana", "bo")) == "ana, bo" and kind.to_json(("ana",)) == ["ana"]


def test_a_value_that_is_no_login_is_refused_with_its_reason():
    with pytest.raises(FieldError, match="is not a user login"):
        UsersKind().coerce([{"login": None, "x": 1}])


@pytest.fixture
def board(tmp_path, file_uri):
    (tmp_path / "board.yaml").write_text("""
roles:
  member: {label: Member}
types:
  card:
    number: "CD-{seq:03d}"
    title: title
    fields:
      title:     {kind: string, required: true}
      followers: {kind: users, join: {roles: [member]}}
    index: [title, {keyword: followers}]
views:
  followed:
    type: card
    columns: [id, title, followers]
    filter: {followers: $me}
""")
    with Store.open(file_uri, load_definitions(tmp_path)) as store:
        yield store


def test_records_are_found_by_any_of_their_users(board):
    board.run(lambda s: (s.create("card", {"title": "One", "followers": "ana, bo"}),
                         s.create("card", {"title": "Two", "followers": ["bo"]}),
                         s.create("card", {"title": "Three"})))
    found = board.read(lambda s: {login: [r["title"] for r in s.query("card", {"followers": login}, "title").records]
                                  for login in ("ana", "bo", "cy")})
    assert found == {"ana": ["One"], "bo": ["One", "Two"], "cy": []}


def test_a_wrong_login_is_refused_on_write_and_nothing_is_stored(board):
    with pytest.raises(ValidationError, match="followers"):
        board.run(lambda s: s.create("card", {"title": "Bad", "followers": ["ana", "two words"]}))
    assert board.read(lambda s: s.count("card")) == 0
