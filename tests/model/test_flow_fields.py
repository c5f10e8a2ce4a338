"""The detail view's model: every set field in sections, and the flow as jsonpb."""

import json

from kcockpit.model.flow_fields import flow_jsonpb, flow_sections
from kcockpit.model.record import FlowRecord
from kcockpit.sources.capture import response_to_line
from kcockpit.wire.hubble_pb import flow_pb


def dropped_dns_flow() -> FlowRecord:
    flow = flow_pb.Flow(verdict=flow_pb.DROPPED, drop_reason_desc=flow_pb.POLICY_DENIED, node_name="kind-worker")
    flow.time.FromNanoseconds(1_795_670_000_123_456_789)
    flow.IP.source, flow.IP.destination, flow.IP.ipVersion = "10.244.1.65", "10.244.0.3", flow_pb.IPv4
    flow.l4.UDP.source_port, flow.l4.UDP.destination_port = 48792, 53
    flow.source.namespace, flow.source.pod_name, flow.source.identity = "otel-demo", "frontend-abc", 52355
    flow.destination.namespace, flow.destination.pod_name = "kube-system", "coredns-xyz"
    flow.egress_denied_by.add(name="frontend-egress-allow-to-backend", namespace="otel-demo", kind="NetworkPolicy")
    return FlowRecord.from_flow(flow)


def test_sections_hold_the_set_fields_and_leave_out_the_rest() -> None:
    sections = dict(flow_sections(dropped_dns_flow()))
    verdict = dict(sections["Verdict"])
    assert verdict["verdict"] == "DROPPED"
    assert verdict["drop reason"] == "POLICY_DENIED"
    assert "otel-demo/frontend-egress-allow-to-backend" in verdict["egress denied by"]
    assert dict(sections["Source"])["pod"] == "otel-demo/frontend-abc"
    assert "Layer 7" not in sections  # no L7 record on this flow


def test_jsonpb_is_the_capture_line_or_its_indented_form() -> None:
    record = dropped_dns_flow()
    line = flow_jsonpb(record, indent=None)
    assert line == response_to_line(record.response())
    assert json.loads(flow_jsonpb(record)) == json.loads(line)
    assert json.loads(line)["flow"]["drop_reason_desc"] == "POLICY_DENIED"
