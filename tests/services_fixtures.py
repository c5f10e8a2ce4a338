"""Deterministic demo captures for the Services tab's tests: the simulator on a manual
clock, seed 1, a fixed story (healthy, or healthy then broken), counted by a CaptureSession
whose windows end at the newest flow."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ui_support import UTC, FixedClock

from kcockpit.application.session import CaptureSession
from kcockpit.model.record import FlowRecord
from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import write_capture
from kcockpit.ui.app import CockpitApp


@lru_cache(maxsize=4)
def demo_raws(phase: str, seconds: int = 70, rate: float = 120.0) -> tuple[bytes, ...]:
    """`seconds` of demo traffic: 'healthy' throughout, or 'broken' after 20 s of healthy
    (so a 1 m window ending at the newest flow holds 10 s of healthy and 50 s of broken)."""
    from kcockpit.sim.clock import ManualClock
    from kcockpit.sim.scenario import Scenario
    from kcockpit.sim.traffic import Simulator
    from kcockpit.sim.world import World

    clock = ManualClock()
    if phase == "healthy":
        scenario = Scenario(clock, mode="healthy", loop=False, start_ns=clock.now_ns())
    else:
        scenario = Scenario(clock, durations_s={"healthy": 20, "broken": 3600}, loop=False, start_ns=clock.now_ns())
    simulator = Simulator(World.build(1), seed=1, clock=clock, scenario=scenario, rate=rate)
    raws: list[bytes] = []
    for _ in range(seconds):
        clock.advance(1.0)
        raws.extend(response.SerializeToString() for response in simulator.advance())
    return tuple(raws)


def demo_capture(tmp_path: Path, phase: str) -> Path:
    path = tmp_path / f"demo-{phase}.json"
    records = (FlowRecord.from_bytes(raw) for raw in demo_raws(phase))
    write_capture((record for record in records if record is not None), path)
    return path


def services_app(tmp_path: Path, phase: str = "broken", **options) -> CockpitApp:
    session = CaptureSession(str(demo_capture(tmp_path, phase)), FlowStore(20_000))
    session.label = f"file demo-{phase}.json"
    return CockpitApp(session, zone=UTC, clock=FixedClock(), export_dir=tmp_path, **options)
