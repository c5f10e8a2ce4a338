"""The cluster's objects, indexed for the engine: plain Kubernetes JSON dicts in, lookups out.

The same shape comes from the API server, from the simulator's world and from a
directory of manifests: a mapping from the plural resource name to a list of objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kcockpit.policy.endpoints import NAMESPACE_NAME_LABEL, Endpoint, pod_endpoint

NAMESPACES = "namespaces"
PODS = "pods"
SERVICES = "services"
ENDPOINTSLICES = "endpointslices"
NODES = "nodes"
NETWORKPOLICIES = "networkpolicies"
CILIUM_NETWORKPOLICIES = "ciliumnetworkpolicies"
CILIUM_CLUSTERWIDE_NETWORKPOLICIES = "ciliumclusterwidenetworkpolicies"
RESOURCES = (
    NAMESPACES,
    PODS,
    SERVICES,
    ENDPOINTSLICES,
    NODES,
    NETWORKPOLICIES,
    CILIUM_NETWORKPOLICIES,
    CILIUM_CLUSTERWIDE_NETWORKPOLICIES,
)
POLICY_RESOURCES = (NETWORKPOLICIES, CILIUM_NETWORKPOLICIES, CILIUM_CLUSTERWIDE_NETWORKPOLICIES)
# kind -> resource, for manifests and `kubectl get -o yaml` lists.
RESOURCE_OF_KIND = {
    "Namespace": NAMESPACES,
    "Pod": PODS,
    "Service": SERVICES,
    "EndpointSlice": ENDPOINTSLICES,
    "Node": NODES,
    "NetworkPolicy": NETWORKPOLICIES,
    "CiliumNetworkPolicy": CILIUM_NETWORKPOLICIES,
    "CiliumClusterwideNetworkPolicy": CILIUM_CLUSTERWIDE_NETWORKPOLICIES,
}
KIND_OF_RESOURCE = {resource: kind for kind, resource in RESOURCE_OF_KIND.items()}


@dataclass(frozen=True)
class ApiResource:
    """Where the Kubernetes API serves a resource (shared by the API client and the simulated server)."""

    resource: str
    group: str  # "" for the core group
    version: str
    kind: str
    namespaced: bool

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        """`/api/v1` or `/apis/networking.k8s.io/v1`."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def qualified(self) -> str:
        """`networkpolicies.networking.k8s.io`, or `pods` for the core group (as RBAC messages name them)."""
        return f"{self.resource}.{self.group}" if self.group else self.resource


API_RESOURCES = {
    r.resource: r
    for r in (
        ApiResource(NAMESPACES, "", "v1", "Namespace", False),
        ApiResource(NODES, "", "v1", "Node", False),
        ApiResource(PODS, "", "v1", "Pod", True),
        ApiResource(SERVICES, "", "v1", "Service", True),
        ApiResource(ENDPOINTSLICES, "discovery.k8s.io", "v1", "EndpointSlice", True),
        ApiResource(NETWORKPOLICIES, "networking.k8s.io", "v1", "NetworkPolicy", True),
        ApiResource(CILIUM_NETWORKPOLICIES, "cilium.io", "v2", "CiliumNetworkPolicy", True),
        ApiResource(CILIUM_CLUSTERWIDE_NETWORKPOLICIES, "cilium.io", "v2", "CiliumClusterwideNetworkPolicy", False),
    )
}
CILIUM_RESOURCES = (CILIUM_NETWORKPOLICIES, CILIUM_CLUSTERWIDE_NETWORKPOLICIES)


@dataclass(frozen=True)
class ServicePort:
    """One port of a Service, with the pod port it reaches (from the EndpointSlices when known)."""

    name: str
    port: int
    protocol: str
    target_port: int | str


class Cluster:
    """Read-only index over one snapshot of Kubernetes objects."""

    def __init__(self, objects: Mapping[str, Iterable[Mapping]] | None = None) -> None:
        self.objects: dict[str, list[Mapping]] = {r: list((objects or {}).get(r) or ()) for r in RESOURCES}
        self._namespace_labels = {
            ns["metadata"]["name"]: dict(ns["metadata"].get("labels") or {}) for ns in self.objects[NAMESPACES]
        }
        self.pods = [pod_endpoint(p, self.namespace_labels(_namespace(p))) for p in self.objects[PODS]]
        self._pods_by_ip = {p.ip: p for p in self.pods if p.ip and not p.host_network}
        self._pods_by_name = {(p.namespace, p.name): p for p in self.pods}

    @classmethod
    def from_items(cls, items: Iterable[Mapping]) -> Cluster:
        """From objects of any kinds (a manifest directory); unknown kinds are ignored."""
        grouped: dict[str, list[Mapping]] = {}
        for item in items:
            resource = RESOURCE_OF_KIND.get(item.get("kind", ""))
            if resource:
                grouped.setdefault(resource, []).append(item)
        return cls(grouped)

    def replace(self, resource: str, items: Iterable[Mapping]) -> Cluster:
        """A copy with one resource's objects replaced (used to evaluate a proposed change)."""
        return Cluster({**self.objects, resource: list(items)})

    @property
    def networkpolicies(self) -> list[Mapping]:
        return self.objects[NETWORKPOLICIES]

    @property
    def cilium_policies(self) -> list[Mapping]:
        return self.objects[CILIUM_NETWORKPOLICIES] + self.objects[CILIUM_CLUSTERWIDE_NETWORKPOLICIES]

    def knows_namespace(self, namespace: str) -> bool:
        return namespace in self._namespace_labels

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """The namespace's labels; `kubernetes.io/metadata.name` is always present, as on a real cluster."""
        labels = dict(self._namespace_labels.get(namespace) or {})
        labels.setdefault(NAMESPACE_NAME_LABEL, namespace)
        return labels

    def pod(self, namespace: str, name: str) -> Endpoint | None:
        return self._pods_by_name.get((namespace, name))

    def pod_by_ip(self, ip: str) -> Endpoint | None:
        return self._pods_by_ip.get(ip)

    def find_pods(self, namespace: str, name: str) -> list[Endpoint]:
        """Pods named exactly `name`, else the pods of workload (or app label) `name`."""
        exact = self.pod(namespace, name)
        if exact:
            return [exact]
        return [p for p in self.pods if p.namespace == namespace and name in (p.workload, p.labels.get("app"))]

    def services(self) -> list[Mapping]:
        return self.objects[SERVICES]

    def service(self, namespace: str, name: str) -> Mapping | None:
        for service in self.objects[SERVICES]:
            if _namespace(service) == namespace and service["metadata"]["name"] == name:
                return service
        return None

    def services_selecting(self, endpoint: Endpoint) -> list[Mapping]:
        """Services in the endpoint's namespace whose selector matches its labels."""
        found = []
        for service in self.objects[SERVICES]:
            selector = (service.get("spec") or {}).get("selector")
            if selector and _namespace(service) == endpoint.namespace:
                if all(endpoint.labels.get(k) == v for k, v in selector.items()):
                    found.append(service)
        return found

    def service_ports(self, service: Mapping) -> list[ServicePort]:
        """The Service's ports with numeric target ports from its EndpointSlices when they exist."""
        namespace, name = _namespace(service), service["metadata"]["name"]
        resolved: dict[tuple[str, str], int] = {}
        for endpoint_slice in self.objects[ENDPOINTSLICES]:
            labels = endpoint_slice["metadata"].get("labels") or {}
            if _namespace(endpoint_slice) == namespace and labels.get("kubernetes.io/service-name") == name:
                for port in endpoint_slice.get("ports") or ():
                    if port.get("port") is not None:
                        resolved[(port.get("name") or "", port.get("protocol", "TCP"))] = int(port["port"])
        ports = []
        for port in (service.get("spec") or {}).get("ports") or ():
            protocol = port.get("protocol", "TCP")
            target = port.get("targetPort", port.get("port"))
            target = resolved.get((port.get("name") or "", protocol), target)
            ports.append(ServicePort(port.get("name") or "", int(port["port"]), protocol, target))
        return ports


def _namespace(obj: Mapping) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def object_name(obj: Mapping) -> str:
    """`ns/name` for namespaced objects, `name` for cluster-scoped ones."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata.get('name', '')}" if namespace else metadata.get("name", "")
