"""Notices never cover the flow table at 80x24 (found by a newcomer: "Demo scenario: broken"
and "Filter cleared" hid the VERDICT column for seconds)."""

from __future__ import annotations

from pathlib import Path

from ui_support import UTC, FixedClock, flows, scenario_records, wait_until
from textual.widgets._toast import Toast

from kcockpit.application.session import CaptureSession
from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import write_capture
from kcockpit.ui.app import CockpitApp


async def test_a_notice_takes_the_footer_line_and_leaves_the_table_alone(tmp_path: Path) -> None:
    path = tmp_path / "flows.json"
    write_capture(scenario_records(200), path)
    app = CockpitApp(CaptureSession(str(path), FlowStore(10_000)), zone=UTC, clock=FixedClock(), export_dir=tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        tab = flows(app)
        tab.apply_filter("verdict=dropped")
        await pilot.press("escape")  # clears the filter: "Filter cleared" with how to get it back
        await wait_until(lambda: list(app.screen.query(Toast)), pilot)
        toasts = list(app.screen.query(Toast))
        assert len(toasts) == 1
        notice = toasts[0].region
        assert notice.height == 1 and notice.y == 23  # the footer's line
        assert not notice.overlaps(tab.table.region)
        assert "Filter cleared" in str(toasts[0].render())
        app.notify("second")  # a new notice replaces the old one instead of stacking over the table
        await pilot.pause()
        await wait_until(lambda: len(list(app.screen.query(Toast))) == 1 and "second" in str(next(iter(app.screen.query(Toast))).render()), pilot)


async def test_a_filter_mistake_shows_where_and_the_suggestion_within_80_columns(tmp_path: Path) -> None:
    from kcockpit.ui.widgets.filter_bar import FilterBar

    path = tmp_path / "flows.json"
    write_capture(scenario_records(50), path)
    app = CockpitApp(CaptureSession(str(path), FlowStore(1000)), zone=UTC, clock=FixedClock(), export_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"verdict=dropd", "enter")
        error = app.screen.query_one("#filter-error")
        await wait_until(lambda: error.region.height > 0, pilot)
        first_line = "".join(segment.text for segment in error.render_line(0)).strip()
        assert first_line.startswith("✗ column 1: unknown verdict 'dropd': did you mean 'dropped'?")
        assert error.region.right <= 80
        assert app.screen.query_one(FilterBar).input.value == "verdict=dropd"  # what was typed stays


async def test_help_explains_the_status_bar_and_what_n_lost_means(tmp_path: Path) -> None:
    from kcockpit.ui.screens.help import HelpScreen

    path = tmp_path / "flows.json"
    write_capture(scenario_records(20), path)
    app = CockpitApp(CaptureSession(str(path), FlowStore(1000)), zone=UTC, clock=FixedClock(), export_dir=tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await wait_until(lambda: isinstance(app.screen, HelpScreen), pilot)
        text = " ".join(str(static.render()) for static in app.screen.query("Static"))
        words = " ".join(text.split())
        assert "THE STATUS BAR" in words
        assert "N lost events Hubble itself lost before sending them" in words
        assert "lower bounds" in words
