"""Golden signals of one workload for the Services tab's panel, from Prometheus or from flows.

Every line the panel shows is a `SignalLine`: a name, the number as text, its `source`
(`prometheus` or `flows`), what it covers (`detail`: the PromQL or the flows counted), and a
series for a sparkline. `flow_signals` derives them from the aggregates (cheap: only the
selected workload's inbound edges); `fetch_prometheus_signals` asks Prometheus with the
official dashboards' queries (`sources.signals`) and never raises: a failure becomes
`PanelSignals.error`, and the panel falls back to flows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from kcockpit.model.aggregates import Endpoint, FlowAggregates, LatencySketch, ServiceEdge
from kcockpit.model.red import SOURCE_FLOWS, SOURCE_PROMETHEUS, RedSignals, Scope
from kcockpit.model.service_tree import count_text, latency_text

SERIES_BUCKETS = 30  # sparkline points
SATURATION_FROM_FLOWS = "unavailable: flows carry no CPU or memory; needs Prometheus with cAdvisor metrics"


@dataclass(frozen=True, slots=True)
class SignalLine:
    name: str  # traffic, errors, latency, saturation, sources
    text: str  # the numbers, formatted
    source: str  # "prometheus" or "flows"
    detail: str  # PromQL, or what was counted
    series: tuple[float, ...] = ()
    bad: bool = False  # above the tree's thresholds (errors): drawn red and marked


@dataclass(frozen=True, slots=True)
class PanelSignals:
    workload: str
    window: str  # 1m, 5m, 15m, all
    lines: tuple[SignalLine, ...] = ()
    error: str = ""  # why Prometheus is not used (or failed), shown in the panel
    source: str = SOURCE_FLOWS
    fetched_at: float = field(default=0.0, compare=False)


def workload_scope(endpoint: Endpoint) -> Scope | None:
    if not endpoint.in_cluster:
        return None
    namespace, _, workload = endpoint.name.partition("/")
    return Scope(namespace, workload)


def _rate(value: float, unit: str) -> str:
    if value >= 100:
        return f"{value:.0f} {unit}"
    if value >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.2f} {unit}"


def flow_signals(aggregates: FlowAggregates, edges: list[ServiceEdge], workload: Endpoint, window_s: int | None,
                 now_s: int, span_s: float, window_label: str) -> PanelSignals:
    """The signals of `workload` as a server, from the aggregates' edges of the window."""
    scope = workload_scope(workload)
    red = RedSignals.from_edges(edges, span_s, scope) if scope is not None else None
    inbound = [e for e in edges if e.server == workload]
    outbound = [e for e in edges if e.client == workload]
    series_window = window_s if window_s is not None else 900
    traffic_s, errors_s, p95_s = _series(aggregates, inbound, series_window, now_s)
    flows_in = sum(e.flows for e in inbound)
    dropped_in = sum(e.dropped for e in inbound)
    dropped_out = sum(e.dropped for e in outbound)
    where = f"{workload.name}, last {window_label} of flows"
    lines: list[SignalLine] = []
    if red is not None and red.responses:
        lines.append(SignalLine("traffic", _rate(red.traffic.value or 0.0, "req/s"), SOURCE_FLOWS,
                                f"{red.responses} HTTP responses from {where}", traffic_s))
        ratio = red.errors.value if red.errors.value is not None else math.nan
        lines.append(SignalLine("errors", "-" if math.isnan(ratio) else f"{ratio * 100:.1f}% 5xx", SOURCE_FLOWS,
                                f"5xx among the responses of {where}", errors_s, bad=not math.isnan(ratio) and ratio > 0.05))
        values = [red.latency_p50.value, red.latency_p95.value, red.latency_p99.value]
        lines.append(SignalLine("latency", " ".join(f"p{q} {latency_text(v * 1000 if v is not None else None)}"
                                                     for q, v in zip((50, 95, 99), values, strict=True)),
                                SOURCE_FLOWS, f"HTTP response latency of {where}", p95_s))
    else:
        lines.append(SignalLine("traffic", f"{_rate(flows_in / span_s, 'flows/s')} in, no HTTP", SOURCE_FLOWS,
                                f"{flows_in} flows to {where} (no L7 HTTP visibility: no request rate)", traffic_s))
        lines.append(SignalLine("errors", f"{count_text(dropped_in)} dropped in, {count_text(dropped_out)} out",
                                SOURCE_FLOWS, f"dropped flows to and from {where}", errors_s,
                                bad=bool(dropped_in or dropped_out)))
        lines.append(SignalLine("latency", "unavailable: no HTTP responses", SOURCE_FLOWS,
                                "latency needs L7 HTTP visibility on this workload", ()))
    if dropped_out and (red is not None and red.responses):
        lines.append(SignalLine("drops", f"{count_text(dropped_out)} of its own calls dropped", SOURCE_FLOWS,
                                f"flows from {where} dropped", (), bad=True))
    lines.append(SignalLine("saturation", "unavailable: flows carry no CPU/memory", SOURCE_FLOWS, SATURATION_FROM_FLOWS, ()))
    by_source = _by_source(inbound, span_s)
    lines.append(SignalLine("by source", by_source or "no callers in the window", SOURCE_FLOWS,
                            f"requests (HTTP) or flows to {where} by caller", ()))
    return PanelSignals(workload.name, window_label, tuple(lines))


def _by_source(inbound: list[ServiceEdge], span_s: float) -> str:
    totals: dict[str, tuple[float, int]] = {}
    for edge in inbound:
        http = bool(edge.reporter and edge.responses)
        rate, errors = totals.get(edge.client.short, (0.0, 0))
        totals[edge.client.short] = (rate + (edge.responses if http else edge.flows) / span_s, errors + edge.errors)
    ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))[:3]
    return " · ".join(f"{name} {value:.1f}/s" + (f" ({errors} 5xx)" if errors else "") for name, (value, errors) in ranked)


def _series(aggregates: FlowAggregates, inbound: list[ServiceEdge], window_s: int, now_s: int
            ) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Per-bucket HTTP responses (or flows), 5xx (or drops) and p95 (ms) of the inbound edges."""
    step = max(1, math.ceil(window_s / SERIES_BUCKETS))
    start = now_s - window_s
    traffic = [0.0] * SERIES_BUCKETS
    errors = [0.0] * SERIES_BUCKETS
    sketches: list[LatencySketch | None] = [None] * SERIES_BUCKETS
    http = any(e.reporter and e.responses for e in inbound)
    for edge in inbound:
        key = (edge.client, edge.server, edge.port, edge.protocol)
        for second, cell in aggregates.edge_series(key, window_s, now_s):
            index = min(SERIES_BUCKETS - 1, max(0, (second - start) // step))
            if http:
                server = edge.reporter == "server"
                traffic[index] += cell.server_responses if server else cell.client_responses
                errors[index] += cell.server_errors if server else cell.client_errors
                sketch = cell.server_latency if server else cell.client_latency
                if sketch is not None:
                    if sketches[index] is None:
                        sketches[index] = LatencySketch()
                    sketches[index].merge(sketch)
            else:
                traffic[index] += cell.flows
                errors[index] += cell.dropped
    p95 = [0.0] * SERIES_BUCKETS
    for index, sketch in enumerate(sketches):
        if sketch is not None:
            quantiles = sketch.quantiles_ms()
            p95[index] = quantiles["p95"] if quantiles else 0.0
    return tuple(traffic), tuple(errors), tuple(p95)


async def fetch_prometheus_signals(config, workload: Endpoint, window_label: str, cache: dict) -> PanelSignals:
    """The panel's signals from Prometheus. `cache` keeps the discovered label mode between
    calls. Never raises: a failure is returned as `error` with no lines."""
    from kcockpit.sources.signals import SignalQueries, discover_label_mode, fetch_golden_signals, fetch_trend
    from kcockpit.wire.prometheus import PrometheusClient, PrometheusError

    scope = workload_scope(workload)
    window = window_label if window_label in ("1m", "5m", "15m") else "15m"
    if scope is None:
        return PanelSignals(workload.name, window_label, error=f"Prometheus has no golden signals for {workload}")
    try:
        async with PrometheusClient(config) as client:
            mode = cache.get("mode")
            if mode is None:
                mode = cache["mode"] = await discover_label_mode(client)
            golden = await fetch_golden_signals(client, mode, scope, "1m")
            queries = SignalQueries(mode, scope, "1m")
            minutes = {"1m": 1.0, "5m": 5.0, "15m": 15.0}[window]
            step = max(1.0, minutes * 60 / SERIES_BUCKETS)
            trends = []
            for build in (queries.traffic, queries.errors, lambda: queries.latency(0.95)):
                try:
                    points = await fetch_trend(client, build(), minutes, step)
                    trends.append(tuple(v if not math.isnan(v) else 0.0 for _, v in points))
                except (PrometheusError, ValueError, Exception):  # noqa: BLE001 - a sparkline less, not a crash
                    trends.append(())
    except PrometheusError as error:
        return PanelSignals(workload.name, window_label, error=f"prometheus: {error}", fetched_at=time.time())
    except Exception as error:  # noqa: BLE001 - any surprise is shown, the tab keeps working
        return PanelSignals(workload.name, window_label, error=f"prometheus: {type(error).__name__}: {error}",
                            fetched_at=time.time())

    core = (golden.traffic, golden.errors, golden.latency_p50, golden.latency_p95, golden.latency_p99)
    if all(r.value is None for r in core):
        cache.pop("mode", None)  # discovered before the series existed, perhaps: ask again next time
        # Nothing Prometheus can say about this workload: the panel falls back to flows, with the reason.
        return PanelSignals(workload.name, window_label, error=f"prometheus: {golden.traffic.detail}", fetched_at=time.time())

    def number(reading, fmt) -> str:
        return fmt(reading.value) if reading.value is not None and not math.isnan(reading.value) else "unavailable"

    lines = [
        SignalLine("traffic", number(golden.traffic, lambda v: _rate(v, "req/s")), SOURCE_PROMETHEUS, golden.traffic.detail, trends[0]),
        SignalLine("errors", number(golden.errors, lambda v: f"{v * 100:.1f}% 5xx"), SOURCE_PROMETHEUS, golden.errors.detail,
                   trends[1], bad=golden.errors.value is not None and not math.isnan(golden.errors.value) and golden.errors.value > 0.05),
        SignalLine("latency", " ".join(f"p{q} {latency_text(r.value * 1000 if r.value is not None else None)}"
                                       for q, r in ((50, golden.latency_p50), (95, golden.latency_p95), (99, golden.latency_p99))),
                   SOURCE_PROMETHEUS, golden.latency_p95.detail, tuple(v * 1000 for v in trends[2])),
    ]
    cpu, memory = golden.cpu, golden.memory
    if cpu.value is None and memory.value is None:
        lines.append(SignalLine("saturation", cpu.detail if cpu.detail.startswith("unavailable") else "unavailable: no data",
                                SOURCE_PROMETHEUS, cpu.detail))
    else:
        parts = []
        if cpu.value is not None:
            parts.append(f"cpu {cpu.value:.2f} cores")
        if memory.value is not None:
            parts.append(f"mem {memory.value / 2**20:.0f} MiB")
        lines.append(SignalLine("saturation", " · ".join(parts), SOURCE_PROMETHEUS, cpu.detail))
    callers: dict[str, tuple[float, float]] = {}
    for labels, value in golden.requests_by_source.rows:
        if math.isnan(value):
            continue
        name = labels.get("source_workload") or labels.get("source") or "?"
        rate, errors = callers.get(name, (0.0, 0.0))
        callers[name] = (rate + value, errors + (value if labels.get("status", "").startswith("5") else 0.0))
    ranked = sorted(callers.items(), key=lambda item: (-item[1][0], item[0]))[:3]
    by_source = " · ".join(f"{name} {rate:.1f}/s" + (f" ({errors / rate * 100:.0f}% 5xx)" if errors and rate else "")
                           for name, (rate, errors) in ranked)
    if not by_source:
        detail = golden.requests_by_source.detail
        by_source = detail if detail.startswith("unavailable") else "no requests"
    lines.append(SignalLine("by source", by_source, SOURCE_PROMETHEUS, golden.requests_by_source.detail))
    return PanelSignals(workload.name, window_label, tuple(lines), source=SOURCE_PROMETHEUS, fetched_at=time.time())


