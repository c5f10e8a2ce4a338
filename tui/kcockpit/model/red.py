"""RED signals (rate, errors, duration) computed from L7 HTTP flows, plus the result types
every golden-signal number travels in, whichever source it comes from.

Used when no Prometheus is configured, and as a cross-check when one is. Only HTTP
*response* flows count: they carry the status code and the request's latency. In a
response flow Hubble puts the server in `source` and the client in `destination`, so a
workload's incoming requests are the responses whose source is that workload.

With L7 visibility on both ends, one response is seen twice: by the server's ingress
proxy and by the client's egress proxy. Like the dashboards' default "Reporter: server",
a client->server pair counts the server's reports when it has any in the window and
falls back to the client's only when the server side is not visible.

The window slides on an injectable clock (unix seconds, the flows' own time base), so
tests and replayed captures are exact.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kcockpit.model.record import FlowRecord

SOURCE_PROMETHEUS = "prometheus"
SOURCE_FLOWS = "flows"
L7_RESPONSE = 2
TRAFFIC_EGRESS = 2  # TrafficDirection: seen at the client's egress proxy


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


@dataclass(frozen=True, slots=True)
class _Response:
    time_s: float
    status: int
    latency_s: float
    server_namespace: str
    server_workload: str
    client: str  # "ns/workload" or the endpoint's display name
    server_reported: bool  # seen by the server's ingress proxy, not the client's egress one

    @property
    def pair(self) -> tuple[str, str, str]:
        return self.client, self.server_namespace, self.server_workload


def nearest_rank(sorted_values: list[float], quantile: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `quantile` of all values at or below it."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(quantile * len(sorted_values)))
    return sorted_values[rank - 1]


class RedTracker:
    """Keeps the HTTP responses of the last `window_s` seconds and computes RED signals.

    Feed it every new FlowRecord (`ingest`, e.g. from `FlowStore.since(mark)`); ask for
    `signals(scope)` whenever the UI refreshes. Rates divide by the window, or by the time
    since the tracker started when that is shorter, so the first minute is not diluted."""

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        if window_s <= 0:
            raise ValueError(f"RED window must be positive, got {window_s}")
        self.window_s = window_s
        self._clock = clock
        self._started = clock()
        self._responses: deque[_Response] = deque()

    def ingest(self, records: Iterable[FlowRecord]) -> None:
        for record in records:
            if record.l7_kind != "http" or record.l7_type != L7_RESPONSE:
                continue
            server, client = record.source, record.destination
            self._responses.append(
                _Response(
                    time_s=record.time_ns / 1e9,
                    status=record.http_code,
                    latency_s=record.latency_ns / 1e9,
                    server_namespace=server.namespace,
                    server_workload=server.workload or server.app(),
                    client=client.workload_name(),
                    server_reported=record.direction != TRAFFIC_EGRESS,
                )
            )

    def _window(self) -> tuple[list[_Response], float, float]:
        now = self._clock()
        start = now - self.window_s
        responses = self._responses
        while responses and responses[0].time_s <= start:
            responses.popleft()
        span = min(self.window_s, max(now - self._started, 0.0)) or self.window_s
        window = [r for r in responses if r.time_s <= now]
        server_seen = {r.pair for r in window if r.server_reported}
        return [r for r in window if r.server_reported or r.pair not in server_seen], span, now

    def signals(self, scope: Scope = Scope()) -> RedSignals:
        window, span, now = self._window()
        selected = [r for r in window if _in_scope(r, scope)]
        return RedSignals.compute(selected, span, scope, now)


def _in_scope(response: _Response, scope: Scope) -> bool:
    if scope.namespace and response.server_namespace != scope.namespace:
        return False
    return not scope.workload or response.server_workload == scope.workload


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
    def compute(cls, responses: list[_Response], span_s: float, scope: Scope, now: float) -> RedSignals:
        count = len(responses)
        detail = f"{count} HTTP responses to {scope.describe()} in the last {span_s:g} s of flows"
        server_errors = sum(1 for r in responses if 500 <= r.status <= 599)
        latencies = sorted(r.latency_s for r in responses)

        def reading(name: str, value: float, unit: str) -> Reading:
            return Reading(name, value, unit, SOURCE_FLOWS, detail)

        by_source = Counter((r.client, str(r.status)) for r in responses)
        rows = [
            ({"source": client, "status": status}, n / span_s)
            for (client, status), n in sorted(by_source.items(), key=lambda item: (-item[1], item[0]))
        ]
        return cls(
            traffic=reading("traffic", count / span_s, "req/s"),
            errors=reading("errors", server_errors / count if count else math.nan, "ratio"),
            latency_p50=reading("latency_p50", nearest_rank(latencies, 0.50), "s"),
            latency_p95=reading("latency_p95", nearest_rank(latencies, 0.95), "s"),
            latency_p99=reading("latency_p99", nearest_rank(latencies, 0.99), "s"),
            by_source=Breakdown("requests_by_source", "req/s", SOURCE_FLOWS, detail, rows),
            responses=count,
        )
