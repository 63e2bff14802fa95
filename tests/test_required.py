"""A test whose server or tool is missing skips outside CI and fails under CI=true."""
from __future__ import annotations

import pytest
from servers.required import skip_or_fail


def test_a_missing_server_skips_the_test_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="dovecot is not installed"):
        skip_or_fail("dovecot is not installed")


def test_a_missing_server_fails_the_test_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="dovecot is not installed"):
        skip_or_fail("dovecot is not installed")
