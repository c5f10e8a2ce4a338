"""`kcockpit --demo` starts a real Prometheus scraping the demo's metrics (when installed),
shows its state in the status bar, and stops it and removes its folder on exit."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
from prometheus_fixture import require_binary
from ui_support import demo_app, status_text, wait_until

from kcockpit.sim.embedded import DemoCluster

pytestmark = pytest.mark.prometheus


async def test_demo_starts_prometheus_scraping_its_metrics_and_cleans_up(tmp_path: Path) -> None:
    require_binary("prometheus")
    cluster = DemoCluster(seed=5, rate=300, scenario="broken", backfill_s=2)
    app = demo_app(tmp_path, cluster, start_prometheus=True)
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        feed = app.session.integrations.prometheus
        await wait_until(lambda: "prom ✓" in status_text(app), pilot, timeout=40)
        running = feed.running
        assert running is not None and feed.url == running.url
        await wait_until(lambda: any(running.url in n.message for n in app._notifications), pilot)
        with urllib.request.urlopen(cluster.metrics.url, timeout=5) as response:
            assert b"hubble_flows_processed_total" in response.read()
        data_dir = running.data_dir
        assert os.path.isdir(data_dir)
        await pilot.press("q")
    assert not running.running and not os.path.exists(data_dir)
