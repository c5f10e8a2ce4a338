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


def _sockets() -> set[str]:
    """This process's open sockets, by inode ("socket:[1234]"): a new socket is told apart
    from a closed one even when it reuses the file descriptor."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:"):
            found.add(target)
    return found


def _leftovers(baseline: tuple[set, set], timeout: float = 20.0) -> tuple[set, set]:
    """Threads and sockets that exist now but not at `baseline`, once they stop going away.
    Things of earlier tests that close meanwhile do not count (they did with plain counts)."""
    deadline = time.monotonic() + timeout
    while True:
        threads = set(threading.enumerate()) - baseline[0]
        sockets = _sockets() - baseline[1]
        if not (threads or sockets) or time.monotonic() > deadline:
            return threads, sockets
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts sockets through /proc")
def test_start_stop_twenty_times_leaves_no_thread_or_socket_behind(tmp_path: Path) -> None:
    api = start_kube_api(World.build(13), phase="broken")
    try:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        baseline = (set(threading.enumerate()), _sockets())
        for _ in range(20):
            source = KubernetesSource.from_kubeconfig(str(kubeconfig), retry_max_s=0.2, resync_s=30)
            source.start()
            assert source.wait(lambda snapshot: snapshot.ready, 20).ready
            source.stop()
        # Threads of both the source and the API server's watch handlers, and the sockets between them.
        # The handlers notice a closed watch on their next 0.5 s wake-up: slower with the CPU busy.
        assert _leftovers(baseline) == (set(), set())
    finally:
        api.stop()
