"""Snapshot tests of the cockpit's screens (pytest-textual-snapshot).

Deterministic: a fixed capture of generated flows, times shown in UTC, a clock that does
not move, animations off (tests/conftest.py), and the table focused (no blinking cursor).
Update after an intended change with `pytest tests/ui/test_snapshots.py --snapshot-update`
and look at the report before committing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_support import UTC, FixedClock, make_flow, scenario_records, wait_until

from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import write_capture
from kcockpit.ui.app import CockpitApp
from kcockpit.application.session import CaptureSession


@pytest.fixture
def app_factory(tmp_path: Path):
    path = tmp_path / "demo-capture.json"
    write_capture(scenario_records(120), path)

    def build(**options) -> CockpitApp:
        session = CaptureSession(str(path), FlowStore(10_000))
        session.label = "file demo-capture.json"  # the same label whatever the tmp dir
        return CockpitApp(session, zone=UTC, clock=FixedClock(), export_dir=tmp_path, **options)

    return build


def test_flows_80x24(snap_compare, app_factory) -> None:
    assert snap_compare(app_factory(), terminal_size=(80, 24))


def test_flows_120x40(snap_compare, app_factory) -> None:
    assert snap_compare(app_factory(), terminal_size=(120, 40))


def test_flows_light_theme(snap_compare, app_factory) -> None:
    assert snap_compare(app_factory(theme="light"), terminal_size=(80, 24))


def test_flows_high_contrast_theme(snap_compare, app_factory) -> None:
    assert snap_compare(app_factory(theme="high-contrast"), terminal_size=(80, 24))


def test_filtered_view(snap_compare, app_factory) -> None:
    assert snap_compare(app_factory(initial_filter="ns=otel-demo dropped"), terminal_size=(100, 30))


def test_paused_view_counts_new_flows(snap_compare, app_factory) -> None:
    app = app_factory()

    async def pause_then_receive(pilot) -> None:
        await pilot.press("space", "k", "k", "k")
        app.store.extend([make_flow(500 + i) for i in range(12)])
        # Drained by a 20 Hz timer, shown by the 5 Hz status update: wait for both, not a fixed time.
        await wait_until(lambda: app._status_bar.info is not None and app._status_bar.info.new_while_paused == 12, pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=pause_then_receive)


def test_detail_of_a_dropped_flow(snap_compare, app_factory) -> None:
    # Row 117 (two above the newest) is frontend's DNS query dropped by policy.
    assert snap_compare(app_factory(), terminal_size=(100, 40), press=["k", "k", "enter"])


def test_detail_of_a_dns_flow(snap_compare, app_factory) -> None:
    # Row 116 is CoreDNS answering NXDOMAIN.
    assert snap_compare(app_factory(), terminal_size=(100, 40), press=["k", "k", "k", "enter"])


def test_detail_on_a_wide_terminal(snap_compare, app_factory) -> None:
    # From 150 columns the hubble observe command and the jsonpb get a column of their own.
    assert snap_compare(app_factory(), terminal_size=(160, 40), press=["k", "k", "enter"])


def test_help_screen(snap_compare, app_factory) -> None:
    assert snap_compare(app_factory(), terminal_size=(100, 40), press=["question_mark"])


def test_too_small_notice(snap_compare, app_factory) -> None:
    assert snap_compare(app_factory(), terminal_size=(60, 20))
