"""`require_binary`, shared by every test that needs prometheus or promtool: in CI (CI=true)
a missing binary fails the test, locally it skips with the reason."""

from __future__ import annotations

import os
import shutil

import pytest


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not on PATH (Debian/Ubuntu: apt-get install prometheus)"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{message}; CI must run the Prometheus tests")
    pytest.skip(message)
