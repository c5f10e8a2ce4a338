"""Review: a fix proposal's blast radius includes what it closes, not only what it opens."""

from __future__ import annotations

from kcockpit.policy import fix
from kcockpit.policy.cluster import Cluster
from kcockpit.policy.engine import Engine
from policy_fixtures import base_objects, connection, pod


def test_a_new_policy_that_isolates_more_pods_than_the_deciding_one_is_not_verified() -> None:
    objects = base_objects()
    # A canary of frontend without the tier label: the deciding policy leaves it alone.
    objects["pods"].append(pod("prod", "frontend-canary", "10.0.1.9", {"app": "frontend"}, [("http", 80, "TCP")]))
    objects["networkpolicies"] = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "web-out", "namespace": "prod"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "frontend", "tier": "web"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "backend"}}}]}],
            },
        }
    ]
    cluster = Cluster(objects)
    conn = connection(cluster, "prod/frontend", "prod/db", 5432)
    proposals = {p.kind: p for p in fix.propose(cluster, Engine(cluster).evaluate(conn))}
    patch, new_policy = proposals[fix.PATCH], proposals[fix.NEW_NETWORKPOLICY]
    assert patch.verified and patch.closes == []
    assert new_policy.allows_flow
    # Selecting app=frontend isolates the canary for egress: what it reached before is now denied.
    # (The canary shows as prod/frontend, its app label; frontend itself keeps reaching backend.)
    assert "prod/frontend -> prod/backend on TCP 8080" in [str(c) for c in new_policy.closes]
    assert not new_policy.verified
    assert new_policy.to_dict()["closes"] and new_policy.to_dict()["verified"] is False


def test_the_cli_names_what_a_proposal_closes() -> None:
    from kcockpit.sources import policy_cli

    proposal = fix.FixProposal("egress", fix.NEW_NETWORKPOLICY, "new NetworkPolicy prod/x", "networkpolicies", {"kind": "NetworkPolicy"})
    proposal.allows_flow = True
    proposal.opens = [fix.Opening("prod/frontend", "prod/db", "TCP 5432")]
    proposal.closes = [fix.Opening("prod/canary", "prod/backend", "TCP 8080")]
    assert policy_cli._proposal_text(proposal, with_yaml=False).splitlines()[1:] == [
        "  NOT verified: it isolates pods the deciding policy leaves alone; it opens:",
        "    prod/frontend -> prod/db on TCP 5432",
        "  and denies what was allowed before:",
        "    prod/canary -> prod/backend on TCP 8080",
    ]


# A Job's pods carry only labels that change with every run (job-name, controller-uid):
# a selector built from their stable labels would be empty and select every pod.
JOB_LABELS = {"job-name": "report-28731", "controller-uid": "u1", "batch.kubernetes.io/job-name": "report-28731",
              "batch.kubernetes.io/controller-uid": "u1"}


def _with_job() -> Cluster:
    objects = base_objects()
    objects["pods"].append(pod("prod", "report-28731-abcde", "10.0.1.20", JOB_LABELS))
    objects["networkpolicies"] = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny-out", "namespace": "prod"},
         "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}
    ]
    return Cluster(objects)


def test_advice_refuses_a_workload_without_stable_labels_instead_of_selecting_every_pod() -> None:
    import pytest

    from kcockpit.model.record import FlowRecord
    from kcockpit.policy import advise
    from kcockpit.wire.hubble_pb import flow_pb

    flow = flow_pb.Flow(verdict=flow_pb.FORWARDED)
    flow.IP.source, flow.IP.destination = "10.0.1.20", "10.0.1.3"
    flow.source.namespace, flow.source.pod_name = "prod", "report-28731-abcde"
    flow.destination.namespace, flow.destination.pod_name = "prod", "db"
    flow.l4.TCP.source_port, flow.l4.TCP.destination_port = 40000, 5432
    with pytest.raises(advise.AdviceError, match="no stable labels"):
        advise.advise([FlowRecord.from_flow(flow)], "prod", "report-28731-abcde", _with_job())


def test_no_new_policy_is_proposed_for_a_pod_without_stable_labels() -> None:
    cluster = _with_job()
    conn = connection(cluster, "prod/report-28731-abcde", "prod/db", 5432)
    proposals = fix.propose(cluster, Engine(cluster).evaluate(conn))
    kinds = [p.kind for p in proposals]
    assert fix.PATCH in kinds and fix.NEW_NETWORKPOLICY not in kinds and fix.NEW_CILIUM_POLICY not in kinds
    [refusal] = [p for p in proposals if p.kind == fix.NOT_EXPRESSIBLE]
    assert "no stable labels" in refusal.title


def test_a_peer_without_stable_labels_is_not_widened_to_its_whole_namespace_silently() -> None:
    objects = base_objects()
    objects["pods"].append(pod("prod", "report-28731-abcde", "10.0.1.20", JOB_LABELS))
    objects["networkpolicies"] = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "db-in", "namespace": "prod"},
         "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "backend"}}}]}]}}
    ]
    cluster = Cluster(objects)
    conn = connection(cluster, "prod/report-28731-abcde", "prod/db", 5432)
    for proposal in fix.propose(cluster, Engine(cluster).evaluate(conn)):
        if proposal.policy is not None:
            # Whatever selects the job's pod also selects frontend and the others: never "verified".
            assert any(str(o).startswith("prod/frontend -> prod/db") for o in proposal.unrelated), proposal.to_dict()
            assert not proposal.verified


def test_a_per_pod_service_does_not_make_the_selector_name_one_pod() -> None:
    from kcockpit.policy import builders

    objects = base_objects()
    for index in (0, 1):
        labels = {"app": "kafka", "statefulset.kubernetes.io/pod-name": f"kafka-{index}", "controller-revision-hash": "kafka-7d9"}
        objects["pods"].append(pod("prod", f"kafka-{index}", f"10.0.1.3{index}", labels, [("kafka", 9092, "TCP")]))
    objects["services"] = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kafka-0-external", "namespace": "prod"},
         "spec": {"selector": {"statefulset.kubernetes.io/pod-name": "kafka-0"}, "ports": [{"port": 9094, "targetPort": 9092}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kafka", "namespace": "prod"},
         "spec": {"selector": {"app": "kafka"}, "ports": [{"port": 9092}]}},
    ]
    cluster = Cluster(objects)
    assert builders.pod_selector_labels(cluster, cluster.pod("prod", "kafka-0")) == {"app": "kafka"}
