"""Fixtures of the staffing application (tests/rules/staffing_app): a desk whose requests
are dispatched to teams and agents, and whose agents stand in for one another."""
from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest

from deskbase.rules.access.identity import create_account
from deskbase.rules.application import load_application

STAFFING_APP = Path(__file__).parent / "staffing_app"
PASSWORD = "correct horse battery"


def staffing_definitions(tmp_path: Path, *replacements: tuple[str, str]):
    """The staffing application's definitions, with texts of its YAML replaced first."""
    folder = tmp_path / "staffing"
    shutil.copytree(STAFFING_APP, folder)
    path = folder / "staffing.yaml"
    text = path.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)
    return load_application(folder)


class Staffing:
    """An open store of the staffing application with teams, agents and helpers."""

    def __init__(self, store):
        self.store = store
        self.teams = store.run(lambda s: {name: s.create("team", {"name": name}).id
                                          for name in ("support", "field", "empty")})
        create_account(store, "pam", name="Pam", password=PASSWORD, roles=["planner"], email="pam@staffing.example")
        for login in ("ann", "bob", "cid"):
            create_account(store, login, name=login.title(), password=PASSWORD, roles=["agent"],
                           groups=[self.teams["support"]], email=f"{login}@staffing.example")
        create_account(store, "fay", name="Fay", password=PASSWORD, roles=["agent"], groups=[self.teams["field"]],
                       email="fay@staffing.example")

    def create(self, type_name: str, **values):
        return self.store.run(lambda s: s.create(type_name, values).id)

    def leave(self, who: str, stand_in: str | None, first_day: str | None, last_day: str | None) -> int:
        return self.create("leave", who=who, stand_in=stand_in, first_day=first_day, last_day=last_day)

    def request(self, **values) -> dict:
        record_id = self.create("request", **{"title": "printer", **values})
        return self.store.read(lambda s: dict(s.get("request", record_id).values))


@pytest.fixture
def staffing_with(tmp_path):
    """`staffing_with((old, new), …)`: the definitions with those YAML texts replaced."""
    return lambda *replacements: staffing_definitions(tmp_path, *replacements)


@pytest.fixture(scope="session")
def staffing_app():
    return load_application(STAFFING_APP)


@pytest.fixture
def staffing(app_store, staffing_app):
    with app_store(staffing_app) as store:
        yield Staffing(store)


@pytest.fixture
def staffing_variant(app_store, staffing_with):
    """`staffing_variant((old, new), …)`: a staffing desk built from changed definitions."""
    with ExitStack() as stores:
        def build(*replacements) -> Staffing:
            return Staffing(stores.enter_context(app_store(staffing_with(*replacements))))
        yield build
