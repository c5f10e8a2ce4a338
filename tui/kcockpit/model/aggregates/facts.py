"""FlowFacts: the few fields of a flow the aggregates count, read once from its wire bytes.

The aggregates see every flow, so this is their hot path: the GetFlowsResponse bytes are
parsed once (protobuf's C parser) and only the fields counted are read, far fewer than the
flow list's full decode. Endpoint names are cached per (namespace, workload, pod,
identity, DNS name): a cluster has few distinct endpoints and millions of flows.
"""

from __future__ import annotations

from kcockpit.model.aggregates.naming import Endpoint, name_endpoint
from kcockpit.wire.hubble_pb import GetFlowsResponse

L7_REQUEST = 1
L7_RESPONSE = 2
EVENT_DROP = 1
EVENT_POLICY_VERDICT = 5
POLICY_DROP_REASONS = frozenset({133, 181})  # POLICY_DENIED, POLICY_DENY
VERDICT_DROPPED = 2
DIRECTION_NAMES = ("unknown", "ingress", "egress")

_ENDPOINTS: dict[tuple, Endpoint] = {}
_ENDPOINTS_LIMIT = 50_000


class FlowFacts:
    """What one flow contributes to the aggregates. `client`/`server` orient the flow as its
    connection: for a reply (is_reply, or an L7 response) the server is the source."""

    __slots__ = (
        "raw", "time_ns", "node", "verdict", "drop_reason", "event_type", "direction", "reply",
        "protocol", "source", "destination", "source_ip", "destination_ip", "source_port",
        "destination_port", "l7", "l7_type", "latency_ns", "http_code", "dns_query", "dns_rcode",
        "dns_qtype", "policy",
    )

    raw: bytes
    time_ns: int
    node: str
    verdict: int
    drop_reason: int
    event_type: int
    direction: int
    reply: bool
    protocol: str
    source: Endpoint
    destination: Endpoint
    source_ip: str
    destination_ip: str
    source_port: int
    destination_port: int
    l7: str
    l7_type: int
    latency_ns: int
    http_code: int
    dns_query: str
    dns_rcode: int
    dns_qtype: str
    policy: str  # the deciding policy Hubble reported, "" when it did not

    @property
    def client(self) -> Endpoint:
        return self.destination if self.reply else self.source

    @property
    def server(self) -> Endpoint:
        return self.source if self.reply else self.destination

    @property
    def server_port(self) -> int:
        return self.source_port if self.reply else self.destination_port

    @property
    def direction_name(self) -> str:
        direction = self.direction
        return DIRECTION_NAMES[direction] if 0 <= direction < 3 else str(direction)


def _endpoint(flow, ep, side: str, node: str) -> Endpoint:
    """The named endpoint of one side ("source" or "destination") of `flow`. A local
    endpoint's ID is unique on its node, and its identity changes with its labels: together
    they find its name again for a fraction of the cost of reading its fields."""
    endpoint_id = ep.ID
    if endpoint_id:
        quick = (node, endpoint_id, ep.identity)
        found = _ENDPOINTS.get(quick)
        if found is not None:
            return found
    workloads = ep.workloads
    names = getattr(flow, side + "_names")
    key = (ep.namespace, workloads[0].name if workloads else "", ep.pod_name, ep.identity, names[0] if names else "")
    found = _ENDPOINTS.get(key)
    if found is None:
        found = name_endpoint(*key, getattr(flow.IP, side))
        _remember(key, found)
    if endpoint_id:
        _remember(quick, found)
    return found


def _remember(key: tuple, endpoint: Endpoint) -> None:
    if len(_ENDPOINTS) >= _ENDPOINTS_LIMIT:
        _ENDPOINTS.clear()
    _ENDPOINTS[key] = endpoint


def _policy_name(policies) -> str:
    policy = policies[0]
    return f"{policy.namespace}/{policy.name}" if policy.namespace else policy.name


def deciding_policy(flow) -> str:
    """Hubble's deciding policy on the flow's own direction: the first `*_denied_by` when
    there is one (drops, audit verdicts), else the first `*_allowed_by`; "" when none."""
    if flow.traffic_direction == 1:
        denied, allowed = flow.ingress_denied_by, flow.ingress_allowed_by
    elif flow.traffic_direction == 2:
        denied, allowed = flow.egress_denied_by, flow.egress_allowed_by
    else:
        return ""
    if denied:
        return _policy_name(denied)
    if allowed:
        return _policy_name(allowed)
    return ""


def flow_facts(raw: bytes) -> FlowFacts | None:
    """The facts of a serialized GetFlowsResponse; None when it carries no flow."""
    response = GetFlowsResponse.FromString(raw)
    if response.WhichOneof("response_types") != "flow":
        return None
    return facts_of_flow(response.flow, raw)


def facts_of_flow(flow, raw: bytes) -> FlowFacts:
    facts = FlowFacts()
    facts.raw = raw
    t = flow.time
    facts.time_ns = t.seconds * 1_000_000_000 + t.nanos
    facts.node = flow.node_name
    verdict = facts.verdict = flow.verdict
    facts.drop_reason = (flow.drop_reason_desc or flow.drop_reason) if verdict == VERDICT_DROPPED else 0
    event_type = facts.event_type = flow.event_type.type
    node = facts.node
    facts.source = _endpoint(flow, flow.source, "source", node)
    facts.destination = _endpoint(flow, flow.destination, "destination", node)
    l4 = flow.l4
    protocol = facts.protocol = l4.WhichOneof("protocol") or ""
    if protocol == "TCP" or protocol == "UDP" or protocol == "SCTP":
        layer = getattr(l4, protocol)
        facts.source_port, facts.destination_port = layer.source_port, layer.destination_port
    else:
        facts.source_port = facts.destination_port = 0
    l7 = flow.l7
    kind = facts.l7 = l7.WhichOneof("record") or ""
    reply = flow.is_reply.value  # unset reads False: unknown counts as a request
    facts.http_code = facts.dns_rcode = 0
    facts.dns_query = facts.dns_qtype = ""
    if kind:
        l7_type = facts.l7_type = l7.type
        facts.latency_ns = l7.latency_ns
        reply = reply or l7_type == L7_RESPONSE
        if kind == "http":
            facts.http_code = l7.http.code
        elif kind == "dns":
            dns = l7.dns
            facts.dns_query = dns.query
            facts.dns_rcode = dns.rcode
            qtypes = dns.qtypes
            facts.dns_qtype = qtypes[0] if qtypes else ""
    else:
        facts.l7_type = facts.latency_ns = 0
    facts.reply = reply
    # Only L7 flows (the reporter) and DNS and policy rows need the rest.
    policy_event = event_type == EVENT_POLICY_VERDICT or event_type == EVENT_DROP
    facts.direction = flow.traffic_direction if kind or policy_event else 0
    if kind == "dns" or policy_event:
        ip = flow.IP
        facts.source_ip, facts.destination_ip = ip.source, ip.destination
        facts.policy = deciding_policy(flow)
    else:
        facts.source_ip = facts.destination_ip = facts.policy = ""
    return facts
