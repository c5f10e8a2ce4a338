"""What the real `hubble` CLI (v1.19) asks of a Hubble server, asked of the simulator.

The wire-level tests run everywhere. The end-to-end test runs the real binary when one is
found ($HUBBLE_BIN, /work/tools/bin/hubble, or `hubble` on PATH) and skips otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading

import grpc
import pytest
from google.protobuf import field_mask_pb2

from kcockpit.sim.clock import ManualClock
from kcockpit.sim.embedded import DemoCluster
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.server import ObserverServer
from kcockpit.sim.traffic import EMITTER, Simulator
from kcockpit.sim.world import CILIUM_VERSION, World
from kcockpit.wire.hubble_pb import flow_pb, observer_grpc, observer_pb, peer_pb
from kcockpit.wire.pb.peer import peer_pb2_grpc

SECOND = 1_000_000_000
DAY_S = 24 * 3600

# The field mask `hubble observe` sends for its compact, table and dict output when no
# --field-mask is given (hubble v1.19.4, hubble/pkg/defaults: FieldMask).
HUBBLE_CLI_DEFAULT_MASK = [
    "time",
    "verdict",
    "ethernet",
    "IP",
    "l4",
    "source.identity",
    "source.namespace",
    "source.pod_name",
    "destination.identity",
    "destination.namespace",
    "destination.pod_name",
    "Type",
    "node_name",
    "l7",
    "event_type",
    "source_service",
    "destination_service",
    "is_reply",
    "Summary",
    "ip_trace_id",
]


def _server(phase: str = "healthy", history_s: float = 60, rate: float = 300) -> tuple[ObserverServer, ManualClock]:
    """A server on a hand-driven clock whose agents started three days before `history_s` of flows."""
    clock = ManualClock()
    now_s = clock.now_ns() // SECOND
    world = World.build(2, created_s=now_s - 3 * DAY_S)
    sim = Simulator(world, seed=2, clock=clock, scenario=Scenario(clock, mode=phase), rate=rate,
                    start_ns=clock.now_ns() - int(history_s * SECOND))
    server = ObserverServer(sim, auto_pump=False)
    server.pump()
    return server, clock


@pytest.fixture(scope="module")
def served():
    server, clock = _server()
    address = server.start("127.0.0.1:0")
    channel = grpc.insecure_channel(address)
    yield server, clock, channel
    channel.close()
    server.stop()


# ---------------------------------------------------------------------------- field mask


def test_the_default_mask_of_the_hubble_cli_is_accepted_and_applied(served):
    _, _, channel = served
    stub = observer_grpc.ObserverStub(channel)
    request = observer_pb.GetFlowsRequest(number=20, field_mask=field_mask_pb2.FieldMask(paths=HUBBLE_CLI_DEFAULT_MASK))
    responses = list(stub.GetFlows(request))
    flows = [r.flow for r in responses if r.HasField("flow")]
    assert len(flows) == 20 * 4  # N per node, as through Relay
    top_level = {p for p in HUBBLE_CLI_DEFAULT_MASK if "." not in p}
    for flow in flows:
        fields = {d.name for d, _ in flow.ListFields()}
        assert fields <= top_level | {"source", "destination"}, fields - top_level
        for side in (flow.source, flow.destination):
            assert {d.name for d, _ in side.ListFields()} <= {"identity", "namespace", "pod_name"}
        assert flow.HasField("time") and flow.node_name and flow.verdict and flow.Summary
        assert not flow.uuid and not flow.emitter.version and not flow.source.labels  # left out, as asked
    assert any(f.HasField("l7") for f in flows) and any(f.HasField("is_reply") for f in flows)


def test_every_flow_field_the_cli_may_name_is_declared_with_its_number():
    fields = flow_pb.Flow.DESCRIPTOR.fields_by_name
    expected = {
        "ip_trace_id": (40, "flow.IPTraceID"), "tunnel": (39, "flow.Tunnel"), "file": (38, "flow.FileInfo"),
        "debug_capture_point": (27, "flow.DebugCapturePoint"), "trace_context": (30, "flow.TraceContext"),
        "sock_xlate_point": (31, "flow.SocketTranslationPoint"), "socket_cookie": (32, None),
        "cgroup_id": (33, None), "aggregate": (21007, "flow.Aggregate"), "extensions": (150000, "google.protobuf.Any"),
    }  # fmt: skip
    for name, (number, type_name) in expected.items():
        field = fields[name]
        assert field.number == number, name
        declared = field.message_type or field.enum_type
        assert (declared.full_name if declared else None) == type_name, name
    assert fields["socket_cookie"].type == fields["cgroup_id"].type == field.TYPE_UINT64
    trace_id = flow_pb.IPTraceID.DESCRIPTOR.fields_by_name
    assert (trace_id["trace_id"].number, trace_id["ip_option_type"].number) == (1, 2)
    filters = flow_pb.FlowFilter.DESCRIPTOR.fields_by_name
    assert (filters["ip_trace_id"].number, filters["encrypted"].number) == (39, 40)
    for mask in ([*HUBBLE_CLI_DEFAULT_MASK], list(expected)):
        assert field_mask_pb2.FieldMask(paths=mask).IsValidForDescriptor(flow_pb.Flow.DESCRIPTOR)


def test_encrypted_and_ip_trace_id_filters_are_served(served):
    _, _, channel = served
    stub = observer_grpc.ObserverStub(channel)

    def count(**fields):
        request = observer_pb.GetFlowsRequest(number=5, whitelist=[flow_pb.FlowFilter(**fields)])
        return sum(r.HasField("flow") for r in stub.GetFlows(request))

    assert count(encrypted=[False]) == 20  # the simulated cluster does not encrypt
    assert count(encrypted=[True]) == 0
    assert count(ip_trace_id=[42]) == 0
    with pytest.raises(grpc.RpcError) as error:
        list(stub.GetFlows(observer_pb.GetFlowsRequest(whitelist=[flow_pb.FlowFilter(trace_id=["a"])])))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "FlowFilter.trace_id (field 28) is not supported by kcockpit's matcher" in error.value.details()


# ---------------------------------------------------------------------------- rates, versions, peers


def test_seen_flows_over_uptime_is_the_flow_rate(served):
    server, _, channel = served
    stub = observer_grpc.ObserverStub(channel)
    status = stub.ServerStatus(observer_pb.ServerStatusRequest())
    uptime_s = status.uptime_ns / SECOND
    assert uptime_s >= 3 * DAY_S
    assert status.flows_rate > 0
    # What `hubble status` (flows_rate) and `hubble list nodes` (seen_flows / uptime) print.
    assert status.seen_flows / uptime_s == pytest.approx(status.flows_rate, rel=0.1)
    nodes = stub.GetNodes(observer_pb.GetNodesRequest()).nodes
    assert sum(n.seen_flows / (n.uptime_ns / SECOND) for n in nodes) == pytest.approx(status.flows_rate, rel=0.1)
    for node in nodes:
        ring = server._rings[node.name]
        own_rate = ring.seen / 60  # this node's share of the 60 s of history
        assert node.seen_flows / (node.uptime_ns / SECOND) == pytest.approx(own_rate, rel=0.02)


def test_seen_flows_keep_growing_with_the_history(served):
    server, clock, channel = served
    stub = observer_grpc.ObserverStub(channel)
    before = stub.ServerStatus(observer_pb.ServerStatusRequest()).seen_flows
    clock.advance(2)
    pumped = server.pump()
    after = stub.ServerStatus(observer_pb.ServerStatusRequest()).seen_flows
    assert after - before == pumped > 0


def test_versions_are_the_cilium_release_of_the_protos(served):
    _, _, channel = served
    assert CILIUM_VERSION.startswith("1.19.")
    assert EMITTER.version.startswith(CILIUM_VERSION + "+g")
    stub = observer_grpc.ObserverStub(channel)
    assert stub.ServerStatus(observer_pb.ServerStatusRequest()).version == EMITTER.version
    assert {n.version for n in stub.GetNodes(observer_pb.GetNodesRequest()).nodes} == {EMITTER.version}
    flows = [r.flow for r in stub.GetFlows(observer_pb.GetFlowsRequest(number=1)) if r.HasField("flow")]
    assert {f.emitter.version for f in flows} == {EMITTER.version}
    images = {c.image for pod in World.build(1).pods for c in pod.containers if "cilium" in c.image}
    assert images and all(image.endswith(f":v{CILIUM_VERSION}") for image in images)


def test_the_peer_service_announces_every_node_and_stays_open(served):
    server, _, channel = served
    stub = peer_pb2_grpc.PeerStub(channel)
    call = stub.Notify(peer_pb.NotifyRequest())
    got: list[peer_pb.ChangeNotification] = []
    finished = threading.Event()

    def read():
        try:
            for change in call:
                got.append(change)
        except grpc.RpcError:
            pass
        finished.set()

    threading.Thread(target=read, daemon=True).start()
    nodes = observer_grpc.ObserverStub(channel).GetNodes(observer_pb.GetNodesRequest()).nodes
    deadline = threading.Event()
    for _ in range(50):
        if len(got) >= len(nodes):
            break
        deadline.wait(0.05)
    assert not finished.is_set()  # still streaming: a peer service never ends the stream itself
    call.cancel()
    assert finished.wait(3)
    assert [c.type for c in got] == [peer_pb.PEER_ADDED] * 4
    assert {(c.name, c.address, c.tls.server_name) for c in got} == {
        (n.name, n.address, n.tls.server_name) for n in nodes
    }


# ---------------------------------------------------------------------------- the real binary


def _hubble_binary() -> str | None:
    for candidate in (os.environ.get("HUBBLE_BIN"), "/work/tools/bin/hubble", shutil.which("hubble")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


HUBBLE = _hubble_binary()


@pytest.fixture(scope="module")
def demo_address():
    cluster = DemoCluster(seed=1, backfill_s=30)
    address = cluster.start("127.0.0.1:0")
    yield address
    cluster.stop()


def _hubble(address: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    assert HUBBLE is not None
    return subprocess.run([HUBBLE, *args, "--server", address], capture_output=True, text=True, timeout=timeout)


def _first_lines(address: str, *args: str, count: int, timeout: float = 20) -> tuple[list[str], str]:
    """The first `count` lines a streaming command prints (fewer if it ends or times out), and its stderr."""
    process = subprocess.Popen([HUBBLE, *args, "--server", address], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            if len(lines) >= count:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    process.kill()
    _, stderr = process.communicate(timeout=10)
    return lines[:count], stderr


@pytest.mark.skipif(HUBBLE is None, reason="no hubble binary ($HUBBLE_BIN, /work/tools/bin/hubble or hubble on PATH)")
@pytest.mark.parametrize("output", [None, "compact", "table", "dict", "jsonpb"])
def test_the_real_hubble_cli_observes_the_simulator(demo_address, output):
    args = ["observe", "--last", "20"] + (["-o", output] if output else [])
    result = _hubble(demo_address, *args)
    assert result.returncode == 0, result.stderr
    assert "invalid field mask" not in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if output == "jsonpb":
        documents = [json.loads(line) for line in lines]
        assert len([d for d in documents if "flow" in d]) == 20 * 4
        assert {d["flow"]["emitter"]["version"] for d in documents if "flow" in d} == {EMITTER.version}
    elif output == "dict":
        assert sum(line.strip().startswith("VERDICT:") for line in lines) == 20 * 4
    elif output == "table":
        assert lines[0].split()[:3] == ["TIMESTAMP", "SOURCE", "DESTINATION"] and len(lines) == 1 + 20 * 4
    else:
        assert len(lines) == 20 * 4
        assert all(re.match(r"[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d\.\d{3}: ", line) for line in lines), lines


@pytest.mark.skipif(HUBBLE is None, reason="no hubble binary ($HUBBLE_BIN, /work/tools/bin/hubble or hubble on PATH)")
def test_the_real_hubble_cli_status_nodes_peers_and_filters(demo_address):
    status = _hubble(demo_address, "status")
    assert status.returncode == 0, status.stderr
    assert "Connected Nodes: 4/4" in status.stdout
    rate = float(next(line for line in status.stdout.splitlines() if line.startswith("Flows/s:")).split()[1])
    nodes = _hubble(demo_address, "list", "nodes")
    assert nodes.returncode == 0, nodes.stderr
    rows = nodes.stdout.splitlines()[1:]
    assert len(rows) == 4 and all(" Connected " in row for row in rows)
    per_node = sum(float(row.split()[3]) for row in rows)  # NAME STATUS AGE FLOWS/S ...
    assert per_node == pytest.approx(rate, rel=0.25)
    encrypted = _hubble(demo_address, "observe", "--last", "5", "--encrypted")
    assert encrypted.returncode == 0 and encrypted.stdout == "", encrypted.stderr
    unencrypted = _hubble(demo_address, "observe", "--last", "5", "--unencrypted")
    assert unencrypted.returncode == 0, unencrypted.stderr
    assert len(unencrypted.stdout.splitlines()) == 5 * 4
    traced = _hubble(demo_address, "observe", "--last", "5", "--ip-trace-id", "42")
    assert traced.returncode == 0 and traced.stdout == "", traced.stderr
    # `watch peers` streams until stopped: read the four announcements, then stop it.
    peers, stderr = _first_lines(demo_address, "watch", "peers", count=4)
    assert len(peers) == 4, stderr
    assert all(line.startswith("PEER_ADDED") and ":4244" in line for line in peers), peers


@pytest.mark.skipif(HUBBLE is None, reason="no hubble binary ($HUBBLE_BIN, /work/tools/bin/hubble or hubble on PATH)")
def test_the_real_hubble_cli_follows(demo_address):
    lines, stderr = _first_lines(demo_address, "observe", "--follow", count=5)
    assert len(lines) == 5 and all(line.strip() for line in lines), stderr
