"""RED signals from flows, against numbers worked out by hand for a small flow set."""

from __future__ import annotations

import math

import pytest
from flow_builders import CART, FRONTEND, LOADGEN, T0, dns_answer, http_request, http_response

from kcockpit.model.record import FlowRecord
from kcockpit.model.red import SOURCE_FLOWS, RedTracker, Scope, nearest_rank


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def records(responses) -> list[FlowRecord]:
    return [FlowRecord.from_bytes(r.SerializeToString()) for r in responses]


FLOWS = records(
    [
        http_response(T0 - 5, LOADGEN, FRONTEND, 500, 1.0),  # before the window
        http_request(T0 + 9, LOADGEN, FRONTEND),  # requests carry no status: ignored
        http_response(T0 + 10, LOADGEN, FRONTEND, 200, 0.010),
        http_response(T0 + 20, LOADGEN, FRONTEND, 200, 0.020),
        http_response(T0 + 30, LOADGEN, FRONTEND, 503, 0.100),
        http_response(T0 + 40, LOADGEN, FRONTEND, 200, 0.030),
        http_response(T0 + 45, FRONTEND, CART, 200, 0.005),  # cartservice serving frontend
        http_response(T0 + 50, CART, FRONTEND, 200, 0.040),
        dns_answer(T0 + 55, FRONTEND, "cartservice.otel-demo.svc.cluster.local.", 0),
    ]
)
FRONTEND_SCOPE = Scope("otel-demo", "frontend")


@pytest.fixture
def tracker_and_clock():
    clock = Clock(T0 - 100)
    tracker = RedTracker(window_s=60, clock=clock)
    tracker.ingest(FLOWS)
    clock.now = T0 + 60
    return tracker, clock


def test_workload_signals_over_the_window(tracker_and_clock):
    tracker, _ = tracker_and_clock
    red = tracker.signals(FRONTEND_SCOPE)
    assert red.responses == 5
    assert red.traffic.value == pytest.approx(5 / 60)
    assert red.errors.value == pytest.approx(1 / 5)
    # Sorted latencies 10, 20, 30, 40, 100 ms; nearest rank ceil(q * 5). Percentiles come
    # from the aggregates' sketch: within 1% of the exact value.
    assert red.latency_p50.value == pytest.approx(0.030, rel=0.01)
    assert red.latency_p95.value == pytest.approx(0.100, rel=0.01)
    assert red.latency_p99.value == pytest.approx(0.100, rel=0.01)
    assert [(labels["source"], labels["status"], rate) for labels, rate in red.by_source.rows] == [
        ("otel-demo/loadgenerator", "200", pytest.approx(3 / 60)),
        ("otel-demo/cartservice", "200", pytest.approx(1 / 60)),
        ("otel-demo/loadgenerator", "503", pytest.approx(1 / 60)),
    ]
    for reading in (red.traffic, red.errors, red.latency_p95, red.by_source):
        assert reading.source == SOURCE_FLOWS and "otel-demo/frontend" in reading.detail


def test_namespace_and_cluster_scopes_include_every_server(tracker_and_clock):
    tracker, _ = tracker_and_clock
    assert tracker.signals(Scope("otel-demo")).traffic.value == pytest.approx(6 / 60)
    assert tracker.signals().latency_p50.value == pytest.approx(0.020, rel=0.01)  # 5, 10, 20, 30, 40, 100 ms -> 3rd
    assert tracker.signals(Scope("kube-system")).responses == 0


def test_the_window_slides_with_the_clock(tracker_and_clock):
    tracker, clock = tracker_and_clock
    clock.now = T0 + 75  # the response at T0+10 leaves the window (T0+15, T0+75]
    red = tracker.signals(FRONTEND_SCOPE)
    assert red.responses == 4
    assert red.traffic.value == pytest.approx(4 / 60)
    assert red.errors.value == pytest.approx(1 / 4)
    clock.now = T0 + 200
    empty = tracker.signals(FRONTEND_SCOPE)
    assert empty.traffic.value == 0
    assert math.isnan(empty.errors.value) and math.isnan(empty.latency_p95.value)  # undefined, yet not unavailable
    assert empty.errors.available and empty.by_source.rows == []


def test_a_young_tracker_divides_by_the_time_it_has_watched():
    clock = Clock(T0 + 30)
    tracker = RedTracker(window_s=60, clock=clock)
    tracker.ingest(FLOWS)
    clock.now = T0 + 60
    red = tracker.signals(FRONTEND_SCOPE)
    assert red.responses == 5 and red.traffic.value == pytest.approx(5 / 30)
    assert "30 s" in red.traffic.detail


def test_nearest_rank_and_bad_arguments():
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 0.51) == 3.0
    assert nearest_rank([7.0], 0.99) == 7.0
    assert math.isnan(nearest_rank([], 0.5))
    with pytest.raises(ValueError, match="window"):
        RedTracker(window_s=0)
    with pytest.raises(ValueError, match="needs a namespace"):
        Scope(workload="frontend")


def egress_copy(response):
    """The same response as the client's egress proxy reports it."""
    copy = type(response)()
    copy.CopyFrom(response)
    copy.flow.traffic_direction = 2  # EGRESS
    return copy


def test_a_response_seen_by_both_proxies_counts_once():
    seen_twice = [
        http_response(T0 + 10, LOADGEN, FRONTEND, 200, 0.010),
        http_response(T0 + 20, LOADGEN, FRONTEND, 503, 0.100),
    ]
    client_only = http_response(T0 + 30, FRONTEND, CART, 200, 0.005)  # cartservice's side is not visible
    clock = Clock(T0)
    tracker = RedTracker(window_s=60, clock=clock)
    tracker.ingest(records([*seen_twice, *map(egress_copy, seen_twice), egress_copy(client_only)]))
    clock.now = T0 + 60
    frontend = tracker.signals(FRONTEND_SCOPE)
    assert frontend.responses == 2 and frontend.errors.value == pytest.approx(1 / 2)
    assert tracker.signals(Scope("otel-demo", "cartservice")).responses == 1  # the client's report is all there is
