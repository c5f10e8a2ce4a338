"""Start-up: what `kcockpit --demo` loads before its first frame (see benchmarks/startup.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ui_support import demo_app, wait_until

from kcockpit.application.session import CaptureSession, HubbleSession, Session
from kcockpit.model.store import FlowStore
from kcockpit.sim.embedded import DemoCluster
from kcockpit.ui.app import FIRST_FRAME_WAIT_S, CockpitApp
from kcockpit.ui.tabs.flows import FlowsTab
from kcockpit.wire.connection import HubbleConnection

ROOT = Path(__file__).resolve().parents[1]

# Heavy modules the first frame does without: each is imported where it is first used.
NOT_BEFORE_THE_FIRST_FRAME = (
    "httpx",  # Prometheus's client: the background starts it
    "kubernetes",  # the policy source, opened on a thread after the first frame
    "kcockpit.application.policy_insights",  # the policy engine, once the Policies tab computes
    "kcockpit.application.talk",  # talk mode only
    "playwright",
)


def test_the_first_frame_path_imports_nothing_heavy_it_does_not_need() -> None:
    probe = (
        "import sys\n"
        "import kcockpit.cli, kcockpit.ui.cli, kcockpit.ui.app, kcockpit.sim.embedded, kcockpit.application.session\n"
        f"print(' '.join(m for m in {NOT_BEFORE_THE_FIRST_FRAME!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "tui")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def test_the_policies_tab_styles_every_check_of_the_insights() -> None:
    from kcockpit.application import policy_insights
    from kcockpit.ui.tabs import policies

    assert set(policies._CHECK_STYLE) == set(policy_insights.CHECK_MARK)


# --- what starts when ---------------------------------------------------------------------


async def test_the_background_starts_once_the_first_flows_are_on_screen(tmp_path: Path) -> None:
    """The aggregator child, policy data and Prometheus must not slow the first frame down:
    they start once it shows flows."""
    app = demo_app(tmp_path, DemoCluster(seed=3, rate=300, backfill_s=5))
    session = app.session
    seen: list[tuple[int, int | None]] = []
    start_background = session.start_background

    def recorded() -> None:
        seen.append((app.tab(FlowsTab).table.row_count, session.feed.child_pid))
        start_background()

    session.start_background = recorded
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: seen, pilot)
        rows, child = seen[0]
        assert rows > 0 and child is None  # flows on screen, no aggregator child yet
        await wait_until(lambda: session.feed.child_pid is not None, pilot)
        await wait_until(lambda: session.integrations.policy.source is not None, pilot)
    assert seen == seen[:1]  # once


async def test_without_flows_the_background_starts_all_the_same(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("")
    session = CaptureSession(str(path), FlowStore(10))
    app = CockpitApp(session, export_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: session.feed.state().state == "done", pilot, timeout=FIRST_FRAME_WAIT_S + 10)


class _Part:
    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.stops = 0

    def stop(self) -> None:
        self.stops += 1
        if self.fails:
            raise RuntimeError("cannot join thread before it is started")


async def test_a_part_that_fails_to_stop_does_not_keep_the_others_running() -> None:
    """Seen once: quitting while the policy source started raised, the aggregator child and
    the demo's servers were never stopped, and the cockpit hung at exit."""
    class Integrations(_Part):
        async def stop(self) -> None:
            await asyncio.sleep(0)
            super().stop()

    session = Session(FlowStore(10))
    session.integrations, session.feed = Integrations(fails=True), _Part()
    with pytest.raises(RuntimeError, match="cannot join thread"):
        await session.stop()
    assert (session.integrations.stops, session.feed.stops) == (1, 1)
    assert session.stopped
    await session.stop()  # once is enough
    assert (session.integrations.stops, session.feed.stops) == (1, 1)


async def test_the_first_frame_says_connecting_not_stopped() -> None:
    """The first status line is composed right after the stream is started, before its
    reader thread has run: it read `● stopped` until the next update."""
    session = HubbleSession(HubbleConnection(server="127.0.0.1:1"), FlowStore(10))
    assert session.state().state == "stopped"  # not started
    session.stream.start = lambda: None  # as if its thread had not run yet
    session.start_flows()
    assert session.state().state == "connecting"
    await session.stop()
    assert session.state().state == "stopped"
