"""The tab registry and the shell: each tab's keys act only while it is shown, help and the
command palette offer the current tab's actions plus the shell's, focus stays in the tab
shown, and refresh_tab is driven only for the visible tab."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_support import UTC, FixedClock, flows, scenario_records, wait_until

from kcockpit.application.session import CaptureSession
from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import write_capture
from kcockpit.ui.app import CockpitApp
from kcockpit.ui.screens.help import HelpScreen
from kcockpit.ui.tabs import TABS, CockpitTab
from kcockpit.ui.tabs.dns import DNS_LEGEND
from kcockpit.ui.tabs.services import ServicesTab
from kcockpit.ui.widgets.tab_bar import TabBar

FLOWS_ACTIONS = {"Open", "Pause", "Filter", "Verdict", "Namespace", "Export view", "Aggregate", "Back/clear"}
SHELL_ACTIONS = {"Help", "Quit", "Flows", "Services", "DNS", "Policies", "Next tab", "Previous tab", "Theme"}


@pytest.fixture
def app(tmp_path: Path) -> CockpitApp:
    path = tmp_path / "flows.json"
    write_capture(scenario_records(120), path)
    session = CaptureSession(str(path), FlowStore(10_000))
    return CockpitApp(session, zone=UTC, clock=FixedClock(), export_dir=tmp_path)


def titles(app: CockpitApp) -> set[str]:
    return {command.title for command in app.get_system_commands(app.screen)}


def test_every_registered_tab_has_a_number_key() -> None:
    assert [spec.key for spec in TABS] == [str(n) for n in range(1, len(TABS) + 1)]
    assert len({spec.id for spec in TABS}) == len(TABS)
    bound = {binding.key: binding.action for binding in CockpitApp.BINDINGS}
    for spec in TABS:
        assert issubclass(spec.cls, CockpitTab) and spec.cls.TAB_ID == spec.id and spec.cls.TITLE == spec.title
        assert bound[spec.key] == f"show_tab('{spec.id}')"


async def test_the_tab_bar_and_the_tab_bodies_come_from_the_registry(app: CockpitApp) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        bar = app.main.query_one(TabBar)
        text = bar.render().plain
        for spec in TABS:
            assert f" {spec.key} {spec.title} " in text
            await pilot.press(spec.key)
            assert app.main.query_one("#tabs").current == spec.id
            assert isinstance(app.current_tab, spec.cls) and bar.active == spec.id


async def test_verdict_key_does_nothing_outside_the_flows_tab(app: CockpitApp, tmp_path: Path) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2", "v", "n", "a", "x", "slash")
        await pilot.pause()
        tab = flows(app)
        assert app.screen is app.main  # no namespace picker
        assert tab.filter_state.text == "" and not tab.table.aggregate
        assert not tab.filter_bar.input.has_focus
        assert not list(tmp_path.glob("kcockpit-flows-*.json"))  # nothing exported
        assert app.main.query_one("#tabs").current == "services"
        await pilot.press("escape")  # `/` is the Services tab's own find: its input has focus
        await pilot.press("1", "v")
        await pilot.pause()
        assert tab.filter_state.text == "verdict=forwarded"  # the same key on its own tab


async def test_focus_stays_in_the_tab_shown_after_help_closes(app: CockpitApp) -> None:
    """Closing a screen must not hand focus to a widget of a hidden tab (Textual's
    auto-focus would pick the filter input, and `1` would be typed into it)."""
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4", "question_mark")
        await wait_until(lambda: isinstance(app.screen, HelpScreen), pilot)
        await pilot.press("escape")
        await pilot.pause()
        focused = app.focused
        assert app.current_tab.TAB_ID == "policies" and focused is not None
        assert focused is app.current_tab or app.current_tab in focused.ancestors  # the tab or a widget inside it
        await pilot.press("1")
        assert app.main.query_one("#tabs").current == "flows" and flows(app).table.has_focus
        assert flows(app).filter_bar.input.value == ""


async def test_help_lists_the_current_tabs_keys(app: CockpitApp) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        await wait_until(lambda: isinstance(app.screen, HelpScreen), pilot)
        on_flows = {binding_id for _, _, binding_id in app.screen.rows}
        assert {"flows.verdict", "flows.filter", "flows.open", "app.help", "app.tab.dns"} <= on_flows
        assert app.screen.legend  # how to read the flow list
        await pilot.press("escape", "3", "question_mark")
        await wait_until(lambda: isinstance(app.screen, HelpScreen), pilot)
        on_dns = {binding_id for _, _, binding_id in app.screen.rows}
        assert {"app.help", "app.quit", "app.tab.flows", "app.tab.next"} <= on_dns
        assert not {i for i in on_dns if i.startswith(("flows.", "filter."))}
        assert {"dns.window", "dns.sort", "dns.search_path", "dns.filter"} <= on_dns
        assert app.screen.legend == DNS_LEGEND  # how to read the DNS tab, not the flow list


async def test_palette_offers_flows_actions_only_on_the_flows_tab(app: CockpitApp) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        assert FLOWS_ACTIONS | SHELL_ACTIONS <= titles(app)
        for key in ("2", "3", "4"):
            await pilot.press(key)
            offered = titles(app)
            assert SHELL_ACTIONS <= offered and not FLOWS_ACTIONS & offered
        await pilot.press("1")
        assert FLOWS_ACTIONS <= titles(app)


async def test_refresh_tab_is_driven_only_while_the_tab_is_shown(app: CockpitApp) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        services = app.tab(ServicesTab)
        calls: list[str] = []
        services.refresh_tab = lambda: calls.append(app.main.query_one("#tabs").current)  # type: ignore[method-assign]
        await pilot.pause(0.6)  # more than two refresh periods on the Flows tab
        assert calls == []
        await pilot.press("2")
        await wait_until(lambda: len(calls) >= 2, pilot)
        await pilot.press("1")
        await pilot.pause()
        shown = len(calls)
        await pilot.pause(0.6)
        assert len(calls) == shown and set(calls) == {"services"}


async def test_the_status_bar_describes_the_flow_list_on_every_tab(app: CockpitApp) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        assert flows(app).apply_filter("dropped")
        described = flows(app).filter_state.description
        await wait_until(lambda: app._status_bar.info is not None and app._status_bar.info.filter_text == described, pilot)
        on_flows = app._status_bar.info
        await pilot.press("3")
        await pilot.pause(0.3)  # at least one timed update on the other tab
        assert app._status_bar.info == on_flows and on_flows.shown == 20


async def test_a_tab_drills_down_into_the_flows_tab_and_esc_comes_back(app: CockpitApp) -> None:
    from kcockpit.ui.tabs.flows import FlowsTab

    async with app.run_test(size=(100, 30)) as pilot:
        flows_tab = app.tab(FlowsTab)
        flows_tab.apply_filter("ns=otel-demo")
        await pilot.press("2")
        app.tab(ServicesTab).open_flows("from:workload=frontend to:port=53")
        await wait_until(lambda: app.current_tab is flows_tab, pilot)
        assert flows_tab.filter_state.text == "from:workload=frontend to:port=53"
        await pilot.press("escape")
        await wait_until(lambda: isinstance(app.current_tab, ServicesTab), pilot)
        assert flows_tab.filter_state.text == "ns=otel-demo"  # the filter from before the drill-down
        await pilot.press("1", "escape")
        await wait_until(lambda: flows_tab.filter_state.text == "", pilot)  # an ordinary esc clears it
        assert app.current_tab is flows_tab
