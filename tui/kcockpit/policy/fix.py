"""Minimal changes that would allow a denied connection, each checked with the engine.

For every side that denies, three ready-to-apply alternatives: add one rule to the
deciding policy (with the JSON patch that does it), a new NetworkPolicy for just this
workload, or a CiliumNetworkPolicy. Each proposal carries its blast radius (everything
that becomes reachable, computed by evaluating before and after) and is verified: the
connection is allowed afterwards and nothing outside the intended peers and ports opens.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

from kcockpit.policy import builders, cilium, networkpolicy
from kcockpit.policy.cluster import CILIUM_NETWORKPOLICIES, NETWORKPOLICIES, Cluster
from kcockpit.policy.endpoints import POD, Endpoint
from kcockpit.policy.engine import Engine
from kcockpit.policy.results import ALLOWED, DENIED, EGRESS, Connection, Evaluation, Options, SideResult

PATCH = "patch"
NEW_NETWORKPOLICY = "new-networkpolicy"
NEW_CILIUM_POLICY = "new-ciliumnetworkpolicy"
DENY_RULE = "deny-rule"
NOT_EXPRESSIBLE = "not-expressible"


@dataclass(frozen=True)
class Opening:
    """One (source, destination, port) that a change makes reachable."""

    source: str
    destination: str
    port: str

    def __str__(self) -> str:
        return f"{self.source} -> {self.destination} on {self.port}"


@dataclass
class FixProposal:
    side: str  # egress or ingress
    kind: str  # PATCH, NEW_NETWORKPOLICY, NEW_CILIUM_POLICY, DENY_RULE, NOT_EXPRESSIBLE
    title: str
    resource: str = ""  # networkpolicies / ciliumnetworkpolicies; "" when there is nothing to apply
    policy: dict | None = None  # the object to apply
    json_patch: list | None = None  # for PATCH: what `kubectl patch --type=json` would send
    opens: list[Opening] = field(default_factory=list)  # the blast radius
    unrelated: list[Opening] = field(default_factory=list)  # openings outside the intended peers/ports
    closes: list[Opening] = field(default_factory=list)  # allowed before, denied after (pods it newly isolates)
    allows_flow: bool = False

    @property
    def verified(self) -> bool:
        return self.allows_flow and not self.unrelated and not self.closes

    def yaml(self) -> str:
        return builders.to_yaml(self.policy) if self.policy else ""

    def to_dict(self) -> dict:
        return {
            "side": self.side,
            "kind": self.kind,
            "title": self.title,
            "policy": self.policy,
            "json_patch": self.json_patch,
            "opens": [str(o) for o in self.opens],
            "unrelated": [str(o) for o in self.unrelated],
            "closes": [str(o) for o in self.closes],
            "verified": self.verified,
        }


def propose(cluster: Cluster, evaluation: Evaluation, options: Options | None = None) -> list[FixProposal]:
    """Every proposal for every side of `evaluation` that denies; [] when nothing denies."""
    proposals: list[FixProposal] = []
    for side in evaluation.sides:
        if side.verdict != DENIED:
            continue
        if side.denied_by:
            rule = side.denied_by[0]
            proposals.append(
                FixProposal(
                    side.direction,
                    DENY_RULE,
                    f"{rule.policy} {rule.section} rule {rule.index + 1} denies {rule.rule_text}: a deny rule wins over "
                    "every allow, so narrow or remove it (no allow rule can help)",
                )
            )
            continue
        proposals += _allow_proposals(cluster, evaluation.connection, side, options or Options())
    return proposals


def _allow_proposals(cluster: Cluster, conn: Connection, side: SideResult, options: Options) -> list[FixProposal]:
    endpoint = side.endpoint
    peer = conn.destination if side.direction == EGRESS else conn.source
    ports = builders.target_ports(cluster, conn.destination, conn.port, conn.protocol)
    np_rule = _np_rule(cluster, side, peer, ports)
    cnp_rules = _cnp_rules(cluster, side, peer, ports)
    intended = _intended(cluster, peer, ports, conn)
    if any("toFQDNs" in rule for rule in cnp_rules):
        intended = _with_dns(cluster, intended)
    proposals = []
    deciding = _deciding_policy(cluster, side)
    if deciding is not None:
        resource, original = deciding
        added = ([np_rule] if np_rule else []) if resource == NETWORKPOLICIES else cnp_rules
        if added:
            proposals.append(_patch(side, resource, original, added))
    name = builders.dns_safe_name(endpoint.workload, side.direction, "allow", _short(peer))
    selector = builders.pod_selector_labels(cluster, endpoint)
    if not selector:  # an empty podSelector would isolate every pod of the namespace
        title = f"no new policy: {endpoint.display()} has no stable labels to select it by (only ones that change with every run)"
        proposals.append(FixProposal(side.direction, NOT_EXPRESSIBLE, title))
        np_rule, cnp_rules = None, []
    elif np_rule:
        spec = {"podSelector": {"matchLabels": selector}, "policyTypes": [side.direction.capitalize()], side.direction: [np_rule]}
        policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": endpoint.namespace}, "spec": spec}
        proposals.append(FixProposal(side.direction, NEW_NETWORKPOLICY, f"new NetworkPolicy {endpoint.namespace}/{name}", NETWORKPOLICIES, policy))
    else:
        proposals.append(
            FixProposal(
                side.direction,
                NOT_EXPRESSIBLE,
                f"a NetworkPolicy cannot name {peer.display()} without its IP address (ipBlock needs a CIDR)"
                + ("; the CiliumNetworkPolicy names it with toFQDNs" if cnp_rules else ""),
            )
        )
    if cnp_rules:
        spec = {"endpointSelector": {"matchLabels": {f"k8s:{k}": v for k, v in selector.items()}}, side.direction: cnp_rules}
        policy = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": endpoint.namespace}, "spec": spec}
        proposals.append(FixProposal(side.direction, NEW_CILIUM_POLICY, f"new CiliumNetworkPolicy {endpoint.namespace}/{name}", CILIUM_NETWORKPOLICIES, policy))
    for proposal in proposals:
        if proposal.policy is not None:
            _verify(cluster, conn, side, proposal, intended, options)
    return proposals


def _np_rule(cluster: Cluster, side: SideResult, peer: Endpoint, ports) -> dict | None:
    item = builders.np_peer(cluster, peer, side.endpoint.namespace)
    if item is None:
        return None
    rule: dict = {"to" if side.direction == EGRESS else "from": [item]}
    if ports:
        rule["ports"] = builders.np_ports(ports)
    return rule


def _cnp_rules(cluster: Cluster, side: SideResult, peer: Endpoint, ports) -> list[dict]:
    rule = builders.cnp_peer(cluster, peer, side.endpoint.namespace, side.direction)
    if rule is None:
        return []
    if ports:
        rule["toPorts"] = builders.cnp_to_ports(ports)
    if "toFQDNs" in rule:
        # toFQDNs only works when Cilium's DNS proxy sees the lookups: allow DNS through it too.
        return [builders.cnp_dns_rule(cluster), rule]
    return [rule]


def _patch(side: SideResult, resource: str, original: Mapping, added: list[dict]) -> FixProposal:
    patched = copy.deepcopy(builders.object_for_apply(original))
    rules = patched["spec"].setdefault(side.direction, [])
    rules.extend(added)
    what = "; ".join(_describe(resource, rule, side.direction, side.endpoint) for rule in added)
    return FixProposal(
        side.direction,
        PATCH,
        f"add {side.direction} {_numbers(len(rules) - len(added) + 1, len(rules))} to {_name(original)}: {what}",
        resource,
        patched,
        [{"op": "add", "path": f"/spec/{side.direction}/-", "value": rule} for rule in added],
    )


def _deciding_policy(cluster: Cluster, side: SideResult) -> tuple[str, Mapping] | None:
    """The isolating policy to extend: the first NetworkPolicy, else the first Cilium policy."""
    for policy_ref in side.isolating:
        resource = NETWORKPOLICIES if policy_ref.kind == networkpolicy.KIND else CILIUM_NETWORKPOLICIES
        if policy_ref.kind == cilium.CCNP:
            continue  # cluster-wide policies belong to the platform team; propose a namespaced one
        for obj in cluster.objects[resource]:
            metadata = obj.get("metadata") or {}
            if metadata.get("name") == policy_ref.name and (metadata.get("namespace") or "default") == policy_ref.namespace:
                return resource, obj
    return None


def _numbers(first: int, last: int) -> str:
    return f"rule {first}" if first == last else f"rules {first}-{last}"


def _name(obj: Mapping) -> str:
    metadata = obj.get("metadata") or {}
    return f"{metadata.get('namespace', 'default')}/{metadata.get('name', '')}"


def _describe(resource: str, rule: Mapping, direction: str, endpoint: Endpoint) -> str:
    if resource == NETWORKPOLICIES:
        return networkpolicy.describe_rule(rule, direction, endpoint.namespace)
    return cilium.describe_rule(rule, direction)


def _short(peer: Endpoint) -> str:
    if peer.kind == POD:
        return (peer.service.partition("/")[2] if peer.service else "") or peer.workload or peer.name
    return peer.dns_names[0].split(".")[0] if peer.dns_names else peer.kind


def _intended(cluster: Cluster, peer: Endpoint, ports, conn: Connection):
    """The peers and ports a proposal is meant to open: the peer's workload (same selector) on those ports."""
    allowed_ports = {(p, proto) for p, proto in ports} or {(conn.port, conn.protocol)}
    selector = builders.pod_selector_labels(cluster, peer) if peer.kind == POD else {}
    if selector:
        peers = {p.key for p in cluster.pods if p.namespace == peer.namespace and all(p.labels.get(k) == v for k, v in selector.items())}
        peers.add(peer.key)
    else:
        peers = {peer.key}
    return peers, allowed_ports


def _with_dns(cluster: Cluster, intended):
    peers, ports = intended
    selector, dns_ports = builders.dns_peer(cluster)
    dns_pods = {p.key for p in cluster.pods if p.namespace == "kube-system" and all(p.labels.get(k) == v for k, v in selector.items())}
    return peers | dns_pods, ports | set(dns_ports)


def _verify(cluster: Cluster, conn: Connection, side: SideResult, proposal: FixProposal, intended, options: Options) -> None:
    """Apply the proposal to a copy of the cluster, re-evaluate the connection, diff reachability."""
    changed = _apply(cluster, proposal)
    before, after = Engine(cluster, options), Engine(changed, options)
    proposal.allows_flow = after.side(side.direction, conn).verdict == ALLOWED
    intended_peers, intended_ports = intended
    for candidate in _candidates(changed, conn, side, proposal):
        was_allowed = before.side(side.direction, candidate).verdict == ALLOWED
        is_allowed = after.side(side.direction, candidate).verdict == ALLOWED
        opening = Opening(candidate.source.display(), candidate.destination.display(), candidate.port_text())
        if was_allowed and not is_allowed and opening not in proposal.closes:
            proposal.closes.append(opening)  # a new policy isolated a pod the deciding one left alone
        if was_allowed or not is_allowed:
            continue
        peer = candidate.destination if side.direction == EGRESS else candidate.source
        if opening not in proposal.opens:
            proposal.opens.append(opening)
        if peer.key not in intended_peers or (candidate.port, candidate.protocol) not in intended_ports:
            if opening not in proposal.unrelated:
                proposal.unrelated.append(opening)


def _apply(cluster: Cluster, proposal: FixProposal) -> Cluster:
    items = [o for o in cluster.objects[proposal.resource] if _name(o) != _name(proposal.policy)]
    return cluster.replace(proposal.resource, items + [proposal.policy])


def _candidates(cluster: Cluster, conn: Connection, side: SideResult, proposal: FixProposal):
    """Connections the change could open: the pods its policy selects against every pod's own ports and the flow's peer."""
    endpoint = side.endpoint
    peer = conn.destination if side.direction == EGRESS else conn.source
    policy = proposal.policy or {}
    if proposal.resource == NETWORKPOLICIES:
        affected = [p for p in cluster.pods if networkpolicy.selects(policy, p)]
    else:
        affected = [p for p in cluster.pods if any(cilium.selects(policy, spec, p, cluster) for _, spec in cilium.specs(policy))]
    if endpoint.key not in {p.key for p in affected}:
        affected.append(endpoint)
    others = [p for p in cluster.pods if not p.host_network]
    if peer.key not in {p.key for p in others}:
        others.append(peer)
    flow_port = (conn.port, conn.protocol)
    for mine in affected:
        for other in others:
            source, destination = (mine, other) if side.direction == EGRESS else (other, mine)
            ports = {(p.port, p.protocol) for p in destination.ports or ()}
            ports.add(flow_port)
            for port, protocol in sorted(ports):
                yield Connection(source, destination, port, protocol)
