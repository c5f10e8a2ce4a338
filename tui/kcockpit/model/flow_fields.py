"""Every set field of one flow, as labelled rows grouped in sections, for the detail view.

Reads the full flow parsed again from the record's original bytes, and leaves out what
is not set, so a DNS response and a policy drop each show only what matters for them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone, tzinfo

from kcockpit.model.record import DIRECTION_NAMES, RESERVED_IDENTITIES, FlowRecord
from kcockpit.wire.hubble_pb import flow_pb
from kcockpit.wire.protojson import message_to_dict

Section = tuple[str, list[tuple[str, str]]]

_OBSERVATION_POINTS = {v.number: v.name for v in flow_pb.TraceObservationPoint.DESCRIPTOR.values}
_TRACE_REASONS = {v.number: v.name for v in flow_pb.TraceReason.DESCRIPTOR.values}
_FLOW_TYPES = {v.number: v.name for v in flow_pb.FlowType.DESCRIPTOR.values}
_L7_TYPES = {v.number: v.name for v in flow_pb.L7FlowType.DESCRIPTOR.values}
_EVENT_TYPES = {1: "drop", 4: "trace", 5: "policy-verdict", 7: "trace-sock", 129: "l7"}
_MATCH_TYPES = {1: "L3-only", 2: "L3-L4", 3: "L4-only", 4: "all", 5: "L3-proto", 6: "proto-only"}


def _timestamp(seconds: int, nanos: int, zone: tzinfo | None) -> str:
    moment = datetime.fromtimestamp(seconds + nanos / 1e9, tz=zone or timezone.utc)
    if zone is None:
        moment = moment.astimezone()
    return moment.isoformat(timespec="microseconds")


def _endpoint_rows(endpoint, ip: str, port: int, names, service) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if endpoint.namespace or endpoint.pod_name:
        rows.append(("pod", f"{endpoint.namespace}/{endpoint.pod_name}" if endpoint.namespace else endpoint.pod_name))
    for workload in endpoint.workloads:
        rows.append(("workload", f"{workload.kind} {workload.name}".strip()))
    if endpoint.identity:
        reserved = RESERVED_IDENTITIES.get(endpoint.identity)
        rows.append(("identity", f"{endpoint.identity}" + (f" (reserved:{reserved})" if reserved else "")))
    if ip:
        rows.append(("ip", f"{ip}:{port}" if port else ip))
    elif port:
        rows.append(("port", str(port)))
    if names:
        rows.append(("dns names", ", ".join(names)))
    if service.name:
        rows.append(("service", f"{service.namespace}/{service.name}"))
    if endpoint.cluster_name:
        rows.append(("cluster", endpoint.cluster_name))
    if endpoint.ID:
        rows.append(("endpoint id", str(endpoint.ID)))
    for position, label in enumerate(endpoint.labels):
        rows.append(("labels" if position == 0 else "", label))
    return rows


def _policies(policies) -> str:
    return ", ".join(f"{p.namespace}/{p.name}" if p.namespace else p.name for p in policies)


def flow_sections(record: FlowRecord, zone: tzinfo | None = None) -> list[Section]:
    flow = record.flow()
    sections: list[Section] = []

    verdict = [("verdict", record.verdict_name)]
    if record.drop_reason:
        verdict.append(("drop reason", record.drop_reason_name))
    if flow.egress_allowed_by:
        verdict.append(("egress allowed by", _policies(flow.egress_allowed_by)))
    if flow.ingress_allowed_by:
        verdict.append(("ingress allowed by", _policies(flow.ingress_allowed_by)))
    if flow.egress_denied_by:
        verdict.append(("egress denied by", _policies(flow.egress_denied_by)))
    if flow.ingress_denied_by:
        verdict.append(("ingress denied by", _policies(flow.ingress_denied_by)))
    if flow.policy_match_type:
        verdict.append(("policy match", _MATCH_TYPES.get(flow.policy_match_type, str(flow.policy_match_type))))
    for line in flow.policy_log:
        verdict.append(("policy log", line))
    if flow.Summary:
        verdict.append(("summary", flow.Summary))
    sections.append(("Verdict", verdict))

    if flow.HasField("l7"):
        l7 = flow.l7
        rows = [("type", _L7_TYPES.get(l7.type, str(l7.type)))]
        if l7.latency_ns:
            rows.append(("latency", f"{l7.latency_ns / 1e6:.1f} ms"))
        kind = l7.WhichOneof("record")
        if kind == "dns":
            dns = l7.dns
            rows.append(("dns query", dns.query))
            if dns.qtypes:
                rows.append(("query types", ", ".join(dns.qtypes)))
            if l7.type == 2:
                rows.append(("rcode", record.dns_rcode_name))
            if dns.ips:
                rows.append(("answers", ", ".join(dns.ips)))
            if dns.cnames:
                rows.append(("cnames", ", ".join(dns.cnames)))
            if dns.rrtypes:
                rows.append(("rr types", ", ".join(dns.rrtypes)))
            if dns.ttl:
                rows.append(("ttl", f"{dns.ttl} s"))
            if dns.observation_source:
                rows.append(("observed by", dns.observation_source))
        elif kind == "http":
            http = l7.http
            rows.append(("http", f"{http.method} {http.url} {http.protocol}".strip()))
            if http.code:
                rows.append(("status", str(http.code)))
            for header in http.headers:
                rows.append(("header", f"{header.key}: {header.value}"))
        elif kind == "kafka":
            kafka = l7.kafka
            rows.append(("kafka", f"topic {kafka.topic} api key {kafka.api_key} error {kafka.error_code}"))
        sections.append(("Layer 7", rows))

    l4 = record.protocol or "none"
    source_port = record.source.port
    destination_port = record.destination.port
    sections.append(("Source", _endpoint_rows(flow.source, flow.IP.source, source_port, flow.source_names, flow.source_service)))
    sections.append(
        (
            "Destination",
            _endpoint_rows(flow.destination, flow.IP.destination, destination_port, flow.destination_names, flow.destination_service),
        )
    )

    traffic: list[tuple[str, str]] = [("protocol", l4)]
    if record.tcp_flags:
        traffic.append(("tcp flags", ", ".join(record.tcp_flags)))
    protocol = flow.l4.WhichOneof("protocol")
    if protocol in ("ICMPv4", "ICMPv6"):
        icmp = getattr(flow.l4, protocol)
        traffic.append(("icmp", f"type {icmp.type} code {icmp.code}"))
    traffic.append(("direction", DIRECTION_NAMES.get(record.direction, "?")))
    if record.is_reply is not None:
        traffic.append(("is reply", "yes" if record.is_reply else "no"))
    if flow.IP.ipVersion:
        traffic.append(("ip version", flow_pb.IPVersion.Name(flow.IP.ipVersion)))
    if flow.IP.encrypted:
        traffic.append(("encrypted", "yes"))
    sections.append(("Traffic", traffic))

    where: list[tuple[str, str]] = [("time", _timestamp(flow.time.seconds, flow.time.nanos, zone))]
    if flow.node_name:
        where.append(("node", flow.node_name))
    if flow.trace_observation_point:
        where.append(("observation point", _OBSERVATION_POINTS.get(flow.trace_observation_point, "?")))
    if flow.trace_reason:
        where.append(("trace reason", _TRACE_REASONS.get(flow.trace_reason, "?")))
    event = flow.event_type
    if event.type:
        where.append(("event type", f"{_EVENT_TYPES.get(event.type, event.type)} (sub type {event.sub_type})"))
    where.append(("flow type", _FLOW_TYPES.get(flow.Type, str(flow.Type))))
    if flow.interface.name:
        where.append(("interface", f"{flow.interface.name} (index {flow.interface.index})"))
    if flow.proxy_port:
        where.append(("proxy port", str(flow.proxy_port)))
    if flow.uuid:
        where.append(("uuid", flow.uuid))
    sections.append(("Observed", where))
    return sections


def flow_jsonpb(record: FlowRecord, *, indent: int | None = 2) -> str:
    """The GetFlowsResponse as `hubble observe -o jsonpb` prints it; indent=None gives the
    exact capture line, otherwise it is indented for reading."""
    document = message_to_dict(record.response())
    if indent is None:  # byte for byte what sources.capture writes
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(document, indent=indent, ensure_ascii=False)
