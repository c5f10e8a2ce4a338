"""The talk's DNS story end to end: simulator flows + the world's policies per phase -> engine,
explanation, Hubble cross-check, proposed fix, and the fix's effect on the whole cluster."""

from __future__ import annotations

import functools

import pytest

from kcockpit.model.record import FlowRecord
from kcockpit.policy import explain, fix, flows
from kcockpit.policy.cluster import NETWORKPOLICIES, Cluster
from kcockpit.policy.engine import Engine
from kcockpit.policy.results import Connection
from kcockpit.sim.clock import ManualClock
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.traffic import Simulator
from kcockpit.sim.world import FRONTEND_POLICY, PHASES, World

TALK_SENTENCE = (
    "DENIED at egress of otel-demo/frontend: isolated by otel-demo/frontend-egress-allow-to-backend; "
    "its only rule allows app=backend, not kube-system/kube-dns on UDP 53."
)


@functools.cache
def world() -> World:
    return World.build(7)


@functools.cache
def phase_flows(phase: str) -> tuple[FlowRecord, ...]:
    clock = ManualClock()
    simulator = Simulator(world(), seed=7, clock=clock, scenario=Scenario(clock, mode=phase))
    return tuple(FlowRecord.from_flow(r.flow) for r in simulator.take(2500))


def cluster(phase: str) -> Cluster:
    return Cluster(world().k8s_objects(phase))


def frontend_dns_flows(phase: str) -> list[FlowRecord]:
    found = []
    for record in phase_flows(phase):
        source, destination = (record.destination, record.source) if record.is_reply else (record.source, record.destination)
        if source.namespace == "otel-demo" and source.app() == "frontend" and destination.service == "kube-system/kube-dns":
            if record.protocol == "UDP" and destination.port == 53:
                found.append(record)
    assert found, f"no frontend DNS flow in phase {phase}"
    return found


@pytest.mark.parametrize("phase", PHASES)
def test_frontend_dns_verdict_per_phase_matches_hubble(phase: str) -> None:
    snapshot = cluster(phase)
    engine = Engine(snapshot)
    expected = "denied" if phase == "broken" else "allowed"
    for record in frontend_dns_flows(phase):
        evaluation = engine.evaluate(flows.connection(record, snapshot))
        assert evaluation.verdict == expected
        check = flows.cross_check(evaluation, record)
        assert check.agrees, check.notes
    if phase == "broken":
        assert explain.sentence(evaluation) == TALK_SENTENCE
        assert [str(p) for p in evaluation.egress.deciding] == [f"otel-demo/{FRONTEND_POLICY}"]
        assert evaluation.egress.rules[0].result == "peer"


def test_every_simulated_flow_agrees_with_the_engine_in_the_broken_phase() -> None:
    snapshot = cluster("broken")
    engine = Engine(snapshot)
    disagreements = []
    for record in phase_flows("broken"):
        if record.protocol not in ("TCP", "UDP"):
            continue
        if record.destination.workload_name() == "otel-demo/kafka" or record.source.workload_name() == "otel-demo/kafka":
            continue  # kafka's endpoint runs in policy audit mode: what the policies deny goes through (AUDIT)
        check = flows.cross_check(engine.evaluate(flows.connection(record, snapshot)), record)
        if not check.agrees:
            disagreements.append(check.notes)
    assert not disagreements


def reachability(snapshot: Cluster) -> dict[tuple, str]:
    """Verdict for every pod pair on every port the destination listens on (plus DNS on both protocols)."""
    engine = Engine(snapshot)
    pods = [p for p in snapshot.pods if not p.host_network]
    table = {}
    for source in pods:
        for destination in pods:
            ports = {(p.port, p.protocol) for p in destination.ports or ()} | {(53, "UDP"), (53, "TCP")}
            for port, protocol in ports:
                table[(source.name, destination.name, port, protocol)] = engine.evaluate(
                    Connection(source, destination, port, protocol)
                ).verdict
    return table


def test_proposed_fix_allows_dns_and_nothing_unrelated() -> None:
    snapshot = cluster("broken")
    record = frontend_dns_flows("broken")[0]
    evaluation = Engine(snapshot).evaluate(flows.connection(record, snapshot))
    proposals = fix.propose(snapshot, evaluation)
    assert [p.kind for p in proposals] == [fix.PATCH, fix.NEW_NETWORKPOLICY, fix.NEW_CILIUM_POLICY]
    patch = proposals[0]
    assert patch.verified and not patch.unrelated
    assert patch.title.startswith(f"add egress rule 2 to otel-demo/{FRONTEND_POLICY}: k8s-app=kube-dns in namespace kube-system")
    rule = patch.json_patch[0]["value"]
    assert rule == {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    assert {str(o) for o in patch.opens} == {
        "otel-demo/frontend -> kube-system/coredns on UDP 53",
        "otel-demo/frontend -> kube-system/coredns on TCP 53",
    }
    # Apply it and compare the whole cluster's reachability before and after.
    others = [p for p in snapshot.networkpolicies if p["metadata"]["name"] != FRONTEND_POLICY]
    fixed = snapshot.replace(NETWORKPOLICIES, others + [patch.policy])
    assert Engine(fixed).evaluate(flows.connection(record, fixed)).verdict == "allowed"
    before, after = reachability(snapshot), reachability(fixed)
    opened = {key for key in before if before[key] != after[key]}
    assert opened
    for source, destination, port, protocol in opened:
        assert source.startswith("frontend-") and destination.startswith("coredns-") and port == 53, (source, destination, port)
        assert after[(source, destination, port, protocol)] == "allowed"
    # The proposal is the world's own fixed policy, semantically.
    assert after == reachability(cluster("fixed"))


def test_every_proposal_is_ready_to_apply_yaml() -> None:
    snapshot = cluster("broken")
    evaluation = Engine(snapshot).evaluate(flows.connection(frontend_dns_flows("broken")[0], snapshot))
    for proposal in fix.propose(snapshot, evaluation):
        text = proposal.yaml()
        assert text.startswith(f"apiVersion: {proposal.policy['apiVersion']}\nkind: {proposal.policy['kind']}\n")
        assert "uid" not in text and "resourceVersion" not in text
        assert proposal.verified, proposal.to_dict()


def test_stale_policy_data_is_flagged_by_the_cross_check() -> None:
    dropped = frontend_dns_flows("broken")[0]
    assert dropped.verdict_name == "DROPPED" and dropped.drop_reason_name == "POLICY_DENIED"
    fixed = cluster("fixed")  # the policy data already has the fix, Hubble saw the old policy
    check = flows.cross_check(Engine(fixed).evaluate(flows.connection(dropped, fixed)), dropped)
    assert not check.agrees
    assert check.notes[0] == "Hubble dropped this flow (POLICY_DENIED) but the policies allow it: the policy data may be stale or incomplete"
    forwarded = next(r for r in frontend_dns_flows("healthy") if r.verdict_name == "FORWARDED" and not r.is_reply)
    broken = cluster("broken")
    check = flows.cross_check(Engine(broken).evaluate(flows.connection(forwarded, broken)), forwarded)
    assert not check.agrees and check.notes[0].startswith("Hubble forwarded this flow but the policies deny it")


def test_replies_are_evaluated_as_the_original_connection() -> None:
    reply = next(r for r in phase_flows("healthy") if r.is_reply and r.protocol == "UDP" and r.source.port == 53)
    conn = flows.connection(reply, cluster("healthy"))
    assert conn.source.namespace == "otel-demo" and conn.destination.labels.get("k8s-app") == "kube-dns"
    assert conn.port == 53 and conn.protocol == "UDP"
    assert conn.destination.ports is not None  # resolved to the cluster's pod object (named ports known)


def test_explain_flow_bundles_what_the_policies_tab_shows() -> None:
    record = frontend_dns_flows("broken")[0]
    verdict = flows.explain_flow(record, cluster("broken"))
    assert verdict.sentence == TALK_SENTENCE and verdict.cross_check.agrees
    assert verdict.details[0] == "egress of otel-demo/frontend: denied, isolated by otel-demo/frontend-egress-allow-to-backend"
    assert [f.kind for f in verdict.fixes] == [fix.PATCH, fix.NEW_NETWORKPOLICY, fix.NEW_CILIUM_POLICY]
    assert flows.explain_flow(frontend_dns_flows("fixed")[0], cluster("fixed")).fixes == ()
