"""Fixtures shared by every layer's tests: definitions folders and stores."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deskbase.objects.definitions import load_definitions
from deskbase.objects.store import Store
from deskbase.rules.application import load_application

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


@pytest.fixture(scope="session")
def helpdesk_definitions():
    """The shipped helpdesk and billing definitions, with their identity and access rules."""
    return load_application(HELPDESK)


@pytest.fixture
def file_uri(tmp_path: Path) -> str:
    folder = tmp_path / "var"
    return f"file://{folder}/Data.fs?blobstorage_dir={folder}/blobs"


@pytest.fixture
def notes_store(notes_definitions):
    """An in-memory store of the small application with access rules, rules installed."""
    from deskbase.rules.application import open_store
    opened = open_store("memory://", notes_definitions)
    yield opened
    opened.close()


@pytest.fixture
def mail_store(tasks_definitions):
    """A store of the test application whose settings give the Message-ID domain."""
    import dataclasses

    from deskbase.rules.outbox import ensure_outbox
    settings = {**tasks_definitions.settings, "mail": {"domain": "desk.example.test"}}
    opened = Store.open("memory://", dataclasses.replace(tasks_definitions, settings=settings))
    ensure_outbox(opened)
    yield opened
    opened.close()
