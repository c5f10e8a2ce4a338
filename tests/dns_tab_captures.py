"""Deterministic captures of the simulated cluster for the DNS tab's tests: a ManualClock,
a seed and fixed phase lengths, so the same flows (and the same screen) every run."""

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

SECOND = 1_000_000_000
SEED = 3
STORIES = {  # name: (first phase, its seconds, second phase, its seconds, seed)
    "healthy": ("healthy", 60.0, None, 0.0, 2),  # seed 2: no upstream SERVFAIL in the minute
    "broken": ("healthy", 30.0, "broken", 30.0, SEED),
    "overload": ("fixed", 30.0, "dns-overload", 30.0, SEED),
}


def story_records(story: str, seed: int | None = None, rate: float = 150.0) -> list[FlowRecord]:
    first, first_s, second, second_s, story_seed = STORIES[story]
    seed = story_seed if seed is None else seed
    clock = ManualClock()
    scenario = Scenario(clock, mode=first)
    sim = Simulator(World.build(seed), seed=seed, clock=clock, scenario=scenario, rate=rate)
    start = clock.now_ns()
    responses = sim.advance(start + int(first_s * SECOND))
    if second is not None:
        clock.advance(first_s)
        scenario.set_phase(second)
        responses += sim.advance(start + int((first_s + second_s) * SECOND))
    records = [FlowRecord.from_bytes(r.SerializeToString()) for r in responses if r.HasField("flow")]
    return [r for r in records if r is not None]


def dns_app(tmp_path: Path, story: str, **options) -> CockpitApp:
    path = tmp_path / f"dns-{story}.json"
    if not path.exists():
        write_capture(story_records(story), path)
    session = CaptureSession(str(path), FlowStore(50_000))
    session.label = f"file dns-{story}.json"
    first, _, second, _, seed = STORIES[story]
    phase = second or first
    snapshot = static_snapshot(f"simulated cluster, {phase} phase", World.build(seed).k8s_objects(phase))
    session.integrations = Integrations(PolicyFeed(lambda: StaticSource(snapshot)))
    return CockpitApp(session, zone=UTC, clock=FixedClock(), export_dir=tmp_path, **options)


def counted(app: CockpitApp) -> bool:
    """The capture's flows are all counted (the feed counts on a thread) and the policies loaded."""
    feed = app.session.feed
    integrations = app.session.integrations
    return (feed is not None and feed.state().state == "done"
            and integrations is not None and integrations.policy.data().cluster is not None)
