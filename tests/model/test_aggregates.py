"""The aggregates' counting rules (issue 8), on flows written out by hand. Each test states
the expected numbers from the flows it feeds, never from running the code."""

from __future__ import annotations

import math

import pytest

from handmade_flows import (
    CART, COREDNS, FRONTEND, FRONTEND_2, HOST, LOADGEN, STRIPE, T0,
    dns_request, dns_response, flow, http_request, http_response, policy, raw,
)
from kcockpit.model.aggregates import OTHER, Endpoint, FlowAggregates, LatencySketch
from kcockpit.model.aggregates.naming import name_endpoint

NOW = T0 + 100  # windows end here in most tests


def aggregates(*responses, **caps) -> FlowAggregates:
    result = FlowAggregates(**caps)
    result.ingest_raw(raw(*responses))
    return result


def edge(result: FlowAggregates, client, server, port: int, window=None, now=NOW):
    rows = [e for e in result.services(window, now) if (e.client.name, e.server.name, e.port) == (client, server, port)]
    assert len(rows) == 1, [(e.client, e.server, e.port) for e in result.services(window, now)]
    return rows[0]


# --- naming -------------------------------------------------------------------------------

def test_endpoints_are_named_by_workload_then_pod_then_reserved_identity_then_world_name() -> None:
    assert name_endpoint("otel-demo", "frontend", "frontend-abc", 11001, "", "10.0.0.1") == Endpoint("otel-demo/frontend")
    assert name_endpoint("default", "", "netshoot", 12000, "", "10.0.0.2") == Endpoint("default/netshoot")
    assert name_endpoint("", "", "", 1, "", "192.168.0.10") == Endpoint("host")
    assert name_endpoint("", "", "", 6, "", "192.168.0.11") == Endpoint("remote-node")
    assert name_endpoint("", "", "", 2, "api.stripe.com", "203.0.113.7") == Endpoint("world", "api.stripe.com")
    assert name_endpoint("", "", "", 2, "", "203.0.113.8") == Endpoint("world")
    assert str(Endpoint("world", "api.stripe.com")) == "world api.stripe.com"


# --- service edges ------------------------------------------------------------------------

def test_a_reply_counts_on_its_requests_edge_never_as_a_reverse_edge() -> None:
    result = aggregates(
        flow(1, LOADGEN, FRONTEND, sport=41000, dport=8080),
        flow(1.1, FRONTEND, LOADGEN, sport=8080, dport=41000, reply=True),
        flow(1.2, FRONTEND, LOADGEN, sport=8080, dport=41000, reply=True),
    )
    assert len(result.services(None)) == 1
    e = edge(result, "otel-demo/loadgenerator", "otel-demo/frontend", 8080)
    assert (e.flows, e.forwarded, e.dropped, e.protocol) == (3, 3, 0, "TCP")


def test_forwarded_and_dropped_count_by_verdict_and_audit_is_neither() -> None:
    result = aggregates(
        flow(1, FRONTEND, CART, dport=8080),
        flow(2, FRONTEND, CART, dport=8080, verdict="DROPPED", drop_reason=133, event=1),
        flow(3, FRONTEND, CART, dport=8080, verdict="DROPPED", drop_reason=181, event=1),
        flow(4, FRONTEND, CART, dport=8080, verdict="DROPPED", drop_reason=133, event=1),
        flow(5, FRONTEND, CART, dport=8080, verdict="AUDIT", event=5),
    )
    e = edge(result, "otel-demo/frontend", "otel-demo/cartservice", 8080)
    assert (e.flows, e.forwarded, e.dropped) == (5, 1, 3)
    assert e.drop_reasons == {"POLICY_DENIED": 2, "POLICY_DENY": 1}
    assert e.top_drop_reason == "POLICY_DENIED"


def test_http_red_counts_the_servers_report_when_both_proxies_report() -> None:
    # Two exchanges, each seen by the client's egress proxy and the server's ingress proxy.
    result = aggregates(
        flow(1.0, FRONTEND, CART, dport=8080, event=129, direction="egress", l7=http_request()),
        flow(1.0, FRONTEND, CART, dport=8080, event=129, direction="ingress", l7=http_request()),
        flow(1.1, CART, FRONTEND, sport=8080, dport=40000, event=129, direction="ingress", l7=http_response(200, 10)),
        flow(1.1, CART, FRONTEND, sport=8080, dport=40000, event=129, direction="egress", l7=http_response(200, 12)),
        flow(2.0, FRONTEND, CART, dport=8080, event=129, direction="egress", l7=http_request()),
        flow(2.0, FRONTEND, CART, dport=8080, event=129, direction="ingress", l7=http_request()),
        flow(2.5, CART, FRONTEND, sport=8080, dport=40000, event=129, direction="ingress", l7=http_response(503, 500)),
        flow(2.5, CART, FRONTEND, sport=8080, dport=40000, event=129, direction="egress", l7=http_response(503, 502)),
    )
    e = edge(result, "otel-demo/frontend", "otel-demo/cartservice", 8080)
    assert e.flows == 8  # every flow event of the edge
    assert (e.reporter, e.requests, e.responses, e.errors) == ("server", 2, 2, 1)
    assert e.error_ratio == 0.5
    latency = e.latency_ms()
    assert latency["p50"] == pytest.approx(10, rel=0.01)  # the server's 10 ms, not the client's 12
    assert latency["p99"] == pytest.approx(500, rel=0.01)


def test_http_red_falls_back_to_the_clients_report_without_a_server_proxy() -> None:
    result = aggregates(
        flow(1, FRONTEND, CART, dport=8080, event=129, direction="egress", l7=http_request()),
        flow(1.2, CART, FRONTEND, sport=8080, dport=40000, event=129, direction="egress", l7=http_response(500, 20)),
    )
    e = edge(result, "otel-demo/frontend", "otel-demo/cartservice", 8080)
    assert (e.reporter, e.requests, e.errors) == ("client", 1, 1)


def test_dns_l7_flows_count_on_the_edge_but_not_as_http_requests() -> None:
    result = aggregates(
        flow(1, FRONTEND, COREDNS, dport=53, proto="UDP", event=129, l7=dns_request("cartservice.")),
        flow(1.001, COREDNS, FRONTEND, sport=53, dport=40000, proto="UDP", event=129, l7=dns_response("cartservice.")),
    )
    e = edge(result, "otel-demo/frontend", "kube-system/coredns", 53)
    assert (e.flows, e.requests, e.reporter, e.latency) == (2, 0, "", None)


# --- DNS ----------------------------------------------------------------------------------

def dns_exchange(at: float, client, query: str, *, rcode: int = 0, latency_ms: float = 2, sport: int = 50000, node: str = "node-1"):
    return [
        flow(at, client, COREDNS, sport=sport, dport=53, proto="UDP", event=129, node=node, l7=dns_request(query)),
        flow(at + latency_ms / 1000, COREDNS, client, sport=53, dport=sport, proto="UDP", event=129, node=node,
             reply=True, l7=dns_response(query, rcode, latency_ms)),
    ]


def test_dns_rows_count_requests_responses_by_rcode_and_latency() -> None:
    result = aggregates(
        *dns_exchange(1, FRONTEND, "cartservice.otel-demo.svc.cluster.local.", latency_ms=2, sport=50001),
        *dns_exchange(2, FRONTEND, "cartservice.otel-demo.svc.cluster.local.", latency_ms=4, sport=50002),
        *dns_exchange(3, FRONTEND, "nope.otel-demo.svc.cluster.local.", rcode=3, sport=50003),
    )
    rows = {r.query: r for r in result.dns_rows(None)}
    cart = rows["cartservice.otel-demo.svc.cluster.local."]
    assert (cart.client.name, cart.qtype, cart.requests, cart.responses, cart.rcodes) == ("otel-demo/frontend", "A", 2, 2, {"NOERROR": 2})
    assert cart.latency_ms()["p50"] == pytest.approx(2, rel=0.01)
    assert cart.latency_ms()["p95"] == pytest.approx(4, rel=0.01)
    assert cart.servers == {"kube-system/coredns": 2}
    assert rows["nope.otel-demo.svc.cluster.local."].rcodes == {"NXDOMAIN": 1}


def test_a_lookup_with_no_response_within_5_seconds_is_unanswered() -> None:
    answered_late = [  # answered after 4.9 s: slow, but answered
        flow(10, FRONTEND, COREDNS, sport=50010, dport=53, proto="UDP", event=129, l7=dns_request("slow.")),
        flow(14.9, COREDNS, FRONTEND, sport=53, dport=50010, proto="UDP", event=129, l7=dns_response("slow.", 0, 4900)),
    ]
    never = flow(11, FRONTEND, COREDNS, sport=50011, dport=53, proto="UDP", event=129, l7=dns_request("lost."))
    other_port = flow(12, FRONTEND, COREDNS, sport=50012, dport=53, proto="UDP", event=129, l7=dns_request("lost."))
    wrong_port_answer = flow(12.1, COREDNS, FRONTEND, sport=53, dport=59999, proto="UDP", event=129, l7=dns_response("lost."))
    result = aggregates(*answered_late, never, other_port, wrong_port_answer)
    rows = {r.query: r for r in result.dns_rows(None)}
    assert rows["lost."].unanswered == 0  # the newest flow is at 14.9 s: 12 s has not waited 5 s yet
    result.advance(int((T0 + 17.5) * 1e9))  # time goes on without flows
    rows = {r.query: r for r in result.dns_rows(None)}
    assert (rows["lost."].requests, rows["lost."].responses, rows["lost."].unanswered) == (2, 1, 2)
    assert rows["slow."].unanswered == 0


def test_dns_drop_before_the_proxy_counts_once_for_the_drop_and_its_policy_verdict_event() -> None:
    deny = [policy("otel-demo", "frontend-egress-allow-to-backend")]
    packets = []
    for i, sport in enumerate((50020, 50021)):
        packets.append(flow(20 + i, FRONTEND, COREDNS, sport=sport, dport=53, proto="UDP", verdict="DROPPED", event=5, denied_by=deny))
        packets.append(flow(20 + i, FRONTEND, COREDNS, sport=sport, dport=53, proto="UDP", verdict="DROPPED", drop_reason=133, event=1))
    result = aggregates(*packets)
    rows = result.dns_rows(None)
    assert len(rows) == 1
    row = rows[0]
    assert (row.client.name, row.query, row.qtype, row.requests, row.dropped, row.responses) == ("otel-demo/frontend", "", "", 2, 2, 0)
    # The policy-verdict event came first and named the policy; its drop event is the same packet.
    assert row.drop_policies == {"otel-demo/frontend-egress-allow-to-backend": 2}
    assert row.sample is not None


def test_a_dns_message_two_nodes_report_counts_once_but_a_retry_counts_again() -> None:
    request = dns_request("cartservice.")
    result = aggregates(
        flow(30, FRONTEND, COREDNS, sport=50030, dport=53, proto="UDP", event=129, node="node-1", l7=request),
        flow(30.0002, FRONTEND, COREDNS, sport=50030, dport=53, proto="UDP", event=129, node="node-2", l7=request),
        flow(30.5, FRONTEND, COREDNS, sport=50030, dport=53, proto="UDP", event=129, node="node-1", l7=request),  # a retry
    )
    (row,) = result.dns_rows(None)
    assert row.requests == 2


def test_dropped_l7_dns_requests_count_as_requests_and_drops() -> None:
    result = aggregates(
        flow(40, FRONTEND, COREDNS, sport=50040, dport=53, proto="UDP", verdict="DROPPED", event=129,
             l7=dns_request("evil.example.")),
    )
    (row,) = result.dns_rows(None)
    assert (row.requests, row.dropped, row.unanswered) == (1, 1, 0)


# --- policy verdicts ----------------------------------------------------------------------

def test_policy_groups_take_hubbles_deciding_policy_on_the_flows_direction() -> None:
    deny = policy("otel-demo", "frontend-egress-allow-to-backend")
    allow = policy("otel-demo", "allow-frontend")
    result = aggregates(
        flow(1, FRONTEND, COREDNS, dport=53, proto="UDP", verdict="DROPPED", event=5, denied_by=[deny], allowed_by=[allow]),
        flow(2, FRONTEND, COREDNS, dport=53, proto="UDP", verdict="DROPPED", event=5, denied_by=[deny]),
        flow(3, LOADGEN, FRONTEND, dport=8080, verdict="FORWARDED", event=5, direction="ingress", allowed_by=[allow]),
        flow(4, LOADGEN, FRONTEND, dport=8080, verdict="FORWARDED", event=5, direction="ingress"),
        flow(5, LOADGEN, FRONTEND, dport=8080, verdict="DROPPED", drop_reason=133, event=1, direction="ingress"),
        flow(6, LOADGEN, FRONTEND, dport=8080, verdict="DROPPED", drop_reason=158, event=1, direction="ingress"),  # not a policy drop
        flow(7, LOADGEN, FRONTEND, dport=8080),  # a trace event: not a verdict
    )
    groups = {(g.verdict, g.direction, g.policy, g.source.name, g.destination.name, g.port, g.protocol): (g.flows, g.decided_by)
              for g in result.policy_groups(None)}
    assert groups == {
        ("DROPPED", "egress", "otel-demo/frontend-egress-allow-to-backend", "otel-demo/frontend", "kube-system/coredns", 53, "UDP"): (2, "hubble"),
        ("FORWARDED", "ingress", "otel-demo/allow-frontend", "otel-demo/loadgenerator", "otel-demo/frontend", 8080, "TCP"): (1, "hubble"),
        ("FORWARDED", "ingress", None, "otel-demo/loadgenerator", "otel-demo/frontend", 8080, "TCP"): (1, None),
        ("DROPPED", "ingress", None, "otel-demo/loadgenerator", "otel-demo/frontend", 8080, "TCP"): (1, None),
    }


def test_a_clusterwide_policy_is_named_without_a_namespace() -> None:
    result = aggregates(flow(1, FRONTEND, STRIPE, dport=443, verdict="DROPPED", event=5,
                             denied_by=[policy("", "block-payments-egress")]))
    (group,) = result.policy_groups(None)
    assert group.policy == "block-payments-egress"
    assert group.destination == Endpoint("world", "api.stripe.com")


# --- windows --------------------------------------------------------------------------------

def test_windows_count_flows_by_their_own_time() -> None:
    result = aggregates(
        flow(100 - 30, FRONTEND, CART, dport=8080),    # 30 s before NOW: in every window
        flow(100 - 200, FRONTEND, CART, dport=8080),   # 200 s before: in 5m and 15m, not 1m
        flow(100 - 800, FRONTEND, CART, dport=8080),   # 800 s before: in 15m only
        flow(100 - 1000, FRONTEND, CART, dport=8080),  # 1000 s before: only "all"
    )
    counts = {window: edge(result, "otel-demo/frontend", "otel-demo/cartservice", 8080, window).flows
              for window in (60, 300, 900, None)}
    assert counts == {60: 1, 300: 2, 900: 3, None: 4}
    assert result.window(60, NOW).flows == 1
    assert result.window(None).flows == 4


def test_a_one_minute_window_moves_with_now() -> None:
    result = aggregates(flow(10, FRONTEND, CART, dport=8080), flow(50, FRONTEND, CART, dport=8080))
    assert [e.flows for e in result.services(60, T0 + 60)] == [2]
    assert [e.flows for e in result.services(60, T0 + 100)] == [1]
    assert result.services(60, T0 + 200) == []


# --- bounded memory ---------------------------------------------------------------------------

def test_keys_beyond_the_cap_are_counted_under_other_and_totals_still_add_up() -> None:
    from handmade_flows import Pod

    clients = [Pod("load", f"client-{i}", f"client-{i}", f"10.1.0.{i}", 20_000 + i) for i in range(10)]
    result = aggregates(*(flow(1 + i * 0.01, c, CART, dport=8080) for i, c in enumerate(clients)), edge_cap=4)
    rows = result.services(None)
    assert len(result.edges) <= 4 + 1
    assert sum(e.flows for e in rows) == 10
    other = [e for e in rows if e.client == OTHER]
    assert other and other[0].flows == 10 - (len(rows) - 1)


def test_idle_keys_are_folded_into_other_to_make_room_for_new_ones() -> None:
    from handmade_flows import Pod

    old = [Pod("load", f"old-{i}", f"old-{i}", f"10.2.0.{i}", 21_000 + i) for i in range(3)]
    new = Pod("load", "new", "new", "10.2.1.1", 22_000)
    result = aggregates(*(flow(1, p, CART, dport=8080) for p in old), flow(2000, new, CART, dport=8080), edge_cap=3)
    names = {e.client.name for e in result.services(None)}
    assert "load/new" in names and "(other)" in names
    assert sum(e.flows for e in result.services(None)) == 4


def test_latency_sketch_is_within_one_percent_of_the_exact_percentile() -> None:
    sketch = LatencySketch()
    values = [int(1e6 * (1 + i % 97) * (1 + i % 13)) for i in range(5000)]
    for value in values:
        sketch.add_ns(value)
    ordered = sorted(values)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[math.ceil(q * len(ordered)) - 1]
        assert sketch.quantile_ns(q) == pytest.approx(exact, rel=0.01)
    assert math.isnan(LatencySketch().quantile_ns(0.5))


def test_responses_without_a_flow_are_not_counted() -> None:
    from observer_fixture import lost_events_response

    result = FlowAggregates()
    result.ingest_raw([lost_events_response(5).SerializeToString(), *raw(flow(1, FRONTEND, CART))])
    assert result.flows == 1


def test_sketches_of_many_rows_merge_into_one_skipping_rows_without_latency() -> None:
    first, second = LatencySketch(), LatencySketch()
    for value in (1_000_000, 2_000_000):
        first.add_ns(value)
    second.add_ns(4_000_000)
    merged = LatencySketch.of([first, None, second])
    assert merged.count == 3 and first.count == 2  # the parts are left as they were
    assert abs(merged.quantile_ns(1.0) - 4_000_000) <= 0.01 * 4_000_000
    assert LatencySketch.of([None]).count == 0
