"""End to end: `kcockpit --demo` at 80x24 in tmux, `]` to the broken phase, `4`: the
Policies tab shows the DNS drop with the deciding policy's name."""

from __future__ import annotations


import pytest
from ui_tmux import TMUX_MARKS, Terminal, cockpit_command

pytestmark = TMUX_MARKS


@pytest.fixture
def policies_terminal():
    term = Terminal("policies")
    yield term
    term.close()


def test_policies_tab_shows_the_dns_drop_in_a_real_terminal(policies_terminal: Terminal) -> None:
    terminal = policies_terminal
    command = cockpit_command("--demo", "--seed", "3")
    terminal.start(command, 80, 24)
    terminal.wait_for("● live", timeout=60)
    terminal.keys("]")
    terminal.wait_for("demo: broken")
    terminal.keys("4")
    screen = terminal.wait_for("frontend-egress-allow-to-backend", timeout=60)
    terminal.wait_for("DROPPED")
    screen = terminal.screen()
    assert "Verdicts" in screen and "kube-dns 53/UDP" in screen
    terminal.keys("p")
    terminal.wait_for("egress default deny")
    terminal.keys("q")
    assert "KCOCKPIT_EXIT=0" in terminal.wait_for("KCOCKPIT_EXIT=", timeout=15)
