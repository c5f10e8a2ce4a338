"""LatencySketch: percentiles of latencies in fixed memory, mergeable.

Values fall into logarithmic buckets 2% wide (a DDSketch-style index: bucket i holds
(GAMMA^(i-1), GAMMA^i]); a quantile is answered with its bucket's midpoint, so it is within
1% of the exact nearest-rank value whatever the distribution. Latencies from 1 µs to 100 s
use at most ~930 buckets; a typical edge touches a few dozen. Two sketches merge by adding
their buckets, so per-second sketches sum into any window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

GAMMA = 1.02
_LOG_GAMMA = math.log(GAMMA)
_MIDPOINT = 2 / (1 + GAMMA)  # GAMMA^i * this is the bucket's relative midpoint
MIN_NS = 1_000  # values below 1 µs share one bucket


class LatencySketch:
    __slots__ = ("buckets", "count")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0

    def add_ns(self, value_ns: int) -> None:
        index = math.ceil(math.log(max(value_ns, MIN_NS)) / _LOG_GAMMA)
        buckets = self.buckets
        buckets[index] = buckets.get(index, 0) + 1
        self.count += 1

    @classmethod
    def of(cls, sketches: Iterable[LatencySketch | None]) -> LatencySketch:
        """One sketch of all of `sketches` (None ones are skipped): empty when none had values."""
        merged = cls()
        for sketch in sketches:
            if sketch is not None:
                merged.merge(sketch)
        return merged

    def merge(self, other: LatencySketch) -> None:
        buckets = self.buckets
        for index, count in other.buckets.items():
            buckets[index] = buckets.get(index, 0) + count
        self.count += other.count

    def quantile_ns(self, quantile: float) -> float:
        """The nearest-rank quantile (NaN when empty), to within 1%."""
        if not self.count:
            return math.nan
        rank = max(1, math.ceil(quantile * self.count))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return GAMMA**index * _MIDPOINT
        return math.nan  # unreachable: counts add up

    def quantiles_ms(self) -> dict[str, float] | None:
        """{"p50", "p95", "p99"} in milliseconds, or None without samples (the report's shape)."""
        if not self.count:
            return None
        return {name: round(self.quantile_ns(q) / 1e6, 3) for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))}
