"""The Services tab's golden-signals panel data (application/service_signals.py): every line
says its source; flows derive from the aggregates; a Prometheus failure never raises."""

from __future__ import annotations

import asyncio
import socket

from handmade_flows import CART, FRONTEND, LOADGEN, T0, flow, http_request, http_response, raw
from kcockpit.application.service_signals import fetch_prometheus_signals, flow_signals
from kcockpit.model.aggregates import Endpoint, FlowAggregates
from kcockpit.wire.prometheus import PrometheusConfig


def _aggregates() -> FlowAggregates:
    flows = []
    for i in range(20):
        code = 500 if i % 4 == 0 else 200
        flows.append(flow(30 + i, LOADGEN, FRONTEND, dport=8080, sport=42000 + i, direction="ingress", l7=http_request(), event=129))
        flows.append(flow(30 + i, FRONTEND, LOADGEN, sport=8080, dport=42000 + i, direction="ingress", reply=True,
                          l7=http_response(code, 10.0 + i), event=129))
        flows.append(flow(30 + i, FRONTEND, CART, dport=8080, verdict="DROPPED", drop_reason=133, event=1))
    aggregates = FlowAggregates()
    aggregates.ingest_raw(raw(*flows))
    return aggregates


def test_flow_signals_of_a_workload_say_their_source_and_window() -> None:
    aggregates = _aggregates()
    now = T0 + 60
    edges = aggregates.services(60, now)
    panel = flow_signals(aggregates, edges, Endpoint("otel-demo/frontend"), 60, now, 60.0, "1m")
    lines = {line.name: line for line in panel.lines}
    assert panel.source == "flows" and all(line.source == "flows" for line in panel.lines)
    assert lines["traffic"].text == "0.33 req/s"  # 20 responses / 60 s
    assert lines["errors"].text == "25.0% 5xx" and lines["errors"].bad
    assert lines["latency"].text.startswith("p50 ")
    assert "own calls dropped" in lines["drops"].text and lines["drops"].bad
    assert lines["saturation"].text.startswith("unavailable")
    assert lines["by source"].text.startswith("loadgenerator 0.3/s (5 5xx)")
    assert sum(lines["traffic"].series) == 20 and sum(lines["errors"].series) == 5


def test_flow_signals_without_http_count_flows_and_drops() -> None:
    aggregates = _aggregates()
    now = T0 + 60
    panel = flow_signals(aggregates, aggregates.services(None, now), Endpoint("otel-demo/cartservice"), None, now, 20.0, "all")
    lines = {line.name: line for line in panel.lines}
    assert lines["traffic"].text == "1.00 flows/s in, no HTTP"
    assert lines["errors"].text == "20 dropped in, 0 out" and lines["errors"].bad
    assert lines["latency"].text.startswith("unavailable")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_prometheus_is_an_error_not_an_exception() -> None:
    config = PrometheusConfig(f"http://127.0.0.1:{_closed_port()}", timeout_s=2.0)
    panel = asyncio.run(fetch_prometheus_signals(config, Endpoint("otel-demo/frontend"), "1m", {}))
    assert not panel.lines and panel.error.startswith("prometheus: ") and "refused" in panel.error.lower()


def test_a_silent_prometheus_times_out_into_an_error() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the connection, never answers
        config = PrometheusConfig(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout_s=0.5)
        panel = asyncio.run(fetch_prometheus_signals(config, Endpoint("otel-demo/frontend"), "1m", {}))
    assert not panel.lines and panel.error.startswith("prometheus: ")


def test_prometheus_has_nothing_for_reserved_endpoints() -> None:
    panel = asyncio.run(fetch_prometheus_signals(PrometheusConfig("http://127.0.0.1:1"), Endpoint("host"), "1m", {}))
    assert "no golden signals" in panel.error
