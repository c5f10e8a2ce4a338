"""Cells: the counters of one key over one time bucket (a second, ten seconds, or all time).

A cell only ever grows by `merge`; the windows sum cells. Each table has its own cell type
with the counters its rows show. Cells are plain slotted objects: they are made per key
per second on the ingest side and shipped as they are. Their counts by key (drop reasons,
status codes, ...) are plain dicts, not Counters: an empty Counter costs ten times as much to
make, and most cells never count any.
"""

from __future__ import annotations

from kcockpit.model.aggregates.sketch import LatencySketch


def count(counts: dict, key, n: int = 1) -> None:
    """Add `n` to `counts[key]`."""
    counts[key] = counts.get(key, 0) + n


def _merge_counts(mine: dict, theirs: dict) -> None:
    for key, n in theirs.items():
        mine[key] = mine.get(key, 0) + n


def _merge_sketch(mine: LatencySketch | None, theirs: LatencySketch | None) -> LatencySketch | None:
    if theirs is None:
        return mine
    if mine is None:
        mine = LatencySketch()
    mine.merge(theirs)
    return mine


class Seen:
    """When a cell's flows were seen: the first and the last flow time (0 before any)."""

    __slots__ = ()

    def seen(self, time_ns: int) -> None:
        if not self.first_ns or time_ns < self.first_ns:
            self.first_ns = time_ns
        if time_ns > self.last_ns:
            self.last_ns = time_ns

    def _merge_seen(self, other) -> None:
        if other.first_ns:
            self.seen(other.first_ns)
        if other.last_ns:
            self.seen(other.last_ns)


class EdgeCell(Seen):
    """A service edge: flow counts by verdict, drops by reason, and HTTP RED counters kept
    apart by reporter (the server's ingress proxy, the client's egress proxy), so a window
    can count one side's view of each exchange."""

    __slots__ = (
        "flows", "forwarded", "dropped", "drop_reasons", "first_ns", "last_ns",
        "server_requests", "server_responses", "server_errors", "server_latency", "server_codes",
        "client_requests", "client_responses", "client_errors", "client_latency", "client_codes",
    )

    def __init__(self) -> None:
        self.flows = self.forwarded = self.dropped = 0
        self.drop_reasons: dict[int, int] = {}
        self.first_ns = 0
        self.last_ns = 0
        self.server_requests = self.server_responses = self.server_errors = 0
        self.client_requests = self.client_responses = self.client_errors = 0
        self.server_latency: LatencySketch | None = None
        self.client_latency: LatencySketch | None = None
        self.server_codes: dict[int, int] = {}  # HTTP status of the responses
        self.client_codes: dict[int, int] = {}


    def merge(self, other: EdgeCell) -> None:
        self.flows += other.flows
        self.forwarded += other.forwarded
        self.dropped += other.dropped
        if other.drop_reasons:
            _merge_counts(self.drop_reasons, other.drop_reasons)
        self._merge_seen(other)
        self.server_requests += other.server_requests
        self.server_responses += other.server_responses
        self.server_errors += other.server_errors
        self.client_requests += other.client_requests
        self.client_responses += other.client_responses
        self.client_errors += other.client_errors
        self.server_latency = _merge_sketch(self.server_latency, other.server_latency)
        self.client_latency = _merge_sketch(self.client_latency, other.client_latency)
        if other.server_codes:
            _merge_counts(self.server_codes, other.server_codes)
        if other.client_codes:
            _merge_counts(self.client_codes, other.client_codes)


class DnsCell(Seen):
    """DNS lookups of one client, name and query type."""

    __slots__ = (
        "requests", "responses", "rcodes", "unanswered", "dropped", "drop_policies", "latency",
        "first_ns", "last_ns", "servers",
    )

    def __init__(self) -> None:
        self.requests = self.responses = self.unanswered = self.dropped = 0
        self.rcodes: dict[str, int] = {}
        self.drop_policies: dict[str, int] = {}  # deciding policy of dropped lookups ("" unknown)
        self.servers: dict[str, int] = {}  # the DNS server endpoints asked
        self.latency: LatencySketch | None = None
        self.first_ns = 0
        self.last_ns = 0


    def merge(self, other: DnsCell) -> None:
        self.requests += other.requests
        self.responses += other.responses
        self.unanswered += other.unanswered
        self.dropped += other.dropped
        if other.rcodes:
            _merge_counts(self.rcodes, other.rcodes)
        if other.drop_policies:
            _merge_counts(self.drop_policies, other.drop_policies)
        if other.servers:
            _merge_counts(self.servers, other.servers)
        self.latency = _merge_sketch(self.latency, other.latency)
        self._merge_seen(other)


class CountCell(Seen):
    """A count of flows and when they were seen (policy groups, all flows)."""

    __slots__ = ("flows", "first_ns", "last_ns")

    def __init__(self) -> None:
        self.flows = 0
        self.first_ns = 0
        self.last_ns = 0


    def merge(self, other: CountCell) -> None:
        self.flows += other.flows
        self._merge_seen(other)
