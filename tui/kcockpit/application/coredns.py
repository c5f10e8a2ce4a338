"""The CoreDNS side of the DNS tab: request rate, response codes, p95 duration, cache hit
ratio and forward (upstream) errors from the `coredns_*` metrics in Prometheus, as one line
labelled `prometheus`, or the reason there is none."""

from __future__ import annotations

import math
from dataclasses import dataclass

from kcockpit.application.integrations import PrometheusFeed
from kcockpit.model.dns_health import percent


@dataclass(frozen=True, slots=True)
class CorednsLine:
    text: str  # what the panel shows
    available: bool  # numbers (True) or the reason there are none (False)


def rate_window(window_s: int | None) -> str:
    """The PromQL rate window for the tab's window (the whole history reads the last 15m)."""
    return {60: "1m", 300: "5m", 900: "15m"}.get(window_s or 900, "1m")


def why_unavailable(feed: PrometheusFeed | None) -> str | None:
    """Why the panel is empty now (None: Prometheus is ready, ask it)."""
    if feed is None or not feed.enabled:
        return "CoreDNS: no Prometheus (--prometheus URL; the demo starts one when `prometheus` is installed)"
    if feed.state == "ready" and feed.config is not None:
        return None
    if feed.state == "absent":
        return f"CoreDNS: no Prometheus: {feed.detail or 'not started'}"
    if feed.state == "failed":
        return f"CoreDNS: Prometheus unreachable: {feed.detail}"
    return "CoreDNS: waiting for Prometheus to be ready…"


def describe(health, window: str) -> CorednsLine:
    """One line from a sources.signals.DnsHealth."""
    requests = health.coredns_requests
    if requests.value is None:
        return CorednsLine(f"CoreDNS (prometheus): {_reason(requests.detail)}", False)
    parts = [f"{requests.value:.1f} req/s"]
    rcodes = [(labels.get("rcode", "?"), value) for labels, value in health.coredns_rcodes.rows if not math.isnan(value) and value > 0]
    total = sum(value for _, value in rcodes)
    if total > 0:
        shown = sorted(rcodes, key=lambda item: -item[1])[:3]
        parts.append(" ".join(f"{code} {percent(value / total)}" for code, value in shown))
    p95 = health.coredns_latency_p95.value
    if p95 is not None and not math.isnan(p95):
        parts.append(f"p95 {p95 * 1000:.0f} ms" if p95 >= 0.001 else f"p95 {p95 * 1000:.1f} ms")
    hits = health.coredns_cache_hit_ratio.value
    if hits is not None and not math.isnan(hits):
        parts.append(f"cache hits {hits:.0%}")
    forward = sum(value for _, value in health.coredns_forward_errors.rows if not math.isnan(value))
    parts.append(f"upstream errors {forward:.2f}/s")
    return CorednsLine(f"CoreDNS (prometheus, rate {window}): " + " · ".join(parts), True)


def _reason(detail: str) -> str:
    detail = detail.removeprefix("unavailable: ")
    return detail if len(detail) < 120 else detail[:117] + "…"


async def fetch_coredns_line(feed: PrometheusFeed, window_s: int | None) -> CorednsLine:
    """Ask the feed's Prometheus (never raises: a failure is the line's text)."""
    reason = why_unavailable(feed)
    if reason is not None:
        return CorednsLine(reason, False)
    from kcockpit.sources.signals import discover_label_mode, fetch_dns_health
    from kcockpit.wire.prometheus import PrometheusClient, PrometheusError

    window = rate_window(window_s)
    client = PrometheusClient(feed.config)
    try:
        mode = await discover_label_mode(client)
        health = await fetch_dns_health(client, mode, window=window)
    except PrometheusError as error:
        return CorednsLine(f"CoreDNS (prometheus): unavailable: {_reason(str(error))}", False)
    except Exception as error:  # noqa: BLE001 (the panel says it; the tab keeps working)
        return CorednsLine(f"CoreDNS (prometheus): unavailable: {type(error).__name__}: {_reason(str(error))}", False)
    finally:
        await client.aclose()
    return describe(health, window)
