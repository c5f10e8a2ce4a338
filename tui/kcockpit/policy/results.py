"""The engine's answer as plain data: per-rule outcomes, per-side results, the overall verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from kcockpit.policy.endpoints import Endpoint

ALLOWED = "allowed"
DENIED = "denied"
NOT_EVALUATED = "not-evaluated"

# RuleOutcome.result values
MATCH = "match"
PEER_MISMATCH = "peer"
PORT_MISMATCH = "port"
PROTOCOL_MISMATCH = "protocol"
UNKNOWN = "unknown"  # the rule uses something not modelled, or facts are missing

EGRESS = "egress"
INGRESS = "ingress"


@dataclass(frozen=True)
class Connection:
    source: Endpoint
    destination: Endpoint
    port: int
    protocol: str  # TCP, UDP, SCTP, ICMPv4, ICMPv6

    def port_text(self) -> str:
        return f"{self.protocol} {self.port}" if self.port else self.protocol


@dataclass(frozen=True)
class PolicyRef:
    kind: str  # NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def to_dict(self) -> dict:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass(frozen=True)
class RuleOutcome:
    """How one rule of one policy fared against the connection."""

    policy: PolicyRef
    section: str  # ingress, egress, ingressDeny, egressDeny
    index: int  # 0-based position in that section
    result: str  # MATCH, PEER_MISMATCH, PORT_MISMATCH, PROTOCOL_MISMATCH, UNKNOWN
    rule_text: str  # what the rule allows, e.g. "app=backend on TCP 8080"
    detail: str = ""  # why it failed or what could not be evaluated
    peer_index: int | None = None
    port_index: int | None = None

    def to_dict(self) -> dict:
        return {
            "policy": self.policy.to_dict(),
            "section": self.section,
            "rule": self.index,
            "result": self.result,
            "rule_text": self.rule_text,
            "detail": self.detail,
            "peer": self.peer_index,
            "port": self.port_index,
        }


@dataclass(frozen=True)
class PolicyOutcome:
    """One policy's effect on one side: does it isolate the endpoint, and its rules' outcomes."""

    policy: PolicyRef
    isolates: bool
    allows: tuple[RuleOutcome, ...] = ()
    denies: tuple[RuleOutcome, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SideResult:
    direction: str  # EGRESS (at the source) or INGRESS (at the destination)
    endpoint: Endpoint
    verdict: str
    isolated: bool = False
    isolating: tuple[PolicyRef, ...] = ()
    rules: tuple[RuleOutcome, ...] = ()  # every allow rule of the isolating policies
    denies: tuple[RuleOutcome, ...] = ()  # every deny rule (Cilium) that applies to the endpoint
    reason: str = ""  # set when the side is decided without rules (not a pod, self, own node)
    warnings: tuple[str, ...] = ()

    @property
    def allowed_by(self) -> tuple[RuleOutcome, ...]:
        return tuple(r for r in self.rules if r.result == MATCH)

    @property
    def denied_by(self) -> tuple[RuleOutcome, ...]:
        return tuple(r for r in self.denies if r.result == MATCH)

    @property
    def unknown(self) -> tuple[RuleOutcome, ...]:
        return tuple(r for r in self.rules + self.denies if r.result == UNKNOWN)

    @property
    def deciding(self) -> tuple[PolicyRef, ...]:
        """The policies that decide this side: the deny rule's, the allowing rules', or all isolating ones."""
        if self.denied_by:
            return _unique(r.policy for r in self.denied_by)
        if self.verdict == ALLOWED:
            return _unique(r.policy for r in self.allowed_by)
        return self.isolating

    def to_dict(self) -> dict:
        return {
            "direction": self.direction,
            "endpoint": self.endpoint.display(),
            "verdict": self.verdict,
            "isolated": self.isolated,
            "isolating": [p.to_dict() for p in self.isolating],
            "deciding": [p.to_dict() for p in self.deciding],
            "rules": [r.to_dict() for r in self.rules],
            "denies": [r.to_dict() for r in self.denies],
            "reason": self.reason,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Evaluation:
    connection: Connection
    verdict: str
    egress: SideResult
    ingress: SideResult
    warnings: tuple[str, ...] = field(default=())

    @property
    def sides(self) -> tuple[SideResult, SideResult]:
        return (self.egress, self.ingress)


def _unique(policies) -> tuple[PolicyRef, ...]:
    return tuple(dict.fromkeys(policies))


def combine(verdicts: list[str]) -> str:
    """Both ends must allow: any denial denies; otherwise anything unknown leaves it not evaluated."""
    if DENIED in verdicts:
        return DENIED
    if NOT_EVALUATED in verdicts:
        return NOT_EVALUATED
    return ALLOWED


@dataclass(frozen=True)
class Options:
    """Behaviours that differ between CNI plugins.

    ipblock_matches_pods: Calico matches ipBlock against pod IPs too; Cilium (the default)
    does not, an ipBlock there only selects endpoints outside the cluster.
    """

    ipblock_matches_pods: bool = False
