"""FlowStore's compressed blocks: every flow's bytes come back exactly, blocks go when no
record needs them, damage is reported and never crashes."""

from __future__ import annotations

import gc
import sys
import threading

import pytest
from observer_fixture import make_flow_response

import kcockpit.model.store as store_module
import kcockpit.model.blocks as blocks_module
from kcockpit.model.blocks import BLOCK_FLOWS, Block, FlowBytesLost, forget_cached, seal_pending
from kcockpit.model.record import UNREADABLE, FlowRecord
from kcockpit.model.store import FlowStore, pack_records, rehouse, unpack_records
from kcockpit.sources.capture import load_capture, read_capture, write_capture
from kcockpit.wire.hubble_pb import flow_pb


def wire(count: int, start: int = 0) -> list[bytes]:
    """Distinct serialized flows, of different lengths."""
    out = []
    for i in range(start, start + count):
        response = make_flow_response(i, node=f"node-{i % 3}", verdict=flow_pb.DROPPED if i % 5 == 0 else flow_pb.FORWARDED)
        response.flow.Summary = "x" * (i % 37)
        out.append(response.SerializeToString())
    return out


def records_of(raws: list[bytes]) -> list[FlowRecord]:
    return [FlowRecord.from_bytes(raw) for raw in raws]


def live_blocks() -> list[Block]:
    seal_pending()  # the sealing thread's queue holds blocks too
    gc.collect()
    return [o for o in gc.get_objects() if type(o) is Block]


def only_listed(items: list) -> bool:
    """Whether nothing but `items` refers to each of its items."""
    alone = [object()]
    return [sys.getrefcount(item) for item in items] == [sys.getrefcount(item) for item in alone] * len(items)


def corrupt(block: Block, position: int | None = None) -> None:
    """Flip one bit of a sealed block's compressed frame, in its middle by default."""
    seal_pending()
    assert block.sealed
    data = bytearray(block._data)
    data[len(data) // 2 if position is None else position] ^= 0x10
    block._data = bytes(data)
    forget_cached()


@pytest.fixture(autouse=True)
def no_cached_blocks():
    forget_cached()
    yield
    forget_cached()


def test_bytes_come_back_byte_for_byte_from_open_and_sealed_blocks() -> None:
    raws = wire(BLOCK_FLOWS * 2 + 17)
    store = FlowStore(10_000)
    store.extend(records_of(raws[:100]))
    for record in records_of(raws[100:]):
        store.append(record)
    kept = store.snapshot()
    holders = [record._raw for record in kept]
    assert all(type(holder) is Block for holder in holders)  # no record keeps its own bytes
    assert [record.raw for record in kept] == raws  # whether the sealing thread is done or not
    seal_pending()
    assert [holder.sealed for holder in holders] == [True] * (BLOCK_FLOWS * 2) + [False] * 17
    assert [record.raw for record in kept] == raws
    forget_cached()
    assert [record.response().SerializeToString() for record in reversed(kept)] == raws[::-1]
    assert [(r.uuid, r.node, r.verdict) for r in kept] == [(r.uuid, r.node, r.verdict) for r in records_of(raws)]


def test_a_producer_seals_its_own_blocks_when_the_sealing_thread_is_behind(monkeypatch) -> None:
    monkeypatch.setattr(blocks_module, "SEAL_BACKLOG", 0)
    raws = wire(BLOCK_FLOWS + 1)
    store = FlowStore(1000)
    for record in records_of(raws):
        store.append(record)
    kept = store.snapshot()
    assert kept[0]._raw.sealed and not kept[-1]._raw.sealed  # at once, on this thread
    assert [record.raw for record in kept] == raws


@pytest.mark.parametrize("block_flows", [1, 7, 128, 512])
def test_any_block_size_keeps_every_byte(block_flows: int) -> None:
    raws = wire(700)
    store = FlowStore(500, block_flows=block_flows)
    store.extend(records_of(raws[:300]))
    for record in records_of(raws[300:]):
        store.append(record)
    assert [record.raw for record in store.snapshot()] == raws[200:]


def test_eviction_across_block_boundaries_frees_the_blocks_nobody_needs(monkeypatch) -> None:
    monkeypatch.setattr(store_module, "RETIRE_BATCH", 64)
    raws = wire(3000)
    before = len(live_blocks())
    store = FlowStore(300, block_flows=100)
    for raw in raws:  # no list of the records: the store alone holds them
        store.append(FlowRecord.from_bytes(raw))
    kept = store.snapshot()
    assert [record.raw for record in kept] == raws[-300:]
    assert [r.uuid for r in store.latest(2)] == ["f-2998", "f-2999"]
    assert [r.uuid for r in store.since(store.received - 3)[0]] == ["f-2997", "f-2998", "f-2999"]
    # Blocks of the 300 kept flows (4 at most, one open), of the two batches of evicted
    # records waiting to be looked at (2 x 64 flows: 3 at most): none of the other 24.
    forget_cached()
    assert len(live_blocks()) - before <= 7
    assert store.counters().evicted == 2700


def test_evicted_records_still_held_elsewhere_move_to_blocks_of_their_own(monkeypatch) -> None:
    monkeypatch.setattr(store_module, "RETIRE_BATCH", 50)
    raws = wire(2000)
    store = FlowStore(200, block_flows=64)
    held: list[FlowRecord] = []  # what a filtered flow list keeps longer than the store
    old_blocks: list[Block] = []
    for index, record in enumerate(records_of(raws)):
        store.append(record)
        if index % 100 == 10 and index < 1000:
            held.append(record)
            old_blocks.append(record._raw)
    assert all(record._raw is not old for record, old in zip(held, old_blocks))
    assert [record.raw for record in held] == raws[10:1000:100]
    # Nothing but this list refers to the blocks they were in: those blocks are gone with it
    # (once the sealing thread and the read cache, shared with earlier tests, let go).
    seal_pending()
    forget_cached()
    assert only_listed(old_blocks)


def test_a_record_appended_again_keeps_its_bytes_where_they_are() -> None:
    raws = wire(300)
    batch = records_of(raws)
    store = FlowStore(1000)
    store.extend(batch + batch)
    assert [record.raw for record in store.snapshot()] == raws + raws
    other = FlowStore(10)
    other.extend(batch[:5])  # already stored: nothing moves
    assert [record.raw for record in other.snapshot()] == raws[:5]


def test_clear_keeps_the_records_readable_for_those_who_hold_them() -> None:
    raws = wire(600)
    store = FlowStore(1000)
    store.extend(records_of(raws))
    shown = store.snapshot()
    store.clear()
    assert len(store) == 0 and [record.raw for record in shown] == raws


def test_reads_while_a_thread_appends_always_give_the_right_bytes(monkeypatch) -> None:
    monkeypatch.setattr(store_module, "RETIRE_BATCH", 512)
    raws = wire(600)
    total = 30_000
    store = FlowStore(5_000, block_flows=64)
    batch = [FlowRecord(raws[i % 600], i, 1, "n") for i in range(total)]
    held: list[FlowRecord] = []

    def produce() -> None:
        for record in batch:
            store.append(record)

    producer = threading.Thread(target=produce)
    producer.start()
    mark, checked, wrong = 0, 0, []
    while producer.is_alive() or mark < total:
        new, mark = store.since(mark)
        for record in new[::7]:
            if record.raw != raws[record.time_ns % 600]:
                wrong.append(record.time_ns)
            checked += 1
        held.extend(new[::50])  # some outlive the store: they get moved while read
        for record in held[-40:]:
            if record.raw != raws[record.time_ns % 600]:
                wrong.append(record.time_ns)
    producer.join()
    assert wrong == [] and checked > 1000
    assert [record.raw for record in held] == [raws[record.time_ns % 600] for record in held]


# --- damage --------------------------------------------------------------------------------


def damaged_store(count: int = 600) -> tuple[FlowStore, list[bytes]]:
    raws = wire(count)
    store = FlowStore(10_000)
    store.extend(records_of(raws))
    corrupt(store.snapshot()[0]._raw)
    return store, raws


def test_a_damaged_block_is_reported_for_its_flows_only() -> None:
    store, raws = damaged_store()
    kept = store.snapshot()
    with pytest.raises(FlowBytesLost, match=r"^flow bytes lost: a compressed block of 256 flows cannot be read \(.+\)$"):
        kept[3].raw
    with pytest.raises(FlowBytesLost):
        kept[255].response()
    assert [record.raw for record in kept[256:]] == raws[256:]  # the other blocks are intact
    lost = kept[7]
    assert (lost.time_ns, lost.verdict, lost.node) == (raws_record(raws[7]).time_ns, flow_pb.FORWARDED, "node-1")
    assert lost.unreadable and not kept[300].unreadable
    assert (lost.uuid, lost.summary, lost.source.short_name(), lost.l7_info()) == ("", UNREADABLE, "?", "")
    assert lost.decoded() is lost  # no copy to make: nothing more to decode


def raws_record(raw: bytes) -> FlowRecord:
    return FlowRecord.from_bytes(raw)


@pytest.mark.parametrize("where", ["header", "middle", "checksum", "truncated"])
def test_any_damage_to_a_frame_is_a_flow_bytes_lost(where: str) -> None:
    store = FlowStore(1000)
    store.extend(records_of(wire(300)))
    block = store.snapshot()[0]._raw
    if where == "truncated":
        seal_pending()
        block._data = block._data[:-100]
        forget_cached()
    else:
        corrupt(block, {"header": 5, "middle": None, "checksum": -1}[where])
    with pytest.raises(FlowBytesLost):
        store.snapshot()[10].raw
    with pytest.raises(FlowBytesLost):  # and again: the damage is remembered
        store.snapshot()[11].raw


def test_export_skips_flows_whose_bytes_are_lost(tmp_path) -> None:
    store, raws = damaged_store()
    path = tmp_path / "out.json"
    assert write_capture(store.snapshot(), path) == 600 - 256
    assert [record.raw for record in read_capture(path).records] == raws[256:]


def test_evicting_a_damaged_block_and_rehousing_its_survivors_does_not_fail() -> None:
    store, raws = damaged_store()
    survivors = store.snapshot()[250:260]
    rehouse(survivors)
    assert [record.unreadable for record in survivors] == [True] * 6 + [False] * 4
    assert [record.raw for record in survivors[6:]] == raws[256:260]


# --- shipping and captures ----------------------------------------------------------------------


def test_packed_records_unpack_to_the_same_bytes_in_order() -> None:
    raws = wire(800)
    store = FlowStore(10_000, block_flows=100)
    store.extend(records_of(raws[:790]))
    loose = records_of(raws[790:])  # never stored: their own bytes
    records = store.snapshot()[5:790] + loose
    records = records[:300] + records[301:]  # a gap inside a block
    seal_pending()
    chunks = pack_records(records)
    kinds = [chunk[0] for chunk in chunks]
    assert kinds == ["zstd"] * 8 + ["raw"]  # 7 sealed blocks, one split by the gap; then loose bytes
    flows, lost = unpack_records(chunks)
    assert [bytes(flow) for flow in flows] == [record.raw for record in records] and lost == 0


def test_unpacking_a_damaged_block_counts_its_flows_as_lost() -> None:
    store, raws = damaged_store()
    flows, lost = unpack_records(pack_records(store.snapshot()[200:]))
    assert lost == 56 and [bytes(flow) for flow in flows] == raws[256:]


def test_a_capture_exported_from_a_compressed_store_equals_its_input(tmp_path) -> None:
    source = tmp_path / "in.json"
    write_capture(records_of(wire(700)), source)
    store = FlowStore(10_000)
    result = load_capture(source, store)
    assert all(type(record._raw) is Block for record in store.snapshot())
    forget_cached()
    again = tmp_path / "again.json"
    assert write_capture(store.snapshot(), again) == 700
    assert again.read_bytes() == source.read_bytes()
    assert [record.raw for record in store.snapshot()] == [record.raw for record in result.records]
