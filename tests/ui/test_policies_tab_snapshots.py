"""Snapshots of the Policies tab in the demo's broken phase (a simulator capture with the
same world's policies, times in UTC): each view at 80x24 and 120x40, and the what-if of
the DNS fix. `--snapshot-update` after a deliberate change, then look at the SVGs."""

from __future__ import annotations

from pathlib import Path

import pytest
from policies_tab_support import policies_app
from ui_support import wait_until

from kcockpit.ui.screens.policy_text import PolicyTextScreen
from kcockpit.ui.tabs.policies import PoliciesTab

SIZES = [(80, 24), (120, 40)]


def shown_with(*keys: str, what_if: bool = False):
    async def run_before(pilot) -> None:
        app = pilot.app
        await pilot.press("4")
        tab = app.query_one(PoliciesTab)
        await wait_until(lambda: tab.model is not None and tab.model.rows and not tab.model.reason and tab._drawn is not None, pilot, timeout=30)
        for key in keys:
            await pilot.press(key)
        if what_if:
            await wait_until(lambda: isinstance(app.screen, PolicyTextScreen), pilot, timeout=30)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_verdicts_view(snap_compare, tmp_path: Path, size) -> None:
    assert snap_compare(policies_app(tmp_path), terminal_size=size, run_before=shown_with())


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_policies_view(snap_compare, tmp_path: Path, size) -> None:
    assert snap_compare(policies_app(tmp_path), terminal_size=size, run_before=shown_with("p"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_drift_view(snap_compare, tmp_path: Path, size) -> None:
    assert snap_compare(policies_app(tmp_path), terminal_size=size, run_before=shown_with("d"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_what_if_of_the_dns_fix(snap_compare, tmp_path: Path, size) -> None:
    assert snap_compare(policies_app(tmp_path), terminal_size=size, run_before=shown_with("w", what_if=True))
