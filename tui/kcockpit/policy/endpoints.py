"""What the engine knows about one end of a connection, built from a pod or from a flow.

A pod object gives labels, IP, node and named container ports; a Hubble flow endpoint
gives labels (with Cilium source prefixes and Cilium's own namespace/service-account
labels mixed in), the IP and the reserved identity for non-pod endpoints. Both are
reduced to `Endpoint` so the engine never cares where the facts came from.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from kcockpit.model.record import RESERVED_IDENTITIES, EndpointInfo
from kcockpit.policy.selectors import parse_label

POD = "pod"
WORLD = "world"
HOST = "host"
REMOTE_NODE = "remote-node"
KUBE_APISERVER = "kube-apiserver"
UNKNOWN = "unknown"
WORLD_IDENTITIES = ("world", "world-ipv4", "world-ipv6")

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Labels Cilium adds to an endpoint's identity; they are not pod labels.
CILIUM_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
CILIUM_NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
CILIUM_SERVICE_ACCOUNT_LABEL = "io.cilium.k8s.policy.serviceaccount"
CILIUM_LABEL_PREFIXES = ("io.cilium.", "io.kubernetes.pod.namespace")
# Labels that change with every rollout or pod: never select on them.
UNSTABLE_LABELS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "pod-template-generation",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "controller-uid",
        "batch.kubernetes.io/controller-uid",
        "job-name",
        "batch.kubernetes.io/job-name",
    }
)


@dataclass(frozen=True)
class NamedPort:
    name: str
    port: int
    protocol: str


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection. `ports` is None when the container ports are unknown."""

    kind: str
    namespace: str = ""
    name: str = ""  # pod name; DNS name or IP for world endpoints
    workload: str = ""  # the unit a person thinks in: deployment, app label, or pod name
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] | None = None  # None: only what the cluster data knows
    ip: str = ""
    node: str = ""
    ports: tuple[NamedPort, ...] | None = None
    dns_names: tuple[str, ...] = ()
    service: str = ""  # "ns/name" of the Service this endpoint was addressed through
    host_network: bool = False
    service_account: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.namespace, self.name, self.ip)

    @property
    def is_pod(self) -> bool:
        return self.kind == POD

    def display(self, prefer_service: bool = False) -> str:
        """`otel-demo/frontend` for pods (or the Service name), the DNS name/IP or entity otherwise."""
        if prefer_service and self.service:
            return self.service
        if self.kind == POD:
            return f"{self.namespace}/{self.workload or self.name}"
        if self.kind == WORLD:
            return self.dns_names[0] if self.dns_names else (self.ip or "world")
        return f"{self.kind} {self.ip}" if self.ip else self.kind

    def stable_labels(self) -> dict[str, str]:
        return {k: v for k, v in self.labels.items() if k not in UNSTABLE_LABELS}


def ip_in_block(ip: str, cidr: str, excepts: list[str] | tuple[str, ...] = ()) -> bool:
    """Whether ip lies in cidr and in none of the except ranges (False for another IP family)."""
    address = ipaddress.ip_address(ip)
    network = ipaddress.ip_network(cidr, strict=False)
    if address.version != network.version or address not in network:
        return False
    return not any(
        address in ipaddress.ip_network(e, strict=False)
        for e in excepts
        if ipaddress.ip_network(e, strict=False).version == address.version
    )


def workload_of_pod(pod: Mapping) -> str:
    """Deployment name for ReplicaSet-owned pods, else the owner, app label, or pod name."""
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    for owner in metadata.get("ownerReferences") or ():
        name = owner.get("name", "")
        if owner.get("kind") == "ReplicaSet":
            pod_hash = labels.get("pod-template-hash")
            if pod_hash and name.endswith("-" + pod_hash):
                return name[: -len(pod_hash) - 1]
            return name.rsplit("-", 1)[0]
        if name:
            return name
    for key in ("app.kubernetes.io/name", "app", "k8s-app"):
        if labels.get(key):
            return labels[key]
    return metadata.get("name", "")


def pod_endpoint(pod: Mapping, namespace_labels: Mapping[str, str] | None = None) -> Endpoint:
    """An Endpoint from a Pod object (as the API server returns it)."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ports = []
    for container in spec.get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("containerPort"):
                ports.append(NamedPort(port.get("name", ""), int(port["containerPort"]), port.get("protocol", "TCP")))
    return Endpoint(
        kind=POD,
        namespace=metadata.get("namespace", "default"),
        name=metadata.get("name", ""),
        workload=workload_of_pod(pod),
        labels=dict(metadata.get("labels") or {}),
        namespace_labels=namespace_labels,
        ip=status.get("podIP", ""),
        node=spec.get("nodeName", ""),
        ports=tuple(ports),
        host_network=bool(spec.get("hostNetwork")),
        service_account=spec.get("serviceAccountName") or "default",
    )


def flow_endpoint(info: EndpointInfo) -> Endpoint:
    """An Endpoint from a Hubble flow endpoint: Cilium labels split into pod and namespace labels."""
    labels: dict[str, str] = {}
    namespace_labels: dict[str, str] = {}
    service_account = ""
    reserved = RESERVED_IDENTITIES.get(info.identity, "")
    for text in info.labels:
        if text.startswith("reserved:"):
            reserved = reserved or text.partition(":")[2].partition("=")[0]
            continue
        key, value = parse_label(text)
        if key.startswith(CILIUM_NAMESPACE_LABELS_PREFIX):
            namespace_labels[key[len(CILIUM_NAMESPACE_LABELS_PREFIX) :]] = value
        elif key == CILIUM_SERVICE_ACCOUNT_LABEL:
            service_account = value
        elif not key.startswith(CILIUM_LABEL_PREFIXES):
            labels[key] = value
    if reserved in WORLD_IDENTITIES:
        reserved = WORLD  # dual-stack clusters split world into one identity per IP family
    if info.namespace and not reserved:
        kind = POD
    elif reserved in (HOST, REMOTE_NODE, KUBE_APISERVER, WORLD):
        kind = reserved
    elif reserved:
        kind = UNKNOWN
    else:
        kind = WORLD
    workload = info.workload or info.app() or info.pod
    return Endpoint(
        kind=kind,
        namespace=info.namespace if kind == POD else "",
        name=info.pod if kind == POD else (info.names[0] if info.names else info.ip),
        workload=workload if kind == POD else "",
        labels=labels,
        namespace_labels=(namespace_labels or None) if kind == POD else None,
        ip=info.ip,
        dns_names=info.names,
        service=info.service,
        service_account=service_account if kind == POD else "",
    )


def world_endpoint(ip: str, dns_names: tuple[str, ...] = ()) -> Endpoint:
    """An endpoint outside the cluster, by IP, DNS name, or both."""
    return Endpoint(kind=WORLD, name=dns_names[0] if dns_names else ip, ip=ip, dns_names=dns_names)
