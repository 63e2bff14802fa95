"""A web client on the shipped application with its demo (`demo_store` of tests/conftest.py,
here `demo`), for the scenario tests of tests/apps that look at the demo through the pages."""
from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from deskbase.views.app import create_app


@pytest.fixture(scope="module")
def demo(demo_store):
    return demo_store


@pytest.fixture
def client(demo):
    with TestClient(create_app(demo), follow_redirects=False) as test_client:
        yield test_client
