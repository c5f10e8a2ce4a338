"""What the DNS tab costs per redraw: `python benchmarks/dns_tab.py`.

1. The model (kcockpit.model.dns_health) over the aggregates of 5 simulated minutes at
   1,000 flows/s (healthy phase), with the 5xx series: what a busy demo redraws.
2. The worst case: the aggregates' DNS table full (5,000 rows: 1,000 names from 40 clients,
   each with its 3 search-path misses), model alone and the tab's full redraw (model +
   DataTable rebuild of its first 500 rows), folded and unfolded.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tui"), str(ROOT / "tests")]

from handmade_flows import COREDNS, Pod, dns_request, dns_response, flow, raw  # noqa: E402

from kcockpit.application.session import CaptureSession  # noqa: E402
from kcockpit.model.aggregates import FlowAggregates  # noqa: E402
from kcockpit.model.dns_health import dns_health  # noqa: E402
from kcockpit.model.record import FlowRecord  # noqa: E402
from kcockpit.model.store import FlowStore  # noqa: E402
from kcockpit.sim.clock import ManualClock  # noqa: E402
from kcockpit.sim.scenario import Scenario  # noqa: E402
from kcockpit.sim.traffic import Simulator  # noqa: E402
from kcockpit.sim.world import World  # noqa: E402
from kcockpit.sources.capture import write_capture  # noqa: E402
from kcockpit.ui.app import CockpitApp  # noqa: E402
from kcockpit.ui.tabs.dns import DnsTab  # noqa: E402


def timed(fn, repeat: int = 5) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1000


def demo_minutes() -> None:
    clock = ManualClock()
    sim = Simulator(World.build(1), seed=1, clock=clock, scenario=Scenario(clock, mode="healthy"), rate=1000)
    aggregates = FlowAggregates()
    start = clock.now_ns()
    for second in range(300):
        aggregates.ingest_raw(r.SerializeToString() for r in sim.advance(start + (second + 1) * 1_000_000_000))
    now = aggregates.now_s()

    def series(edge):
        return aggregates.edge_series((edge.client, edge.server, edge.port, edge.protocol), 300, now)

    def redraw():
        return dns_health(aggregates.dns_rows(300, now), aggregates.services(300, now), series=series, now_s=now)

    health = redraw()
    print(f"demo, 5 min at 1,000 flows/s ({aggregates.flows:,} flows, {len(aggregates.dns_rows(300, now))} DNS rows, "
          f"{len(health.names)} names): model {timed(redraw, 20):.1f} ms per redraw")


def full_table_flows() -> list:
    flows = []
    for i in range(1000):
        client = Pod(f"ns{i % 40}", f"app{i % 40}-x", f"app{i % 40}", f"10.0.{i % 40}.1")
        base = f"name{i}.example.com"
        queries = (f"{base}.ns{i % 40}.svc.cluster.local.", f"{base}.svc.cluster.local.", f"{base}.cluster.local.", f"{base}.")
        for k, query in enumerate(queries):
            for qtype in ("A", "AAAA"):
                sport = 10000 + (i * 8 + k * 2 + (qtype == "AAAA")) % 50000
                flows.append(flow(1 + i * 0.01, client, COREDNS, sport=sport, dport=53, proto="UDP", event=129,
                                  l7=dns_request(query, qtype)))
                flows.append(flow(1 + i * 0.01 + 0.001, COREDNS, client, sport=53, dport=sport, proto="UDP", event=129,
                                  reply=True, l7=dns_response(query, 3 if k < 3 else 0, 1, qtype)))
    return flows


async def full_table() -> None:
    flows = full_table_flows()
    aggregates = FlowAggregates()
    aggregates.ingest_raw(raw(*flows))
    now = aggregates.now_s()
    rows = aggregates.dns_rows(60, now)
    model = timed(lambda: dns_health(aggregates.dns_rows(60, now), aggregates.services(60, now)))
    print(f"full DNS table ({len(rows):,} rows): model {model:.0f} ms per redraw")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "dns.json"
        write_capture([FlowRecord.from_bytes(f.SerializeToString()) for f in flows], path)
        session = CaptureSession(str(path), FlowStore(100_000))
        app = CockpitApp(session)
        async with app.run_test(size=(120, 40)) as pilot:
            while session.feed.state().state != "done":
                await pilot.pause(0.1)
            await pilot.press("3")
            tab = app.main.query_one(DnsTab)
            while tab.health is None:
                await pilot.pause(0.1)
            for fold in (True, False):
                tab.fold = fold
                ms = timed(lambda: tab._redraw(force=True))
                print(f"  tab redraw, search path {'folded' if fold else 'unfolded'}: {ms:.0f} ms "
                      f"({tab.table.row_count} rows drawn, {tab.hidden_rows:,} more)")


if __name__ == "__main__":
    demo_minutes()
    asyncio.run(full_table())
