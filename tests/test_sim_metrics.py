"""The simulator's metrics exporter: hand-built flows in, exact Prometheus text out.

The flow builders here (`http_response`, `dns_query`, ...) are also used by test_red.py.
"""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request

import pytest
from test_prometheus_runner import require_binary

from kcockpit.sim.clock import ManualClock
from kcockpit.sim.metrics import MetricsExporter, start_metrics_server
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.traffic import Simulator
from kcockpit.sim.world import World
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


# ---------------------------------------------------------------------------- text parsing

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_text(text: str) -> dict[tuple[str, frozenset], float]:
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"malformed sample line {line!r}"
        labels = frozenset((k, v) for k, v in _LABEL.findall(match.group(2) or "") if v != "")
        samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def value(samples, name: str, **labels: str) -> float:
    """The sum of every sample of `name` whose labels include `labels`."""
    wanted = {(k, v) for k, v in labels.items()}
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert found, f"no sample {name}{labels}"
    return sum(found)


CTX_FRONTEND = dict(destination_namespace="otel-demo", destination_workload="frontend")


@pytest.fixture
def scenario_text() -> str:
    """A small broken-phase scene: HTTP to frontend with one 503, DNS answered and denied, TCP, policy, losses."""
    exporter = MetricsExporter()
    flows = [
        http_request(T0, LOADGEN, FRONTEND),
        http_response(T0 + 0.1, LOADGEN, FRONTEND, 200, 0.02),
        http_response(T0 + 0.2, LOADGEN, FRONTEND, 200, 0.3),
        http_response(T0 + 0.3, LOADGEN, FRONTEND, 503, 0.005),  # exactly on a bucket bound: counted in le=0.005
        dns_query(T0 + 1, CART, "redis.otel-demo.svc.cluster.local."),
        dns_answer(T0 + 1.001, CART, "redis.otel-demo.svc.cluster.local.", 0, ("10.96.0.20",), latency_s=0.0007),
        dns_query(T0 + 2, CART, "redis.otel-demo.svc.cluster.local."),
        dns_answer(T0 + 2.001, CART, "redis.otel-demo.svc.cluster.local.", 0, ("10.96.0.20",), latency_s=0.0003),
        dns_query(T0 + 3, CART, "api.example.com."),
        dns_answer(T0 + 3.02, CART, "api.example.com.", 2, latency_s=0.02),
        dns_query(T0 + 4, FRONTEND, "cartservice.otel-demo.svc.cluster.local.", verdict=flow_pb.DROPPED),
        dropped_packet(T0 + 4.5, FRONTEND, COREDNS, 53),
        dropped_packet(T0 + 4.6, FRONTEND, COREDNS, 53, protocol="TCP"),
        tcp_packet(T0 + 5, LOADGEN, FRONTEND, SYN=True),
        tcp_packet(T0 + 5.1, FRONTEND, LOADGEN, SYN=True, ACK=True),
        tcp_packet(T0 + 5.2, LOADGEN, FRONTEND, FIN=True, ACK=True),
        policy_verdict(T0 + 6, FRONTEND, COREDNS, flow_pb.DROPPED, 0),
        policy_verdict(T0 + 6, FRONTEND, CART, flow_pb.FORWARDED, 2),
        lost_events(7),
        GetFlowsResponse(node_status={"message": "ignored"}),
    ]
    for response in flows:
        exporter.observe(response)
    return exporter.render()


def test_http_metrics_count_responses_with_request_direction_labels(scenario_text):
    s = parse_text(scenario_text)
    ctx = dict(source_workload="loadgenerator", **CTX_FRONTEND)
    assert value(s, "hubble_http_requests_total", status="200", reporter="server", method="GET", **ctx) == 2
    assert value(s, "hubble_http_requests_total", status="503", **ctx) == 1
    assert value(s, "hubble_http_request_duration_seconds_count", **ctx) == 3
    assert value(s, "hubble_http_request_duration_seconds_sum", **ctx) == pytest.approx(0.325)
    assert value(s, "hubble_http_request_duration_seconds_bucket", le="0.005", **ctx) == 1
    assert value(s, "hubble_http_request_duration_seconds_bucket", le="0.025", **ctx) == 2
    assert value(s, "hubble_http_request_duration_seconds_bucket", le="0.25", **ctx) == 2
    assert value(s, "hubble_http_request_duration_seconds_bucket", le="0.5", **ctx) == 3
    assert value(s, "hubble_http_request_duration_seconds_bucket", le="+Inf", **ctx) == 3


def test_dns_metrics_use_word_rcodes_and_count_policy_denied_queries(scenario_text):
    s = parse_text(scenario_text)
    frontend = dict(source_namespace="otel-demo", source_workload="frontend")
    cart = dict(source_namespace="otel-demo", source_workload="cartservice")
    # The L7-dropped query, the dropped UDP packet and the dropped TCP SYN to port 53: three denied queries.
    assert value(s, "hubble_dns_queries_total", rcode="Policy denied", **frontend) == 3
    assert value(s, "hubble_dns_queries_total", **cart) == 3
    assert value(s, "hubble_dns_responses_total", rcode="No Error", ips_returned="1", destination_workload="cartservice") == 2
    assert value(s, "hubble_dns_responses_total", rcode="Server Failure", destination_workload="cartservice") == 1
    assert value(s, "hubble_dns_response_types_total", type="A") == 2
    assert not any(n == "hubble_dns_responses_total" and ("destination_workload", "frontend") in ls for n, ls in s)


def test_drops_tcp_flags_policy_verdicts_and_lost_events(scenario_text):
    s = parse_text(scenario_text)
    assert value(s, "hubble_drop_total", reason="POLICY_DENIED", source_workload="frontend") == 3
    assert value(s, "hubble_drop_total", reason="POLICY_DENIED", protocol="UDP") == 2  # the L7 DNS drop and the packet
    assert value(s, "hubble_drop_total", reason="POLICY_DENIED", protocol="TCP") == 1
    assert value(s, "hubble_tcp_flags_total", flag="SYN", family="IPv4", source_workload="loadgenerator") == 1
    assert value(s, "hubble_tcp_flags_total", flag="SYN-ACK", destination_workload="loadgenerator") == 1
    assert value(s, "hubble_tcp_flags_total", flag="FIN") == 1
    assert value(s, "hubble_policy_verdicts_total", direction="egress", match="none", action="dropped") == 1
    assert value(s, "hubble_policy_verdicts_total", match="l3-l4", action="forwarded") == 1
    assert value(s, "hubble_policy_verdicts_total", match="l7/http", action="forwarded") == 1
    assert value(s, "hubble_lost_events_total", source="hubble_ring_buffer") == 7
    assert value(s, "hubble_flows_processed_total", type="L7", subtype="DNS") == 7
    assert value(s, "hubble_flows_processed_total", type="Drop", verdict="DROPPED") == 2
    assert value(s, "hubble_flows_processed_total", type="Trace", subtype="to-endpoint") == 3
    assert value(s, "hubble_flows_processed_total", type="PolicyVerdict") == 2


def test_coredns_metrics_follow_the_dns_flows_it_answered(scenario_text):
    s = parse_text(scenario_text)
    assert value(s, "coredns_dns_requests_total", type="A", proto="udp") == 3  # denied queries never reach it
    assert value(s, "coredns_dns_responses_total", rcode="NOERROR") == 2
    assert value(s, "coredns_dns_responses_total", rcode="SERVFAIL", plugin="forward") == 1
    assert value(s, "coredns_dns_responses_total", rcode="NOERROR", plugin="cache") == 1
    assert value(s, "coredns_cache_hits_total", type="success") == 1  # the second redis lookup within the TTL
    assert value(s, "coredns_cache_misses_total") == 2
    assert value(s, "coredns_proxy_request_duration_seconds_count", to="172.18.0.1:53", rcode="SERVFAIL") == 1
    assert value(s, "coredns_dns_request_duration_seconds_count") == 3
    assert value(s, "coredns_dns_request_duration_seconds_bucket", le="0.0005") == 1
    assert value(s, "coredns_dns_request_duration_seconds_bucket", le="0.001") == 2
    assert value(s, "coredns_build_info", version="1.11.3") == 1


def test_label_values_are_escaped():
    exporter = MetricsExporter()
    odd = endpoint('we"ird\\ns', "frontend")
    exporter.observe(http_response(T0, odd, FRONTEND, 200, 0.01))
    text = exporter.render()
    assert 'source_namespace="we\\"ird\\\\ns"' in text
    assert ("source_namespace", 'we\\"ird\\\\ns') in next(
        ls for (n, ls) in parse_text(text) if n == "hubble_http_requests_total"
    )


def test_promtool_finds_the_exposition_clean(scenario_text):
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=scenario_text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_metrics_server_serves_the_text_format_and_404s_elsewhere():
    exporter = MetricsExporter()
    exporter.observe(http_response(T0, LOADGEN, FRONTEND, 200, 0.01))
    server = start_metrics_server(exporter, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(server.url, timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            body = response.read().decode()
        assert body == exporter.render()
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(server.url.replace("/metrics", "/other"), timeout=5)
        assert error.value.code == 404
    finally:
        server.stop()


# ---------------------------------------------------------------------------- with the simulator


def simulated_exporter(seed: int = 1, flows: int = 3000, step_ns: int = 10_000_000, **scenario) -> MetricsExporter:
    """An exporter that has seen `flows` flows of a seeded simulator on a hand-driven clock."""
    clock = ManualClock()
    simulator = Simulator(World.build(seed), seed=seed, clock=clock, scenario=Scenario(clock, **scenario))
    exporter = MetricsExporter()
    simulator.add_listener(exporter.observe)
    simulator.take(flows, step_ns=step_ns)
    return exporter


def simulated_metrics(phase: str) -> dict:
    return parse_text(simulated_exporter(mode=phase).render())


def total(samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


FRONTEND_SOURCE = dict(source_namespace="otel-demo", source_workload="frontend")


@pytest.mark.parametrize("phase", ["healthy", "fixed"])
def test_simulated_healthy_phases_answer_every_dns_query(phase):
    s = simulated_metrics(phase)
    assert total(s, "hubble_dns_queries_total", rcode="Policy denied") == 0
    assert total(s, "hubble_drop_total", reason="POLICY_DENIED", **FRONTEND_SOURCE) == 0
    assert total(s, "hubble_http_requests_total", **CTX_FRONTEND) > 0
    assert total(s, "hubble_http_requests_total", status="500", **CTX_FRONTEND) == 0
    # One set of flows, two views: Hubble's DNS counts and CoreDNS's agree.
    queries = total(s, "hubble_dns_queries_total", destination_workload="coredns")
    answers = total(s, "hubble_dns_responses_total", source_workload="coredns")
    assert queries > 0
    assert total(s, "coredns_dns_requests_total") == queries
    assert total(s, "coredns_dns_responses_total") == answers
    assert total(s, "coredns_cache_hits_total") + total(s, "coredns_cache_misses_total") == answers
    assert queries - answers <= 4  # only lookups still in flight when the sample ends


def test_simulated_broken_phase_drops_frontend_dns_and_fails_its_callers():
    s = simulated_metrics("broken")
    denied_queries = total(s, "hubble_dns_queries_total", rcode="Policy denied", **FRONTEND_SOURCE)
    dropped = total(s, "hubble_drop_total", reason="POLICY_DENIED", destination_workload="coredns", **FRONTEND_SOURCE)
    assert denied_queries > 0 and denied_queries == dropped
    assert total(s, "hubble_dns_responses_total", destination_workload="frontend") == 0
    assert total(s, "hubble_http_requests_total", status="500", **CTX_FRONTEND) > 0
    assert total(s, "hubble_policy_verdicts_total", action="dropped", direction="egress", **FRONTEND_SOURCE) == dropped


def test_promtool_finds_the_simulated_exposition_clean():
    promtool = require_binary("promtool")
    exporter = simulated_exporter(seed=2, flows=4000, step_ns=20_000_000, durations_s={"healthy": 5, "broken": 5, "fixed": 5})
    result = subprocess.run([promtool, "check", "metrics"], input=exporter.render(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
