"""`kcockpit report` over a large capture: time and peak memory, and whether memory grows
with the number of flows (it must not, beyond the aggregates' key caps).

    python benchmarks/report.py --flows 1000000 [--capture /tmp/kcockpit-1m.jsonl]

Writes (once, then reuses) a capture of the simulated cluster's traffic in `hubble observe
-o jsonpb` form, then runs `kcockpit report --input-file CAPTURE -o json` as a separate
process on the first tenth and on the whole of it, and prints wall time, flows/s and peak
RSS (from the kernel's rusage of the child) for each. The last line is
`report: N flows in S s, peak RSS M MB`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tui"))

from kcockpit.sim.clock import ManualClock  # noqa: E402
from kcockpit.sim.scenario import Scenario  # noqa: E402
from kcockpit.sim.traffic import Simulator  # noqa: E402
from kcockpit.sim.world import World  # noqa: E402
from kcockpit.sources.capture import response_to_line  # noqa: E402


def write_capture(path: Path, flows: int, rate: float = 5000.0) -> None:
    clock = ManualClock()
    scenario = Scenario(clock, mode="auto", loop=True, start_ns=clock.now_ns())
    simulator = Simulator(World.build(1), seed=1, clock=clock, scenario=scenario, rate=rate)
    written = 0
    partial = path.with_suffix(".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        while written < flows:
            clock.advance(1.0)
            for response in simulator.advance():
                handle.write(response_to_line(response))
                handle.write("\n")
                written += 1
                if written >= flows:
                    break
    partial.rename(path)


def run_report(path: Path, limit: int | None) -> dict:
    source = path
    if limit is not None:
        source = path.with_name(f"{path.stem}-first-{limit}.jsonl")
        if not source.exists():
            with open(path, encoding="utf-8") as full, open(source, "w", encoding="utf-8") as part:
                for number, line in enumerate(full):
                    if number >= limit:
                        break
                    part.write(line)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kcockpit", "report", "--input-file", str(source), "-o", "json"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "tui")})
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"report failed: {done.stderr.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads(done.stdout)
    return {"flows": report["window"]["flows"], "seconds": elapsed, "peak_rss_mb": after.ru_maxrss / 1024,
            "rows": (len(report["services"]), len(report["dns"]), len(report["policies"])),
            "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=1_000_000)
    parser.add_argument("--capture", type=Path, default=None, help="where the capture is kept (default /tmp)")
    args = parser.parse_args()
    path = args.capture or Path(f"/tmp/kcockpit-report-{args.flows}.jsonl")
    if not path.exists():
        started = time.perf_counter()
        write_capture(path, args.flows)
        print(f"wrote {args.flows} flows ({path.stat().st_size / 1e9:.2f} GB) to {path} in {time.perf_counter() - started:.0f} s")
    results = []
    for limit in (args.flows // 10, None):
        result = run_report(path, limit)
        results.append(result)
        print(f"{result['flows']:>9} flows: {result['seconds']:.1f} s ({result['flows'] / result['seconds']:.0f} flows/s), "
              f"peak RSS {result['peak_rss_mb']:.0f} MB; rows services/dns/policies {result['rows']}")
    small, large = results
    print(f"memory: {large['peak_rss_mb'] - small['peak_rss_mb']:+.0f} MB for {large['flows'] - small['flows']} more flows")
    print(f"report: {large['flows']} flows in {large['seconds']:.1f} s, peak RSS {large['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
