"""What a test does when a server or tool it needs is not on this machine: outside CI it is
skipped with the reason (how to install what is missing); under CI=true, where everything is
installed, it fails with that reason instead of passing unseen."""
from __future__ import annotations

import os
from typing import NoReturn

import pytest


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test with `reason`, or fail it when CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
