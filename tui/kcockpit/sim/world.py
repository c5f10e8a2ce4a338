"""The simulated Kubernetes world: one model from which flows, API objects and metrics derive.

A kind cluster (`kind-kind`, Cilium as the CNI) with 4 nodes running the OpenTelemetry
demo shop in `otel-demo`, CoreDNS/Hubble Relay/Cilium in `kube-system`, Prometheus and
Grafana in `monitoring`, and a debug pod in `default`. Everything random (pod name
suffixes, pod placement and IPs, Service IPs, security identity numbers, uids) comes from
the seed, so `World.build(seed)` gives the same world every time.

API (plain data, no rendering):

- `World.build(seed, created_s=...) -> World`; `created_s` is the cluster's creation time
  (Unix seconds) used for creationTimestamps.
- `world.nodes` (list[Node]), `world.namespaces()` (list[Namespace]), `world.pods`,
  `world.services`, `world.world_endpoints` (external DNS names and IPs).
- Lookups: `world.pod(ns, name)`, `world.pod_by_ip(ip)`, `world.pods_of(ns, workload)`,
  `world.pods_matching(ns, selector_dict)`, `world.service(ns, name)`,
  `world.services_for(pod)`, `world.service_pods(svc)`, `world.identity(number)`,
  `world.node(name)`, `world.apiserver()` (the kube-apiserver static pod).
- `world.k8s_objects(phase) -> dict[str, list[dict]]` keyed by "namespaces", "nodes",
  "pods", "services", "endpointslices", "networkpolicies": the JSON a real API server
  returns (items without the List wrapper), NetworkPolicies with `policyTypes` defaulted.
- `world.network_policies(phase)` (list[dict]) and `PHASES` = ("healthy", "broken", "fixed", "dns-overload").
  `healthy`: no policy on frontend. `broken`: `otel-demo/frontend-egress-allow-to-backend`
  isolates frontend (app=frontend) for egress and allows only pods labelled app=backend, so
  its DNS to kube-dns is denied. `fixed`: the same policy plus one egress peer
  {namespaceSelector kubernetes.io/metadata.name=kube-system AND podSelector
  k8s-app=kube-dns} on UDP 53 and TCP 53. Every phase also has the baseline policies of
  `monitoring` (default-deny ingress plus two allows), which the traffic respects.

Cilium security identities: one number per unique identity label set (pod labels without
pod-template-hash and friends, plus namespace, service account and cluster labels), and the
reserved ones (1 host, 2 world, 6 remote-node, 7 kube-apiserver).
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

CLUSTER_NAME = "kind-kind"
CLUSTER_DOMAIN = "cluster.local"
PHASES = ("healthy", "broken", "fixed", "dns-overload")

RESERVED_HOST = 1
RESERVED_WORLD = 2
RESERVED_REMOTE_NODE = 6
RESERVED_KUBE_APISERVER = 7
RESERVED_LABELS = {
    RESERVED_HOST: ("reserved:host",),
    RESERVED_WORLD: ("reserved:world",),
    RESERVED_REMOTE_NODE: ("reserved:remote-node",),
    RESERVED_KUBE_APISERVER: ("reserved:kube-apiserver",),
}

KAFKA_AUDIT_POLICY = "kafka-ingress-from-accounting"  # audit mode (the Policies tab's AUDIT rows)
PROMETHEUS_L7_POLICY = "prometheus-api-read-only"  # a CiliumNetworkPolicy with an L7 rule
FRONTEND_POLICY = "frontend-egress-allow-to-backend"
# The Cilium release the simulated cluster runs: the one whose Hubble API protos/ describes.
CILIUM_VERSION = "1.19.4"
DEFAULT_CREATED_S = 1_767_000_000  # 2025-12-29T09:20:00Z, when the simulated cluster was made

# Labels Cilium leaves out of security identities (they change per rollout or per pod).
_NON_IDENTITY_LABELS = ("pod-template-hash", "controller-revision-hash", "pod-template-generation")
# Kubernetes' SafeEncodeString alphabet: what pod-template-hash and name suffixes use.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    ip: str
    pod_cidr: str
    control_plane: bool
    uid: str

    @property
    def hubble_name(self) -> str:
        """The node name as Hubble Relay reports it: cluster/node."""
        return f"{CLUSTER_NAME}/{self.name}"


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: dict[str, str]
    uid: str


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class Container:
    name: str
    image: str
    ports: tuple[ContainerPort, ...] = ()


@dataclass(slots=True)
class Pod:
    namespace: str
    name: str
    uid: str
    node: str
    ip: str
    labels: dict[str, str]
    workload: str
    workload_kind: str  # Deployment, DaemonSet, StatefulSet, or "" for a bare pod
    owner_kind: str  # ReplicaSet, DaemonSet, StatefulSet, Node (static pod) or ""
    owner_name: str
    owner_uid: str
    service_account: str
    containers: tuple[Container, ...]
    host_network: bool = False
    annotations: dict[str, str] = field(default_factory=dict)
    identity: int = 0
    identity_labels: tuple[str, ...] = ()

    def port(self, name_or_number: str | int, protocol: str = "TCP") -> int | None:
        """Resolve a (named) container port, as a Service targetPort or policy port is."""
        for container in self.containers:
            for p in container.ports:
                if p.protocol == protocol and (p.name == name_or_number or p.port == name_or_number):
                    return p.port
        return name_or_number if isinstance(name_or_number, int) else None


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    target_port: int | str
    protocol: str = "TCP"


@dataclass(slots=True)
class Service:
    namespace: str
    name: str
    uid: str
    cluster_ip: str
    selector: dict[str, str]
    ports: tuple[ServicePort, ...]
    endpoint_slice_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def dns_name(self) -> str:
        return f"{self.name}.{self.namespace}.svc.{CLUSTER_DOMAIN}."


@dataclass(frozen=True, slots=True)
class Identity:
    number: int
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WorldEndpoint:
    """An external destination: its DNS name (no trailing dot), addresses and port."""

    name: str
    ips: tuple[str, ...]
    ipv6: tuple[str, ...]
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class _WorkloadSpec:
    namespace: str
    name: str
    kind: str  # Deployment, DaemonSet, StatefulSet, Static, Pod
    replicas: int
    labels: dict[str, str]
    containers: tuple[Container, ...]
    service_account: str = "default"
    host_network: bool = False
    control_plane_only: bool = False
    may_run_on_control_plane: bool = False
    annotations: dict[str, str] = field(default_factory=dict)


def _port(name: str, port: int, protocol: str = "TCP") -> ContainerPort:
    return ContainerPort(name, port, protocol)


_OTEL_IMAGE = "ghcr.io/open-telemetry/demo:1.4.0-{}"
# Services the frontend calls directly: the talk's policy allows frontend to reach app=backend.
FRONTEND_BACKENDS = (
    "adservice",
    "cartservice",
    "checkoutservice",
    "currencyservice",
    "productcatalogservice",
    "recommendationservice",
    "shippingservice",
)
# name -> (container ports, replicas)
_OTEL_WORKLOADS: dict[str, tuple[tuple[ContainerPort, ...], int]] = {
    "loadgenerator": ((_port("http", 8089),), 1),
    "frontend": ((_port("http", 8080),), 2),
    "adservice": ((_port("grpc", 8080),), 1),
    "cartservice": ((_port("grpc", 8080),), 2),
    "checkoutservice": ((_port("grpc", 8080),), 1),
    "currencyservice": ((_port("grpc", 8080),), 1),
    "productcatalogservice": ((_port("grpc", 8080),), 2),
    "recommendationservice": ((_port("grpc", 8080),), 1),
    "shippingservice": ((_port("grpc", 8080),), 1),
    "paymentservice": ((_port("grpc", 8080),), 1),
    "emailservice": ((_port("http", 8080),), 1),
    "quoteservice": ((_port("http", 8080),), 1),
    "featureflagservice": ((_port("grpc", 50053), _port("http", 8081)), 1),
    "ffspostgres": ((_port("postgres", 5432),), 1),
    "redis": ((_port("redis", 6379),), 1),
    "kafka": ((_port("plaintext", 9092), _port("controller", 9093)), 1),
    "accountingservice": ((), 1),
    "frauddetectionservice": ((), 1),
}
# Workloads that get a Service (ClusterIP) in otel-demo: everything that listens.
_DNS_VISIBILITY = "<Egress/53/UDP/DNS>,<Ingress/8080/TCP/HTTP>,<Ingress/50053/TCP/HTTP>"


def _otel_specs() -> list[_WorkloadSpec]:
    specs = []
    for name, (ports, replicas) in _OTEL_WORKLOADS.items():
        app = "frontend" if name == "frontend" else "backend" if name in FRONTEND_BACKENDS else name
        labels = {
            "app": app,
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/component": name,
            "app.kubernetes.io/part-of": "opentelemetry-demo",
        }
        specs.append(
            _WorkloadSpec(
                "otel-demo",
                name,
                "Deployment",
                replicas,
                labels,
                (Container(name, _OTEL_IMAGE.format(name), ports),),
                service_account="otel-demo",
                annotations={"policy.cilium.io/proxy-visibility": _DNS_VISIBILITY},
            )
        )
    return specs


def _system_specs() -> list[_WorkloadSpec]:
    return [
        _WorkloadSpec(
            "kube-system",
            "coredns",
            "Deployment",
            2,
            {"k8s-app": "kube-dns"},
            (
                Container(
                    "coredns",
                    "registry.k8s.io/coredns/coredns:v1.11.3",
                    (_port("dns", 53, "UDP"), _port("dns-tcp", 53), _port("metrics", 9153)),
                ),
            ),
            service_account="coredns",
            may_run_on_control_plane=True,
        ),
        _WorkloadSpec(
            "kube-system",
            "hubble-relay",
            "Deployment",
            1,
            {"k8s-app": "hubble-relay", "app.kubernetes.io/name": "hubble-relay", "app.kubernetes.io/part-of": "cilium"},
            (Container("hubble-relay", f"quay.io/cilium/hubble-relay:v{CILIUM_VERSION}", (_port("grpc", 4245),)),),
            service_account="hubble-relay",
        ),
        _WorkloadSpec(
            "kube-system",
            "cilium",
            "DaemonSet",
            0,
            {"k8s-app": "cilium", "app.kubernetes.io/name": "cilium-agent", "app.kubernetes.io/part-of": "cilium"},
            (
                Container(
                    "cilium-agent",
                    f"quay.io/cilium/cilium:v{CILIUM_VERSION}",
                    (_port("peer-service", 4244), _port("prometheus", 9962), _port("hubble-metrics", 9965)),
                ),
            ),
            service_account="cilium",
            host_network=True,
        ),
        _WorkloadSpec(
            "kube-system",
            "kube-apiserver",
            "Static",
            1,
            {"component": "kube-apiserver", "tier": "control-plane"},
            (Container("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.31.2", (_port("probe-port", 6443),)),),
            host_network=True,
            control_plane_only=True,
        ),
    ]


def _monitoring_specs() -> list[_WorkloadSpec]:
    return [
        _WorkloadSpec(
            "monitoring",
            "prometheus-server",
            "Deployment",
            1,
            {"app": "prometheus", "app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"},
            (Container("prometheus-server", "quay.io/prometheus/prometheus:v2.55.1", (_port("web", 9090),)),),
            service_account="prometheus-server",
        ),
        _WorkloadSpec(
            "monitoring",
            "kube-state-metrics",
            "Deployment",
            1,
            {"app.kubernetes.io/name": "kube-state-metrics"},
            (
                Container(
                    "kube-state-metrics",
                    "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0",
                    (_port("http", 8080),),
                ),
            ),
            service_account="kube-state-metrics",
        ),
        _WorkloadSpec(
            "monitoring",
            "grafana",
            "Deployment",
            1,
            {"app.kubernetes.io/name": "grafana"},
            (Container("grafana", "docker.io/grafana/grafana:11.3.0", (_port("grafana", 3000),)),),
            service_account="grafana",
        ),
    ]


def _default_specs() -> list[_WorkloadSpec]:
    return [
        _WorkloadSpec(
            "default",
            "netshoot",
            "Pod",
            1,
            {"run": "netshoot"},
            (Container("netshoot", "docker.io/nicolaka/netshoot:v0.13"),),
        )
    ]


# (namespace, service name, workload whose pods it selects, [(port name, port, targetPort, protocol)])
_SERVICE_SPECS: list[tuple[str, str, str, list[tuple[str, int, int | str, str]]]] = [
    ("kube-system", "kube-dns", "coredns", [("dns", 53, 53, "UDP"), ("dns-tcp", 53, 53, "TCP"), ("metrics", 9153, 9153, "TCP")]),
    ("kube-system", "hubble-relay", "hubble-relay", [("grpc", 80, "grpc", "TCP")]),
    ("kube-system", "hubble-peer", "cilium", [("peer-service", 443, 4244, "TCP")]),
    ("monitoring", "prometheus-server", "prometheus-server", [("http", 80, "web", "TCP")]),
    ("monitoring", "kube-state-metrics", "kube-state-metrics", [("http", 8080, "http", "TCP")]),
    ("monitoring", "grafana", "grafana", [("service", 80, "grafana", "TCP")]),
]
for _name, (_ports, _replicas) in _OTEL_WORKLOADS.items():
    if _ports and _name != "loadgenerator":
        _SERVICE_SPECS.append(
            ("otel-demo", _name, _name, [(p.name, p.port, p.name, p.protocol) for p in _ports])
        )
_SERVICE_SPECS.append(("otel-demo", "loadgenerator", "loadgenerator", [("http", 8089, "http", "TCP")]))

_NAMESPACE_LABELS = {
    "default": {},
    "kube-system": {},
    "otel-demo": {"app.kubernetes.io/part-of": "opentelemetry-demo"},
    "monitoring": {"purpose": "observability"},
}

# External destinations reached by name (via DNS) from the shop.
_WORLD_ENDPOINTS = (
    WorldEndpoint("api.stripe.com", ("52.213.141.46", "54.72.8.181"), ("2a05:d018:76c:b685::1",), 443),
    WorldEndpoint("email-smtp.eu-west-1.amazonaws.com", ("52.49.246.75",), (), 587),
    WorldEndpoint("www.ecb.europa.eu", ("23.48.107.173",), (), 443),
)


def _digest(*parts: str) -> str:
    """A stable sha256 hex digest standing in for image and container IDs."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class World:
    """The whole simulated cluster. Build with `World.build(seed)`; treat as read-only."""

    def __init__(self, seed: int, created_s: int) -> None:
        self.seed = seed
        self.created_s = created_s
        self.cluster_name = CLUSTER_NAME
        self.nodes: list[Node] = []
        self._namespaces: list[Namespace] = []
        self.pods: list[Pod] = []
        self.services: list[Service] = []
        self.identities: dict[int, Identity] = {n: Identity(n, labels) for n, labels in RESERVED_LABELS.items()}
        self.world_endpoints: tuple[WorldEndpoint, ...] = _WORLD_ENDPOINTS
        self._pod_by_ip: dict[str, Pod] = {}
        self._lookups: dict[tuple, list] = {}  # memoized lookups: the world never changes once built
        self._rng = random.Random(seed)
        self._resource_version = 1000 + self._rng.randrange(9000)

    # ---- building -------------------------------------------------------------------

    @classmethod
    def build(cls, seed: int = 1, created_s: int = DEFAULT_CREATED_S) -> World:
        world = cls(seed, created_s)
        world._build_nodes()
        world._build_namespaces()
        for spec in _system_specs() + _monitoring_specs() + _otel_specs() + _default_specs():
            world._build_workload(spec)
        world._assign_identities()
        world._build_services()
        world._rng = None  # building is over: nothing random may happen later
        return world

    def _uid(self) -> str:
        return str(uuidlib.UUID(int=self._rng.getrandbits(128), version=4))

    def _suffix(self, length: int) -> str:
        return "".join(self._rng.choice(_NAME_ALPHABET) for _ in range(length))

    def _next_resource_version(self) -> str:
        self._resource_version += 1 + self._rng.randrange(40)
        return str(self._resource_version)

    def _build_nodes(self) -> None:
        names = ("kind-control-plane", "kind-worker", "kind-worker2", "kind-worker3")
        for index, name in enumerate(names):
            self.nodes.append(
                Node(name, f"172.18.0.{index + 2}", f"10.244.{index}.0/24", index == 0, self._uid())
            )
        # Pod IPs are handed out from each node's PodCIDR in a seeded order.
        self._free_ips = {
            node.name: [str(ip) for ip in self._rng.sample(list(ipaddress.ip_network(node.pod_cidr).hosts())[9:], 120)]
            for node in self.nodes
        }

    def _build_namespaces(self) -> None:
        for name in ("default", "kube-system", "monitoring", "otel-demo"):
            labels = {"kubernetes.io/metadata.name": name, **_NAMESPACE_LABELS[name]}
            self._namespaces.append(Namespace(name, labels, self._uid()))

    def _build_workload(self, spec: _WorkloadSpec) -> None:
        workers = [n for n in self.nodes if not n.control_plane]
        if spec.kind == "DaemonSet":
            placements = list(self.nodes)
        elif spec.control_plane_only:
            placements = [self.nodes[0]]
        else:
            # Replicas spread over distinct nodes, as the default topology spreading does.
            candidates = self.nodes if spec.may_run_on_control_plane else workers
            placements = self._rng.sample(candidates, min(spec.replicas, len(candidates)))
        owner_uid = self._uid()
        template_hash = self._suffix(10 if self._rng.random() < 0.5 else 9)
        for node in placements:
            labels = dict(spec.labels)
            if spec.kind == "Deployment":
                labels["pod-template-hash"] = template_hash
                owner_kind, owner_name = "ReplicaSet", f"{spec.name}-{template_hash}"
                name = f"{owner_name}-{self._suffix(5)}"
            elif spec.kind == "DaemonSet":
                labels["controller-revision-hash"] = template_hash
                labels["pod-template-generation"] = "1"
                owner_kind, owner_name = "DaemonSet", spec.name
                name = f"{spec.name}-{self._suffix(5)}"
            elif spec.kind == "Static":
                owner_kind, owner_name, owner_uid = "Node", node.name, node.uid
                name = f"{spec.name}-{node.name}"
            else:
                owner_kind = owner_name = owner_uid = ""
                name = spec.name
            ip = node.ip if spec.host_network else self._free_ips[node.name].pop()
            pod = Pod(
                namespace=spec.namespace,
                name=name,
                uid=self._uid(),
                node=node.name,
                ip=ip,
                labels=labels,
                workload=spec.name if spec.kind != "Static" else "",
                workload_kind=spec.kind if spec.kind in ("Deployment", "DaemonSet", "StatefulSet") else "",
                owner_kind=owner_kind,
                owner_name=owner_name,
                owner_uid=owner_uid,
                service_account=spec.service_account,
                containers=spec.containers,
                host_network=spec.host_network,
                annotations=dict(spec.annotations),
            )
            self.pods.append(pod)
            if not spec.host_network:
                self._pod_by_ip[ip] = pod

    def _assign_identities(self) -> None:
        numbers: dict[tuple[str, ...], int] = {}
        taken: set[int] = set()
        for pod in self.pods:
            if pod.host_network:
                # Host-network pods are the node itself for Cilium.
                pod.identity, pod.identity_labels = RESERVED_HOST, RESERVED_LABELS[RESERVED_HOST]
                continue
            labels = self._identity_labels(pod)
            if labels not in numbers:
                number = self._rng.randrange(1000, 65000)
                while number in taken:
                    number = self._rng.randrange(1000, 65000)
                taken.add(number)
                numbers[labels] = number
                self.identities[number] = Identity(number, labels)
            pod.identity, pod.identity_labels = numbers[labels], labels

    def _identity_labels(self, pod: Pod) -> tuple[str, ...]:
        ns = self.namespace(pod.namespace)
        labels = [f"k8s:{k}={v}" for k, v in pod.labels.items() if k not in _NON_IDENTITY_LABELS]
        labels += [f"k8s:io.cilium.k8s.namespace.labels.{k}={v}" for k, v in ns.labels.items()]
        labels += [
            f"k8s:io.cilium.k8s.policy.cluster={CLUSTER_NAME}",
            f"k8s:io.cilium.k8s.policy.serviceaccount={pod.service_account}",
            f"k8s:io.kubernetes.pod.namespace={pod.namespace}",
        ]
        return tuple(sorted(labels))

    def _build_services(self) -> None:
        used_ips = {"10.96.0.1", "10.96.0.10"}
        kubernetes = Service(
            "default",
            "kubernetes",
            self._uid(),
            "10.96.0.1",
            {},
            (ServicePort("https", 443, 6443),),
            endpoint_slice_name="kubernetes",
            labels={"component": "apiserver", "provider": "kubernetes"},
        )
        self.services.append(kubernetes)
        for namespace, name, workload, ports in _SERVICE_SPECS:
            pods = self.pods_of(namespace, workload)
            selector = {k: v for k, v in pods[0].labels.items() if k in ("app.kubernetes.io/name", "k8s-app", "app")}
            if name == "kube-dns":
                cluster_ip = "10.96.0.10"
            else:
                cluster_ip = str(_SERVICE_CIDR[self._rng.randrange(2, 65000)])
                while cluster_ip in used_ips:
                    cluster_ip = str(_SERVICE_CIDR[self._rng.randrange(2, 65000)])
            used_ips.add(cluster_ip)
            labels = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"} if name == "kube-dns" else {}
            self.services.append(
                Service(
                    namespace,
                    name,
                    self._uid(),
                    cluster_ip,
                    selector,
                    tuple(ServicePort(*p) for p in ports),
                    endpoint_slice_name=f"{name}-{self._suffix(5)}",
                    labels=labels,
                )
            )

    # ---- lookups --------------------------------------------------------------------

    def namespaces(self) -> list[Namespace]:
        return list(self._namespaces)

    def namespace(self, name: str) -> Namespace:
        for ns in self._namespaces:
            if ns.name == name:
                return ns
        raise KeyError(f"no namespace {name!r} in the simulated cluster")

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in the simulated cluster")

    def pod(self, namespace: str, name: str) -> Pod:
        for pod in self.pods:
            if pod.namespace == namespace and pod.name == name:
                return pod
        raise KeyError(f"no pod {namespace}/{name} in the simulated cluster")

    def pod_by_ip(self, ip: str) -> Pod | None:
        """The pod owning a pod-network IP (host-network pods share their node's IP: None)."""
        return self._pod_by_ip.get(ip)

    def pods_of(self, namespace: str, workload: str) -> list[Pod]:
        key = ("pods_of", namespace, workload)
        if key not in self._lookups:
            self._lookups[key] = [p for p in self.pods if p.namespace == namespace and p.workload == workload]
        return self._lookups[key]

    def pods_matching(self, namespace: str | None, selector: dict[str, str]) -> list[Pod]:
        """Pods whose labels contain every key=value of selector (namespace None: any)."""
        return [
            p
            for p in self.pods
            if (namespace is None or p.namespace == namespace)
            and all(p.labels.get(k) == v for k, v in selector.items())
        ]

    def service(self, namespace: str, name: str) -> Service:
        key = ("service", namespace, name)
        if key in self._lookups:
            return self._lookups[key][0]
        for svc in self.services:
            if svc.namespace == namespace and svc.name == name:
                self._lookups[key] = [svc]
                return svc
        raise KeyError(f"no service {namespace}/{name} in the simulated cluster")

    def service_pods(self, svc: Service) -> list[Pod]:
        key = ("service_pods", svc.namespace, svc.name)
        if key not in self._lookups:
            self._lookups[key] = self.pods_matching(svc.namespace, svc.selector) if svc.selector else []
        return self._lookups[key]

    def services_for(self, pod: Pod) -> list[Service]:
        return [
            s
            for s in self.services
            if s.selector and s.namespace == pod.namespace and all(pod.labels.get(k) == v for k, v in s.selector.items())
        ]

    def identity(self, number: int) -> Identity:
        return self.identities[number]

    def apiserver(self) -> Pod:
        return next(p for p in self.pods if p.labels.get("component") == "kube-apiserver")

    # ---- Kubernetes JSON ------------------------------------------------------------

    def k8s_objects(self, phase: str) -> dict[str, list[dict]]:
        """Every object the simulated API server serves in `phase`, as API JSON items."""
        return {
            "namespaces": [self._namespace_json(ns) for ns in self._namespaces],
            "nodes": [self._node_json(n) for n in self.nodes],
            "pods": [self._pod_json(p) for p in self.pods],
            "services": [self._service_json(s) for s in self.services],
            "endpointslices": [self._endpoint_slice_json(s) for s in self.services],
            "networkpolicies": self.network_policies(phase),
            "ciliumnetworkpolicies": self.cilium_policies(phase),
        }

    def _metadata(self, name: str, uid: str, namespace: str | None = None, **extra) -> dict:
        # resourceVersion is derived from the uid so the JSON is the same on every call.
        meta: dict = {"name": name}
        if namespace is not None:
            meta["namespace"] = namespace
        meta["uid"] = uid
        meta["resourceVersion"] = str(1000 + int(uid.replace("-", "")[:6], 16) % 90000)
        meta["creationTimestamp"] = _iso(self.created_s + 60 + int(uid[:2], 16))
        meta.update({k: v for k, v in extra.items() if v})
        return meta

    def _namespace_json(self, ns: Namespace) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": self._metadata(ns.name, ns.uid, labels=dict(ns.labels)),
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    def _node_json(self, node: Node) -> dict:
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": node.name,
            "kubernetes.io/os": "linux",
        }
        spec: dict = {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr], "providerID": f"kind://docker/kind/{node.name}"}
        if node.control_plane:
            labels["node-role.kubernetes.io/control-plane"] = ""
            spec["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
        ready_since = _iso(self.created_s + 30)
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": self._metadata(node.name, node.uid, labels=labels),
            "spec": spec,
            "status": {
                "addresses": [{"address": node.ip, "type": "InternalIP"}, {"address": node.name, "type": "Hostname"}],
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                        "lastHeartbeatTime": ready_since,
                        "lastTransitionTime": ready_since,
                    }
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": str(uuidlib.uuid5(uuidlib.UUID(node.uid), "boot")),
                    "machineID": _digest(node.uid, "machine")[:32],
                    "systemUUID": str(uuidlib.uuid5(uuidlib.UUID(node.uid), "system")),
                    "containerRuntimeVersion": "containerd://1.7.18",
                    "kernelVersion": "6.8.0-45-generic",
                    "kubeProxyVersion": "",
                    "kubeletVersion": "v1.31.2",
                    "operatingSystem": "linux",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                },
            },
        }

    def _pod_json(self, pod: Pod) -> dict:
        owners = []
        if pod.owner_kind:
            owners.append(
                {
                    "apiVersion": "v1" if pod.owner_kind == "Node" else "apps/v1",
                    "kind": pod.owner_kind,
                    "name": pod.owner_name,
                    "uid": pod.owner_uid,
                    "controller": True,
                    **({"blockOwnerDeletion": True} if pod.owner_kind != "Node" else {}),
                }
            )
        node = self.node(pod.node)
        containers = [
            {
                "name": c.name,
                "image": c.image,
                **(
                    {"ports": [{"name": p.name, "containerPort": p.port, "protocol": p.protocol} for p in c.ports]}
                    if c.ports
                    else {}
                ),
            }
            for c in pod.containers
        ]
        spec: dict = {
            "containers": containers,
            "nodeName": pod.node,
            "serviceAccountName": pod.service_account,
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirstWithHostNet" if pod.host_network else "ClusterFirst",
        }
        if pod.host_network:
            spec["hostNetwork"] = True
        started = _iso(self.created_s + 90 + int(pod.uid[:2], 16))
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": self._metadata(
                pod.name,
                pod.uid,
                pod.namespace,
                generateName=f"{pod.owner_name}-" if pod.owner_kind in ("ReplicaSet", "DaemonSet") else "",
                labels=dict(pod.labels),
                annotations=dict(pod.annotations),
                ownerReferences=owners,
            ),
            "spec": spec,
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": started}],
                "hostIP": node.ip,
                "hostIPs": [{"ip": node.ip}],
                "podIP": pod.ip,
                "podIPs": [{"ip": pod.ip}],
                "startTime": started,
                "containerStatuses": [
                    {
                        "name": c.name,
                        "image": c.image,
                        "imageID": f"{c.image.rsplit(':', 1)[0]}@sha256:{_digest(c.image)}",
                        "containerID": f"containerd://{_digest(pod.uid, c.name)}",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": started}},
                    }
                    for c in pod.containers
                ],
            },
        }

    def _service_json(self, svc: Service) -> dict:
        ports = []
        for p in svc.ports:
            entry: dict = {"name": p.name, "port": p.port, "protocol": p.protocol, "targetPort": p.target_port}
            ports.append(entry)
        spec: dict = {
            "type": "ClusterIP",
            "clusterIP": svc.cluster_ip,
            "clusterIPs": [svc.cluster_ip],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Local" if svc.name == "hubble-peer" else "Cluster",
            "ports": ports,
            "sessionAffinity": "None",
        }
        if svc.selector:
            spec["selector"] = dict(svc.selector)
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self._metadata(svc.name, svc.uid, svc.namespace, labels=dict(svc.labels)),
            "spec": spec,
            "status": {"loadBalancer": {}},
        }

    def _endpoint_slice_json(self, svc: Service) -> dict:
        if svc.selector:
            pods = self.service_pods(svc)
            endpoints = [
                {
                    "addresses": [p.ip],
                    "conditions": {"ready": True, "serving": True, "terminating": False},
                    "nodeName": p.node,
                    "targetRef": {"kind": "Pod", "name": p.name, "namespace": p.namespace, "uid": p.uid},
                }
                for p in pods
            ]
            ports = [
                {"name": sp.name, "port": pods[0].port(sp.target_port, sp.protocol), "protocol": sp.protocol}
                for sp in svc.ports
            ]
            labels = {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
            owners = [{"apiVersion": "v1", "kind": "Service", "name": svc.name, "uid": svc.uid, "blockOwnerDeletion": True, "controller": True}]
        else:  # the kubernetes Service: the API server publishes its own address
            apiserver = self.node(self.apiserver().node)
            endpoints = [{"addresses": [apiserver.ip], "conditions": {"ready": True, "serving": True, "terminating": False}}]
            ports = [{"name": "https", "port": 6443, "protocol": "TCP"}]
            labels, owners = {}, []
        uid = str(uuidlib.uuid5(uuidlib.UUID(svc.uid), "endpointslice"))
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": self._metadata(
                svc.endpoint_slice_name,
                uid,
                svc.namespace,
                generateName=f"{svc.name}-" if svc.selector else "",
                labels={**labels, "kubernetes.io/service-name": svc.name},
                ownerReferences=owners,
            ),
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        }

    # ---- NetworkPolicies ------------------------------------------------------------

    def network_policies(self, phase: str) -> list[dict]:
        """The NetworkPolicies in force during `phase`, as the API server returns them."""
        if phase not in PHASES:
            raise ValueError(f"unknown scenario phase {phase!r}: expected one of {', '.join(PHASES)}")
        policies = self._monitoring_policies() + [self._kafka_audit_policy()]
        if phase != "healthy":  # dns-overload keeps the fixed policy: CoreDNS is the problem
            policies.append(self._frontend_policy(fixed=phase != "broken"))
        return policies

    # ---- Policies tab: an audit-mode policy and an L7 rule (every phase) ------------------

    def _kafka_audit_policy(self) -> dict:
        """Only accountingservice may consume from kafka; kafka's endpoint runs in policy audit
        mode (PolicyAuditMode=Enabled), so the other clients' connections (checkout, fraud detection) are AUDIT
        verdicts ("would be dropped in enforce mode") and still go through."""
        spec = {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kafka"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "accountingservice"}}}],
                    "ports": [{"protocol": "TCP", "port": 9092}],
                }
            ],
        }
        policy = self._policy("otel-demo", KAFKA_AUDIT_POLICY, spec)
        policy["metadata"]["annotations"] = {"kcockpit.io/demo": "kafka's endpoint runs in policy audit mode: denials are AUDIT, not enforced"}
        return policy

    def cilium_policies(self, phase: str) -> list[dict]:
        """The CiliumNetworkPolicies (every phase): Grafana may only read Prometheus's HTTP API,
        an L7 rule that kcockpit's engine reports as not evaluated."""
        if phase not in PHASES:
            raise ValueError(f"unknown scenario phase {phase!r}: expected one of {', '.join(PHASES)}")
        uid = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"sim/{self.seed}/monitoring/{PROMETHEUS_L7_POLICY}"))
        meta = self._metadata(PROMETHEUS_L7_POLICY, uid, "monitoring")
        meta["generation"] = 1
        spec = {
            "endpointSelector": {"matchLabels": {"app": "prometheus"}},
            "ingress": [
                {
                    "fromEndpoints": [{"matchLabels": {"app.kubernetes.io/name": "grafana"}}],
                    "toPorts": [{"ports": [{"port": "9090", "protocol": "TCP"}], "rules": {"http": [{"method": "GET", "path": "/api/v1/.*"}]}}],
                }
            ],
        }
        return [{"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": meta, "spec": spec}]

    def _policy(self, namespace: str, name: str, spec: dict, generation: int = 1) -> dict:
        uid = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"sim/{self.seed}/{namespace}/{name}"))
        meta = self._metadata(name, uid, namespace)
        meta["generation"] = generation
        if generation > 1:
            meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 7 * generation)
        # The API server fills policyTypes: Ingress always, Egress when egress rules exist.
        types = ["Ingress"] if "ingress" in spec or "egress" not in spec else []
        if "egress" in spec:
            types.append("Egress")
        spec = {**spec, "policyTypes": spec.get("policyTypes", types)}
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": spec}

    def _frontend_policy(self, fixed: bool) -> dict:
        egress: list[dict] = [{"to": [{"podSelector": {"matchLabels": {"app": "backend"}}}]}]
        if fixed:
            dns = self.service("kube-system", "kube-dns")
            dns_pods = self.service_pods(dns)
            ports = [
                {"protocol": p.protocol, "port": dns_pods[0].port(p.target_port, p.protocol)}
                for p in dns.ports
                if p.name in ("dns", "dns-tcp")
            ]
            egress.append(
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": dict(dns.selector)},
                        }
                    ],
                    "ports": ports,
                }
            )
        spec = {"podSelector": {"matchLabels": {"app": "frontend"}}, "egress": egress, "policyTypes": ["Egress"]}
        return self._policy("otel-demo", FRONTEND_POLICY, spec, generation=2 if fixed else 1)

    def _monitoring_policies(self) -> list[dict]:
        deny = self._policy("monitoring", "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
        grafana = self._policy(
            "monitoring",
            "allow-grafana-to-prometheus",
            {
                "podSelector": {"matchLabels": {"app": "prometheus"}},
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}],
                        "ports": [{"protocol": "TCP", "port": "web"}],
                    }
                ],
            },
        )
        ksm = self._policy(
            "monitoring",
            "allow-prometheus-scrape",
            {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kube-state-metrics"}},
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"app": "prometheus"}}}],
                        "ports": [{"protocol": "TCP", "port": 8080}],
                    }
                ],
            },
        )
        return [deny, grafana, ksm]
