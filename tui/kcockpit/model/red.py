"""RED signals (rate, errors, duration) from L7 HTTP flows, plus the result types every
golden-signal number travels in, whichever source it comes from.

Computed from the flow aggregates' service edges (`model.aggregates`), so that the Services
tab, `kcockpit report` and these signals count alike: traffic is the HTTP *responses* to a
workload (they carry the status and the request's latency), errors the 5xx among them,
latency their percentiles (from the aggregates' sketch, within 1%). A response that both
proxies report counts once: each edge counts the server's reports when it has any in the
window, else the client's, like the dashboards' default "Reporter: server".

The window slides on an injectable clock (unix seconds, the flows' own time base), so
tests and replayed captures are exact.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kcockpit.model.aggregates import FlowAggregates, LatencySketch, ServiceEdge
from kcockpit.model.record import FlowRecord

SOURCE_PROMETHEUS = "prometheus"
SOURCE_FLOWS = "flows"


@dataclass(frozen=True, slots=True)
class Reading:
    """One golden-signal number and where it came from.

    `value` None means unavailable (see `detail` for why), which is different from 0.
    NaN means the source answered but the number is undefined (e.g. error ratio with no
    requests). `detail` is the PromQL for Prometheus, a description for flows."""

    name: str
    value: float | None
    unit: str
    source: str
    detail: str

    @property
    def available(self) -> bool:
        return self.value is not None


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A signal split by labels, e.g. requests per (source workload, status)."""

    name: str
    unit: str
    source: str
    detail: str
    rows: list[tuple[dict[str, str], float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Scope:
    """What the signals are about: a workload, a namespace, or (both empty) the cluster."""

    namespace: str = ""
    workload: str = ""
    cluster: str = ""

    def __post_init__(self) -> None:
        if self.workload and not self.namespace:
            raise ValueError(f"workload {self.workload!r} needs a namespace")

    def describe(self) -> str:
        where = f"{self.namespace}/{self.workload}" if self.workload else self.namespace or "whole cluster"
        return f"{where} in cluster {self.cluster}" if self.cluster else where


def nearest_rank(sorted_values: list[float], quantile: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `quantile` of all values at or below it."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(quantile * len(sorted_values)))
    return sorted_values[rank - 1]


class RedTracker:
    """RED signals over the last `window_s` seconds of flows.

    Feed it every new FlowRecord (`ingest`); ask for `signals(scope)` whenever the UI
    refreshes. Rates divide by the window, or by the time since the tracker started when
    that is shorter, so the first minute is not diluted. The aggregates may be shared with
    other readers (pass them in); ingest only what they have not counted yet."""

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.time,
                 aggregates: FlowAggregates | None = None) -> None:
        if window_s <= 0:
            raise ValueError(f"RED window must be positive, got {window_s}")
        self.window_s = window_s
        self._clock = clock
        self._started = clock()
        self.aggregates = aggregates if aggregates is not None else FlowAggregates()

    def ingest(self, records: Iterable[FlowRecord]) -> None:
        self.aggregates.ingest(records)

    def signals(self, scope: Scope = Scope()) -> RedSignals:
        now = self._clock()
        span = min(self.window_s, max(now - self._started, 0.0)) or self.window_s
        edges = self.aggregates.services(math.ceil(self.window_s), int(now))
        return RedSignals.from_edges(edges, span, scope)


def serves_scope(edge: ServiceEdge, scope: Scope) -> bool:
    """Whether `edge`'s server is the scope's workload (or in its namespace, or anywhere)."""
    server = edge.server
    if scope.namespace and server.namespace != scope.namespace:
        return False
    return not scope.workload or server.name == f"{scope.namespace}/{scope.workload}"


@dataclass(frozen=True, slots=True)
class RedSignals:
    """Rate, error ratio, p50/p95/p99 latency and requests by client and status, from flows."""

    traffic: Reading
    errors: Reading
    latency_p50: Reading
    latency_p95: Reading
    latency_p99: Reading
    by_source: Breakdown
    responses: int

    @classmethod
    def from_edges(cls, edges: Iterable[ServiceEdge], span_s: float, scope: Scope = Scope()) -> RedSignals:
        """The signals of the edges whose server is in `scope`, over a window of `span_s`."""
        served = [e for e in edges if e.reporter and serves_scope(e, scope)]
        count = sum(e.responses for e in served)
        server_errors = sum(e.errors for e in served)
        latency = LatencySketch.of(edge.latency for edge in served)
        detail = f"{count} HTTP responses to {scope.describe()} in the last {span_s:g} s of flows"

        def reading(name: str, value: float, unit: str) -> Reading:
            return Reading(name, value, unit, SOURCE_FLOWS, detail)

        by_source = Counter()
        for edge in served:
            for code, n in edge.status_codes.items():
                by_source[(str(edge.client), str(code))] += n
        rows = [
            ({"source": client, "status": status}, n / span_s)
            for (client, status), n in sorted(by_source.items(), key=lambda item: (-item[1], item[0]))
        ]
        return cls(
            traffic=reading("traffic", count / span_s, "req/s"),
            errors=reading("errors", server_errors / count if count else math.nan, "ratio"),
            latency_p50=reading("latency_p50", latency.quantile_ns(0.50) / 1e9, "s"),
            latency_p95=reading("latency_p95", latency.quantile_ns(0.95) / 1e9, "s"),
            latency_p99=reading("latency_p99", latency.quantile_ns(0.99) / 1e9, "s"),
            by_source=Breakdown("requests_by_source", "req/s", SOURCE_FLOWS, detail, rows),
            responses=count,
        )
