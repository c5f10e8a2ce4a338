"""The simulator's DNS (kcockpit.sim.dns): every verdict kind of the DNS tab can be seen —
search-path NXDOMAINs for external names, an occasional upstream SERVFAIL, and a phase
of its own where an overloaded CoreDNS leaves lookups unanswered — and the CoreDNS
metrics stay consistent with the flows."""

from __future__ import annotations

import pytest

from kcockpit.model.aggregates import FlowAggregates
from kcockpit.model.dns_health import DROPPED, UNANSWERED, dns_health
from kcockpit.sim.clock import ManualClock
from kcockpit.sim.metrics import MetricsExporter
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.traffic import Simulator
from kcockpit.sim.world import World

SECOND = 1_000_000_000
WORLD = World.build(5)


def simulate(phase: str, seconds: float = 60, seed: int = 5, rate: float = 400):
    clock = ManualClock()
    sim = Simulator(WORLD, seed=seed, clock=clock, scenario=Scenario(clock, mode=phase), rate=rate)
    exporter = MetricsExporter()
    sim.add_listener(exporter.observe)
    end = clock.now_ns() + int(seconds * SECOND)
    responses = sim.advance(end)
    aggregates = FlowAggregates()
    aggregates.ingest_raw(r.SerializeToString() for r in responses)
    aggregates.advance(end + 6 * SECOND)
    return aggregates, exporter


def metric_sum(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


@pytest.fixture(scope="module")
def overload():
    return simulate("dns-overload")


@pytest.fixture(scope="module")
def healthy():
    return simulate("healthy", seconds=120)


def test_overloaded_coredns_leaves_lookups_unanswered(overload):
    aggregates, _ = overload
    rows = aggregates.dns_rows(None)
    requests = sum(r.requests for r in rows)
    unanswered = sum(r.unanswered for r in rows)
    assert requests > 100
    assert 0.15 < unanswered / requests < 0.6  # 40% of first attempts, fewer retries
    health = dns_health(rows, aggregates.services(None), window="all")
    assert health.verdicts and all(v.kind != DROPPED for v in health.verdicts)
    assert any(v.kind == UNANSWERED for v in health.verdicts)


def test_overloaded_coredns_metrics_count_requests_it_never_answered(overload):
    _, exporter = overload
    text = exporter.render()
    requests, responses = metric_sum(text, "coredns_dns_requests_total"), metric_sum(text, "coredns_dns_responses_total")
    assert requests > 0 and responses < 0.85 * requests


def test_external_names_walk_the_search_path_and_the_upstream_sometimes_fails(healthy):
    aggregates, _ = healthy
    rows = aggregates.dns_rows(None)
    misses = [r for r in rows if r.query.startswith("www.ecb.europa.eu.") and r.query != "www.ecb.europa.eu."]
    assert misses and all(set(r.rcodes) <= {"NXDOMAIN"} for r in misses)
    assert any(r.rcodes.get("SERVFAIL") for r in rows if r.query == "www.ecb.europa.eu.")
    health = dns_health(rows, window="all")
    # Folded, the expansions are search-path misses of the asked name, not NXDOMAINs.
    ecb = [n for n in health.names if n.query == "www.ecb.europa.eu."]
    assert ecb and all(n.miss_lookups and not n.rcode("NXDOMAIN") for n in ecb)
    assert {v.kind for v in health.verdicts} <= {"servfail"}
