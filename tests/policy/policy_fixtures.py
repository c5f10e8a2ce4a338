"""A small cluster for the policy tests: namespaces, pods with named ports, world endpoints;
and builders for the policy objects (np, cnp, ccnp) and their selectors."""

from __future__ import annotations

from kcockpit.policy.cluster import Cluster
from kcockpit.policy.endpoints import HOST, KUBE_APISERVER, REMOTE_NODE, Endpoint, world_endpoint
from kcockpit.policy.results import Connection


def namespace(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}}


def pod(ns: str, name: str, ip: str, labels: dict, ports=(), node: str = "node-1", host_network: bool = False) -> dict:
    container_ports = [{"name": n, "containerPort": p, "protocol": proto} for n, p, proto in ports]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"nodeName": node, "hostNetwork": host_network, "containers": [{"name": "main", "ports": container_ports}]},
        "status": {"podIP": ip},
    }


def base_objects() -> dict:
    return {
        "namespaces": [
            namespace("prod", env="prod", team="shop"),
            namespace("dev", env="dev"),
            namespace("kube-system"),
            namespace("monitoring", team="obs"),
        ],
        "pods": [
            pod("prod", "frontend", "10.0.1.1", {"app": "frontend", "tier": "web"}, [("http", 80, "TCP")]),
            pod("prod", "backend", "10.0.1.2", {"app": "backend", "tier": "api"},
                [("http", 8080, "TCP"), ("metrics", 9090, "TCP"), ("grpc", 50051, "TCP")]),
            pod("prod", "db", "10.0.1.3", {"app": "db"}, [("postgres", 5432, "TCP")]),
            pod("prod", "sig", "10.0.1.4", {"app": "sig"}, [("diameter", 3868, "SCTP")]),
            pod("prod", "agent", "192.168.0.11", {"app": "agent"}, [("http", 8080, "TCP")], host_network=True),
            pod("dev", "frontend", "10.0.2.1", {"app": "frontend"}, [("http", 80, "TCP")]),
            pod("dev", "tester", "10.0.2.2", {"app": "tester"}),
            pod("kube-system", "coredns", "10.0.3.1", {"k8s-app": "kube-dns"},
                [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]),
            pod("monitoring", "prometheus", "10.0.4.1", {"app": "prometheus"}),
        ],
    }


def endpoint(cluster: Cluster, name: str) -> Endpoint:
    """`ns/pod`, `world:IP[|dnsname]`, `host`, `remote-node` or `kube-apiserver`."""
    if name == "host":
        return Endpoint(kind=HOST, ip="192.168.0.11", node="node-1")
    if name == "remote-node":
        return Endpoint(kind=REMOTE_NODE, ip="192.168.0.12", node="node-2")
    if name == "kube-apiserver":
        return Endpoint(kind=KUBE_APISERVER, ip="192.168.0.10")
    if name.startswith("world:"):
        ip, *names = name.removeprefix("world:").split("|")
        return world_endpoint(ip, tuple(names))
    ns, pod_name = name.split("/")
    found = cluster.pod(ns, pod_name)
    assert found, name
    return found


def connection(cluster: Cluster, source: str, destination: str, port: int, protocol: str = "TCP") -> Connection:
    return Connection(endpoint(cluster, source), endpoint(cluster, destination), port, protocol)


# ----- policy objects and selectors


def np(name, selector=None, *, ns="prod", types=None, ingress=None, egress=None):
    spec: dict = {"podSelector": selector if selector is not None else {}}
    if types is not None:
        spec["policyTypes"] = types
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def cnp(name, selector=None, *, ns="prod", **sections):
    spec = {"endpointSelector": selector if selector is not None else {}, **sections}
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def ccnp(name, selector=None, **sections):
    spec = {"endpointSelector": selector if selector is not None else {}, **sections}
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def app(value):
    return {"matchLabels": {"app": value}}


def ns_name(value):
    return {"matchLabels": {"kubernetes.io/metadata.name": value}}
