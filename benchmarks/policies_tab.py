"""How long the Policies tab's model takes on the demo's broken phase: `python benchmarks/policies_tab.py`.

Simulates N seconds of the demo (broken phase, --rate flows/s), counts them into the
aggregates, then times what the tab does: the first evaluation of every verdict group
(engine once per group), a refresh with the answers cached (what happens every second),
the policy view, and the what-if of the DNS fix over the window's groups.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tui"))

from kcockpit.application import policy_insights as pi  # noqa: E402
from kcockpit.model.aggregates import FlowAggregates  # noqa: E402
from kcockpit.model.record import FlowRecord  # noqa: E402
from kcockpit.policy.cluster import Cluster  # noqa: E402
from kcockpit.policy.flows import explain_flow  # noqa: E402
from kcockpit.sim.clock import ManualClock  # noqa: E402
from kcockpit.sim.scenario import Scenario  # noqa: E402
from kcockpit.sim.traffic import Simulator  # noqa: E402
from kcockpit.sim.world import World  # noqa: E402


def timed(label: str, fn, repeat: int = 1):
    start = time.perf_counter()
    for _ in range(repeat):
        result = fn()
    elapsed = (time.perf_counter() - start) / repeat
    print(f"{label:<48} {elapsed * 1000:9.2f} ms")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    clock = ManualClock()
    world = World.build(1)
    simulator = Simulator(world, seed=1, clock=clock, scenario=Scenario(clock, mode="broken", start_ns=clock.now_ns()), rate=args.rate)
    aggregates = FlowAggregates()
    flows = 0
    for _ in range(args.seconds):
        clock.advance(1.0)
        raw = [r.SerializeToString() for r in simulator.advance()]
        flows += len(raw)
        aggregates.ingest_raw(raw)
    cluster = Cluster(world.k8s_objects("broken"))
    groups = aggregates.policy_groups(None)
    print(f"{flows:,} flows, {len(groups)} policy verdict groups, {len(cluster.pods)} pods, "
          f"{len(cluster.networkpolicies) + len(cluster.cilium_policies)} policies")
    insights = pi.PolicyInsights()
    rows = timed("verdict rows, first (engine once per group)", lambda: insights.verdict_rows(groups, cluster, 1, args.seconds))
    timed("verdict rows, answers cached (every second)", lambda: insights.verdict_rows(groups, cluster, 1, args.seconds), 20)
    timed("policy view, selection cached", lambda: insights.policy_view(rows, cluster, 1), 20)
    timed("drift rows", lambda: pi.drift_rows(rows), 20)
    drop = rows[0]
    fix = timed("fixes of the top drop (explain_flow)", lambda: explain_flow(FlowRecord.from_bytes(drop.group.sample), cluster).fixes[0])
    timed("what-if of fix 1 over the window's groups", lambda: pi.what_if(rows, cluster, pi.with_objects(cluster, [fix.policy]), "fix"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
