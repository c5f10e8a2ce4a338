"""`kcockpit` argument errors: one line on stderr, exit status 2, before the screen is taken."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_kcockpit(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tui")}
    return subprocess.run(
        [sys.executable, "-m", "kcockpit", *args], capture_output=True, text=True, timeout=60, env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input-file", "/nonexistent/flows.json"], "cannot read capture file '/nonexistent/flows.json'"),
        (["--server", "nonsense"], "use HOST:PORT"),
        (["--filter", "verdict=sometimes"], "--filter 'verdict=sometimes': column 1: unknown verdict 'sometimes'"),
        (["--demo", "--input-file", "x.json"], "--demo and --input-file are two different sources"),
        (["--buffer-size", "0"], "--buffer-size must be at least 1"),
        (["--demo", "--rate", "0"], "--rate must be above 0"),
        (["--export-dir", "/nonexistent"], "--export-dir '/nonexistent' is not a directory"),
        (["--demo", "--prometheus", "localhost:9090"], "Prometheus URL 'localhost:9090' must start with http:// or https://"),
        (["--demo", "--prometheus", "http://x", "--prometheus-timeout", "0"], "Prometheus timeout must be positive"),
        (["--demo", "--policies", "/nonexistent"], "--policies '/nonexistent': no such file or directory"),
        (["--demo", "--policies", ".", "--no-kubernetes"], "--policies and --no-kubernetes contradict each other"),
        (["--demo", "--kubeconfig", "k.yaml"], "--demo serves its own Kubernetes API"),
        (["--kubeconfig", "k.yaml", "--no-kubernetes"], "--kubeconfig/--context read a cluster, --no-kubernetes says not to"),
    ],
)
def test_bad_arguments_give_one_line_and_status_2(args: list[str], message: str) -> None:
    result = run_kcockpit(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kcockpit: error: ") and message in lines[0], result.stderr


def test_capture_with_only_bad_lines_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("not json\n{\"flow\": 3}\n")
    result = run_kcockpit("--input-file", str(path))
    assert result.returncode == 2
    assert "no flows in" in result.stderr and "2 malformed lines" in result.stderr


def test_help_documents_the_policy_and_prometheus_options() -> None:
    result = run_kcockpit("--help")
    assert result.returncode == 0
    for flag in ("--kubeconfig", "--context", "--policies", "--no-kubernetes", "--prometheus", "--prometheus-token", "--export-dir"):
        assert flag in result.stdout, flag
    assert "Kubernetes API" in result.stdout and "Prometheus" in result.stdout


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "tui")})


def test_a_thread_that_never_ends_does_not_keep_the_cockpit_alive_after_its_screen() -> None:
    """Seen once: a stop that failed left the demo's server threads running, and the cockpit
    stayed behind, unseen, after `q`. Once the session is stopped, the process ends anyway."""
    started = time.monotonic()
    done = _python("import threading\nfrom kcockpit.ui.cli import exit_within\n"
                   "threading.Thread(target=threading.Event().wait).start()\nexit_within(0.5, 3)\n")
    assert done.returncode == 3, done.stderr
    assert time.monotonic() - started < 20


def test_the_exit_guard_does_not_delay_a_normal_exit() -> None:
    started = time.monotonic()
    done = _python("import sys\nfrom kcockpit.ui.cli import exit_within\nexit_within(30, 3)\nsys.exit(0)\n")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 20
