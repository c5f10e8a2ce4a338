"""Snapshots of the DNS tab at 80x24 and 120x40 on deterministic captures of the simulated
cluster: healthy, broken (the policy-drop verdict), the CoreDNS-overload phase
(unanswered), and the search-path misses unfolded (`p`). Update after an intended change
with `--snapshot-update`, then look at the SVGs."""

from __future__ import annotations

from pathlib import Path

import pytest
from dns_tab_captures import counted, dns_app
from ui_support import wait_until

from kcockpit.ui.tabs.dns import DnsTab


def show_dns(*keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_until(lambda: counted(app), pilot)
        await pilot.press("3")
        tab = app.main.query_one(DnsTab)
        await wait_until(lambda: tab.health is not None and tab.health.lookups > 0, pilot)
        for key in keys:
            await pilot.press(key)
        app.clear_notifications()  # a toast's lifetime is wall-clock time: keep it out of the picture
        await pilot.pause()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("story", ["healthy", "broken", "overload"])
def test_dns_tab(snap_compare, tmp_path: Path, story: str, size: tuple[int, int]) -> None:
    assert snap_compare(dns_app(tmp_path, story), terminal_size=size, run_before=show_dns())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_dns_tab_search_path_unfolded(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(dns_app(tmp_path, "healthy"), terminal_size=size, run_before=show_dns("p"))
