"""RateMeter: the flows/s of the status bar, from an injectable clock.

Counting arrivals is wrong whenever history arrives in a burst: the 30 s backfill at start
or the flows a reconnect catches up on arrive within a second and read as thousands of
flows/s. So the rate counts flows by their own timestamps, over the last whole seconds of
flow time before the newest (still filling) one. Arrivals still decide two cases: nothing
arrived for a window (the stream stalled: 0), and too little flow time seen yet to have
whole seconds (the first moments of a live stream).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable

WINDOW_SECONDS = 2


class RateMeter:
    def __init__(self, clock: Callable[[], float], window: int = WINDOW_SECONDS) -> None:
        self._clock = clock
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._per_second: Counter[int] = Counter()  # flow-time second -> flows
        self._first_second: int | None = None
        self._newest_second = -1

    def sample(self, total: int) -> None:
        """Record the running total (e.g. flows received so far) at the current time."""
        now = self._clock()
        samples = self._samples
        samples.append((now, total))
        while len(samples) > 2 and now - samples[1][0] >= self._window:
            samples.popleft()

    def add_times(self, times_ns: Iterable[int]) -> None:
        """Count newly received flows by their timestamps (nanoseconds)."""
        seconds = Counter(t // 1_000_000_000 for t in times_ns)
        if not seconds:
            return
        self._per_second.update(seconds)
        oldest, newest = min(seconds), max(seconds)
        if self._first_second is None or oldest < self._first_second:
            self._first_second = oldest
        if newest > self._newest_second:
            self._newest_second = newest
            keep_from = newest - self._window
            for second in [s for s in self._per_second if s < keep_from]:
                del self._per_second[second]

    def arrivals_per_second(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0

    def per_second(self) -> float:
        arrivals = self.arrivals_per_second()
        first, newest = self._first_second, self._newest_second
        if arrivals == 0.0 or first is None or newest - self._window <= first:
            return arrivals  # stalled, or no whole seconds of flow time yet
        whole = range(newest - self._window, newest)
        return sum(self._per_second[second] for second in whole) / self._window
