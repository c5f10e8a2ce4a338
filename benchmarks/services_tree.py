"""The Services tab at scale: 500 workloads, 5,000 edges.

Synthetic flows (hand-made protobufs: 10 namespaces x 50 workloads, each calling 10 others,
HTTP on a fifth of the edges, a few world entry points and policy drops) are counted into
FlowAggregates; then measured:

- model: `services()` (the window's 5,000 edges), `build_tree`, `visible_rows`, each p50/max;
- the headless app (Textual run_test, 120x40, tab `2`): a full live refresh (new aggregates
  generation -> tree rebuilt -> rows replaced -> repaint), the rows actually drawn per
  refresh (only the visible ones), and key latency (`j`, `r`, `t`, `e`: from the key press to
  the repaint that follows), p50/p99/max.

    python benchmarks/services_tree.py [--workloads 500] [--calls 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tui"))

from kcockpit.application.aggregation import AggregateFeed, FeedState  # noqa: E402
from kcockpit.application.session import Session  # noqa: E402
from kcockpit.model.aggregates import FlowAggregates  # noqa: E402
from kcockpit.model.service_tree import build_tree, visible_rows  # noqa: E402
from kcockpit.model.store import FlowStore  # noqa: E402
from kcockpit.wire.hubble_pb import GetFlowsResponse, flow_pb  # noqa: E402

T0 = 1_767_225_600


def endpoint(namespace: str, workload: str, identity: int) -> flow_pb.Endpoint:
    return flow_pb.Endpoint(namespace=namespace, pod_name=f"{workload}-abc", identity=identity,
                            labels=[f"k8s:app={workload}"], workloads=[flow_pb.Workload(name=workload, kind="Deployment")])


def world() -> flow_pb.Endpoint:
    return flow_pb.Endpoint(identity=2, labels=["reserved:world"])


def make_flow(at_s: float, src, dst, dport: int, *, dropped: bool = False, http_code: int = 0) -> bytes:
    f = flow_pb.Flow(
        verdict=flow_pb.DROPPED if dropped else flow_pb.FORWARDED, node_name="node-1",
        Type=flow_pb.L7 if http_code else flow_pb.L3_L4, source=src, destination=dst,
        IP=flow_pb.IP(source="10.0.0.1", destination="10.0.0.2", ipVersion=flow_pb.IPv4),
        traffic_direction=flow_pb.INGRESS if http_code else flow_pb.EGRESS,
        event_type=flow_pb.CiliumEventType(type=129 if http_code else (1 if dropped else 4)),
    )
    if dropped:
        f.drop_reason_desc = 133
    f.is_reply.value = bool(http_code)
    f.l4.TCP.CopyFrom(flow_pb.TCP(source_port=40000, destination_port=dport))
    if http_code:
        # a response, from the server back to the client: counts on the request's edge
        f.source.CopyFrom(dst)
        f.destination.CopyFrom(src)
        f.l4.TCP.CopyFrom(flow_pb.TCP(source_port=dport, destination_port=40000))
        f.l7.CopyFrom(flow_pb.Layer7(type=flow_pb.RESPONSE, latency_ns=random.randint(1, 400) * 1_000_000,
                                     http=flow_pb.HTTP(code=http_code, method="GET", url="/")))
    f.time.FromNanoseconds(int((T0 + at_s) * 1e9))
    return GetFlowsResponse(flow=f, node_name="node-1", time=f.time).SerializeToString()


def synthetic(workloads: int, calls: int, seed: int = 1) -> FlowAggregates:
    random.seed(seed)
    names = [(f"ns{i % 10}", f"svc{i:03d}") for i in range(workloads)]
    endpoints = [endpoint(ns, name, 20_000 + i) for i, (ns, name) in enumerate(names)]
    raws: list[bytes] = []
    edges = 0
    for i, client in enumerate(endpoints):
        for j in random.sample(range(workloads), calls):
            if j == i:
                j = (j + 1) % workloads
            server, port = endpoints[j], 8000 + j % 7
            edges += 1
            http = random.random() < 0.2
            for k in range(3):
                at = 40 + random.random() * 20
                if http:
                    raws.append(make_flow(at, client, server, port, http_code=500 if random.random() < 0.05 else 200))
                else:
                    raws.append(make_flow(at, client, server, port, dropped=random.random() < 0.02 and k == 0))
    for i in range(0, workloads, 50):
        raws.append(make_flow(50, world(), endpoints[i], 443))
    aggregates = FlowAggregates()
    for start in range(0, len(raws), 4096):
        aggregates.ingest_raw(raws[start:start + 4096])
    print(f"synthetic: {workloads} workloads, {edges:,} edges requested, {len(raws):,} flows, "
          f"{len(aggregates.services(None)):,} edges counted")
    return aggregates


def timed(function, repeat: int = 7) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), result


class FixedFeed(AggregateFeed):
    def start(self) -> None:
        self._state = FeedState("done", "benchmark")

    def now_s(self) -> int:
        return self.aggregates.now_s()


class BenchSession(Session):
    label = "benchmark"
    kind = "file"

    def __init__(self, aggregates: FlowAggregates) -> None:
        super().__init__(FlowStore(1000))
        self.feed = FixedFeed(aggregates)


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return f"p50 {statistics.median(values):.1f} ms, p99 {p99:.1f} ms, max {values[-1]:.1f} ms (n={len(values)})"


async def headless(aggregates: FlowAggregates) -> None:
    from kcockpit.ui.app import CockpitApp
    from kcockpit.ui.tabs.services import ServicesTab

    app = CockpitApp(BenchSession(aggregates))
    async with app.run_test(size=(120, 40)) as pilot:
        tab = app.tab(ServicesTab)
        await pilot.press("2")
        while tab.service_tree is None:
            await pilot.pause(0.05)
        await pilot.pause()
        print(f"tree rows: {len(tab.tree_view.rows):,} (every node unfolded)")
        refresh, drawn = [], []
        for _ in range(15):
            before = tab.tree_view.renders
            aggregates.generation += 1  # what a merge does: the next refresh rebuilds
            started = time.perf_counter()
            tab.refresh_tab()
            await pilot.pause()
            refresh.append((time.perf_counter() - started) * 1000)
            drawn.append(tab.tree_view.renders - before)
        print(f"live refresh (rebuild + replace rows + repaint): {percentiles(refresh)}; "
              f"rows drawn per refresh: {statistics.median(drawn):.0f}")
        for key, count in (("j", 60), ("pagedown", 20), ("e", 6), ("t", 8), ("r", 6)):
            latencies = []
            for _ in range(count):
                started = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                latencies.append((time.perf_counter() - started) * 1000)
            print(f"key {key!r}: {percentiles(latencies)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=500)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    aggregates = synthetic(args.workloads, args.calls)
    now = aggregates.now_s()
    p50, worst, edges = timed(lambda: aggregates.services(60, now))
    print(f"services(60): {len(edges):,} edges, p50 {p50:.1f} ms, max {worst:.1f} ms")
    span = aggregates.window(60, now).span_s
    p50, worst, tree = timed(lambda: build_tree(edges, span))
    nodes = sum(1 for _ in tree.nodes())
    print(f"build_tree: {len(tree.roots)} roots, {nodes:,} nodes, p50 {p50:.1f} ms, max {worst:.1f} ms")
    p50, worst, rows = timed(lambda: visible_rows(tree, set()))
    print(f"visible_rows (all unfolded): {len(rows):,} rows, p50 {p50:.1f} ms, max {worst:.1f} ms")
    p50, worst, _ = timed(lambda: build_tree(edges, span, invert="ns0/svc000"))
    print(f"build_tree inverted (who calls ns0/svc000): p50 {p50:.1f} ms, max {worst:.1f} ms")
    asyncio.run(headless(aggregates))


if __name__ == "__main__":
    main()
