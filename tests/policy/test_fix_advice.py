"""Fix proposals (patch, new NetworkPolicy, new CNP, blast radius) and advice from observed flows."""

from __future__ import annotations

import functools

import pytest

from kcockpit.model.record import FlowRecord
from kcockpit.policy import advise, fix
from kcockpit.policy.cluster import CILIUM_NETWORKPOLICIES, NETWORKPOLICIES, Cluster
from kcockpit.policy.engine import Engine
from kcockpit.policy.results import Connection
from kcockpit.sim.clock import ManualClock
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.traffic import Simulator
from kcockpit.sim.world import World
from policy_fixtures import app, base_objects, cnp, connection, np, pod


def _cluster(*policies) -> Cluster:
    objects = base_objects()
    for policy in policies:
        resource = NETWORKPOLICIES if policy["kind"] == "NetworkPolicy" else CILIUM_NETWORKPOLICIES
        objects.setdefault(resource, []).append(policy)
    return Cluster(objects)


def _apply(cluster: Cluster, proposal: fix.FixProposal) -> Cluster:
    kept = [p for p in cluster.objects[proposal.resource] if p["metadata"]["name"] != proposal.policy["metadata"]["name"]]
    return cluster.replace(proposal.resource, kept + [proposal.policy])


def test_ingress_denial_gets_a_patch_with_a_same_namespace_peer() -> None:
    cluster = _cluster(np("backend-in", app("backend"), ingress=[{"from": [{"podSelector": app("db")}]}]))
    conn = connection(cluster, "prod/frontend", "prod/backend", 8080)
    proposals = fix.propose(cluster, Engine(cluster).evaluate(conn))
    patch = proposals[0]
    assert patch.kind == fix.PATCH and patch.side == "ingress"
    assert patch.json_patch == [
        {"op": "add", "path": "/spec/ingress/-", "value": {"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}], "ports": [{"protocol": "TCP", "port": 8080}]}}
    ]
    assert [str(o) for o in patch.opens] == ["prod/frontend -> prod/backend on TCP 8080"]
    for proposal in proposals:
        assert proposal.verified, proposal.to_dict()
        assert Engine(_apply(cluster, proposal)).evaluate(conn).verdict == "allowed"


def test_deny_rule_cannot_be_fixed_by_an_allow() -> None:
    cluster = _cluster(cnp("no-fe", app("backend"), ingressDeny=[{"fromEndpoints": [app("frontend")]}]))
    proposals = fix.propose(cluster, Engine(cluster).evaluate(connection(cluster, "prod/frontend", "prod/backend", 8080)))
    assert [(p.kind, p.policy) for p in proposals] == [(fix.DENY_RULE, None)]
    assert proposals[0].title.startswith("prod/no-fe ingressDeny rule 1 denies app=frontend: a deny rule wins")


def test_patching_a_namespace_wide_policy_shows_every_pod_it_opens() -> None:
    cluster = _cluster(np("deny-egress", {}, types=["Egress"]))
    conn = connection(cluster, "prod/frontend", "kube-system/coredns", 53, "UDP")
    patch, new_policy, _ = fix.propose(cluster, Engine(cluster).evaluate(conn))
    sources = {o.source for o in patch.opens}
    assert sources == {"prod/frontend", "prod/backend", "prod/db", "prod/sig"}  # the blast radius of the shared policy
    assert {o.source for o in new_policy.opens} == {"prod/frontend"}  # the per-workload policy opens only for frontend
    assert {(o.destination, o.port) for o in new_policy.opens} == {("kube-system/kube-dns", "UDP 53")}
    assert patch.verified and new_policy.verified


def test_world_peer_gets_an_ip_block_and_an_fqdn_rule_with_dns() -> None:
    cluster = _cluster(np("fe-out", app("frontend"), types=["Egress"], egress=[{"to": [{"podSelector": app("backend")}]}]))
    conn = connection(cluster, "prod/frontend", "world:203.0.113.10|api.example.com", 443)
    patch, _, cilium_policy = fix.propose(cluster, Engine(cluster).evaluate(conn))
    assert patch.json_patch[0]["value"]["to"] == [{"ipBlock": {"cidr": "203.0.113.10/32"}}]
    egress = cilium_policy.policy["spec"]["egress"]
    assert egress[0]["toPorts"][0]["rules"] == {"dns": [{"matchPattern": "*"}]}
    assert egress[1]["toFQDNs"] == [{"matchName": "api.example.com"}]
    assert patch.verified and cilium_policy.verified, cilium_policy.to_dict()


def test_both_sides_denied_need_both_fixes() -> None:
    cluster = _cluster(
        np("fe-out", app("frontend"), types=["Egress"]),
        np("be-in", app("backend"), types=["Ingress"]),
    )
    conn = connection(cluster, "prod/frontend", "prod/backend", 8080)
    proposals = fix.propose(cluster, Engine(cluster).evaluate(conn))
    patches = [p for p in proposals if p.kind == fix.PATCH]
    assert [p.side for p in patches] == ["egress", "ingress"]
    fixed = cluster
    for patch in patches:
        assert Engine(_apply(fixed, patch)).evaluate(conn).verdict == "denied"  # one side alone is not enough
    for patch in patches:
        fixed = _apply(fixed, patch)
    assert Engine(fixed).evaluate(conn).verdict == "allowed"


def test_nothing_to_fix_for_an_allowed_connection() -> None:
    cluster = _cluster()
    assert fix.propose(cluster, Engine(cluster).evaluate(connection(cluster, "prod/frontend", "prod/backend", 8080))) == []


# --- advice from observed traffic ---------------------------------------------------------


@functools.cache
def _world_flows() -> tuple[World, tuple[FlowRecord, ...]]:
    world = World.build(3)
    clock = ManualClock()
    simulator = Simulator(world, seed=3, clock=clock, scenario=Scenario(clock, mode="healthy"))
    return world, tuple(FlowRecord.from_flow(r.flow) for r in simulator.take(4000))


def test_advice_for_frontend_is_least_privilege_and_verified() -> None:
    world, records = _world_flows()
    cluster = Cluster(world.k8s_objects("healthy"))
    advice = advise.advise(records, "otel-demo", "frontend", cluster)
    assert advice.verified, advice.failures
    text = advice.yaml()
    assert "pod-template-hash" not in text
    frontend_service = cluster.service("otel-demo", "frontend")
    assert advice.networkpolicy["spec"]["podSelector"] == {"matchLabels": frontend_service["spec"]["selector"]}
    dns_rule = advice.networkpolicy["spec"]["egress"][-1]
    assert dns_rule["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert "egress to kube-system/kube-dns on UDP 53, TCP 53 (added deliberately: name resolution)" in advice.rules
    # Applied to the cluster: every observed connection stays allowed, an unobserved one is denied.
    applied = cluster.replace(NETWORKPOLICIES, cluster.networkpolicies + [advice.networkpolicy])
    engine = Engine(applied)
    frontend = cluster.find_pods("otel-demo", "frontend")[0]
    redis = cluster.find_pods("otel-demo", "redis")[0]
    assert engine.evaluate(Connection(frontend, redis, 6379, "TCP")).verdict == "denied"
    seen_backends = {line.split(" on ")[0].removeprefix("egress to ") for line in advice.rules if line.startswith("egress to otel-demo/")}
    assert seen_backends, advice.rules


def test_dns_is_added_even_when_no_lookup_was_captured() -> None:
    world, records = _world_flows()
    cluster = Cluster(world.k8s_objects("healthy"))
    without_dns = [r for r in records if 53 not in (r.source.port, r.destination.port)]
    advice = advise.advise(without_dns, "otel-demo", "frontend", cluster)
    assert any(line.startswith("egress to kube-system/kube-dns") for line in advice.rules)
    assert advice.cilium_policy["spec"]["egress"][0]["toPorts"][0]["rules"] == {"dns": [{"matchPattern": "*"}]}


def test_advice_for_an_unknown_workload_is_a_clear_error() -> None:
    world, records = _world_flows()
    with pytest.raises(advise.AdviceError, match="no forwarded flow to or from otel-demo/nope in the input"):
        advise.advise(records, "otel-demo", "nope", Cluster(world.k8s_objects("healthy")))


def test_a_peer_known_only_by_name_gets_a_cilium_fqdn_fix() -> None:
    from kcockpit.policy import targets

    cluster = _cluster(np("fe-out", app("frontend"), types=["Egress"], egress=[{"to": [{"podSelector": app("backend")}]}]))
    destination, port = targets.resolve(cluster, "api.example.com", 443)
    conn = Connection(cluster.pod("prod", "frontend"), destination, port, "TCP")
    proposals = fix.propose(cluster, Engine(cluster).evaluate(conn))
    assert [p.kind for p in proposals] == [fix.NOT_EXPRESSIBLE, fix.NEW_CILIUM_POLICY]
    assert proposals[0].title == (
        "a NetworkPolicy cannot name api.example.com without its IP address (ipBlock needs a CIDR); "
        "the CiliumNetworkPolicy names it with toFQDNs"
    )
    assert proposals[1].verified, proposals[1].to_dict()
    with_ip_block = _cluster(np("fe-out", app("frontend"), types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]))
    evaluation = Engine(with_ip_block).evaluate(conn)
    assert evaluation.verdict == "not-evaluated"
    assert evaluation.egress.unknown[0].detail == "the IP of api.example.com is unknown"


def test_advice_from_flows_alone_uses_the_flows_labels() -> None:
    _, records = _world_flows()
    advice = advise.advise(records, "otel-demo", "frontend", Cluster())
    assert advice.verified, advice.failures
    assert advice.networkpolicy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "frontend"}}
    assert "pod-template-hash" not in advice.yaml()
    assert advice.networkpolicy["spec"]["egress"][-1] == {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


# ===== Folded from test_review_fix.py ==============================================================
# Review: a fix proposal's blast radius includes what it closes, not only what it opens.


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
