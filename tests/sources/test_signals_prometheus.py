"""Every golden-signal and DNS-health query against a real Prometheus, on history with known answers.

The history is OpenMetrics text written here from a table of per-second rates: each counter
starts at 0 at T0 and grows linearly, a sample every 15 s for 10 minutes, so `rate(x[1m])`
at T0+600 is exactly the table's rate. `promtool tsdb create-blocks-from openmetrics` turns
it into blocks and one Prometheus per label convention serves them (started once per module).
The expected numbers in the asserts are worked out by hand from the tables.
"""

from __future__ import annotations

import math
import subprocess

import pytest
from prometheus_fixture import require_binary

from kcockpit.model.red import SOURCE_PROMETHEUS, Scope
from kcockpit.sources.prometheus_runner import start_prometheus
from kcockpit.sources.signals import (
    LABELS_CONTEXT,
    SOURCE_DESTINATION,
    SignalQueries,
    discover_label_mode,
    fetch_dns_health,
    fetch_golden_signals,
    fetch_top_workloads,
    fetch_trend,
)
from kcockpit.wire.prometheus import PrometheusClient

pytestmark = pytest.mark.prometheus

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, on a 2 h block boundary
STEP_S = 15
DURATION_S = 600
AT = T0 + DURATION_S  # every query is evaluated here

LOADGEN = {"source_namespace": "otel-demo", "source_workload": "loadgenerator"}
FRONTEND_SRC = {"source_namespace": "otel-demo", "source_workload": "frontend"}
CART_SRC = {"source_namespace": "otel-demo", "source_workload": "cartservice"}
COREDNS_SRC = {"source_namespace": "kube-system", "source_workload": "coredns"}
WORLD_SRC = {"source_namespace": "", "source_workload": ""}


def dst(labels: dict[str, str]) -> dict[str, str]:
    return {k.replace("source_", "destination_"): v for k, v in labels.items()}


FRONTEND, CART, COREDNS, LOADGEN_DST = dst(FRONTEND_SRC), dst(CART_SRC), dst(COREDNS_SRC), dst(LOADGEN)
HTTP = {"method": "GET", "protocol": "HTTP/1.1", "reporter": "server"}

# (family, type, labels, rate per second); histograms list cumulative bucket rates as (le, rate).
LABELS_CONTEXT_HISTORY = [
    ("hubble_http_requests", "counter", {**HTTP, "status": "200", **LOADGEN, **FRONTEND}, 4.0),
    ("hubble_http_requests", "counter", {**HTTP, "status": "503", **LOADGEN, **FRONTEND}, 1.0),
    ("hubble_http_requests", "counter", {**HTTP, "status": "200", **FRONTEND_SRC, **CART}, 2.0),
    ("hubble_http_requests", "counter", {**HTTP, "status": "200", **LOADGEN, **FRONTEND, "cluster": "other"}, 10.0),
    (
        "hubble_http_request_duration_seconds",
        "histogram",
        {"method": "GET", "reporter": "server", **LOADGEN, **FRONTEND},
        [(0.005, 0), (0.01, 0), (0.025, 1), (0.05, 3), (0.1, 4), (0.25, 5), (0.5, 5), (math.inf, 5)],
    ),
    ("hubble_drop", "counter", {"reason": "POLICY_DENIED", "protocol": "UDP", **FRONTEND_SRC, **COREDNS}, 0.5),
    ("hubble_drop", "counter", {"reason": "POLICY_DENIED", "protocol": "TCP", **WORLD_SRC, **FRONTEND}, 0.25),
    ("hubble_drop", "counter", {"reason": "STALE_OR_UNROUTABLE_IP", "protocol": "TCP", **CART_SRC, **dst(LOADGEN)}, 0.1),
    ("hubble_dns_queries", "counter", {"rcode": "", "qtypes": "A", "ips_returned": "0", **FRONTEND_SRC, **COREDNS}, 2.0),
    ("hubble_dns_queries", "counter", {"rcode": "Policy denied", "qtypes": "A", "ips_returned": "0", **FRONTEND_SRC, **COREDNS}, 0.5),
    ("hubble_dns_queries", "counter", {"rcode": "", "qtypes": "A", "ips_returned": "0", **CART_SRC, **COREDNS}, 1.0),
    ("hubble_dns_responses", "counter", {"rcode": "No Error", "qtypes": "A", "ips_returned": "1", **COREDNS_SRC, **FRONTEND}, 1.5),
    ("hubble_dns_responses", "counter", {"rcode": "Non-Existent Domain", "qtypes": "A", "ips_returned": "0", **COREDNS_SRC, **FRONTEND}, 0.25),
    ("hubble_dns_responses", "counter", {"rcode": "No Error", "qtypes": "A", "ips_returned": "1", **COREDNS_SRC, **CART}, 1.0),
    ("hubble_tcp_flags", "counter", {"flag": "SYN", "family": "IPv4", **LOADGEN, **FRONTEND}, 3.0),
    ("hubble_tcp_flags", "counter", {"flag": "SYN-ACK", "family": "IPv4", **FRONTEND_SRC, **LOADGEN_DST}, 2.5),
    ("hubble_tcp_flags", "counter", {"flag": "SYN", "family": "IPv4", **FRONTEND_SRC, **CART}, 1.0),
    ("hubble_tcp_flags", "counter", {"flag": "SYN-ACK", "family": "IPv4", **CART_SRC, **FRONTEND}, 1.0),
    ("coredns_dns_requests", "counter", {"server": "dns://:53", "zone": ".", "proto": "udp", "type": "A"}, 3.0),
    ("coredns_dns_requests", "counter", {"server": "dns://:53", "zone": ".", "proto": "udp", "type": "AAAA"}, 1.0),
    ("coredns_dns_responses", "counter", {"server": "dns://:53", "zone": ".", "rcode": "NOERROR"}, 3.0),
    ("coredns_dns_responses", "counter", {"server": "dns://:53", "zone": ".", "rcode": "NXDOMAIN"}, 0.75),
    ("coredns_dns_responses", "counter", {"server": "dns://:53", "zone": ".", "rcode": "SERVFAIL"}, 0.25),
    (
        "coredns_dns_request_duration_seconds",
        "histogram",
        {"server": "dns://:53", "zone": "."},
        [(0.00025, 0), (0.0005, 1), (0.001, 2), (0.002, 3), (0.004, 3.6), (0.008, 4), (math.inf, 4)],
    ),
    ("coredns_cache_hits", "counter", {"server": "dns://:53", "type": "success"}, 2.4),
    ("coredns_cache_hits", "counter", {"server": "dns://:53", "type": "denial"}, 0.6),
    ("coredns_cache_misses", "counter", {"server": "dns://:53"}, 1.0),
    (
        "coredns_proxy_request_duration_seconds",
        "histogram",
        {"proxy_name": "forward", "to": "172.18.0.1:53", "rcode": "NOERROR"},
        [(0.01, 0.25), (math.inf, 0.5)],
    ),
    (
        "coredns_proxy_request_duration_seconds",
        "histogram",
        {"proxy_name": "forward", "to": "172.18.0.1:53", "rcode": "SERVFAIL"},
        [(0.01, 0), (math.inf, 0.25)],
    ),
    (
        "coredns_proxy_request_duration_seconds",
        "histogram",
        {"proxy_name": "forward", "to": "172.18.0.1:53", "rcode": "NXDOMAIN"},
        [(0.01, 0.1), (math.inf, 0.1)],
    ),
    ("container_cpu_usage_seconds", "counter", {"namespace": "otel-demo", "pod": "frontend-5b7c9d4f6-x2kqp", "container": "frontend"}, 0.25),
    ("container_cpu_usage_seconds", "counter", {"namespace": "otel-demo", "pod": "frontend-5b7c9d4f6-m8zt4", "container": "frontend"}, 0.15),
    ("container_cpu_usage_seconds", "counter", {"namespace": "otel-demo", "pod": "frontend-5b7c9d4f6-x2kqp", "container": ""}, 9.0),
    ("container_cpu_usage_seconds", "counter", {"namespace": "otel-demo", "pod": "frontend-proxy-6d8f7b9c5-q2w4r", "container": "envoy"}, 5.0),
    ("container_memory_working_set_bytes", "gauge", {"namespace": "otel-demo", "pod": "frontend-5b7c9d4f6-x2kqp", "container": "frontend"}, 100e6),
    ("container_memory_working_set_bytes", "gauge", {"namespace": "otel-demo", "pod": "frontend-5b7c9d4f6-m8zt4", "container": "frontend"}, 50e6),
]
# Prometheus relabelling puts cluster="kind-kind" on every series of the main cluster.
for _family, _type, _labels, _rate in LABELS_CONTEXT_HISTORY:
    _labels.setdefault("cluster", "kind-kind")


def _sd(labels: dict[str, str]) -> dict[str, str]:
    """The same series as sourceContext=workload/destinationContext=workload would label them."""
    out = {k: v for k, v in labels.items() if not k.startswith(("source_", "destination_"))}
    for side in ("source", "destination"):
        ns, wl = labels.get(f"{side}_namespace", ""), labels.get(f"{side}_workload", "")
        out[side] = f"{ns}/{wl}" if wl else ""
    return out


SOURCE_DESTINATION_HISTORY = [
    (family, kind, _sd(labels), rate)
    for family, kind, labels, rate in LABELS_CONTEXT_HISTORY
    if family.startswith("hubble_") and labels.get("cluster") == "kind-kind"
]
for _family, _type, _labels, _rate in SOURCE_DESTINATION_HISTORY:
    _labels.pop("cluster")


def _label_text(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if v != "")


def openmetrics(history) -> str:
    """The OpenMetrics text of `history`: a family's series together, each series oldest first."""
    lines: list[str] = []
    families: dict[str, list] = {}
    for family, kind, labels, rate in history:
        families.setdefault(family, []).append((kind, labels, rate))
    times = range(T0, AT + 1, STEP_S)
    for family, members in families.items():
        kind = members[0][0]
        lines.append(f"# TYPE {family} {kind}")
        for _, labels, rate in members:
            if kind == "counter":
                lines += [f"{family}_total{{{_label_text(labels)}}} {rate * (t - T0):.6f} {t}" for t in times]
            elif kind == "gauge":
                lines += [f"{family}{{{_label_text(labels)}}} {rate:.6f} {t}" for t in times]
            else:
                for le, bucket_rate in rate:
                    bound = "+Inf" if math.isinf(le) else f"{le:g}"
                    with_le = _label_text({**labels, "le": bound})
                    lines += [f"{family}_bucket{{{with_le}}} {bucket_rate * (t - T0):.6f} {t}" for t in times]
                total = rate[-1][1]
                lines += [f"{family}_count{{{_label_text(labels)}}} {total * (t - T0):.6f} {t}" for t in times]
                lines += [f"{family}_sum{{{_label_text(labels)}}} {0.05 * total * (t - T0):.6f} {t}" for t in times]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _serve(history, tmp_path_factory, name: str):
    promtool = require_binary("promtool")
    require_binary("prometheus")
    folder = tmp_path_factory.mktemp(name)
    source = folder / "history.om"
    source.write_text(openmetrics(history))
    tsdb = folder / "tsdb"
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return start_prometheus([], data_dir=str(tsdb))


@pytest.fixture(scope="module")
def labels_context_prometheus(tmp_path_factory):
    running = _serve(LABELS_CONTEXT_HISTORY, tmp_path_factory, "labels-context")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def source_destination_prometheus(tmp_path_factory):
    running = _serve(SOURCE_DESTINATION_HISTORY, tmp_path_factory, "source-destination")
    yield running
    running.stop()


@pytest.fixture
async def client(labels_context_prometheus):
    async with PrometheusClient(labels_context_prometheus.url) as client:
        yield client


def rows(breakdown, *keys: str) -> dict[tuple[str, ...], float]:
    assert breakdown.source == SOURCE_PROMETHEUS, breakdown.detail
    return {tuple(labels.get(k, "") for k in keys): pytest.approx(v) for labels, v in breakdown.rows}


FRONTEND_SCOPE = Scope("otel-demo", "frontend", "kind-kind")


async def test_discovery_finds_labels_context_the_cluster_label_and_optional_metrics(client):
    mode = await discover_label_mode(client, at=AT)
    assert mode.context == LABELS_CONTEXT
    assert mode.cluster_label and mode.clusters == ("kind-kind", "other")
    assert mode.has("coredns_dns_requests_total") and mode.has("container_cpu_usage_seconds_total")
    assert "labelsContext" in mode.describe() and "kind-kind" in mode.describe()
    assert mode.http_reporter == "server" and "reported by the server" in mode.describe()


async def test_golden_signals_of_a_workload(client):
    mode = await discover_label_mode(client, at=AT)
    signals = await fetch_golden_signals(client, mode, FRONTEND_SCOPE, at=AT)
    assert signals.traffic.value == pytest.approx(5.0)  # 4 + 1 req/s; the other cluster's 10 left out
    assert signals.traffic.source == SOURCE_PROMETHEUS and "hubble_http_requests_total" in signals.traffic.detail
    assert signals.errors.value == pytest.approx(0.2)  # 1 of 5 req/s answered 503
    # Buckets (cumulative req/s): 0.025:1, 0.05:3, 0.1:4, 0.25:5 -> linear interpolation in the bucket.
    assert signals.latency_p50.value == pytest.approx(0.025 + 0.025 * (2.5 - 1) / 2)
    assert signals.latency_p95.value == pytest.approx(0.1 + 0.15 * 0.75)
    assert signals.latency_p99.value == pytest.approx(0.1 + 0.15 * 0.95)
    assert rows(signals.requests_by_source, "source_workload", "status") == {
        ("loadgenerator", "200"): 4.0,
        ("loadgenerator", "503"): 1.0,
    }
    assert rows(signals.drops, "source_workload", "destination_workload", "reason") == {
        ("frontend", "coredns", "POLICY_DENIED"): 0.5,  # its own DNS, dropped on the way out
        ("", "frontend", "POLICY_DENIED"): 0.25,  # world traffic dropped on the way in
    }
    assert rows(signals.missing_synacks, "source_workload") == {("frontend",): 0.0}
    assert signals.cpu.value == pytest.approx(0.4)  # two frontend containers; the pod cgroup and frontend-proxy left out
    assert signals.memory.value == pytest.approx(150e6)


async def test_error_ratio_is_zero_without_any_5xx_series(client):
    mode = await discover_label_mode(client, at=AT)
    signals = await fetch_golden_signals(client, mode, Scope("otel-demo", "cartservice", "kind-kind"), at=AT)
    assert signals.traffic.value == pytest.approx(2.0)
    assert signals.errors.value == 0.0
    assert signals.latency_p95.value is None and "no data" in signals.latency_p95.detail


async def test_cluster_wide_signals(client):
    mode = await discover_label_mode(client, at=AT)
    signals = await fetch_golden_signals(client, mode, Scope(cluster="kind-kind"), at=AT)
    assert signals.traffic.value == pytest.approx(7.0)
    assert signals.errors.value == pytest.approx(1 / 7)
    assert rows(signals.missing_synacks, "source_workload") == {("loadgenerator",): 0.5, ("frontend",): 0.0}
    everywhere = await fetch_golden_signals(client, mode, Scope(), at=AT)
    assert everywhere.traffic.value == pytest.approx(17.0)  # both clusters


async def test_dns_health_of_a_workload(client):
    mode = await discover_label_mode(client, at=AT)
    dns = await fetch_dns_health(client, mode, FRONTEND_SCOPE, at=AT)
    assert rows(dns.queries, "rcode") == {("",): 2.0, ("Policy denied",): 0.5}
    assert rows(dns.responses, "rcode") == {("No Error",): 1.5, ("Non-Existent Domain",): 0.25}
    assert rows(dns.errors, "destination_workload", "rcode") == {("frontend", "Non-Existent Domain"): 0.25}
    assert rows(dns.unanswered, "source_workload") == {("frontend",): 2.5 - 1.75}


async def test_dns_health_cluster_wide_and_coredns(client):
    mode = await discover_label_mode(client, at=AT)
    dns = await fetch_dns_health(client, mode, Scope(cluster="kind-kind"), at=AT)
    assert rows(dns.unanswered, "source_workload") == {("frontend",): 0.75, ("cartservice",): 0.0}
    assert dns.coredns_requests.value == pytest.approx(4.0)
    assert rows(dns.coredns_rcodes, "rcode") == {("NOERROR",): 3.0, ("NXDOMAIN",): 0.75, ("SERVFAIL",): 0.25}
    # Cumulative req/s 0.004:3.6, 0.008:4 -> rank 3.8 sits halfway through that bucket.
    assert dns.coredns_latency_p95.value == pytest.approx(0.006)
    assert dns.coredns_cache_hit_ratio.value == pytest.approx(3.0 / 4.0)
    assert rows(dns.coredns_forward_errors, "to", "rcode") == {("172.18.0.1:53", "SERVFAIL"): 0.25}


async def test_top_workloads_across_the_cluster(client):
    mode = await discover_label_mode(client, at=AT)
    top = await fetch_top_workloads(client, mode, n=5, scope=Scope(cluster="kind-kind"), at=AT)
    assert list(rows(top.traffic, "destination_workload").items()) == [(("frontend",), 5.0), (("cartservice",), 2.0)]
    assert list(rows(top.errors, "destination_workload").items()) == [(("frontend",), 0.2), (("cartservice",), 0.0)]
    assert rows(top.latency_p95, "destination_workload") == {("frontend",): 0.2125}


async def test_source_destination_mode(source_destination_prometheus):
    async with PrometheusClient(source_destination_prometheus.url) as client:
        mode = await discover_label_mode(client, at=AT)
        assert mode.context == SOURCE_DESTINATION and not mode.cluster_label
        scope = Scope("otel-demo", "frontend")
        signals = await fetch_golden_signals(client, mode, scope, at=AT)
        assert signals.traffic.value == pytest.approx(5.0)
        assert signals.errors.value == pytest.approx(0.2)
        assert signals.latency_p95.value == pytest.approx(0.2125)
        assert rows(signals.requests_by_source, "source", "status") == {
            ("otel-demo/loadgenerator", "200"): 4.0,
            ("otel-demo/loadgenerator", "503"): 1.0,
        }
        assert signals.cpu.value is None and "container_cpu_usage_seconds_total" in signals.cpu.detail
        dns = await fetch_dns_health(client, mode, scope, at=AT)
        assert rows(dns.unanswered, "source") == {("otel-demo/frontend",): 0.75}
        assert dns.coredns_requests.value is None and "unavailable" in dns.coredns_requests.detail
        namespace = await fetch_golden_signals(client, mode, Scope("otel-demo"), at=AT)
        assert namespace.traffic.value == pytest.approx(7.0)


async def test_trend_of_a_signal_for_sparklines(client):
    mode = await discover_label_mode(client, at=AT)
    queries = SignalQueries(mode, FRONTEND_SCOPE)
    points = await fetch_trend(client, queries.traffic(), minutes=5, step_s=60, end=AT)
    assert [t for t, _ in points] == [AT - 300 + 60 * i for i in range(6)]
    assert [v for _, v in points] == pytest.approx([5.0] * 6)
    assert await fetch_trend(client, queries.traffic(), minutes=5, end=T0 - 3600) == []
