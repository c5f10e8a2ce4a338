"""flows/s counts flows by their own time, so a burst of history does not read as a spike."""

from __future__ import annotations

import pytest

from kcockpit.ui.rate import RateMeter

S = 1_000_000_000
T0 = 1_700_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def flows(second: int, count: int) -> list[int]:
    """`count` flow timestamps spread over one second of flow time."""
    return [(T0 + second) * S + i * (S // count) for i in range(count)]


def test_a_30_second_backfill_reads_as_the_clusters_rate_not_as_a_spike() -> None:
    clock = Clock()
    meter = RateMeter(clock, window=2)
    meter.sample(0)
    backfill = [t for second in range(30) for t in flows(second, 300)]  # 9000 flows in one drain
    clock.now = 0.05
    meter.add_times(backfill)
    meter.sample(len(backfill))
    assert meter.arrivals_per_second() == pytest.approx(180_000)  # what the old meter showed
    assert meter.per_second() == pytest.approx(300)


def test_live_flows_after_the_backfill_keep_the_rate_and_a_stall_reads_zero() -> None:
    clock = Clock()
    meter = RateMeter(clock, window=2)
    total = 0
    meter.sample(total)
    for tick in range(1, 11):  # 10 s of a live stream at 300 flows/s, drained each second
        clock.now = float(tick)
        meter.add_times(flows(tick, 300))
        total += 300
        meter.sample(total)
        if tick >= 4:
            assert meter.per_second() == pytest.approx(300)
    clock.now = 13.0  # nothing arrives for longer than the window
    meter.sample(total)
    clock.now = 14.0
    meter.sample(total)
    assert meter.per_second() == 0.0


def test_the_first_moments_of_a_stream_use_arrivals() -> None:
    clock = Clock()
    meter = RateMeter(clock, window=2)
    meter.sample(0)
    clock.now = 0.5
    meter.add_times(flows(0, 100))  # half a second of flow time: no whole second yet
    meter.sample(100)
    assert meter.per_second() == pytest.approx(200)


def test_late_flows_count_in_their_own_second_and_old_seconds_are_forgotten() -> None:
    clock = Clock()
    meter = RateMeter(clock, window=2)
    meter.sample(0)
    clock.now = 1.0
    meter.add_times([*flows(0, 10), *flows(1, 10), *flows(2, 10), *flows(3, 1)])
    meter.add_times(flows(2, 10))  # late arrivals of second 2
    meter.sample(41)
    assert meter.per_second() == pytest.approx((10 + 20) / 2)  # seconds 1 and 2; 3 is still filling
    meter.add_times(flows(100, 1))
    assert sorted(meter._per_second) == [T0 + 100]  # nothing older than the window is kept
