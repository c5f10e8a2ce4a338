"""Pilot tests of the Policies tab on the simulator's broken phase (a capture) with the
same world's policies: views, enter -> the flow detail -> esc, what-if of the DNS fix and
of a manifest file, advise on frontend."""

from __future__ import annotations

from pathlib import Path

import pytest
from policies_tab_support import policies_app
from ui_support import wait_until

from kcockpit.application import policy_insights as pi
from kcockpit.policy import builders
from kcockpit.sim.world import FRONTEND_POLICY, World
from kcockpit.ui.screens.detail import FlowDetailScreen
from kcockpit.ui.screens.policy_text import PathPrompt, PolicyTextScreen
from kcockpit.ui.tabs.policies import PoliciesTab


async def shown(app, pilot) -> PoliciesTab:
    await pilot.press("4")
    tab = app.query_one(PoliciesTab)
    await wait_until(lambda: tab.model is not None and tab.model.rows and not tab.model.reason and tab._drawn is not None, pilot, timeout=30)
    await pilot.pause()
    return tab


def page_text(screen: PolicyTextScreen) -> str:
    return screen.page.title + "\n" + screen.page.body + "\n" + screen.page.yaml


@pytest.fixture
def app(tmp_path: Path):
    return policies_app(tmp_path)


async def test_the_top_verdict_is_the_dns_drop_and_enter_opens_its_explanation_then_esc_comes_back(app) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        tab = await shown(app, pilot)
        top = tab._selected()
        assert isinstance(top, pi.VerdictRow)
        assert (top.group.verdict, top.group.direction, top.policy, top.answer.source, top.answer.destination, top.port_text) == (
            "DROPPED", "egress", f"otel-demo/{FRONTEND_POLICY}", "frontend", "kube-dns", "53/UDP")
        await pilot.press("j")  # move off the top row: the selection must survive the detail
        selected = tab.option_list.highlighted
        await pilot.press("k", "enter")
        await wait_until(lambda: isinstance(app.screen, FlowDetailScreen), pilot)
        screen = app.screen
        await wait_until(lambda: screen.explanation is not None, pilot, timeout=30)
        assert screen.explanation.verdict == "denied" and screen.explanation.fixes
        await pilot.press("escape")
        await wait_until(lambda: app.screen is app.main, pilot)
        assert app.main.query_one("#tabs").current == "policies"
        assert tab.option_list.highlighted == selected - 1 == 0


async def test_views_policies_with_rule_hits_and_drift_with_the_l7_reason(app) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        tab = await shown(app, pilot)
        await pilot.press("p")
        assert tab.view == "policies"
        policies = {p.name: p for p in tab.model.policies.policies}
        frontend = policies[f"otel-demo/{FRONTEND_POLICY}"]
        dns = next(r for r in tab.model.rows if r.answer.destination == "kube-dns" and r.group.verdict == "DROPPED")
        assert [(r.key.label(), r.hits) for r in frontend.rules][-1] == ("egress default deny", dns.group.flows)
        assert frontend.selected == 2  # the frontend's two pods
        assert "otel-demo/frontend" not in [u.workload for u in tab.model.policies.unselected]
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, PolicyTextScreen), pilot)
        assert "# ◀ egress default deny (anything no rule allows)" in app.screen.page.yaml
        await pilot.press("escape")
        await pilot.press("d")
        assert tab.view == "drift"
        assert any("prometheus-api-read-only" in d.reason for d in tab.model.drift)


async def test_what_if_of_the_dns_fix_allows_exactly_the_dns_groups(app) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(app, pilot)
        await pilot.press("w")
        await wait_until(lambda: isinstance(app.screen, PolicyTextScreen), pilot, timeout=30)
        text = page_text(app.screen)
        assert "What-if: fix 1/3 for frontend → kube-dns 53/UDP" in text
        assert "this change allows frontend → kube-dns 53/UDP, " in text and "and changes nothing else" in text
        assert "NEWLY DENIED: 0 groups, 0 flows" in text
        assert app.screen.page.document.startswith("# kcockpit fix: add egress rule 2")
        await pilot.press("a")  # the next fix: a new NetworkPolicy, also only DNS
        assert "fix 2/3" in page_text(app.screen) and "this change allows frontend → kube-dns 53/UDP" in page_text(app.screen)
        await pilot.press("s")
        await pilot.pause()
        assert list(Path(app.context.export_dir).glob("kcockpit-fix-*.yaml"))


async def test_what_if_of_a_manifest_file(app, tmp_path: Path) -> None:
    fixed = next(p for p in World.build(1).k8s_objects("fixed")["networkpolicies"] if p["metadata"]["name"] == FRONTEND_POLICY)
    path = tmp_path / "fixed.yaml"
    path.write_text(builders.to_yaml(builders.object_for_apply(fixed)))
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(app, pilot)
        await pilot.press("o")
        await wait_until(lambda: isinstance(app.screen, PathPrompt), pilot)
        await pilot.press(*str(path), "enter")
        await wait_until(lambda: isinstance(app.screen, PolicyTextScreen), pilot, timeout=30)
        text = page_text(app.screen)
        assert "(read, never applied)" in text
        assert "this change allows frontend → kube-dns 53/UDP" in text


async def test_a_missing_manifest_path_is_a_message_not_a_traceback(app, tmp_path: Path) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(app, pilot)
        await pilot.press("o")
        await wait_until(lambda: isinstance(app.screen, PathPrompt), pilot)
        await pilot.press(*"/nonexistent/x.yaml", "enter")
        await pilot.pause(0.5)
        assert app.screen is app.main


async def test_advise_on_frontend(app) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(app, pilot)
        await pilot.press("A")  # the top row: frontend's egress
        await wait_until(lambda: isinstance(app.screen, PolicyTextScreen), pilot, timeout=30)
        text = page_text(app.screen)
        assert "Advise: least-privilege policy for otel-demo/frontend" in text
        assert pi.ADVICE_SOURCE in text and "verified" in text
        assert "kind: NetworkPolicy" in app.screen.page.document and "frontend-least-privilege" in app.screen.page.document
        assert "NEWLY ALLOWED" in text


async def test_without_policy_data_every_group_says_not_evaluated_and_why(tmp_path: Path) -> None:
    app = policies_app(tmp_path)
    app.session.integrations = None  # a capture read without --policies or a cluster
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        tab = app.query_one(PoliciesTab)
        await wait_until(lambda: tab.model is not None and tab.model.rows and tab._drawn is not None, pilot, timeout=30)
        assert tab.model.reason == "no policy data in this session"
        assert {r.answer.check for r in tab.model.rows} == {pi.UNEVALUATED}
        top = tab.model.rows[0]
        assert top.group.verdict == "DROPPED" and top.policy == f"otel-demo/{FRONTEND_POLICY}"  # Hubble's name still shown
        await pilot.press("w")  # nothing to replay without policy data: a notice, no screen
        await pilot.pause()
        assert app.screen is app.main
        await pilot.press("d")
        assert tab.view == "drift" and tab.option_list.option_count > 0
