"""The top-level command: version, help, subcommand dispatch, one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

from kcockpit import __version__
from kcockpit.cli import SUBCOMMANDS


TUI = Path(__file__).resolve().parents[1] / "tui"


def run_kcockpit(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(TUI)}
    return subprocess.run([sys.executable, "-m", "kcockpit", *args], capture_output=True, text=True, timeout=60, env=env)


def test_version() -> None:
    result = run_kcockpit("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"kcockpit {__version__}"


def test_help_lists_every_subcommand() -> None:
    result = run_kcockpit("--help")
    assert result.returncode == 0, result.stderr
    for name in SUBCOMMANDS:
        assert f"kcockpit {name}" in result.stdout
