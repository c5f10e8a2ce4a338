"""End to end at 80x24: `kcockpit --demo`, `]` to the broken phase, `3`: the DNS tab's
verdict names the policy that drops the frontend's lookups."""

from __future__ import annotations


import pytest
from ui_tmux import TMUX_MARKS, Terminal, cockpit_command

pytestmark = TMUX_MARKS


@pytest.fixture
def terminal():
    term = Terminal("dns")
    yield term
    term.close()


def test_the_dns_verdict_names_the_policy_in_a_real_terminal(terminal: Terminal) -> None:
    command = cockpit_command("--demo", "--seed", "3", "--no-kubernetes")
    terminal.start(command, 80, 24)
    terminal.wait_for("● live", timeout=60)  # start-up: the demo's servers, on a loaded machine
    terminal.keys("]")
    terminal.wait_for("demo: broken")
    terminal.keys("3")
    screen = terminal.wait_for("frontend-egress-allow-to-backend — it was DNS", timeout=30)
    assert "✗ otel-demo/frontend:" in screen
    assert "lookups dropped at egress by" in screen
    terminal.keys("q")
    screen = terminal.wait_for("KCOCKPIT_EXIT=", timeout=15)
    assert "KCOCKPIT_EXIT=0" in screen
