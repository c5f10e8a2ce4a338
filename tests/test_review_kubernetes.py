"""Review: the Kubernetes source and the loopback API server release everything on stop."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from kcockpit.sim.kube_api import start_kube_api, write_kubeconfig
from kcockpit.sim.world import World
from kcockpit.sources.kubernetes import KubernetesSource


def _sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return count


def _settles(expected: tuple[int, int], timeout: float = 20.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        now = (threading.active_count(), _sockets())
        if (now[0] <= expected[0] and now[1] <= expected[1]) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts sockets through /proc")
def test_start_stop_twenty_times_leaves_no_thread_or_socket_behind(tmp_path: Path) -> None:
    api = start_kube_api(World.build(13), phase="broken")
    try:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        baseline = (threading.active_count(), _sockets())
        for _ in range(20):
            source = KubernetesSource.from_kubeconfig(str(kubeconfig), retry_max_s=0.2, resync_s=30)
            source.start()
            assert source.wait(lambda snapshot: snapshot.ready, 20).ready
            source.stop()
        # Threads of both the source and the API server's watch handlers, and the sockets between them.
        # The handlers notice a closed watch on their next 0.5 s wake-up: slower with the CPU busy.
        assert _settles(baseline) == baseline
    finally:
        api.stop()
