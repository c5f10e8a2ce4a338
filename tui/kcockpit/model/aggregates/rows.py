"""The rows the aggregates answer with: plain, immutable, and the same for every reader
(the tabs, `kcockpit report` and its JSON)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kcockpit.model.aggregates.naming import Endpoint
from kcockpit.model.aggregates.sketch import LatencySketch
from kcockpit.model.record import DROP_REASON_NAMES

NS = 1_000_000_000


def rfc3339(time_ns: int) -> str:
    """`2026-12-04T20:01:02.345Z` (UTC, milliseconds)."""
    moment = datetime.fromtimestamp(time_ns / NS, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def window_label(window_s: int | None) -> str:
    if window_s is None:
        return "all"
    return f"{window_s // 60}m" if window_s % 60 == 0 else f"{window_s}s"


@dataclass(frozen=True, slots=True)
class Window:
    """What a table was computed over: the window (None = since the first flow), its flow-time
    bounds, how many flows fell in it, and the scope of the stream that fed the aggregates."""

    window_s: int | None
    from_ns: int
    to_ns: int
    flows: int
    scope: str = "all flows"

    @property
    def label(self) -> str:
        return window_label(self.window_s)

    @property
    def span_s(self) -> float:
        """Seconds the rates divide by: the window, or less when the data is younger."""
        span = (self.to_ns - self.from_ns) / NS
        if self.window_s is not None:
            span = min(float(self.window_s), span)
        return max(span, 1.0)

    def to_json(self) -> dict:
        return {"from": rfc3339(self.from_ns), "to": rfc3339(self.to_ns), "flows": self.flows,
                "window": self.label, "scope": self.scope}


@dataclass(frozen=True, slots=True)
class ServiceEdge:
    """Client → server on one port: every flow event of the exchange, and HTTP RED from one
    reporter (`server` when the server's proxy reported any in the window, else `client`)."""

    client: Endpoint
    server: Endpoint
    port: int
    protocol: str
    flows: int
    forwarded: int
    dropped: int
    drop_reasons: dict[str, int]
    requests: int
    responses: int
    errors: int
    latency: LatencySketch | None
    reporter: str  # "server", "client", or "" without HTTP
    status_codes: dict[int, int]  # HTTP responses by status, from the same reporter
    first_ns: int
    last_ns: int

    @property
    def error_ratio(self) -> float:
        """5xx responses / responses (NaN without responses)."""
        return self.errors / self.responses if self.responses else math.nan

    @property
    def drop_ratio(self) -> float:
        return self.dropped / self.flows if self.flows else 0.0

    @property
    def top_drop_reason(self) -> str:
        if not self.drop_reasons:
            return ""
        return max(self.drop_reasons.items(), key=lambda item: (item[1], item[0]))[0]

    def latency_ms(self) -> dict[str, float] | None:
        return self.latency.quantiles_ms() if self.latency is not None else None

    def to_json(self) -> dict:
        return {
            "source": self.client.name, "source_detail": self.client.detail,
            "destination": self.server.name, "destination_detail": self.server.detail,
            "port": self.port, "protocol": self.protocol,
            "flows": self.flows, "forwarded": self.forwarded, "dropped": self.dropped,
            "drop_reasons": dict(self.drop_reasons),
            "requests": self.requests, "errors": self.errors, "responses": self.responses,
            "reporter": self.reporter or None,
            "status_codes": {str(code): count for code, count in sorted(self.status_codes.items())},
            "latency_ms": self.latency_ms(),
            "first_seen": rfc3339(self.first_ns), "last_seen": rfc3339(self.last_ns),
        }


@dataclass(frozen=True, slots=True)
class DnsRow:
    """One client's lookups of one name and type. `query` "" is a lookup dropped before the
    DNS proxy (at L3/L4), whose name was never seen."""

    client: Endpoint
    query: str
    qtype: str
    requests: int
    responses: int
    rcodes: dict[str, int]
    unanswered: int
    dropped: int
    drop_policies: dict[str, int]  # deciding policy (Hubble's) of the dropped lookups; "" unknown
    servers: dict[str, int]
    latency: LatencySketch | None
    first_ns: int
    last_ns: int
    sample: bytes | None = field(default=None, repr=False)  # a dropped lookup, for explanations

    @property
    def answered_ratio(self) -> float:
        return self.responses / self.requests if self.requests else math.nan

    def latency_ms(self) -> dict[str, float] | None:
        return self.latency.quantiles_ms() if self.latency is not None else None

    def to_json(self) -> dict:
        return {
            "client": self.client.name, "client_detail": self.client.detail,
            "query": self.query, "qtype": self.qtype,
            "requests": self.requests, "responses": self.responses, "rcodes": dict(self.rcodes),
            "unanswered": self.unanswered, "dropped": self.dropped,
            "drop_policies": {k: v for k, v in self.drop_policies.items() if k},
            "servers": dict(self.servers),
            "latency_ms": self.latency_ms(),
            "first_seen": rfc3339(self.first_ns), "last_seen": rfc3339(self.last_ns),
        }


@dataclass(frozen=True, slots=True)
class PolicyGroup:
    """Policy verdicts of one kind between two endpoints on one port. `policy` is the deciding
    policy (`ns/name`, or `name` when clusterwide) and `decided_by` says whose answer it is:
    `hubble` (carried by the flows), `engine` (kcockpit's policy engine), or None."""

    verdict: str
    direction: str
    policy: str | None
    decided_by: str | None
    source: Endpoint
    destination: Endpoint
    port: int
    protocol: str
    flows: int
    first_ns: int
    last_ns: int
    sample: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {
            "verdict": self.verdict, "direction": self.direction,
            "policy": self.policy, "decided_by": self.decided_by,
            "source": self.source.name, "source_detail": self.source.detail,
            "destination": self.destination.name, "destination_detail": self.destination.detail,
            "port": self.port, "protocol": self.protocol, "flows": self.flows,
            "first_seen": rfc3339(self.first_ns), "last_seen": rfc3339(self.last_ns),
        }


def drop_reason_names(reasons) -> dict[str, int]:
    return {DROP_REASON_NAMES.get(number, str(number)): count for number, count in reasons.items()}
