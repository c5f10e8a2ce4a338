"""The aggregator's per-flow cost: `Accumulator.add_raw` + `take()` over serialized
GetFlowsResponses, as the aggregator child process runs them (batches, a delta per batch).

    python benchmarks/aggregates.py [--count 100000] [--batch 4096] [--repeat 3] [--rounds 3] [--reference REV]

Two flow sets: the fast source's L3/L4 TCP flows (`fast_server.sample_flows`) and the
simulator's mixed traffic (HTTP, DNS, policy verdicts and drops: the scenario steps through
its four phases, two simulated seconds each). Prints the best µs per flow of each, in CPU
time (other work on this shared machine still slows it, less than wall time would show).

With --reference (default: the commit before issue 13's rework), the same flows are also
counted by that revision's kcockpit (its `tui/` extracted with `git archive`) and the two
must agree exactly: every delta's cells, samples and counts, and the merged FlowAggregates'
services, DNS rows and policy groups as JSON. `--reference ""` skips it. Each tree counts in
its own child processes, `--rounds` times each, taking turns.
The last line is `aggregates: fast <µs> µs/flow, mixed <µs> µs/flow`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "61f3761d9ea5e138efb3be6e6b62075c924f3358"  # main before issue 13: the per-flow FlowFacts accumulator
NS = 1_000_000_000


def fast_flows(count: int) -> list[bytes]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fast_server import sample_flows

    return [response.SerializeToString() for response in sample_flows(count)]


def mixed_flows(count: int) -> list[bytes]:
    from kcockpit.sim.clock import ManualClock
    from kcockpit.sim.scenario import Scenario
    from kcockpit.sim.traffic import Simulator
    from kcockpit.sim.world import PHASES, World

    clock = ManualClock()
    scenario = Scenario(clock, durations_s={phase: 2.0 for phase in PHASES})
    simulator = Simulator(World.build(1), seed=1, clock=clock, scenario=scenario, rate=30000)
    return [response.SerializeToString() for response in simulator.take(count)[:count]]


def plain(value):
    """`value` as plain data (tuples, dicts, numbers, strings, bytes), whatever classes the
    revision that made it uses: so that two revisions' deltas compare with ==."""
    if isinstance(value, dict):  # Counter too; zero counts are not a difference
        return {plain(k): plain(v) for k, v in value.items() if v != 0 or not isinstance(v, int)}
    if isinstance(value, (tuple, list)):
        return tuple(plain(item) for item in value)
    if isinstance(value, (int, float, str, bytes, type(None))):
        return value
    if isinstance(value, memoryview):
        return bytes(value)
    slots = [name for cls in type(value).__mro__ for name in getattr(cls, "__slots__", ())]
    if dataclasses.is_dataclass(value):
        slots = [f.name for f in dataclasses.fields(value)]
    if not slots:
        raise TypeError(f"cannot compare a {type(value).__name__}")
    return (type(value).__name__, {name: plain(getattr(value, name)) for name in sorted(slots)})


def measure(raws: list[bytes], batch: int, repeat: int) -> dict:
    """Count `raws` `repeat` times with fresh accumulators (best time kept); the deltas of the
    last run, and the aggregates they merge into, as plain data."""
    from kcockpit.model.aggregates import Accumulator, FlowAggregates

    batches = [raws[i:i + batch] for i in range(0, len(raws), batch)]
    best = float("inf")  # CPU seconds (process_time): other work on the machine does not count
    for _ in range(repeat):
        accumulator = Accumulator()
        deltas = []
        start = time.process_time()
        for chunk in batches:
            accumulator.add_raw(chunk)
            deltas.append(accumulator.take())
        elapsed = time.process_time() - start
        best = min(best, elapsed)
    accumulator.expire(accumulator.newest_ns + 6 * NS)  # the lookups still pending end unanswered
    deltas.append(accumulator.take())
    plain_deltas = [plain(delta) for delta in deltas]
    aggregates = FlowAggregates()
    for delta in deltas:
        aggregates.merge(delta)
    tables = {
        "services": [row.to_json() for row in aggregates.services(None)],
        "dns": [row.to_json() for row in aggregates.dns_rows(None)],
        "policies": [row.to_json() for row in aggregates.policy_groups(None)],
        "1m": [row.to_json() for row in aggregates.services(60)],
    }
    return {"us_per_flow": best / len(raws) * 1e6, "deltas": plain_deltas, "tables": json.dumps(tables, sort_keys=True)}


def run_child(tui: Path, flows_file: Path, out_file: Path, batch: int, repeat: int) -> dict[str, dict]:
    """`measure` of every flow set, by the kcockpit in `tui`, in a child process."""
    subprocess.run([sys.executable, __file__, "--child", str(flows_file), str(out_file), "--tui", str(tui),
                    "--batch", str(batch), "--repeat", str(repeat)], check=True)
    return pickle.loads(out_file.read_bytes())


def best_of(runs: list[dict[str, dict]]) -> dict[str, dict]:
    """Each set's fastest run (every run counted the same flows, so any one's results do)."""
    return {name: min((run[name] for run in runs), key=lambda result: result["us_per_flow"]) for name in runs[0]}


def first_difference(mine: list, theirs: list) -> str:
    if len(mine) != len(theirs):
        return f"{len(mine)} deltas, reference {len(theirs)}"
    for index, (a, b) in enumerate(zip(mine, theirs)):
        if a != b:
            fields_a, fields_b = a[1], b[1]
            for name in sorted(set(fields_a) | set(fields_b)):
                if fields_a.get(name) != fields_b.get(name):
                    x, y = fields_a.get(name), fields_b.get(name)
                    if isinstance(x, dict) and isinstance(y, dict):
                        keys = [k for k in set(x) | set(y) if x.get(k) != y.get(k)]
                        example = f"{keys[0]!r}: {x.get(keys[0])!r} != {y.get(keys[0])!r}"
                        return f"delta {index}, {name}: {len(keys)} keys differ, e.g. {example[:400]}"
                    return f"delta {index}, {name}: {f'{x!r} != {y!r}'[:400]}"
    return "none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="flows per set")
    parser.add_argument("--batch", type=int, default=4096, help="flows per add_raw call (a delta each)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per set and round; the best is reported")
    parser.add_argument("--rounds", type=int, default=3, help="child processes per tree, taking turns")
    parser.add_argument("--reference", default=REFERENCE, help="git revision to compare with ('' for none)")
    parser.add_argument("--child", nargs=2, metavar=("FLOWS", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--tui", default=str(ROOT / "tui"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, args.tui)  # the flow sets are built with this tree's simulator

    if args.child:
        flow_sets = pickle.loads(Path(args.child[0]).read_bytes())
        results = {name: measure(raws, args.batch, args.repeat) for name, raws in flow_sets.items()}
        Path(args.child[1]).write_bytes(pickle.dumps(results))
        return 0

    flow_sets = {"fast": fast_flows(args.count), "mixed": mixed_flows(args.count)}
    mine_runs, reference_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        flows_file, out_file = Path(tmp, "flows.pickle"), Path(tmp, "out.pickle")
        flows_file.write_bytes(pickle.dumps(flow_sets))
        if args.reference:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.reference, "tui"], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        # Rounds alternate between the two trees, so that both see the machine's other work alike.
        for _ in range(args.rounds):
            mine_runs.append(run_child(Path(args.tui), flows_file, out_file, args.batch, args.repeat))
            if args.reference:
                reference_runs.append(run_child(Path(tmp, "tui"), flows_file, out_file, args.batch, args.repeat))
    results = best_of(mine_runs)
    reference = best_of(reference_runs) if reference_runs else {}
    failed = False
    for name, result in results.items():
        line = f"{name}: {len(flow_sets[name]):,} flows, {result['us_per_flow']:.2f} µs/flow"
        theirs = reference.get(name)
        if theirs is not None:
            same = result["deltas"] == theirs["deltas"] and result["tables"] == theirs["tables"]
            line += f"; reference {args.reference[:8]}: {theirs['us_per_flow']:.2f} µs/flow, results {'identical' if same else 'DIFFER'}"
            if not same:
                failed = True
                line += f" (first difference: {first_difference(result['deltas'], theirs['deltas'])})"
        print(line, flush=True)
    print(f"aggregates: fast {results['fast']['us_per_flow']:.2f} µs/flow, mixed {results['mixed']['us_per_flow']:.2f} µs/flow")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
