"""RowBuffer: the records the Flows table shows, bounded, with O(1) indexing.

The table renders any visible row by index many times a second, which a deque does in
O(n); a list with a moving head does it in O(1), and trimming the front in one slice
every few thousand dropped records keeps appends amortized O(1) and frees what was dropped.

With a `key` the buffer also aggregates: consecutive records with the same key make one
row (shown as its newest record and a count). Rows are kept as the sequence numbers
where they start, so adding records costs O(new records) and reading a row stays O(1);
the records themselves are all kept, so an export of the view still has every flow.
Keys cost a decode each, so one `extend` computes at most `key_budget` of them (the
newest): beyond that rate the older records of the batch get a row each rather than
holding the UI up.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Hashable, Sequence

from kcockpit.model.record import FlowRecord

_NO_KEY = object()


COMPACT_EVERY = 4096


class RowBuffer:
    def __init__(
        self, capacity: int, key: Callable[[FlowRecord], Hashable] | None = None, key_budget: int | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError(f"row capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.key = key
        self.key_budget = key_budget
        self._items: list[FlowRecord] = []
        self._head = 0
        self._first = 0  # sequence number of the oldest record kept
        self._starts: list[int] = []  # with a key: sequence numbers where rows start
        self._row_head = 0
        self._last_key: object = _NO_KEY

    # --- records -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items) - self._head

    def __getitem__(self, index: int) -> FlowRecord:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._items[self._head + index]

    def snapshot(self) -> list[FlowRecord]:
        return self._items[self._head :]

    # --- rows --------------------------------------------------------------------------

    @property
    def aggregated(self) -> bool:
        return self.key is not None

    def row_count(self) -> int:
        return len(self._starts) - self._row_head if self.key is not None else len(self)

    def row(self, index: int) -> tuple[FlowRecord, int]:
        """(the newest record of row `index`, how many records the row stands for)."""
        if self.key is None:
            return self[index], 1
        if not 0 <= index < self.row_count():
            raise IndexError(index)
        position = self._row_head + index
        start = max(self._starts[position], self._first)
        end = self._starts[position + 1] if position + 1 < len(self._starts) else self._first + len(self)
        return self._items[self._head + end - 1 - self._first], end - start

    def row_of(self, record: FlowRecord) -> int | None:
        """The index of the row holding `record` (the same object), None if it is not here."""
        try:
            position = self.snapshot().index(record)  # FlowRecord compares by identity
        except ValueError:
            return None
        if self.key is None:
            return position
        starts = self._starts
        row = bisect_right(starts, self._first + position, lo=self._row_head) - 1
        return max(row, self._row_head) - self._row_head

    # --- changes -----------------------------------------------------------------------

    def extend(self, records: Sequence[FlowRecord]) -> int:
        """Append records, dropping the oldest beyond capacity; returns how many rows left
        the front (whole rows: a row only partly dropped stays, with a smaller count)."""
        if self.key is not None:
            self._start_rows(records)
        self._items.extend(records)
        dropped = max(0, len(self) - self.capacity)
        self._head += dropped
        self._first += dropped
        # Dropped records stay referenced until the list is compacted: waiting for a whole
        # capacity of them kept up to twice the buffer's flows alive (gigabytes at 250k).
        # Compacting every few thousand costs a pointer memmove, ~25 ns per flow.
        if self._head >= min(self.capacity, COMPACT_EVERY):
            del self._items[: self._head]
            self._head = 0
        if self.key is None:
            return dropped
        return self._drop_rows_before_first()

    def _start_rows(self, records: Sequence[FlowRecord]) -> None:
        key, starts, last = self.key, self._starts, self._last_key
        assert key is not None
        sequence = self._first + len(self)
        unkeyed = 0 if self.key_budget is None else max(0, len(records) - self.key_budget)
        if unkeyed:
            starts.extend(range(sequence, sequence + unkeyed))
            sequence += unkeyed
            last = _NO_KEY
            records = records[unkeyed:]
        for record in records:
            current = key(record)
            if current != last:
                starts.append(sequence)
                last = current
            sequence += 1
        self._last_key = last

    def _drop_rows_before_first(self) -> int:
        starts, first = self._starts, self._first
        head = self._row_head
        while head + 1 < len(starts) and starts[head + 1] <= first:
            head += 1
        dropped = head - self._row_head
        if head >= min(self.capacity, COMPACT_EVERY):
            del starts[:head]
            head = 0
        self._row_head = head
        return dropped

    def reset(self, records: Sequence[FlowRecord]) -> None:
        """Hold exactly the newest `capacity` of these records, every one keyed (the
        budget is for live batches: a reset is a one-off, large ones run on a thread)."""
        self._items = []
        self._head = self._first = self._row_head = 0
        self._starts = []
        self._last_key = _NO_KEY
        budget, self.key_budget = self.key_budget, None
        try:
            self.extend(records[-self.capacity :])
        finally:
            self.key_budget = budget
