"""Hand-made Hubble flows for tests that count: each call spells out one event as Cilium
would report it, so a test can say what it expects without running the code under test."""

from __future__ import annotations

from dataclasses import dataclass

from kcockpit.wire.hubble_pb import GetFlowsResponse, flow_pb

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, in seconds


@dataclass(frozen=True)
class Pod:
    namespace: str
    pod: str
    workload: str
    ip: str
    identity: int = 10_000
    labels: tuple[str, ...] = ()

    def endpoint(self) -> flow_pb.Endpoint:
        return flow_pb.Endpoint(
            namespace=self.namespace, pod_name=self.pod, identity=self.identity,
            labels=list(self.labels) or [f"k8s:app={self.workload}", f"k8s:io.kubernetes.pod.namespace={self.namespace}"],
            workloads=[flow_pb.Workload(name=self.workload, kind="Deployment")] if self.workload else [],
        )


@dataclass(frozen=True)
class Reserved:
    identity: int
    ip: str
    names: tuple[str, ...] = ()

    def endpoint(self) -> flow_pb.Endpoint:
        return flow_pb.Endpoint(identity=self.identity, labels=["reserved:world"] if self.identity == 2 else [])


FRONTEND = Pod("otel-demo", "frontend-7d9f-abcde", "frontend", "10.244.1.10", 11_001)
FRONTEND_2 = Pod("otel-demo", "frontend-7d9f-fghij", "frontend", "10.244.2.11", 11_001)
LOADGEN = Pod("otel-demo", "loadgenerator-5c-xyz12", "loadgenerator", "10.244.1.20", 11_002)
CART = Pod("otel-demo", "cartservice-6b-qwert", "cartservice", "10.244.2.30", 11_003)
COREDNS = Pod("kube-system", "coredns-5d78-pqrst", "coredns", "10.244.0.5", 11_100,
              ("k8s:k8s-app=kube-dns", "k8s:io.kubernetes.pod.namespace=kube-system"))
STRIPE = Reserved(2, "203.0.113.7", ("api.stripe.com",))
HOST = Reserved(1, "192.168.0.10")


def policy(namespace: str, name: str) -> flow_pb.Policy:
    return flow_pb.Policy(namespace=namespace, name=name, kind="NetworkPolicy")


def flow(
    at_s: float,
    src,
    dst,
    *,
    sport: int = 40000,
    dport: int = 80,
    proto: str = "TCP",
    verdict: str = "FORWARDED",
    drop_reason: int = 0,
    event: int = 4,
    direction: str = "egress",
    reply: bool | None = False,
    node: str = "node-1",
    l7: flow_pb.Layer7 | None = None,
    allowed_by=(),
    denied_by=(),
    uuid: str = "",
) -> GetFlowsResponse:
    """One GetFlowsResponse. `event` is event_type.type (1 drop, 4 trace, 5 policy verdict,
    129 L7); `allowed_by`/`denied_by` go to the side named by `direction`."""
    f = flow_pb.Flow(
        uuid=uuid, verdict=flow_pb.Verdict.Value(verdict), node_name=node,
        Type=flow_pb.L7 if l7 is not None else flow_pb.L3_L4,
        source=src.endpoint(), destination=dst.endpoint(),
        IP=flow_pb.IP(source=src.ip, destination=dst.ip, ipVersion=flow_pb.IPv4),
        traffic_direction=flow_pb.TrafficDirection.Value(direction.upper()),
        event_type=flow_pb.CiliumEventType(type=event),
    )
    if drop_reason:
        f.drop_reason_desc = drop_reason
    if reply is not None:
        f.is_reply.value = reply
    if isinstance(src, Reserved) and src.names:
        f.source_names.extend(src.names)
    if isinstance(dst, Reserved) and dst.names:
        f.destination_names.extend(dst.names)
    layer = flow_pb.TCP(source_port=sport, destination_port=dport) if proto == "TCP" else flow_pb.UDP(source_port=sport, destination_port=dport)
    getattr(f.l4, proto).CopyFrom(layer)
    if l7 is not None:
        f.l7.CopyFrom(l7)
    side = "ingress" if direction == "ingress" else "egress"
    getattr(f, f"{side}_allowed_by").extend(allowed_by)
    getattr(f, f"{side}_denied_by").extend(denied_by)
    time_ns = int(round((T0 + at_s) * 1e9))
    f.time.FromNanoseconds(time_ns)
    return GetFlowsResponse(flow=f, node_name=node, time=f.time)


def http_request(method: str = "GET", url: str = "/") -> flow_pb.Layer7:
    return flow_pb.Layer7(type=flow_pb.REQUEST, http=flow_pb.HTTP(method=method, url=url))


def http_response(code: int, latency_ms: float, method: str = "GET", url: str = "/") -> flow_pb.Layer7:
    return flow_pb.Layer7(type=flow_pb.RESPONSE, latency_ns=int(latency_ms * 1e6),
                          http=flow_pb.HTTP(code=code, method=method, url=url))


def dns_request(query: str, qtype: str = "A") -> flow_pb.Layer7:
    return flow_pb.Layer7(type=flow_pb.REQUEST, dns=flow_pb.DNS(query=query, qtypes=[qtype]))


def dns_response(query: str, rcode: int = 0, latency_ms: float = 1.0, qtype: str = "A") -> flow_pb.Layer7:
    return flow_pb.Layer7(type=flow_pb.RESPONSE, latency_ns=int(latency_ms * 1e6),
                          dns=flow_pb.DNS(query=query, qtypes=[qtype], rcode=rcode))


def raw(*responses: GetFlowsResponse) -> list[bytes]:
    return [r.SerializeToString() for r in responses]
