"""A deterministic Policies tab: the simulator's broken phase as a capture, and the same
world's Kubernetes objects of that phase as the policy data (no threads, no network)."""

from __future__ import annotations

from pathlib import Path

from ui_support import UTC, FixedClock

from kcockpit.application.integrations import Integrations, PolicyFeed
from kcockpit.application.session import CaptureSession
from kcockpit.model.record import FlowRecord
from kcockpit.model.store import FlowStore
from kcockpit.sim.clock import ManualClock
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.traffic import Simulator
from kcockpit.sim.world import World
from kcockpit.sources.capture import write_capture
from kcockpit.sources.kubernetes import StaticSource, static_snapshot
from kcockpit.ui.app import CockpitApp

SEED = 1


def phase_records(phase: str, seconds: int = 30, rate: float = 100.0) -> list[FlowRecord]:
    clock = ManualClock()
    scenario = Scenario(clock, mode=phase, loop=True, start_ns=clock.now_ns())
    simulator = Simulator(World.build(SEED), seed=SEED, clock=clock, scenario=scenario, rate=rate)
    records = []
    for _ in range(seconds):
        clock.advance(1.0)
        records += [FlowRecord.from_bytes(r.SerializeToString()) for r in simulator.advance()]
    return records


def phase_policy_feed(phase: str) -> PolicyFeed:
    objects = World.build(SEED).k8s_objects(phase)
    return PolicyFeed(lambda: StaticSource(static_snapshot(f"demo world ({phase})", objects)), label="files")


def policies_app(tmp_path: Path, phase: str = "broken", seconds: int = 30) -> CockpitApp:
    path = tmp_path / f"{phase}-capture.json"
    if not path.exists():
        write_capture(phase_records(phase, seconds), path)
    session = CaptureSession(str(path), FlowStore(50_000))
    session.label = f"file {phase}-capture.json"
    session.integrations = Integrations(phase_policy_feed(phase))
    return CockpitApp(session, zone=UTC, clock=FixedClock(), export_dir=tmp_path)
