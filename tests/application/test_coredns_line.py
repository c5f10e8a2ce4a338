"""The DNS tab's CoreDNS line (kcockpit.application.coredns): the numbers from the coredns_*
metrics labelled `prometheus`, or why there are none; and live, against a real Prometheus
scraping the simulator in its dns-overload phase."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_fixture import require_binary, simulator_metrics

from kcockpit.application.coredns import describe, fetch_coredns_line, rate_window, why_unavailable
from kcockpit.application.integrations import PrometheusFeed
from kcockpit.model.red import Breakdown, Reading, Scope
from kcockpit.sources.signals import DnsHealth, LabelMode
from kcockpit.wire.prometheus import PrometheusConfig

P = "prometheus"


def health(requests: float | None, rcodes=(), p95: float | None = 0.002, hits: float | None = 0.5, forward=()) -> DnsHealth:
    empty = Breakdown("x", "", P, "")
    return DnsHealth(
        LabelMode(""), Scope(), empty, empty, empty, empty,
        Reading("coredns_requests", requests, "req/s", P, "unavailable: no coredns_dns_requests_total series in Prometheus"
                if requests is None else "q"),
        Breakdown("coredns_rcodes", "responses/s", P, "q", [({"rcode": c}, v) for c, v in rcodes]),
        Reading("coredns_latency_p95", p95, "s", P, "q"),
        Reading("coredns_cache_hit_ratio", hits, "ratio", P, "q"),
        Breakdown("coredns_forward_errors", "responses/s", P, "q", [({"to": "172.18.0.1:53", "rcode": "SERVFAIL"}, v) for v in forward]),
    )


def test_the_line_reads_rate_rcodes_p95_cache_and_upstream_errors() -> None:
    line = describe(health(12.34, rcodes=[("NOERROR", 9.0), ("NXDOMAIN", 3.0), ("SERVFAIL", 0.0)], forward=[0.25]), "1m")
    # rcode shares of the 12 responses/s: 75% and 25%; a rate of 0 is left out.
    assert line.available
    assert line.text == ("CoreDNS (prometheus, rate 1m): 12.3 req/s · NOERROR 75% NXDOMAIN 25% · p95 2 ms"
                         " · cache hits 50% · upstream errors 0.25/s")


def test_without_coredns_series_the_line_says_why() -> None:
    line = describe(health(None), "1m")
    assert not line.available
    assert line.text == "CoreDNS (prometheus): no coredns_dns_requests_total series in Prometheus"


def test_why_the_panel_is_empty_follows_the_prometheus_feed() -> None:
    assert "no Prometheus" in why_unavailable(None)
    assert "no Prometheus" in why_unavailable(PrometheusFeed())
    feed = PrometheusFeed(demo_metrics_url="http://127.0.0.1:1/metrics")
    assert why_unavailable(feed) == "CoreDNS: waiting for Prometheus to be ready…"
    feed.state, feed.detail = "absent", "prometheus is not on PATH"
    assert why_unavailable(feed) == "CoreDNS: no Prometheus: prometheus is not on PATH"
    feed.state, feed.detail = "failed", "connection refused"
    assert why_unavailable(feed) == "CoreDNS: Prometheus unreachable: connection refused"
    feed = PrometheusFeed(PrometheusConfig("http://127.0.0.1:9"))
    feed.state = "ready"
    assert why_unavailable(feed) is None
    assert [rate_window(w) for w in (60, 300, 900, None)] == ["1m", "5m", "15m", "15m"]


async def test_an_unreachable_prometheus_is_a_line_not_an_exception() -> None:
    feed = PrometheusFeed(PrometheusConfig("http://127.0.0.1:9"))  # discard port: refused
    feed.state = "ready"
    line = await fetch_coredns_line(feed, 60)
    assert not line.available and line.text.startswith("CoreDNS (prometheus): unavailable: ")


@pytest.mark.prometheus
async def test_live_coredns_line_from_a_prometheus_scraping_the_overloaded_simulator() -> None:
    require_binary("prometheus")
    from kcockpit.sources.prometheus_runner import start_demo_prometheus

    with simulator_metrics("dns-overload") as server:
        running, message = start_demo_prometheus(server.url)
        try:
            assert running is not None, message
            feed = PrometheusFeed(PrometheusConfig(running.url))
            feed.state = "ready"
            deadline = time.monotonic() + 60
            while True:
                line = await fetch_coredns_line(feed, 60)
                if line.available and " req/s" in line.text and "0.0 req/s" not in line.text:
                    break
                assert time.monotonic() < deadline, line.text
                await asyncio.sleep(0.5)
            assert line.text.startswith("CoreDNS (prometheus, rate 1m): ")
            assert "NOERROR" in line.text and "p95" in line.text and "cache hits" in line.text
        finally:
            if running is not None:
                running.stop()
