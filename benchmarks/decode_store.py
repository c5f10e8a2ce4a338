"""Decode-and-store alone: pre-encoded GetFlowsResponse bytes through the reader thread's loop
(`FlowStream.ingest`: parse, FlowRecord, store append), no network. The ceiling of the full path.

    python benchmarks/decode_store.py [--count 300000] [--capacity 50000]

Also times the pieces (protobuf parse alone; FlowRecord.from_bytes + append), the lazy detail
decode the list view pays per displayed row, and capture export/import (jsonpb) of 20,480
flows. The last line is `decode+store: <flows/s> flows/s`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fast_server import sample_flows  # noqa: E402

from kcockpit.model.record import FlowRecord  # noqa: E402
from kcockpit.model.store import FlowStore  # noqa: E402
from kcockpit.sources.capture import read_capture, write_capture  # noqa: E402
from kcockpit.sources.hubble import FlowStream  # noqa: E402
from kcockpit.wire.connection import HubbleConnection  # noqa: E402
from kcockpit.wire.hubble_pb import GetFlowsResponse  # noqa: E402


def best_rate(label: str, count: int, work, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    rate = count / best
    print(f"{label:<44} {rate:>10,.0f} flows/s ({best * 1e6 / count:.2f} us/flow)")
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--capacity", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)

    pool = [r.SerializeToString() for r in sample_flows(4096)]
    messages = [pool[i % len(pool)] for i in range(args.count)]
    print(f"{args.count} messages, {sum(map(len, pool)) / len(pool):.0f} bytes each on average")

    def parse_only() -> None:
        parse = GetFlowsResponse.FromString
        for m in messages:
            parse(m)

    best_rate("protobuf parse only", args.count, parse_only, args.repeats)

    def from_bytes_append() -> None:
        store = FlowStore(args.capacity)
        append, make = store.append, FlowRecord.from_bytes
        for m in messages:
            append(make(m))

    best_rate("FlowRecord.from_bytes + store.append", args.count, from_bytes_append, args.repeats)

    def reader_loop() -> None:
        stream = FlowStream(HubbleConnection("unused:1"), FlowStore(args.capacity), follow=False)
        stream.ingest(messages)

    rate = best_rate("FlowStream.ingest (the reader thread's loop)", args.count, reader_loop, args.repeats)

    rows = 2_000

    def detail_decode() -> None:
        for m in messages[:rows]:
            FlowRecord.from_bytes(m).source  # noqa: B018 - first detail access decodes them all

    best_rate("lazy detail decode (per displayed row)", rows, detail_decode, args.repeats)

    # Capture files (hubble observe -o jsonpb): export and import of the same flows.
    records = [FlowRecord.from_bytes(m) for m in pool] * 5
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "capture.json"
        best_rate("capture export (write_capture)", len(records), lambda: write_capture(records, path), 1)
        best_rate("capture import (read_capture)", len(records), lambda: read_capture(path), 1)
    print(f"decode+store: {rate:.0f} flows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
