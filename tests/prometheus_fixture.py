"""Shared by the tests that need Prometheus: `require_binary` (in CI, CI=true, a missing
prometheus or promtool fails the test, locally it skips with the reason) and
`simulator_metrics` (the simulator emitting in real time, its /metrics served to scrape)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not on PATH (Debian/Ubuntu: apt-get install prometheus)"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{message}; CI must run the Prometheus tests")
    pytest.skip(message)


@contextmanager
def simulator_metrics(mode: str) -> Iterator:
    """The simulator (seed 3, 600 flows/s) in scenario `mode`, advanced from a thread in real
    time, with its /metrics served on loopback: yields the metrics server (`.url`)."""
    from kcockpit.sim.metrics import serve_simulator_metrics
    from kcockpit.sim.scenario import Scenario
    from kcockpit.sim.traffic import Simulator
    from kcockpit.sim.world import World

    simulator = Simulator(World.build(3), seed=3, scenario=Scenario(mode=mode), rate=600)
    _, server = serve_simulator_metrics(simulator, "127.0.0.1", 0)
    stop = threading.Event()

    def drive() -> None:
        while not stop.wait(0.05):
            simulator.advance()

    driver = threading.Thread(target=drive, name="simulator", daemon=True)
    driver.start()
    try:
        yield server
    finally:
        stop.set()
        driver.join(5)
        server.stop()
