"""A real terminal for end-to-end tests: one tmux session on a private server socket."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


_TERMINALS = itertools.count()


class Terminal:
    """One tmux session on a private server socket, so nothing else's tmux is touched."""

    def __init__(self, name: str) -> None:
        # A socket per terminal: a server still exiting after the previous test's kill-server
        # made the next new-session fail now and then.
        self.socket = f"kcockpit-test-{os.getpid()}-{next(_TERMINALS)}"
        self.name = name

    def tmux(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        return result.stdout

    def start(self, command: str, width: int, height: int) -> None:
        started = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s", self.name,
             "-x", str(width), "-y", str(height), command],
            capture_output=True, text=True, timeout=10, env={**os.environ, "TERM": "xterm-256color"},
        )
        assert started.returncode == 0, f"tmux new-session failed: {started.stderr.strip()}"

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def flag(self, name: str) -> str:
        return self.tmux("display-message", "-p", "-t", self.name, f"#{{{name}}}").strip()

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} did not appear within {timeout} s; screen:\n{screen}")

    def wait_until_gone(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        screen = self.screen()
        while text in screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} still shown after {timeout} s; screen:\n{screen}")
            time.sleep(0.1)
            screen = self.screen()

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


# What every tmux test shares: its marks, and the cockpit run in the pane so that its exit
# status can be read afterwards (KCOCKPIT_EXIT=N stays on screen for 30 s).
TMUX_MARKS = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def cockpit_command(*arguments: str) -> str:
    """The shell command a test types into tmux: `kcockpit ARGUMENTS` from this checkout."""
    return (f"cd {ROOT} && PYTHONPATH={ROOT / 'tui'} {sys.executable} -m kcockpit {' '.join(arguments)}; "
            "echo KCOCKPIT_EXIT=$?; sleep 30")
