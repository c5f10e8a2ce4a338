"""FlowAggregates: the tables every tab and `kcockpit report` read, fed once per flow.

Two halves meet here. The Accumulator (`accumulator.py`) does the per-flow work and hands
over Deltas of per-second cells; FlowAggregates merges deltas into windowed tables
(`table.py`) and answers queries with rows (`rows.py`). `ingest` runs both halves in the
caller's thread; a feeder on another thread or process can run the accumulator itself and
only `merge` here. Merging and reading take one lock, held briefly: the work of a merge is
proportional to the (key, second) cells in the delta, never to the flows behind them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from kcockpit.model.aggregates.accumulator import Accumulator, Delta
from kcockpit.model.aggregates.cells import CountCell, DnsCell, EdgeCell
from kcockpit.model.aggregates.naming import OTHER
from kcockpit.model.aggregates.rows import DnsRow, PolicyGroup, ServiceEdge, Window, drop_reason_names
from kcockpit.model.aggregates.table import NS, WindowedTable
from kcockpit.model.record import FlowRecord

EDGE_CAP = 5_000
DNS_CAP = 5_000
POLICY_CAP = 2_000
_ALL = "all"


class FlowAggregates:
    def __init__(self, *, edge_cap: int = EDGE_CAP, dns_cap: int = DNS_CAP, policy_cap: int = POLICY_CAP) -> None:
        self.edges: WindowedTable[EdgeCell] = WindowedTable(EdgeCell, (OTHER, OTHER, 0, ""), edge_cap)
        self.dns: WindowedTable[DnsCell] = WindowedTable(DnsCell, (OTHER, "", ""), dns_cap)
        self.policies: WindowedTable[CountCell] = WindowedTable(CountCell, ("", "", "", OTHER, OTHER, 0, ""), policy_cap)
        self.totals: WindowedTable[CountCell] = WindowedTable(CountCell, _ALL, 1)
        self._dns_samples: dict = {}
        self._policy_samples: dict = {}
        self._accumulator = Accumulator()
        self._lock = threading.Lock()
        self.flows = 0
        self.first_ns = 0
        self.last_ns = 0
        self.pending_evicted = 0
        self.scope = "all flows"
        self.generation = 0  # grows with every merge that changed something: readers skip redraws

    # --- feeding -----------------------------------------------------------------------

    def ingest(self, records: Iterable[FlowRecord]) -> None:
        """Count these records (in the caller's thread)."""
        self.ingest_raw(record.raw for record in records)

    def ingest_raw(self, raws: Iterable[bytes]) -> None:
        """Count serialized GetFlowsResponses (in the caller's thread)."""
        self._accumulator.add_raw(raws)
        self.merge(self._accumulator.take())

    def advance(self, now_ns: int) -> None:
        """Time went on without flows: lookups waiting longer than 5 s become unanswered."""
        self._accumulator.expire(now_ns)
        delta = self._accumulator.take()
        if delta:
            self.merge(delta)

    def merge(self, delta: Delta) -> None:
        with self._lock:
            for (key, second), cell in delta.edges.items():
                self.edges.merge(key, second, cell)
            for (key, second), cell in delta.dns.items():
                self.dns.merge(key, second, cell)
            for (key, second), cell in delta.policies.items():
                self.policies.merge(key, second, cell)
            for key, raw in delta.dns_samples.items():
                self._dns_samples[key] = raw
            for key, raw in delta.policy_samples.items():
                self._policy_samples[key] = raw
            if len(self._dns_samples) > 2 * self.dns.cap:
                self._dns_samples = {k: v for k, v in self._dns_samples.items() if k in set(self.dns.keys())}
            if len(self._policy_samples) > 2 * self.policies.cap:
                self._policy_samples = {k: v for k, v in self._policy_samples.items() if k in set(self.policies.keys())}
            if delta.flows:
                self._count_flows(delta)
            self.pending_evicted += delta.pending_evicted
            self.generation += 1

    def _count_flows(self, delta: Delta) -> None:
        self.flows += delta.flows
        if not self.first_ns or delta.first_ns < self.first_ns:
            self.first_ns = delta.first_ns
        self.last_ns = max(self.last_ns, delta.last_ns)
        # Flows per second for the windows' counts: the edge cells carry every flow.
        per_second: dict[int, CountCell] = {}
        for (_, second), cell in delta.edges.items():
            count = per_second.get(second)
            if count is None:
                count = per_second[second] = CountCell()
            count.flows += cell.flows
            count.seen(cell.first_ns)
            count.seen(cell.last_ns)
        for second, count in per_second.items():
            self.totals.merge(_ALL, second, count)

    def reset(self, scope: str) -> None:
        """Forget everything (the stream feeding the aggregates changed what it carries)."""
        with self._lock:
            fresh = FlowAggregates(edge_cap=self.edges.cap, dns_cap=self.dns.cap, policy_cap=self.policies.cap)
            for name in ("edges", "dns", "policies", "totals", "_dns_samples", "_policy_samples", "_accumulator"):
                setattr(self, name, getattr(fresh, name))
            self.flows = self.first_ns = self.last_ns = self.pending_evicted = 0
            self.scope = scope
            self.generation += 1

    # --- reading -----------------------------------------------------------------------

    def now_s(self) -> int:
        """The newest flow's second: the end of a window over a capture or a quiet stream."""
        return self.last_ns // NS

    def window(self, window_s: int | None, now_s: int | None = None) -> Window:
        now_s = self.now_s() if now_s is None else now_s
        with self._lock:
            if window_s is None:
                return Window(None, self.first_ns, self.last_ns, self.flows, self.scope)
            flows = sum(cell.flows for _, cell in self.totals.window(window_s, now_s))
            start_ns = max((now_s - window_s) * NS, self.first_ns)
            return Window(window_s, start_ns, max(now_s * NS, start_ns), flows, self.scope)

    def services(self, window_s: int | None, now_s: int | None = None) -> list[ServiceEdge]:
        """Every edge with flows in the window, busiest first."""
        now_s = self.now_s() if now_s is None else now_s
        with self._lock:
            rows = [_edge_row(key, cell) for key, cell in self.edges.window(window_s, now_s)]
        rows.sort(key=lambda e: (-e.flows, e.client, e.server, e.port, e.protocol))
        return rows

    def dns_rows(self, window_s: int | None, now_s: int | None = None) -> list[DnsRow]:
        """Every (client, name, type) with lookups in the window, most requests first."""
        now_s = self.now_s() if now_s is None else now_s
        with self._lock:
            rows = [_dns_row(key, cell, self._dns_samples.get(key)) for key, cell in self.dns.window(window_s, now_s)]
        rows.sort(key=lambda r: (-r.requests, r.client, r.query, r.qtype))
        return rows

    def policy_groups(self, window_s: int | None, now_s: int | None = None) -> list[PolicyGroup]:
        """Every policy verdict group in the window, most flows first."""
        now_s = self.now_s() if now_s is None else now_s
        with self._lock:
            rows = [_policy_row(key, cell, self._policy_samples.get(key)) for key, cell in self.policies.window(window_s, now_s)]
        rows.sort(key=lambda g: (-g.flows, g.verdict, g.direction, g.policy or "", g.source, g.destination, g.port))
        return rows

    def edge_series(self, key, window_s: int, now_s: int | None = None) -> list[tuple[int, EdgeCell]]:
        now_s = self.now_s() if now_s is None else now_s
        with self._lock:
            return self.edges.series(key, window_s, now_s)

    def flow_series(self, window_s: int, now_s: int | None = None) -> list[tuple[int, int]]:
        """(bucket start second, flows) over the window, for sparklines."""
        now_s = self.now_s() if now_s is None else now_s
        with self._lock:
            return [(second, cell.flows) for second, cell in self.totals.series(_ALL, window_s, now_s)]


def _edge_row(key, cell: EdgeCell) -> ServiceEdge:
    client, server, port, protocol = key
    # One reporter's view of each exchange, the server's when its proxy reported any (as the
    # dashboards' "Reporter: server"), else the client's.
    if cell.server_requests or cell.server_responses:
        reporter, requests, responses, errors, latency, codes = (
            "server", cell.server_requests, cell.server_responses, cell.server_errors, cell.server_latency, cell.server_codes)
    elif cell.client_requests or cell.client_responses:
        reporter, requests, responses, errors, latency, codes = (
            "client", cell.client_requests, cell.client_responses, cell.client_errors, cell.client_latency, cell.client_codes)
    else:
        reporter, requests, responses, errors, latency, codes = "", 0, 0, 0, None, {}
    return ServiceEdge(
        client=client, server=server, port=port, protocol=protocol,
        flows=cell.flows, forwarded=cell.forwarded, dropped=cell.dropped,
        drop_reasons=drop_reason_names(cell.drop_reasons),
        requests=requests, responses=responses, errors=errors, latency=latency, reporter=reporter,
        status_codes=dict(codes), first_ns=cell.first_ns, last_ns=cell.last_ns,
    )


def _dns_row(key, cell: DnsCell, sample: bytes | None) -> DnsRow:
    client, query, qtype = key
    return DnsRow(
        client=client, query=query, qtype=qtype,
        requests=cell.requests, responses=cell.responses, rcodes=dict(cell.rcodes),
        unanswered=cell.unanswered, dropped=cell.dropped, drop_policies=dict(cell.drop_policies),
        servers=dict(cell.servers), latency=cell.latency, first_ns=cell.first_ns, last_ns=cell.last_ns,
        sample=sample if cell.dropped else None,
    )


def _policy_row(key, cell: CountCell, sample: bytes | None) -> PolicyGroup:
    verdict, direction, policy, source, destination, port, protocol = key
    return PolicyGroup(
        verdict=verdict, direction=direction, policy=policy or None, decided_by="hubble" if policy else None,
        source=source, destination=destination, port=port, protocol=protocol,
        flows=cell.flows, first_ns=cell.first_ns, last_ns=cell.last_ns, sample=sample,
    )
