"""FlowStore: a bounded ring buffer of FlowRecords with ingest counters.

Producers (the reader thread) call `append`, which is O(1): a deque with maxlen evicts
the oldest record itself. Consumers remember the `received` count they last saw and call
`since(mark)` to get only what arrived after it, so the UI drains in batches on a timer
without one message per flow. A small lock keeps each append and its count together (about
0.1 us): without it a drain that lands between the two returns one record twice and skips
another. Reads that copy the deque in one C call (snapshot, latest) need no lock.

The records' wire bytes move into compressed blocks (model.blocks): an append adds its
record's bytes to the open block and the record keeps (block, index); every BLOCK_FLOWS
flows the block is sealed (compressed once, on the sealing thread: blocks.seal_later). A block
lives as long as a record points at it, so a record the store evicted but something else
still holds (a filtered flow list keeps its rows longer than the store keeps the flows)
would pin a whole block of flows nobody needs. So the deque keeps 2 x RETIRE_BATCH records
more than `capacity`, hidden from every reader: every RETIRE_BATCH flows, the producer
looks at the oldest hidden batch (out of view for at least RETIRE_BATCH flows, so the flow
list has let go of what it only showed) and moves those still referenced elsewhere into
blocks of their own; the deque then drops them as it always did.
"""

from __future__ import annotations

import sys
import threading
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import compress, islice

from kcockpit.model.blocks import BLOCK_FLOWS, Block, FlowBytesLost, seal_later, unpack
from kcockpit.model.record import FlowRecord

# A retained flow costs about 250 B here (measured: benchmarks/memory.py, RESULTS.md): the
# record (~110 B), its wire bytes compressed (~55-80 B of ~1.1-1.4 KB), the deque's and the
# flow list's references; the decoded fields of the few flows shown (~700 B each) are kept
# for the last 8192 decoded only. So 1M flows are ~250 MB: modest on a shared bastion, 50
# minutes of the demo, 8 minutes of a busy 2k flows/s cluster (more with a server-side
# filter). --buffer-size changes it.
DEFAULT_CAPACITY = 1_000_000

# Records out of view are looked at in batches of this many, once a whole further batch
# has left the view after them: by then the flow list has dropped the rows it showed of
# them (it drains 20 times a second and compacts every 4096 rows). A power of 2.
RETIRE_BATCH = 16_384


@dataclass(slots=True)
class StoreCounters:
    received: int = 0
    evicted: int = 0
    lost_at_server: int = 0  # sum of lost_events.num_events_lost reported by the server
    retained: int = 0


class FlowStore:
    def __init__(self, capacity: int = DEFAULT_CAPACITY, block_flows: int = BLOCK_FLOWS) -> None:
        if capacity < 1:
            raise ValueError(f"flow buffer capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.block_flows = block_flows
        # The newest `capacity` records are the store; the up to 2 x RETIRE_BATCH before
        # them wait to be looked at (see the module's docstring), invisible to readers.
        self._records: deque[FlowRecord] = deque(maxlen=capacity + 2 * RETIRE_BATCH)
        self.received = 0
        self.lost_at_server = 0
        self._cleared = 0  # records dropped by clear(), not by eviction
        self._lock = threading.Lock()  # an append and its count change together
        self._open = Block()  # takes the bytes of the records appended next
        self._looked_at = 0  # records received before this one were looked at once out of view

    def append(self, record: FlowRecord) -> None:
        full = None
        with self._lock:
            # FlowRecord's bytes protocol (see its __slots__): index first, then the block.
            raw = record._raw
            if raw.__class__ is bytes:
                block = self._open
                parts = block._parts
                record._index = len(parts)
                parts.append(raw)
                record._raw = block
                if len(parts) >= self.block_flows:
                    full = block
                    self._open = Block()
            self._records.append(record)
            self.received = received = self.received + 1
        if full is not None:
            seal_later(full)
        if not received % RETIRE_BATCH:
            self._retire()

    def extend(self, records: list[FlowRecord]) -> None:
        full: list[Block] = []
        with self._lock:
            block, limit = self._open, self.block_flows
            parts = block._parts  # Block.add, inlined: this loop runs for every flow received
            for record in records:
                raw = record._raw
                if raw.__class__ is bytes:
                    record._index = len(parts)
                    parts.append(raw)
                    record._raw = block
                    if len(parts) >= limit:
                        full.append(block)
                        block = Block()
                        parts = block._parts
            self._open = block
            self._records.extend(records)
            before = self.received
            self.received = received = before + len(records)
        for block in full:
            seal_later(block)
        if received // RETIRE_BATCH != before // RETIRE_BATCH:
            self._retire()

    def add_lost(self, count: int) -> None:
        self.lost_at_server += count

    def clear(self) -> None:
        """Forget every record; counters of what was received stay. (Records kept elsewhere
        keep their blocks: unlike evicted ones, these are not moved.)"""
        with self._lock:
            self._cleared += self._retained()
            self._records.clear()

    def _retained(self) -> int:
        return min(len(self._records), self.capacity)

    def __len__(self) -> int:
        return self._retained()

    def __iter__(self) -> Iterator[FlowRecord]:
        return iter(self.snapshot())

    @property
    def evicted(self) -> int:
        return self.received - self._cleared - self._retained()

    def counters(self) -> StoreCounters:
        with self._lock:
            received, retained = self.received, self._retained()
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
            new = min(received - mark, self._retained())
            if new <= 0:
                return [], received
            # Walk from the newest end: indexing or slicing from the front is O(capacity).
            tail = list(islice(reversed(self._records), new))
        tail.reverse()
        return tail, received

    def latest(self, count: int) -> list[FlowRecord]:
        # Copies take the lock too: a garbage collection inside the copy can let the reader
        # thread run and append ("deque mutated during iteration").
        with self._lock:
            tail = list(islice(reversed(self._records), min(count, self._retained())))
        tail.reverse()
        return tail

    def snapshot(self) -> list[FlowRecord]:
        """A stable copy of every retained record, oldest first."""
        with self._lock:
            records = self._records
            return list(islice(records, len(records) - self._retained(), None))

    # --- records out of view ----------------------------------------------------------

    def _retire(self) -> None:
        """Look at the records out of view for at least RETIRE_BATCH flows and not looked at
        yet; move those something else still holds into blocks of their own (by the
        producer: nobody else changes the deque meanwhile)."""
        with self._lock:
            records = self._records
            oldest = self.received - len(records)  # the sequence number of records[0]
            settled = self.received - self.capacity - RETIRE_BATCH  # those before are looked at
            first = max(self._looked_at, oldest)
            if settled <= first:
                return
            batch = list(islice(records, first - oldest, settled - oldest))
            self._looked_at = settled
        survivors = _held_elsewhere(batch)
        del batch
        if survivors:
            rehouse(survivors, self.block_flows)


def _held_elsewhere(batch: list) -> list:
    """The items of `batch` (each also in one deque) that something else refers to as well."""
    counts = list(map(sys.getrefcount, batch))
    return list(compress(batch, map(_ONLY_DEQUE_AND_LIST.__lt__, counts)))


def _count_of_an_item_in_a_deque_and_a_list() -> int:
    batch = [object()]
    holder = deque(batch)  # noqa: F841 - the deque's reference is the point
    return list(map(sys.getrefcount, batch))[0]


# What sys.getrefcount gives in _held_elsewhere for an item nothing else refers to:
# measured rather than assumed (it differs between Python versions).
_ONLY_DEQUE_AND_LIST = _count_of_an_item_in_a_deque_and_a_list()


def rehouse(records: list[FlowRecord], block_flows: int = BLOCK_FLOWS) -> None:
    """Move the bytes of `records` into new compressed blocks of their own, so that the
    blocks they pointed at can go once nothing else needs them. Records whose bytes are lost
    stay as they are."""
    for start in range(0, len(records), block_flows):
        block = Block()
        moved = []
        for record in records[start : start + block_flows]:
            try:
                raw = record.raw
            except FlowBytesLost:
                continue
            # The bytes protocol: readers see bytes while the index changes.
            record._raw = raw
            record._index = block.add(raw)
            moved.append(record)
        block.seal()
        for record in moved:
            record._raw = block


# --- shipping records' bytes to another process -------------------------------------------


def pack_records(records: list[FlowRecord]) -> list[tuple]:
    """The wire bytes of `records`, in order, compactly for a pipe: runs of flows from one
    sealed block as its compressed frame (("zstd", frame, offsets, first, count): ~15x
    fewer bytes, no decompression here), the rest as ("raw", lengths, joined bytes).
    `unpack_records` gives the flows back."""
    chunks: list[tuple] = []
    raws: list[bytes] = []
    block: Block | None = None
    first = last = 0

    def close_run() -> None:
        if block is not None:
            frame, offsets = block.frame()
            chunks.append(("zstd", frame, offsets, first, last - first + 1))

    def close_raws() -> None:
        if raws:
            chunks.append(("raw", array("I", map(len, raws)).tobytes(), b"".join(raws)))
            raws.clear()

    for record in records:
        holder = record._raw
        index = record._index if holder.__class__ is not bytes else 0
        if holder.__class__ is Block and holder.sealed and record._raw is holder:
            if holder is block and index == last + 1:
                last = index
                continue
            close_run()
            close_raws()
            block, first, last = holder, index, index
            continue
        close_run()
        block = None
        try:
            raws.append(record.raw)
        except FlowBytesLost:
            pass
    close_run()
    close_raws()
    return chunks


def unpack_records(chunks: list[tuple]) -> tuple[list[memoryview], int]:
    """The flows' bytes of `pack_records` chunks, and how many were lost (damaged frames)."""
    flows: list[memoryview] = []
    lost = 0
    for chunk in chunks:
        if chunk[0] == "raw":
            _, lengths, payload = chunk
            sizes = array("I")
            sizes.frombytes(lengths)
            view = memoryview(payload)
            offset = 0
            for size in sizes:
                flows.append(view[offset : offset + size])
                offset += size
            continue
        _, frame, offsets, first, count = chunk
        try:
            flows.extend(unpack(frame, offsets)[first : first + count])
        except FlowBytesLost:
            lost += count
    return flows, lost
