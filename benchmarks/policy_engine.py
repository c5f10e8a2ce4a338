"""Policy engine and Kubernetes source figures on the simulated cluster.

    python benchmarks/policy_engine.py

Measures: connection evaluations per second (every pod pair on every listening port, the
broken phase's policies), flow records evaluated per second (conversion + engine +
cross-check), a DNS fix proposal with its blast radius, advice from 5,000 flows, and the
Kubernetes source's time to a complete first snapshot from the loopback API server.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))

from kcockpit.model.record import FlowRecord  # noqa: E402
from kcockpit.policy import advise, fix, flows  # noqa: E402
from kcockpit.policy.cluster import Cluster  # noqa: E402
from kcockpit.policy.engine import Engine  # noqa: E402
from kcockpit.policy.results import Connection  # noqa: E402
from kcockpit.sim.clock import ManualClock  # noqa: E402
from kcockpit.sim.kube_api import start_kube_api, write_kubeconfig  # noqa: E402
from kcockpit.sim.scenario import Scenario  # noqa: E402
from kcockpit.sim.traffic import Simulator  # noqa: E402
from kcockpit.sim.world import World  # noqa: E402


def timed(label: str, count: int, action) -> None:
    start = time.perf_counter()
    action()
    elapsed = time.perf_counter() - start
    rate = f", {count / elapsed:,.0f}/s" if count > 1 else ""
    print(f"{label}: {count:,} in {elapsed * 1000:,.1f} ms{rate}")


def main() -> None:
    world = World.build(1)
    cluster = Cluster(world.k8s_objects("broken"))
    engine = Engine(cluster)
    pods = [p for p in cluster.pods if not p.host_network]
    connections = [
        Connection(a, b, port.port, port.protocol) for a in pods for b in pods for port in (b.ports or ())
    ]
    timed("evaluate pod-to-pod connections", len(connections), lambda: [engine.evaluate(c) for c in connections])

    clock = ManualClock()
    simulator = Simulator(world, seed=1, clock=clock, scenario=Scenario(clock, mode="broken"))
    records = [FlowRecord.from_flow(r.flow) for r in simulator.take(20_000)]
    records = [r for r in records if r.protocol in ("TCP", "UDP")]

    def evaluate_flows() -> None:
        for record in records:
            flows.cross_check(engine.evaluate(flows.connection(record, cluster)), record)

    timed("flow records converted, evaluated and cross-checked", len(records), evaluate_flows)

    frontend = cluster.find_pods("otel-demo", "frontend")[0]
    dns = next(p for p in cluster.pods if p.labels.get("k8s-app") == "kube-dns")
    evaluation = engine.evaluate(Connection(frontend, dns, 53, "UDP"))
    timed("DNS fix proposals with blast radius (3 proposals)", 1, lambda: fix.propose(cluster, evaluation))

    healthy = Cluster(world.k8s_objects("healthy"))
    sample = records[:5000]
    timed("advice for otel-demo/frontend from 5,000 flows", 1, lambda: advise.advise(sample, "otel-demo", "frontend", healthy))

    from kcockpit.sources.kubernetes import KubernetesSource

    server = start_kube_api(world, phase="broken")
    try:
        kubeconfig = write_kubeconfig(Path(tempfile.mkdtemp()) / "config", server.url)
        source = KubernetesSource.from_kubeconfig(str(kubeconfig))
        start = time.perf_counter()
        source.start()
        source.wait(lambda s: s.ready, 30)
        ready = time.perf_counter() - start
        start = time.perf_counter()
        server.set_phase("fixed")
        source.wait(lambda s: any(len(p["spec"].get("egress") or ()) == 2 for p in s.objects["networkpolicies"]), 10)
        update = time.perf_counter() - start
        source.stop()
        print(f"Kubernetes source: first complete snapshot {ready * 1000:.0f} ms, policy change via watch {update * 1000:.0f} ms")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
