"""Clocks for the simulator: wall time in production, a hand-driven clock in tests.

Everything time-based in `kcockpit.sim` asks a Clock for `now_ns()` (Unix nanoseconds)
instead of calling `time` itself, so a test can step time and get the same flows twice.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int:
        """Current time as Unix nanoseconds."""
        ...


class SystemClock:
    """The real wall clock."""

    def now_ns(self) -> int:
        return time.time_ns()


class ManualClock:
    """A clock that moves only when told to; thread-safe so a server thread can read it."""

    def __init__(self, start_ns: int = 1_767_225_600_000_000_000) -> None:  # 2026-01-01T00:00:00Z
        self._now = start_ns
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        return self._now

    def advance(self, seconds: float = 0.0, *, ns: int = 0) -> int:
        """Move forward by seconds (and/or ns); returns the new time."""
        if seconds < 0 or ns < 0:
            raise ValueError("a ManualClock only moves forward")
        with self._lock:
            self._now += int(seconds * 1_000_000_000) + ns
            return self._now

    def set(self, now_ns: int) -> None:
        with self._lock:
            if now_ns < self._now:
                raise ValueError("a ManualClock only moves forward")
            self._now = now_ns
