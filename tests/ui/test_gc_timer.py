"""The app's own full garbage collection runs on a timer without taking the app down."""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC

import kcockpit.ui.app as app_module
from kcockpit.model.store import FlowStore
from kcockpit.sim.embedded import DemoCluster
from kcockpit.ui.app import CockpitApp
from kcockpit.application.session import DemoSession


async def test_the_full_collection_timer_fires_and_the_app_keeps_running(monkeypatch) -> None:
    monkeypatch.setattr(app_module, "FULL_GC_INTERVAL_S", 0.1)  # once a minute in real use
    collections: list[int] = []

    def count_full_collections(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            collections.append(1)

    gc.callbacks.append(count_full_collections)  # the collector's own list: append, never replace
    try:
        cluster = DemoCluster(seed=5, rate=200, scenario="healthy", backfill_s=1)
        app = CockpitApp(DemoSession(cluster, FlowStore(10_000)), zone=UTC)
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(200):
                if len(collections) >= 4:
                    break
                await asyncio.sleep(0.05)
            assert len(collections) >= 4, "the timer never ran gc.collect"
            assert app.is_running and app.return_code is None
            await pilot.press("q")
        assert app.return_code == 0
    finally:
        gc.callbacks.remove(count_full_collections)
