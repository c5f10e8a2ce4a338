"""The flow generator: deterministic, believable, and the scenario phases really change traffic."""

from collections import Counter

import pytest

from kcockpit.sim.clock import ManualClock
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.traffic import CALIBRATED, Simulator
from kcockpit.sim.world import FRONTEND_POLICY, World
from kcockpit.wire.hubble_pb import flow_pb

SECOND = 1_000_000_000
WORLD = World.build(5)


def run(phase: str, seconds: float = 40, seed: int = 5, rate: float = 400):
    clock = ManualClock()
    sim = Simulator(WORLD, seed=seed, clock=clock, scenario=Scenario(clock, mode=phase), rate=rate)
    return sim.advance(clock.now_ns() + int(seconds * SECOND))


@pytest.fixture(scope="module")
def healthy():
    return [r.flow for r in run("healthy") if r.HasField("flow")]


@pytest.fixture(scope="module")
def broken():
    return [r.flow for r in run("broken") if r.HasField("flow")]


@pytest.fixture(scope="module")
def fixed():
    return [r.flow for r in run("fixed") if r.HasField("flow")]


def is_frontend(endpoint) -> bool:
    return endpoint.namespace == "otel-demo" and "k8s:app=frontend" in endpoint.labels


def test_same_seed_and_clock_give_the_same_flows_whatever_the_tick_size():
    def serialized(seed: int, steps: int):
        clock = ManualClock()
        sim = Simulator(WORLD, seed=seed, clock=clock, scenario=Scenario(clock, durations_s={"healthy": 3, "broken": 3}))
        out = []
        for _ in range(steps):
            clock.advance(9.0 / steps)
            out.extend(r.SerializeToString() for r in sim.advance())
        return out

    one_step = serialized(11, 1)
    assert len(one_step) > 500
    assert serialized(11, 90) == one_step
    assert serialized(12, 1) != one_step


def test_time_order_rate_and_listener_sees_everything():
    clock = ManualClock()
    sim = Simulator(WORLD, seed=2, clock=clock, scenario=Scenario(clock, mode="healthy"), rate=500)
    seen = []
    sim.add_listener(seen.append)
    out = []
    for _ in range(30):
        clock.advance(1)
        out.extend(sim.advance())
    assert seen == out
    times = [r.time.ToNanoseconds() for r in out]
    assert times == sorted(times) and times[-1] <= clock.now_ns()
    assert 0.8 * 500 * 30 < len(out) < 1.2 * 500 * 30
    assert all(r.node_name.startswith("kind-kind/") for r in out)
    flows = [r.flow for r in out if r.HasField("flow")]
    assert len({f.uuid for f in flows}) == len(flows)
    assert all(f.emitter.name == "Hubble" and f.time == r.time for f, r in zip(flows, (r for r in out if r.HasField("flow"))))


def test_event_kinds_and_summaries_as_hubble_fills_them(healthy):
    kinds = Counter(f.event_type.type for f in healthy)
    assert kinds[4] and kinds[5] and kinds[129]
    syn = next(f for f in healthy if f.event_type.type == 4 and f.l4.TCP.flags.SYN and not f.l4.TCP.flags.ACK)
    assert syn.Summary == "TCP Flags: SYN" and syn.trace_reason == flow_pb.NEW and syn.is_reply.value is False
    synack = next(f for f in healthy if f.l4.TCP.flags.SYN and f.l4.TCP.flags.ACK)
    assert synack.Summary == "TCP Flags: SYN, ACK" and synack.trace_reason == flow_pb.REPLY and synack.is_reply.value
    assert any(f.Summary == "TCP Flags: ACK, PSH" for f in healthy)
    assert any(f.Summary == "TCP Flags: ACK, FIN" for f in healthy)
    # Observation points: the sender's node sees to-overlay/to-stack (egress), the receiver's to-endpoint.
    for f in healthy:
        if f.event_type.type != 4:
            continue
        assert f.event_type.sub_type in (0, 1, 3, 4)
        local_is_source = f.trace_observation_point in (flow_pb.TO_OVERLAY, flow_pb.TO_STACK, flow_pb.TO_PROXY)
        expected = flow_pb.EGRESS if local_is_source != f.is_reply.value else flow_pb.INGRESS
        assert f.traffic_direction == expected, f
    grpc_response = next(f for f in healthy if f.l7.http.code and f.l7.http.protocol == "HTTP/2")
    assert grpc_response.is_reply.value and grpc_response.l7.type == flow_pb.RESPONSE
    assert grpc_response.l7.http.url.startswith("http://") and "/oteldemo." in grpc_response.l7.http.url
    assert grpc_response.Summary.startswith(f"HTTP/2 {grpc_response.l7.http.code} ")
    request = next(f for f in healthy if f.l7.http.protocol == "HTTP/2" and f.l7.type == flow_pb.REQUEST)
    assert {h.key: h.value for h in request.l7.http.headers}["content-type"] == "application/grpc"
    products = [f for f in healthy if "/api/products/" in f.l7.http.url]
    assert products and all(f.destination.pod_name.startswith("frontend-") for f in products if not f.is_reply.value)


def test_dns_walks_the_search_path_with_nxdomain_and_answers(healthy):
    answers = [f for f in healthy if f.l7.WhichOneof("record") == "dns" and f.l7.type == flow_pb.RESPONSE]
    rcodes = Counter(f.l7.dns.rcode for f in answers)
    assert rcodes[0] and rcodes[3]
    nx = next(f for f in answers if f.l7.dns.rcode == 3)
    assert nx.l7.dns.query.endswith(".cluster.local.") and nx.l7.dns.query.count("svc.cluster.local") + nx.l7.dns.query.count("cluster.local.cluster.local") >= 1
    assert "Non-Existent Domain" in nx.Summary
    stripe = [f for f in answers if f.l7.dns.query == "api.stripe.com." and f.l7.dns.rcode == 0]
    assert stripe and any(f.l7.dns.ips for f in stripe)
    assert {q for f in answers for q in f.l7.dns.qtypes} == {"A", "AAAA"}
    assert all(f.destination_service.name == "" and f.source_service.name == "kube-dns" for f in answers)
    # Truncated answers are asked again over TCP, what the kube-dns dns-tcp port is for.
    over_tcp = [f for f in answers if f.l4.TCP.source_port == 53]
    assert over_tcp and all(f.l7.dns.rcode == 0 and f.l7.dns.ips for f in over_tcp)
    world = [f for f in healthy if f.destination.identity == 2]
    assert world and any("api.stripe.com" in f.destination_names for f in world)


def test_reserved_identities_host_probes_apiserver_remote_node(healthy):
    identities = {f.source.identity for f in healthy} | {f.destination.identity for f in healthy}
    assert {1, 2, 6, 7} <= identities
    probe = next(f for f in healthy if f.source.identity == 1)
    assert probe.source.labels == ["reserved:host"] and probe.destination.pod_name


def test_healthy_frontend_is_not_isolated(healthy):
    assert not [f for f in healthy if is_frontend(f.source) and f.verdict == flow_pb.DROPPED]
    assert not [f for f in healthy if f.l7.http.code >= 500]
    drops = [f for f in healthy if f.verdict == flow_pb.DROPPED]
    # The only baseline drops: netshoot poking Prometheus, denied by monitoring's default-deny.
    assert all(f.source.pod_name == "netshoot" and f.traffic_direction == flow_pb.INGRESS for f in drops)


def test_broken_frontend_dns_is_dropped_by_the_policy(broken):
    dns_drops = [
        f for f in broken if is_frontend(f.source) and f.l4.UDP.destination_port == 53 and f.verdict == flow_pb.DROPPED
    ]
    assert dns_drops
    verdicts = [f for f in dns_drops if f.event_type.type == 5]
    drops = [f for f in dns_drops if f.event_type.type == 1]
    assert verdicts and drops
    for f in dns_drops:
        assert f.drop_reason_desc == flow_pb.POLICY_DENIED and f.drop_reason == 133
        assert f.traffic_direction == flow_pb.EGRESS and not f.HasField("is_reply")
        assert "k8s:k8s-app=kube-dns" in f.destination.labels and f.destination_service.name == "kube-dns"
    assert all(f.event_type.sub_type == 133 for f in drops)
    assert all([p.name for p in f.egress_denied_by] == [FRONTEND_POLICY] for f in verdicts)
    assert verdicts[0].egress_denied_by[0].namespace == "otel-demo"
    # No DNS answers reach the frontend, it never calls a backend, and shoppers get 500s.
    assert not [f for f in broken if is_frontend(f.destination) and f.l7.WhichOneof("record") == "dns"]
    assert not [f for f in broken if is_frontend(f.source) and f.destination.labels and "k8s:app=backend" in f.destination.labels]
    errors = [f for f in broken if f.l7.http.code == 500 and f.destination.pod_name.startswith("loadgenerator-")]
    assert errors and all(f.l7.latency_ns >= 5 * SECOND for f in errors)


def test_broken_phase_really_changes_traffic(healthy, broken):
    assert len(broken) < 0.8 * len(healthy)
    calls = lambda flows: sum(1 for f in flows if f.l7.http.url and "/oteldemo." in f.l7.http.url)  # noqa: E731
    assert calls(broken) < 0.3 * calls(healthy)


def test_fixed_dns_is_forwarded_and_allowed_by_the_policy(fixed):
    assert not [f for f in fixed if is_frontend(f.source) and f.verdict == flow_pb.DROPPED]
    dns_verdicts = [f for f in fixed if is_frontend(f.source) and f.event_type.type == 5 and f.l4.UDP.destination_port == 53]
    assert dns_verdicts
    for f in dns_verdicts:
        assert f.verdict == flow_pb.FORWARDED and [p.name for p in f.egress_allowed_by] == [FRONTEND_POLICY]
        assert f.policy_match_type == 2  # L3-L4: the rule names the peer and the ports
    answers = [f for f in fixed if is_frontend(f.destination) and f.l7.dns.rcode == 0 and f.l7.type == flow_pb.RESPONSE]
    assert answers
    backend = [
        f
        for f in fixed
        if is_frontend(f.source)
        and f.event_type.type == 5
        and f.l4.TCP.destination_port not in (0, 53)
        and f.traffic_direction == flow_pb.EGRESS
    ]
    assert backend and all(f.egress_allowed_by[0].name == FRONTEND_POLICY and f.policy_match_type == 1 for f in backend)
    assert not [f for f in fixed if f.l7.http.code >= 500]


def test_lost_events_now_and_then():
    lost = [r for r in run("healthy", seconds=120, rate=600) if r.HasField("lost_events")]
    assert lost and all(r.lost_events.num_events_lost > 0 and r.node_name for r in lost)


def test_invalid_rate_is_refused():
    with pytest.raises(ValueError, match="flow rate must be above 0"):
        Simulator(WORLD, rate=0)


def test_scenario_timeline_and_manual_control():
    clock = ManualClock()
    scenario = Scenario(clock, durations_s={"healthy": 10, "broken": 5, "fixed": 5, "dns-overload": 5})
    changes = []
    scenario.add_listener(lambda phase, at: changes.append(phase))
    start = clock.now_ns()
    assert [scenario.phase_at(start + s * SECOND) for s in (0, 9, 10, 14, 15, 19, 20, 24, 25)] == [
        "healthy", "healthy", "broken", "broken", "fixed", "fixed", "dns-overload", "dns-overload", "healthy",
    ]  # fmt: skip
    clock.advance(11)
    assert scenario.phase == "broken" and changes == ["broken"]
    assert scenario.seconds_left() == pytest.approx(4)
    assert scenario.next_phase() == "fixed" and scenario.manual and scenario.seconds_left() is None
    clock.advance(100)
    assert scenario.phase == "fixed"
    scenario.set_phase("healthy")
    assert changes == ["broken", "fixed", "healthy"]
    assert scenario.phase_at(start + 10 * SECOND + 5) == "broken"  # the past keeps its phases
    with pytest.raises(ValueError, match="unknown scenario phase"):
        scenario.set_phase("chaos")
    once = Scenario(clock, loop=False, durations_s={"healthy": 1, "broken": 1, "fixed": 1, "dns-overload": 1})
    assert once.phase_at(once.start_ns + 100 * SECOND) == "dns-overload"


@pytest.mark.parametrize("seed", [1, 3])
def test_the_counting_calibration_gives_the_figure_of_a_full_run(seed):
    """The calibration counts flows without building them (it is on the way to the demo's
    first frame); a run that builds and queues every flow must count the same."""
    from kcockpit.sim import traffic

    world = World.build(seed)
    clock = ManualClock()
    full = Simulator(world, seed=12345, clock=clock, scenario=Scenario(clock, mode="healthy", start_ns=0),
                     rate=1.0, start_ns=0, flows_per_activity=1.0)
    for _ in range(traffic.CALIBRATION_ACTIVITIES):
        full._run_activity(0)
    assert traffic._measure_flows_per_activity(world, clock) == len(full._heap) / traffic.CALIBRATION_ACTIVITIES


@pytest.mark.parametrize("seed", sorted(CALIBRATED))
def test_the_shipped_calibration_is_what_the_traffic_model_measures(seed):
    """The default seed's figure is shipped (the demo's first frame does not wait for it)."""
    from kcockpit.sim import traffic

    measured = traffic._measure_flows_per_activity(World.build(seed), ManualClock())
    assert traffic.CALIBRATED[seed] == measured, (
        f"the traffic model changed: set CALIBRATED[{seed}] = {measured!r} in kcockpit/sim/traffic.py")
