"""Hangup handling: a dead terminal is recognised, and the shutdown no longer writes to it."""

from __future__ import annotations

import os
import subprocess
import sys

from kcockpit.ui.hangup import terminal_hung_up


def test_a_hung_up_terminal_is_told_apart_from_live_ones_pipes_and_dev_null(tmp_path) -> None:
    master, slave = os.openpty()
    try:
        assert not terminal_hung_up(slave)
        os.close(master)  # what sshd or tmux does when the session goes away
        master = -1
        assert terminal_hung_up(slave)
    finally:
        os.close(slave)
        if master >= 0:
            os.close(master)
    read_end, write_end = os.pipe()
    null = os.open(os.devnull, os.O_WRONLY)
    regular = os.open(tmp_path / "file", os.O_WRONLY | os.O_CREAT)
    try:
        assert not any(terminal_hung_up(fd) for fd in (read_end, write_end, null, regular))
    finally:
        for fd in (read_end, write_end, null, regular):
            os.close(fd)


HANGUP_CHILD = """
import os, signal, sys
from kcockpit.ui.hangup import on_hangup
master, slave = os.openpty()
os.dup2(slave, 1)
os.close(master)                     # the terminal behind stdout is gone
print("detached", on_hangup(), file=sys.stderr, flush=True)
print("x" * 100_000, flush=True)     # would raise EIO on the dead terminal
os.kill(os.getpid(), signal.SIGCONT)  # must not run Textual's (or any) resume
print("survived", signal.getsignal(signal.SIGCONT) not in (signal.SIG_DFL, signal.SIG_IGN), file=sys.stderr)
"""


def test_on_hangup_sends_output_of_a_dead_terminal_to_dev_null_and_disarms_sigcont() -> None:
    done = subprocess.run(
        [sys.executable, "-c", HANGUP_CHILD], capture_output=True, text=True, timeout=30,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["detached [1]", "survived True"]  # stderr (a pipe) was left alone
