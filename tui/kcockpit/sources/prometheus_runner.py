"""Run a real `prometheus` on a free loopback port, scraping given targets, for the demo and tests.

Cleanup must survive the cockpit dying in any way (normal exit, Ctrl+C, a crash, even
SIGKILL), so Prometheus is not started directly: a small watchdog process (this file run
as a script, stdlib only) starts it and holds the read end of a pipe whose write end only
the cockpit has. When the cockpit goes away the pipe reaches end-of-file, and the
watchdog stops Prometheus and removes the temporary folder. The watchdog runs in its own
session so a Ctrl+C in the terminal reaches the cockpit alone, which then stops it in order.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

INSTALL_HINT = "install it to see golden signals from Prometheus (Debian/Ubuntu: apt-get install prometheus)"
READY_TIMEOUT_S = 20.0
_STOP_GRACE_S = 5.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via an http_proxy


class PrometheusStartError(Exception):
    """Prometheus could not be started; str() is one line with its last log line."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def find_prometheus() -> str | None:
    return shutil.which("prometheus")


def scrape_config(targets: list[str], scrape_interval_s: float = 1.0, job: str = "kcockpit-demo") -> str:
    """A minimal prometheus.yml scraping `targets` (host:port) at `scrape_interval_s`."""
    interval = f"{scrape_interval_s:g}s"
    lines = ["global:", f"  scrape_interval: {interval}", f"  evaluation_interval: {interval}", "scrape_configs:"]
    if targets:
        lines += [
            f"  - job_name: {job}",
            f"    scrape_interval: {interval}",
            f"    scrape_timeout: {interval}",
            "    static_configs:",
            "      - targets: [" + ", ".join(f"'{t}'" for t in targets) + "]",
        ]
    else:
        lines[-1] = "scrape_configs: []"
    return "\n".join(lines) + "\n"


@dataclass
class RunningPrometheus:
    """A Prometheus started by `start_prometheus`. `stop()` is idempotent and also runs at exit."""

    url: str
    data_dir: str
    _watchdog: subprocess.Popen = field(repr=False)
    _pipe_write: int = field(repr=False)
    _log: Any = field(default=None, repr=False)  # Prometheus's output, for the reason it failed
    _stopped: bool = field(default=False, repr=False)

    def stop(self, timeout_s: float = _STOP_GRACE_S + 2) -> None:
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        try:
            os.close(self._pipe_write)  # end-of-file tells the watchdog to stop Prometheus and clean up
        except OSError:
            pass
        try:
            self._watchdog.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._watchdog.kill()
            self._watchdog.wait()

    @property
    def running(self) -> bool:
        return not self._stopped and self._watchdog.poll() is None

    def __enter__(self) -> RunningPrometheus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_prometheus(
    targets: list[str],
    *,
    scrape_interval_s: float = 1.0,
    data_dir: str | None = None,
    keep_data_dir: bool | None = None,
    binary: str | None = None,
    host: str = "127.0.0.1",
    ready_timeout_s: float = READY_TIMEOUT_S,
    extra_args: list[str] | None = None,
) -> RunningPrometheus:
    """Start Prometheus scraping `targets` and return once it answers /-/ready.

    Without `data_dir` a temporary folder is created and removed on stop; a given
    `data_dir` (e.g. blocks made by promtool) is kept unless `keep_data_dir=False`.
    Raises PrometheusStartError with a one-line reason."""
    binary = binary or find_prometheus()
    if not binary:
        raise PrometheusStartError(f"prometheus is not on PATH: {INSTALL_HINT}")
    keep = data_dir is not None if keep_data_dir is None else keep_data_dir
    last_error = ""
    for _attempt in range(3):  # the free port can be taken between probing and binding
        # Fresh folders per attempt: stopping a failed attempt's watchdog removes its own.
        attempt_data_dir = data_dir or tempfile.mkdtemp(prefix="kcockpit-prometheus-")
        config_dir = tempfile.mkdtemp(prefix="kcockpit-prometheus-config-")
        config_path = os.path.join(config_dir, "prometheus.yml")
        with open(config_path, "w", encoding="utf-8") as handle:
            handle.write(scrape_config(targets, scrape_interval_s))
        port = free_port(host)
        command = [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={attempt_data_dir}",
            f"--web.listen-address={host}:{port}",
            "--log.level=warn",
            *(extra_args or []),
        ]
        remove = [config_dir] if keep else [config_dir, attempt_data_dir]
        running = _spawn_watchdog(command, remove, f"http://{host}:{port}", attempt_data_dir)
        try:
            _wait_ready(running, ready_timeout_s)
            return running
        except PrometheusStartError as error:
            last_error = str(error)
            running.stop()
            if "address already in use" not in last_error:
                break
    raise PrometheusStartError(last_error)


def _spawn_watchdog(command: list[str], remove: list[str], url: str, data_dir: str) -> RunningPrometheus:
    read_end, write_end = os.pipe()
    log = tempfile.TemporaryFile()  # already unlinked: nothing to clean up, readable on failure
    watchdog = subprocess.Popen(
        [sys.executable, "-S", os.path.abspath(__file__), "--watchdog", str(read_end), *remove, "--", *command],
        pass_fds=(read_end,),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        close_fds=True,
    )
    os.close(read_end)
    os.set_inheritable(write_end, False)
    running = RunningPrometheus(url=url, data_dir=data_dir, _watchdog=watchdog, _pipe_write=write_end, _log=log)
    atexit.register(running.stop)
    return running


def _wait_ready(running: RunningPrometheus, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if running._watchdog.poll() is not None:
            raise PrometheusStartError(f"prometheus exited at start: {_last_log_line(running)}")
        try:
            with _DIRECT.open(running.url + "/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise PrometheusStartError(f"prometheus at {running.url} not ready after {timeout_s:g} s: {_last_log_line(running)}")


def _last_log_line(running: RunningPrometheus) -> str:
    log = running._log
    log.seek(0)
    lines = [line for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
    markers = ("level=error", "err=", "Error", "error:")
    errors = [line for line in lines if any(marker in line for marker in markers)] or lines
    return errors[-1].strip() if errors else "no output"


# ---------------------------------------------------------------------------- demo wiring


def start_demo_prometheus(metrics_url: str, scrape_interval_s: float = 1.0) -> tuple[RunningPrometheus | None, str]:
    """For `kcockpit --demo`: a Prometheus scraping the simulator's /metrics when possible.

    Returns (running, message): running is None when Prometheus is missing or failed, and
    the message then says why and how to get it; otherwise it says where it runs."""
    target = metrics_url.split("://", 1)[-1].split("/", 1)[0]
    if not find_prometheus():
        return None, f"prometheus is not on PATH, showing signals computed from flows; {INSTALL_HINT}"
    try:
        running = start_prometheus([target], scrape_interval_s=scrape_interval_s)
    except PrometheusStartError as error:
        return None, f"could not start prometheus ({error}); showing signals computed from flows"
    return running, f"prometheus at {running.url} scraping {metrics_url} (first samples after about 5 s)"


# ---------------------------------------------------------------------------- the watchdog


def _set_parent_death_signal() -> None:
    """Linux: make Prometheus get SIGTERM if the watchdog itself is killed."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _watchdog_main(argv: list[str]) -> int:
    read_fd = int(argv[0])
    separator = argv.index("--")
    remove, command = argv[1:separator], argv[separator + 1 :]
    parent_gone = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: parent_gone.set())  # stop the same way as on end-of-file
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=_set_parent_death_signal)

    def wait_for_eof() -> None:
        try:
            while os.read(read_fd, 4096):
                pass
        except OSError:
            pass
        parent_gone.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    while not parent_gone.is_set() and child.poll() is None:
        parent_gone.wait(0.2)
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    for path in remove:
        shutil.rmtree(path, ignore_errors=True)
    return child.returncode or 0


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--watchdog":
    sys.exit(_watchdog_main(sys.argv[2:]))
