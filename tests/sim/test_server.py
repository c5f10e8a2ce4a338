"""The simulated Hubble Relay over a real loopback gRPC connection (no mocks)."""

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kcockpit.cli import CliError, main
from kcockpit.sim import cli as sim_cli
from kcockpit.sim.clock import ManualClock
from kcockpit.sim.embedded import DemoCluster
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.server import ObserverServer
from kcockpit.sim.traffic import Simulator
from kcockpit.sim.world import World
from kcockpit.wire.hubble_pb import flow_pb, observer_grpc, observer_pb, relay_pb

SECOND = 1_000_000_000
NODES = 4


def simulated(seed: int, phase: str, rate: float, seconds: float, **options) -> tuple[ObserverServer, ManualClock]:
    """A server (not started) on a ManualClock holding `seconds` of history; tests pump it by hand."""
    clock = ManualClock()
    sim = Simulator(World.build(3), seed=seed, clock=clock, scenario=Scenario(clock, mode=phase), rate=rate)
    server = ObserverServer(sim, auto_pump=False, **options)
    clock.advance(seconds)
    server.pump()
    return server, clock


@pytest.fixture(scope="module")
def served():
    server, clock = simulated(3, "broken", 300, 20)
    address = server.start("127.0.0.1:0")
    channel = grpc.insecure_channel(address)
    yield server, clock, observer_grpc.ObserverStub(channel), channel
    channel.close()
    server.stop()


def flows_of(responses):
    return [r.flow for r in responses if r.HasField("flow")]


def ring_flows(server):
    """Every stored flow, per node, oldest first, as (time_ns, uuid)."""
    out = {}
    for name, ring in server._rings.items():
        out[name] = [(e[0], e[3].flow().uuid) for e in ring.events if e[3] is not None]
    return out


def test_last_n_is_per_node_newest_oldest_first_after_a_node_status(served):
    server, _, stub, _ = served
    responses = list(stub.GetFlows(observer_pb.GetFlowsRequest(number=7)))
    status = responses[0]
    assert status.node_status.state_change == relay_pb.NODE_CONNECTED
    assert sorted(status.node_status.node_names) == sorted(server._rings)
    flows = flows_of(responses[1:])
    times = [f.time.ToNanoseconds() for f in flows]
    assert times == sorted(times)
    expected = {uuid for per_node in ring_flows(server).values() for _, uuid in per_node[-7:]}
    assert {f.uuid for f in flows} == expected and len(flows) == 7 * NODES


def test_first_n_is_the_oldest(served):
    server, _, stub, _ = served
    flows = flows_of(stub.GetFlows(observer_pb.GetFlowsRequest(number=3, first=True)))
    expected = {uuid for per_node in ring_flows(server).values() for _, uuid in per_node[:3]}
    assert {f.uuid for f in flows} == expected


def test_since_and_until_bound_the_times(served):
    _, clock, stub, _ = served
    request = observer_pb.GetFlowsRequest()
    since, until = clock.now_ns() - 3 * SECOND, clock.now_ns() - 1 * SECOND
    request.since.FromNanoseconds(since)
    request.until.FromNanoseconds(until)
    flows = flows_of(stub.GetFlows(request))
    assert flows
    assert all(since <= f.time.ToNanoseconds() <= until for f in flows)


def test_whitelist_blacklist_and_bad_filters(served):
    _, _, stub, _ = served
    dropped = flows_of(stub.GetFlows(observer_pb.GetFlowsRequest(number=50, whitelist=[flow_pb.FlowFilter(verdict=[flow_pb.DROPPED])])))
    assert dropped and all(f.verdict == flow_pb.DROPPED for f in dropped)
    dns_drops = flow_pb.FlowFilter(source_pod=["otel-demo/frontend-"], destination_port=["53"], drop_reason_desc=[flow_pb.POLICY_DENIED])
    frontend = flows_of(stub.GetFlows(observer_pb.GetFlowsRequest(number=20, whitelist=[dns_drops])))
    assert frontend and all(f.source.pod_name.startswith("frontend-") for f in frontend)
    not_otel = flows_of(
        stub.GetFlows(
            observer_pb.GetFlowsRequest(
                number=100,
                blacklist=[flow_pb.FlowFilter(source_pod=["otel-demo/"]), flow_pb.FlowFilter(destination_pod=["otel-demo/"])],
            )
        )
    )
    assert not_otel and not any("otel-demo" in (f.source.namespace, f.destination.namespace) for f in not_otel)
    with pytest.raises(grpc.RpcError) as error:
        list(stub.GetFlows(observer_pb.GetFlowsRequest(whitelist=[flow_pb.FlowFilter(source_ip=["10.0.0.300"])])))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "source_ip" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        list(stub.GetFlows(observer_pb.GetFlowsRequest(first=True, follow=True)))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_field_mask_keeps_only_the_named_paths(served):
    _, _, stub, _ = served
    request = observer_pb.GetFlowsRequest(number=2, field_mask=field_mask_pb2.FieldMask(paths=["time", "verdict", "source.pod_name"]))
    flows = flows_of(stub.GetFlows(request))
    assert flows
    for f in flows:
        assert {d.name for d, _ in f.ListFields()} <= {"time", "verdict", "source"}
        assert {d.name for d, _ in f.source.ListFields()} <= {"pod_name"}
    with pytest.raises(grpc.RpcError) as error:
        list(stub.GetFlows(observer_pb.GetFlowsRequest(field_mask=field_mask_pb2.FieldMask(paths=["no_such"]))))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_follow_streams_new_flows_without_duplicates(served):
    server, clock, stub, _ = served
    call = stub.GetFlows(observer_pb.GetFlowsRequest(number=1, follow=True, whitelist=[flow_pb.FlowFilter(verdict=[flow_pb.FORWARDED])]))
    received: queue.Queue = queue.Queue()

    def read():
        try:
            for response in call:
                received.put(response)
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    before = clock.now_ns()
    clock.advance(2)
    pumped = server.pump()
    assert pumped > 0
    got = []
    while True:
        try:
            got.append(received.get(timeout=2))
        except queue.Empty:
            break
        if got and got[-1].HasField("flow") and got[-1].time.ToNanoseconds() > before and received.empty():
            break
    call.cancel()
    reader.join(2)
    flows = flows_of(got)
    assert got[0].HasField("node_status")
    uuids = [f.uuid for f in flows]
    assert len(uuids) == len(set(uuids))
    new = [f for f in flows if f.time.ToNanoseconds() > before]
    assert new and all(f.verdict == flow_pb.FORWARDED for f in flows)


def test_status_nodes_and_namespaces_match_the_rings(served):
    server, clock, stub, _ = served
    status = stub.ServerStatus(observer_pb.ServerStatusRequest())
    rings = server._rings.values()
    assert status.num_flows == sum(len(r.events) for r in rings)
    assert status.seen_flows == sum(r.seen + r.seen_before for r in rings)  # the agents' days before the history too
    assert status.max_flows == 4095 * NODES
    assert status.num_connected_nodes.value == NODES and status.num_unavailable_nodes.value == 0
    assert status.flows_rate > 0 and status.version
    nodes = stub.GetNodes(observer_pb.GetNodesRequest()).nodes
    assert sorted(n.name for n in nodes) == sorted(server._rings)
    assert all(n.state == relay_pb.NODE_CONNECTED and n.max_flows == 4095 and n.address.endswith(":4244") for n in nodes)
    assert sum(n.num_flows for n in nodes) == status.num_flows
    namespaces = stub.GetNamespaces(observer_pb.GetNamespacesRequest()).namespaces
    assert [(n.cluster, n.namespace) for n in namespaces] == [
        ("kind-kind", "default"), ("kind-kind", "kube-system"), ("kind-kind", "monitoring"), ("kind-kind", "otel-demo"),
    ]  # fmt: skip


def test_health_and_unimplemented(served):
    _, _, stub, channel = served
    health = health_pb2_grpc.HealthStub(channel)
    answer = health.Check(health_pb2.HealthCheckRequest(service="hubble.server.Observer"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    for method in (stub.GetAgentEvents, stub.GetDebugEvents):
        request = observer_pb.GetAgentEventsRequest() if method is stub.GetAgentEvents else observer_pb.GetDebugEventsRequest()
        with pytest.raises(grpc.RpcError) as error:
            list(method(request))
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_ring_buffer_is_bounded_per_node():
    server, _ = simulated(1, "healthy", 2000, 5, max_flows=100)
    assert all(len(r.events) == 100 for r in server._rings.values())
    assert sum(r.seen for r in server._rings.values()) > 400


def test_demo_cluster_serves_on_a_free_port_and_stops():
    with DemoCluster(seed=2, rate=100, backfill_s=30) as cluster:
        assert cluster.address.startswith("127.0.0.1:")
        with grpc.insecure_channel(cluster.address) as channel:
            stub = observer_grpc.ObserverStub(channel)
            assert len(flows_of(stub.GetFlows(observer_pb.GetFlowsRequest(number=2)))) == 2 * NODES
        cluster.scenario.set_phase("broken")
        assert cluster.scenario.phase == "broken"
        assert cluster.world.network_policies(cluster.scenario.phase)[-1]["metadata"]["name"] == "frontend-egress-allow-to-backend"


def test_demo_server_command_reports_a_taken_port(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo-server", "--listen", f"127.0.0.1:{port}"]) == 2
    error = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in error
    assert "Traceback" not in error


def test_demo_server_command_serves_until_sigterm():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "tui")}
    process = subprocess.Popen(
        [sys.executable, "-m", "kcockpit", "demo-server", "--listen", "127.0.0.1:0", "--backfill", "20", "--seed", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first_line = process.stdout.readline()
        address = re.search(r"Hubble Observer API on (127\.0\.0\.1:\d+) ", first_line).group(1)
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="hubble.server.Observer")
            assert health.Check(request, timeout=10).status == health_pb2.HealthCheckResponse.SERVING
            stub = observer_grpc.ObserverStub(channel)
            assert flows_of(stub.GetFlows(observer_pb.GetFlowsRequest(number=1), timeout=10))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    out, err = first_line + process.stdout.read(), process.stderr.read()
    assert process.returncode == 0
    assert "scenario: healthy 60s -> broken 60s -> fixed 60s -> dns-overload 60s, looping" in out
    assert "stopped" in err and "Traceback" not in err


def test_an_unreachable_node_is_reported_and_left_out():
    server, _ = simulated(6, "healthy", 400, 10)
    address = server.start("127.0.0.1:0")
    try:
        with grpc.insecure_channel(address) as channel:
            stub = observer_grpc.ObserverStub(channel)
            follow = stub.GetFlows(observer_pb.GetFlowsRequest(follow=True))
            assert next(follow).node_status.state_change == relay_pb.NODE_CONNECTED
            server.set_node_available("kind-worker2", False)
            notice = next(follow)
            assert notice.node_status.state_change == relay_pb.NODE_UNAVAILABLE
            assert list(notice.node_status.node_names) == ["kind-kind/kind-worker2"]
            follow.cancel()

            responses = list(stub.GetFlows(observer_pb.GetFlowsRequest(number=5)))
            states = {r.node_status.state_change: list(r.node_status.node_names) for r in responses if r.HasField("node_status")}
            assert states[relay_pb.NODE_UNAVAILABLE] == ["kind-kind/kind-worker2"]
            assert len(states[relay_pb.NODE_CONNECTED]) == NODES - 1
            flows = flows_of(responses)
            assert len(flows) == 5 * (NODES - 1) and all(f.node_name != "kind-kind/kind-worker2" for f in flows)
            status = stub.ServerStatus(observer_pb.ServerStatusRequest())
            assert status.num_connected_nodes.value == NODES - 1 and status.num_unavailable_nodes.value == 1
            assert list(status.unavailable_nodes) == ["kind-kind/kind-worker2"]
            nodes = {n.name: n for n in stub.GetNodes(observer_pb.GetNodesRequest()).nodes}
            assert nodes["kind-kind/kind-worker2"].state == relay_pb.NODE_UNAVAILABLE

            server.set_node_available("kind-worker2", True)
            status = stub.ServerStatus(observer_pb.ServerStatusRequest())
            assert status.num_connected_nodes.value == NODES and not status.unavailable_nodes
            with pytest.raises(ValueError, match="unknown node 'nope'"):
                server.set_node_available("nope", False)
    finally:
        server.stop()


def test_demo_server_serves_metrics_and_the_kubernetes_api(tmp_path):
    """`demo-server --metrics --kube-api --kubeconfig-out`: the same cluster over three real
    protocols, read with httpx and the official kubernetes client."""
    import httpx
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    kubeconfig = tmp_path / "demo.kubeconfig"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "tui")}
    process = subprocess.Popen(
        [sys.executable, "-m", "kcockpit", "demo-server", "--listen", "127.0.0.1:0", "--backfill", "10",
         "--scenario", "broken", "--metrics", "127.0.0.1:0", "--kube-api", "127.0.0.1:0",
         "--kubeconfig-out", str(kubeconfig)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        lines = [process.stdout.readline() for _ in range(4)]
        metrics_url = re.search(r"metrics:\s+(http://\S+)", "".join(lines)).group(1)
        assert f"(kubeconfig: {kubeconfig})" in "".join(lines)
        # The backfilled history is healthy: the broken phase's drops come with the first
        # live flows (the first scrape met some only while the server took 0.6 s to start).
        deadline = time.monotonic() + 10
        body = httpx.get(metrics_url, timeout=10).text
        while 'hubble_drop_total{' not in body and time.monotonic() < deadline:
            time.sleep(0.1)
            body = httpx.get(metrics_url, timeout=10).text
        assert 'hubble_drop_total{' in body and 'reason="POLICY_DENIED"' in body

        api = k8s_client.ApiClient(k8s_config.new_client_from_config(config_file=str(kubeconfig)).configuration)
        policies = k8s_client.NetworkingV1Api(api).list_network_policy_for_all_namespaces()
        names = {(p.metadata.namespace, p.metadata.name) for p in policies.items}
        assert ("otel-demo", "frontend-egress-allow-to-backend") in names
        namespaces = {n.metadata.name for n in k8s_client.CoreV1Api(api).list_namespace().items}
        assert {"otel-demo", "kube-system", "monitoring"} <= namespaces
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0
    assert "Traceback" not in process.stderr.read()


# ===== Folded from test_review_sim.py ==============================================================
# Review: the simulator's servers refuse bad addresses and requests with their own messages.


def test_demo_server_addresses_with_non_ascii_digits_are_refused_with_the_usual_message() -> None:
    with pytest.raises(CliError, match="is not HOST:PORT"):
        sim_cli._host_port("127.0.0.1:²", "--listen")
    clock = ManualClock()
    server = ObserverServer(Simulator(World.build(3), seed=1, clock=clock, scenario=Scenario(clock, mode="healthy")), auto_pump=False)
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        server.start("127.0.0.1:²")


# ===== Folded from test_review2_demo_server_shutdown.py ============================================
# Review 2: `kcockpit demo-server` stops cleanly on a double SIGINT.
#
# Found by hand: `timeout 900 kcockpit demo-server ... --kube-api ...` with kcockpit
# connected, then SIGINT to both `timeout` (which forwards it) and the server, i.e. two
# SIGINTs at once, as an impatient second Ctrl+C does: the second KeyboardInterrupt was
# raised inside the shutdown; grpc printed "RuntimeError: cannot schedule new futures after
# shutdown" and the process hung, holding its port; other times it died with "RuntimeError:
# release unlocked lock" or exit 130. Ctrl+C now sets the stop event like SIGTERM, and is
# ignored once the shutdown runs.


@pytest.mark.parametrize("attempt", range(3))
def test_two_sigints_stop_the_server_cleanly(attempt: int) -> None:
    server = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "kcockpit", "demo-server", "--listen", "127.0.0.1:0",
         "--kube-api", "127.0.0.1:0", "--backfill", "1", "--scenario", "broken"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(server.stderr), daemon=True)  # never let stderr fill up
    reader.start()
    try:
        lines = [server.stdout.readline() for _ in range(4)]
        assert any(re.search(r"on 127\.0\.0\.1:\d+", line) for line in lines), lines
        assert any("kube-api: http://127.0.0.1:" in line for line in lines), lines
        time.sleep(0.5)
        os.kill(server.pid, signal.SIGINT)
        time.sleep(0.05 * attempt)  # the second one at once, or while the servers stop
        os.kill(server.pid, signal.SIGINT)
        try:
            code = server.wait(timeout=45)  # generous: two busy cores slow the shutdown
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGABRT)  # faulthandler prints every thread's stack
            server.wait()
            reader.join(timeout=5)
            pytest.fail("demo-server still running 45 s after two SIGINTs:\n" + "".join(errors)[-8000:])
        reader.join(timeout=5)
        stderr = "".join(errors)
        assert code == 0, stderr
        assert "Traceback" not in stderr, stderr
        assert "kcockpit demo-server: stopped" in stderr
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


# ===== Folded from test_review3_demo_server_signals.py =============================================
# Review 3: `kcockpit demo-server` could hang for good on Ctrl+C with clients connected.
#
# The stop signal's handler called threading.Event.set(), which takes the Event's lock.
# Python runs signal handlers in the main thread between bytecodes, and they nest: a second
# SIGINT arriving while the first handler held that lock (a burst of Ctrl+C, `timeout`
# forwarding one more, the GIL handed to the busy pump/stream threads in between) ran the
# handler again inside it, and it waited for its own lock forever. The main thread never got
# to `cluster.stop()`, so follow streams and watches went on being served (the reported
# dump: threads parked in `_follow` and `_watch`). The handler is now a no-op and the main
# thread wakes on the signal wakeup pipe.


STOP_DEADLINE_S = 20.0  # generous: a loaded 2-core machine


def _burst(pid: int, number: int, count: int = 200) -> None:
    """`count` signals as fast as they go (microseconds apart): some land while a handler runs."""
    for _ in range(count):
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            return


def test_stop_signals_survive_signal_bursts_while_other_threads_hold_the_gil() -> None:
    # The stop wait alone, with two threads contending for the GIL as the pump and streams
    # do: with an Event set from the handler this hung in about one burst in twenty.
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import sys, threading
            from kcockpit.sim.cli import StopSignals
            def busy():
                while True:
                    sum(range(1000))
            for _ in range(2):
                threading.Thread(target=busy, daemon=True).start()
            sys.setswitchinterval(0.0005)
            for _ in range(int(sys.argv[1])):
                with StopSignals() as stop_signals:
                    print("ready", flush=True)
                    number = stop_signals.wait()
                print("got", number, flush=True)
            """
        ), "300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(child.stdout), daemon=True)
    reader.start()
    try:
        for round_ in range(300):
            deadline = time.monotonic() + STOP_DEADLINE_S
            while lines.count("ready\n") <= round_:
                assert child.poll() is None, child.stderr.read()
                assert time.monotonic() < deadline, f"round {round_}: child never got ready: {lines[-3:]}"
                time.sleep(0.005)
            _burst(child.pid, signal.SIGINT)
            while sum(line.startswith("got") for line in lines) <= round_:
                assert child.poll() is None, child.stderr.read()
                if time.monotonic() > deadline:
                    os.kill(child.pid, signal.SIGKILL)
                    pytest.fail(f"round {round_}: StopSignals.wait still waiting {STOP_DEADLINE_S:g} s after a burst of SIGINTs")
                time.sleep(0.005)
            assert [line for line in lines if line.startswith("got")][round_] == f"got {int(signal.SIGINT)}\n"
        assert child.wait(timeout=STOP_DEADLINE_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def _start_with_clients(tmp_path) -> tuple[subprocess.Popen, list[str], list]:
    server = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "kcockpit", "demo-server", "--listen", "127.0.0.1:0",
         "--kube-api", "127.0.0.1:0", "--kubeconfig-out", str(tmp_path / "kubeconfig"), "--metrics", "127.0.0.1:0",
         "--backfill", "1", "--rate", "2000", "--scenario", "broken"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    errors: list[str] = []
    threading.Thread(target=lambda: errors.extend(server.stderr), daemon=True).start()  # never let stderr fill up
    lines = [server.stdout.readline() for _ in range(5)]
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
    observer = re.search(r"on (127\.0\.0\.1:\d+)", lines[0])
    kube = next((re.search(r"kube-api: http://(127\.0\.0\.1):(\d+)", line) for line in lines if "kube-api:" in line), None)
    assert observer and kube, lines
    channel = grpc.insecure_channel(observer.group(1))
    follow = channel.unary_stream(
        "/observer.Observer/GetFlows",
        request_serializer=observer_pb.GetFlowsRequest.SerializeToString,
        response_deserializer=lambda raw: raw,
    )(observer_pb.GetFlowsRequest(follow=True, number=10))
    next(follow)  # the stream is open and answering
    threading.Thread(target=lambda: [None for _ in follow], daemon=True).start()

    watch = socket.create_connection((kube.group(1), int(kube.group(2))), timeout=STOP_DEADLINE_S)
    watch.sendall(b"GET /apis/networking.k8s.io/v1/networkpolicies?watch=1 HTTP/1.1\r\nHost: kube\r\n\r\n")
    assert watch.recv(64).startswith(b"HTTP/1.1 200"), "the watch did not start"
    return server, errors, [channel, follow, watch]


def _assert_stops(server: subprocess.Popen, errors: list[str], after: str) -> None:
    try:
        code = server.wait(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.kill(server.pid, signal.SIGABRT)  # faulthandler prints every thread's stack
        server.wait()
        time.sleep(0.5)
        pytest.fail(f"demo-server still running {STOP_DEADLINE_S:g} s after {after}:\n" + "".join(errors)[-8000:])
    deadline = time.monotonic() + 5
    while "stopped" not in "".join(errors) and time.monotonic() < deadline:
        time.sleep(0.01)
    stderr = "".join(errors)
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert "kcockpit demo-server: stopped" in stderr


def _close(server: subprocess.Popen, clients: list) -> None:
    channel, follow, watch = clients
    watch.close()
    follow.cancel()
    channel.close()
    if server.poll() is None:
        server.kill()
        server.wait()


@pytest.mark.parametrize("attempt", range(3))
def test_a_burst_of_sigints_stops_the_demo_server_with_a_follow_stream_and_a_watch_open(tmp_path, attempt: int) -> None:
    server, errors, clients = _start_with_clients(tmp_path)
    try:
        _burst(server.pid, signal.SIGINT)
        _assert_stops(server, errors, "a burst of SIGINTs")
    finally:
        _close(server, clients)


def test_sigterm_stops_the_demo_server_with_a_follow_stream_and_a_watch_open(tmp_path) -> None:
    server, errors, clients = _start_with_clients(tmp_path)
    try:
        os.kill(server.pid, signal.SIGTERM)
        _assert_stops(server, errors, "SIGTERM")
    finally:
        _close(server, clients)
