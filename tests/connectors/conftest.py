"""The small application with a mailbox the mail tests read into (`mail_app/desk.yaml`)."""
from __future__ import annotations

from pathlib import Path

import pytest

from deskbase.rules.application import load_application

MAIL_APP = Path(__file__).parent / "mail_app"


@pytest.fixture(scope="module")
def desk_definitions():
    return load_application(MAIL_APP)


@pytest.fixture
def desk(app_store, desk_definitions):
    """An in-memory store of the small application, its rules installed."""
    with app_store(desk_definitions) as store:
        yield store
