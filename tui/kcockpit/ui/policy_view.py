"""The "Policy verdict" part of a flow's detail, as plain data (no Textual here).

`explain_record(record, data)` runs the policy engine for one flow (about 15 ms with fix
proposals, so the screen calls it on a thread) and returns what the detail shows: the
engine's sentence, the per-side details, the cross-check with Hubble, and for a denied
flow the fixes that can be applied as they are, each with its verified blast radius.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from kcockpit.model.record import FlowRecord
from kcockpit.policy.fix import PATCH, FixProposal
from kcockpit.policy.flows import POLICY_DROP_REASONS, explain_flow
from kcockpit.policy.results import ALLOWED, DENIED
from kcockpit.ui.export import ready_directory, unused_path
from kcockpit.application.integrations import PolicyData

EVENT_POLICY_VERDICT = 5
_KIND_WORDS = {"networkpolicies": "networkpolicy", "ciliumnetworkpolicies": "ciliumnetworkpolicy"}


def policy_relevant(record: FlowRecord) -> bool:
    """Dropped by policy, a policy-verdict event, or a flow Hubble names policies for."""
    flow = record.flow()
    return (
        record.drop_reason_name in POLICY_DROP_REASONS
        or flow.event_type.type == EVENT_POLICY_VERDICT
        or any(len(getattr(flow, f)) for f in ("egress_denied_by", "ingress_denied_by", "egress_allowed_by", "ingress_allowed_by"))
    )


@dataclass(frozen=True)
class PolicyExplanation:
    verdict: str  # allowed, denied, not-evaluated
    sentence: str
    details: tuple[str, ...]
    hubble: str  # "agrees with Hubble" or "MISMATCH: ..."
    hubble_agrees: bool
    fixes: tuple[FixProposal, ...]  # only those with something to apply
    advice: tuple[str, ...]  # proposals without YAML (a deny rule to narrow, not expressible)
    caveat: str = ""
    generation: int = -1


def explain_record(record: FlowRecord, data: PolicyData) -> PolicyExplanation:
    assert data.cluster is not None
    verdict = explain_flow(record, data.cluster)
    check = verdict.cross_check
    notes = "; ".join(check.notes)
    if check.agrees:
        hubble = "agrees with Hubble" + (f" ({notes})" if notes else "")
    else:
        hubble = f"MISMATCH with Hubble: {notes}"
    applicable = tuple(p for p in verdict.fixes if p.policy is not None)
    advice = tuple(p.title for p in verdict.fixes if p.policy is None)
    return PolicyExplanation(
        verdict.evaluation.verdict,
        verdict.sentence,
        verdict.details,
        hubble,
        check.agrees,
        applicable,
        advice,
        data.caveat,
        data.generation,
    )


def verdict_style(verdict: str) -> str:
    """A class for the sentence: allowed is good news, denied bad, the rest a warning."""
    return {ALLOWED: "-good", DENIED: "-bad"}.get(verdict, "-warn")


def opens_text(proposal: FixProposal) -> str:
    """The blast radius in one line: everything the change makes reachable."""
    opened = "; ".join(str(o) for o in proposal.opens) or "nothing else"
    if proposal.verified:
        return f"opens: {opened} (verified: allows this flow, nothing unrelated)"
    problems = []
    if not proposal.allows_flow:
        problems.append("does not allow this flow")
    if proposal.unrelated:
        problems.append("also opens " + "; ".join(str(o) for o in proposal.unrelated))
    if proposal.closes:
        problems.append("closes " + "; ".join(str(o) for o in proposal.closes))
    return f"opens: {opened} (NOT verified: {', '.join(problems)})"


def fix_document(proposal: FixProposal) -> str:
    """The YAML to apply, headed by comments saying what it changes and what it opens."""
    header = [f"# kcockpit fix: {proposal.title}", f"# {opens_text(proposal)}", "# apply with: kubectl apply -f FILE"]
    patch = kubectl_patch_command(proposal)
    if patch:
        header.append(f"# or patch in place: {patch}")
    return "\n".join(header) + "\n" + proposal.yaml()


def kubectl_patch_command(proposal: FixProposal) -> str:
    """For a patch: the equivalent `kubectl patch --type=json` command line, else ""."""
    if proposal.kind != PATCH or not proposal.json_patch or proposal.policy is None:
        return ""
    metadata = proposal.policy.get("metadata") or {}
    kind = _KIND_WORDS.get(proposal.resource, proposal.resource)
    patch = json.dumps(proposal.json_patch, separators=(",", ":"))
    return f"kubectl patch {kind} {metadata.get('name', '')} -n {metadata.get('namespace', 'default')} --type=json -p {shlex.quote(patch)}"


def fix_path(proposal: FixProposal, directory: Path) -> Path:
    """A new file name for the fix in `directory` (never overwrites)."""
    metadata = (proposal.policy or {}).get("metadata") or {}
    stem = f"kcockpit-fix-{proposal.kind}-{metadata.get('namespace', 'default')}-{metadata.get('name', 'policy')}"
    return unused_path(directory, stem, ".yaml")


def save_fix(proposal: FixProposal, directory: Path) -> Path:
    path = fix_path(proposal, ready_directory(directory))
    path.write_text(fix_document(proposal), encoding="utf-8")
    return path
