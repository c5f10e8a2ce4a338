"""Turn an Evaluation into sentences a person can act on, and into JSON for scripts."""

from __future__ import annotations

from kcockpit.policy.results import ALLOWED, DENIED, EGRESS, MATCH, NOT_EVALUATED, Evaluation, RuleOutcome, SideResult

RESULT_WORDS = {
    "peer": "peer mismatch",
    "port": "port mismatch",
    "protocol": "protocol mismatch",
    "unknown": "not evaluated",
    MATCH: "matches",
}


# Failure details that only restate the rule and the peer; a sentence already says that.
_RESTATING = ("does not match", "do not include")


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def rule_name(rule: RuleOutcome) -> str:
    """`otel-demo/p egress rule 1` (1-based, as people count)."""
    return f"{rule.policy} {rule.section} rule {rule.index + 1}"


def peer_text(side: SideResult, evaluation: Evaluation) -> str:
    """The other end and the port, as the person sees the connection: `kube-system/kube-dns on UDP 53`."""
    conn = evaluation.connection
    peer = conn.destination.display(prefer_service=True) if side.direction == EGRESS else conn.source.display()
    return f"{peer} on {conn.port_text()}"


def side_sentence(side: SideResult, evaluation: Evaluation) -> str:
    """One sentence for a denied or not-evaluated side."""
    where = f"{side.direction} of {side.endpoint.display()}"
    if side.verdict == DENIED and side.denied_by:
        rule = side.denied_by[0]
        return f"DENIED at {where}: {rule_name(rule)} denies {rule.rule_text}, which includes {peer_text(side, evaluation)}."
    if side.verdict == NOT_EVALUATED and side.reason:
        return f"NOT EVALUATED at {where}: {side.reason}."
    if side.verdict == NOT_EVALUATED:
        reasons = [f"{rule_name(r)} ({r.rule_text}): {r.detail}" for r in side.unknown]
        return f"NOT EVALUATED at {where}: {'; '.join(reasons)}."
    isolated = f"isolated by {_join([str(p) for p in side.isolating])}"
    rules = side.rules
    owner = "its" if len(side.isolating) == 1 else "their"
    if not rules:
        verb = "allows" if len(side.isolating) == 1 else "allow"
        return f"DENIED at {where}: {isolated}, which {verb} no {side.direction}; {peer_text(side, evaluation)} is denied."
    if len(rules) == 1:
        allows = f"{owner} only rule allows {rules[0].rule_text}"
        if rules[0].detail and not any(w in rules[0].detail for w in _RESTATING):
            return f"DENIED at {where}: {isolated}; {allows}, not {peer_text(side, evaluation)} ({rules[0].detail})."
    else:
        allows = f"{owner} {len(rules)} rules allow {'; '.join(r.rule_text for r in rules)}"
    return f"DENIED at {where}: {isolated}; {allows}, not {peer_text(side, evaluation)}."


def allowed_phrase(side: SideResult) -> str:
    where = f"{side.direction} of {side.endpoint.display()}"
    if side.reason:
        return side.reason
    if not side.isolated:
        return f"{where} is not isolated"
    rule = side.allowed_by[0]
    more = f" (and {len(side.allowed_by) - 1} more)" if len(side.allowed_by) > 1 else ""
    return f"{where} allowed by {rule_name(rule)}: {rule.rule_text}{more}"


def sentence(evaluation: Evaluation) -> str:
    """The whole verdict in one or two sentences."""
    if evaluation.verdict == ALLOWED:
        return "ALLOWED: " + "; ".join(dict.fromkeys(allowed_phrase(s) for s in evaluation.sides)) + "."
    return " ".join(side_sentence(s, evaluation) for s in evaluation.sides if s.verdict == evaluation.verdict)


def details(evaluation: Evaluation) -> list[str]:
    """Every rule considered, one line each, for the detail pane and `explain` output."""
    lines = []
    for side in evaluation.sides:
        head = f"{side.direction} of {side.endpoint.display()}: {side.verdict}"
        if side.reason:
            lines.append(f"{head} ({side.reason})")
            continue
        lines.append(f"{head}, " + (f"isolated by {_join([str(p) for p in side.isolating])}" if side.isolated else "not isolated"))
        for rule in side.denies + side.rules:
            detail = f": {rule.detail}" if rule.detail else ""
            lines.append(f"  {rule_name(rule)} ({rule.rule_text}): {RESULT_WORDS[rule.result]}{detail}")
        lines += [f"  warning: {w}" for w in side.warnings]
    return lines


def to_dict(evaluation: Evaluation) -> dict:
    conn = evaluation.connection
    return {
        "verdict": evaluation.verdict,
        "source": conn.source.display(),
        "destination": conn.destination.display(prefer_service=True),
        "port": conn.port,
        "protocol": conn.protocol,
        "explanation": sentence(evaluation),
        "deciding": {s.direction: [p.to_dict() for p in s.deciding] for s in evaluation.sides},
        "egress": evaluation.egress.to_dict(),
        "ingress": evaluation.ingress.to_dict(),
        "details": details(evaluation),
    }
