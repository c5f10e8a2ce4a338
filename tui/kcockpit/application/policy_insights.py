"""What the Policies tab shows, as plain data: every verdict group with the engine's answer,
each policy with its rules' hit counts, the drift between the engine and Hubble, and what a
change would do to the traffic observed in the window (what-if).

The aggregates give policy verdict groups (verdict, direction, Hubble's deciding policy,
source, destination, port, protocol) with one sample flow each. `PolicyInsights` evaluates
each GROUP once per policy-data generation (the sample stands for the group: same endpoints,
same port), never the flows themselves, and keeps the answers until the policy data
changes. No Textual here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from kcockpit.model.aggregates import PolicyGroup
from kcockpit.model.record import FlowRecord
from kcockpit.policy import advise, builders, cilium, networkpolicy
from kcockpit.policy.cluster import CILIUM_CLUSTERWIDE_NETWORKPOLICIES, CILIUM_NETWORKPOLICIES, NETWORKPOLICIES, RESOURCE_OF_KIND, Cluster
from kcockpit.policy.engine import Engine
from kcockpit.policy.flows import connection, cross_check
from kcockpit.policy.results import ALLOWED, DENIED, EGRESS, INGRESS, NOT_EVALUATED, PolicyRef, SideResult

# Engine vs Hubble, per group
AGREES = "agrees"
DRIFT = "drift"
UNEVALUATED = "not-evaluated"
CHECK_MARK = {AGREES: "✓", DRIFT: "✗ drift", UNEVALUATED: "? not evaluated"}

VERDICT_ORDER = {"DROPPED": 0, "AUDIT": 1, "FORWARDED": 2}
IMPLICIT = -1  # the rule index of a policy's implicit deny (isolated, no rule matched)

# What-if outcomes
NEWLY_ALLOWED = "newly allowed"
NEWLY_DENIED = "newly denied"
UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class RuleKey:
    """One rule of one policy: section is ingress/egress/ingressDeny/egressDeny (with a
    `specs[i].` prefix for Cilium multi-spec policies); index IMPLICIT is the default deny."""

    policy: PolicyRef
    section: str
    index: int

    def label(self) -> str:
        if self.index == IMPLICIT:
            return f"{self.section} default deny"
        return f"{self.section} rule {self.index + 1}"


@dataclass(frozen=True)
class GroupAnswer:
    """The engine's answer for one group's side (egress at the source, ingress at the destination)."""

    engine_verdict: str  # allowed / denied / not-evaluated, "" without policy data
    deciding: tuple[PolicyRef, ...]
    hits: tuple[RuleKey, ...]  # the rules that decided it (matched allows, a deny, or default denies)
    rule: str  # "egress rule 1", "egress default deny", "not isolated", ...
    check: str  # AGREES, DRIFT, UNEVALUATED
    reason: str  # why it drifts or is not evaluated ("" when it agrees)
    source: str  # display names (a destination Service's name when the flow has one)
    destination: str


@dataclass(frozen=True)
class VerdictRow:
    group: PolicyGroup
    answer: GroupAnswer
    policy: str  # Hubble's deciding policy, else the engine's ("" when none)
    decided_by: str  # "hubble", "engine" or ""
    rate: float  # flows per second over the window

    @property
    def key(self) -> tuple:
        g = self.group
        return (g.verdict, g.direction, g.policy, g.source, g.destination, g.port, g.protocol)

    @property
    def port_text(self) -> str:
        g = self.group
        return f"{g.port}/{g.protocol}" if g.port else g.protocol


@dataclass
class RuleRow:
    key: RuleKey
    text: str
    hits: int = 0  # flows in the window decided by this rule

    @property
    def unused(self) -> bool:
        return self.hits == 0


@dataclass
class PolicyRow:
    ref: PolicyRef
    obj: Mapping
    selected: int  # pods it selects
    rules: list[RuleRow]
    allowed: int = 0  # flows in the window it allowed
    denied: int = 0  # flows it dropped
    audited: int = 0  # flows it would have dropped (audit mode)

    @property
    def name(self) -> str:
        return str(self.ref)

    @property
    def unused_rules(self) -> list[RuleRow]:
        return [r for r in self.rules if r.unused and r.key.index != IMPLICIT]


@dataclass(frozen=True)
class Unselected:
    """A workload no policy selects: not isolated in either direction."""

    workload: str  # ns/name
    pods: int


@dataclass
class PolicyView:
    policies: list[PolicyRow]
    unselected: list[Unselected]


@dataclass(frozen=True)
class DriftRow:
    reason: str
    rows: tuple[VerdictRow, ...]

    @property
    def flows(self) -> int:
        return sum(r.group.flows for r in self.rows)


@dataclass(frozen=True)
class WhatIfRow:
    row: VerdictRow
    before: str  # engine verdict now
    after: str  # engine verdict with the change
    outcome: str  # NEWLY_ALLOWED, NEWLY_DENIED, UNCHANGED


@dataclass
class WhatIf:
    title: str
    rows: list[WhatIfRow] = field(default_factory=list)

    def of(self, outcome: str) -> list[WhatIfRow]:
        return [r for r in self.rows if r.outcome == outcome]

    def flows(self, outcome: str) -> int:
        return sum(r.row.group.flows for r in self.of(outcome))

    def summary(self, window_label: str) -> str:
        """"this change allows frontend → kube-dns 53/UDP, 1,204 flows in the last 5 min, and changes nothing else"."""
        parts = []
        for outcome, verb in ((NEWLY_ALLOWED, "allows"), (NEWLY_DENIED, "denies")):
            rows = self.of(outcome)
            if rows:
                what = ", ".join(sorted({f"{r.row.answer.source} → {r.row.answer.destination} {r.row.port_text}" for r in rows}))
                parts.append(f"{verb} {what}, {self.flows(outcome):,} flows in {window_label}")
        if not parts:
            return f"this change alters none of the {len(self.rows)} verdict groups seen in {window_label}"
        return "this change " + " and ".join(parts) + ", and changes nothing else"


# --------------------------------------------------------------------------- the engine's answers


def _display(record: FlowRecord | None, group: PolicyGroup) -> tuple[str, str]:
    """Short names: the workload without its namespace; the destination Service's name when the flow has one."""
    source = _short(group.source.name) or str(group.source)
    destination = _short(group.destination.name) or str(group.destination)
    if record is not None:
        try:
            service = record.flow().destination_service
            if service.name and not record.is_reply:
                destination = service.name
        except Exception:  # noqa: BLE001 - a sample that does not decode keeps the workload name
            pass
    if group.source.detail:
        source = f"{source} {group.source.detail}"
    if group.destination.detail:
        destination = f"{destination} {group.destination.detail}"
    return source, destination


def _short(name: str) -> str:
    return name.partition("/")[2] or name


def _side(evaluation, direction: str) -> SideResult:
    """The side a verdict event speaks for; without a direction, the side that decides."""
    if direction == INGRESS:
        return evaluation.ingress
    if direction == EGRESS or evaluation.ingress.verdict == ALLOWED:
        return evaluation.egress
    return evaluation.ingress


def side_hits(side: SideResult) -> tuple[tuple[RuleKey, ...], str]:
    """The rules that decided a side, and a short label for them."""
    if side.denied_by:
        rule = side.denied_by[0]
        return (RuleKey(rule.policy, rule.section, rule.index),), f"{rule.section} rule {rule.index + 1}"
    if side.reason:
        return (), "no policy applies"
    if side.verdict == ALLOWED:
        if not side.isolated:
            return (), "not isolated"
        hits = tuple(RuleKey(r.policy, r.section, r.index) for r in side.allowed_by)
        first = side.allowed_by[0]
        return hits, f"{first.section} rule {first.index + 1}"
    if side.verdict == DENIED:
        return tuple(RuleKey(p, side.direction, IMPLICIT) for p in side.isolating), f"{side.direction} default deny"
    unknown = side.unknown
    if unknown:
        return (), f"{unknown[0].section} rule {unknown[0].index + 1}?"
    return (), "not evaluated"


def _hubble_says(group: PolicyGroup) -> str:
    if group.verdict == "FORWARDED":
        return ALLOWED
    if group.verdict in ("DROPPED", "AUDIT"):
        return DENIED
    return ""


def _known_policy(cluster: Cluster, name: str) -> bool:
    for obj in cluster.networkpolicies + cluster.cilium_policies:
        metadata = obj.get("metadata") or {}
        text = f"{metadata['namespace']}/{metadata.get('name', '')}" if metadata.get("namespace") else metadata.get("name", "")
        if text == name:
            return True
    return False


def answer_group(group: PolicyGroup, cluster: Cluster | None, no_data_reason: str = "") -> GroupAnswer:
    """The engine's answer for one group, compared with Hubble's verdict."""
    record = None
    if group.sample is not None:
        try:
            record = FlowRecord.from_bytes(group.sample)
        except Exception:  # noqa: BLE001 - a sample that does not decode is reported, never raised
            record = None
    source, destination = _display(record, group)
    if cluster is None:
        return GroupAnswer("", (), (), "", UNEVALUATED, no_data_reason or "no policy data", source, destination)
    if record is None:
        return GroupAnswer("", (), (), "", UNEVALUATED, "no sample flow to evaluate", source, destination)
    try:
        evaluation = Engine(cluster).evaluate(connection(record, cluster))
        check = cross_check(evaluation, record)
    except Exception as error:  # noqa: BLE001 - the engine failing on one group must not break the tab
        return GroupAnswer("", (), (), "", UNEVALUATED, f"the policy engine failed: {error}", source, destination)
    side = _side(evaluation, group.direction)
    hits, rule = side_hits(side)
    verdict = side.verdict
    expected = _hubble_says(group)
    if verdict == NOT_EVALUATED:
        unknown = side.unknown
        reason = f"{unknown[0].policy} {unknown[0].section} rule {unknown[0].index + 1}: {unknown[0].detail}" if unknown else side.reason
        return GroupAnswer(verdict, side.isolating, hits, rule, UNEVALUATED, reason or "the engine cannot decide", source, destination)
    l7 = [r for r in side.allowed_by if "not evaluated" in r.detail] if verdict == ALLOWED else []
    if l7 and expected != DENIED:
        reason = f"{l7[0].policy} {l7[0].section} rule {l7[0].index + 1}: allowed at L3/L4; {l7[0].detail}"
        return GroupAnswer(verdict, side.deciding, hits, rule, UNEVALUATED, reason, source, destination)
    reason = ""
    if expected and expected != verdict:
        reason = _drift_reason(group, cluster, verdict)
    elif not check.agrees:
        reason = "; ".join(n for n in check.notes if "Hubble names" in n) or "; ".join(check.notes)
    state = DRIFT if reason else AGREES
    return GroupAnswer(verdict, side.deciding, hits, rule, state, reason, source, destination)


def _drift_reason(group: PolicyGroup, cluster: Cluster, engine_verdict: str) -> str:
    hubble = {"FORWARDED": "forwarded", "DROPPED": "dropped", "AUDIT": "audited (would drop)"}.get(group.verdict, group.verdict)
    if group.policy and not _known_policy(cluster, group.policy):
        if "/" not in group.policy:
            return f"Hubble {hubble} it by {group.policy}, a clusterwide or host policy missing from the policy data"
        return f"Hubble {hubble} it by {group.policy}, which the policy data does not have: policy data older than the flow?"
    if group.verdict == "FORWARDED":
        return "Hubble forwarded it but the policies deny it: policy data newer or older than the flow, or a rule the engine does not model"
    return f"Hubble {hubble} it but the policies allow it: a clusterwide or host policy, or policy data older than the flow"


def fold_drop_events(groups: Iterable[PolicyGroup]) -> list[PolicyGroup]:
    """One group per denial. Cilium reports a policy denial twice: a drop event (no policy
    named) and a policy-verdict event naming the policy; the aggregates count both. An
    unnamed DROPPED/AUDIT group with a named twin (same everything else) is the same
    packets: folded into the twin, which keeps the larger count and the widest times."""
    groups = list(groups)
    named: dict[tuple, int] = {}
    for index, group in enumerate(groups):
        if group.policy:
            named.setdefault(_twin_key(group), index)
    folded: list[PolicyGroup | None] = list(groups)
    for index, group in enumerate(groups):
        if group.policy or group.verdict not in ("DROPPED", "AUDIT"):
            continue
        twin_index = named.get(_twin_key(group))
        if twin_index is None:
            continue
        twin = folded[twin_index]
        assert twin is not None
        folded[twin_index] = replace(
            twin, flows=max(twin.flows, group.flows), first_ns=min(twin.first_ns, group.first_ns),
            last_ns=max(twin.last_ns, group.last_ns), sample=twin.sample or group.sample,
        )
        folded[index] = None
    return [g for g in folded if g is not None]


def _twin_key(group: PolicyGroup) -> tuple:
    return (group.verdict, group.direction, group.source, group.destination, group.port, group.protocol)


class PolicyInsights:
    """Evaluates verdict groups against the policy data, once per (group, data generation)."""

    def __init__(self) -> None:
        self._generation: object = None
        self._answers: dict[tuple, GroupAnswer] = {}
        self._selection: tuple[object, Selection] | None = None

    def policy_view(self, rows: Sequence[VerdictRow], cluster: Cluster | None, generation: object) -> PolicyView:
        """`policy_view` with the pod selection cached per policy-data generation."""
        if cluster is None:
            return PolicyView([], [])
        if self._selection is None or self._selection[0] != generation:
            self._selection = (generation, selection(cluster))
        return policy_view(rows, cluster, self._selection[1])

    def verdict_rows(
        self, groups: Iterable[PolicyGroup], cluster: Cluster | None, generation: object, span_s: float, no_data_reason: str = ""
    ) -> list[VerdictRow]:
        """Every group with the engine's answer: drops first, then audit, then allowed; most flows first."""
        if generation != self._generation:
            self._answers.clear()
            self._generation = generation
        rows = []
        for group in fold_drop_events(groups):
            key = (group.verdict, group.direction, group.policy, group.source, group.destination, group.port, group.protocol)
            answer = self._answers.get(key)
            if answer is None:
                answer = self._answers[key] = answer_group(group, cluster, no_data_reason)
            if group.policy:
                policy, decided_by = group.policy, "hubble"
            elif answer.deciding:
                policy, decided_by = ", ".join(str(p) for p in answer.deciding), "engine"
            else:
                policy, decided_by = "", ""
            rows.append(VerdictRow(group, answer, policy, decided_by, group.flows / max(span_s, 1.0)))
        rows.sort(key=lambda r: (VERDICT_ORDER.get(r.group.verdict, 3), -r.group.flows, r.policy, r.key[3:]))
        return rows


# --------------------------------------------------------------------------- policies and rules


def policy_objects(cluster: Cluster) -> list[tuple[PolicyRef, Mapping]]:
    found = [(networkpolicy.ref(p), p) for p in cluster.networkpolicies]
    found += [(cilium.ref(p), p) for p in cluster.cilium_policies]
    return found


def policy_rules(ref: PolicyRef, obj: Mapping) -> list[RuleRow]:
    """Every rule of a policy, in order, plus one default-deny row per isolated direction."""
    rows: list[RuleRow] = []
    spec = obj.get("spec") or {}
    if ref.kind == networkpolicy.KIND:
        types = networkpolicy.policy_types(obj)
        for direction in (INGRESS, EGRESS):
            if direction.capitalize() not in types:
                continue
            for i, rule in enumerate(spec.get(direction) or []):
                rows.append(RuleRow(RuleKey(ref, direction, i), networkpolicy.describe_rule(rule or {}, direction, ref.namespace)))
            rows.append(RuleRow(RuleKey(ref, direction, IMPLICIT), "anything no rule allows"))
        return rows
    isolated: set[str] = set()
    for prefix, part in cilium.specs(obj):
        for direction in (INGRESS, EGRESS):
            rules = part.get(direction) or []
            for i, rule in enumerate(rules):
                rows.append(RuleRow(RuleKey(ref, prefix + direction, i), cilium.describe_rule(rule or {}, direction)))
            deny_rules = part.get(direction + "Deny") or []
            for i, rule in enumerate(deny_rules):
                rows.append(RuleRow(RuleKey(ref, prefix + direction + "Deny", i), "deny " + cilium.describe_rule(rule or {}, direction)))
            default_deny = (part.get("enableDefaultDeny") or {}).get(direction, True)
            if (rules or deny_rules) and default_deny is not False:
                isolated.add(direction)
    for direction in (INGRESS, EGRESS):
        if direction in isolated:
            rows.append(RuleRow(RuleKey(ref, direction, IMPLICIT), "anything no rule allows"))
    return rows


def _selects(ref: PolicyRef, obj: Mapping, pod, cluster: Cluster) -> bool:
    try:
        if ref.kind == networkpolicy.KIND:
            return networkpolicy.selects(obj, pod)
        return any(cilium.selects(obj, spec, pod, cluster) for _, spec in cilium.specs(obj))
    except Exception:  # noqa: BLE001 - an unreadable selector selects nothing here
        return False


@dataclass(frozen=True)
class Selection:
    """Which pods each policy selects and the workloads none selects: depends on the policy
    data only, so it is computed once per data generation (pods x policies selector checks)."""

    selected: dict[PolicyRef, int]
    objects: tuple[tuple[PolicyRef, Mapping], ...]
    unselected: tuple[Unselected, ...]


def selection(cluster: Cluster) -> Selection:
    selected: dict[PolicyRef, int] = {}
    selected_pods: set = set()
    objects = tuple(policy_objects(cluster))
    for ref, obj in objects:
        pods = [p for p in cluster.pods if not p.host_network and _selects(ref, obj, p, cluster)]
        selected_pods.update(p.key for p in pods)
        selected[ref] = len(pods)
    workloads: dict[str, int] = {}
    for pod in cluster.pods:
        if pod.host_network or pod.key in selected_pods:
            continue
        name = f"{pod.namespace}/{pod.workload or pod.name}"
        workloads[name] = workloads.get(name, 0) + 1
    return Selection(selected, objects, tuple(Unselected(w, n) for w, n in sorted(workloads.items())))


def policy_view(rows: Sequence[VerdictRow], cluster: Cluster | None, selected: Selection | None = None) -> PolicyView:
    """Each policy with pods selected, flows allowed/denied/audited and every rule's hits;
    the workloads that no policy selects. `selected` is `selection(cluster)`, when cached."""
    if cluster is None:
        return PolicyView([], [])
    selected = selected or selection(cluster)
    policies: dict[PolicyRef, PolicyRow] = {}
    for ref, obj in selected.objects:
        policies[ref] = PolicyRow(ref, obj, selected.selected[ref], policy_rules(ref, obj))
    for row in rows:
        answer = row.answer
        for hit in answer.hits:
            policy = policies.get(hit.policy)
            if policy is None:
                continue
            for rule in policy.rules:
                if rule.key == hit:
                    rule.hits += row.group.flows
        for ref in {h.policy for h in answer.hits}:
            policy = policies.get(ref)
            if policy is None:
                continue
            if row.group.verdict == "AUDIT":
                policy.audited += row.group.flows
            elif answer.engine_verdict == ALLOWED:
                policy.allowed += row.group.flows
            elif answer.engine_verdict == DENIED:
                policy.denied += row.group.flows
    ordered = sorted(policies.values(), key=lambda p: (-(p.denied + p.audited), -p.allowed, p.name))
    return PolicyView(ordered, list(selected.unselected))


# --------------------------------------------------------------------------- drift


def drift_rows(rows: Sequence[VerdictRow]) -> list[DriftRow]:
    """The groups where the engine and Hubble disagree or the engine cannot decide, by reason."""
    grouped: dict[str, list[VerdictRow]] = {}
    for row in rows:
        if row.answer.check in (DRIFT, UNEVALUATED):
            label = ("not evaluated: " if row.answer.check == UNEVALUATED else "") + row.answer.reason
            grouped.setdefault(label, []).append(row)
    found = [DriftRow(reason, tuple(items)) for reason, items in grouped.items()]
    found.sort(key=lambda d: (d.reason.startswith("not evaluated"), -d.flows, d.reason))
    return found


# --------------------------------------------------------------------------- what-if


def with_objects(cluster: Cluster, objects: Iterable[Mapping]) -> Cluster:
    """A copy of the cluster with policy objects added, or replacing those of the same kind and name."""
    by_resource: dict[str, list[Mapping]] = {r: list(cluster.objects[r]) for r in (NETWORKPOLICIES, CILIUM_NETWORKPOLICIES, CILIUM_CLUSTERWIDE_NETWORKPOLICIES)}
    for obj in objects:
        resource = RESOURCE_OF_KIND.get(obj.get("kind", ""))
        if resource not in by_resource:
            continue
        name = _identity(obj)
        by_resource[resource] = [o for o in by_resource[resource] if _identity(o) != name] + [copy.deepcopy(dict(obj))]
    changed = cluster
    for resource, items in by_resource.items():
        changed = changed.replace(resource, items)
    return changed


def _identity(obj: Mapping) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return (metadata.get("namespace") or "default", metadata.get("name", ""))


def what_if(rows: Sequence[VerdictRow], cluster: Cluster, changed: Cluster, title: str) -> WhatIf:
    """Replay the window's groups through the engine with the change: what it newly allows,
    newly denies, or leaves alone (each group's side, before and after)."""
    result = WhatIf(title)
    before_engine, after_engine = Engine(cluster), Engine(changed)
    for row in rows:
        if row.group.sample is None:
            continue
        try:
            record = FlowRecord.from_bytes(row.group.sample)
            before = _side(before_engine.evaluate(connection(record, cluster)), row.group.direction).verdict
            after = _side(after_engine.evaluate(connection(record, changed)), row.group.direction).verdict
        except Exception:  # noqa: BLE001 - a group the engine cannot take stays unchanged
            continue
        if before != ALLOWED and after == ALLOWED:
            outcome = NEWLY_ALLOWED
        elif before == ALLOWED and after != ALLOWED:
            outcome = NEWLY_DENIED
        else:
            outcome = UNCHANGED
        result.rows.append(WhatIfRow(row, before, after, outcome))
    return result


# --------------------------------------------------------------------------- advise

ADVICE_SOURCE = "the sample flow of each forwarded verdict group in the window"


def advise_workload(rows: Sequence[VerdictRow], cluster: Cluster, workload: str) -> advise.Advice:
    """Least-privilege policies for `workload` (ns/name) from the window's forwarded groups
    (one sample flow per group stands for its connection); raises advise.AdviceError."""
    namespace, _, name = workload.partition("/")
    records = []
    for row in rows:
        if row.group.verdict == "FORWARDED" and row.group.sample is not None:
            try:
                records.append(FlowRecord.from_bytes(row.group.sample))
            except Exception:  # noqa: BLE001 - an undecodable sample is left out
                continue
    return advise.advise(records, namespace, name, cluster)


def workloads_of(rows: Sequence[VerdictRow]) -> list[str]:
    """The in-cluster workloads (ns/name) seen in the groups, sorted."""
    names = {ep.name for r in rows for ep in (r.group.source, r.group.destination) if "/" in ep.name}
    return sorted(names)


# --------------------------------------------------------------------------- texts for people

RULE_SECTIONS = ("ingress", "egress", "ingressDeny", "egressDeny")


def annotated_yaml(row: PolicyRow, window_label: str) -> str:
    """The policy as YAML (ready to apply) with each rule's hits in the window next to it."""
    obj = builders.object_for_apply(row.obj)
    spec = obj.get("spec") or {}
    hits = {(r.key.section, r.key.index): r for r in row.rules}
    lines = [
        f"# {row.ref.kind} {row.name}: selects {_count(row.selected, 'pod')}"
        + ("  ⚠ SELECTS NO POD" if not row.selected else ""),
        f"# {window_label}, from Hubble's flows: allowed {row.allowed:,}, denied {row.denied:,}, audit {row.audited:,}",
    ]
    lines += builders.to_yaml({k: v for k, v in obj.items() if k != "spec"}).splitlines()
    lines.append("spec:")
    for key, value in spec.items():
        if key in RULE_SECTIONS and isinstance(value, list):
            lines.append(f"  {key}:")
            for i, rule in enumerate(value):
                rule_yaml = builders.to_yaml([rule]).splitlines() or ["- {}"]
                found = hits.get((key, i))
                note = ""
                if found is not None:
                    note = f"  # ◀ rule {i + 1}: {found.hits:,} hits" + ("  ⚠ UNUSED in the window" if found.unused else "")
                lines.append("  " + rule_yaml[0] + note)
                lines += ["  " + line for line in rule_yaml[1:]]
        else:
            lines += ["  " + line for line in builders.to_yaml({key: value}).splitlines()]
    for rule in row.rules:
        if rule.key.index == IMPLICIT:
            lines.append(f"# ◀ {rule.key.section} default deny (anything no rule allows): {rule.hits:,} hits")
        elif (rule.key.section, rule.key.index) not in hits or rule.key.section not in spec:
            lines.append(f"# ◀ {rule.key.label()} ({rule.text}): {rule.hits:,} hits")
    return "\n".join(lines) + "\n"


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def what_if_text(result: WhatIf, window_label: str) -> str:
    """The what-if as lines: the summary, then each group newly allowed, newly denied, and a count of the rest."""
    lines = [result.summary(window_label), ""]
    for outcome, mark in ((NEWLY_ALLOWED, "+"), (NEWLY_DENIED, "-")):
        rows = result.of(outcome)
        lines.append(f"{outcome.upper()}: {_count(len(rows), 'group')}, {result.flows(outcome):,} flows")
        for r in rows:
            g = r.row.group
            lines.append(
                f"  {mark} {g.verdict} {g.direction} {r.row.answer.source} → {r.row.answer.destination} "
                f"{r.row.port_text}  {g.flows:,} flows  ({r.before} → {r.after})"
            )
    lines.append(f"UNCHANGED: {_count(len(result.of(UNCHANGED)), 'group')}, {result.flows(UNCHANGED):,} flows")
    return "\n".join(lines) + "\n"
