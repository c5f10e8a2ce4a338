"""Pilot tests of the cockpit's key flows, on a fixed capture (the real CaptureSession)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_support import UTC, FixedClock, capture, flows, make_app, make_flow, scenario_records, wait_until  # noqa: F401 - capture is a fixture

from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import read_capture, write_capture
from kcockpit.ui.app import CockpitApp
from kcockpit.ui.export import export_records
from kcockpit.ui.screens.detail import FlowDetailScreen
from kcockpit.ui.screens.help import HelpScreen
from kcockpit.ui.screens.too_small import TooSmallScreen
from kcockpit.application.integrations import Integrations, PolicyFeed
from kcockpit.application.session import CaptureSession
from kcockpit.wire.hubble_pb import flow_pb


async def run_from_palette(pilot, name: str) -> None:
    """Open the command palette, type `name`, run the first match.

    The palette searches in a worker and runs the chosen command with call_later after it
    closes: wait for the search to have highlighted the match, and for the palette to close;
    callers wait for the command's effect."""
    from textual.command import CommandList, CommandPalette

    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_until(lambda: isinstance(app.screen, CommandPalette), pilot)
    await pilot.press(*name)

    def match_highlighted() -> bool:
        commands = app.screen.query_one(CommandList)
        if commands.highlighted is None:
            return False
        prompt = commands.get_option_at_index(commands.highlighted).prompt
        return name.lower() in getattr(prompt, "plain", str(prompt)).lower()

    await wait_until(match_highlighted, pilot)
    await pilot.press("enter")
    await wait_until(lambda: not isinstance(app.screen, CommandPalette), pilot)
    await pilot.pause()


async def open_detail(pilot) -> None:
    """enter on the table: the table posts Opened and the app pushes the detail screen, a few
    messages later. Keys for the detail screen must wait for it, or they reach the flow list."""
    await pilot.press("enter")
    await wait_until(lambda: isinstance(pilot.app.screen, FlowDetailScreen), pilot)


async def test_filter_typed_and_applied_locally_and_at_the_source(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        assert len(flows(app).table.rows) == 120
        await pilot.press("slash")
        assert flows(app).filter_bar.input.has_focus
        await pilot.press(*"verdict=dropped", "enter")
        await pilot.pause()
        rows = flows(app).table.rows.snapshot()
        assert len(rows) == 20
        assert {r.verdict for r in rows} == {flow_pb.DROPPED}
        assert flows(app).table.follow  # fewer rows moved the view up, which is not the user scrolling
        assert flows(app).table.has_focus
        whitelist, blacklist = app.session.requested[-1]
        assert [list(f.verdict) for f in whitelist] == [[flow_pb.DROPPED]]
        assert blacklist == ()


async def test_a_big_store_shows_the_newest_matches_first_then_all(tmp_path: Path, monkeypatch) -> None:
    from kcockpit.ui.tabs import flows as flows_module

    monkeypatch.setattr(flows_module, "REFILTER_STEP", 500)
    path = tmp_path / "big.json"
    write_capture(scenario_records(3000), path)
    app = make_app(path, tmp_path)
    shown: list[int] = []
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(lambda: len(flows(app).table.rows) == 3000, pilot)
        tab = flows(app)
        original = tab._show_partial_refilter
        monkeypatch.setattr(tab, "_show_partial_refilter",
                            lambda rows, *rest: (shown.append(len(rows)), original(rows, *rest)))
        assert tab.apply_filter("dropped")
        await wait_until(lambda: not tab.refiltering, pilot)
        # The newest 500 flows hold 83 drops (one flow in six): shown first, then all 500.
        assert shown == [83]
        rows = tab.table.rows.snapshot()
        assert len(rows) == 500 and {r.verdict for r in rows} == {flow_pb.DROPPED}
        assert [r.time_ns for r in rows] == sorted(r.time_ns for r in rows)


async def test_type_ahead_after_slash_goes_to_the_filter(capture: Path, tmp_path: Path) -> None:
    """Keys that arrive together with `/` (a fast typist over SSH) land in the filter bar,
    not in the table: `n` would otherwise open the namespace picker. A `/` typed inside
    the bar is text (http-path=/api)."""
    from textual import events

    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        text = "ns=otel-demo http-path=/api"
        # Post every key before any is processed, as a burst from the terminal would arrive.
        for key, character in [("slash", "/")] + [(c if c.isalnum() else {"=": "equals_sign", " ": "space", "-": "minus", "/": "slash"}[c], c) for c in text]:
            app.post_message(events.Key(key, character))
        await pilot.pause()
        await pilot.pause()
        assert app.screen is app.main  # no namespace picker
        assert flows(app).filter_bar.input.value == text


async def test_filter_error_keeps_text_and_previous_filter(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path, initial_filter="dropped")
    async with app.run_test(size=(100, 30)) as pilot:
        assert len(flows(app).table.rows) == 20
        await pilot.press("slash", *" verdcit=x", "enter")
        await pilot.pause()
        bar = flows(app).filter_bar
        assert bar.text == "dropped verdcit=x"
        assert bar.has_class("-error")
        assert "verdcit" in str(bar.query_one("#filter-error").render())
        assert flows(app).filter_state.text == "dropped"
        assert len(flows(app).table.rows) == 20
        await pilot.press("escape")
        assert flows(app).table.has_focus and not bar.has_class("-error")


async def test_verdict_cycle(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path, initial_filter="ns=otel-demo")
    async with app.run_test(size=(100, 30)) as pilot:
        seen = []
        for _ in range(4):
            await pilot.press("v")
            await pilot.pause()
            seen.append((flows(app).filter_state.text, len(flows(app).table.rows)))
        assert seen == [
            ("ns=otel-demo verdict=forwarded", 100),
            ("ns=otel-demo verdict=dropped", 20),
            ("ns=otel-demo verdict=audit", 0),
            ("ns=otel-demo", 120),
        ]


async def test_drill_down_back_and_jump_to_source_drops(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("k", "k")  # row 117: a policy drop of frontend's DNS
        selected = flows(app).table.selected
        assert selected is not None and selected.verdict == flow_pb.DROPPED
        await open_detail(pilot)
        assert app.screen.record is selected
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, FlowDetailScreen)
        assert flows(app).table.selected is selected  # the cursor stayed on the flow
        await open_detail(pilot)
        await pilot.press("d")
        # The screen's result reaches the app's callback after the pop, which applies the filter.
        await wait_until(lambda: not isinstance(app.screen, FlowDetailScreen) and flows(app).filter_state.text != "", pilot)
        rows = flows(app).table.rows.snapshot()
        assert rows and all(r.verdict == flow_pb.DROPPED and r.source.pod == selected.source.pod for r in rows)


async def test_copy_from_detail_uses_the_clipboard(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_detail(pilot)
        await pilot.press("y")
        assert app.clipboard.startswith("hubble observe")
        await pilot.press("c")
        assert app.clipboard.startswith('{"flow":') or app.clipboard.startswith("{")


async def test_pause_counts_new_flows_and_resume_jumps_to_newest(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        table = flows(app).table
        await pilot.press("space")
        assert not table.follow
        cursor = table.cursor
        app.store.extend([make_flow(1000 + i) for i in range(7)])
        await wait_until(lambda: table.new_while_paused >= 7, pilot)  # drained by a 20 Hz timer
        assert table.new_while_paused == 7
        assert table.cursor == cursor  # the view did not jump
        await pilot.press("space")
        assert table.follow and table.new_while_paused == 0
        assert table.cursor == len(table.rows) - 1 == 126


async def test_moving_up_pauses_follow(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("k")
        assert not flows(app).table.follow
        await pilot.press("G")
        assert flows(app).table.follow


async def test_export_writes_a_capture_of_the_filtered_view(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path, initial_filter="dropped")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("x")
        await pilot.pause()
    exported = [p for p in tmp_path.glob("kcockpit-flows-*.json")]
    assert len(exported) == 1
    result = read_capture(exported[0])
    assert not result.problems
    assert [r.raw for r in result.records] == [r.raw for r in scenario_records(120) if r.verdict == flow_pb.DROPPED]


async def test_tabs_switch_with_numbers_and_tab(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        switcher = app.main.query_one("#tabs")
        await pilot.press("3")
        assert switcher.current == "dns"
        assert app.focused is not None and app.focused.id in ("dns-verdicts", "dns-table")  # the DNS tab has focus
        await pilot.press("tab")
        assert switcher.current == "policies"
        await pilot.press("tab")
        assert switcher.current == "flows" and flows(app).table.has_focus


async def test_help_lists_every_key_of_the_view_with_ids(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        ids = {binding_id for _, _, binding_id in app.screen.rows}
        assert {"flows.open", "flows.toggle_follow", "flows.down", "flows.filter", "flows.verdict", "flows.namespace",
                "flows.export", "app.help", "app.quit", "app.tab.flows"} <= ids
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_palette_offers_every_bound_action(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)):
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Open", "Pause", "Filter", "Verdict", "Namespace", "Export view", "Help", "Quit",
                "Theme: light", "Theme: high-contrast"} <= titles


async def test_too_small_terminal_shows_a_notice_then_recovers(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not isinstance(app.screen, TooSmallScreen)


async def test_capture_session_reports_skipped_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixed.json"
    write_capture(scenario_records(3), path)
    with path.open("a") as handle:
        handle.write("not json\n")
    session = CaptureSession(str(path), FlowStore(100))
    assert len(session.store) == 3
    assert session.state().detail == "1 bad line skipped"
    session.integrations = Integrations(PolicyFeed(None, disabled="test"))
    session.start()
    (notice,) = [n for n in session.integrations.notices.take() if n.title == "Capture file"]
    assert notice.severity == "warning"
    assert "1 bad line skipped, the other 3 flows loaded" in notice.text
    assert f"{path}:4: " in notice.text  # where: file and line number
    await session.stop()


def picker_done(app: CockpitApp) -> bool:
    """The namespace picker is closed and the worker that opened it has applied the choice."""
    from kcockpit.ui.screens.namespaces import NamespacePicker

    return not isinstance(app.screen, NamespacePicker) and not any(
        worker.group == "namespaces" and not worker.is_finished for worker in app.workers
    )


async def test_namespace_picker_sets_the_namespace_term(capture: Path, tmp_path: Path) -> None:
    from kcockpit.ui.screens.namespaces import NamespacePicker

    app = make_app(capture, tmp_path, initial_filter="dropped")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")  # the picker is pushed by a worker, after the key is handled
        await wait_until(lambda: isinstance(app.screen, NamespacePicker), pilot)
        assert app.screen.namespaces == ["kube-system", "otel-demo"]
        await pilot.press("j", "j", "enter")  # (all), kube-system, otel-demo
        await wait_until(lambda: picker_done(app), pilot)  # the worker applies the choice after the pop
        assert flows(app).filter_state.text == "dropped namespace=otel-demo"
        await pilot.press("n")
        await wait_until(lambda: isinstance(app.screen, NamespacePicker), pilot)
        await pilot.press("k", "k", "enter")
        await wait_until(lambda: picker_done(app), pilot)
        assert flows(app).filter_state.text == "dropped"


async def test_mouse_clicks_switch_tabs_and_select_rows(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.click("#tab-bar", offset=(24, 0))  # " 2 Services "
        assert app.main.query_one("#tabs").current == "services"
        await pilot.click("#tab-bar", offset=(12, 0))  # " 1 Flows "
        assert app.main.query_one("#tabs").current == "flows"
        await pilot.click("#flow-table", offset=(5, 3))
        assert not flows(app).table.follow and flows(app).table.cursor == round(flows(app).table.scroll_y) + 2
        await pilot.click("#flow-table", offset=(5, 3), times=2)
        await wait_until(lambda: isinstance(app.screen, FlowDetailScreen), pilot)  # the table posts Opened to the app


async def test_palette_runs_an_action_by_name(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await run_from_palette(pilot, "export view")
        await wait_until(lambda: any(tmp_path.glob("kcockpit-flows-*.json")), pilot)
    assert len(list(tmp_path.glob("kcockpit-flows-*.json"))) == 1


async def test_help_on_the_detail_screen_lists_its_keys(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_detail(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        ids = {binding_id for _, _, binding_id in app.screen.rows}
        assert {"detail.back", "detail.peers", "detail.source_drops", "detail.copy_json", "detail.copy_command"} <= ids
        assert "flows.verdict" not in ids  # acts on the flow list only


def test_no_color_is_honoured(capture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(capture, tmp_path)
    assert app.no_color
    assert any(type(f).__name__ in ("Monochrome", "NoColor") for f in app._filters)


async def test_theme_cycle_repaints_rows_in_the_new_colours(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        before = flows(app).table.render_line(1)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.theme == "kcockpit-light"
        after = flows(app).table.render_line(1)
        assert after.text == before.text
        assert [s.style for s in after] != [s.style for s in before]


async def test_scrolling_back_pauses_follow(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        assert flows(app).table.follow
        flows(app).table.scroll_up(animate=False)  # what the mouse wheel and the scrollbar do
        await pilot.pause()
        assert not flows(app).table.follow
        app.store.extend([make_flow(900 + i) for i in range(3)])
        await wait_until(lambda: flows(app).table.new_while_paused >= 3, pilot)  # drained by a 20 Hz timer
        assert flows(app).table.new_while_paused == 3


async def test_palette_finds_every_action_whatever_has_focus(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        expected = {"Open", "Pause", "Down", "Oldest", "Filter", "Verdict", "Namespace", "Export view", "Aggregate",
                    "Help", "Quit", "Flows", "Services", "Next tab", "Theme", "Theme: light"}
        with_table = {command.title for command in app.get_system_commands(app.screen)}
        await pilot.press("slash")  # the filter input has focus now
        assert flows(app).filter_bar.input.has_focus
        with_input = {command.title for command in app.get_system_commands(app.screen)}
        await pilot.press("escape", "2")  # another tab: the flow list's keys do nothing there
        with_tab = {command.title for command in app.get_system_commands(app.screen)}
        assert expected <= with_table and with_input == with_table
        assert {"Help", "Quit", "Flows", "Services", "Next tab", "Theme", "Theme: light"} <= with_tab
        assert not {"Open", "Pause", "Filter", "Verdict", "Namespace", "Export view", "Aggregate"} & with_tab
        assert not any("cursor" in title.lower() for title in with_input)  # not the input's own keys


async def test_palette_runs_a_flow_list_action_from_the_filter_bar(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("slash")
        await run_from_palette(pilot, "pause")
        await wait_until(lambda: not flows(app).table.follow, pilot)


@pytest.fixture
def burst_capture(tmp_path: Path) -> Path:
    """Twenty identical policy drops in a row between other flows, as a broken DNS policy makes them."""
    from ui_support import COREDNS, FRONTEND

    drops = [make_flow(10 + i, FRONTEND, COREDNS, udp=True, port=53, verdict=flow_pb.DROPPED,
                       drop_reason=flow_pb.POLICY_DENIED) for i in range(20)]
    path = tmp_path / "burst.json"
    write_capture([*scenario_records(6), *drops, *scenario_records(3)], path)
    return path


async def test_aggregation_toggle_collapses_bursts_and_keeps_every_flow(burst_capture: Path, tmp_path: Path) -> None:
    app = make_app(burst_capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        table = flows(app).table
        assert table.row_count == 29 and not table.aggregate
        await pilot.press("a")
        await pilot.pause()
        assert table.aggregate and len(table.rows) == 29
        assert table.row_count == 29 - 19
        burst, count = table.rows.row(6)
        assert count == 20 and burst.verdict == flow_pb.DROPPED
        assert "×20" in table.render_line(1 + 6 - round(table.scroll_y)).text
        assert table.render_line(0).text.startswith("TIME     ×     SOURCE")
        await pilot.press("x")  # export has every flow, not one per row
        await pilot.pause()
        exported = read_capture(next(tmp_path.glob("kcockpit-flows-*.json")))
        assert len(exported.records) == 29
        app.store.extend([make_flow(500 + i) for i in range(3)])  # identical flows arriving live
        await wait_until(lambda: len(table.rows) == 32, pilot)  # drained by a 20 Hz timer
        assert table.row_count == 11 and table.rows.row(10)[1] == 3
        assert table.cursor == 10 and table.follow
        await pilot.press("a")
        await pilot.pause()
        assert not table.aggregate and table.row_count == 32


async def test_aggregation_toggled_while_paused_stays_on_the_selected_flow(burst_capture: Path, tmp_path: Path) -> None:
    app = make_app(burst_capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        table = flows(app).table
        await pilot.press("g", *"j" * 10)  # row 10: inside the burst of drops (rows 6-25)
        selected = table.selected
        assert selected is not None and selected.verdict == flow_pb.DROPPED and not table.follow
        await pilot.press("a")
        await pilot.pause()
        assert not table.follow and table.cursor == 6 and table.rows.row(6)[1] == 20
        await pilot.press("a")
        await pilot.pause()
        assert not table.follow and table.cursor == 25  # the flow the aggregated row showed: the burst's newest


async def test_aggregation_from_the_palette_and_at_start(burst_capture: Path, tmp_path: Path) -> None:
    app = make_app(burst_capture, tmp_path, aggregate=True, initial_filter="dropped")
    async with app.run_test(size=(100, 30)) as pilot:
        assert flows(app).table.aggregate and flows(app).table.row_count == 1 and flows(app).table.rows.row(0)[1] == 21
        await run_from_palette(pilot, "aggregate")
        await wait_until(lambda: not flows(app).table.aggregate, pilot)
        assert flows(app).table.row_count == 21


async def test_namespace_filter_leaves_its_namespace_out_of_the_names(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        table = flows(app).table
        newest = table.render_line(table.scrollable_content_region.height - 1).text
        assert "otel-demo/frontend" in newest  # wide: every namespace shown
        flows(app).apply_filter("ns=otel-demo")
        await pilot.pause()
        lines = [table.render_line(y).text for y in range(1, table.scrollable_content_region.height)]
        assert not any("otel-demo/" in line for line in lines)
        assert any("kube-system/coredns" in line for line in lines)  # a peer outside the namespace


async def test_a_taller_terminal_keeps_following(capture: Path, tmp_path: Path) -> None:
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.resize_terminal(120, 30)  # the view scrolls up by itself to fill the space
        await pilot.pause(0.2)
        assert flows(app).table.follow and flows(app).table.cursor == len(flows(app).table.rows) - 1


# ===== Folded from test_review2_export.py =========================================================
# Review 2: `x` (export) when the export directory cannot be written any more.
#
# Found by hand: `kcockpit --input-file F --export-dir D`, then D removed while the app runs,
# then `x`: the CaptureError of write_capture escaped action_export (it only caught OSError)
# and the app died with a traceback, losing the user's session.


def test_export_records_raises_oserror_when_the_directory_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    impossible = tmp_path / "file" / "exports"  # below a file: no directory can be made there
    with pytest.raises(OSError, match="cannot create the directory .*file/exports.*Not a directory"):
        export_records(scenario_records(2), impossible)
    assert not impossible.exists()


async def test_export_into_a_removed_directory_reports_and_keeps_running(tmp_path: Path) -> None:
    capture = tmp_path / "flows.json"
    write_capture(scenario_records(10), capture)
    export_dir = tmp_path / "exports"
    export_dir.mkdir()
    app = CockpitApp(CaptureSession(str(capture), FlowStore(1000)), zone=UTC, clock=FixedClock(), export_dir=export_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        assert len(flows(app).table.rows) == 10
        export_dir.rmdir()  # e.g. a tmp dir cleaned up while the cockpit runs...
        export_dir.write_text("")  # ...and its name taken by a file: it cannot be made again
        await pilot.press("x")
        await pilot.pause()
        assert app.is_running
        messages = [str(n.message) for n in app._notifications]
        assert any(m.startswith("Export failed: cannot create the directory") and "exports" in m for m in messages), messages
        assert len(flows(app).table.rows) == 10  # the view is intact


async def test_export_into_a_removed_directory_makes_it_again_and_says_where(tmp_path: Path) -> None:
    capture = tmp_path / "flows.json"
    write_capture(scenario_records(10), capture)
    export_dir = tmp_path / "exports"
    app = CockpitApp(CaptureSession(str(capture), FlowStore(1000)), zone=UTC, clock=FixedClock(), export_dir=export_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("x")
        await pilot.pause()
        written = list(export_dir.glob("kcockpit-flows-*.json"))
        assert len(written) == 1
        messages = [str(n.message) for n in app._notifications]
        assert any(str(written[0]) in m for m in messages), messages  # the notice names the file
