"""Flows as engine input, and the engine's answer checked against what Hubble saw.

A flow's endpoints carry Cilium labels; when the cluster data knows the pod, its object
(named ports, full labels) is used instead. Replies are turned around: the policy
question is always about the connection's original direction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kcockpit.model.record import DIRECTION_EGRESS, DIRECTION_INGRESS, VERDICT_AUDIT, VERDICT_DROPPED, VERDICT_FORWARDED, FlowRecord
from kcockpit.policy import explain, fix
from kcockpit.policy.cluster import Cluster
from kcockpit.policy.endpoints import HOST, POD, REMOTE_NODE, Endpoint, flow_endpoint
from kcockpit.policy.engine import Engine
from kcockpit.policy.results import ALLOWED, DENIED, EGRESS, INGRESS, Connection, Evaluation, Options, combine

DIRECTIONS = {DIRECTION_INGRESS: INGRESS, DIRECTION_EGRESS: EGRESS}
POLICY_DROP_REASONS = {"POLICY_DENIED", "POLICY_DENY", "AUTH_REQUIRED"}


def resolve(cluster: Cluster, endpoint: Endpoint) -> Endpoint:
    """The cluster's view of a flow endpoint when it knows the pod (by name, else by IP)."""
    known = None
    if endpoint.kind == POD:
        known = cluster.pod(endpoint.namespace, endpoint.name) or (cluster.pod_by_ip(endpoint.ip) if endpoint.ip else None)
    elif endpoint.ip:
        known = cluster.pod_by_ip(endpoint.ip)
    if known is None:
        return endpoint
    return replace(known, service=endpoint.service, namespace_labels=known.namespace_labels or endpoint.namespace_labels)


def connection(record: FlowRecord, cluster: Cluster | None = None) -> Connection:
    """The connection a flow belongs to, in its original direction."""
    source, destination = flow_endpoint(record.source), flow_endpoint(record.destination)
    port = record.destination.port
    if record.is_reply:
        source, destination, port = destination, source, record.source.port
    if cluster is not None:
        source, destination = resolve(cluster, source), resolve(cluster, destination)
    return Connection(source, destination, port, record.protocol)


@dataclass(frozen=True)
class CrossCheck:
    """Whether the engine and Hubble agree on a flow, and why not when they do not."""

    agrees: bool
    notes: tuple[str, ...]


def cross_check(evaluation: Evaluation, record: FlowRecord) -> CrossCheck:
    """Compare with Hubble. An event observed at one side (traffic_direction) speaks for that side only."""
    flow = record.flow()
    notes: list[str] = []
    sides = [s for s in evaluation.sides if DIRECTIONS.get(record.direction) in (None, s.direction)]
    engine_verdict = combine([s.verdict for s in sides])
    verdict, drop = record.verdict, record.drop_reason_name
    agrees = True
    if verdict == VERDICT_FORWARDED and engine_verdict == DENIED and not record.is_reply:
        agrees = False
        notes.append("Hubble forwarded this flow but the policies deny it: the policy data may be stale, or the CNI behaves differently")
    elif verdict == VERDICT_DROPPED and drop in POLICY_DROP_REASONS and engine_verdict == ALLOWED:
        agrees = False
        notes.append(f"Hubble dropped this flow ({drop}) but the policies allow it: the policy data may be stale or incomplete")
    elif verdict == VERDICT_DROPPED and drop and drop not in POLICY_DROP_REASONS:
        notes.append(f"dropped for {drop}, which is not a policy decision")
    elif verdict == VERDICT_AUDIT:
        notes.append("policy audit mode: Cilium logged a verdict without enforcing it")
    for side in sides:
        named = _hubble_policies(flow, side.direction, denied=side.verdict == DENIED)
        missing = sorted(named - {str(p) for p in side.deciding})
        if missing and (side.verdict != ALLOWED or side.isolated):
            agrees = False
            notes.append(f"Hubble names {', '.join(missing)} at {side.direction}, which the engine does not find deciding")
    if any(ep.kind in (HOST, REMOTE_NODE) for ep in (evaluation.connection.source, evaluation.connection.destination)):
        notes.append("host traffic: node-level rules (host firewall, kubelet probes) may decide it, not pod policies")
    return CrossCheck(agrees, tuple(notes))


def _hubble_policies(flow, direction: str, denied: bool) -> set[str]:
    field = f"{direction}_{'denied' if denied else 'allowed'}_by"
    return {f"{p.namespace}/{p.name}" if p.namespace else p.name for p in getattr(flow, field)}



@dataclass(frozen=True)
class FlowVerdict:
    """Everything the Policies tab shows for one flow."""

    evaluation: Evaluation
    sentence: str
    details: tuple[str, ...]
    cross_check: CrossCheck
    fixes: tuple[fix.FixProposal, ...] = ()  # for denied flows


def explain_flow(record: FlowRecord, cluster: Cluster, options: Options | None = None, with_fixes: bool = True) -> FlowVerdict:
    """Evaluate a flow's connection, explain it, compare with Hubble and (if denied) propose fixes."""
    evaluation = Engine(cluster, options).evaluate(connection(record, cluster))
    fixes = tuple(fix.propose(cluster, evaluation, options)) if with_fixes and evaluation.verdict == DENIED else ()
    return FlowVerdict(evaluation, explain.sentence(evaluation), tuple(explain.details(evaluation)), cross_check(evaluation, record), fixes)
