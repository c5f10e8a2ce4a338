"""The simulated world is one consistent Kubernetes cluster, the same for the same seed."""

import ipaddress
import json

import pytest
from kubernetes import client

from kcockpit.sim.world import FRONTEND_POLICY, PHASES, RESERVED_HOST, World


@pytest.fixture(scope="module")
def world() -> World:
    return World.build(seed=7)


def test_same_seed_same_world_other_seed_other_names():
    a = json.dumps(World.build(3).k8s_objects("fixed"), sort_keys=True)
    assert a == json.dumps(World.build(3).k8s_objects("fixed"), sort_keys=True)
    assert a != json.dumps(World.build(4).k8s_objects("fixed"), sort_keys=True)


def test_four_nodes_and_the_namespaces_with_their_name_label(world):
    assert len(world.nodes) == 4
    assert sum(n.control_plane for n in world.nodes) == 1
    names = {ns.name for ns in world.namespaces()}
    assert names == {"otel-demo", "kube-system", "monitoring", "default"}
    for ns in world.namespaces():
        assert ns.labels["kubernetes.io/metadata.name"] == ns.name
    assert world.nodes[1].hubble_name == "kind-kind/" + world.nodes[1].name


def test_every_pod_ip_is_in_its_nodes_pod_cidr_or_is_the_node_ip(world):
    seen = set()
    for pod in world.pods:
        node = world.node(pod.node)
        if pod.host_network:
            assert pod.ip == node.ip and pod.identity == RESERVED_HOST
        else:
            assert ipaddress.ip_address(pod.ip) in ipaddress.ip_network(node.pod_cidr), pod.name
            assert pod.ip not in seen
            seen.add(pod.ip)
            assert world.pod_by_ip(pod.ip) is pod


def test_the_shop_runs_with_realistic_pod_names_and_owners(world):
    for workload in ("loadgenerator", "frontend", "cartservice", "checkoutservice", "redis", "kafka", "featureflagservice"):
        pods = world.pods_of("otel-demo", workload)
        assert pods, workload
        for pod in pods:
            template_hash = pod.labels["pod-template-hash"]
            assert pod.name.startswith(f"{workload}-{template_hash}-") and len(pod.name.rsplit("-", 1)[1]) == 5
            assert pod.owner_kind == "ReplicaSet" and pod.owner_name == f"{workload}-{template_hash}"
    frontend = world.pods_of("otel-demo", "frontend")[0]
    assert frontend.labels["app"] == "frontend"
    assert world.pods_of("otel-demo", "cartservice")[0].labels["app"] == "backend"
    assert world.pods_of("otel-demo", "paymentservice")[0].labels["app"] == "paymentservice"


def test_services_select_their_pods_and_endpoint_slices_list_them(world):
    objects = world.k8s_objects("healthy")
    slices = {(s["metadata"]["namespace"], s["metadata"]["labels"]["kubernetes.io/service-name"]): s for s in objects["endpointslices"]}
    pods_by_name = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in objects["pods"]}
    for svc in objects["services"]:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        endpoints = slices[(ns, name)]["endpoints"]
        assert endpoints, name
        selector = svc["spec"].get("selector")
        if selector is None:
            assert name == "kubernetes"
            continue
        for endpoint in endpoints:
            pod = pods_by_name[(ns, endpoint["targetRef"]["name"])]
            assert selector.items() <= pod["metadata"]["labels"].items()
            assert endpoint["addresses"] == [pod["status"]["podIP"]]
            assert endpoint["nodeName"] == pod["spec"]["nodeName"]


def test_kube_dns_service_selector_and_ports(world):
    dns = next(s for s in world.k8s_objects("healthy")["services"] if s["metadata"]["name"] == "kube-dns")
    assert dns["spec"]["clusterIP"] == "10.96.0.10"
    assert dns["spec"]["selector"] == {"k8s-app": "kube-dns"}
    ports = {(p["name"], p["protocol"], p["port"], p["targetPort"]) for p in dns["spec"]["ports"]}
    assert {("dns", "UDP", 53, 53), ("dns-tcp", "TCP", 53, 53)} <= ports
    coredns = world.pods_matching("kube-system", {"k8s-app": "kube-dns"})
    assert len(coredns) == 2 and all(p.port("dns", "UDP") == 53 for p in coredns)


def test_identities_one_per_label_set_without_pod_template_hash(world):
    carts = world.pods_of("otel-demo", "cartservice")
    assert len(carts) == 2 and carts[0].identity == carts[1].identity >= 256
    labels = world.identity(carts[0].identity).labels
    assert "k8s:app.kubernetes.io/name=cartservice" in labels
    assert "k8s:io.kubernetes.pod.namespace=otel-demo" in labels
    assert not any("pod-template-hash" in label for label in labels)
    numbers = {p.identity for p in world.pods if not p.host_network}
    label_sets = {world.identity(n).labels for n in numbers}
    assert len(numbers) == len(label_sets)
    assert world.identity(2).labels == ("reserved:world",) and world.identity(7).labels == ("reserved:kube-apiserver",)


def _policies(world, phase):
    return {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in world.network_policies(phase)}


def test_policies_per_phase(world):
    healthy, broken, fixed, overload = (_policies(world, phase) for phase in PHASES)
    assert overload == fixed  # CoreDNS is the problem in dns-overload, not the policies
    key = ("otel-demo", FRONTEND_POLICY)
    assert key not in healthy
    spec = broken[key]["spec"]
    assert spec == {
        "podSelector": {"matchLabels": {"app": "frontend"}},
        "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "backend"}}}]}],
        "policyTypes": ["Egress"],
    }
    fixed_spec = fixed[key]["spec"]
    assert fixed_spec["egress"][0] == spec["egress"][0]
    dns_rule = fixed_spec["egress"][1]
    assert dns_rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert sorted((p["protocol"], p["port"]) for p in dns_rule["ports"]) == [("TCP", 53), ("UDP", 53)]
    assert fixed[key]["metadata"]["uid"] == broken[key]["metadata"]["uid"]
    assert fixed[key]["metadata"]["generation"] == 2
    # The baseline policies stay in every phase and carry defaulted policyTypes.
    for phase in (healthy, broken, fixed):
        assert phase[("monitoring", "default-deny-ingress")]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
        assert phase[("monitoring", "allow-grafana-to-prometheus")]["spec"]["policyTypes"] == ["Ingress"]


def test_unknown_phase_is_a_clear_error(world):
    with pytest.raises(ValueError, match="unknown scenario phase 'chaos'"):
        world.network_policies("chaos")


def test_k8s_json_has_api_shapes(world):
    objects = world.k8s_objects("broken")
    assert set(objects) == {"namespaces", "nodes", "pods", "services", "endpointslices", "networkpolicies", "ciliumnetworkpolicies"}
    pod = next(p for p in objects["pods"] if p["metadata"]["name"].startswith("frontend-"))
    assert pod["apiVersion"] == "v1" and pod["kind"] == "Pod"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert pod["spec"]["containers"][0]["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    node = objects["nodes"][0]
    assert node["spec"]["podCIDR"] == world.nodes[0].pod_cidr
    assert node["status"]["addresses"][0] == {"address": world.nodes[0].ip, "type": "InternalIP"}
    json.dumps(objects)  # plain JSON data all the way down


def test_every_object_loads_into_the_official_kubernetes_client_models(world):
    models = {
        "namespaces": client.V1Namespace,
        "nodes": client.V1Node,
        "pods": client.V1Pod,
        "services": client.V1Service,
        "endpointslices": client.V1EndpointSlice,
        "networkpolicies": client.V1NetworkPolicy,
    }
    for phase in ("healthy", "fixed"):
        for resource, items in world.k8s_objects(phase).items():
            if resource == "ciliumnetworkpolicies":
                continue  # a CRD: the official client has no model for it
            for item in items:
                loaded = models[resource].from_dict(item)
                assert loaded.metadata.name == item["metadata"]["name"]
    pod = client.V1Pod.from_dict(next(p for p in world.k8s_objects("healthy")["pods"] if "coredns" in p["metadata"]["name"]))
    assert pod.status.container_statuses[0].image_id.startswith("registry.k8s.io/coredns/coredns@sha256:")
