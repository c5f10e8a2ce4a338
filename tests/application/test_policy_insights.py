"""The Policies tab's model (application/policy_insights.py) on hand-written policies and
flows. Every expected number is worked out here from the flows fed, not from the code."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policy"))

from handmade_flows import T0, Pod, flow, policy, raw  # noqa: E402
from policy_fixtures import app, base_objects, cnp, np  # noqa: E402

from kcockpit.application import policy_insights as pi  # noqa: E402
from kcockpit.model.aggregates import FlowAggregates  # noqa: E402
from kcockpit.policy.cluster import Cluster  # noqa: E402
from kcockpit.policy.results import PolicyRef  # noqa: E402

FRONTEND = Pod("prod", "frontend", "frontend", "10.0.1.1", 1001, ("k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=prod"))
BACKEND = Pod("prod", "backend", "backend", "10.0.1.2", 1002, ("k8s:app=backend", "k8s:io.kubernetes.pod.namespace=prod"))
DB = Pod("prod", "db", "db", "10.0.1.3", 1003, ("k8s:app=db", "k8s:io.kubernetes.pod.namespace=prod"))
SIG = Pod("prod", "sig", "sig", "10.0.1.4", 1004, ("k8s:app=sig", "k8s:io.kubernetes.pod.namespace=prod"))
TESTER = Pod("dev", "tester", "tester", "10.0.2.2", 2002, ("k8s:app=tester", "k8s:io.kubernetes.pod.namespace=dev"))
COREDNS = Pod("kube-system", "coredns", "coredns", "10.0.3.1", 3001, ("k8s:k8s-app=kube-dns", "k8s:io.kubernetes.pod.namespace=kube-system"))

FRONTEND_EGRESS = np("frontend-egress", app("frontend"), types=["Egress"], egress=[{"to": [{"podSelector": app("backend")}]}])
BACKEND_INGRESS = np("backend-ingress", app("backend"), types=["Ingress"], ingress=[
    {"from": [{"podSelector": app("frontend")}], "ports": [{"protocol": "TCP", "port": 8080}]},
    {"from": [{"podSelector": app("prometheus")}], "ports": [{"protocol": "TCP", "port": 9090}]},  # never used
])
DB_INGRESS = np("db-ingress", app("db"), types=["Ingress"], ingress=[{"from": [{"podSelector": app("backend")}]}])
ORPHAN = np("orphan", app("nothing"), types=["Ingress"], ingress=[])
SIG_L7 = cnp("sig-http", app("sig"), ingress=[{
    "fromEndpoints": [{}],
    "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}], "rules": {"http": [{"method": "GET"}]}}],
}])


def cluster(*extra) -> Cluster:
    objects = base_objects()
    objects["networkpolicies"] = [FRONTEND_EGRESS, BACKEND_INGRESS, DB_INGRESS, ORPHAN]
    objects["ciliumnetworkpolicies"] = [SIG_L7]
    return Cluster(objects)


def groups():
    v = 5  # policy-verdict events
    flows = [
        # 3 DNS lookups dropped at the frontend's egress (isolated by frontend-egress).
        *(flow(i, FRONTEND, COREDNS, dport=53, proto="UDP", verdict="DROPPED", event=v,
               denied_by=[policy("prod", "frontend-egress")]) for i in (1, 2, 3)),
        # 2 connections frontend -> backend 8080, allowed on both sides.
        *(flow(i, FRONTEND, BACKEND, dport=8080, event=v, allowed_by=[policy("prod", "frontend-egress")]) for i in (4, 5)),
        *(flow(i, FRONTEND, BACKEND, dport=8080, event=v, direction="ingress",
               allowed_by=[policy("prod", "backend-ingress")]) for i in (4, 5)),
        # 1 connection Hubble forwarded that the policies deny: drift.
        flow(6, FRONTEND, DB, dport=5432, event=v),
        # 4 connections tester -> db in audit mode: would be dropped by db-ingress.
        *(flow(i, TESTER, DB, dport=5432, verdict="AUDIT", event=v, direction="ingress",
               denied_by=[policy("prod", "db-ingress")]) for i in (7, 8, 9, 10)),
        # 2 connections frontend -> sig 8080, allowed at L4 by an L7 rule: not evaluated.
        *(flow(i, FRONTEND, SIG, dport=8080, event=v, direction="ingress") for i in (11, 12)),
    ]
    result = FlowAggregates()
    result.ingest_raw(raw(*flows))
    return result.policy_groups(None, T0 + 100)


def rows(c=None):
    c = c or cluster()
    return pi.PolicyInsights().verdict_rows(groups(), c, generation=1, span_s=100.0)


def by_pair(found):
    return {(r.group.verdict, r.group.direction, r.answer.source, r.answer.destination, r.port_text): r for r in found}


def test_groups_are_ordered_drops_then_audit_then_allowed_with_the_engines_answer() -> None:
    found = rows()
    assert [(r.group.verdict, r.group.flows) for r in found] == [
        ("DROPPED", 3), ("AUDIT", 4), ("FORWARDED", 2), ("FORWARDED", 2), ("FORWARDED", 2), ("FORWARDED", 1),
    ]
    drop = found[0]
    assert (drop.policy, drop.decided_by, drop.answer.rule, drop.answer.check) == ("prod/frontend-egress", "hubble", "egress default deny", pi.AGREES)
    assert drop.rate == 3 / 100
    audit = found[1]
    assert (audit.answer.engine_verdict, audit.answer.check, audit.answer.rule) == ("denied", pi.AGREES, "ingress default deny")


def test_a_group_hubble_names_no_policy_for_gets_the_engines_deciding_policy() -> None:
    drift = by_pair(rows())[("FORWARDED", "egress", "frontend", "db", "5432/TCP")]
    assert (drift.policy, drift.decided_by) == ("prod/frontend-egress", "engine")
    assert drift.answer.engine_verdict == "denied"
    assert drift.answer.check == pi.DRIFT
    assert "Hubble forwarded it but the policies deny it" in drift.answer.reason


def test_an_l7_rule_is_not_evaluated_and_says_why() -> None:
    row = by_pair(rows())[("FORWARDED", "ingress", "frontend", "sig", "8080/TCP")]
    assert row.answer.check == pi.UNEVALUATED
    assert "L7 http rules" in row.answer.reason and "prod/sig-http ingress rule 1" in row.answer.reason


def test_rule_hits_unused_rules_and_policies_that_select_no_pod() -> None:
    view = pi.policy_view(rows(), cluster())
    policies = {p.name: p for p in view.policies}
    frontend = policies["prod/frontend-egress"]
    # egress rule 1 (to backend) allowed 2 flows; the default deny dropped the 3 lookups and the drifting flow.
    assert [(r.key.label(), r.hits) for r in frontend.rules] == [("egress rule 1", 2), ("egress default deny", 3 + 1)]
    assert (frontend.selected, frontend.allowed, frontend.denied, frontend.audited) == (1, 2, 4, 0)
    backend = policies["prod/backend-ingress"]
    assert [(r.key.label(), r.hits) for r in backend.rules] == [("ingress rule 1", 2), ("ingress rule 2", 0), ("ingress default deny", 0)]
    assert [r.key.label() for r in backend.unused_rules] == ["ingress rule 2"]
    db = policies["prod/db-ingress"]
    assert (db.audited, db.denied) == (4, 0)
    assert [(r.key.label(), r.hits) for r in db.rules] == [("ingress rule 1", 0), ("ingress default deny", 4)]
    assert policies["prod/orphan"].selected == 0
    assert policies["prod/sig-http"].ref == PolicyRef("CiliumNetworkPolicy", "prod", "sig-http")


def test_workloads_no_policy_selects_are_listed() -> None:
    view = pi.policy_view(rows(), cluster())
    # base_objects: prod/agent uses the host network (pod policies do not apply); frontend,
    # backend, db and sig are selected. A pod's workload is its app label (k8s-app for coredns).
    assert [u.workload for u in view.unselected] == ["dev/frontend", "dev/tester", "kube-system/kube-dns", "monitoring/prometheus"]


def test_drift_is_grouped_by_reason_disagreements_before_not_evaluated() -> None:
    drift = pi.drift_rows(rows())
    assert [(d.reason.split(":")[0], d.flows) for d in drift] == [
        ("Hubble forwarded it but the policies deny it", 1),
        ("not evaluated", 2),
    ]


def test_a_policy_hubble_names_but_the_data_lacks_is_policy_data_older_than_the_flow() -> None:
    objects = base_objects()
    objects["networkpolicies"] = [BACKEND_INGRESS, DB_INGRESS]  # frontend-egress is missing
    found = by_pair(rows(Cluster(objects)))
    drop = found[("DROPPED", "egress", "frontend", "coredns", "53/UDP")]
    assert drop.answer.check == pi.DRIFT
    assert "prod/frontend-egress, which the policy data does not have" in drop.answer.reason


def test_what_if_a_dns_rule_allows_exactly_the_dns_groups() -> None:
    c = cluster()
    patched = {**FRONTEND_EGRESS, "spec": {**FRONTEND_EGRESS["spec"], "egress": FRONTEND_EGRESS["spec"]["egress"] + [
        {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                 "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
         "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}}
    result = pi.what_if(rows(c), c, pi.with_objects(c, [patched]), "patch")
    assert [(r.row.answer.destination, r.row.port_text) for r in result.of(pi.NEWLY_ALLOWED)] == [("coredns", "53/UDP")]
    assert result.flows(pi.NEWLY_ALLOWED) == 3
    assert result.of(pi.NEWLY_DENIED) == []
    assert len(result.of(pi.UNCHANGED)) == 5
    assert result.summary("the last 5 min") == (
        "this change allows frontend → coredns 53/UDP, 3 flows in the last 5 min, and changes nothing else")


def test_what_if_a_new_policy_that_isolates_reports_what_it_newly_denies() -> None:
    c = cluster()
    lockdown = np("tester-lockdown", app("tester"), ns="dev", types=["Egress"], egress=[])
    result = pi.what_if(rows(c), c, pi.with_objects(c, [lockdown]), "lockdown")
    # tester's egress was not isolated; its groups are ingress verdicts at db and sig, whose
    # ingress side does not change: nothing newly denied at those sides.
    assert result.of(pi.NEWLY_DENIED) == []
    assert "alters none" in result.summary("5 min")


def test_advise_uses_the_forwarded_groups_and_its_what_if_allows_the_dns_drops() -> None:
    c = cluster()
    found = rows(c)
    advice = pi.advise_workload(found, c, "prod/frontend")
    assert advice.verified
    assert advice.networkpolicy["metadata"]["name"] == "frontend-least-privilege"
    result = pi.what_if(found, c, pi.with_objects(c, [advice.networkpolicy]), "advice")
    # The DNS drops (added deliberately) and frontend -> db, which Hubble forwarded (observed
    # traffic) though the policies deny it; the rest was allowed already.
    assert {(r.row.answer.destination, r.row.port_text) for r in result.of(pi.NEWLY_ALLOWED)} == {("coredns", "53/UDP"), ("db", "5432/TCP")}
    assert result.flows(pi.NEWLY_ALLOWED) == 3 + 1


def test_without_policy_data_every_group_is_not_evaluated_with_the_reason() -> None:
    found = pi.PolicyInsights().verdict_rows(groups(), None, generation=-1, span_s=100.0, no_data_reason="no policy data: --no-kubernetes")
    assert {r.answer.check for r in found} == {pi.UNEVALUATED}
    assert {r.answer.reason for r in found} == {"no policy data: --no-kubernetes"}


def test_answers_are_computed_once_per_policy_data_generation(monkeypatch) -> None:
    calls = []
    real = pi.answer_group
    monkeypatch.setattr(pi, "answer_group", lambda *a, **k: calls.append(1) or real(*a, **k))
    insights, c, g = pi.PolicyInsights(), cluster(), groups()
    insights.verdict_rows(g, c, 1, 100.0)
    insights.verdict_rows(g, c, 1, 100.0)
    assert len(calls) == len(g)
    insights.verdict_rows(g, c, 2, 100.0)
    assert len(calls) == 2 * len(g)


def test_a_drop_event_and_its_policy_verdict_event_are_one_denial() -> None:
    # Cilium reports each denied packet twice: a drop event (type 1, no policy named) and
    # a policy-verdict event (type 5) naming the policy. 2 packets -> 2 flows, not 4.
    deny = [policy("prod", "frontend-egress")]
    flows = [
        flow(1, FRONTEND, COREDNS, dport=53, proto="UDP", verdict="DROPPED", event=5, denied_by=deny),
        flow(1.000001, FRONTEND, COREDNS, dport=53, proto="UDP", verdict="DROPPED", event=1, drop_reason=133),
        flow(2, FRONTEND, COREDNS, dport=53, proto="UDP", verdict="DROPPED", event=5, denied_by=deny),
        flow(2.000001, FRONTEND, COREDNS, dport=53, proto="UDP", verdict="DROPPED", event=1, drop_reason=133),
        # An unnamed drop without a named twin stays (another port).
        flow(3, FRONTEND, COREDNS, dport=54, proto="UDP", verdict="DROPPED", event=1, drop_reason=133),
    ]
    result = FlowAggregates()
    result.ingest_raw(raw(*flows))
    assert len(result.policy_groups(None, T0 + 100)) == 3
    found = pi.PolicyInsights().verdict_rows(result.policy_groups(None, T0 + 100), cluster(), 1, 100.0)
    assert [(r.policy, r.decided_by, r.port_text, r.group.flows) for r in found] == [
        ("prod/frontend-egress", "hubble", "53/UDP", 2),
        ("prod/frontend-egress", "engine", "54/UDP", 1),
    ]
