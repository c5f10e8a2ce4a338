"""Accumulator: the per-flow side of the aggregates. Each flow passes through `add_raw` once
and lands in per-second cells of a Delta; `take()` hands the delta over and starts a new one.

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

from kcockpit.model.aggregates.cells import CountCell, DnsCell, EdgeCell, Seen, count
from kcockpit.model.aggregates.naming import Endpoint
from kcockpit.model.aggregates.sketch import LatencySketch
from kcockpit.model.aggregates.view import (
    ENCODED_TRUE,
    EVENT_DROP,
    EVENT_POLICY_VERDICT,
    EVENT_TYPES,
    L7_REQUEST,
    L7_RESPONSE,
    NAMED,
    POLICY_DROP_REASONS,
    batches,
    bool_of,
    deciding_policy,
    endpoint_of,
    event_type_of,
    flows_of,
    parse_layer7,
)
from kcockpit.model.record import DIRECTION_NAMES, DNS_RCODE_NAMES, VERDICT_NAMES

NS = 1_000_000_000
UNANSWERED_AFTER_NS = 5 * NS
SAME_REPORT_NS = 2 * NS  # two nodes' reports of one DNS message arrive this close together
SAME_PACKET_NS = 1 * NS  # a drop event and its policy-verdict event arrive this close together
PENDING_LIMIT = 100_000  # forwarded DNS requests awaiting a response
RECENT_LIMIT = 100_000
SLOTS_LIMIT = 50_000  # keys hold two endpoint encodings: at most ~50 MB
VERDICT_FORWARDED = 1
VERDICT_DROPPED = 2
DNS_PORT = 53
POLICY_DENIED = 133
_NEVER = 1 << 126  # later than any flow: the oldest time before one is seen

EdgeKey = tuple[Endpoint, Endpoint, int, str]  # client, server, server port, protocol
DnsKey = tuple[Endpoint, str, str]  # client, query name ("" dropped before the proxy), qtype
PolicyKey = tuple[str, str, str, Endpoint, Endpoint, int, str]  # verdict, direction, policy, src, dst, port, protocol


@dataclass
class Delta(Seen):
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
        # Each edge's slot: [second, its cell in the delta for that second, edge], the second
        # None when there is none; found by edge, and by the loop's key when that key alone
        # names the endpoints.
        self._edge_slots: dict[EdgeKey, list] = {}
        self._slots: dict[tuple, list] = {}

    @property
    def newest_ns(self) -> int:
        """The newest flow time counted (the clock that unanswered lookups are judged by)."""
        return self._watermark_ns

    @property
    def pending_lookups(self) -> int:
        return len(self._pending)

    def add_raw(self, raws: Iterable[bytes]) -> None:
        """Count serialized GetFlowsResponses (the stream's messages as they came).

        The loop is the aggregator's hot path, so it is written out rather than split into
        calls (a call costs about as much as reading two fields): it reads what every flow
        needs (view.py says how, and why the encodings), counts the flow on its service edge,
        and hands the few flows that DNS rows or policy groups count to the methods below.
        A flow finds its edge's cell in one dict lookup, keyed by what it read: the encodings
        of its endpoints (stand-ins for their names), reply, server port, protocol, second."""
        delta = self._delta
        slots = self._slots
        event_types = EVENT_TYPES
        counted = not_flows = newest = 0
        oldest = _NEVER
        try:
            for batch in batches(raws):
                for raw, flow in zip(batch, flows_of(batch)):
                    if flow is None:
                        not_flows += 1
                        continue
                    counted += 1
                    t = flow.time
                    time_ns = t.seconds * NS + t.nanos
                    second = time_ns // NS
                    if second:
                        if time_ns > newest:
                            newest = time_ns
                        if time_ns < oldest:
                            oldest = time_ns
                    else:  # no time: the first-seen rule takes 0 as unset, so it sees this in turn
                        self._seen(oldest, newest)
                        delta.seen(time_ns)
                        newest, oldest = 0, _NEVER
                    verdict = flow.verdict
                    encoded = flow.event_type
                    event_type = event_types.get(encoded)
                    if event_type is None:
                        event_type = event_type_of(encoded)
                    encoded = flow.is_reply  # unset reads False: unknown counts as a request
                    reply = encoded == ENCODED_TRUE
                    if encoded and not reply:
                        reply = bool_of(encoded)
                    encoded = flow.l7
                    if encoded:
                        l7 = parse_layer7(encoded)
                        kind = l7.WhichOneof("record") or ""
                        if kind and l7.type == L7_RESPONSE:
                            reply = True
                    else:
                        l7, kind = None, ""
                    l4 = flow.l4
                    # Most flows are TCP: reading its port first costs less than WhichOneof,
                    # and a port that is not 0 can only come from the member that is set.
                    layer = l4.TCP
                    port = layer.source_port if reply else layer.destination_port
                    if port:
                        protocol = "TCP"
                    else:
                        protocol, layer, port = _layer4(l4, reply)
                    # The encodings are hashed once, here; the methods below get these objects.
                    source, destination = flow.source, flow.destination
                    key = (source, destination, reply, port, protocol)
                    slot = slots.get(key)
                    if slot is not None and slot[0] == second:
                        cell = slot[1]
                        if time_ns > cell.last_ns:  # cell.seen(time_ns), for a cell seen before
                            cell.last_ns = time_ns
                        elif time_ns < cell.first_ns:
                            cell.first_ns = time_ns
                    else:
                        cell = self._edge_cell(flow, key, slot, second, time_ns)
                    cell.flows += 1
                    drop_reason = 0
                    if verdict == VERDICT_FORWARDED:
                        cell.forwarded += 1
                    elif verdict == VERDICT_DROPPED:
                        drop_reason = flow.drop_reason_desc or flow.drop_reason
                        cell.dropped += 1
                        # A policy-verdict event that drops carries no reason: it is the policy's denial.
                        reason = drop_reason or (POLICY_DENIED if event_type == EVENT_POLICY_VERDICT else 0)
                        cell.drop_reasons[reason] = cell.drop_reasons.get(reason, 0) + 1
                    if kind:
                        if kind == "http":
                            _count_http(cell, l7, flow.traffic_direction)
                        elif kind == "dns":
                            self._add_dns_message(flow, raw, source, destination, l7, layer, verdict, time_ns, second)
                    if event_type == EVENT_POLICY_VERDICT or (drop_reason in POLICY_DROP_REASONS and event_type == EVENT_DROP):
                        self._add_policy_verdict(flow, raw, source, destination, layer, protocol, verdict, event_type,
                                                 not kind and not reply, time_ns, second)
        finally:
            delta.flows += counted
            delta.not_flows += not_flows
            self._seen(oldest, newest)
        self.expire()

    def _seen(self, oldest: int, newest: int) -> None:
        """The times of a run of flows, none of them 0: the earliest and max(0, latest)
        (`oldest` is _NEVER for no flows). Seeing these two is seeing the run."""
        if oldest != _NEVER:
            self._delta.seen(oldest)
        if newest:
            self._delta.seen(newest)
            if newest > self._watermark_ns:
                self._watermark_ns = newest

    # --- tables ----------------------------------------------------------------------

    def _edge_cell(self, flow, key: tuple, slot: list | None, second: int, time_ns: int) -> EdgeCell:
        """The cell of a flow's service edge in its second, seen at `time_ns`, made its edge's
        current cell. `slot` is the loop's find for `key`, if any."""
        if slot is None:
            source_encoded, destination_encoded, reply, port, protocol = key
            source, destination = NAMED.get(source_encoded), NAMED.get(destination_encoded)
            named_by_key = source is not None and destination is not None
            if source is None:
                source = endpoint_of(source_encoded, flow, "source")
            if destination is None:
                destination = endpoint_of(destination_encoded, flow, "destination")
            edge = (destination, source, port, protocol) if reply else (source, destination, port, protocol)
            if len(self._slots) >= SLOTS_LIMIT:
                self._slots.clear()
                self._edge_slots.clear()
            slot = self._edge_slots.get(edge)
            if slot is None:
                slot = self._edge_slots[edge] = [None, None, edge]
            if named_by_key:
                self._slots[key] = slot
        edge = slot[2]
        edges = self._delta.edges
        cell = edges.get((edge, second))
        if cell is None:
            cell = edges[(edge, second)] = EdgeCell()
        cell.seen(time_ns)
        if second:  # (not 0: the loop's inline seen() needs first_ns set)
            slot[0], slot[1] = second, cell
        return cell

    def _dns_cell(self, delta: Delta, key: DnsKey, second: int) -> DnsCell:
        cell = delta.dns.get((key, second))
        if cell is None:
            cell = delta.dns[(key, second)] = DnsCell()
        return cell

    def _add_dns_message(self, flow, raw, source: bytes, destination: bytes, l7, layer, verdict: int, time_ns: int,
                         second: int) -> None:
        """A DNS request or response (`l7`, parsed) on its row. `source` and `destination` are
        the endpoints' encodings, `layer` the flow's UDP/TCP."""
        l7_type = l7.type
        if l7_type == L7_REQUEST:
            client_side, client, server_side, server = "source", source, "destination", destination
        elif l7_type == L7_RESPONSE:
            client_side, client, server_side, server = "destination", destination, "source", source
        else:
            return
        dns = l7.dns
        query, qtypes, rcode = dns.query, dns.qtypes, dns.rcode
        qtype = qtypes[0] if qtypes else ""
        client_ip = getattr(flow.IP, client_side)
        client_port = getattr(layer, client_side + "_port") if layer is not None else 0
        report = (l7_type, client_ip, client_port, query, qtype, rcode)
        if self._dns_reports.seen_elsewhere(report, time_ns, flow.node_name):
            return
        delta = self._delta
        key = (endpoint_of(client, flow, client_side), query, qtype)
        cell = self._dns_cell(delta, key, second)
        cell.seen(time_ns)
        lookup = (client_ip, client_port, query, qtype)
        if l7_type == L7_REQUEST:
            cell.requests += 1
            count(cell.servers, endpoint_of(server, flow, server_side).name)
            if verdict == VERDICT_DROPPED:
                cell.dropped += 1
                count(cell.drop_policies, deciding_policy(flow, flow.traffic_direction))
                delta.dns_samples[key] = bytes(raw)
            elif verdict == VERDICT_FORWARDED:
                self._pending[lookup] = (time_ns, key)
                if len(self._pending) > PENDING_LIMIT:
                    del self._pending[next(iter(self._pending))]
                    delta.pending_evicted += 1
        else:
            cell.responses += 1
            count(cell.rcodes, DNS_RCODE_NAMES.get(rcode) or str(rcode))
            latency_ns = l7.latency_ns
            if latency_ns:
                if cell.latency is None:
                    cell.latency = LatencySketch()
                cell.latency.add_ns(latency_ns)
            self._pending.pop(lookup, None)

    def _add_policy_verdict(self, flow, raw, source: bytes, destination: bytes, layer, protocol: str, verdict: int,
                            event_type: int, l4_request: bool, time_ns: int, second: int) -> None:
        """A policy verdict (or policy drop) on its group. `source` and `destination` are the
        endpoints' encodings, `layer` the flow's TCP/UDP/SCTP (None without ports);
        `l4_request`: no L7 record and not a reply."""
        port = layer.destination_port if layer is not None else 0
        source = endpoint_of(source, flow, "source")
        destination = endpoint_of(destination, flow, "destination")
        direction = flow.traffic_direction
        policy = deciding_policy(flow, direction)
        key = (VERDICT_NAMES.get(verdict) or str(verdict), DIRECTION_NAMES.get(direction) or str(direction), policy,
               source, destination, port, protocol)
        delta = self._delta
        cell = delta.policies.get((key, second))
        if cell is None:
            cell = delta.policies[(key, second)] = CountCell()
        cell.flows += 1
        cell.seen(time_ns)
        delta.policy_samples[key] = bytes(raw)
        if verdict == VERDICT_DROPPED and l4_request and port == DNS_PORT and protocol in ("UDP", "TCP"):
            # A lookup dropped before the DNS proxy; the drop event and the policy-verdict
            # event of one packet count once.
            ip = flow.IP
            packet = (ip.source, layer.source_port, ip.destination, port, protocol)
            if self._policy_packets.seen_elsewhere(packet, time_ns, event_type):
                return
            key = (source, "", "")
            cell = self._dns_cell(delta, key, second)
            cell.seen(time_ns)
            cell.requests += 1
            cell.dropped += 1
            count(cell.drop_policies, policy)
            count(cell.servers, destination.name)
            delta.dns_samples[key] = bytes(raw)

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
        for slot in self._edge_slots.values():  # their cells stay with the old delta
            slot[0], slot[1] = None, None
        return delta


def _layer4(l4, reply: bool) -> tuple[str, object, int]:
    """The protocol of a flow's Layer4, its TCP/UDP/SCTP message (None for the others) and
    the server's port (the source's for a reply)."""
    protocol = l4.WhichOneof("protocol") or ""
    if protocol not in ("TCP", "UDP", "SCTP"):
        return protocol, None, 0
    layer = getattr(l4, protocol)
    return protocol, layer, layer.source_port if reply else layer.destination_port


def _count_http(cell: EdgeCell, l7, direction: int) -> None:
    """An HTTP request or response on its edge's cell, kept apart by reporter."""
    server_reported = direction != 2  # not the client's egress proxy
    l7_type = l7.type
    if l7_type == L7_REQUEST:
        if server_reported:
            cell.server_requests += 1
        else:
            cell.client_requests += 1
    elif l7_type == L7_RESPONSE:
        code = l7.http.code
        error = 500 <= code <= 599
        if server_reported:
            cell.server_responses += 1
            cell.server_errors += error
            latency, codes = cell.server_latency, cell.server_codes
            if latency is None:
                latency = cell.server_latency = LatencySketch()
        else:
            cell.client_responses += 1
            cell.client_errors += error
            latency, codes = cell.client_latency, cell.client_codes
            if latency is None:
                latency = cell.client_latency = LatencySketch()
        latency.add_ns(l7.latency_ns)
        codes[code] = codes.get(code, 0) + 1
