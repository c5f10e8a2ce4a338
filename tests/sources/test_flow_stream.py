"""FlowStream against a real loopback gRPC Observer: last-N, follow, filters, node status,
lost events, reconnect with resume and no duplicates, unreachable address, prompt stop."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
from observer_fixture import (
    BASE_NS,
    FixtureServer,
    lost_events_response,
    make_flow_response,
    node_status_response,
)

from kcockpit.model.store import FlowStore
from kcockpit.sources.hubble import FlowStream, StreamState, StreamStatus, exponential_backoff
from kcockpit.wire.connection import HubbleConnection
from kcockpit.wire.hubble_pb import FlowFilter, flow_pb, relay_pb
from polling import wait_until


@pytest.fixture
def server():
    fixture = FixtureServer().start()
    fixture.servicer.publish(*(make_flow_response(i) for i in range(100)))
    yield fixture
    fixture.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_stream(server: FixtureServer, store: FlowStore, **kwargs) -> FlowStream:
    kwargs.setdefault("backoff", lambda attempt: 0.05)
    return FlowStream(HubbleConnection(server.address), store, **kwargs)


def uuids(store: FlowStore) -> list[str]:
    return [record.uuid for record in store.snapshot()]


def test_last_n_without_follow_ends(server) -> None:
    store = FlowStore(1000)
    stream = make_stream(server, store, number=10, follow=False)
    states: list[StreamState] = []
    stream.add_listener(states.append)
    stream.start()
    assert stream.join(5)
    assert uuids(store) == [f"f-{i}" for i in range(90, 100)]
    assert stream.state.status is StreamStatus.ENDED
    assert [s.status for s in states][0] is StreamStatus.CONNECTING
    assert stream.flows_received == 10


def test_first_n_since_until_and_filters_reach_the_server(server) -> None:
    store = FlowStore(1000)
    server.servicer.publish(make_flow_response(100, verdict=flow_pb.DROPPED))
    stream = make_stream(
        server, store, number=3, first=True, follow=False,
        since=BASE_NS + 10_000_000, until=BASE_NS + 100_000_000,
        whitelist=[FlowFilter(verdict=[flow_pb.FORWARDED, flow_pb.DROPPED])],
        blacklist=[FlowFilter(verdict=[flow_pb.FORWARDED])],
    )
    stream.start()
    assert stream.join(5)
    request = server.servicer.requests[-1]
    assert (request.number, request.first, request.follow) == (3, True, False)
    assert request.since.ToNanoseconds() == BASE_NS + 10_000_000
    assert request.until.ToNanoseconds() == BASE_NS + 100_000_000
    assert uuids(store) == ["f-100"]  # the only DROPPED flow in the window


def test_follow_delivers_new_flows_node_status_and_lost_events(server) -> None:
    store = FlowStore(1000)
    stream = make_stream(server, store, number=5)
    stream.start()
    try:
        wait_until(lambda: len(store) == 5 and stream.state.status is StreamStatus.LIVE)
        server.servicer.publish(
            make_flow_response(200),
            node_status_response(relay_pb.NODE_UNAVAILABLE, "node-b", "node-c", message="connection refused"),
            lost_events_response(42, time_ns=BASE_NS + 300_000_000),
        )
        wait_until(lambda: store.lost_at_server == 42 and len(store) == 6)
        assert uuids(store)[-1] == "f-200"
        nodes = stream.nodes
        assert set(nodes) == {"node-b", "node-c"}
        assert nodes["node-b"].state_name == "NODE_UNAVAILABLE"
        assert nodes["node-b"].message == "connection refused"
        assert store.counters().lost_at_server == 42
        assert stream.lost_event_messages == 1 and stream.node_status_events == 1
    finally:
        stream.stop()
        assert stream.join(10)
    assert stream.state.status is StreamStatus.STOPPED


def test_server_restart_resumes_from_last_flow_without_duplicates(server) -> None:
    store = FlowStore(1000)
    # Two flows share the newest instant: the resume boundary must keep both, once.
    server.servicer.publish(make_flow_response(100, time_ns=BASE_NS + 99_000_000))
    stream = make_stream(server, store, number=20)
    statuses: list[StreamStatus] = []
    stream.add_listener(lambda state: statuses.append(state.status))
    stream.start()
    try:
        wait_until(lambda: len(store) == 20)
        server.stop()
        wait_until(lambda: stream.state.status in (StreamStatus.RETRYING, StreamStatus.CONNECTING))
        # Flows the server gets while we are away, then it comes back on the same port.
        server.servicer.publish(*(make_flow_response(i) for i in range(101, 106)))
        server.start()
        wait_until(lambda: len(store) == 25)
        server.servicer.publish(make_flow_response(106))
        wait_until(lambda: len(store) == 26)
        resumed = server.servicer.requests[-1]
        assert resumed.follow and resumed.number == 0
        assert resumed.since.ToNanoseconds() == BASE_NS + 99_000_000
        got = uuids(store)
        assert len(got) == len(set(got)) == 26
        assert got[-7:] == ["f-100", *(f"f-{i}" for i in range(101, 107))]
        assert stream.duplicates_skipped == 2  # f-99 and f-100, resent by `since`
        assert StreamStatus.RETRYING in statuses and statuses.count(StreamStatus.LIVE) >= 2
        assert stream.state.status is StreamStatus.LIVE and stream.state.attempts == 0
    finally:
        stream.stop()
        stream.join(2)


def test_unreachable_address_retries_with_backoff_and_a_clear_error() -> None:
    port = free_port()
    store = FlowStore(10)
    states: list[StreamState] = []
    clock = iter(range(1000, 2000)).__next__
    stream = FlowStream(
        HubbleConnection(f"127.0.0.1:{port}"), store, backoff=lambda attempt: 0.02 * attempt, clock=clock
    )
    stream.add_listener(states.append)
    stream.start()
    try:
        wait_until(lambda: stream.state.attempts >= 3)
    finally:
        stream.stop()
        assert stream.join(10)
    retrying = [s for s in states if s.status is StreamStatus.RETRYING]
    assert retrying[0].error == f"Hubble server 127.0.0.1:{port}: connection refused (is the server or port-forward running?)"
    assert [s.attempts for s in retrying[:3]] == [1, 2, 3]
    assert all(s.retry_at is not None and s.retry_at >= 1000 for s in retrying)
    assert "retrying in" in retrying[0].describe(now=retrying[0].retry_at)


def test_a_server_that_never_answers_times_out_like_the_cli_and_retries() -> None:
    # Accepts TCP connections (the kernel does) but never speaks HTTP/2.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        states: list[StreamState] = []
        stream = FlowStream(HubbleConnection(address, timeout=0.2), FlowStore(10), backoff=lambda attempt: 0.05)
        stream.add_listener(states.append)
        stream.start()
        try:
            wait_until(lambda: any(s.status is StreamStatus.RETRYING for s in states))
        finally:
            stream.stop()
            assert stream.join(10)
    retrying = next(s for s in states if s.status is StreamStatus.RETRYING)
    assert retrying.error == f"Hubble server {address}: no connection within 0.2s"


def test_invalid_request_is_an_error_not_a_retry_loop(server) -> None:
    stream = make_stream(server, FlowStore(10), first=True, follow=True)
    stream.start()
    assert stream.join(5)
    assert stream.state.status is StreamStatus.ERROR
    assert stream.state.error.endswith("rejected the GetFlows request: first cannot be specified with follow")


def test_stop_cancels_a_quiet_follow_stream_promptly(server) -> None:
    stream = make_stream(server, FlowStore(1000), number=1)
    stream.start()
    wait_until(lambda: stream.state.status is StreamStatus.LIVE)
    started = time.monotonic()
    stream.stop()
    assert stream.join(10)
    # Without the cancel a quiet follow stream never ends. With it, the reader ends once
    # grpc's connectivity poller (0.2 s poll, waited for up to 0.5 s) has let go of the
    # channel: about 0.2 s, so 2 s is prompt with room for a loaded CI machine.
    assert time.monotonic() - started < 2.0
    assert stream.state.status is StreamStatus.STOPPED


def test_restart_with_new_filters_sends_a_new_request(server) -> None:
    store = FlowStore(1000)
    stream = make_stream(server, store, number=3)
    stream.start()
    try:
        wait_until(lambda: len(store) == 3)
        server.servicer.publish(make_flow_response(100, verdict=flow_pb.DROPPED))
        wait_until(lambda: len(store) == 4)
        store.clear()
        stream.restart(whitelist=[FlowFilter(verdict=[flow_pb.DROPPED])])
        wait_until(lambda: len(store) == 1)
        assert uuids(store) == ["f-100"]
        request = server.servicer.requests[-1]
        assert request.number == 3 and list(request.whitelist[0].verdict) == [flow_pb.DROPPED]
        assert stream.whitelist == (FlowFilter(verdict=[flow_pb.DROPPED]),)
    finally:
        stream.stop()
        stream.join(2)


def test_stop_then_start_at_once_resumes_after_the_last_flow(server) -> None:
    store = FlowStore(1000)
    stream = make_stream(server, store, number=5)
    stream.start()
    try:
        wait_until(lambda: len(store) == 5 and stream.state.status is StreamStatus.LIVE)
        stream.stop()
        stream.start()  # while the first reader may still be winding down
        server.servicer.publish(make_flow_response(100))
        wait_until(lambda: len(store) == 6 and stream.state.status is StreamStatus.LIVE)
        assert uuids(store) == [*(f"f-{i}" for i in range(95, 100)), "f-100"]
        assert server.servicer.requests[-1].since.ToNanoseconds() == BASE_NS + 99_000_000
        assert stream.duplicates_skipped == 1
    finally:
        stream.stop()
        assert stream.join(10)


def test_restart_after_the_stream_ended_runs_the_request_again(server) -> None:
    store = FlowStore(1000)
    server.servicer.publish(make_flow_response(100, verdict=flow_pb.DROPPED))
    stream = make_stream(server, store, number=2, follow=False)
    stream.start()
    assert stream.join(5) and stream.state.status is StreamStatus.ENDED
    stream.restart(whitelist=[FlowFilter(verdict=[flow_pb.DROPPED])])
    assert stream.join(5) and stream.state.status is StreamStatus.ENDED
    assert uuids(store) == ["f-99", "f-100", "f-100"]


def test_follow_with_until_ends_instead_of_reconnecting(server) -> None:
    stream = make_stream(server, FlowStore(1000), number=3, until=BASE_NS + 150_000_000)
    stream.start()
    # LIVE comes before the server has picked the last 3: publishing earlier would change them.
    wait_until(lambda: stream.state.status is StreamStatus.LIVE and len(stream.store) == 3)
    server.servicer.publish(make_flow_response(150), make_flow_response(151))  # 151 is past until
    assert stream.join(5)
    assert stream.state.status is StreamStatus.ENDED
    assert uuids(stream.store) == ["f-97", "f-98", "f-99", "f-150"]


def test_restart_with_resume_continues_after_the_newest_flow(server) -> None:
    store = FlowStore(1000)
    stream = make_stream(server, store, number=3)
    stream.start()
    try:
        wait_until(lambda: len(store) == 3)
        server.servicer.publish(make_flow_response(100, verdict=flow_pb.DROPPED))
        wait_until(lambda: len(store) == 4)
        stream.restart(whitelist=[FlowFilter(verdict=[flow_pb.DROPPED])], resume=True)
        wait_until(lambda: len(server.servicer.requests) == 2 and stream.state.status is StreamStatus.LIVE)
        server.servicer.publish(make_flow_response(101), make_flow_response(102, verdict=flow_pb.DROPPED))
        wait_until(lambda: len(store) == 5)
        assert uuids(store) == ["f-97", "f-98", "f-99", "f-100", "f-102"]
        request = server.servicer.requests[-1]
        assert request.number == 0 and request.since.ToNanoseconds() == BASE_NS + 100_000_000
        assert stream.duplicates_skipped == 1  # f-100, at the resume instant
    finally:
        stream.stop()
        stream.join(2)


async def test_aclose_does_not_block_the_event_loop(server) -> None:
    stream = make_stream(server, FlowStore(1000), number=1)
    stream.start()
    await _wait_async(lambda: stream.state.status is StreamStatus.LIVE)
    await stream.aclose()
    assert not stream.running


async def _wait_async(predicate, timeout: float = 5.0) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_listener_exceptions_do_not_kill_the_stream(server) -> None:
    store = FlowStore(100)
    stream = make_stream(server, store, number=2, follow=False)
    stream.add_listener(lambda state: 1 / 0)
    calls = []
    remove = stream.add_listener(calls.append)
    stream.start()
    assert stream.join(5)
    assert len(store) == 2 and calls
    remove()
    assert stream._listeners and calls[-1].status is StreamStatus.ENDED


def test_an_unexpected_failure_becomes_an_error_state_not_a_traceback(server) -> None:
    class BrokenStore(FlowStore):
        def extend(self, records) -> None:
            raise RuntimeError("disk on fire")

    stream = make_stream(server, BrokenStore(10), number=1, follow=False)
    stream.start()
    assert stream.join(5)
    assert stream.state.status is StreamStatus.ERROR
    assert stream.state.error == f"Hubble stream from {server.address} failed: RuntimeError: disk on fire"


def test_exponential_backoff_is_capped_and_deterministic() -> None:
    first = exponential_backoff(7, base=0.5, cap=10.0)
    second = exponential_backoff(7, base=0.5, cap=10.0)
    delays = [first(n) for n in range(1, 12)]
    assert delays == [second(n) for n in range(1, 12)]
    assert 0.4 <= delays[0] <= 0.6 and 0.8 <= delays[1] <= 1.2
    assert max(delays) <= 10.0 and delays[-1] >= 8.0


def test_state_listeners_run_on_the_reader_thread(server) -> None:
    threads = set()
    stream = make_stream(server, FlowStore(10), number=1, follow=False)
    stream.add_listener(lambda state: threads.add(threading.current_thread().name))
    stream.start()
    assert stream.join(5)
    assert "hubble-flow-reader" in threads


def test_flows_received_counts_exactly_across_counter_batches(server) -> None:
    server.servicer.publish(*(make_flow_response(i) for i in range(100, 300)))
    stream = make_stream(server, FlowStore(50), number=150, follow=False)
    stream.start()
    assert stream.join(5)
    assert stream.flows_received == 150 and stream.store.received == 150 and len(stream.store) == 50


def _benchmark_module(name: str):
    import importlib.util
    import sys
    from pathlib import Path

    benchmarks = Path(__file__).resolve().parents[2] / "benchmarks"
    if str(benchmarks) not in sys.path:
        sys.path.append(str(benchmarks))  # decode_store imports fast_server
    spec = importlib.util.spec_from_file_location(name, benchmarks / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fast_server_module():
    return _benchmark_module("fast_server")


def test_benchmark_h2_server_speaks_grpc_to_the_flow_stream() -> None:
    fast = _fast_server_module()
    responses = fast.sample_flows(7)
    tape = fast.MessageTape([r.SerializeToString() for r in responses])
    assert tape.messages_in(tape.length_of(20)) == 20
    server = fast.FastObserverServer(tape, default_count=5).start()
    try:
        store = FlowStore(10_000)
        stream = FlowStream(HubbleConnection(server.address), store, number=3000, follow=False)
        stream.start()
        assert stream.join(10)
        assert stream.state.status is StreamStatus.ENDED and store.received == 3000
        assert [r.response() for r in store.snapshot()[:14]] == responses * 2
        # Follow streams flow until cancelled.
        follow = FlowStream(HubbleConnection(server.address), FlowStore(100))
        follow.start()
        wait_until(lambda: follow.flows_received >= 1000)
        follow.stop()
        assert follow.join(10) and follow.state.status is StreamStatus.STOPPED
    finally:
        server.stop()


# ----- against the simulated Relay (kcockpit.sim), over real loopback gRPC ---------------------

SECOND = 1_000_000_000


@pytest.fixture(scope="module")
def sim():
    """The simulator on a ManualClock with 20 s of history, pumped by hand."""
    from kcockpit.sim.clock import ManualClock
    from kcockpit.sim.scenario import Scenario
    from kcockpit.sim.server import ObserverServer
    from kcockpit.sim.traffic import Simulator
    from kcockpit.sim.world import World

    clock = ManualClock()
    simulator = Simulator(World.build(3), seed=3, clock=clock, scenario=Scenario(clock, mode="broken"), rate=300)
    server = ObserverServer(simulator, auto_pump=False)
    server.start("127.0.0.1:0")
    clock.advance(20)
    server.pump()
    yield server, clock
    server.stop()


def direct(server, **fields):
    """What a plain grpc stub gets for the same request: (flow uuids, lost events, node_status events)."""
    import grpc as grpc_module

    from kcockpit.wire.hubble_client import flows_request
    from kcockpit.wire.hubble_pb import observer_grpc

    with grpc_module.insecure_channel(server.address) as channel:
        responses = list(observer_grpc.ObserverStub(channel).GetFlows(flows_request(**fields)))
    flows = [r.flow.uuid for r in responses if r.HasField("flow")]
    lost = sum(r.lost_events.num_events_lost for r in responses if r.HasField("lost_events"))
    return flows, lost, sum(r.HasField("node_status") for r in responses)


def run_to_end(server, **fields) -> FlowStream:
    stream = FlowStream(HubbleConnection(server.address), FlowStore(100_000), follow=False, **fields)
    stream.start()
    assert stream.join(10)
    assert stream.state.status is StreamStatus.ENDED, stream.state
    return stream


def test_sim_last_n_matches_a_plain_stub_with_node_status_and_lost_events(sim) -> None:
    server, _ = sim
    stream = run_to_end(server, number=25)
    flows, lost, node_statuses = direct(server, number=25)
    assert uuids(stream.store) == flows and len(flows) == 4 * 25  # through Relay, N is per node
    assert lost > 0 and stream.store.lost_at_server == lost and stream.lost_event_messages >= 1
    assert node_statuses == stream.node_status_events == 1
    nodes = stream.nodes
    assert len(nodes) == 4 and {n.state_name for n in nodes.values()} == {"NODE_CONNECTED"}
    times = [r.time_ns for r in stream.store.snapshot()]
    assert times == sorted(times)


def test_sim_since_until_window(sim) -> None:
    server, clock = sim
    now = clock.now_ns()
    since, until = now - 6 * SECOND, now - 3 * SECOND
    stream = run_to_end(server, since=since, until=until)
    records = stream.store.snapshot()
    assert records and all(since <= r.time_ns <= until for r in records)
    assert uuids(stream.store) == direct(server, since=since, until=until)[0]


def test_sim_whitelist_and_blacklist(sim) -> None:
    server, _ = sim
    whitelist = [FlowFilter(source_pod=["otel-demo/frontend"])]
    blacklist = [FlowFilter(verdict=[flow_pb.FORWARDED])]
    stream = run_to_end(server, number=500, whitelist=whitelist, blacklist=blacklist)
    records = stream.store.snapshot()
    assert records, "the broken phase drops frontend's DNS lookups"
    assert all(r.source.namespace == "otel-demo" and r.source.pod.startswith("frontend") for r in records)
    assert all(r.verdict != flow_pb.FORWARDED for r in records)
    assert uuids(stream.store) == direct(server, number=500, whitelist=whitelist, blacklist=blacklist)[0]


def ring_uuids(server, *, after: int) -> set[str]:
    """uuids of the flows a simulated server holds, newer than `after`."""
    return {entry[3].flow().uuid for ring in server._rings.values() for entry in ring.events
            if entry[3] is not None and entry[0] > after}


def replacement_requests_since(stream: FlowStream):
    """The `since` a resumed follow stream sends: the newest flow time it holds."""
    request = stream.request()
    return request.since.ToNanoseconds() if request.HasField("since") else None


def test_sim_follow_then_server_restart_resumes_without_loss_or_duplicates(sim) -> None:
    from kcockpit.sim.server import ObserverServer

    server, clock = sim
    store = FlowStore(100_000)
    stream = FlowStream(HubbleConnection(server.address), store, number=5, backoff=lambda attempt: 0.05)
    stream.start()
    replacement = None
    try:
        wait_until(lambda: stream.state.status is StreamStatus.LIVE and len(store) == 20)
        before = clock.now_ns()
        clock.advance(1)
        server.pump()
        followed = ring_uuids(server, after=before)
        assert followed
        wait_until(lambda: followed <= set(uuids(store)))
        seen_before_restart = set(uuids(store))
        # Relay goes away mid-stream...
        server.stop()
        wait_until(lambda: stream.state.status in (StreamStatus.RETRYING, StreamStatus.CONNECTING))
        # ...the cluster keeps running, and a new Relay comes back on the same address.
        clock.advance(1)
        replacement = ObserverServer(server.simulator, auto_pump=False)
        replacement.start(server.address)
        while_away = ring_uuids(replacement, after=0)
        assert while_away
        wait_until(lambda: while_away <= set(uuids(store)))
        got = uuids(store)
        assert len(got) == len(set(got)), "no flow twice"
        assert set(got) == seen_before_restart | while_away, "nothing lost, nothing extra"
        assert stream.state.status is StreamStatus.LIVE and stream.connects >= 2
        stream.stop()
        assert stream.join(10)
        # The next resume would ask for what came after the newest flow held.
        assert replacement_requests_since(stream) == max(r.time_ns for r in store.snapshot())
    finally:
        stream.stop()
        stream.join(2)
        if replacement is not None:
            replacement.stop()


def test_ingest_benchmark_prints_its_result_last(capsys) -> None:
    fast = _fast_server_module()
    tape = fast.MessageTape([r.SerializeToString() for r in fast.sample_flows(16)])
    server = fast.FastObserverServer(tape).start()
    try:
        ingest = _benchmark_module("ingest")
        assert ingest.main(["--server", server.address, "--count", "5000", "--capacity", "1000"]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines[0].startswith("received 5000 flows in ") and "store kept 1000 (evicted 4000" in lines[0]
        assert "event loop timer lag while ingesting: p50" in lines[1]
        assert re.fullmatch(r"ingest: \d+ flows/s", lines[-1])
        assert ingest.main(["--server", server.address, "--count", "300", "--receive-only"]) == 0
        assert re.fullmatch(r"receive-only: \d+ messages/s", capsys.readouterr().out.strip().splitlines()[-1])
    finally:
        server.stop()


def test_ingest_benchmark_reports_an_unreachable_server(capsys) -> None:
    ingest = _benchmark_module("ingest")
    port = free_port()
    assert ingest.main(["--server", f"127.0.0.1:{port}", "--count", "10"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"ingest: error: Hubble server 127.0.0.1:{port}: connection refused (is the server or port-forward running?)"
    )


# ===== Folded from test_review_flow_stream.py ======================================================
# Review tests for FlowStream: each pins a bug found by driving restart/stop at awkward moments.


def test_a_restart_while_connecting_does_not_skip_the_next_backoff() -> None:
    # The server accepts TCP but never speaks HTTP/2, so each attempt lasts the dial timeout.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        states: list[tuple[float, StreamState]] = []
        # The dial timeout is the window for restarting while connecting: wide enough that a
        # loaded machine still restarts inside it (0.3 s was not: the restart then landed in
        # the backoff, which it rightly cuts short, and the test failed).
        stream = FlowStream(HubbleConnection(address, timeout=1.5), FlowStore(10), backoff=lambda attempt: 5.0)
        stream.add_listener(lambda state: states.append((time.monotonic(), state)))
        stream.start()
        try:
            wait_until(lambda: stream.state.status is StreamStatus.CONNECTING)
            stream.restart()  # e.g. the user changed the filter while it was still dialling
            assert not any(s.status is StreamStatus.RETRYING for _, s in states), "restarted after the dial timed out"
            wait_until(lambda: any(s.status is StreamStatus.RETRYING for _, s in states))
            time.sleep(0.3)
            retrying_at = next(t for t, s in states if s.status is StreamStatus.RETRYING)
            after = [s.status for t, s in states if t > retrying_at]
            assert StreamStatus.CONNECTING not in after, "the 5 s backoff was skipped"
            assert stream.state.status is StreamStatus.RETRYING and stream.state.attempts == 1
        finally:
            stream.stop()
            assert stream.join(10)


def test_a_restart_right_after_an_unexpected_failure_runs_again() -> None:
    from observer_fixture import FixtureServer, make_flow_response

    class StoreThatFailsOnce(FlowStore):
        failed = False

        def append(self, record) -> None:
            if not self.failed:
                self.failed = True
                raise RuntimeError("disk on fire")
            super().append(record)

    server = FixtureServer().start()
    server.servicer.publish(make_flow_response(1))
    try:
        store = StoreThatFailsOnce(10)
        stream = FlowStream(HubbleConnection(server.address), store, number=1, follow=False)
        restarted: list[bool] = []

        def on_state(state: StreamState) -> None:
            # The user re-applies the filter the moment the error shows: the failed reader is
            # still closing its channel then.
            if state.status is StreamStatus.ERROR and not restarted:
                restarted.append(True)
                stream.restart()

        stream.add_listener(on_state)
        stream.start()
        wait_until(lambda: stream.state.status is StreamStatus.ENDED)
        assert stream.join(5)
        assert [r.uuid for r in store.snapshot()] == ["f-1"]
    finally:
        server.stop()
