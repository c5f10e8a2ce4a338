"""The Flows table's row buffer lets go of what it drops: memory stays near its capacity."""

from __future__ import annotations

import sys

from ui_support import scenario_records

from kcockpit.ui.columns import row_key
from kcockpit.ui.rows import COMPACT_EVERY, RowBuffer


def test_dropped_records_are_released_soon_not_after_a_whole_capacity() -> None:
    records = scenario_records(600)
    tracked = records[0]
    rows = RowBuffer(10_000)
    references_before = sys.getrefcount(tracked)
    for batch in range(200):  # 120,000 appends in batches of 600, as the drain does
        rows.extend(records)
        assert len(rows._items) <= rows.capacity + COMPACT_EVERY
    assert len(rows) == 10_000 and rows[0] is records[(120_000 - 10_000) % 600]
    # The buffer holds the oldest record of a batch only while it is among the newest 10,000 (+ slack).
    assert sys.getrefcount(tracked) - references_before <= (10_000 + COMPACT_EVERY) // 600 + 1


def test_aggregated_rows_compact_too() -> None:
    rows = RowBuffer(5_000, row_key)
    records = scenario_records(600)
    for batch in range(100):
        rows.extend(records)
        assert len(rows._starts) <= rows.capacity + COMPACT_EVERY
    assert rows.row_count() > 0 and sum(rows.row(i)[1] for i in range(rows.row_count())) == len(rows) == 5_000
