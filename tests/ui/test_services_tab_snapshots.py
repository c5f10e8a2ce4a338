"""Snapshots of the Services tab (pytest-textual-snapshot) on deterministic demo captures:
the tree at 80x24 and 120x40, healthy and broken; the inverted view; the golden-signals
panel from flows only and from Prometheus (canned answers: the panel's drawing is tested
here, the queries in tests/application/test_service_signals.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from services_fixtures import services_app
from ui_support import wait_until

from kcockpit.application.service_signals import PanelSignals, SignalLine
from kcockpit.ui.tabs.services import ServicesTab


def _show(select: tuple[str, str] | None = None, keys: tuple[str, ...] = (), prometheus: bool = False):
    async def run_before(pilot) -> None:
        app = pilot.app
        tab = app.tab(ServicesTab)
        await wait_until(lambda: app.session.feed.state().state == "done", pilot)
        await pilot.press("2")
        await wait_until(lambda: tab.service_tree is not None and tab.tree_view.rows, pilot)
        if select is not None:
            index = next(i for i, row in enumerate(tab.tree_view.rows)
                         if row.parent is not None and (row.parent.endpoint.name, row.node.endpoint.name) == select)
            tab.tree_view.move_to(index)
            tab._update_signals()
        if prometheus:
            tab._prometheus = canned_prometheus()
            tab._update_signals()
        if keys:
            await pilot.press(*keys)
            # A key that moves the cursor redraws the signals panel at the next refresh (4 Hz).
            await wait_until(lambda: not tab._signals_stale, pilot)
        await pilot.pause()

    return run_before


def canned_prometheus() -> PanelSignals:
    q = 'sum(rate(hubble_http_requests_total{destination_namespace="otel-demo",destination_workload="frontend",reporter="server"}[1m]))'
    return PanelSignals("otel-demo/frontend", "1m", (
        SignalLine("traffic", "2.07 req/s", "prometheus", q, (2, 2, 2, 2, 2, 1, 1, 2, 2, 3, 3, 2)),
        SignalLine("errors", "69.9% 5xx", "prometheus", q, (0, 0, 0, 0, 0, 0, 0, 4, 6, 7, 7, 7), bad=True),
        SignalLine("latency", "p50 6.5s p95 9.6s p99 9.9s", "prometheus", q, (80, 80, 85, 80, 90, 80, 9000, 9600, 9600)),
        SignalLine("saturation", "unavailable: no container_cpu_usage_seconds_total series in Prometheus", "prometheus", ""),
        SignalLine("by source", "loadgenerator 2.1/s (70% 5xx)", "prometheus", q),
    ), source="prometheus", fetched_at=9e18)


@pytest.mark.parametrize("phase", ["healthy", "broken"])
@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_services_tree(snap_compare, tmp_path: Path, phase: str, size: tuple[int, int]) -> None:
    assert snap_compare(services_app(tmp_path, phase), terminal_size=size, run_before=_show())


def test_services_inverted(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(services_app(tmp_path, "broken"), terminal_size=(100, 30),
                        run_before=_show(("otel-demo/frontend", "kube-system/coredns"), ("r",)))


def test_services_signals_from_flows(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(services_app(tmp_path, "broken"), terminal_size=(120, 40),
                        run_before=_show(("otel-demo/loadgenerator", "otel-demo/frontend")))


def test_services_signals_from_prometheus(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(services_app(tmp_path, "broken"), terminal_size=(120, 40),
                        run_before=_show(("otel-demo/loadgenerator", "otel-demo/frontend"), prometheus=True))
