"""HTTP signals count each request once: one reporter's view (client- and server-side
proxies both export hubble_http_* when both ends have L7 visibility)."""

import re

from kcockpit.model.red import Scope
from kcockpit.sources.signals import (
    DNS_QUERIES,
    HTTP,
    LABELS_CONTEXT,
    NO_CONTEXT,
    SOURCE_DESTINATION,
    LabelMode,
    SignalQueries,
    discover_label_mode,
    fetch_dns_health,
)


def test_every_http_query_pins_the_discovered_reporter() -> None:
    queries = SignalQueries(LabelMode(LABELS_CONTEXT, http_reporter="server"), Scope("otel-demo", "frontend"))
    for promql in (queries.traffic(), queries.errors(), queries.latency(0.95), queries.requests_by_source(),
                   queries.top_traffic(5), queries.top_errors(5), queries.top_latency_p95(5)):  # fmt: skip
        http_selectors = promql.count("hubble_http_")
        assert promql.count('reporter="server"') == http_selectors, promql


def test_without_a_reporter_label_nothing_is_pinned() -> None:
    queries = SignalQueries(LabelMode(LABELS_CONTEXT), Scope("otel-demo", "frontend"))
    assert "reporter" not in queries.traffic()


# ===== Folded from test_review_signals.py ==========================================================
# Review: PromQL the signals send, checked without a Prometheus.


def _regex_of(matcher: str) -> re.Pattern:
    """The regex of a `label=~"..."` matcher, unquoted as PromQL does (anchored, as Prometheus anchors)."""
    literal = matcher.split("=~", 1)[1]
    return re.compile(literal[1:-1].replace('\\"', '"').replace("\\\\", "\\"))


def test_source_destination_scope_matches_the_workload_and_its_pods_but_not_a_longer_workload_name() -> None:
    queries = SignalQueries(LabelMode(SOURCE_DESTINATION), Scope("otel-demo", "frontend"))
    [matcher] = queries.side("destination", HTTP)
    regex = _regex_of(matcher)
    for value in ("otel-demo/frontend", "otel-demo/frontend-5d8f7c9b6-x2k4p", "otel-demo/frontend-x2k4p", "otel-demo/frontend-0"):
        assert regex.fullmatch(value), value
    for value in ("otel-demo/frontend-proxy", "otel-demo/frontend-proxy-5d8f7c9b6-x2k4p", "otel-demo/frontendx", "otel-demo2/frontend"):
        assert not regex.fullmatch(value), value


def test_source_destination_namespace_scope_matches_its_workloads_only() -> None:
    queries = SignalQueries(LabelMode(SOURCE_DESTINATION), Scope("otel-demo"))
    regex = _regex_of(queries.side("source", DNS_QUERIES)[0])
    assert regex.fullmatch("otel-demo") and regex.fullmatch("otel-demo/cartservice")
    assert not regex.fullmatch("otel-demo-staging/cartservice")


class _LabelApi:
    """The two label endpoints of a Prometheus whose hubble metrics follow the Cilium docs' example:
    labelsContext on httpV2 only, dns/drop/tcp without context labels."""

    HTTP_LABELS = ["__name__", "destination_namespace", "destination_workload", "method", "source_namespace", "source_workload", "status"]
    DNS_LABELS = ["__name__", "qtypes", "rcode"]

    async def label_names(self, match=None, start=None):
        selector = (match or [""])[0]
        if selector.startswith("hubble_http"):
            return self.HTTP_LABELS
        if selector.startswith(("hubble_dns", "hubble_drop", "hubble_tcp")):
            return self.DNS_LABELS
        return sorted(set(self.HTTP_LABELS) | set(self.DNS_LABELS))  # every hubble_ metric

    async def label_values(self, label, match=None, start=None):
        return []

    async def query(self, promql, time=None):
        from kcockpit.wire.prometheus import QueryResult

        assert "hubble_dns" not in promql, f"no DNS query expected for an unsupported scope: {promql}"
        return QueryResult(promql, "vector")  # CoreDNS: no series


async def test_each_hubble_handler_keeps_its_own_label_convention() -> None:
    mode = await discover_label_mode(_LabelApi(), at=1_700_000_000)
    assert mode.context == LABELS_CONTEXT
    assert mode.context_of(HTTP) == LABELS_CONTEXT and mode.context_of(DNS_QUERIES) == NO_CONTEXT
    queries = SignalQueries(mode, Scope("otel-demo", "frontend"))
    assert 'destination_workload="frontend"' in queries.traffic()
    # DNS metrics have no source labels here: say so instead of asking for labels that do not exist.
    health = await fetch_dns_health(_LabelApi(), mode, Scope("otel-demo", "frontend"), at=1_700_000_000)
    assert health.queries.rows == [] and "hubble_dns_queries_total here has no source labels" in health.queries.detail
