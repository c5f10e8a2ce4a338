"""Review 2: `kcockpit demo-server` stops cleanly on a double SIGINT.

Found by hand: `timeout 900 kcockpit demo-server ... --kube-api ...` with kcockpit
connected, then SIGINT to both `timeout` (which forwards it) and the server, i.e. two
SIGINTs at once, as an impatient second Ctrl+C does: the second KeyboardInterrupt was
raised inside the shutdown; grpc printed "RuntimeError: cannot schedule new futures after
shutdown" and the process hung, holding its port; other times it died with "RuntimeError:
release unlocked lock" or exit 130. Ctrl+C now sets the stop event like SIGTERM, and is
ignored once the shutdown runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest


@pytest.mark.parametrize("attempt", range(3))
def test_two_sigints_stop_the_server_cleanly(attempt: int) -> None:
    server = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "kcockpit", "demo-server", "--listen", "127.0.0.1:0",
         "--kube-api", "127.0.0.1:0", "--backfill", "1", "--scenario", "broken"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(server.stderr), daemon=True)  # never let stderr fill up
    reader.start()
    try:
        lines = [server.stdout.readline() for _ in range(4)]
        assert any(re.search(r"on 127\.0\.0\.1:\d+", line) for line in lines), lines
        assert any("kube-api: http://127.0.0.1:" in line for line in lines), lines
        time.sleep(0.5)
        os.kill(server.pid, signal.SIGINT)
        time.sleep(0.05 * attempt)  # the second one at once, or while the servers stop
        os.kill(server.pid, signal.SIGINT)
        try:
            code = server.wait(timeout=45)  # generous: two busy cores slow the shutdown
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGABRT)  # faulthandler prints every thread's stack
            server.wait()
            reader.join(timeout=5)
            pytest.fail("demo-server still running 45 s after two SIGINTs:\n" + "".join(errors)[-8000:])
        reader.join(timeout=5)
        stderr = "".join(errors)
        assert code == 0, stderr
        assert "Traceback" not in stderr, stderr
        assert "kcockpit demo-server: stopped" in stderr
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
