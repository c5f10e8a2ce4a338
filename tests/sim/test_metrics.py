"""The simulator's metrics exporter: hand-built flows in, exact Prometheus text out.

The flow builders (`http_response`, `dns_query`, ...) live in flow_builders.py, shared with model/test_red.py.
"""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request

import pytest
from flow_builders import (
    CART,
    COREDNS,
    FRONTEND,
    LOADGEN,
    T0,
    dns_answer,
    dns_query,
    dropped_packet,
    endpoint,
    http_request,
    http_response,
    lost_events,
    policy_verdict,
    tcp_packet,
)
from prometheus_fixture import require_binary

from kcockpit.sim.clock import ManualClock
from kcockpit.sim.metrics import MetricsExporter, start_metrics_server
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.traffic import Simulator
from kcockpit.sim.world import World
from kcockpit.wire.hubble_pb import GetFlowsResponse, flow_pb

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


def test_observed_flows_wait_for_the_next_render_in_a_bounded_queue(monkeypatch):
    """Counting is deferred to the scrape (the demo's backfill is not counted on the way to
    its first frame), but what waits is bounded: at the limit it is counted on the spot."""
    from kcockpit.sim import metrics

    monkeypatch.setattr(metrics, "PENDING_LIMIT", 3)
    exporter = MetricsExporter()
    for offset in range(4):
        exporter.observe(http_response(T0 + offset, LOADGEN, FRONTEND, 200, 0.01))
        assert len(exporter._pending) < 3
    assert value(parse_text(exporter.render()), "hubble_http_requests_total") == 4
    assert exporter._pending == []

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
