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
from policy_fixtures import app, base_objects, cnp, connection, np


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
