"""FlowStore: bounded ring buffer, counters, since(mark) draining, cheap appends."""

from __future__ import annotations

import time

import pytest
from observer_fixture import make_flow_response

from kcockpit.model.record import FlowRecord
from kcockpit.model.store import FlowStore


def records(start: int, count: int) -> list[FlowRecord]:
    return [FlowRecord.from_flow(make_flow_response(i).flow) for i in range(start, start + count)]


def ids(items: list[FlowRecord]) -> list[str]:
    return [record.uuid for record in items]


def test_eviction_keeps_the_newest_and_counts() -> None:
    store = FlowStore(capacity=3)
    for record in records(0, 5):
        store.append(record)
    assert ids(store.snapshot()) == ["f-2", "f-3", "f-4"]
    counters = store.counters()
    assert (counters.received, counters.retained, counters.evicted, counters.lost_at_server) == (5, 3, 2, 0)
    assert store.evicted == 2 and len(store) == 3


def test_extend_and_lost_counter() -> None:
    store = FlowStore(capacity=4)
    store.extend(records(0, 6))
    store.add_lost(10)
    store.add_lost(5)
    counters = store.counters()
    assert (counters.received, counters.retained, counters.evicted, counters.lost_at_server) == (6, 4, 2, 15)
    assert ids(store.latest(2)) == ["f-4", "f-5"]
    assert ids(list(store)) == ["f-2", "f-3", "f-4", "f-5"]


def test_since_returns_only_new_records_and_a_new_mark() -> None:
    store = FlowStore(capacity=10)
    new, mark = store.since(0)
    assert (new, mark) == ([], 0)
    store.extend(records(0, 4))
    new, mark = store.since(mark)
    assert ids(new) == ["f-0", "f-1", "f-2", "f-3"] and mark == 4
    new, mark = store.since(mark)
    assert new == [] and mark == 4
    store.append(records(4, 1)[0])
    new, mark = store.since(mark)
    assert ids(new) == ["f-4"] and mark == 5


def test_since_after_the_consumer_fell_behind_returns_what_is_retained() -> None:
    store = FlowStore(capacity=3)
    mark = store.since(0)[1]
    store.extend(records(0, 10))  # 7 evicted before the consumer looked
    new, mark = store.since(mark)
    assert ids(new) == ["f-7", "f-8", "f-9"] and mark == 10


def test_clear_forgets_records_but_not_counts() -> None:
    store = FlowStore(capacity=5)
    store.extend(records(0, 4))
    _, mark = store.since(0)
    store.clear()
    assert len(store) == 0
    counters = store.counters()
    assert (counters.received, counters.retained, counters.evicted) == (4, 0, 0)
    store.extend(records(4, 2))
    new, mark = store.since(mark)
    assert ids(new) == ["f-4", "f-5"] and mark == 6


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1, got 0"):
        FlowStore(capacity=0)


def _append_seconds(store: FlowStore, batch: list[FlowRecord], rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for record in batch:
            store.append(record)
        best = min(best, time.perf_counter() - started)
    return best


def test_append_cost_does_not_grow_with_a_full_large_buffer() -> None:
    batch = records(0, 2000)
    small = FlowStore(capacity=10)
    large = FlowStore(capacity=200_000)
    large.extend(batch * 100)  # full: every further append evicts
    assert len(large) == 200_000
    small_time = _append_seconds(small, batch)
    large_time = _append_seconds(large, batch)
    # O(capacity) appends would be ~10^4 times slower; allow wide noise from a shared machine.
    assert large_time < small_time * 5 + 0.002


def test_since_cost_depends_on_new_records_not_capacity() -> None:
    store = FlowStore(capacity=200_000)
    batch = records(0, 1000)
    store.extend(batch * 200)
    mark = store.received
    store.extend(batch[:10])
    started = time.perf_counter()
    for _ in range(100):
        new, _ = store.since(mark)
    elapsed = time.perf_counter() - started
    assert len(new) == 10
    assert elapsed < 0.05  # copying 200k references 100 times would take far longer


def test_draining_while_a_thread_appends_sees_every_record_once() -> None:
    import threading

    store = FlowStore(capacity=1_000_000)
    template = records(0, 1)[0]
    total = 200_000
    batch = [FlowRecord(template.raw, i, 1, "n") for i in range(total)]

    def produce() -> None:
        for record in batch:
            store.append(record)

    producer = threading.Thread(target=produce)
    producer.start()
    seen: list[int] = []
    mark = 0
    while producer.is_alive() or mark < total:
        new, mark = store.since(mark)
        seen.extend(record.time_ns for record in new)
    producer.join()
    assert seen == list(range(total))
