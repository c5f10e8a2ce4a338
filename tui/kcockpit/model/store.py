"""FlowStore: a bounded ring buffer of FlowRecords with ingest counters.

Producers (the reader thread) call `append`, which is O(1): a deque with maxlen evicts
the oldest record itself. Consumers remember the `received` count they last saw and call
`since(mark)` to get only what arrived after it, so the UI drains in batches on a timer
without one message per flow. A small lock keeps each append and its count together (about
0.1 us): without it a drain that lands between the two returns one record twice and skips
another. Reads that copy the deque in one C call (snapshot, latest) need no lock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from kcockpit.model.record import FlowRecord

# A flow costs about 2.5 KB here: its ~1.4 KB of wire bytes (kept for the detail view and
# export), the record, and its decoded fields once shown. So 100k flows are ~250 MB: modest
# on a shared bastion, 5 minutes of the demo, 50 s of a busy 2k flows/s cluster (more with
# a server-side filter). --buffer-size raises it.
DEFAULT_CAPACITY = 100_000


@dataclass(slots=True)
class StoreCounters:
    received: int = 0
    evicted: int = 0
    lost_at_server: int = 0  # sum of lost_events.num_events_lost reported by the server
    retained: int = 0


class FlowStore:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"flow buffer capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._records: deque[FlowRecord] = deque(maxlen=capacity)
        self.received = 0
        self.lost_at_server = 0
        self._cleared = 0  # records dropped by clear(), not by eviction
        self._lock = threading.Lock()  # an append and its count change together

    def append(self, record: FlowRecord) -> None:
        with self._lock:
            self._records.append(record)
            self.received += 1

    def extend(self, records: list[FlowRecord]) -> None:
        with self._lock:
            self._records.extend(records)
            self.received += len(records)

    def add_lost(self, count: int) -> None:
        self.lost_at_server += count

    def clear(self) -> None:
        """Forget every record; counters of what was received stay."""
        with self._lock:
            self._cleared += len(self._records)
            self._records.clear()

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[FlowRecord]:
        return iter(self.snapshot())

    @property
    def evicted(self) -> int:
        return self.received - self._cleared - len(self._records)

    def counters(self) -> StoreCounters:
        with self._lock:
            received, retained = self.received, len(self._records)
        return StoreCounters(
            received=received,
            evicted=received - self._cleared - retained,
            lost_at_server=self.lost_at_server,
            retained=retained,
        )

    def since(self, mark: int) -> tuple[list[FlowRecord], int]:
        """Records received after `mark` (a previous `received` value) still retained, and the new mark."""
        with self._lock:
            received = self.received
            records = self._records
            new = min(received - mark, len(records))
            if new <= 0:
                return [], received
            # Walk from the newest end: indexing or slicing from the front is O(capacity).
            tail = list(islice(reversed(records), new))
        tail.reverse()
        return tail, received

    def latest(self, count: int) -> list[FlowRecord]:
        # Copies take the lock too: a garbage collection inside the copy can let the reader
        # thread run and append ("deque mutated during iteration").
        with self._lock:
            tail = list(islice(reversed(self._records), count))
        tail.reverse()
        return tail

    def snapshot(self) -> list[FlowRecord]:
        """A stable copy of every retained record, oldest first."""
        with self._lock:
            return list(self._records)
