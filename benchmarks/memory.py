"""Memory per retained flow: RSS of a full FlowStore in steady state, at two capacities.

    python benchmarks/memory.py [--source fast|sim|both] [--case plain|matcher|ui|all]
                                [--capacities 100000 200000] [--factor 2]
    python benchmarks/memory.py --blocks   # compression: bytes and time per block size

Each measurement runs in a fresh interpreter (`--child`): it fills a FlowStore through the
reader thread's real loop (`FlowStream.ingest` over serialized GetFlowsResponses, each a new
bytes object as off the wire, with its own uuid and time), pushes `factor` times the
capacity so the buffer is full and evicting, runs gc.collect() and reads its RSS from
/proc/self/statm. Per retained flow = (RSS at the larger capacity - RSS at the smaller) /
their difference, so the interpreter, the imports and the flow generator cancel out.

Sources: `fast` is benchmarks/fast_server.py's `sample_flows` (L3/L4 TCP between the demo
shop's services, 1,103 bytes each on the wire); `sim` is the simulator's mixed traffic (HTTP,
DNS, policy verdicts, 1,449 bytes each).

Cases, applied to every batch of 4096 flows ingested:
  plain    the store alone
  matcher  a client-side filter (`ns=otel-demo or ns=kube-system`) checks every new record
           with `matches_record`, as the Flows tab does
  ui       the Flows tab's drain: `since(mark)` into a RowBuffer of the same capacity, and
           the newest 50 rows rendered (every column's cell, so their details are decoded)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tui"))
sys.path.insert(0, str(HERE))

BATCH = 4096
FILTER = "ns=otel-demo or ns=kube-system"
SHOWN_ROWS = 50


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fast_messages() -> Iterator[bytes]:
    """sample_flows' 4096 distinct flows, over and over, each with a new uuid and time.
    Each is parsed anew from its template: a protobuf message changed in place keeps every
    value it was ever given in its arena, which grew this process by ~20 MB per 400k flows."""
    from fast_server import sample_flows

    from kcockpit.wire.hubble_pb import GetFlowsResponse

    pool = [response.SerializeToString() for response in sample_flows(4096)]
    start = GetFlowsResponse.FromString(pool[0]).flow.time.ToNanoseconds()
    parse = GetFlowsResponse.FromString
    index = 0
    while True:
        for template in pool:
            response = parse(template)
            flow = response.flow
            flow.uuid = f"{index:016x}-{flow.uuid[-8:]}"
            flow.time.FromNanoseconds(start + index * 1_000_000)
            response.time.CopyFrom(flow.time)
            yield response.SerializeToString()
            index += 1


def sim_messages() -> Iterator[bytes]:
    """The seeded simulator's mixed traffic, generated as it is consumed."""
    from kcockpit.sim.clock import ManualClock
    from kcockpit.sim.scenario import Scenario
    from kcockpit.sim.traffic import Simulator
    from kcockpit.sim.world import World

    clock = ManualClock()
    sim = Simulator(World.build(1), seed=1, clock=clock, scenario=Scenario(clock), rate=30000)
    while True:
        for response in sim.take(BATCH):
            if response.WhichOneof("response_types") == "flow":
                yield response.SerializeToString()


def child(source: str, case: str, capacity: int, factor: float) -> dict:
    from kcockpit.model.filterlang import parse_filter
    from kcockpit.model.store import FlowStore
    from kcockpit.sources.hubble import FlowStream
    from kcockpit.wire.connection import HubbleConnection

    messages = fast_messages() if source == "fast" else sim_messages()
    store = FlowStore(capacity)
    stream = FlowStream(HubbleConnection("unused:1"), store, follow=False)
    matcher = parse_filter(FILTER).matcher() if case == "matcher" else None
    rows = None
    if case == "ui":
        from kcockpit.ui.columns import COLUMNS, cell
        from kcockpit.ui.rows import RowBuffer

        rows = RowBuffer(capacity)
    total = int(capacity * factor)
    mark = 0
    matched = 0
    wire_bytes = 0
    started = time.perf_counter()
    while store.received < total:
        batch = [next(messages) for _ in range(min(BATCH, total - store.received))]
        wire_bytes += sum(map(len, batch))
        stream.ingest(batch)
        del batch
        if case == "plain":
            continue
        new, mark = store.since(mark)
        if matcher is not None:
            matched += sum(1 for record in new if matcher.matches_record(record))
        if rows is not None:
            rows.extend(new)
            for index in range(max(0, len(rows) - SHOWN_ROWS), len(rows)):
                record = rows[index]
                for column in COLUMNS:
                    cell(record, column.key, 20, None)
        del new
    elapsed = time.perf_counter() - started
    gc.collect()
    return {
        "source": source, "case": case, "capacity": capacity, "retained": len(store),
        "received": store.received, "rss": rss_bytes(), "seconds": round(elapsed, 2),
        "wire_bytes_per_flow": round(wire_bytes / store.received), "matched": matched,
    }


def block_sizes(sources: tuple[str, ...], flows: int = 512 * 40, repeats: int = 7) -> None:
    """Bytes per flow (frame + offsets), add + seal time per flow (min of `repeats`) and the
    time to decompress one block, for blocks of 128, 256 and 512 flows."""
    from kcockpit.model.blocks import Block

    for source in sources:
        messages = fast_messages() if source == "fast" else sim_messages()
        flat = [next(messages) for _ in range(flows)]
        for size in (128, 256, 512):
            chunks = [flat[i : i + size] for i in range(0, len(flat), size)]
            best, sealed = float("inf"), []
            for _ in range(repeats):
                started = time.perf_counter()
                sealed = []
                for chunk in chunks:
                    block = Block()
                    for raw in chunk:
                        block.add(raw)
                    block.seal()
                    sealed.append(block)
                best = min(best, time.perf_counter() - started)
            unpack = float("inf")
            for _ in range(repeats):
                started = time.perf_counter()
                for block in sealed:
                    block.plain()
                unpack = min(unpack, (time.perf_counter() - started) / len(sealed))
            stored = sum(block.compressed_size + 4 * (len(block) + 1) for block in sealed) / len(flat)
            print(f"{source:<6} block {size:>3}: {stored:4.0f} B/flow (frame + offsets), add + seal "
                  f"{best / len(flat) * 1e6:.2f} us/flow, decompress {unpack * 1e3:.3f} ms/block", flush=True)


def measure(source: str, case: str, capacity: int, factor: float) -> dict:
    command = [sys.executable, __file__, "--child", "--source", source, "--case", case,
               "--capacities", str(capacity), "--factor", str(factor)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=("fast", "sim", "both"), default="both")
    parser.add_argument("--case", choices=("plain", "matcher", "ui", "all"), default="all")
    parser.add_argument("--capacities", type=int, nargs="+", default=[100_000, 200_000])
    parser.add_argument("--factor", type=float, default=2.0, help="flows pushed, in capacities")
    parser.add_argument("--blocks", action="store_true", help="time and size the compression per block size")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.source, args.case, args.capacities[0], args.factor)))
        return 0
    sources = ("fast", "sim") if args.source == "both" else (args.source,)
    if args.blocks:
        block_sizes(sources)
        return 0
    cases = ("plain", "matcher", "ui") if args.case == "all" else (args.case,)
    low, high = min(args.capacities), max(args.capacities)
    print(f"{'source':<6} {'case':<8} {'wire B/flow':>11} {'RSS ' + format(low, ','):>14} "
          f"{'RSS ' + format(high, ','):>14} {'B/retained flow':>16}")
    for source in sources:
        for case in cases:
            small = measure(source, case, low, args.factor)
            large = measure(source, case, high, args.factor)
            per_flow = (large["rss"] - small["rss"]) / (large["retained"] - small["retained"])
            print(f"{source:<6} {case:<8} {large['wire_bytes_per_flow']:>11} {small['rss'] / 1e6:>11.1f} MB "
                  f"{large['rss'] / 1e6:>11.1f} MB {per_flow:>16.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
