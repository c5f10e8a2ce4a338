"""Accumulator: the per-flow side of the aggregates. Each flow passes through `add` once and
lands in per-second cells of a Delta; `take()` hands the delta over and starts a new one.

The counting rules (the README's "Aggregates" section says them for users):
- Service edges: every flow event counts on its edge (client → server, server port, L4
  protocol); a reply counts on its request's edge. Forwarded/dropped by verdict. HTTP L7
  REQUEST flows are requests (dropped ones too), RESPONSE flows with a 5xx code are errors,
  their latency_ns the latency, kept apart per reporter (ingress proxy = server's).
- DNS rows (client, query name, query type): L7 DNS requests and responses, plus policy drops
  to port 53 that never reached the DNS proxy (query ""). A request or response that two
  nodes both report counts once; the policy-verdict event Cilium emits beside a drop event
  is the same packet and counts once. A forwarded request with no response for the same
  client address, query and type within 5 s of flow time is unanswered.
- Policy groups: policy-verdict events, and drops with reason POLICY_DENIED / POLICY_DENY,
  by verdict, direction, deciding policy (Hubble's), source, destination, port, protocol.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from kcockpit.model.aggregates.cells import DnsCell, EdgeCell, CountCell
from kcockpit.model.aggregates.facts import (
    EVENT_DROP,
    EVENT_POLICY_VERDICT,
    L7_REQUEST,
    L7_RESPONSE,
    POLICY_DROP_REASONS,
    FlowFacts,
    flow_facts,
)
from kcockpit.model.aggregates.naming import Endpoint
from kcockpit.model.aggregates.sketch import LatencySketch
from kcockpit.model.record import DNS_RCODE_NAMES, VERDICT_NAMES

NS = 1_000_000_000
UNANSWERED_AFTER_NS = 5 * NS
SAME_REPORT_NS = 2 * NS  # two nodes' reports of one DNS message arrive this close together
SAME_PACKET_NS = 1 * NS  # a drop event and its policy-verdict event arrive this close together
PENDING_LIMIT = 100_000  # forwarded DNS requests awaiting a response
RECENT_LIMIT = 100_000
VERDICT_FORWARDED = 1
VERDICT_DROPPED = 2
DNS_PORT = 53
POLICY_DENIED = 133

EdgeKey = tuple[Endpoint, Endpoint, int, str]  # client, server, server port, protocol
DnsKey = tuple[Endpoint, str, str]  # client, query name ("" dropped before the proxy), qtype
PolicyKey = tuple[str, str, str, Endpoint, Endpoint, int, str]  # verdict, direction, policy, src, dst, port, protocol


@dataclass
class Delta:
    """What arrived since the last `take()`: cells per (key, flow second), the newest raw
    flow of each DNS row with drops and of each policy group (for explanations), and counts."""

    edges: dict[tuple[EdgeKey, int], EdgeCell] = field(default_factory=dict)
    dns: dict[tuple[DnsKey, int], DnsCell] = field(default_factory=dict)
    policies: dict[tuple[PolicyKey, int], CountCell] = field(default_factory=dict)
    dns_samples: dict[DnsKey, bytes] = field(default_factory=dict)
    policy_samples: dict[PolicyKey, bytes] = field(default_factory=dict)
    flows: int = 0
    first_ns: int = 0
    last_ns: int = 0
    not_flows: int = 0  # responses without a flow (lost events, node status): not counted
    pending_evicted: int = 0  # DNS requests forgotten unresolved because too many were pending

    def __bool__(self) -> bool:
        return bool(self.flows or self.edges or self.dns or self.policies or self.pending_evicted)


class _Recent:
    """Keys seen in the last `ttl_ns` of flow time, with who reported them."""

    def __init__(self, ttl_ns: int) -> None:
        self.ttl_ns = ttl_ns
        self._seen: OrderedDict[tuple, tuple[int, object]] = OrderedDict()

    def seen_elsewhere(self, key: tuple, time_ns: int, reporter: object) -> bool:
        """True when `key` was seen from another reporter within the ttl (a duplicate);
        otherwise remember this sighting."""
        found = self._seen.get(key)
        if found is not None and found[1] != reporter and abs(time_ns - found[0]) <= self.ttl_ns:
            return True
        self._seen[key] = (time_ns, reporter)
        self._seen.move_to_end(key)
        if len(self._seen) > RECENT_LIMIT:
            self._seen.popitem(last=False)
        return False

    def expire(self, watermark_ns: int) -> None:
        seen = self._seen
        horizon = watermark_ns - 4 * self.ttl_ns  # out-of-order slack
        while seen:
            key, (time_ns, _) = next(iter(seen.items()))
            if time_ns >= horizon:
                break
            seen.popitem(last=False)


class Accumulator:
    def __init__(self) -> None:
        self._delta = Delta()
        self._watermark_ns = 0
        self._pending: dict[tuple, tuple[int, DnsKey]] = {}
        self._dns_reports = _Recent(SAME_REPORT_NS)
        self._policy_packets = _Recent(SAME_PACKET_NS)

    @property
    def newest_ns(self) -> int:
        """The newest flow time counted (the clock that unanswered lookups are judged by)."""
        return self._watermark_ns

    @property
    def pending_lookups(self) -> int:
        return len(self._pending)

    def add_raw(self, raws: Iterable[bytes]) -> None:
        """Count serialized GetFlowsResponses (the stream's messages as they came)."""
        add = self.add
        delta = self._delta
        for raw in raws:
            facts = flow_facts(raw)
            if facts is None:
                delta.not_flows += 1
            else:
                add(facts)
        self.expire()

    def add(self, facts: FlowFacts) -> None:
        delta = self._delta
        time_ns = facts.time_ns
        second = time_ns // NS
        delta.flows += 1
        if not delta.first_ns or time_ns < delta.first_ns:
            delta.first_ns = time_ns
        if time_ns > delta.last_ns:
            delta.last_ns = time_ns
        if time_ns > self._watermark_ns:
            self._watermark_ns = time_ns
        self._add_edge(facts, second, delta)
        if facts.l7 == "dns":
            self._add_dns_message(facts, second, delta)
        event_type = facts.event_type
        if event_type == EVENT_POLICY_VERDICT or (event_type == EVENT_DROP and facts.drop_reason in POLICY_DROP_REASONS):
            self._add_policy_verdict(facts, second, delta)

    # --- tables ----------------------------------------------------------------------

    def _add_edge(self, facts: FlowFacts, second: int, delta: Delta) -> None:
        if facts.reply:
            key = (facts.destination, facts.source, facts.source_port, facts.protocol)
        else:
            key = (facts.source, facts.destination, facts.destination_port, facts.protocol)
        cell = delta.edges.get((key, second))
        if cell is None:
            cell = delta.edges[(key, second)] = EdgeCell()
        cell.flows += 1
        cell.seen(facts.time_ns)
        verdict = facts.verdict
        if verdict == VERDICT_FORWARDED:
            cell.forwarded += 1
        elif verdict == VERDICT_DROPPED:
            cell.dropped += 1
            # A policy-verdict event that drops carries no reason: it is the policy's denial.
            reason = facts.drop_reason or (POLICY_DENIED if facts.event_type == EVENT_POLICY_VERDICT else 0)
            cell.drop_reasons[reason] += 1
        if facts.l7 != "http":
            return
        server_reported = facts.direction != 2  # not the client's egress proxy
        if facts.l7_type == L7_REQUEST:
            if server_reported:
                cell.server_requests += 1
            else:
                cell.client_requests += 1
        elif facts.l7_type == L7_RESPONSE:
            error = 500 <= facts.http_code <= 599
            if server_reported:
                cell.server_responses += 1
                cell.server_errors += error
                if cell.server_latency is None:
                    cell.server_latency = LatencySketch()
                cell.server_latency.add_ns(facts.latency_ns)
                cell.server_codes[facts.http_code] += 1
            else:
                cell.client_responses += 1
                cell.client_errors += error
                if cell.client_latency is None:
                    cell.client_latency = LatencySketch()
                cell.client_latency.add_ns(facts.latency_ns)
                cell.client_codes[facts.http_code] += 1

    def _dns_cell(self, delta: Delta, key: DnsKey, second: int) -> DnsCell:
        cell = delta.dns.get((key, second))
        if cell is None:
            cell = delta.dns[(key, second)] = DnsCell()
        return cell

    def _add_dns_message(self, facts: FlowFacts, second: int, delta: Delta) -> None:
        l7_type = facts.l7_type
        if l7_type == L7_REQUEST:
            client, client_ip, client_port, server = facts.source, facts.source_ip, facts.source_port, facts.destination
        elif l7_type == L7_RESPONSE:
            client, client_ip, client_port, server = facts.destination, facts.destination_ip, facts.destination_port, facts.source
        else:
            return
        query, qtype = facts.dns_query, facts.dns_qtype
        report = (l7_type, client_ip, client_port, query, qtype, facts.dns_rcode)
        if self._dns_reports.seen_elsewhere(report, facts.time_ns, facts.node):
            return
        key = (client, query, qtype)
        cell = self._dns_cell(delta, key, second)
        cell.seen(facts.time_ns)
        lookup = (client_ip, client_port, query, qtype)
        if l7_type == L7_REQUEST:
            cell.requests += 1
            cell.servers[server.name] += 1
            if facts.verdict == VERDICT_DROPPED:
                cell.dropped += 1
                cell.drop_policies[facts.policy] += 1
                delta.dns_samples[key] = bytes(facts.raw)
            elif facts.verdict == VERDICT_FORWARDED:
                self._pending[lookup] = (facts.time_ns, key)
                if len(self._pending) > PENDING_LIMIT:
                    del self._pending[next(iter(self._pending))]
                    delta.pending_evicted += 1
        else:
            cell.responses += 1
            cell.rcodes[DNS_RCODE_NAMES.get(facts.dns_rcode, str(facts.dns_rcode))] += 1
            if facts.latency_ns:
                if cell.latency is None:
                    cell.latency = LatencySketch()
                cell.latency.add_ns(facts.latency_ns)
            self._pending.pop(lookup, None)

    def _add_policy_verdict(self, facts: FlowFacts, second: int, delta: Delta) -> None:
        verdict = VERDICT_NAMES.get(facts.verdict, str(facts.verdict))
        port = facts.destination_port
        key = (verdict, facts.direction_name, facts.policy, facts.source, facts.destination, port, facts.protocol)
        cell = delta.policies.get((key, second))
        if cell is None:
            cell = delta.policies[(key, second)] = CountCell()
        cell.flows += 1
        cell.seen(facts.time_ns)
        delta.policy_samples[key] = bytes(facts.raw)
        if (
            facts.verdict == VERDICT_DROPPED
            and not facts.l7
            and not facts.reply
            and port == DNS_PORT
            and facts.protocol in ("UDP", "TCP")
        ):
            self._add_dns_drop_before_proxy(facts, second, delta)

    def _add_dns_drop_before_proxy(self, facts: FlowFacts, second: int, delta: Delta) -> None:
        packet = (facts.source_ip, facts.source_port, facts.destination_ip, facts.destination_port, facts.protocol)
        if self._policy_packets.seen_elsewhere(packet, facts.time_ns, facts.event_type):
            return  # the drop event and the policy-verdict event of one packet
        key = (facts.source, "", "")
        cell = self._dns_cell(delta, key, second)
        cell.seen(facts.time_ns)
        cell.requests += 1
        cell.dropped += 1
        cell.drop_policies[facts.policy] += 1
        cell.servers[facts.destination.name] += 1
        delta.dns_samples[key] = bytes(facts.raw)

    # --- time --------------------------------------------------------------------------

    def expire(self, watermark_ns: int | None = None) -> None:
        """Count as unanswered the forwarded lookups older than 5 s of flow time (the newest
        flow's time, or `watermark_ns` when the stream is quiet but time went on)."""
        if watermark_ns is not None and watermark_ns > self._watermark_ns:
            self._watermark_ns = watermark_ns
        horizon = self._watermark_ns - UNANSWERED_AFTER_NS
        pending = self._pending
        delta = self._delta
        while pending:
            lookup = next(iter(pending))
            time_ns, key = pending[lookup]
            if time_ns >= horizon:
                break
            del pending[lookup]
            cell = self._dns_cell(delta, key, time_ns // NS)
            cell.unanswered += 1
        self._dns_reports.expire(self._watermark_ns)
        self._policy_packets.expire(self._watermark_ns)

    def take(self) -> Delta:
        """Hand over everything counted since the last take."""
        delta, self._delta = self._delta, Delta()
        return delta
