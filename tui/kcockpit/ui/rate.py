"""RateMeter: flows per second over a sliding window, from an injectable clock."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 2.0


class RateMeter:
    def __init__(self, clock: Callable[[], float], window: float = WINDOW_SECONDS) -> None:
        self._clock = clock
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()

    def sample(self, total: int) -> None:
        """Record the running total (e.g. flows received so far) at the current time."""
        now = self._clock()
        samples = self._samples
        samples.append((now, total))
        while len(samples) > 2 and now - samples[1][0] >= self._window:
            samples.popleft()

    def per_second(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
