"""Least-privilege policies for one workload, from the traffic it was seen to have.

Forwarded flows to and from the workload are grouped by peer (its workload selector,
namespace, entity or IP) with the ports used; each peer becomes one rule. DNS egress to
kube-dns on UDP and TCP is always added on purpose: a capture rarely shows every lookup,
and DNS over TCP only appears on truncated answers. The result is checked with the
engine: every observed connection must be allowed by the generated policy alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from kcockpit.model.record import VERDICT_FORWARDED, FlowRecord
from kcockpit.policy import builders, flows
from kcockpit.policy.cluster import CILIUM_NETWORKPOLICIES, NETWORKPOLICIES, POLICY_RESOURCES, Cluster
from kcockpit.policy.endpoints import HOST, POD, Endpoint
from kcockpit.policy.engine import Engine
from kcockpit.policy.results import ALLOWED, EGRESS, INGRESS, Connection

L4 = ("TCP", "UDP", "SCTP")


class AdviceError(ValueError):
    """No policy can be advised (no such workload in the flows)."""


@dataclass
class Advice:
    workload: str  # ns/name
    networkpolicy: dict
    cilium_policy: dict
    rules: list[str]  # one line per generated rule, for people
    connections: int  # distinct observed connections the advice covers
    failures: list[str] = field(default_factory=list)  # observed connections the policy would not allow
    notes: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.failures

    def yaml(self) -> str:
        header = [f"# Least-privilege policy for {self.workload}, from {self.connections} observed connections."]
        header += [f"# {line}" for line in self.rules + self.notes]
        return "\n".join(header) + "\n" + builders.to_yaml(self.networkpolicy) + "---\n" + builders.to_yaml(self.cilium_policy)

    def to_dict(self) -> dict:
        return {
            "workload": self.workload,
            "networkpolicy": self.networkpolicy,
            "ciliumnetworkpolicy": self.cilium_policy,
            "rules": self.rules,
            "connections": self.connections,
            "verified": self.verified,
            "failures": self.failures,
            "notes": self.notes,
        }


def is_workload(endpoint: Endpoint, namespace: str, name: str) -> bool:
    return endpoint.kind == POD and endpoint.namespace == namespace and (
        name in (endpoint.workload, endpoint.name, endpoint.labels.get("app"), endpoint.labels.get("app.kubernetes.io/name"))
    )


def advise(records: Iterable[FlowRecord], namespace: str, name: str, cluster: Cluster) -> Advice:
    connections: dict[tuple, tuple[str, Connection]] = {}
    subject: Endpoint | None = None
    for record in records:
        if record.verdict != VERDICT_FORWARDED or record.protocol not in L4:
            continue
        conn = flows.connection(record, cluster)
        for direction, mine, peer in ((EGRESS, conn.source, conn.destination), (INGRESS, conn.destination, conn.source)):
            if is_workload(mine, namespace, name) and not is_workload(peer, namespace, name):
                subject = subject or mine
                key = (direction, peer.key, mine.key, conn.port, conn.protocol)
                connections.setdefault(key, (direction, conn))
    if subject is None:
        raise AdviceError(f"no forwarded flow to or from {namespace}/{name} in the input: check --workload NS/NAME")
    selector = builders.pod_selector_labels(cluster, subject)
    if not selector:
        raise AdviceError(
            f"{namespace}/{name} has no stable labels (only ones like job-name or pod-template-hash that change with "
            "every run), so a policy for it would select every pod of the namespace: give its pod template a label such as app"
        )
    grouped: dict[tuple[str, str], tuple[Endpoint, set[tuple[int, str]]]] = {}
    for direction, conn in connections.values():
        peer = conn.destination if direction == EGRESS else conn.source
        if peer.kind not in (POD, HOST) and not peer.ip:
            continue  # an endpoint without IP or labels cannot be named in a rule
        peer_item = builders.np_peer(cluster, peer, namespace) if peer.kind != HOST else {"host": True}
        key = (direction, json.dumps(peer_item, sort_keys=True))
        grouped.setdefault(key, (peer, set()))[1].add((conn.port, conn.protocol))
    advice = _build(cluster, namespace, subject, selector, grouped)
    advice.connections = len(connections)
    _verify(cluster, advice, [c for _, c in connections.values()], subject)
    return advice


def _build(cluster: Cluster, namespace: str, subject: Endpoint, selector: dict, grouped) -> Advice:
    np_rules: dict[str, list] = {INGRESS: [], EGRESS: []}
    cnp_rules: dict[str, list] = {INGRESS: [], EGRESS: [builders.cnp_dns_rule(cluster)]}
    lines: list[str] = []
    notes: list[str] = []
    dns_selector, dns_ports = builders.dns_peer(cluster)
    for (direction, _), (peer, ports) in sorted(grouped.items(), key=lambda item: item[0]):
        ordered = sorted(ports, key=lambda p: (p[1], p[0]))
        if peer.kind == POD and peer.namespace == "kube-system" and all(peer.labels.get(k) == v for k, v in dns_selector.items()):
            if set(ordered) <= set(dns_ports):
                continue  # covered by the deliberate DNS rule below
        port_text = ", ".join(f"{proto} {port}" for port, proto in ordered)
        lines.append(f"{direction} {'to' if direction == EGRESS else 'from'} {peer.display(prefer_service=True)} on {port_text}")
        cnp_rule = builders.cnp_peer(cluster, peer, namespace, direction)
        cnp_rule["toPorts"] = builders.cnp_to_ports(ordered)
        cnp_rules[direction].append(cnp_rule)
        if peer.kind == HOST:
            notes.append("traffic with the pod's own node needs no NetworkPolicy rule; the CiliumNetworkPolicy lists entity host")
            continue
        key = "to" if direction == EGRESS else "from"
        np_rules[direction].append({key: [builders.np_peer(cluster, peer, namespace)], "ports": builders.np_ports(ordered)})
    np_rules[EGRESS].append(builders.np_dns_rule(cluster))
    dns_text = ", ".join(f"{proto} {port}" for port, proto in dns_ports)
    lines.append(f"egress to kube-system/kube-dns on {dns_text} (added deliberately: name resolution)")
    if not np_rules[INGRESS]:
        notes.append("no incoming traffic was seen: the policy denies all ingress")
    name = builders.dns_safe_name(subject.workload, "least-privilege")
    networkpolicy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": np_rules[INGRESS],
            "egress": np_rules[EGRESS],
        },
    }
    cnp_spec: dict = {"endpointSelector": {"matchLabels": {f"k8s:{k}": v for k, v in selector.items()}}}
    cnp_spec["ingress"] = cnp_rules[INGRESS] or [{}]  # `[{}]` keeps ingress default-deny in Cilium
    cnp_spec["egress"] = cnp_rules[EGRESS]
    cilium_policy = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": cnp_spec}
    workload = f"{namespace}/{subject.workload}"
    return Advice(workload, networkpolicy, cilium_policy, lines, 0, notes=notes)


def _verify(cluster: Cluster, advice: Advice, connections: list[Connection], subject: Endpoint) -> None:
    """Every observed connection must be allowed, at the workload's side, by each generated policy alone."""
    bare = Cluster({**cluster.objects, **{r: [] for r in POLICY_RESOURCES}})
    for resource, policy in ((NETWORKPOLICIES, advice.networkpolicy), (CILIUM_NETWORKPOLICIES, advice.cilium_policy)):
        engine = Engine(bare.replace(resource, [policy]))
        for conn in connections:
            direction = EGRESS if is_workload(conn.source, subject.namespace, subject.workload) else INGRESS
            side = engine.side(direction, conn)
            if side.verdict != ALLOWED:
                advice.failures.append(
                    f"{policy['kind']}: {conn.source.display()} -> {conn.destination.display()} on {conn.port_text()} "
                    f"would be {side.verdict}"
                )
