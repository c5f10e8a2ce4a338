"""The simulated Hubble Relay over a real loopback gRPC connection (no mocks)."""

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kcockpit.cli import main
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
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "tui")}
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
    assert "scenario: healthy 60s -> broken 60s -> fixed 60s, looping" in out
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
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "tui")}
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
