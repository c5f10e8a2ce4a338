"""Name an endpoint the way a person does (`ns/pod`, `ns/workload`, `ns/service`, an IP) and
get the Endpoint and destination port the engine needs (a Service port becomes its target port)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace

from kcockpit.policy.cluster import NODES, Cluster
from kcockpit.policy.endpoints import REMOTE_NODE, Endpoint, world_endpoint

PROTOCOLS = ("TCP", "UDP", "SCTP")
_DNS_NAME = re.compile(r"(?:[a-zA-Z0-9](?:[-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}\.?")


class TargetError(ValueError):
    """The name does not denote anything in the cluster data; the message says what exists."""


def parse_port(text: str) -> tuple[int, str]:
    """`53/udp` -> (53, "UDP"); the protocol defaults to TCP as in NetworkPolicy."""
    number, _, protocol = text.partition("/")
    protocol = (protocol or "TCP").upper()
    if protocol not in PROTOCOLS:
        raise TargetError(f"port {text!r}: protocol must be tcp, udp or sctp")
    if not (number.isascii() and number.isdigit()) or not 0 < int(number) < 65536:  # isdigit alone takes "²"
        raise TargetError(f"port {text!r}: expected PORT[/PROTOCOL] with PORT between 1 and 65535, e.g. 53/udp")
    return int(number), protocol


def resolve(cluster: Cluster, text: str, port: int = 0, protocol: str = "TCP") -> tuple[Endpoint, int]:
    """(endpoint, destination port) for `ns/name` (pod, workload or Service) or an IP address."""
    try:
        ip = str(ipaddress.ip_address(text))
    except ValueError:
        ip = ""
    if ip:
        return cluster.pod_by_ip(ip) or _node_by_ip(cluster, ip) or world_endpoint(ip), port
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        network = None
    if network is not None:  # 10.0.0.0/8 would otherwise read as namespace 10.0.0.0, pod 8
        example = next(iter(network.hosts()), network.network_address)
        raise TargetError(f"{text!r} is a CIDR: a connection has one address, give one IP (e.g. {example})")
    namespace, slash, name = text.partition("/")
    if not slash and _DNS_NAME.fullmatch(text) and "." in text:
        return world_endpoint("", (text.rstrip(".").lower(),)), port  # outside the cluster, known by name only
    if not slash or not namespace or not name:
        raise TargetError(f"{text!r}: expected NAMESPACE/NAME (a pod, workload or Service), an IP address or a DNS name")
    pods = cluster.find_pods(namespace, name)
    if pods:
        return pods[0], port
    service = cluster.service(namespace, name)
    if service:
        return _through_service(cluster, service, port, protocol)
    known = sorted({p.workload for p in cluster.pods if p.namespace == namespace})
    hint = f"workloads in {namespace}: {', '.join(known)}" if known else f"the data has no pods in namespace {namespace}"
    raise TargetError(f"{text}: no such pod, workload or Service ({hint})")


def _node_by_ip(cluster: Cluster, ip: str) -> Endpoint | None:
    """A Node's address: Cilium gives it the node's identity (remote-node, or host on that node), never world."""
    for node in cluster.objects[NODES]:
        addresses = ((node.get("status") or {}).get("addresses")) or ()
        if any(a.get("address") == ip and a.get("type") in ("InternalIP", "ExternalIP") for a in addresses):
            name = (node.get("metadata") or {}).get("name", "")
            return Endpoint(kind=REMOTE_NODE, name=name, ip=ip, node=name)
    return None


def _through_service(cluster: Cluster, service, port: int, protocol: str) -> tuple[Endpoint, int]:
    namespace, name = service["metadata"].get("namespace", "default"), service["metadata"]["name"]
    selector = (service.get("spec") or {}).get("selector") or {}
    backends = [p for p in cluster.pods if p.namespace == namespace and selector and all(p.labels.get(k) == v for k, v in selector.items())]
    if not backends:
        raise TargetError(f"{namespace}/{name}: the Service selects no pod in the data, so there is no destination to evaluate")
    backend = replace(backends[0], service=f"{namespace}/{name}")
    for service_port in cluster.service_ports(service):
        if service_port.port == port and service_port.protocol == protocol:
            target = service_port.target_port
            if isinstance(target, str):
                named = [n.port for n in backend.ports or () if n.name == target and n.protocol == protocol]
                if not named:
                    raise TargetError(f"{namespace}/{name}: target port {target!r} is not a container port of {backend.display()}")
                target = named[0]
            return backend, int(target)
    return backend, port
