"""Evaluate a connection against the cluster's policies: both ends must allow.

The source's egress and the destination's ingress are decided independently from every
NetworkPolicy and Cilium policy that selects the pod on that side; Cilium deny rules win
over any allow; anything the engine cannot decide makes the answer "not evaluated".
"""

from __future__ import annotations

from dataclasses import replace

from kcockpit.policy import cilium, networkpolicy
from kcockpit.policy.cluster import Cluster
from kcockpit.policy.endpoints import HOST, POD, REMOTE_NODE, Endpoint
from kcockpit.policy.results import (
    ALLOWED,
    DENIED,
    EGRESS,
    INGRESS,
    MATCH,
    NOT_EVALUATED,
    UNKNOWN,
    Connection,
    Evaluation,
    Options,
    PolicyOutcome,
    SideResult,
    combine,
)


class Engine:
    """Stateless evaluator over one Cluster snapshot."""

    def __init__(self, cluster: Cluster, options: Options | None = None) -> None:
        self.cluster = cluster
        self.options = options or Options()

    def evaluate(self, conn: Connection) -> Evaluation:
        egress = self.side(EGRESS, conn)
        ingress = self.side(INGRESS, conn)
        return Evaluation(conn, combine([egress.verdict, ingress.verdict]), egress, ingress)

    def side(self, direction: str, conn: Connection) -> SideResult:
        endpoint, peer = (conn.source, conn.destination) if direction == EGRESS else (conn.destination, conn.source)
        special = self._without_rules(direction, endpoint, peer, conn)
        if special:
            return SideResult(direction, endpoint, ALLOWED, reason=special)
        if peer.kind == POD and peer.host_network:
            if not peer.node or not endpoint.node:
                reason = f"{peer.display()} uses the host network and its node is unknown: Cilium sees it as the node, allowed from the own node, a remote node otherwise"
                return SideResult(direction, endpoint, NOT_EVALUATED, reason=reason)
            conn = _as_remote_node(conn, peer)
        outcomes = self.outcomes(direction, endpoint, conn)
        isolating = tuple(o.policy for o in outcomes if o.isolates)
        rules = tuple(r for o in outcomes for r in o.allows)
        denies = tuple(r for o in outcomes for r in o.denies)
        results = {r.result for r in rules}
        deny_results = {r.result for r in denies}
        if MATCH in deny_results:
            verdict = DENIED
        elif UNKNOWN in deny_results:
            verdict = NOT_EVALUATED  # an undecidable deny rule could win over any allow
        elif not isolating or MATCH in results:
            verdict = ALLOWED
        elif UNKNOWN in results:
            verdict = NOT_EVALUATED
        else:
            verdict = DENIED
        warnings = tuple(w for o in outcomes for w in o.warnings)
        return SideResult(direction, endpoint, verdict, bool(isolating), isolating, rules, denies, warnings=warnings)

    def outcomes(self, direction: str, endpoint, conn: Connection) -> list[PolicyOutcome]:
        """Every policy that selects `endpoint`, with its rules evaluated for `direction`."""
        found = []
        for policy in self.cluster.networkpolicies:
            result = networkpolicy.outcome(policy, direction, endpoint, conn, self.cluster, self.options)
            if result:
                found.append(result)
        cilium_policies = self.cluster.cilium_policies
        if cilium_policies:
            dns_rule = any(cilium.has_dns_rule(p, conn.source, self.cluster) for p in cilium_policies)
            for policy in cilium_policies:
                result = cilium.outcome(policy, direction, endpoint, conn, self.cluster, dns_rule)
                if result:
                    found.append(result)
        return found

    @staticmethod
    def _without_rules(direction: str, endpoint, peer, conn: Connection) -> str:
        """Why this side is allowed whatever the policies say, or ""."""
        if endpoint.kind != POD:
            return f"{endpoint.display()} is not a pod: no policy applies at its {direction}"
        if endpoint.host_network:
            return f"{endpoint.display()} uses the host network: pod policies do not apply to it"
        if conn.source.key == conn.destination.key:
            return "a pod can always reach itself"
        if peer.kind == HOST and (not peer.node or not endpoint.node or peer.node == endpoint.node):
            return "traffic between a pod and its own node is always allowed"
        if peer.kind == REMOTE_NODE and peer.node and peer.node == endpoint.node:  # a node named by its IP
            return "traffic between a pod and its own node is always allowed"
        if peer.kind == POD and peer.host_network and peer.node and peer.node == endpoint.node:
            return f"{peer.display()} uses the host network of the pod's own node, which is always allowed"
        return ""


def _as_remote_node(conn: Connection, peer: Endpoint) -> Connection:
    """A host-network pod on another node carries that node's identity: pod selectors do not match it."""
    node = Endpoint(kind=REMOTE_NODE, name=peer.node, ip=peer.ip, node=peer.node)
    if conn.source.key == peer.key:
        return replace(conn, source=node)
    return replace(conn, destination=node)
