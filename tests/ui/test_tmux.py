"""End to end: `kcockpit --demo` in a real terminal (tmux, 80x24), driven by key presses."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from processes import alive
from ui_tmux import ROOT, TMUX_MARKS, Terminal

pytestmark = TMUX_MARKS


@pytest.fixture
def terminal():
    term = Terminal("cockpit")
    yield term
    term.close()


def test_demo_in_a_real_terminal(terminal: Terminal) -> None:
    command = (
        f"cd {ROOT} && PYTHONPATH={ROOT / 'tui'} {sys.executable} -m kcockpit --demo --seed 3; "
        "echo KCOCKPIT_EXIT=$?; sleep 30"
    )
    terminal.start(command, 80, 24)
    terminal.wait_for("FORWARDED", timeout=60)  # start-up: the demo's servers, on a loaded machine
    screen = terminal.wait_for("● live")  # the status bar refreshes 5 times a second
    assert "1 Flows" in screen
    assert terminal.flag("alternate_on") == "1"

    terminal.keys("2")
    terminal.wait_for("ENDPOINT")  # the Services tab's tree
    terminal.keys("1")
    terminal.wait_for("VERDICT")

    terminal.keys("/")
    terminal.keys("-l", "ns=otel-demo")
    terminal.keys("Enter")
    terminal.wait_for("✓ ns=otel-demo")

    terminal.keys("?")
    terminal.wait_for("BINDING ID")
    terminal.keys("Escape")  # Textual waits a moment to tell a lone Escape from a key sequence
    terminal.wait_until_gone("BINDING ID")

    terminal.keys("q")
    screen = terminal.wait_for("KCOCKPIT_EXIT=", timeout=15)
    assert "KCOCKPIT_EXIT=0" in screen
    # The terminal is back to normal: main screen, cursor shown, no mouse reporting.
    assert terminal.flag("alternate_on") == "0"
    assert terminal.flag("cursor_flag") == "1"
    assert terminal.flag("mouse_any_flag") == "0"
    assert "VERDICT" not in screen


def test_a_dropped_terminal_cleans_up_like_quit(terminal: Terminal, tmp_path: Path) -> None:
    """The SSH session drops (SIGHUP): the demo's servers stop and its temporary files go."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    command = f"cd {ROOT} && TMPDIR={private_tmp} PYTHONPATH={ROOT / 'tui'} exec {sys.executable} -m kcockpit --demo --seed 3"
    terminal.start(command, 80, 24)
    terminal.wait_for("● live", timeout=60)  # start-up: the demo's servers, on a loaded machine
    assert any(private_tmp.iterdir())  # the demo's kubeconfig folder (and Prometheus data, when installed)
    pid = terminal.tmux("display-message", "-p", "-t", terminal.name, "#{pane_pid}").strip()
    terminal.close()  # tmux hangs up the pane: SIGHUP, as sshd does
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (alive(int(pid)) or any(private_tmp.iterdir())):
        time.sleep(0.2)
    assert not alive(int(pid)), "kcockpit still running after SIGHUP"
    assert not any(private_tmp.iterdir()), f"left behind: {sorted(p.name for p in private_tmp.iterdir())}"
