"""Decoded records share repeated values (labels, names), so keeping them costs little."""

from __future__ import annotations

import kcockpit.model.record as record_module
from kcockpit.model.record import FlowRecord
from kcockpit.wire.hubble_pb import flow_pb

LABELS = ["k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=otel-demo", "k8s:io.cilium.k8s.policy.cluster=kind-kind"]


def a_flow(port: int) -> FlowRecord:
    flow = flow_pb.Flow(
        verdict=flow_pb.FORWARDED,
        source=flow_pb.Endpoint(namespace="otel-demo", pod_name="frontend-1", labels=LABELS, identity=2),
        destination=flow_pb.Endpoint(namespace="kube-system", pod_name="coredns-1", labels=["k8s:k8s-app=kube-dns"]),
        l4=flow_pb.Layer4(UDP=flow_pb.UDP(source_port=port, destination_port=53)),
    )
    return FlowRecord.from_flow(flow)


def test_two_flows_of_the_same_pods_share_their_labels_and_names() -> None:
    first, second = a_flow(40000), a_flow(40001)
    assert first.source.labels == tuple(LABELS)
    assert first.source.labels is second.source.labels
    assert first.source.pod is second.source.pod and first.destination.namespace is second.destination.namespace
    assert (first.source.port, second.source.port) == (40000, 40001)  # what differs stays per flow


def test_the_shared_table_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(record_module, "_SHARED", {})
    monkeypatch.setattr(record_module, "_SHARED_LIMIT", 5)
    for port in range(50):
        flow = a_flow(port)
        assert flow.source.port == port  # decoded
    assert len(record_module._SHARED) <= 5
    assert a_flow(1).source.labels == tuple(LABELS)  # a cleared table still gives the right values
