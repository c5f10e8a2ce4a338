"""Pilot tests of the Services tab on a deterministic demo capture (healthy 30 s, then broken):
enter drills into the Flows tab filtered to exactly the edge and esc comes back to the same
row; r inverts; t changes the window; live updates keep the selection; the panel says its source."""

from __future__ import annotations

from pathlib import Path

import pytest
from services_fixtures import demo_raws, services_app
from ui_support import flows, wait_until

from kcockpit.model.service_tree import edge_filter
from kcockpit.ui.tabs.services import ServicesTab


def services(app) -> ServicesTab:
    return app.tab(ServicesTab)


async def _ready(app, pilot) -> ServicesTab:
    tab = services(app)
    await wait_until(lambda: app.session.feed.state().state == "done", pilot)
    await pilot.press("2")
    await wait_until(lambda: tab.service_tree is not None and tab.tree_view.rows, pilot)
    await pilot.pause()
    return tab


def _index(tab: ServicesTab, client: str, server: str, port: int) -> int:
    for index, row in enumerate(tab.tree_view.rows):
        edge = row.node.edge
        if edge is not None and row.parent is not None and (edge.client.name, edge.server.name, edge.port) == (client, server, port):
            return index
    raise AssertionError(f"no row {client} → {server}:{port}")


@pytest.fixture
def app(tmp_path: Path):
    return services_app(tmp_path, "broken")


async def test_the_broken_story_is_on_the_tree(app) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        tab = await _ready(app, pilot)
        rows = tab.tree_view.rows
        assert rows[0].node.endpoint.name == "otel-demo/loadgenerator"
        frontend = rows[_index(tab, "otel-demo/loadgenerator", "otel-demo/frontend", 8080)].node
        dns = rows[_index(tab, "otel-demo/frontend", "kube-system/coredns", 53)].node
        assert frontend.unhealthy and frontend.edge.errors > 0
        assert dns.unhealthy and dns.edge.dropped > dns.edge.flows / 2 and dns.edge.top_drop_reason == "POLICY_DENIED"
        now_s = app.session.aggregates.now_s()
        backends = [row.node for row in rows if row.parent is frontend and row.node.endpoint.name != "kube-system/coredns"]
        assert backends and all(now_s - node.edge.last_ns / 1e9 > 40 for node in backends)  # they stopped at the break


async def test_enter_opens_flows_filtered_to_the_edge_and_esc_comes_back_to_the_same_row(app) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        tab = await _ready(app, pilot)
        index = _index(tab, "otel-demo/frontend", "kube-system/coredns", 53)
        tab.tree_view.move_to(index)
        await pilot.pause()
        scroll = tab.tree_view.scroll_y
        edge = tab.tree_view.selected.node.edge
        await pilot.press("enter")
        flows_tab = flows(app)
        await wait_until(lambda: app.current_tab is flows_tab, pilot)
        expected = edge_filter(edge.client, edge.server, edge.port, edge.protocol)
        assert flows_tab.filter_state.text == expected
        # The filter selects exactly that edge's flows (the capture holds them all).
        await wait_until(lambda: not flows_tab.refiltering, pilot)
        all_edge = next(e for e in app.session.aggregates.services(None)
                        if (e.client, e.server, e.port, e.protocol) == (edge.client, edge.server, edge.port, edge.protocol))
        assert flows_tab.table.row_count == all_edge.flows
        await pilot.press("escape")
        await wait_until(lambda: app.current_tab is tab, pilot)
        assert tab.tree_view.cursor == index and tab.tree_view.selected.node.edge.server.name == "kube-system/coredns"
        assert tab.tree_view.scroll_y == scroll
        assert tab.tree_view.has_focus


async def test_r_inverts_for_the_selected_workload_and_back(app) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        tab = await _ready(app, pilot)
        index = _index(tab, "otel-demo/loadgenerator", "otel-demo/frontend", 8080)
        tab.tree_view.move_to(index)
        key = tab.tree_view.selected.node.key
        await pilot.press("r")
        await pilot.pause()
        assert tab.invert_target == "otel-demo/frontend" and tab.service_tree.inverted
        callers = [node.endpoint.name for node in tab.service_tree.roots[0].children]
        assert "otel-demo/loadgenerator" in callers
        assert tab.tree_view.cursor == 0
        await pilot.press("r")
        await pilot.pause()
        assert tab.invert_target is None and tab.tree_view.selected.node.key == key


async def test_t_cycles_the_window_and_the_tree_follows(app) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        tab = await _ready(app, pilot)
        assert tab.window_s == 60
        for expected in (300, 900, None, 60):
            await pilot.press("t")
            await pilot.pause()
            assert tab.window_s == expected
            assert tab._drawn[0][0] == expected  # the tree drawn is of the new window
        head = str(tab.query_one("#svc-head").render())
        assert "last 1m" in head


async def test_live_update_keeps_the_selection_and_the_scroll(app) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        tab = await _ready(app, pilot)
        view = tab.tree_view
        target = _index(tab, "otel-demo/frontend", "kube-system/coredns", 53)
        view.move_to(len(view.rows) - 1)
        view.move_to(target + 3)
        view.move_to(target)
        await pilot.pause()
        key, scroll = view.selected.node.key, view.scroll_y
        refreshes, generation = tab.refreshes, app.session.aggregates.generation
        # New flows arrive (the newest 10 s of the capture again, as if re-sent): a new generation.
        app.session.aggregates.ingest_raw(list(demo_raws("broken"))[-800:])
        await wait_until(lambda: tab.refreshes > refreshes, pilot)
        assert app.session.aggregates.generation > generation
        assert view.selected.node.key == key and view.scroll_y == scroll


async def test_keys_fold_find_sort_and_the_panel_says_its_source(app) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        tab = await _ready(app, pilot)
        total = len(tab.tree_view.rows)
        await pilot.press("e")
        await pilot.pause()
        assert len(tab.tree_view.rows) < total  # all folded: the roots
        await pilot.press("e")
        await pilot.pause()
        assert len(tab.tree_view.rows) >= total
        await pilot.press("s")
        assert tab.sort == "errors"
        await pilot.press("slash", "r", "e", "d", "i", "s", "enter")
        await pilot.pause()
        assert tab.name_filter == "redis"
        assert any(row.matched and row.node.endpoint.name == "otel-demo/redis" for row in tab.tree_view.rows)
        assert all(row.matched or row.node.children for row in tab.tree_view.rows)
        await pilot.press("escape")
        await pilot.pause()
        assert tab.name_filter == ""
        tab.tree_view.move_to(_index(tab, "otel-demo/loadgenerator", "otel-demo/frontend", 8080))
        await wait_until(lambda: "otel-demo/frontend" in str(tab.query_one("#sig-title").render()), pilot)
        title = str(tab.query_one("#sig-title").render())
        assert "otel-demo/frontend" in title and "source: flows" in title
        rest = str(tab.query_one("#sig-rest").render())
        assert "no Prometheus" in rest
        assert "· flows" in str(tab.query_one("#sig-traffic").render())
        await pilot.press("g")
        await pilot.pause()
        assert not tab.query_one("#svc-signals").display


async def test_the_keys_are_in_the_footer_and_the_help(app) -> None:
    async with app.run_test(size=(120, 30)) as pilot:
        await _ready(app, pilot)
        ids = {binding.id for binding in ServicesTab.BINDINGS}
        assert {"services.invert", "services.window", "services.sort", "services.expand_all", "services.find",
                "services.signals"} <= ids
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Who calls?", "Window", "Sort", "Find", "Signals"} <= titles
