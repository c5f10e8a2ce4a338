"""networking.k8s.io/v1 NetworkPolicy: which pods a policy isolates and how each rule fares.

Semantics as in the Kubernetes documentation: per-direction isolation with policyTypes
defaulting, rules as the union of (peers AND ports), peers OR-ed, podSelector AND
namespaceSelector within one peer, ports defaulting to TCP, named ports resolved
against the destination pod.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from kcockpit.policy import selectors
from kcockpit.policy.cluster import Cluster
from kcockpit.policy.endpoints import NAMESPACE_NAME_LABEL, POD, WORLD, Endpoint, ip_in_block
from kcockpit.policy.results import (
    EGRESS,
    INGRESS,
    MATCH,
    PEER_MISMATCH,
    PORT_MISMATCH,
    PROTOCOL_MISMATCH,
    UNKNOWN,
    Connection,
    Options,
    PolicyOutcome,
    PolicyRef,
    RuleOutcome,
)

KIND = "NetworkPolicy"
L4_PROTOCOLS = ("TCP", "UDP", "SCTP")


def policy_types(policy: Mapping) -> list[str]:
    """spec.policyTypes, defaulted as the API server does when the object is written."""
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def ref(policy: Mapping) -> PolicyRef:
    metadata = policy.get("metadata") or {}
    return PolicyRef(KIND, metadata.get("namespace") or "default", metadata.get("name", ""))


def selects(policy: Mapping, endpoint: Endpoint) -> bool:
    """Whether the policy's podSelector picks this pod (policies are namespace-local)."""
    if endpoint.kind != POD:
        return False
    return ref(policy).namespace == endpoint.namespace and selectors.matches(
        (policy.get("spec") or {}).get("podSelector"), endpoint.labels
    )


def outcome(
    policy: Mapping, direction: str, endpoint: Endpoint, conn: Connection, cluster: Cluster, options: Options
) -> PolicyOutcome | None:
    """The policy's effect on `endpoint` for `direction`; None when it does not select the pod."""
    if not selects(policy, endpoint):
        return None
    spec = policy.get("spec") or {}
    policy_ref = ref(policy)
    types = policy_types(policy)
    warnings = ()
    if spec.get(direction) and direction.capitalize() not in types:
        kind = direction.capitalize()
        warnings = (f"{policy_ref} has {direction} rules but policyTypes {types} lacks {kind}: they are ignored",)
    if direction.capitalize() not in types:
        return PolicyOutcome(policy_ref, isolates=False, warnings=warnings)
    peer = conn.destination if direction == EGRESS else conn.source
    rules = spec.get(direction) or []
    outcomes = tuple(
        _rule_outcome(policy_ref, direction, i, rule or {}, peer, conn, cluster, options) for i, rule in enumerate(rules)
    )
    return PolicyOutcome(policy_ref, isolates=True, allows=outcomes, warnings=warnings)


def _rule_outcome(
    policy_ref: PolicyRef,
    direction: str,
    index: int,
    rule: Mapping,
    peer: Endpoint,
    conn: Connection,
    cluster: Cluster,
    options: Options,
) -> RuleOutcome:
    peers = rule.get("to" if direction == EGRESS else "from") or []
    ports = rule.get("ports") or []
    text = describe_rule(rule, direction, policy_ref.namespace)
    peer_result, peer_index, peer_detail = _match_peers(peers, policy_ref.namespace, peer, cluster, options)
    if peer_result == PEER_MISMATCH:
        return RuleOutcome(policy_ref, direction, index, PEER_MISMATCH, text, peer_detail)
    port_result, port_index, port_detail = match_ports(ports, conn)
    if port_result in (PORT_MISMATCH, PROTOCOL_MISMATCH):
        return RuleOutcome(policy_ref, direction, index, port_result, text, port_detail, peer_index)
    if UNKNOWN in (peer_result, port_result):
        detail = "; ".join(d for d in (peer_detail, port_detail) if d)
        return RuleOutcome(policy_ref, direction, index, UNKNOWN, text, detail, peer_index, port_index)
    return RuleOutcome(policy_ref, direction, index, MATCH, text, port_detail, peer_index, port_index)


def first_match(results) -> tuple[str, int | None, str] | None:
    """Over (index, result, detail) triples: the first match, else the first undecidable one, else None."""
    unknown = None
    for index, result, detail in results:
        if result == MATCH:
            return MATCH, index, ""
        if result == UNKNOWN and unknown is None:
            unknown = (UNKNOWN, None, detail)
    return unknown


def _match_peers(peers: list, namespace: str, peer: Endpoint, cluster: Cluster, options: Options):
    """(result, index of the matching peer, detail). No peers at all matches everyone.

    The detail of a mismatch names the selector that failed, per peer when there are several.
    """
    if not peers:
        return MATCH, None, ""
    results = [(i, *_match_peer(item or {}, namespace, peer, cluster, options)) for i, item in enumerate(peers)]
    found = first_match(results)
    if found:
        return found
    if len(results) == 1:
        return PEER_MISMATCH, None, results[0][2]
    return PEER_MISMATCH, None, "; ".join(f"peer {i + 1}: {detail}" for i, _, detail in results)


def _match_peer(item: Mapping, namespace: str, peer: Endpoint, cluster: Cluster, options: Options):
    block = item.get("ipBlock")
    if block:
        return _match_ip_block(block, peer, options)
    if peer.kind != POD:
        return PEER_MISMATCH, f"selectors select pods only, and {peer.display()} is not a pod"
    pod_selector = item.get("podSelector")
    namespace_selector = item.get("namespaceSelector")
    try:
        if namespace_selector is None:
            if peer.namespace != namespace:
                described = selectors.describe(pod_selector)
                return PEER_MISMATCH, f"podSelector {described} (pods of namespace {namespace}) does not match {peer.display()}"
        else:
            labels, complete = namespace_labels(peer, cluster)
            if not selectors.matches(namespace_selector, labels):
                if not complete:
                    return UNKNOWN, f"the labels of namespace {peer.namespace} are unknown"
                described = selectors.describe(namespace_selector, "{}")
                return PEER_MISMATCH, f"namespaceSelector {described} does not match namespace {peer.namespace}"
        if not selectors.matches(pod_selector, peer.labels):
            return PEER_MISMATCH, f"podSelector {selectors.describe(pod_selector)} does not match {peer.display()}"
        return MATCH, ""
    except selectors.SelectorError as error:
        return UNKNOWN, str(error)


def _match_ip_block(block: Mapping, peer: Endpoint, options: Options):
    cidr = block.get("cidr", "?")
    if peer.kind != WORLD and not options.ipblock_matches_pods:
        return PEER_MISMATCH, "on Cilium an ipBlock never selects cluster endpoints: use a podSelector, or --calico for Calico's behaviour"
    if not peer.ip:
        return UNKNOWN, f"the IP of {peer.display()} is unknown"
    try:
        inside = ip_in_block(peer.ip, cidr)
        excluded = [e for e in block.get("except") or () if ip_in_block(peer.ip, e)]
    except ValueError as error:
        return UNKNOWN, f"invalid ipBlock: {error}"
    if inside:
        if not excluded:
            return MATCH, ""
        return PEER_MISMATCH, f"ipBlock {cidr} does not match {peer.ip}: it is in except {excluded[0]}"
    return PEER_MISMATCH, f"ipBlock {cidr} does not match {peer.ip}"


def namespace_labels(endpoint: Endpoint, cluster: Cluster) -> tuple[dict[str, str], bool]:
    """(labels, complete): the cluster's Namespace object, else what the flow carried, else the name label only."""
    if cluster.knows_namespace(endpoint.namespace):
        return cluster.namespace_labels(endpoint.namespace), True
    if endpoint.namespace_labels is not None:
        labels = dict(endpoint.namespace_labels)
        labels.setdefault(NAMESPACE_NAME_LABEL, endpoint.namespace)
        return labels, True
    return {NAMESPACE_NAME_LABEL: endpoint.namespace}, False


def match_ports(ports: list, conn: Connection):
    """(result, index of the matching entry, detail). No ports at all matches every port."""
    if not ports:
        if conn.protocol not in L4_PROTOCOLS:
            return MATCH, None, f"{conn.protocol} is not defined by NetworkPolicy; allowed here because the rule has no ports"
        return MATCH, None, ""
    if conn.protocol not in L4_PROTOCOLS:
        return PROTOCOL_MISMATCH, None, f"{conn.protocol} never matches NetworkPolicy ports, which are TCP, UDP or SCTP"
    same_protocol = [(i, e or {}) for i, e in enumerate(ports) if (e or {}).get("protocol", "TCP") == conn.protocol]
    found = first_match((i, *_match_port(entry, conn)) for i, entry in same_protocol)
    if found:
        return found
    wanted = ", ".join(describe_port(e or {}) for e in ports)
    if not same_protocol:
        return PROTOCOL_MISMATCH, None, f"ports {wanted} do not include {conn.protocol}"
    return PORT_MISMATCH, None, f"ports {wanted} do not include {conn.port_text()}"


def _match_port(entry: Mapping, conn: Connection):
    port = entry.get("port")
    if port is None:
        return MATCH, ""
    if isinstance(port, str) and not (port.isascii() and port.isdigit()):  # isdigit alone takes "²"
        return resolve_named_port(port, entry.get("protocol", "TCP"), conn)
    low = int(port)
    high = int(entry.get("endPort") or low)
    return (MATCH if low <= conn.port <= high else PORT_MISMATCH), ""


def resolve_named_port(name: str, protocol: str, conn: Connection):
    """Named ports mean the destination pod's container port of that name and protocol."""
    destination = conn.destination
    if destination.kind != POD:
        return PORT_MISMATCH, f"named port {name} cannot match {destination.display()}, which is not a pod"
    if destination.ports is None:
        return UNKNOWN, f"named port {name}: the container ports of {destination.display()} are unknown"
    for named in destination.ports:
        if named.name == name and named.protocol == protocol:
            return (MATCH if named.port == conn.port else PORT_MISMATCH), ""
    return PORT_MISMATCH, f"{destination.display()} has no {protocol} container port named {name}"


def describe_peer(item: Mapping, namespace: str) -> str:
    block = item.get("ipBlock")
    if block:
        excepts = block.get("except") or ()
        return block.get("cidr", "?") + (f" except {', '.join(excepts)}" if excepts else "")
    pods = item.get("podSelector")
    namespaces = item.get("namespaceSelector")
    if namespaces is None:
        return selectors.describe(pods, f"all pods in {namespace}")
    match_labels = (namespaces or {}).get("matchLabels") or {}
    if set(match_labels) == {NAMESPACE_NAME_LABEL} and not namespaces.get("matchExpressions"):
        where = f"namespace {match_labels[NAMESPACE_NAME_LABEL]}"
    else:
        where = "namespaces " + selectors.describe(namespaces, "(all)")
    if not pods:
        return f"all pods in {where}"
    return f"{selectors.describe(pods)} in {where}"


def describe_port(entry: Mapping) -> str:
    protocol = entry.get("protocol", "TCP")
    port = entry.get("port")
    if port is None:
        return f"all {protocol} ports"
    if entry.get("endPort"):
        return f"{protocol} {port}-{entry['endPort']}"
    return f"{protocol} {port}"


def describe_rule(rule: Mapping, direction: str, namespace: str) -> str:
    peers = rule.get("to" if direction == EGRESS else "from") or []
    ports = rule.get("ports") or []
    who = " or ".join(describe_peer(p or {}, namespace) for p in peers) if peers else "everyone"
    return f"{who} on {', '.join(describe_port(p or {}) for p in ports)}" if ports else who



def validate(policy: Mapping) -> list[str]:
    """What the API server would reject in a NetworkPolicy read from a file; [] when valid."""
    spec = policy.get("spec")
    if not isinstance(spec, Mapping):
        return ["spec: missing or not a mapping"]
    problems = selectors.validate(spec.get("podSelector"), "spec.podSelector")
    for type_ in spec.get("policyTypes") or ():
        if type_ not in ("Ingress", "Egress"):
            problems.append(f"spec.policyTypes: {type_!r} is not Ingress or Egress")
    for direction, peer_key in ((INGRESS, "from"), (EGRESS, "to")):
        rules = spec.get(direction) or []
        if not isinstance(rules, list):
            problems.append(f"spec.{direction}: must be a list of rules")
            continue
        for i, rule in enumerate(rules):
            where = f"spec.{direction}[{i}]"
            if not isinstance(rule or {}, Mapping):
                problems.append(f"{where}: a rule must be a mapping")
                continue
            for j, peer in enumerate((rule or {}).get(peer_key) or ()):
                if isinstance(peer or {}, Mapping):
                    problems += _validate_peer(peer or {}, f"{where}.{peer_key}[{j}]")
                else:
                    problems.append(f"{where}.{peer_key}[{j}]: a peer must be a mapping (podSelector, namespaceSelector or ipBlock)")
            for j, port in enumerate((rule or {}).get("ports") or ()):
                if isinstance(port or {}, Mapping):
                    problems += _validate_port(port or {}, f"{where}.ports[{j}]")
                else:
                    problems.append(f"{where}.ports[{j}]: a port must be a mapping (protocol, port, endPort)")
    return problems


def _validate_peer(peer: Mapping, where: str) -> list[str]:
    if "ipBlock" in peer:
        if "podSelector" in peer or "namespaceSelector" in peer:
            return [f"{where}: ipBlock cannot be combined with podSelector or namespaceSelector"]
        block = peer["ipBlock"] or {}
        try:
            network = ipaddress.ip_network(block.get("cidr", ""), strict=False)
            for excluded in block.get("except") or ():
                if not ipaddress.ip_network(excluded, strict=False).subnet_of(network):
                    return [f"{where}.ipBlock.except: {excluded} is not inside {block['cidr']}"]
        except (ValueError, TypeError) as error:
            return [f"{where}.ipBlock: {error}"]
        return []
    return selectors.validate(peer.get("podSelector"), f"{where}.podSelector") + selectors.validate(
        peer.get("namespaceSelector"), f"{where}.namespaceSelector"
    )


def _validate_port(port: Mapping, where: str) -> list[str]:
    problems = []
    if port.get("protocol", "TCP") not in L4_PROTOCOLS:
        problems.append(f"{where}.protocol: {port['protocol']!r} is not TCP, UDP or SCTP")
    if port.get("endPort") is not None and not isinstance(port.get("port"), int):
        problems.append(f"{where}.endPort: needs a numeric port")
    return problems
