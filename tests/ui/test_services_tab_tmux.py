"""End to end at 80x24: `kcockpit --demo`, `]` to the broken phase, `2`: the red DNS edge
under frontend (✗, 53/UDP, POLICY_DENIED) is on screen."""

from __future__ import annotations

import re
import time

import pytest
from ui_tmux import TMUX_MARKS, Terminal, cockpit_command

pytestmark = TMUX_MARKS


@pytest.fixture
def term():
    terminal = Terminal("services")
    yield terminal
    terminal.close()


def test_the_broken_dns_edge_under_frontend_at_80x24(term: Terminal) -> None:
    command = cockpit_command("--demo")
    term.start(command, 80, 24)
    term.wait_for("● live", timeout=60)
    term.keys("]")
    term.wait_for("demo: broken")
    term.keys("2")
    term.wait_for("ENDPOINT")
    deadline = time.monotonic() + 30
    while True:
        screen = term.screen()
        lines = screen.splitlines()
        dns = [i for i, line in enumerate(lines) if re.search(r"✗.*kube-system/cor.*53/UDP.*POLICY_DENIED", line)]
        frontend = [i for i, line in enumerate(lines) if re.search(r"└─.frontend\s+8080/TCP", line)]
        if dns and frontend and dns[0] > frontend[0]:  # the red DNS edge, under frontend
            break
        assert time.monotonic() < deadline, screen
        time.sleep(0.3)
    term.keys("q")
    assert "KCOCKPIT_EXIT=0" in term.wait_for("KCOCKPIT_EXIT=", timeout=15)
