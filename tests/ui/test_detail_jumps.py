"""Jumps from the flow detail (found by a newcomer: `w` replaced the active filter, so
`verdict=dropped` was lost, and it turned pause off)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_support import UTC, FixedClock, flows, scenario_records, wait_until

from kcockpit.application.session import CaptureSession
from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import write_capture
from kcockpit.ui.app import CockpitApp
from kcockpit.ui.filtering import narrowed
from kcockpit.ui.screens.detail import FlowDetailScreen


@pytest.mark.parametrize(
    ("current", "extra", "expected"),
    [
        ("", "from:pod=a to:pod=b", "from:pod=a to:pod=b"),
        ("verdict=dropped", "", "verdict=dropped"),
        ("verdict=dropped", "from:pod=a to:pod=b or from:pod=b to:pod=a",
         "verdict=dropped from:pod=a to:pod=b or verdict=dropped from:pod=b to:pod=a"),
        ("ns=x or ns=y", "udp", "ns=x udp or ns=y udp"),
    ],
)
def test_narrowing_combines_every_alternative(current, extra, expected) -> None:
    assert narrowed(current, extra) == expected


@pytest.fixture
def app(tmp_path: Path) -> CockpitApp:
    path = tmp_path / "flows.json"
    write_capture(scenario_records(300), path)
    return CockpitApp(CaptureSession(str(path), FlowStore(10_000)), zone=UTC, clock=FixedClock(), export_dir=tmp_path)


async def test_w_narrows_the_active_filter_and_keeps_pause_on_the_same_flow(app: CockpitApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        tab = flows(app)
        tab.apply_filter("verdict=dropped")
        await wait_until(lambda: tab.table.row_count > 3, pilot)
        await pilot.press("space", "k")  # pause, and step off the newest row
        chosen = tab.table.selected
        assert not tab.table.follow and chosen is not None
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, FlowDetailScreen), pilot)
        peers = app.screen.peers_filter
        await pilot.press("w")
        await wait_until(lambda: app.screen is app.main, pilot)
        assert tab.filter_state.text == narrowed("verdict=dropped", peers)
        assert all(record.verdict_name == "DROPPED" for record in tab.table.rows.snapshot())
        assert not tab.table.follow and tab.table.selected is chosen  # still paused where it was


async def test_w_while_following_keeps_following(app: CockpitApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        tab = flows(app)
        await wait_until(lambda: tab.table.row_count > 3, pilot)
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, FlowDetailScreen), pilot)
        await pilot.press("w")
        await wait_until(lambda: app.screen is app.main, pilot)
        assert tab.table.follow


def test_exports_go_to_one_named_directory_not_the_working_directory(tmp_path: Path) -> None:
    from kcockpit.ui.export import default_export_dir

    assert default_export_dir({"KCOCKPIT_EXPORT_DIR": "/srv/x"}) == Path("/srv/x")
    assert default_export_dir({"XDG_DATA_HOME": "/d"}) == Path("/d/kcockpit/exports")
    assert default_export_dir({}) == Path.home() / ".local" / "share" / "kcockpit" / "exports"
