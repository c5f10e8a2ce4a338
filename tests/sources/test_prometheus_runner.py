"""Starting and stopping a real Prometheus; cleanup after a normal stop and after the parent is killed.

`require_binary` lives in prometheus_fixture.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from prometheus_fixture import require_binary

from kcockpit.sources import prometheus_runner
from kcockpit.sources.prometheus_runner import (
    PrometheusStartError,
    scrape_config,
    start_demo_prometheus,
    start_prometheus,
)

pytestmark = pytest.mark.prometheus


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=1):
            return True
    except (urllib.error.URLError, OSError):
        return False


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def test_scrape_config_lists_targets_at_the_interval():
    text = scrape_config(["127.0.0.1:9965"], 1)
    assert "scrape_interval: 1s" in text and "targets: ['127.0.0.1:9965']" in text
    assert scrape_config([]).rstrip().endswith("scrape_configs: []")


def test_start_answers_then_stop_removes_the_temporary_folder():
    require_binary("prometheus")
    running = start_prometheus(["127.0.0.1:1"], scrape_interval_s=1)
    try:
        assert running.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(running.url + "/api/v1/status/config", timeout=5) as response:
            config = json.load(response)["data"]["yaml"]
        assert "127.0.0.1:1" in config and "scrape_interval: 1s" in config
        assert os.path.isdir(running.data_dir)
    finally:
        running.stop()
    assert not answers(running.url)
    assert not os.path.exists(running.data_dir)
    running.stop()  # idempotent


def test_a_given_data_folder_is_kept(tmp_path):
    require_binary("prometheus")
    with start_prometheus([], data_dir=str(tmp_path / "tsdb")) as running:
        assert answers(running.url)
    assert (tmp_path / "tsdb").is_dir()


PARENT = (
    "import time\n"
    "from kcockpit.sources.prometheus_runner import start_prometheus\n"
    "r = start_prometheus([])\n"
    "print(r.url, r.data_dir, flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def parent_process():
    """A separate Python process that starts Prometheus and waits: (process, Prometheus URL, data folder)."""
    require_binary("prometheus")
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "..", "tui")}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )
    url, data_dir = parent.stdout.readline().split()
    assert answers(url) and os.path.isdir(data_dir)
    yield parent, url, data_dir
    if parent.poll() is None:
        parent.kill()
    parent.wait()


def test_killed_parent_still_stops_prometheus_and_removes_its_folder(parent_process):
    """SIGKILL leaves no chance for atexit: the watchdog must notice and clean up."""
    parent, url, data_dir = parent_process
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(5)
    wait_until(lambda: not answers(url) and not os.path.exists(data_dir), 10, "prometheus to stop and clean up")


def test_ctrl_c_in_the_terminal_stops_prometheus_through_atexit(parent_process):
    """Ctrl+C signals the whole foreground process group; the watchdog has its own session,
    so Prometheus keeps running until the interrupted parent's exit handlers stop it in order."""
    parent, url, data_dir = parent_process
    os.killpg(parent.pid, signal.SIGINT)
    parent.wait(10)
    assert "KeyboardInterrupt" in parent.stderr.read()
    assert not answers(url) and not os.path.exists(data_dir)  # stopped before the parent exited


def test_a_port_taken_meanwhile_is_retried_and_leaves_nothing_behind(monkeypatch, tmp_path):
    require_binary("prometheus")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1], prometheus_runner.free_port()])
        monkeypatch.setattr(prometheus_runner, "free_port", lambda host="127.0.0.1": next(ports))
        running = start_prometheus([])
    try:
        assert answers(running.url) and len(list(tmp_path.iterdir())) == 2  # this attempt's data and config
    finally:
        running.stop()
    assert list(tmp_path.iterdir()) == []


def test_a_bad_flag_gives_a_one_line_reason():
    require_binary("prometheus")
    with pytest.raises(PrometheusStartError) as error:
        start_prometheus([], extra_args=["--storage.tsdb.retention.time=banana"])
    assert "\n" not in str(error.value) and "banana" in str(error.value)


def test_demo_wiring_without_prometheus_explains_how_to_get_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    running, message = start_demo_prometheus("http://127.0.0.1:9965/metrics")
    assert running is None
    assert "apt-get install prometheus" in message and "flows" in message
