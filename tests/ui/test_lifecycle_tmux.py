"""End to end, in a real terminal: the cockpit's child processes never outlive it, and a
counting process that dies is restarted, said so, and the counts go on.

`kcockpit --demo` starts, once its first frame is up, the aggregator child (`python -m
kcockpit.application.aggregation`) and, when `prometheus` is installed, Prometheus behind
its watchdog. Every descendant of the cockpit is collected from /proc while it runs; after
`q`, SIGTERM, SIGHUP (the terminal closes) or SIGKILL (a crash), none may be left.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
from polling import wait_until
from processes import alive, command_line, descendants, described
from ui_tmux import ROOT, TMUX_MARKS, Terminal

pytestmark = TMUX_MARKS

AGGREGATOR = "kcockpit.application.aggregation"


@pytest.fixture
def terminal():
    term = Terminal("lifecycle")
    yield term
    term.close()


def start_demo(terminal: Terminal, tmp: Path) -> int:
    """The cockpit is the pane's process itself (exec), so signals reach it directly."""
    terminal.start(f"cd {ROOT} && TMPDIR={tmp} PYTHONPATH={ROOT / 'tui'} exec {sys.executable} -m kcockpit --demo --seed 3",
                   80, 24)
    terminal.wait_for("● live", timeout=60)  # start-up: the demo's servers, on a loaded machine
    return int(terminal.flag("pane_pid"))


def children_named(pid: int, *fragments: str) -> dict[str, int]:
    """The first descendant whose command line holds each fragment."""
    found = {}
    for child in sorted(descendants(pid)):
        for fragment in fragments:
            if fragment not in found and fragment in command_line(child):
                found[fragment] = child
    return found


def wait_for_children(pid: int) -> set[int]:
    """Once the background has started: the aggregator, and Prometheus with its watchdog."""
    expected = [AGGREGATOR]
    if shutil.which("prometheus"):
        expected += ["prometheus_runner.py --watchdog", "--storage.tsdb.path"]
    wait_until(lambda: len(children_named(pid, *expected)) == len(expected), timeout=40)
    return descendants(pid)


@pytest.mark.parametrize("ending", ["q", "SIGTERM", "SIGHUP", "SIGKILL"])
def test_no_process_outlives_the_cockpit(terminal: Terminal, tmp_path: Path, ending: str) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    pid = start_demo(terminal, tmp)
    family = wait_for_children(pid) | {pid}
    if ending == "q":
        terminal.keys("q")
    elif ending == "SIGHUP":
        terminal.close()  # tmux hangs up the pane, as sshd does when the connection drops
    else:
        os.kill(pid, getattr(signal, ending))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(p) for p in family):
        time.sleep(0.1)
    left = {p for p in family if alive(p)}
    assert not left, f"left behind after {ending}: {described(left)}"
    if ending != "SIGKILL":  # a killed process removes nothing itself (the watchdog still removes Prometheus's)
        wait_until(lambda: not any(tmp.iterdir()), timeout=10)


def counted(screen: str, pattern: str) -> int:
    found = re.search(pattern, screen)
    assert found, f"{pattern!r} not on screen:\n{screen}"
    return int(found.group(1).replace(",", ""))


def counts_grow(terminal: Terminal, tab: str, shown: str, pattern: str) -> None:
    """On tab `tab` (once `shown` is on screen), with the window since start (t cycles 1m,
    5m, 15m, all): the count on screen grows."""
    terminal.keys(tab)
    terminal.wait_for(shown)
    terminal.keys("t", "t", "t")
    wait_until(lambda: re.search(pattern, terminal.screen()), timeout=10)
    first = counted(terminal.screen(), pattern)
    wait_until(lambda: counted(terminal.screen(), pattern) > first, timeout=20)


def test_a_killed_aggregator_is_restarted_said_and_the_counts_go_on(terminal: Terminal, tmp_path: Path) -> None:
    pid = start_demo(terminal, tmp_path)
    wait_until(lambda: children_named(pid, AGGREGATOR), timeout=40)
    first = children_named(pid, AGGREGATOR)[AGGREGATOR]
    terminal.keys("2")
    terminal.wait_for("ENDPOINT")
    os.kill(first, signal.SIGKILL)
    # Said at once (a notice on the footer's line), and kept in the status bar after.
    terminal.wait_for("aggregator restarted (1): it ended", timeout=15)
    terminal.wait_for("aggregator ↻1", timeout=15)
    wait_until(lambda: children_named(pid, AGGREGATOR).get(AGGREGATOR) not in (None, first), timeout=15)
    counts_grow(terminal, "2", "ENDPOINT", r"since start · \d+ edges · ([\d,]+) flows")
    counts_grow(terminal, "3", "lookups ·", r"([\d,]+) lookups · since start")
    terminal.wait_for("aggregator ↻1", timeout=10)  # still there, once the window notices are gone
    terminal.keys("q")
    wait_until(lambda: not alive(pid) and not descendants(pid), timeout=20)
