"""Hand-built Hubble flows for the metrics exporter and RED tests (sim/test_metrics.py, model/test_red.py)."""

from __future__ import annotations

from kcockpit.wire.hubble_pb import GetFlowsResponse, flow_pb

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


# ---------------------------------------------------------------------------- flow builders


def endpoint(namespace: str, workload: str, *labels: str) -> flow_pb.Endpoint:
    return flow_pb.Endpoint(
        namespace=namespace,
        pod_name=f"{workload}-7d9f8-abcde" if workload else "",
        labels=[f"k8s:app={workload}", *labels] if workload else ["reserved:world"],
        workloads=[flow_pb.Workload(name=workload, kind="Deployment")] if workload else [],
        identity=2 if not workload else 1000 + len(workload),
    )


LOADGEN = endpoint("otel-demo", "loadgenerator")
FRONTEND = endpoint("otel-demo", "frontend")
CART = endpoint("otel-demo", "cartservice")
COREDNS = endpoint("kube-system", "coredns", "k8s:k8s-app=kube-dns")
WORLD = endpoint("", "")


def _response(flow: flow_pb.Flow, t: float) -> GetFlowsResponse:
    flow.time.FromNanoseconds(int(round(t * 1e9)))
    flow.node_name = "kind-kind/kind-worker"
    return GetFlowsResponse(flow=flow, node_name=flow.node_name, time=flow.time)


def _l7_flow(t: float, src, dst, l7: flow_pb.Layer7, l4: flow_pb.Layer4, direction: int, verdict: int = flow_pb.FORWARDED):
    flow = flow_pb.Flow(
        verdict=verdict,
        drop_reason_desc=flow_pb.POLICY_DENIED if verdict == flow_pb.DROPPED else 0,
        Type=flow_pb.L7,
        event_type=flow_pb.CiliumEventType(type=129),
        traffic_direction=direction,
        source=src,
        destination=dst,
        l4=l4,
        l7=l7,
    )
    flow.is_reply.value = l7.type == flow_pb.RESPONSE
    return _response(flow, t)


def _tcp(source_port: int, destination_port: int) -> flow_pb.Layer4:
    return flow_pb.Layer4(TCP=flow_pb.TCP(source_port=source_port, destination_port=destination_port))


def _udp(source_port: int, destination_port: int) -> flow_pb.Layer4:
    return flow_pb.Layer4(UDP=flow_pb.UDP(source_port=source_port, destination_port=destination_port))


def http_response(t: float, client, server, code: int, latency_s: float, method: str = "GET") -> GetFlowsResponse:
    """The L7 response flow Hubble emits for a request client -> server, seen at the server (ingress)."""
    http = flow_pb.HTTP(code=code, method=method, url="http://frontend:8080/api", protocol="HTTP/1.1")
    l7 = flow_pb.Layer7(type=flow_pb.RESPONSE, latency_ns=int(round(latency_s * 1e9)), http=http)
    return _l7_flow(t, server, client, l7, _tcp(8080, 40000), flow_pb.INGRESS)


def http_request(t: float, client, server) -> GetFlowsResponse:
    l7 = flow_pb.Layer7(type=flow_pb.REQUEST, http=flow_pb.HTTP(method="GET", url="/", protocol="HTTP/1.1"))
    return _l7_flow(t, client, server, l7, _tcp(40000, 8080), flow_pb.INGRESS)


def dns_query(t: float, client, query: str, qtype: str = "A", verdict: int = flow_pb.FORWARDED) -> GetFlowsResponse:
    l7 = flow_pb.Layer7(type=flow_pb.REQUEST, dns=flow_pb.DNS(query=query, qtypes=[qtype]))
    return _l7_flow(t, client, COREDNS, l7, _udp(53000, 53), flow_pb.EGRESS, verdict)


def dns_answer(t: float, client, query: str, rcode: int, ips: tuple[str, ...] = (), latency_s: float = 0.001) -> GetFlowsResponse:
    dns = flow_pb.DNS(query=query, qtypes=["A"], rcode=rcode, ips=list(ips), rrtypes=["A"] * len(ips))
    l7 = flow_pb.Layer7(type=flow_pb.RESPONSE, latency_ns=int(round(latency_s * 1e9)), dns=dns)
    return _l7_flow(t, COREDNS, client, l7, _udp(53, 53000), flow_pb.EGRESS)


def dropped_packet(t: float, src, dst, port: int, protocol: str = "UDP") -> GetFlowsResponse:
    """An L3/L4 packet dropped by policy (no proxy saw it)."""
    l4 = flow_pb.Layer4(UDP=flow_pb.UDP(source_port=53001, destination_port=port)) if protocol == "UDP" else flow_pb.Layer4(
        TCP=flow_pb.TCP(source_port=40001, destination_port=port, flags=flow_pb.TCPFlags(SYN=True))
    )
    flow = flow_pb.Flow(
        verdict=flow_pb.DROPPED,
        drop_reason_desc=flow_pb.POLICY_DENIED,
        Type=flow_pb.L3_L4,
        event_type=flow_pb.CiliumEventType(type=1, sub_type=133),
        traffic_direction=flow_pb.EGRESS,
        source=src,
        destination=dst,
        l4=l4,
    )
    flow.is_reply.value = False
    return _response(flow, t)


def tcp_packet(t: float, src, dst, **flags: bool) -> GetFlowsResponse:
    flow = flow_pb.Flow(
        verdict=flow_pb.FORWARDED,
        Type=flow_pb.L3_L4,
        event_type=flow_pb.CiliumEventType(type=4),
        trace_observation_point=flow_pb.TO_ENDPOINT,
        source=src,
        destination=dst,
        IP=flow_pb.IP(source="10.244.1.5", destination="10.244.2.7", ipVersion=flow_pb.IPv4),
        l4=flow_pb.Layer4(TCP=flow_pb.TCP(source_port=40000, destination_port=8080, flags=flow_pb.TCPFlags(**flags))),
    )
    return _response(flow, t)


def policy_verdict(t: float, src, dst, verdict: int, match_type: int) -> GetFlowsResponse:
    flow = flow_pb.Flow(
        verdict=verdict,
        Type=flow_pb.L3_L4,
        event_type=flow_pb.CiliumEventType(type=5),
        traffic_direction=flow_pb.EGRESS,
        policy_match_type=match_type,
        source=src,
        destination=dst,
        l4=flow_pb.Layer4(TCP=flow_pb.TCP(source_port=40000, destination_port=8080)),
    )
    return _response(flow, t)


def lost_events(count: int) -> GetFlowsResponse:
    return GetFlowsResponse(
        lost_events=flow_pb.LostEvent(source=flow_pb.HUBBLE_RING_BUFFER, num_events_lost=count)
    )
