"""Live: a real Prometheus scraping the simulator's /metrics while the DNS-breaking policy is in force.

Prometheus finds a new target on its 5 s discovery tick and a rate needs two scrapes, so the
test polls with a deadline until the signals show the broken phase, never sleeping blindly.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_fixture import require_binary, simulator_metrics

from kcockpit.model.red import Scope
from kcockpit.sources.prometheus_runner import start_demo_prometheus
from kcockpit.sources.signals import LABELS_CONTEXT, discover_label_mode, fetch_dns_health, fetch_golden_signals
from kcockpit.wire.prometheus import PrometheusClient

pytestmark = pytest.mark.prometheus
DEADLINE_S = 60.0  # a deadline, not a wait: a loaded CI machine can take well over the usual 15 s
FRONTEND = Scope("otel-demo", "frontend")


@pytest.fixture(scope="module")
def broken_cluster():
    """The simulator in the broken phase, emitting in real time from a thread, with /metrics served."""
    with simulator_metrics("broken") as server:
        yield server


async def test_prometheus_scraping_the_simulator_sees_the_dns_outage(broken_cluster):
    require_binary("prometheus")
    running, message = start_demo_prometheus(broken_cluster.url)
    assert running is not None, message
    assert running.url in message and broken_cluster.url in message
    try:
        async with PrometheusClient(running.url) as client:
            deadline = time.monotonic() + DEADLINE_S
            while True:
                # One evaluation time for every query, and one in the past: a scrape's samples
                # carry its start time but become visible only when it completes, so a time
                # close to now could see a scrape land between two of these queries (the
                # denied and unanswered rates would then differ). 3 s is past any 1 s scrape
                # plus its 1 s timeout.
                at = time.time() - 3
                mode = await discover_label_mode(client, at=at)
                dns = await fetch_dns_health(client, mode, FRONTEND, at=at)
                signals = await fetch_golden_signals(client, mode, FRONTEND, at=at)
                denied = {row[0].get("rcode"): row[1] for row in dns.queries.rows}.get("Policy denied", 0)
                coredns = dns.coredns_requests.value or 0  # other pods' lookups are rarer: wait for them too
                if denied > 0 and signals.errors.available and signals.errors.value > 0 and coredns > 0:
                    break
                assert time.monotonic() < deadline, f"no DNS outage visible after {DEADLINE_S} s: {dns.queries}"
                await asyncio.sleep(0.5)
            assert mode.context == LABELS_CONTEXT and not mode.cluster_label
            # frontend cannot resolve anything: every query it sends goes unanswered, and its callers get 5xx.
            unanswered = dict((labels["source_workload"], v) for labels, v in dns.unanswered.rows)
            assert unanswered["frontend"] == pytest.approx(denied)
            assert not [row for row in dns.responses.rows if row[1] > 0]
            drops = {(labels["destination_workload"], labels["reason"]): v for labels, v in signals.drops.rows}
            assert drops[("coredns", "POLICY_DENIED")] > 0
            assert signals.errors.value == pytest.approx(1.0)
            assert signals.traffic.value > 0 and signals.latency_p95.value > 0
            assert signals.cpu.value is None and "unavailable" in signals.cpu.detail
            # Everybody else still resolves through CoreDNS.
            assert mode.has("coredns_dns_requests_total")
    finally:
        running.stop()
