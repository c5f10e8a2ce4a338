"""Does the cockpit stay responsive while flows pour in?

Runs the real app headless (Textual's run_test) while a feeder thread plays the part of
the Hubble reader: it decodes FlowRecords from serialized simulator flows and appends them
to the store at a fixed rate (5,000 and 20,000 flows/s) or as fast as it can. Meanwhile
key presses (j/k) are sent at random intervals, on the Flows tab or, with a tab named, on
the Services tab's tree (its refresh rebuilds the tree from the aggregates). The session
counts every flow into the aggregates in their child process, as the cockpit does.
Measured per run:

- key latency: from the key event being sent to the first repaint of the flow table that
  follows the key's action (what the user waits for), p50/p99/max;
- frames/s: repaints of the flow table per second (the drain timer runs at 20 Hz);
- memory: resident set size at the end, and the store's retained/evicted counts.

    python benchmarks/ui_responsiveness.py [--seconds 6] [--buffer-size 250000]
    python benchmarks/ui_responsiveness.py --server 127.0.0.1:47201   # the real reader, full speed
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tui"))

from textual import events  # noqa: E402

from kcockpit.model.record import FlowRecord  # noqa: E402
from kcockpit.model.store import FlowStore  # noqa: E402
from kcockpit.sim.traffic import Simulator  # noqa: E402
from kcockpit.sim.world import World  # noqa: E402
from kcockpit.ui.app import CockpitApp  # noqa: E402
from kcockpit.ui.tabs.flows import FlowsTab  # noqa: E402
from kcockpit.application.session import Session  # noqa: E402


class FedSession(Session):
    """The store is filled by the benchmark's feeder thread, standing in for FlowStream and
    the server: a filter is applied to the feeder's pool, as a Hubble server would apply it."""

    label = "benchmark feeder"
    kind = "benchmark"

    def __init__(self, store: FlowStore, pool: list[bytes]) -> None:
        super().__init__(store)
        from kcockpit.application.aggregation import StreamFeed

        self.feed = StreamFeed(None, store)  # ships the stored flows to the aggregator, as live sessions do
        self.full_pool = pool
        self.pool = pool
        self.generation = 0

    @property
    def server_side_filters(self) -> bool:
        return True

    def apply_filter(self, whitelist, blacklist) -> None:
        from kcockpit.model.matcher import FlowMatcher

        matcher = FlowMatcher(list(whitelist), list(blacklist))
        self.pool = [raw for raw in self.full_pool if matcher.matches_record(FlowRecord.from_bytes(raw))]
        self.generation += 1

    def filter_generation(self) -> int:
        return self.generation

    def state(self):
        from kcockpit.application.session import SessionState

        return SessionState("live")


def flow_pool(count: int) -> list[bytes]:
    simulator = Simulator(World.build(1), seed=1, rate=2000)
    return [response.SerializeToString() for response in simulator.take(count) if response.HasField("flow")]


class Feeder(threading.Thread):
    """Appends decoded records to the store at `rate` flows/s (None = as fast as possible)."""

    def __init__(self, session: FedSession, rate: float | None) -> None:
        super().__init__(daemon=True, name="benchmark-feeder")
        self.store, self.pool, self.rate = session.store, session.pool, rate
        self.stop_event = threading.Event()

    def run(self) -> None:
        pool, size, append = self.pool, len(self.pool), self.store.append
        decode = FlowRecord.from_bytes
        sent = 0
        start = time.perf_counter()
        while not self.stop_event.is_set():
            if self.rate is None:
                due = sent + 2000
            else:
                due = int((time.perf_counter() - start) * self.rate)
                if due <= sent:
                    time.sleep(0.002)
                    continue
            while sent < due:
                append(decode(pool[sent % size]))
                sent += 1


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * 4096 / 2**20


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(rate: float | None, seconds: float, buffer_size: int, pool: list[bytes], filter_text: str,
                  tab: str = "flows", server: str | None = None) -> dict:
    store = FlowStore(buffer_size)
    if server:  # the real reader on a real stream, at whatever speed the server sends
        from kcockpit.application.session import HubbleSession
        from kcockpit.wire.connection import HubbleConnection

        session = HubbleSession(HubbleConnection(server), store)
    else:
        session = FedSession(store, pool)
    app = CockpitApp(session, initial_filter=filter_text)
    repaints: list[float] = []
    actions: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        if tab == "services":
            from kcockpit.ui.tabs.services import ServicesTab

            await pilot.press("2")
            table = app.tab(ServicesTab).tree_view
            movers = ("action_cursor",)
        else:
            table = app.tab(FlowsTab).table
            movers = ("action_cursor_up", "action_cursor_down")
        original_render_line = table.render_line

        def render_line(y: int):
            # The flow table repaints whole (its header line tells a frame); the tree repaints
            # only the lines that changed, so any of them does.
            if y == 0 or tab == "services":
                repaints.append(time.perf_counter())
            return original_render_line(y)

        table.render_line = render_line  # count repaints of the table (its header line)
        for name in movers:
            original = getattr(table, name)

            def timed(*args, original=original) -> None:
                original(*args)
                actions.append(time.perf_counter())

            setattr(table, name, timed)

        feeder = Feeder(session, rate) if not server else None
        if feeder is not None:
            feeder.start()
        await pilot.pause(1.0)  # let the load settle
        while tab == "services" and not table.rows:  # keys before the tree exists move nothing
            await pilot.pause(0.1)
        if tab == "services":
            await pilot.press(*"jjjjjjjjjj")  # off the top row: a k there moves nothing and repaints nothing
            await pilot.pause(0.3)
        frames_from = len(repaints)
        started = time.perf_counter()
        latencies: list[float] = []
        rng = random.Random(7)
        driver = app._driver
        while time.perf_counter() - started < seconds:
            key = rng.choice("jk")
            sent_at = time.perf_counter()
            seen_actions = len(actions)
            driver.send_message(events.Key(key, key))
            deadline = sent_at + 2.0
            while time.perf_counter() < deadline:
                await asyncio.sleep(0.001)
                if len(actions) > seen_actions and repaints and repaints[-1] > actions[seen_actions]:
                    break
            latencies.append(repaints[-1] - sent_at if repaints and repaints[-1] >= sent_at else 2.0)
            await asyncio.sleep(rng.uniform(0.05, 0.15))
        elapsed = time.perf_counter() - started
        print("LAT", [round(x * 1000) for x in latencies], file=sys.stderr) if "--trace" in sys.argv else None
        frames = len(repaints) - frames_from
        if feeder is not None:
            feeder.stop_event.set()
            feeder.join()
        counters = store.counters()
        fps = frames / elapsed
        counted = session.feed.aggregates.flows
        return {
            "rate": "server" if server else "full speed" if rate is None else f"{rate:,.0f}/s",
            "filter": (filter_text or "-") + ("" if tab == "flows" else f" [{tab}]"),
            "counted": counted,
            "arrived": counters.received / (elapsed + 1.0),
            "keys": len(latencies),
            "p50": statistics.median(latencies) * 1000,
            "p99": percentile(latencies, 0.99) * 1000,
            "max": max(latencies) * 1000,
            "fps": fps,
            "retained": counters.retained,
            "evicted": counters.evicted,
            "rss": rss_mb(),
        }


RUNS = (("5000", "", "flows"), ("20000", "", "flows"), ("20000", "ns=otel-demo", "flows"), ("20000", "", "services"),
        ("full", "", "flows"))


def main() -> int:
    parser = argparse.ArgumentParser(description="UI responsiveness under flow load")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per run (default 6)")
    parser.add_argument("--buffer-size", type=int, default=250_000)
    parser.add_argument("--server", metavar="ADDRESS",
                        help="one run on a real Hubble server's stream instead of the feeder (e.g. benchmarks/fast_server.py)")
    parser.add_argument("--one", nargs=3, metavar=("RATE", "FILTER", "TAB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server and args.one is None:
        args.one = ["full", "", "flows"]
    if args.one is None:
        # Each run in its own process, so memory figures do not include earlier runs.
        print(f"{'arrival':>11} {'filter':>22} {'got/s':>8} {'keys':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
              f" {'fps':>5} {'retained':>9} {'evicted':>9} {'RSS MB':>7} {'counted':>9}", flush=True)
        for rate, filter_text, tab in RUNS:
            command = [sys.executable, __file__, "--seconds", str(args.seconds), "--buffer-size",
                       str(args.buffer_size), "--one", rate, filter_text, tab]
            subprocess.run(command, check=True)
        return 0
    rate = None if args.one[0] == "full" else float(args.one[0])
    pool = flow_pool(20_000)
    r = asyncio.run(measure(rate, args.seconds, args.buffer_size, pool, args.one[1], args.one[2], args.server))
    print(f"{r['rate']:>11} {r['filter']:>22} {r['arrived']:>8.0f} {r['keys']:>5} {r['p50']:>7.1f} {r['p99']:>7.1f}"
          f" {r['max']:>7.1f} {r['fps']:>5.1f} {r['retained']:>9} {r['evicted']:>9} {r['rss']:>7.0f} {r['counted']:>9}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
