"""Cost of the metrics half: simulator generation, the /metrics exporter, flow-derived RED.

    python benchmarks/signals.py [--count 50000]

Prints one line per figure; the last line is `signals: <records/s> RED ingest records/s`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))

from kcockpit.model.record import FlowRecord  # noqa: E402
from kcockpit.model.red import RedTracker  # noqa: E402
from kcockpit.sim.metrics import MetricsExporter  # noqa: E402
from kcockpit.sim.traffic import Simulator  # noqa: E402
from kcockpit.sim.world import World  # noqa: E402


def timed(label: str, count: int, fn) -> float:
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"{label}: {count / elapsed:,.0f}/s ({count:,} in {elapsed:.2f} s)")
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    args = parser.parse_args()

    simulator = Simulator(World.build(1), seed=1)
    responses: list = []
    timed("simulator generation (responses)", args.count, lambda: responses.extend(simulator.take(args.count)))
    count = len(responses)

    exporter = MetricsExporter()
    timed("exporter observe (responses)", count, lambda: [exporter.observe(r) for r in responses])
    start = time.perf_counter()
    text = exporter.render()
    print(f"exporter render: {len(text) / 1024:,.0f} KiB in {(time.perf_counter() - start) * 1000:.1f} ms")

    raws = [r.SerializeToString() for r in responses if r.WhichOneof("response_types") == "flow"]
    latest = max(FlowRecord.from_bytes(raws[-1]).time_ns, FlowRecord.from_bytes(raws[0]).time_ns) / 1e9
    tracker = RedTracker(window_s=3600, clock=lambda: latest)
    records = [FlowRecord.from_bytes(raw) for raw in raws]  # fresh records: ingest pays the lazy decode
    rate = timed("RED ingest (fresh records)", len(records), lambda: tracker.ingest(records))
    start = time.perf_counter()
    tracker.signals()
    print(f"RED signals(): {(time.perf_counter() - start) * 1000:.1f} ms")
    print(f"signals: {rate:,.0f} RED ingest records/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
