"""Quitting cleanly when the terminal goes away (an SSH session drops, a tmux pane is killed).

The kernel hangs the terminal up and sends SIGHUP, then SIGCONT. Two things then go wrong in
a Textual app unless handled:
- Textual's SIGCONT handler restarts application mode; if that gets past its terminal check,
  it starts a new writer thread that dies at its first write.
- Writes to a hung-up terminal fail with EIO: the writer thread dies and its bounded queue
  fills, so the shutdown's final write blocks forever. The demo's Prometheus and temporary
  files are then never cleaned up.
So on hangup SIGCONT becomes a no-op, and stdout/stderr are pointed at /dev/null once the
terminal is really gone (a SIGHUP sent by hand to a live terminal leaves them alone, so the
terminal is still restored).
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import termios


def terminal_hung_up(fd: int) -> bool:
    """Whether `fd` is a terminal that has been hung up (not a pipe, file or /dev/null)."""
    try:
        if not stat.S_ISCHR(os.fstat(fd).st_mode):
            return False
        termios.tcgetattr(fd)
    except termios.error as error:
        return error.args[0] == errno.EIO
    except OSError:
        return False
    return False


def on_hangup() -> list[int]:
    """Make the rest of the shutdown safe; returns the output fds sent to /dev/null."""
    signal.signal(signal.SIGCONT, lambda _number, _frame: None)  # SIG_DFL would make Python warn
    detached = [fd for fd in (1, 2) if terminal_hung_up(fd)]
    if detached:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in detached:
                os.dup2(null, fd)
        finally:
            os.close(null)
    return detached
