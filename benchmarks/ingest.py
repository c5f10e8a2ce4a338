"""Full client path: GetFlows from any Hubble server, received, decoded, stored and counted
into the aggregates (in their child process, as the cockpit runs them), while an asyncio loop
drains the store every 20 ms as the UI does.

    python benchmarks/ingest.py --server HOST:PORT --count N [--capacity 1000000] [--follow] [--hubble-cli PATH]
    python benchmarks/ingest.py --server HOST:PORT --count N --receive-only   # transport ceiling

With --hubble-cli PATH it also times the real `hubble observe --last N -o compact` printing to
/dev/null on the same source, before and after kcockpit's run, and prints the ratio.

Without --follow it asks for the last N flows (`number`, as `hubble observe --last N`), which a
real Relay answers from its buffers; with --follow it streams until N flows arrived. Reports
flows/s over the whole call (connection setup included), the event loop's timer lag while
ingesting (the UI's responsiveness), and memory. The last line is `ingest: <flows/s> flows/s`.
With aggregates on (the default; --no-aggregates measures the path without them), a flow
counts as ingested once it is stored AND counted: the last line is the slower of the two
rates. Accepts the hubble CLI's connection flags (--tls, --tls-ca-cert-files, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))

import grpc  # noqa: E402

from kcockpit.application.aggregation import StreamFeed  # noqa: E402
from kcockpit.application.collector import defer_full_collections  # noqa: E402
from kcockpit.model.store import DEFAULT_CAPACITY, FlowStore  # noqa: E402
from kcockpit.sources.hubble import FlowStream, StreamStatus  # noqa: E402
from kcockpit.cli_options import add_connection_arguments, connection_from_args  # noqa: E402
from kcockpit.wire.connection import HubbleError  # noqa: E402
from kcockpit.wire.grpc_stream import StreamCall  # noqa: E402
from kcockpit.wire.hubble_client import GET_FLOWS_METHOD, flows_request  # noqa: E402
from kcockpit.wire.hubble_pb import GetFlowsRequest  # noqa: E402

DRAIN_INTERVAL = 0.020  # the UI's refresh timer


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class FullCollections:
    """Counts the cyclic GC's full (generation 2) collections and their longest pause: with a
    large store they, not the reader, set the loop's worst-case lag."""

    def __init__(self) -> None:
        self.count = 0
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.longest = max(self.longest, time.perf_counter() - self._started)


async def run(args: argparse.Namespace) -> dict:
    connection = connection_from_args(args)
    store = FlowStore(args.capacity)
    stream = FlowStream(connection, store, number=args.count, follow=args.follow)
    feed = StreamFeed(connection, store) if args.aggregates else None
    if feed is not None:
        feed.start()
        while feed.child_pid is None or feed.state().state == "starting":  # the child is up and waiting
            await asyncio.sleep(0.05)
    lags: list[float] = []
    drained = verdicts = 0
    mark = 0
    peak_rss = rss_mb()
    collections = FullCollections()
    defer_full_collections()  # the collector as the cockpit sets it
    gc.callbacks.append(collections)
    started = time.perf_counter()
    cpu_started = time.process_time()
    stream.start()
    next_tick = time.perf_counter() + DRAIN_INTERVAL
    while True:
        await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
        now = time.perf_counter()
        lags.append(now - next_tick)
        next_tick = max(next_tick + DRAIN_INTERVAL, now)
        new, mark = store.since(mark)
        drained += len(new)
        verdicts += sum(1 for record in new[-500:] if record.verdict == 2)  # what a list view would touch
        peak_rss = max(peak_rss, rss_mb())
        state = stream.state.status
        if args.follow and store.received >= args.count:
            break
        if state in (StreamStatus.ENDED, StreamStatus.ERROR, StreamStatus.STOPPED):
            break
        if state is StreamStatus.RETRYING and store.received == 0:
            break  # a benchmark does not wait for a server that is not there
    elapsed = time.perf_counter() - started
    own_cpu = time.process_time() - cpu_started
    child_cpu = None
    error = stream.state.error
    await stream.aclose()
    counted_rate = None
    if feed is not None:
        deadline = time.perf_counter() + 120
        # Everything stored is shipped (or counted as missed: evicted before the tap got it).
        while (feed.aggregates.flows < feed.shipped or feed.shipped + feed.missed < store.received) \
                and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        counted_elapsed = time.perf_counter() - started
        counted = feed.aggregates.flows
        counted_rate = counted / counted_elapsed if counted_elapsed else 0.0
        child_cpu = process_cpu_s(feed.child_pid)
        await asyncio.to_thread(feed.stop)
    gc.callbacks.remove(collections)
    drained += len(store.since(mark)[0])
    if store.received == 0 and error:
        raise HubbleError(error)
    received = stream.flows_received
    rate = received / elapsed if elapsed else 0.0
    return {
        "counted": counted if feed is not None else None,
        "missed": feed.missed if feed is not None else 0,
        "counted_rate": counted_rate,
        "stored_rate": rate,
        "received": received,
        "seconds": elapsed,
        "rate": min(rate, counted_rate) if counted_rate is not None else rate,
        "own_cpu_us": own_cpu / received * 1e6 if received else 0.0,
        "child_cpu_us": child_cpu / received * 1e6 if received and child_cpu else None,
        "lag_p50_ms": percentile(lags, 0.50) * 1e3,
        "lag_p99_ms": percentile(lags, 0.99) * 1e3,
        "lag_max_ms": max(lags, default=0.0) * 1e3,
        "ticks": len(lags),
        "retained": len(store),
        "evicted": store.counters().evicted,
        "lost": store.lost_at_server,
        "peak_rss_mb": max(peak_rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3),
        "drained": drained,
        "full_gcs": collections.count,
        "longest_gc_ms": collections.longest * 1e3,
    }


def process_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def receive_only(args: argparse.Namespace) -> tuple[int, float]:
    """The transport's ceiling: the same call as FlowStream's, messages counted and dropped."""
    connection = connection_from_args(args)
    started = time.perf_counter()
    count = 0
    if connection.stream_transport == "h2":
        call = StreamCall(connection, GET_FLOWS_METHOD, flows_request(number=args.count).SerializeToString())
        for batch in call.batches():
            count += len(batch)
        return count, time.perf_counter() - started
    channel = connection.sync_channel(single_threaded_stream=True)
    call = channel.unary_stream(GET_FLOWS_METHOD, request_serializer=GetFlowsRequest.SerializeToString,
                                response_deserializer=None)
    for _ in call(flows_request(number=args.count)):
        count += 1
    elapsed = time.perf_counter() - started
    channel.close()
    return count, elapsed


def hubble_cli_rate(cli: str, args: argparse.Namespace) -> float:
    """flows/s of the real hubble CLI printing compact lines to /dev/null, same source and count."""
    import subprocess

    command = [cli, "observe", "--server", args.server, "--last", str(args.count), "-o", "compact"]
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return args.count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_connection_arguments(parser)
    parser.add_argument("--count", type=int, default=200_000, help="flows to receive (default 200000)")
    parser.add_argument("--capacity", type=int, default=DEFAULT_CAPACITY,
                        help=f"flow store size (default {DEFAULT_CAPACITY}, the cockpit's)")
    parser.add_argument("--follow", action="store_true", help="follow the live stream until COUNT flows arrived")
    parser.add_argument("--no-aggregates", dest="aggregates", action="store_false",
                        help="receive, decode and store only: no aggregates (the path before they existed)")
    parser.add_argument("--hubble-cli", metavar="PATH",
                        help="also time the real hubble CLI (observe --last COUNT -o compact > /dev/null) on the same source")
    parser.add_argument("--receive-only", action="store_true",
                        help="only receive and count messages (no decode, no store): the transport's ceiling")
    args = parser.parse_args(argv)
    if args.receive_only:
        try:
            count, elapsed = receive_only(args)
        except (HubbleError, grpc.RpcError) as error:
            print(f"ingest: error: {error}", file=sys.stderr)
            return 1
        print(f"received {count} messages in {elapsed:.2f} s")
        print(f"receive-only: {count / elapsed:.0f} messages/s")
        return 0
    cli_rates = [hubble_cli_rate(args.hubble_cli, args)] if args.hubble_cli else []
    try:
        result = asyncio.run(run(args))
    except HubbleError as error:
        print(f"ingest: error: {error}", file=sys.stderr)
        return 1
    if args.hubble_cli:
        cli_rates.append(hubble_cli_rate(args.hubble_cli, args))
    print(
        f"received {result['received']} flows in {result['seconds']:.2f} s; store kept {result['retained']} "
        f"(evicted {result['evicted']}, lost at server {result['lost']}); drained {result['drained']} in "
        f"{result['ticks']} ticks"
    )
    print(
        f"event loop timer lag while ingesting: p50 {result['lag_p50_ms']:.1f} ms, p99 {result['lag_p99_ms']:.1f} ms, "
        f"max {result['lag_max_ms']:.1f} ms; peak RSS {result['peak_rss_mb']:.0f} MB; "
        f"{result['full_gcs']} full GC collections, longest {result['longest_gc_ms']:.0f} ms"
    )
    cpu = f"CPU per flow: this process {result['own_cpu_us']:.1f} us (reader, store, tap, loop)"
    if result["child_cpu_us"] is not None:
        cpu += f", aggregator process {result['child_cpu_us']:.1f} us"
    print(cpu)
    if result["counted_rate"] is not None:
        print(f"stored {result['stored_rate']:.0f} flows/s; aggregates counted {result['counted']} flows, "
              f"{result['counted_rate']:.0f} flows/s (child process, from the start)"
              + (f"; {result['missed']} evicted before they were counted (raise --capacity)" if result["missed"] else ""))
    if cli_rates:
        cli = sum(cli_rates) / len(cli_rates)
        print(f"hubble CLI (compact to /dev/null), before and after: {cli_rates[0]:.0f} and {cli_rates[1]:.0f} "
              f"flows/s; kcockpit / CLI = {result['rate'] / cli:.2f}")
    print(f"ingest: {result['rate']:.0f} flows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
