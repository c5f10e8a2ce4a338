"""Golden signals and DNS health from Prometheus, with the queries the Hubble dashboards use.

Clusters label Hubble metrics differently: `labelsContext` gives source_/destination_
namespace and workload labels (what the official dashboards assume), `sourceContext` /
`destinationContext` give one `source` / `destination` label ("ns/workload", "ns/pod" or
"ns"), and Prometheus relabelling may add `cluster`. `discover_label_mode` asks the
label APIs which convention is in use; `SignalQueries` writes PromQL for that mode.

Every number comes back as a `Reading` or `Breakdown` (kcockpit.model.red) that says it
came from Prometheus and which PromQL produced it, or why it is unavailable.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass

from kcockpit.model.red import SOURCE_PROMETHEUS, Breakdown, Reading, Scope
from kcockpit.wire.prometheus import PrometheusClient, PrometheusError

LABELS_CONTEXT = "labelsContext"
SOURCE_DESTINATION = "source/destination"
NO_CONTEXT = "no context labels"
NO_HUBBLE = "no hubble metrics"

_LABELS_CONTEXT_NAMES = {"source_namespace", "source_workload", "destination_namespace", "destination_workload"}
_OPTIONAL_METRICS = (
    "coredns_dns_requests_total",
    "coredns_cache_hits_total",
    "coredns_proxy_request_duration_seconds_count",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
)
_WINDOW = re.compile(r"^[0-9]+(ms|s|m|h|d)$")
DEFAULT_LOOKBACK_S = 3600.0
_POD_SUFFIX_ALPHABET = "[bcdfghjklmnpqrstvwxz2456789]"  # what Kubernetes uses for generated name suffixes


_CONTEXT_TEXT = {
    LABELS_CONTEXT: "labelsContext (source_/destination_namespace, _workload labels)",
    SOURCE_DESTINATION: "sourceContext/destinationContext (source, destination labels)",
    NO_CONTEXT: "hubble metrics without source/destination labels: cluster-wide only",
    NO_HUBBLE: "no hubble_* metrics found",
}
# The Hubble metric families the signals select by source or destination.
HTTP = "hubble_http_requests_total"
HTTP_DURATION = "hubble_http_request_duration_seconds_bucket"
DROPS = "hubble_drop_total"
TCP_FLAGS = "hubble_tcp_flags_total"
DNS_QUERIES = "hubble_dns_queries_total"
DNS_RESPONSES = "hubble_dns_responses_total"
SCOPED_FAMILIES = (HTTP, HTTP_DURATION, DROPS, TCP_FLAGS, DNS_QUERIES, DNS_RESPONSES)


def _context(names: set[str]) -> str:
    if names & _LABELS_CONTEXT_NAMES:
        return LABELS_CONTEXT
    if names & {"source", "destination"}:
        return SOURCE_DESTINATION
    return NO_CONTEXT if names else NO_HUBBLE


@dataclass(frozen=True, slots=True)
class LabelMode:
    """Which label convention the Hubble metrics use, and which optional metrics exist."""

    context: str
    cluster_label: bool = False
    clusters: tuple[str, ...] = ()
    metrics: frozenset[str] = frozenset()  # those of _OPTIONAL_METRICS present
    # (metric, context) for the families of SCOPED_FAMILIES whose convention differs from `context`:
    # each Hubble handler has its own options, e.g. labelsContext on httpV2 only.
    family_contexts: tuple[tuple[str, str], ...] = ()
    # Which proxy's reports the HTTP queries count. With L7 visibility on both ends every
    # request is exported twice (reporter="client" and "server"); the dashboards pick one.
    http_reporter: str = ""

    def context_of(self, metric: str) -> str:
        return dict(self.family_contexts).get(metric, self.context)

    def describe(self) -> str:
        text = _CONTEXT_TEXT[self.context]
        for metric, context in self.family_contexts:
            text += f"; {metric}: {_CONTEXT_TEXT[context].split(' (')[0].split(':')[0]}"
        if self.http_reporter:
            text += f"; HTTP as reported by the {self.http_reporter}"
        if self.cluster_label:
            text += f"; cluster label ({', '.join(self.clusters) or 'no values'})"
        return text

    def has(self, metric: str) -> bool:
        return metric in self.metrics


async def discover_label_mode(
    client: PrometheusClient, at: float | None = None, lookback_s: float = DEFAULT_LOOKBACK_S
) -> LabelMode:
    """Ask the label APIs which context labels Hubble metrics carry (series seen in the
    `lookback_s` seconds before `at`, default now). Raises PrometheusError."""
    start = (time.time() if at is None else at) - lookback_s
    names = set(await client.label_names(match=['{__name__=~"hubble_.+"}'], start=start))
    context = _context(names)
    per_family = await asyncio.gather(*(client.label_names(match=[family], start=start) for family in SCOPED_FAMILIES))
    family_contexts = tuple(
        (family, _context(set(found)))
        for family, found in zip(SCOPED_FAMILIES, per_family, strict=True)
        if found and _context(set(found)) != context
    )
    clusters: list[str] = []
    if "cluster" in names:
        clusters = await client.label_values("cluster", match=['{__name__=~"hubble_.+"}'], start=start)
    pattern = "|".join(_OPTIONAL_METRICS)
    present = await client.label_values("__name__", match=[f'{{__name__=~"{pattern}"}}'], start=start)
    reporters = await client.label_values("reporter", match=[HTTP], start=start)
    # The server's view by default, as the official dashboards; the client's when that is all there is.
    reporter = "server" if "server" in reporters else (sorted(reporters)[0] if reporters else "")
    return LabelMode(
        context, "cluster" in names, tuple(sorted(clusters)), frozenset(present), family_contexts, reporter
    )


# ---------------------------------------------------------------------------- PromQL building


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def promql_regex(pattern: str) -> str:
    """A regex as a PromQL string literal (its backslashes doubled)."""
    return promql_string(pattern)


def _workload_pods(workload: str) -> str:
    """Regex of the workload's pod names: Deployment pods (name-hash-suffix), DaemonSet pods
    (name-suffix), StatefulSet pods (name-N). The suffix alphabet keeps "frontend-proxy-..."
    out of "frontend". Ends with the suffix group, so appending `?` also admits the bare name."""
    a = _POD_SUFFIX_ALPHABET
    return f"{re.escape(workload)}(-({a}{{5,10}}-{a}{{5}}|{a}{{5}}|[0-9]+))"


class ScopeUnsupported(Exception):
    """The label mode cannot express the requested scope."""


class SignalQueries:
    """PromQL for one label mode, scope and rate window (e.g. "1m")."""

    def __init__(self, mode: LabelMode, scope: Scope = Scope(), window: str = "1m") -> None:
        if not _WINDOW.match(window):
            raise ValueError(f"rate window {window!r} must look like 30s, 1m or 5m")
        self.mode, self.scope, self.window = mode, scope, window

    # --------------------------------------------------------------- selectors

    def _cluster(self) -> list[str]:
        if self.mode.cluster_label and self.scope.cluster:
            return [f"cluster={promql_string(self.scope.cluster)}"]
        return []

    def side(self, side: str, metric: str) -> list[str]:
        """Matchers putting the scope on the `side` ("source" or "destination") of a Hubble metric."""
        scope, matchers = self.scope, self._cluster()
        context = self.mode.context_of(metric)
        if not scope.namespace:
            return matchers
        if context == LABELS_CONTEXT:
            matchers.append(f"{side}_namespace={promql_string(scope.namespace)}")
            if scope.workload:
                matchers.append(f"{side}_workload={promql_string(scope.workload)}")
        elif context == SOURCE_DESTINATION:
            # "ns/workload", "ns/pod-hash-suffix" or a bare "ns", depending on the context option;
            # only a pod suffix may follow the workload, so "frontend" leaves "frontend-proxy" out.
            ns = re.escape(scope.namespace)
            pattern = f"{ns}/{_workload_pods(scope.workload)}?" if scope.workload else f"{ns}(/.*)?"
            matchers.append(f"{side}=~{promql_regex(pattern)}")
        else:
            raise ScopeUnsupported(
                f"{metric} here has no {side} labels, so {scope.describe()} cannot be selected "
                "(enable labelsContext on that hubble metric)"
            )
        return matchers

    def group(self, side: str, metric: str) -> list[str]:
        """Labels that name a workload on `side` of `metric`."""
        context = self.mode.context_of(metric)
        if context == LABELS_CONTEXT:
            return [f"{side}_namespace", f"{side}_workload"]
        if context == SOURCE_DESTINATION:
            return [side]
        return []

    def _as_source(self, expression: str, metric: str) -> str:
        """Rename destination labels to source ones, so answers line up with the queries that caused them."""
        for label in self.group("destination", metric):
            target = label.replace("destination", "source", 1)
            expression = f'label_replace({expression}, "{target}", "$1", "{label}", "(.*)")'
        return expression

    def _http(self, matchers: list[str]) -> list[str]:
        """Matchers for an HTTP metric: one reporter's view, so no request counts twice."""
        reporter = self.mode.http_reporter
        return [*matchers, f"reporter={promql_string(reporter)}"] if reporter else matchers

    def _rate(self, metric: str, matchers: list[str]) -> str:
        return f"rate({metric}{{{','.join(matchers)}}}[{self.window}])"

    @staticmethod
    def _by(labels: list[str]) -> str:
        return f" by ({', '.join(labels)})" if labels else ""

    def _container(self) -> list[str]:
        matchers = self._cluster() + ['container!=""']
        if self.scope.namespace:
            matchers.append(f"namespace={promql_string(self.scope.namespace)}")
        if self.scope.workload:
            matchers.append(f"pod=~{promql_regex(_workload_pods(self.scope.workload))}")
        return matchers

    # --------------------------------------------------------------- golden signals

    def traffic(self) -> str:
        return f"sum({self._rate('hubble_http_requests_total', self._http(self.side('destination', HTTP)))})"

    def errors(self) -> str:
        dst = self._http(self.side("destination", HTTP))
        failed = self._rate("hubble_http_requests_total", [*dst, 'status=~"5.."'])
        return f"(sum({failed}) or vector(0)) / {self.traffic()}"

    def latency(self, quantile: float) -> str:
        buckets = self._rate(HTTP_DURATION, self._http(self.side("destination", HTTP_DURATION)))
        return f"histogram_quantile({quantile:g}, sum by (le) ({buckets}))"

    def requests_by_source(self) -> str:
        by = self._by([*self.group("source", HTTP), "status"])
        return f"sum{by} ({self._rate(HTTP, self._http(self.side('destination', HTTP)))})"

    def drops(self) -> str:
        """Drops of traffic from or to the scope, by source, destination and reason."""
        by = self._by([*self.group("source", DROPS), *self.group("destination", DROPS), "reason"])
        outgoing = f"sum{by} ({self._rate(DROPS, self.side('source', DROPS))})"
        if not self.scope.namespace:
            return outgoing
        incoming = f"sum{by} ({self._rate(DROPS, self.side('destination', DROPS))})"
        return f"{outgoing} or {incoming}"  # `or` keeps a drop inside the scope once

    def missing_synacks(self) -> str:
        """SYNs sent by each client minus SYN-ACKs it received."""
        by = self._by(self.group("source", TCP_FLAGS))
        syns = self._rate(TCP_FLAGS, [*self.side("source", TCP_FLAGS), 'flag="SYN"'])
        syn = f"sum{by} ({syns})"
        synack = self._as_source(self._rate(TCP_FLAGS, [*self.side("destination", TCP_FLAGS), 'flag="SYN-ACK"']), TCP_FLAGS)
        return f"{syn} - (sum{by} ({synack}) or {syn} * 0)"

    def cpu(self) -> str:
        return f"sum({self._rate('container_cpu_usage_seconds_total', self._container())})"

    def memory(self) -> str:
        return f"sum(container_memory_working_set_bytes{{{','.join(self._container())}}})"

    # --------------------------------------------------------------- DNS

    def dns_queries(self) -> str:
        """Queries sent from the scope by rcode ("" when answered or pending, "Policy denied" when dropped)."""
        return f"sum by (rcode) ({self._rate(DNS_QUERIES, self.side('source', DNS_QUERIES))})"

    def dns_responses(self) -> str:
        return f"sum by (rcode) ({self._rate(DNS_RESPONSES, self.side('destination', DNS_RESPONSES))})"

    def dns_errors(self) -> str:
        by = self._by([*self.group("destination", DNS_RESPONSES), "rcode"])
        failed = self._rate(DNS_RESPONSES, [*self.side("destination", DNS_RESPONSES), 'rcode!="No Error"'])
        return f"sum{by} ({failed})"

    def dns_unanswered(self) -> str:
        """Queries each client sent minus the responses it got back."""
        by = self._by(self.group("source", DNS_QUERIES))
        queries = f"sum{by} ({self._rate(DNS_QUERIES, self.side('source', DNS_QUERIES))})"
        answers = self._as_source(self._rate(DNS_RESPONSES, self.side("destination", DNS_RESPONSES)), DNS_RESPONSES)
        return f"{queries} - (sum{by} ({answers}) or {queries} * 0)"

    # --------------------------------------------------------------- CoreDNS (cluster-wide)

    def coredns_requests(self) -> str:
        return f"sum({self._rate('coredns_dns_requests_total', self._cluster())})"

    def coredns_rcodes(self) -> str:
        return f"sum by (rcode) ({self._rate('coredns_dns_responses_total', self._cluster())})"

    def coredns_latency_p95(self) -> str:
        buckets = self._rate("coredns_dns_request_duration_seconds_bucket", self._cluster())
        return f"histogram_quantile(0.95, sum by (le) ({buckets}))"

    def coredns_cache_hit_ratio(self) -> str:
        hits = f"sum({self._rate('coredns_cache_hits_total', self._cluster())})"
        misses = f"(sum({self._rate('coredns_cache_misses_total', self._cluster())}) or vector(0))"
        return f"{hits} / ({hits} + {misses})"

    def coredns_forward_errors(self) -> str:
        failed = [*self._cluster(), 'rcode!~"NOERROR|NXDOMAIN"']
        return f"sum by (to, rcode) ({self._rate('coredns_proxy_request_duration_seconds_count', failed)})"

    # --------------------------------------------------------------- top N across the cluster

    def top_traffic(self, n: int) -> str:
        by = self._by(self.group("destination", HTTP))
        return f"topk({n}, sum{by} ({self._rate('hubble_http_requests_total', self._http(self._cluster()))}))"

    def top_errors(self, n: int) -> str:
        by = self._by(self.group("destination", HTTP))
        failed = self._rate("hubble_http_requests_total", self._http([*self._cluster(), 'status=~"5.."']))
        total = f"sum{by} ({self._rate('hubble_http_requests_total', self._http(self._cluster()))})"
        return f"topk({n}, (sum{by} ({failed}) or {total} * 0) / {total})"

    def top_latency_p95(self, n: int) -> str:
        by = self._by([*self.group("destination", HTTP_DURATION), "le"])
        buckets = self._rate(HTTP_DURATION, self._http(self._cluster()))
        return f"topk({n}, histogram_quantile(0.95, sum{by} ({buckets})))"


# ---------------------------------------------------------------------------- fetching


@dataclass(frozen=True, slots=True)
class GoldenSignals:
    mode: LabelMode
    scope: Scope
    traffic: Reading
    errors: Reading
    latency_p50: Reading
    latency_p95: Reading
    latency_p99: Reading
    requests_by_source: Breakdown
    drops: Breakdown
    missing_synacks: Breakdown
    cpu: Reading
    memory: Reading


@dataclass(frozen=True, slots=True)
class DnsHealth:
    mode: LabelMode
    scope: Scope
    queries: Breakdown
    responses: Breakdown
    errors: Breakdown
    unanswered: Breakdown
    coredns_requests: Reading
    coredns_rcodes: Breakdown
    coredns_latency_p95: Reading
    coredns_cache_hit_ratio: Reading
    coredns_forward_errors: Breakdown


@dataclass(frozen=True, slots=True)
class TopWorkloads:
    mode: LabelMode
    traffic: Breakdown
    errors: Breakdown
    latency_p95: Breakdown


class _Fetcher:
    """Runs a batch of queries concurrently; each failure becomes an unavailable number."""

    def __init__(self, client: PrometheusClient, at: float | None) -> None:
        self.client, self.at = client, at

    async def reading(self, name: str, unit: str, build, needs: str | None = None, mode: LabelMode | None = None) -> Reading:
        if needs and mode is not None and not mode.has(needs):
            return Reading(name, None, unit, SOURCE_PROMETHEUS, f"unavailable: no {needs} series in Prometheus")
        try:
            promql = build()
        except ScopeUnsupported as error:
            return Reading(name, None, unit, SOURCE_PROMETHEUS, f"unavailable: {error}")
        try:
            result = await self.client.query(promql, time=self.at)
            value = result.scalar()
        except PrometheusError as error:
            return Reading(name, None, unit, SOURCE_PROMETHEUS, f"unavailable: {error}")
        if value is None:
            return Reading(name, None, unit, SOURCE_PROMETHEUS, f"no data for {promql}")
        return Reading(name, value, unit, SOURCE_PROMETHEUS, _with_warnings(promql, result.warnings))

    async def breakdown(self, name: str, unit: str, build) -> Breakdown:
        try:
            promql = build()
        except ScopeUnsupported as error:
            return Breakdown(name, unit, SOURCE_PROMETHEUS, f"unavailable: {error}")
        try:
            result = await self.client.query(promql, time=self.at)
        except PrometheusError as error:
            return Breakdown(name, unit, SOURCE_PROMETHEUS, f"unavailable: {error}")
        rows = sorted(
            ((sample.labels, sample.value) for sample in result.samples),
            key=lambda row: (-row[1] if not math.isnan(row[1]) else math.inf, sorted(row[0].items())),
        )
        return Breakdown(name, unit, SOURCE_PROMETHEUS, _with_warnings(promql, result.warnings), rows)


def _with_warnings(promql: str, warnings: list[str]) -> str:
    return promql + "".join(f" [warning: {w}]" for w in warnings)


async def fetch_golden_signals(
    client: PrometheusClient, mode: LabelMode, scope: Scope = Scope(), window: str = "1m", at: float | None = None
) -> GoldenSignals:
    q, f = SignalQueries(mode, scope, window), _Fetcher(client, at)
    results = await asyncio.gather(
        f.reading("traffic", "req/s", q.traffic),
        f.reading("errors", "ratio", q.errors),
        f.reading("latency_p50", "s", lambda: q.latency(0.5)),
        f.reading("latency_p95", "s", lambda: q.latency(0.95)),
        f.reading("latency_p99", "s", lambda: q.latency(0.99)),
        f.breakdown("requests_by_source", "req/s", q.requests_by_source),
        f.breakdown("drops", "drops/s", q.drops),
        f.breakdown("missing_synacks", "SYN/s", q.missing_synacks),
        f.reading("cpu", "cores", q.cpu, needs="container_cpu_usage_seconds_total", mode=mode),
        f.reading("memory", "bytes", q.memory, needs="container_memory_working_set_bytes", mode=mode),
    )
    return GoldenSignals(mode, scope, *results)


async def fetch_dns_health(
    client: PrometheusClient, mode: LabelMode, scope: Scope = Scope(), window: str = "1m", at: float | None = None
) -> DnsHealth:
    q, f = SignalQueries(mode, scope, window), _Fetcher(client, at)
    results = await asyncio.gather(
        f.breakdown("dns_queries", "queries/s", q.dns_queries),
        f.breakdown("dns_responses", "responses/s", q.dns_responses),
        f.breakdown("dns_errors", "responses/s", q.dns_errors),
        f.breakdown("dns_unanswered", "queries/s", q.dns_unanswered),
        f.reading("coredns_requests", "req/s", q.coredns_requests, needs="coredns_dns_requests_total", mode=mode),
        f.breakdown("coredns_rcodes", "responses/s", q.coredns_rcodes),
        f.reading("coredns_latency_p95", "s", q.coredns_latency_p95, needs="coredns_dns_requests_total", mode=mode),
        f.reading("coredns_cache_hit_ratio", "ratio", q.coredns_cache_hit_ratio, needs="coredns_cache_hits_total", mode=mode),
        f.breakdown("coredns_forward_errors", "responses/s", q.coredns_forward_errors),
    )
    return DnsHealth(mode, scope, *results)


async def fetch_top_workloads(
    client: PrometheusClient,
    mode: LabelMode,
    n: int = 10,
    scope: Scope = Scope(),
    window: str = "1m",
    at: float | None = None,
) -> TopWorkloads:
    """The busiest, most failing and slowest workloads (only `scope.cluster` is used)."""
    q, f = SignalQueries(mode, Scope(cluster=scope.cluster), window), _Fetcher(client, at)
    results = await asyncio.gather(
        f.breakdown("top_traffic", "req/s", lambda: q.top_traffic(n)),
        f.breakdown("top_errors", "ratio", lambda: q.top_errors(n)),
        f.breakdown("top_latency_p95", "s", lambda: q.top_latency_p95(n)),
    )
    return TopWorkloads(mode, *results)


async def fetch_trend(
    client: PrometheusClient, promql: str, minutes: float = 15.0, step_s: float = 15.0, end: float | None = None
) -> list[tuple[float, float]]:
    """The last `minutes` of one single-series signal (e.g. `SignalQueries.traffic()`) as
    (unix seconds, value) points for a sparkline; empty when there is no data.
    Raises PrometheusError."""
    end = time.time() if end is None else end
    result = await client.query_range(promql, end - minutes * 60, end, step_s)
    if len(result.series) > 1:
        raise ValueError(f"a trend needs one series, {promql!r} gives {len(result.series)}")
    return result.series[0].points if result.series else []
