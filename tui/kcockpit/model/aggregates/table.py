"""A windowed table: per key, cells by second for the last minute, by ten seconds for the
last 15 minutes, and one cell since the start, in bounded memory.

Windows are counted by the flows' own time. `1m` sums the per-second cells after `now - 60`;
`5m` and `15m` sum ten-second cells (their edge is exact to ten seconds); `all` is the
running total. Keys are capped: when the cap is reached, keys idle for 15 minutes are folded
into the table's explicit "other" key (so totals still add up), and new keys beyond the cap
count under "other" until room is made. Memory therefore depends on the cap, never on the
number of flows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

NS = 1_000_000_000
FINE_SPAN_S = 60
COARSE_STEP_S = 10
COARSE_SPAN_S = 15 * 60
WINDOWS_S = (60, 300, 900)  # 1m, 5m, 15m; None is "since start"
PRUNE_EVERY_S = 5
RETRY_EVICTION_S = 10

Cell = TypeVar("Cell")


class Series(Generic[Cell]):
    __slots__ = ("fine", "coarse", "total")

    def __init__(self, total: Cell) -> None:
        self.fine: dict[int, Cell] = {}
        self.coarse: dict[int, Cell] = {}
        self.total = total


class WindowedTable(Generic[Cell]):
    def __init__(self, make_cell: Callable[[], Cell], other_key, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"key cap must be at least 1, got {cap}")
        self._make = make_cell
        self.other_key = other_key
        self.cap = cap
        self._series: dict = {}
        self.newest_s = 0  # the newest second merged (flow time)
        self._pruned_at = 0
        self._eviction_retry_at = 0
        self.folded_keys = 0  # keys folded into "other" (idle ones, or new ones past the cap)

    def __len__(self) -> int:
        return len(self._series)

    def keys(self) -> list:
        return list(self._series)

    def _series_for(self, key) -> Series:
        series = self._series.get(key)
        if series is not None:
            return series
        if len(self._series) >= self.cap and key != self.other_key:
            self._make_room()
            if len(self._series) >= self.cap:
                self.folded_keys += 1
                return self._series_for(self.other_key)
        series = self._series[key] = Series(self._make())
        return series

    def _make_room(self) -> None:
        """Fold keys idle for the whole 15-minute window into "other"."""
        if self.newest_s < self._eviction_retry_at:
            return
        horizon = (self.newest_s - COARSE_SPAN_S) * NS
        idle = [key for key, series in self._series.items()
                if key != self.other_key and not series.coarse and getattr(series.total, "last_ns", 0) < horizon]
        if not idle:
            self._eviction_retry_at = self.newest_s + RETRY_EVICTION_S
            return
        other = self._series.get(self.other_key)
        if other is None:
            other = self._series[self.other_key] = Series(self._make())
        for key in idle:
            other.total.merge(self._series.pop(key).total)
            self.folded_keys += 1

    def merge(self, key, second: int, cell: Cell) -> None:
        """Add `cell` (counted in flow second `second`); the table takes ownership of it."""
        if second > self.newest_s:
            self.newest_s = second
            if second - self._pruned_at >= PRUNE_EVERY_S:
                self.prune(second)
        series = self._series_for(key)
        series.total.merge(cell)
        bucket = second // COARSE_STEP_S
        coarse = series.coarse.get(bucket)
        if coarse is None:
            if second > self.newest_s - COARSE_SPAN_S - COARSE_STEP_S:
                series.coarse[bucket] = coarse = self._make()
                coarse.merge(cell)
        else:
            coarse.merge(cell)
        fine = series.fine.get(second)
        if fine is None:
            if second > self.newest_s - FINE_SPAN_S - PRUNE_EVERY_S:
                series.fine[second] = cell  # owned from here on: merged above, never shared
        else:
            fine.merge(cell)

    def prune(self, now_s: int) -> None:
        """Drop cells that no window ending at `now_s` or later can need."""
        self._pruned_at = now_s
        fine_horizon = now_s - FINE_SPAN_S
        coarse_horizon = (now_s - COARSE_SPAN_S) // COARSE_STEP_S
        for series in self._series.values():
            if series.fine:
                for second in [s for s in series.fine if s <= fine_horizon]:
                    del series.fine[second]
            if series.coarse:
                for bucket in [b for b in series.coarse if b < coarse_horizon]:
                    del series.coarse[bucket]

    def window(self, window_s: int | None, now_s: int) -> Iterator[tuple[object, Cell]]:
        """(key, summed cell) for every key with activity in the window ending at `now_s`
        (flow time, whole seconds), or since the start when `window_s` is None."""
        if window_s is None:
            for key, series in self._series.items():
                yield key, series.total
            return
        if window_s <= FINE_SPAN_S:
            start = now_s - window_s
            for key, series in self._series.items():
                cells = [cell for second, cell in series.fine.items() if start < second <= now_s]
                if cells:
                    yield key, self._sum(cells)
            return
        first = (now_s - window_s) // COARSE_STEP_S + 1
        last = now_s // COARSE_STEP_S
        for key, series in self._series.items():
            cells = [cell for bucket, cell in series.coarse.items() if first <= bucket <= last]
            if cells:
                yield key, self._sum(cells)

    def series(self, key, window_s: int, now_s: int) -> list[tuple[int, Cell]]:
        """The cells of one key over the window, oldest first, as (start second, cell), with
        the bucket step of the window (1 s up to a minute, 10 s beyond); empty buckets are
        absent."""
        series = self._series.get(key)
        if series is None:
            return []
        if window_s <= FINE_SPAN_S:
            return sorted((s, c) for s, c in series.fine.items() if now_s - window_s < s <= now_s)
        first = (now_s - window_s) // COARSE_STEP_S + 1
        last = now_s // COARSE_STEP_S
        return sorted((b * COARSE_STEP_S, c) for b, c in series.coarse.items() if first <= b <= last)

    def _sum(self, cells: list[Cell]) -> Cell:
        total = self._make()
        for cell in cells:
            total.merge(cell)
        return total
