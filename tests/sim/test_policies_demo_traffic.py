"""The simulated cluster's policies for the Policies tab: an audit-mode NetworkPolicy
(AUDIT verdicts that still go through) and a CiliumNetworkPolicy with an L7 rule (which
the engine reports as not evaluated), in every phase and served by the Kubernetes API."""

from __future__ import annotations

from policies_tab_support import SEED, phase_records

from kcockpit.application import policy_insights as pi
from kcockpit.model.aggregates import FlowAggregates
from kcockpit.model.record import VERDICT_AUDIT
from kcockpit.policy.cluster import Cluster
from kcockpit.sim.kube_api import start_kube_api
from kcockpit.sim.world import KAFKA_AUDIT_POLICY, PROMETHEUS_L7_POLICY, World


def test_kafka_clients_other_than_accounting_are_audited() -> None:
    records = phase_records("healthy", seconds=40)
    verdicts = [r for r in records if r.flow().event_type.type == 5 and r.flow().traffic_direction == 1  # ingress, at kafka
                and r.destination.workload_name() == "otel-demo/kafka"]
    audited = [r for r in verdicts if r.verdict == VERDICT_AUDIT]
    allowed = [r for r in verdicts if r.verdict != VERDICT_AUDIT]
    assert audited and allowed
    # Only accountingservice is allowed: the other clients of kafka (checkout produces, fraud
    # detection consumes) would be dropped in enforce mode.
    assert {r.source.workload_name() for r in audited} == {"otel-demo/checkoutservice", "otel-demo/frauddetectionservice"}
    assert {r.source.workload_name() for r in allowed} == {"otel-demo/accountingservice"}
    assert all([p.name for p in r.flow().ingress_denied_by] == [KAFKA_AUDIT_POLICY] for r in audited)
    assert all([p.name for p in r.flow().ingress_allowed_by] == [KAFKA_AUDIT_POLICY] for r in allowed)
    # Audit mode lets the connection through: its packets are forwarded, nothing is dropped.
    assert not [r for r in records if r.destination.workload_name() == "otel-demo/kafka" and r.verdict_name == "DROPPED"]


def test_every_phase_has_the_audit_policy_and_the_l7_policy() -> None:
    world = World.build(1)
    for phase in ("healthy", "broken", "fixed"):
        objects = world.k8s_objects(phase)
        assert KAFKA_AUDIT_POLICY in [p["metadata"]["name"] for p in objects["networkpolicies"]]
        (cnp,) = objects["ciliumnetworkpolicies"]
        assert cnp["metadata"]["name"] == PROMETHEUS_L7_POLICY
        assert cnp["spec"]["ingress"][0]["toPorts"][0]["rules"]["http"] == [{"method": "GET", "path": "/api/v1/.*"}]


def test_the_kube_api_serves_the_cilium_policy_when_cilium_is_on() -> None:
    server = start_kube_api(World.build(1), phase="broken", cilium=True)
    try:
        assert server.store.list("ciliumnetworkpolicies", "monitoring")[1][0]["metadata"]["name"] == PROMETHEUS_L7_POLICY
    finally:
        server.stop()


def test_the_policies_tab_model_sees_audit_and_not_evaluated_groups_in_the_broken_phase() -> None:
    aggregates = FlowAggregates()
    aggregates.ingest_raw([r.raw for r in phase_records("broken", seconds=40)])
    cluster = Cluster(World.build(SEED).k8s_objects("broken"))
    rows = pi.PolicyInsights().verdict_rows(aggregates.policy_groups(None), cluster, 1, 40.0)
    top = rows[0]
    assert (top.group.verdict, top.group.direction, top.policy, top.answer.source, top.answer.destination, top.port_text) == (
        "DROPPED", "egress", "otel-demo/frontend-egress-allow-to-backend", "frontend", "kube-dns", "53/UDP")
    audit = [r for r in rows if r.group.verdict == "AUDIT"]
    assert audit and all(r.answer.check == pi.AGREES and r.policy == f"otel-demo/{KAFKA_AUDIT_POLICY}" for r in audit)
    drift = pi.drift_rows(rows)
    assert any(PROMETHEUS_L7_POLICY in d.reason and d.reason.startswith("not evaluated") for d in drift)


def test_in_the_fixed_phase_the_drops_stop_and_the_new_rule_counts_hits() -> None:
    aggregates = FlowAggregates()
    aggregates.ingest_raw([r.raw for r in phase_records("fixed", seconds=40)])
    cluster = Cluster(World.build(SEED).k8s_objects("fixed"))
    insights = pi.PolicyInsights()
    rows = insights.verdict_rows(aggregates.policy_groups(None), cluster, 1, 40.0)
    assert not [r for r in rows if r.group.verdict == "DROPPED" and r.answer.source == "frontend"]
    view = insights.policy_view(rows, cluster, 1)
    frontend = next(p for p in view.policies if p.ref.name == "frontend-egress-allow-to-backend")
    hits = {r.key.label(): r.hits for r in frontend.rules}
    dns = sum(r.group.flows for r in rows if r.answer.source == "frontend" and r.answer.destination == "kube-dns" and r.group.direction == "egress")
    assert hits["egress rule 2"] == dns > 0  # the DNS rule of the fix
    assert hits["egress default deny"] == 0
