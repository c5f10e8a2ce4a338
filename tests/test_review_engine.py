"""Review: engine edge cases (host-network peers, reserved identities)."""

from __future__ import annotations

from kcockpit.model.record import EndpointInfo
from kcockpit.policy.cluster import Cluster
from kcockpit.policy.endpoints import UNKNOWN, WORLD, Endpoint, flow_endpoint
from kcockpit.policy.engine import Engine
from kcockpit.policy.results import Connection
from policy_fixtures import base_objects, connection


def _np(name, selector, **spec):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "prod"},
            "spec": {"podSelector": selector, **spec}}


def _cnp(name, selector, **spec):
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": "prod"},
            "spec": {"endpointSelector": selector, **spec}}


BACKEND = {"matchLabels": {"app": "backend"}}


def _evaluate(policies, source, destination, port, agent_node="node-1"):
    objects = base_objects()
    for item in objects["pods"]:
        if item["metadata"]["name"] == "agent":
            item["spec"]["nodeName"] = agent_node
    for policy in policies:
        objects.setdefault("networkpolicies" if policy["kind"] == "NetworkPolicy" else "ciliumnetworkpolicies", []).append(policy)
    cluster = Cluster(objects)
    return Engine(cluster).evaluate(connection(cluster, source, destination, port))


# Host-network peers: Cilium gives them their node's identity, never a pod identity.


def test_a_host_network_pod_on_the_own_node_is_the_node_and_always_allowed() -> None:
    only_frontend = _np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}])
    evaluation = _evaluate([only_frontend], "prod/agent", "prod/backend", 8080)
    assert evaluation.verdict == "allowed"
    assert "own node" in evaluation.ingress.reason


def test_a_host_network_pod_on_another_node_is_not_selected_by_pod_selectors() -> None:
    by_label = _np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "agent"}}}]}])
    assert _evaluate([by_label], "prod/agent", "prod/backend", 8080, agent_node="node-2").verdict == "denied"
    remote_nodes = _cnp("in", BACKEND, ingress=[{"fromEntities": ["remote-node"]}])
    assert _evaluate([remote_nodes], "prod/agent", "prod/backend", 8080, agent_node="node-2").verdict == "allowed"


def test_a_host_network_pod_on_an_unknown_node_is_not_evaluated() -> None:
    by_label = _np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "agent"}}}]}])
    evaluation = _evaluate([by_label], "prod/agent", "prod/backend", 8080, agent_node="")
    assert evaluation.verdict == "not-evaluated"
    assert "uses the host network" in evaluation.ingress.reason


# --- reserved identities


def _info(labels, identity=0, ip="203.0.113.7"):
    return EndpointInfo("", "", "", identity, ip, 443, tuple(labels), (), "")


def test_dual_stack_world_identities_are_world() -> None:
    assert flow_endpoint(_info(["reserved:world-ipv4"], 9)).kind == WORLD
    assert flow_endpoint(_info(["reserved:world-ipv6"], 10, "2001:db8::7")).kind == WORLD


def test_the_cluster_entity_includes_cilium_s_other_reserved_endpoints() -> None:
    health = flow_endpoint(_info(["reserved:health"], 4, "10.0.9.9"))
    assert health.kind == UNKNOWN
    objects = base_objects()
    objects["ciliumnetworkpolicies"] = [_cnp("in", BACKEND, ingress=[{"fromEntities": ["cluster"]}])]
    cluster = Cluster(objects)
    assert Engine(cluster).evaluate(Connection(health, cluster.pod("prod", "backend"), 8080, "TCP")).verdict == "allowed"
    world = Endpoint(kind=WORLD, ip="203.0.113.7")
    assert Engine(cluster).evaluate(Connection(world, cluster.pod("prod", "backend"), 8080, "TCP")).verdict == "denied"


def test_selectors_on_the_cilium_cluster_label_are_not_evaluated_rather_than_denied() -> None:
    # Cilium puts io.cilium.k8s.policy.cluster (the cluster's name) on every pod identity;
    # neither pod objects nor kcockpit's endpoints carry it, so a mismatch would be a guess.
    same_cluster = {"matchLabels": {"k8s:io.cilium.k8s.policy.cluster": "default", "k8s:app": "frontend"}}
    policy = _cnp("in", BACKEND, ingress=[{"fromEndpoints": [same_cluster]}])
    evaluation = _evaluate([policy], "prod/frontend", "prod/backend", 8080)
    assert evaluation.verdict == "not-evaluated"
    assert "io.cilium.k8s.policy.cluster" in evaluation.ingress.unknown[0].detail
    other_app = {"matchLabels": {"k8s:io.cilium.k8s.policy.cluster": "default", "k8s:app": "db"}}
    policy = _cnp("in", BACKEND, ingress=[{"fromEndpoints": [other_app]}])
    assert _evaluate([policy], "prod/frontend", "prod/backend", 8080).verdict == "denied"  # app=db fails whatever the cluster
    scoped = _cnp("in", {"matchLabels": {"io.cilium.k8s.policy.cluster": "default", "app": "backend"}}, ingress=[{}])
    assert _evaluate([scoped], "prod/frontend", "prod/backend", 8080).verdict == "not-evaluated"


def test_a_node_ip_named_on_the_command_line_is_that_node_not_the_world() -> None:
    from kcockpit.policy import targets

    objects = base_objects()
    objects["nodes"] = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
         "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}}
        for name, ip in (("node-1", "192.168.0.11"), ("node-2", "192.168.0.12"))
    ]
    objects["networkpolicies"] = [_np("in", BACKEND, ingress=[{"from": [{"ipBlock": {"cidr": "192.168.0.0/16"}}]}])]
    cluster = Cluster(objects)
    node, _ = targets.resolve(cluster, "192.168.0.12")
    assert (node.kind, node.node) == ("remote-node", "node-2")
    backend = cluster.pod("prod", "backend")  # on node-1
    # On Cilium an ipBlock never selects nodes: from another node this is denied...
    assert Engine(cluster).evaluate(Connection(node, backend, 8080, "TCP")).verdict == "denied"
    # ...and from the backend's own node it is always allowed.
    own, _ = targets.resolve(cluster, "192.168.0.11")
    evaluation = Engine(cluster).evaluate(Connection(own, backend, 8080, "TCP"))
    assert evaluation.verdict == "allowed" and "own node" in evaluation.ingress.reason


def test_ingress_rules_ignored_by_policy_types_are_warned_about_too() -> None:
    policy = _np("p", BACKEND, policyTypes=["Egress"], ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}]}])
    evaluation = _evaluate([policy], "prod/frontend", "prod/backend", 8080)
    assert evaluation.verdict == "allowed"  # ingress is not isolated: the rules do not apply
    assert evaluation.ingress.warnings == ("prod/p has ingress rules but policyTypes ['Egress'] lacks Ingress: they are ignored",)
