"""Build policy pieces for an endpoint: selectors, peers, ports, whole objects, YAML.

Shared by fix proposals and advice so both name a workload the same way: the selector of
the Service in front of it when there is one (what its owners already chose as its stable
identity), else one well-known app label, else all its stable labels.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

import yaml

from kcockpit.policy.cluster import Cluster
from kcockpit.policy.endpoints import (
    CILIUM_NAMESPACE_LABEL,
    HOST,
    KUBE_APISERVER,
    NAMESPACE_NAME_LABEL,
    POD,
    REMOTE_NODE,
    UNSTABLE_LABELS,
    WORLD,
    Endpoint,
)

IDENTITY_KEYS = ("app.kubernetes.io/name", "app", "k8s-app", "name")
APPLY_METADATA = ("name", "namespace", "labels")
L4 = ("TCP", "UDP", "SCTP")


def pod_selector_labels(cluster: Cluster, endpoint: Endpoint) -> dict[str, str]:
    """The labels that name this pod's workload, stable across rollouts."""
    services = []
    if endpoint.service:
        namespace, _, name = endpoint.service.partition("/")
        service = cluster.service(namespace, name)
        if service and namespace == endpoint.namespace:
            services.append(service)
    services += cluster.services_selecting(endpoint)
    for service in services:
        selector = (service.get("spec") or {}).get("selector") or {}
        if UNSTABLE_LABELS.intersection(selector):
            continue  # a per-pod Service (statefulset.kubernetes.io/pod-name) names one pod, not the workload
        if selector and all(endpoint.labels.get(k) == v for k, v in selector.items()):
            return dict(selector)
    stable = endpoint.stable_labels()
    for key in IDENTITY_KEYS:
        if key in stable:
            return {key: stable[key]}
    return stable


def host_cidr(ip: str) -> str:
    return f"{ip}/{32 if ipaddress.ip_address(ip).version == 4 else 128}"


def np_peer(cluster: Cluster, peer: Endpoint, policy_namespace: str) -> dict | None:
    """One NetworkPolicy peer item for `peer`: namespace and pod selectors in the SAME item (AND).

    None for an endpoint known only by DNS name: NetworkPolicy can only name it by IP.
    """
    if peer.kind == POD:
        item: dict = {}
        if peer.namespace != policy_namespace:
            item["namespaceSelector"] = {"matchLabels": {NAMESPACE_NAME_LABEL: peer.namespace}}
        item["podSelector"] = {"matchLabels": pod_selector_labels(cluster, peer)}
        return item
    return {"ipBlock": {"cidr": host_cidr(peer.ip)}} if peer.ip else None


def target_ports(cluster: Cluster, peer: Endpoint, port: int, protocol: str) -> list[tuple[int, str]]:
    """(port, protocol) pairs to allow: every protocol the peer's Services expose on this target port.

    For DNS this gives UDP 53 and TCP 53 from the kube-dns Service and its EndpointSlices,
    so the fix also covers truncated answers retried over TCP.
    """
    wanted = [(port, protocol)]
    if peer.kind == POD:
        for service in cluster.services_selecting(peer):
            for service_port in cluster.service_ports(service):
                target = service_port.target_port
                if isinstance(target, str) and peer.ports is not None:
                    named = [p.port for p in peer.ports if p.name == target and p.protocol == service_port.protocol]
                    target = named[0] if named else target
                if target == port and (port, service_port.protocol) not in wanted:
                    wanted.append((port, service_port.protocol))
    return wanted if port else []


def np_ports(ports: Iterable[tuple[int, str]]) -> list[dict]:
    return [{"protocol": protocol, "port": port} for port, protocol in ports if protocol in L4]


def cnp_peer(cluster: Cluster, peer: Endpoint, policy_namespace: str, direction: str) -> dict | None:
    """The Cilium rule fields that select `peer` (endpoints, entities, FQDNs or CIDRs); None if nothing can."""
    prefix = "to" if direction == "egress" else "from"
    if peer.kind == POD:
        labels = {f"k8s:{k}": v for k, v in pod_selector_labels(cluster, peer).items()}
        if peer.namespace != policy_namespace:
            labels[f"k8s:{CILIUM_NAMESPACE_LABEL}"] = peer.namespace
        return {f"{prefix}Endpoints": [{"matchLabels": labels}]}
    if peer.kind in (HOST, REMOTE_NODE, KUBE_APISERVER):
        return {f"{prefix}Entities": [peer.kind]}
    if peer.kind == WORLD and peer.dns_names and direction == "egress":
        return {"toFQDNs": [{"matchName": peer.dns_names[0].rstrip(".")}]}
    return {f"{prefix}CIDR": [host_cidr(peer.ip)]} if peer.ip else None


def cnp_to_ports(ports: Iterable[tuple[int, str]]) -> list[dict]:
    entries = [{"port": str(port), "protocol": protocol} for port, protocol in ports if protocol in L4]
    return [{"ports": entries}] if entries else []


def dns_peer(cluster: Cluster) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """(kube-dns pod selector, [(port, protocol)]) read from the cluster's kube-dns Service."""
    service = cluster.service("kube-system", "kube-dns")
    if not service:
        return {"k8s-app": "kube-dns"}, [(53, "UDP"), (53, "TCP")]
    selector = dict((service.get("spec") or {}).get("selector") or {"k8s-app": "kube-dns"})
    dns_pods = [p for p in cluster.pods if p.namespace == "kube-system" and all(p.labels.get(k) == v for k, v in selector.items())]
    ports = []
    for service_port in cluster.service_ports(service):
        if service_port.port != 53:
            continue
        target = service_port.target_port
        if isinstance(target, str):  # a named port: the DNS pods' container port of that name
            named = [n.port for p in dns_pods for n in p.ports or () if n.name == target and n.protocol == service_port.protocol]
            target = named[0] if named else None
        if target is not None:
            ports.append((int(target), service_port.protocol))
    return selector, sorted(set(ports) or {(53, "UDP"), (53, "TCP")}, key=lambda p: (p[1] != "UDP", p[0]))


def np_dns_rule(cluster: Cluster) -> dict:
    selector, ports = dns_peer(cluster)
    peer = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}}, "podSelector": {"matchLabels": selector}}
    return {"to": [peer], "ports": np_ports(ports)}


def cnp_dns_rule(cluster: Cluster) -> dict:
    """DNS egress through Cilium's DNS proxy, which toFQDNs rules need to learn IPs."""
    selector, ports = dns_peer(cluster)
    labels = {f"k8s:{k}": v for k, v in selector.items()}
    labels[f"k8s:{CILIUM_NAMESPACE_LABEL}"] = "kube-system"
    to_ports = cnp_to_ports(ports)
    for to_port in to_ports:
        to_port["rules"] = {"dns": [{"matchPattern": "*"}]}
    return {"toEndpoints": [{"matchLabels": labels}], "toPorts": to_ports}


def object_for_apply(obj: Mapping) -> dict:
    """Drop server-set metadata (uid, resourceVersion, ...) so `kubectl apply` takes it as is."""
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k in APPLY_METADATA and v}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": metadata, "spec": obj.get("spec")}


def to_yaml(obj: Mapping | list) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def dns_safe_name(*parts: str) -> str:
    """A valid object name (RFC 1123 label, at most 63 characters) made of the parts."""
    name = re.sub(r"[^a-z0-9-]+", "-", "-".join(p for p in parts if p).lower()).strip("-")
    return name[:63].rstrip("-") or "kcockpit-policy"
