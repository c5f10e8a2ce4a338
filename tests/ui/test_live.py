"""The cockpit on a live source: the embedded demo cluster over real loopback gRPC."""

from __future__ import annotations

import asyncio

from ui_support import UTC, flows, wait_until

from kcockpit.model.record import VERDICT_DROPPED
from kcockpit.model.store import FlowStore
from kcockpit.sim.embedded import DemoCluster
from kcockpit.ui.app import CockpitApp
from kcockpit.application.session import DemoSession
from kcockpit.wire.hubble_pb import flow_pb


async def test_live_demo_filters_server_side_steps_phases_and_survives_the_server_going_away() -> None:
    cluster = DemoCluster(seed=2, rate=400, scenario="broken", backfill_s=5)
    app = CockpitApp(DemoSession(cluster, FlowStore(50_000)), zone=UTC)
    async with app.run_test(size=(100, 30)) as pilot:
        session = app.session
        await wait_until(lambda: session.state().state == "live" and len(flows(app).table.rows) > 50, pilot)
        await wait_until(lambda: app._node_counts == (4, 4), pilot)
        await wait_until(lambda: any(r.verdict == VERDICT_DROPPED for r in app.store.latest(2000)), pilot)

        assert flows(app).apply_filter("dropped")
        assert [list(f.verdict) for f in session.stream.whitelist] == [[flow_pb.DROPPED]]
        await wait_until(lambda: not flows(app).refiltering, pilot)  # a big store is re-filtered on a thread
        mark = len(flows(app).table.rows)
        assert mark > 0 and all(r.verdict == VERDICT_DROPPED for r in flows(app).table.rows.snapshot())
        await wait_until(lambda: len(flows(app).table.rows) > mark + 5, pilot)  # new drops keep arriving
        assert all(r.verdict == VERDICT_DROPPED for r in flows(app).table.rows.snapshot())

        await pilot.press("n")  # the namespace picker asks the server (GetNamespaces)
        await wait_until(lambda: type(app.screen).__name__ == "NamespacePicker", pilot)
        assert {"kube-system", "otel-demo"} <= set(app.screen.namespaces)
        await pilot.press("escape")

        await pilot.press("right_square_bracket")
        assert cluster.scenario.phase == "fixed"
        await pilot.press("left_square_bracket")
        assert cluster.scenario.phase == "broken"

        await asyncio.to_thread(cluster.stop)
        await wait_until(lambda: session.state().state == "retrying", pilot)
        assert "127.0.0.1" in session.state().detail
        await pilot.press("space")  # still answering keys
        assert not flows(app).table.follow
        await pilot.press("q")
