"""The top-level command: version, help, subcommand dispatch, one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


# ===== Folded from test_review2_number_flags.py ====================================================
# Review 2: numeric flags that are not finite, or absurd, are one clear line and exit 2.
#
# Found by hand: `kcockpit --demo --rate nan`, `kcockpit demo-server --rate nan`,
# `--healthy-s nan` printed a ValueError traceback, `--healthy-s inf` an OverflowError;
# `--rate 1e9` hung at start-up generating the --backfill history, using ever more memory;
# `--timeout nan` and `--prometheus-timeout nan` were accepted.


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kcockpit", *argv], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--demo", "--rate", "nan"], "kcockpit: error: --rate must be above 0 and at most 100000 flows/s, got nan"),
        (["--demo", "--rate", "1e9"], "kcockpit: error: --rate must be above 0 and at most 100000 flows/s, got 1e+09"),
        (["--server", "127.0.0.1:1", "--timeout", "nan"], "kcockpit: error: --timeout must be positive (seconds), got nan"),
        (["--server", "127.0.0.1:1", "--timeout", "inf"], "kcockpit: error: --timeout must be positive (seconds), got inf"),
        (["--demo", "--prometheus", "http://x", "--prometheus-timeout", "nan"],
         "kcockpit: error: Prometheus timeout must be positive (seconds), got nan"),
        (["demo-server", "--rate", "nan"], "kcockpit: error: --rate must be above 0 and at most 100000 flows/s, got nan"),
        (["demo-server", "--rate", "1e9"], "kcockpit: error: --rate must be above 0 and at most 100000 flows/s, got 1e+09"),
        (["demo-server", "--healthy-s", "nan"], "kcockpit: error: --healthy-s must be above 0 and at most 86400 seconds, got nan"),
        (["demo-server", "--broken-s", "inf"], "kcockpit: error: --broken-s must be above 0 and at most 86400 seconds, got inf"),
        (["demo-server", "--backfill", "nan"], "kcockpit: error: --backfill must be 0 to 3600 seconds, got nan"),
        (["demo-server", "--backfill", "1e9"], "kcockpit: error: --backfill must be 0 to 3600 seconds, got 1e+09"),
    ],
)
def test_one_line_and_exit_2(argv: list[str], message: str) -> None:
    done = run(*argv)
    assert done.returncode == 2, done.stderr[-500:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == message
