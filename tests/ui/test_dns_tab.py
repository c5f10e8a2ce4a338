"""Pilot tests of the DNS tab on deterministic captures of the simulated cluster: the
verdict opens the explanation with the fix, a row drills down into the Flows tab and esc
comes back with the selection intact, and the tab's own keys."""

from __future__ import annotations

from pathlib import Path

from dns_tab_captures import counted, dns_app
from ui_support import wait_until

from kcockpit.model.dns_health import DROPPED, UNANSWERED
from kcockpit.ui.screens.detail import FlowDetailScreen
from kcockpit.ui.tabs.dns import DnsTab, VerdictScreen
from kcockpit.ui.tabs.flows import FlowsTab

POLICY = "otel-demo/frontend-egress-allow-to-backend"


def dns_tab(app) -> DnsTab:
    return app.main.query_one(DnsTab)


async def show_dns(app, pilot) -> DnsTab:
    await wait_until(lambda: counted(app), pilot)
    await pilot.press("3")
    tab = dns_tab(app)
    await wait_until(lambda: tab.health is not None and tab.health.lookups > 0, pilot)
    await pilot.pause()
    return tab


async def test_enter_on_the_policy_verdict_opens_the_explanation_with_the_fix(tmp_path: Path) -> None:
    app = dns_app(tmp_path, "broken")
    async with app.run_test(size=(120, 40)) as pilot:
        tab = await show_dns(app, pilot)
        verdict = tab.health.verdicts[0]
        assert (verdict.client.name, verdict.kind, verdict.policy, verdict.decided_by) == (
            "otel-demo/frontend", DROPPED, POLICY, "hubble")
        assert f"lookups dropped at egress by {POLICY} — it was DNS" in verdict.line
        assert "its 5xx rose from" in verdict.correlation
        assert app.focused is tab.verdicts  # unhealthy: the verdicts come first
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, FlowDetailScreen), pilot)
        screen = app.screen
        # The detail is the dropped lookup's, and its policy section proposes the fix.
        assert screen.record.flow().destination.namespace == "kube-system"
        await wait_until(lambda: screen.explanation is not None, pilot)
        assert screen.explanation.verdict == "denied" and screen.explanation.fixes
        assert POLICY in screen.explanation.sentence
        await pilot.press("escape")
        await wait_until(lambda: app.screen is app.main, pilot)
        assert app.current_tab is tab


async def test_enter_on_a_row_opens_the_flows_tab_filtered_and_esc_comes_back(tmp_path: Path) -> None:
    app = dns_app(tmp_path, "broken")
    async with app.run_test(size=(120, 40)) as pilot:
        tab = await show_dns(app, pilot)
        await pilot.press(*["down"] * len(tab.health.verdicts))  # past the last verdict line into the table
        assert app.focused is tab.table
        await pilot.press("down")
        selected = tab.names[tab.table.cursor_row]
        await pilot.press("enter")
        flows = app.main.query_one(FlowsTab)
        await wait_until(lambda: app.current_tab is flows, pilot)
        namespace, _, workload = selected.client.name.partition("/")
        assert flows.filter_state.text.startswith(f"from:pod={namespace}/ from:workload={workload} query=^")
        shown = flows.table.rows.snapshot()
        # That client's lookups of that name (and of its search-path expansions): requests and answers.
        assert shown and all(r.l7_kind == "dns" and r.dns_query.startswith(selected.query) for r in shown)
        assert {r.source.workload_name() for r in shown} >= {selected.client.name}
        assert {r.l7_type for r in shown} == {1, 2}  # flow_pb.REQUEST and RESPONSE
        await pilot.press("escape")
        await wait_until(lambda: app.current_tab is tab, pilot)
        assert tab.names[tab.table.cursor_row].query == selected.query  # the selection is intact
        assert flows.filter_state.text == ""


async def test_the_dropped_before_proxy_row_drills_into_the_clients_dns_drops(tmp_path: Path) -> None:
    app = dns_app(tmp_path, "broken")
    async with app.run_test(size=(120, 40)) as pilot:
        tab = await show_dns(app, pilot)
        await pilot.press(*["down"] * len(tab.health.verdicts))
        index = next(i for i, n in enumerate(tab.names) if n.before_proxy)
        tab.table.move_cursor(row=index)
        await pilot.press("enter")
        flows = app.main.query_one(FlowsTab)
        await wait_until(lambda: app.current_tab is flows, pilot)
        assert flows.filter_state.text == "from:pod=otel-demo/ from:workload=frontend to:port=53 dropped"
        shown = flows.table.rows.snapshot()
        assert shown and all(r.verdict_name == "DROPPED" for r in shown)


async def test_the_overload_phase_reads_unanswered_and_explains_it(tmp_path: Path) -> None:
    app = dns_app(tmp_path, "overload")
    async with app.run_test(size=(120, 40)) as pilot:
        tab = await show_dns(app, pilot)
        kinds = {v.kind for v in tab.health.verdicts}
        assert UNANSWERED in kinds and DROPPED not in kinds
        index = next(i for i, v in enumerate(tab.health.verdicts) if v.kind == UNANSWERED)
        tab.verdicts.highlighted = index
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, VerdictScreen), pilot)
        assert "CoreDNS is down, overloaded" in app.screen.body
        await pilot.press("escape")
        await wait_until(lambda: app.screen is app.main, pilot)


async def test_window_sort_search_path_and_filter_keys(tmp_path: Path) -> None:
    app = dns_app(tmp_path, "healthy")
    async with app.run_test(size=(120, 40)) as pilot:
        tab = await show_dns(app, pilot)
        assert tab.health.healthy
        assert tab.health.healthy_line.startswith("✓ DNS healthy: ")
        assert app.focused is tab.table
        folded = len(tab.names)
        assert any(n.miss_lookups for n in tab.names)  # external names walked the search path
        await pilot.press("p")
        await pilot.pause()
        assert not tab.fold and len(tab.names) > folded
        assert any(n.search_miss_of for n in tab.names)
        await pilot.press("p", "t")
        await pilot.pause()
        assert tab.fold and tab.window_s == 300
        await pilot.press("s")
        await pilot.pause()
        assert tab.sort_index == 3  # ANS%
        ratios = [n.answered_ratio for n in tab.names]
        assert ratios == sorted(ratios)
        await pilot.press("slash")
        assert app.focused is tab.filter_input
        await pilot.press(*"stripe", "enter")
        await pilot.pause()
        assert tab.names and all("stripe" in n.query for n in tab.names)
        await pilot.press("escape")  # clears the filter
        await pilot.pause()
        assert tab.filter_text == "" and len(tab.names) == folded
