"""Shared pieces for the UI tests: deterministic flows, an offline session, a fixed clock,
`wait_until` for pilot tests, the capture-backed app (`capture`, `make_app`) and the
demo-backed app (`demo_app`, `status_text`)."""

from __future__ import annotations

from datetime import timezone

from pathlib import Path

import pytest

from kcockpit.application.session import CaptureSession, DemoSession
from kcockpit.application.status import status_parts
from kcockpit.model.record import FlowRecord
from kcockpit.model.store import FlowStore
from kcockpit.sim.embedded import DemoCluster
from kcockpit.sources.capture import write_capture
from kcockpit.ui.app import CockpitApp
from kcockpit.ui.tabs.flows import FlowsTab
from kcockpit.ui.widgets.status_bar import StatusBar
from kcockpit.wire.hubble_pb import flow_pb

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def _endpoint(namespace: str, pod: str, workload: str, identity: int, app: str = ""):
    labels = [f"k8s:app={app or workload}", f"k8s:io.kubernetes.pod.namespace={namespace}"] if namespace else []
    endpoint = flow_pb.Endpoint(namespace=namespace, pod_name=pod, identity=identity, labels=labels)
    if workload:
        endpoint.workloads.add(name=workload, kind="Deployment")
    return endpoint


FRONTEND = ("otel-demo", "frontend-6d9c7b8f5-x2x9q", "frontend", 21845)
CART = ("otel-demo", "cartservice-7f6b9d5c4-m8k2p", "cartservice", 40112)
COREDNS = ("kube-system", "coredns-5d78c9869d-7wq4z", "coredns", 10452)
LOADGEN = ("otel-demo", "loadgenerator-84f8d6c9b7-2l9xv", "loadgenerator", 33218)


def make_flow(
    index: int,
    source=FRONTEND,
    destination=CART,
    *,
    verdict: int = flow_pb.FORWARDED,
    drop_reason: int = 0,
    udp: bool = False,
    port: int = 7070,
    flags: tuple[str, ...] = ("ACK", "PSH"),
    dns: tuple[str, int, int] | None = None,  # (query, l7 type, rcode)
    http: tuple[str, str, int, int] | None = None,  # (method, url, code, l7 type)
    direction: int = flow_pb.EGRESS,
    reply: bool | None = None,  # set is_reply; a reply comes from `port` to an ephemeral port
) -> FlowRecord:
    flow = flow_pb.Flow(
        verdict=verdict,
        drop_reason_desc=drop_reason,
        node_name=f"kind-worker{index % 3 + 1}" if index % 4 else "kind-control-plane",
        traffic_direction=direction,
        uuid=f"00000000-0000-4000-8000-{index:012d}",
        source=_endpoint(*source),
        destination=_endpoint(*destination),
        Type=flow_pb.L3_L4,
    )
    flow.time.FromNanoseconds(T0 + index * 37_000_000)
    flow.IP.source = f"10.244.1.{10 + index % 50}"
    flow.IP.destination = f"10.244.2.{20 + index % 40}"
    flow.IP.ipVersion = flow_pb.IPv4
    ports = (port, 40000 + index) if reply else (40000 + index, port)
    if reply is not None:
        flow.is_reply.value = reply
    if udp:
        flow.l4.UDP.source_port, flow.l4.UDP.destination_port = ports
    else:
        flow.l4.TCP.source_port, flow.l4.TCP.destination_port = ports
        for name in flags:
            setattr(flow.l4.TCP.flags, name, True)
    if verdict == flow_pb.DROPPED:
        flow.event_type.type = 1
        flow.event_type.sub_type = drop_reason
        flow.egress_denied_by.add(name="frontend-egress-allow-to-backend", namespace="otel-demo", kind="NetworkPolicy")
        flow.Summary = f"{flow_pb.DropReason.Name(drop_reason)}"
    else:
        flow.event_type.type = 4
        flow.trace_observation_point = flow_pb.TO_ENDPOINT
        flow.Summary = "TCP Flags: " + ", ".join(flags) if not udp else "UDP"
    if dns is not None:
        query, l7_type, rcode = dns
        flow.Type = flow_pb.L7
        flow.event_type.type = 129
        flow.l7.type = l7_type
        flow.l7.dns.query = query
        flow.l7.dns.qtypes.append("A")
        flow.l7.dns.observation_source = "proxy"
        if l7_type == flow_pb.RESPONSE:
            flow.l7.dns.rcode = rcode
            flow.l7.latency_ns = 1_200_000
            if rcode == 0:
                flow.l7.dns.ips.append("10.96.4.20")
                flow.l7.dns.ttl = 30
    if http is not None:
        method, url, code, l7_type = http
        flow.Type = flow_pb.L7
        flow.event_type.type = 129
        flow.l7.type = l7_type
        flow.l7.http.method = method
        flow.l7.http.url = url
        flow.l7.http.protocol = "HTTP/1.1"
        if l7_type == flow_pb.RESPONSE:
            flow.l7.http.code = code
            flow.l7.latency_ns = 12_000_000
    return FlowRecord.from_flow(flow)


def scenario_records(count: int = 120) -> list[FlowRecord]:
    """A fixed mix: HTTP request and response (full URLs, as Hubble sends them), DNS query
    and NXDOMAIN answer, a policy drop, a TCP SYN. Answers are replies (is_reply) from
    the server's port."""
    records: list[FlowRecord] = []
    for i in range(count):
        kind = i % 6
        if kind == 0:
            records.append(make_flow(i, LOADGEN, FRONTEND, port=8080, reply=False, http=("GET", "http://frontend:8080/api/products/66VCHSJNUP", 0, flow_pb.REQUEST)))
        elif kind == 1:
            records.append(make_flow(i, FRONTEND, COREDNS, udp=True, port=53, reply=False, dns=("cartservice.otel-demo.svc.cluster.local.", flow_pb.REQUEST, 0)))
        elif kind == 2:
            records.append(make_flow(i, COREDNS, FRONTEND, udp=True, port=53, reply=True, dns=("cartservice.otel-demo.otel-demo.svc.cluster.local.", flow_pb.RESPONSE, 3), direction=flow_pb.INGRESS))
        elif kind == 3:
            records.append(make_flow(i, FRONTEND, COREDNS, udp=True, port=53, verdict=flow_pb.DROPPED, drop_reason=flow_pb.POLICY_DENIED, flags=()))
        elif kind == 4:
            records.append(make_flow(i, FRONTEND, CART, reply=False, flags=("SYN",)))
        else:
            records.append(make_flow(i, FRONTEND, LOADGEN, port=8080, reply=True, http=("POST", "http://frontend:8080/api/checkout", 503, flow_pb.RESPONSE)))
    return records


def filled_store(count: int = 120, capacity: int = 10_000) -> FlowStore:
    store = FlowStore(capacity)
    store.extend(scenario_records(count))
    return store


class FixedClock:
    """A monotonic clock for the rate meter that only moves when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


UTC = timezone.utc


def flows(app) -> FlowsTab:
    """The Flows tab of a running CockpitApp: its table, filter bar and filter state."""
    return app.tab(FlowsTab)


# --- pilot tests ---------------------------------------------------------------------

async def wait_until(predicate, pilot, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached in time")


# --- the app on a fixed capture (the real CaptureSession) -------------------------------

class RecordingCaptureSession(CaptureSession):
    """A capture session that remembers the filters the app asked the source for."""

    def __init__(self, path: str, store: FlowStore) -> None:
        super().__init__(path, store)
        self.requested: list[tuple[tuple, tuple]] = []

    def apply_filter(self, whitelist, blacklist) -> None:
        self.requested.append((tuple(whitelist), tuple(blacklist)))


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "flows.json"
    write_capture(scenario_records(120), path)
    return path


def make_app(capture: Path, tmp_path: Path, **options) -> CockpitApp:
    session = RecordingCaptureSession(str(capture), FlowStore(10_000))
    return CockpitApp(session, zone=UTC, clock=FixedClock(), export_dir=tmp_path, **options)


# --- the app on the embedded demo --------------------------------------------------------

def demo_app(tmp_path: Path, cluster: DemoCluster, *, start_prometheus: bool = False, **session_options) -> CockpitApp:
    session = DemoSession(cluster, FlowStore(50_000), services=True, start_prometheus=start_prometheus, **session_options)
    return CockpitApp(session, zone=UTC, export_dir=tmp_path)


def status_text(app: CockpitApp) -> str:
    bar = app.screen.query_one(StatusBar)
    return " │ ".join(p.text for p in status_parts(bar.info)) if bar.info else ""
