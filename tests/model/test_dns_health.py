"""DNS health (kcockpit.model.dns_health) on hand-written flows: search-path folding, the
verdict rules and the correlation with HTTP errors. Each expected number is worked out
from the flows in the test, never from running the code."""

from __future__ import annotations

import re

import pytest

from handmade_flows import (
    COREDNS, FRONTEND, LOADGEN, T0, Pod,
    dns_request, dns_response, flow, http_response, policy, raw,
)
from kcockpit.model.aggregates import Endpoint, FlowAggregates
from kcockpit.model.dns_health import (
    BEFORE_PROXY, DROPPED, NXDOMAIN, SERVFAIL, SLOW, UNANSWERED,
    asked_name, cluster_domain, dns_health, flows_filter, fold_names, search_suffixes,
)

PAYMENT = Pod("payments", "payment-5f-abcde", "payment", "10.244.3.40", 11_200)
NOW = T0 + 100
DENY = policy("otel-demo", "frontend-egress-allow-to-backend")


def aggregates(*responses) -> FlowAggregates:
    result = FlowAggregates()
    result.ingest_raw(raw(*responses))
    return result


def exchange(at: float, client, query: str, *, rcode: int = 0, latency_ms: float = 2, sport: int = 50000, node="node-1"):
    return [
        flow(at, client, COREDNS, sport=sport, dport=53, proto="UDP", event=129, node=node, l7=dns_request(query)),
        flow(at + latency_ms / 1000, COREDNS, client, sport=53, dport=sport, proto="UDP", event=129, node=node,
             reply=True, l7=dns_response(query, rcode, latency_ms)),
    ]


def stripe_lookup(at: float, sport: int, *, final_rcode: int = 0, domain: str = "cluster.local"):
    """What a payments pod's resolver (ndots:5) sends for api.stripe.com: three search-path
    expansions answered NXDOMAIN, then the name itself."""
    flows = []
    for offset, query in enumerate((f"api.stripe.com.payments.svc.{domain}.", f"api.stripe.com.svc.{domain}.",
                                    f"api.stripe.com.{domain}.")):
        flows += exchange(at + offset * 0.01, PAYMENT, query, rcode=3, latency_ms=1, sport=sport + offset)
    flows += exchange(at + 0.05, PAYMENT, "api.stripe.com.", rcode=final_rcode, latency_ms=20, sport=sport + 3)
    return flows


# --- search-path folding --------------------------------------------------------------------

def test_search_suffixes_follow_the_pods_resolv_conf() -> None:
    assert search_suffixes("payments", "cluster.local") == (
        ".payments.svc.cluster.local.", ".svc.cluster.local.", ".cluster.local.")
    queried = {"api.stripe.com.payments.svc.cluster.local.", "api.stripe.com."}
    assert asked_name("api.stripe.com.payments.svc.cluster.local.", queried, search_suffixes("payments", "cluster.local")) == "api.stripe.com."
    # Without the final name in the flows there is nothing to fold under.
    assert asked_name("api.stripe.com.payments.svc.cluster.local.", {"api.stripe.com.payments.svc.cluster.local."},
                      search_suffixes("payments", "cluster.local")) is None


def test_search_path_misses_fold_under_the_name_the_application_asked() -> None:
    # Two lookups of api.stripe.com: 2 x (3 misses + 1 answer), each query a request and a response.
    rows = aggregates(*stripe_lookup(1, 50100), *stripe_lookup(2, 50200)).dns_rows(None, NOW)
    (name,) = fold_names(rows)
    assert name.client == Endpoint("payments/payment")
    assert name.query == "api.stripe.com."
    # 8 queries sent and answered, 6 of them the expected NXDOMAINs: misses, not failures.
    assert (name.requests, name.responses, name.rcodes) == (8, 8, {"NOERROR": 2})
    assert name.rcode("NXDOMAIN") == 0
    assert name.miss_queries == ("api.stripe.com.cluster.local.", "api.stripe.com.payments.svc.cluster.local.",
                                 "api.stripe.com.svc.cluster.local.")
    assert name.miss_lookups == 6
    # Drilling down keeps the misses: every query that starts with the asked name.
    assert flows_filter(name) == (r"from:pod=payments/ from:workload=payment query=^api\.stripe\.com\. "
                                  r"or to:pod=payments/ to:workload=payment query=^api\.stripe\.com\.")


def test_unfolded_view_keeps_the_expansions_as_rows_and_marks_them() -> None:
    rows = aggregates(*stripe_lookup(1, 50100)).dns_rows(None, NOW)
    names = {n.query: n for n in fold_names(rows, fold=False)}
    assert len(names) == 4
    miss = names["api.stripe.com.svc.cluster.local."]
    assert (miss.rcodes, miss.search_miss_of) == ({"NXDOMAIN": 1}, "api.stripe.com.")
    assert names["api.stripe.com."].search_miss_of == ""


def test_the_cluster_domain_comes_from_the_flows() -> None:
    flows = stripe_lookup(1, 50100, domain="corp.example")
    flows += exchange(3, PAYMENT, "ledger.payments.svc.corp.example.", sport=50300)
    rows = aggregates(*flows).dns_rows(None, NOW)
    assert cluster_domain(r.query for r in rows) == "corp.example"
    names = {n.query: n for n in fold_names(rows)}
    assert set(names) == {"api.stripe.com.", "ledger.payments.svc.corp.example."}
    assert names["api.stripe.com."].miss_lookups == 3
    assert cluster_domain([]) == "cluster.local"


def test_a_name_that_does_not_exist_keeps_its_own_nxdomain_after_folding() -> None:
    # The app asks typo.stripe.com: 3 expected misses, and the name itself is NXDOMAIN too.
    flows = []
    for offset, query in enumerate(("typo.stripe.com.payments.svc.cluster.local.", "typo.stripe.com.svc.cluster.local.",
                                    "typo.stripe.com.cluster.local.", "typo.stripe.com.")):
        flows += exchange(1 + offset * 0.01, PAYMENT, query, rcode=3, sport=50400 + offset)
    flows += exchange(2, PAYMENT, "typo.stripe.com.", rcode=3, sport=50410)
    health = dns_health(aggregates(*flows).dns_rows(None, NOW))
    (name,) = health.names
    assert (name.query, name.requests, name.rcode("NXDOMAIN"), name.miss_lookups) == ("typo.stripe.com.", 5, 2, 3)
    (verdict,) = health.verdicts
    # 2 real NXDOMAIN (the name's own) of 5 answers: the 3 misses are answers, not failures
    assert verdict.kind == NXDOMAIN and verdict.failures == 2
    assert "2 of 5 answers NXDOMAIN" in verdict.line
    assert "NXDOMAIN for typo.stripe.com." in verdict.line


# --- aggregates' counting, as the tab reads it ------------------------------------------------

def test_drops_before_the_proxy_are_a_row_of_their_own_and_dedupe_across_nodes() -> None:
    packets = []
    for i in range(4):  # 4 lookups, each seen as a policy-verdict event and a drop event
        sport = 50500 + i
        packets.append(flow(10 + i, FRONTEND, COREDNS, sport=sport, dport=53, proto="UDP", verdict="DROPPED", event=5, denied_by=[DENY]))
        packets.append(flow(10 + i, FRONTEND, COREDNS, sport=sport, dport=53, proto="UDP", verdict="DROPPED", drop_reason=133, event=1))
    # One answered lookup that two nodes both report: counted once.
    packets += exchange(20, FRONTEND, "cartservice.otel-demo.svc.cluster.local.", sport=50600, node="node-1")
    packets += exchange(20.0001, FRONTEND, "cartservice.otel-demo.svc.cluster.local.", sport=50600, node="node-2")
    health = dns_health(aggregates(*packets).dns_rows(None, NOW))
    names = {n.query: n for n in health.names}
    before = names[""]
    assert (before.label, before.requests, before.dropped) == (BEFORE_PROXY, 4, 4)
    assert names["cartservice.otel-demo.svc.cluster.local."].requests == 1
    assert health.lookups == 5
    assert flows_filter(before) == "from:pod=otel-demo/ from:workload=frontend to:port=53 dropped"
    # A name's lookups: its L7 DNS requests (from the client) and answers (to it), by query.
    query = r"^cartservice\.otel\-demo\.svc\.cluster\.local\.$"
    assert flows_filter(names["cartservice.otel-demo.svc.cluster.local."]) == (
        f"from:pod=otel-demo/ from:workload=frontend query={query} or to:pod=otel-demo/ to:workload=frontend query={query}")


def test_unanswered_lookups_are_those_without_a_response_within_5_seconds() -> None:
    flows = []
    for i in range(10):  # 10 lookups at t=1..10: 4 never answered, 6 answered in 1 ms
        request = flow(1 + i, FRONTEND, COREDNS, sport=50700 + i, dport=53, proto="UDP", event=129, l7=dns_request("cartservice."))
        flows.append(request)
        if i >= 4:
            flows.append(flow(1 + i + 0.001, COREDNS, FRONTEND, sport=53, dport=50700 + i, proto="UDP", event=129,
                              reply=True, l7=dns_response("cartservice.", 0, 1)))
    result = aggregates(*flows)
    # The newest flow is at 10.001 s: only requests older than 5.001 s count yet (t=1..4).
    result.advance(int((T0 + 20) * 1e9))
    health = dns_health(result.dns_rows(None, NOW))
    (verdict,) = health.verdicts
    assert verdict.kind == UNANSWERED
    assert (verdict.failures, verdict.lookups) == (4, 10)
    assert verdict.line.startswith("✗ otel-demo/frontend: 40% of 10 lookups unanswered")


# --- verdicts --------------------------------------------------------------------------------

def broken_frontend(n_dropped: int, n_ok: int, errors: int, responses: int):
    flows = []
    for i in range(n_dropped):
        sport = 51000 + i
        flows.append(flow(30 + i * 0.1, FRONTEND, COREDNS, sport=sport, dport=53, proto="UDP", verdict="DROPPED", event=5,
                          denied_by=[DENY]))
    for i in range(n_ok):
        flows += exchange(20 + i * 0.1, FRONTEND, "cartservice.", sport=52000 + i)
    for i in range(responses):  # the loadgenerator's calls to the frontend, answered by the frontend
        flows.append(flow(40 + i * 0.01, FRONTEND, LOADGEN, sport=8080, dport=53000 + i, event=129, reply=True,
                          direction="ingress", l7=http_response(500 if i < errors else 200, 5)))
    return flows


def test_a_policy_drop_names_the_deciding_policy_and_the_5xx_at_the_same_time() -> None:
    # 6 dropped lookups + 2 answered ones = 8 lookups, 75% dropped; the frontend answered
    # 10 HTTP responses, 4 of them 500: 40%.
    health = dns_health(aggregates(*broken_frontend(6, 2, 4, 10)).dns_rows(None, NOW),
                        aggregates(*broken_frontend(6, 2, 4, 10)).services(None, NOW))
    (verdict,) = health.verdicts
    assert verdict.kind == DROPPED
    assert (verdict.policy, verdict.decided_by, verdict.direction) == ("otel-demo/frontend-egress-allow-to-backend", "hubble", "egress")
    assert verdict.sample is not None
    assert verdict.line == (
        "✗ otel-demo/frontend: 75% of 8 lookups dropped at egress by otel-demo/frontend-egress-allow-to-backend"
        " — it was DNS; its HTTP 5xx is 40% of 10 responses in the same 1m")


def test_without_hubbles_policy_name_the_engine_is_asked_and_credited() -> None:
    flows = [flow(30 + i, FRONTEND, COREDNS, sport=51000 + i, dport=53, proto="UDP", verdict="DROPPED", drop_reason=133, event=1)
             for i in range(3)]
    asked = []
    health = dns_health(aggregates(*flows).dns_rows(None, NOW),
                        explain_policy=lambda sample: asked.append(sample) or "otel-demo/engine-says")
    (verdict,) = health.verdicts
    assert len(asked) == 1
    assert (verdict.policy, verdict.decided_by) == ("otel-demo/engine-says", "engine")
    assert "100% of 3 lookups dropped at egress by otel-demo/engine-says (policy engine)" in verdict.line
    # And with no engine either, the line says the policy is unknown.
    (verdict,) = dns_health(aggregates(*flows).dns_rows(None, NOW)).verdicts
    assert "dropped at egress by policy (deciding policy unknown)" in verdict.line


def test_servfail_and_slow_verdicts_and_worst_first_ordering() -> None:
    flows = []
    # payments: 4 lookups of api.stripe.com., 1 SERVFAIL
    for i in range(4):
        flows += exchange(1 + i, PAYMENT, "api.stripe.com.", rcode=2 if i == 0 else 0, latency_ms=20, sport=50800 + i)
    # loadgenerator: 6 lookups answered in 300 ms: p95 300 ms > 100 ms
    for i in range(6):
        flows += exchange(1 + i, LOADGEN, "frontend.", latency_ms=300, sport=50900 + i)
    # frontend: 2 lookups dropped by policy
    for i in range(2):
        flows.append(flow(5 + i, FRONTEND, COREDNS, sport=51100 + i, dport=53, proto="UDP", verdict="DROPPED", event=5, denied_by=[DENY]))
    health = dns_health(aggregates(*flows).dns_rows(None, NOW))
    kinds = [(v.client.name, v.kind) for v in health.verdicts]
    assert kinds == [("otel-demo/frontend", DROPPED), ("payments/payment", SERVFAIL), ("otel-demo/loadgenerator", SLOW)]
    servfail = health.verdicts[1]
    assert "1 of 4 answers SERVFAIL for api.stripe.com." in servfail.line
    slow = health.verdicts[2]
    # The latency sketch is within 1%: 300 ms reads 297 to 303 ms.
    assert re.search(r"p95 (29[7-9]|30[0-3]) ms over 6 answers \(above 100 ms\)", slow.line), slow.line


def test_healthy_dns_is_one_quiet_line() -> None:
    flows = []
    for i in range(20):
        flows += exchange(1 + i, FRONTEND, "cartservice.", latency_ms=3, sport=50000 + i)
    health = dns_health(aggregates(*flows).dns_rows(None, NOW))
    assert health.healthy
    assert health.healthy_line == "✓ DNS healthy: 100% answered, p95 3.0 ms, 20 lookups"


@pytest.mark.parametrize("answered", [19, 20])
def test_one_unanswered_lookup_is_not_yet_a_verdict(answered: int) -> None:
    flows = []
    for i in range(20):
        flows.append(flow(1 + i * 0.1, FRONTEND, COREDNS, sport=50000 + i, dport=53, proto="UDP", event=129, l7=dns_request("cartservice.")))
        if i < answered:
            flows.append(flow(1 + i * 0.1 + 0.001, COREDNS, FRONTEND, sport=53, dport=50000 + i, proto="UDP", event=129,
                              reply=True, l7=dns_response("cartservice.", 0, 1)))
    result = aggregates(*flows)
    result.advance(int((T0 + 30) * 1e9))
    health = dns_health(result.dns_rows(None, NOW))
    assert health.healthy  # 1 of 20 unanswered is below the minimum of 2
    assert health.healthy_line.startswith(f"✓ DNS healthy: {answered / 20:.1%} answered".replace("100.0%", "100%"))


def test_with_the_edges_series_the_5xx_is_compared_before_and_since_dns_failed() -> None:
    flows = []
    for i in range(10):  # 10 good answers by the frontend before its DNS broke (t=5..5.9)
        flows.append(flow(5 + i * 0.1, FRONTEND, LOADGEN, sport=8080, dport=53000 + i, event=129, reply=True,
                          direction="ingress", l7=http_response(200, 5)))
    for i in range(3):  # from t=30 its lookups are dropped
        flows.append(flow(30 + i, FRONTEND, COREDNS, sport=51000 + i, dport=53, proto="UDP", verdict="DROPPED", event=5,
                          denied_by=[DENY]))
    for i in range(5):  # then 4 of its 5 answers are 500 (t=40..)
        flows.append(flow(40 + i * 0.1, FRONTEND, LOADGEN, sport=8080, dport=54000 + i, event=129, reply=True,
                          direction="ingress", l7=http_response(500 if i < 4 else 200, 5)))
    result = aggregates(*flows)
    now = T0 + 45
    edges = result.services(60, now)
    series = lambda edge: result.edge_series((edge.client, edge.server, edge.port, edge.protocol), 60, now)  # noqa: E731
    (verdict,) = dns_health(result.dns_rows(60, now), edges, series=series).verdicts
    assert verdict.correlation == "its 5xx rose from 0% to 80% at the same time"
    # Without the series only the window's totals are known: 4 of 15 responses.
    (verdict,) = dns_health(result.dns_rows(60, now), edges).verdicts
    assert verdict.correlation == "its HTTP 5xx is 27% of 15 responses in the same 1m"


def test_a_verdict_whose_failures_stopped_says_so() -> None:
    flows = [flow(30 + i, FRONTEND, COREDNS, sport=51000 + i, dport=53, proto="UDP", verdict="DROPPED", event=5, denied_by=[DENY])
             for i in range(3)]  # the last drop at t=32
    rows = aggregates(*flows).dns_rows(None, NOW)
    (verdict,) = dns_health(rows, now_s=T0 + 40).verdicts
    assert verdict.quiet_s is None  # 8 s: not yet
    (verdict,) = dns_health(rows, now_s=T0 + 55).verdicts
    assert verdict.quiet_s == 23 and verdict.line.endswith(" — it was DNS (none for 23 s: recovering?)")


def test_answered_is_never_above_100_percent_at_a_windows_edge() -> None:
    """Found in tmux: 102% answered, responses to requests sent just before the 1m window."""
    from handmade_flows import COREDNS, FRONTEND, dns_request, dns_response, flow, raw
    from kcockpit.model.aggregates import FlowAggregates
    from kcockpit.model.dns_health import fold_names

    aggregates = FlowAggregates()
    aggregates.ingest_raw(raw(
        flow(39.9, FRONTEND, COREDNS, sport=50100, dport=53, proto="UDP", event=129, l7=dns_request("a.")),
        flow(40.1, COREDNS, FRONTEND, sport=53, dport=50100, proto="UDP", event=129, reply=True, l7=dns_response("a.")),
        flow(41.0, FRONTEND, COREDNS, sport=50101, dport=53, proto="UDP", event=129, l7=dns_request("a.")),
        flow(41.1, COREDNS, FRONTEND, sport=53, dport=50101, proto="UDP", event=129, reply=True, l7=dns_response("a.")),
    ))
    from handmade_flows import T0
    (row,) = aggregates.dns_rows(60, T0 + 99)  # the window (39, 99] holds 1 request, 2 responses
    assert (row.requests, row.responses) == (1, 2)
    (name,) = fold_names([row])
    assert name.answered_ratio == 1.0
