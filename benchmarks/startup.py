"""How long `kcockpit --demo` takes to show its first complete frame in a real terminal.

Each run starts a fresh tmux server (a private socket) whose 80x24 pane runs a shell that
waits for one line and then `exec`s the cockpit. The clock starts when that line is sent
(the exec follows within a millisecond or two) and stops at the first capture of the pane
that shows a complete frame:

- row 1 is the tab bar (`kcockpit` and `1 Flows` ... `4 Policies`),
- the flow table's header (`VERDICT`) and at least MIN_ROWS flow rows (a verdict word each),
- the status bar (`●` followed by the connection state),
- the footer's line: the key bar, or a notice shown over it.

Textual fills the footer's key bar a frame or two after the rest, so the time of the first
capture that meets all but the last condition is printed too ("flows shown").

The pane is captured every POLL_S seconds, so a figure is late by at most that much.
After the frame the cockpit is quit with `q` and the next run starts on a new server.

The cockpit runs as an installed one does, with its bytecode cached: PYTHONDONTWRITEBYTECODE
is dropped from its environment and a first run, not counted, writes the caches (with the
variable set, every run compiles every kcockpit module again: 0.2-0.3 s more).

    python benchmarks/startup.py [--runs 7] [--command 'python -m kcockpit --demo'] [-- EXTRA ARGS]

The default command is this checkout's `python -m kcockpit --demo` run from tui/ with the
interpreter running this script (the venv's, like its `kcockpit` entry point).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 80, 24
POLL_S = 0.01
TIMEOUT_S = 30.0
MIN_ROWS = 5
VERDICT = re.compile(r"\b(FORWARDED|DROPPED|ERROR|AUDIT|REDIRECTED|TRACED|TRANSLATED)\b")
TABS = ("1 Flows", "2 Services", "3 DNS", "4 Policies")


def flows_shown(lines: list[str]) -> bool:
    """Tab bar, flow table header with MIN_ROWS rows, status bar (see the module's docstring)."""
    if len(lines) < HEIGHT or "kcockpit" not in lines[0] or not all(tab in lines[0] for tab in TABS):
        return False
    header = next((i for i, line in enumerate(lines) if "VERDICT" in line), None)
    if header is None:
        return False
    rows = sum(1 for line in lines[header + 1:] if VERDICT.search(line))
    return rows >= MIN_ROWS and any(re.search(r"● \w", line) for line in lines[-3:])


def complete_frame(lines: list[str]) -> bool:
    """The definition of "first complete frame": the flows shown, and the footer's line."""
    return flows_shown(lines) and lines[-1].strip() != ""


class Pane:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10, check=check)

    def capture(self) -> list[str]:
        return self.tmux("capture-pane", "-p", "-t", "bench").stdout.split("\n")[:HEIGHT]


def one_run(command: str, index: int) -> tuple[float, float, list[str]]:
    """(seconds to the flows shown, seconds to the complete frame, that frame's lines)."""
    pane = Pane(f"kcockpit-startup-{os.getpid()}-{index}")
    shell = f"read _ && cd {shlex.quote(str(ROOT / 'tui'))} && unset PYTHONDONTWRITEBYTECODE && exec {command}"
    pane.tmux("-f", "/dev/null", "new-session", "-d", "-s", "bench", "-x", str(WIDTH), "-y", str(HEIGHT),
              "sh", "-c", shell, check=True)
    try:
        pane.tmux("set-option", "-t", "bench", "remain-on-exit", "on")
        time.sleep(0.3)  # the shell is up and waiting in `read`
        start = time.perf_counter()
        pane.tmux("send-keys", "-t", "bench", "Enter")
        lines: list[str] = []
        shown = None
        while time.perf_counter() - start < TIMEOUT_S:
            lines = pane.capture()
            elapsed = time.perf_counter() - start
            if shown is None and flows_shown(lines):
                shown = elapsed
            if complete_frame(lines):
                break
            time.sleep(POLL_S)
        else:
            raise SystemExit(f"no complete frame within {TIMEOUT_S} s; last screen:\n" + "\n".join(lines))
        pane.tmux("send-keys", "-t", "bench", "q")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and pane.tmux("display-message", "-p", "-t", "bench", "#{pane_dead}").stdout.strip() != "1":
            time.sleep(0.1)
        return shown if shown is not None else elapsed, elapsed, lines
    finally:
        pane.tmux("kill-server")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--command", default=f"{shlex.quote(sys.executable)} -m kcockpit --demo",
                        help="what the pane execs, run from tui/ (default: %(default)s)")
    parser.add_argument("--show", action="store_true", help="print the first complete frame of the last run")
    parser.add_argument("extra", nargs="*", help="more arguments for the command")
    args = parser.parse_args()
    command = " ".join([args.command, *map(shlex.quote, args.extra)])
    print(f"command: {command}  ({WIDTH}x{HEIGHT}, tmux, polled every {POLL_S * 1000:.0f} ms)")
    shown_times, times = [], []
    _, warm_up, lines = one_run(command, -1)
    print(f"warm-up run (not counted: writes the bytecode caches): {warm_up:.3f} s", flush=True)
    for index in range(args.runs):
        shown, elapsed, lines = one_run(command, index)
        shown_times.append(shown)
        times.append(elapsed)
        print(f"run {index + 1}: first complete frame after {elapsed:.3f} s (flows shown after {shown:.3f} s); "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
    for what, values in (("first complete frame", times), ("flows shown", shown_times)):
        print(f"{what}: median {statistics.median(values):.3f} s, max {max(values):.3f} s, "
              f"min {min(values):.3f} s over {len(values)} runs")
    if args.show:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
