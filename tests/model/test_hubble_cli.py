"""Filters back to `hubble observe` flags ("copy as command"), and filter text for a flow's peers."""

from __future__ import annotations

import shlex

import pytest

from kcockpit.model.filterlang import parse_filter
from kcockpit.model.hubble_cli import (
    filter_for_flow_peers,
    filter_for_source_drops,
    hubble_observe_args,
    hubble_observe_command,
)
from kcockpit.model.record import FlowRecord
from kcockpit.wire.hubble_pb import flow_pb

ARGS = [
    # (filter-bar text, the flags a user would type)
    ("", []),
    ("ns=otel-demo verdict=dropped", ["--namespace", "otel-demo", "--verdict", "DROPPED"]),
    ("from:label=app=frontend to:dns=*.google.com", ["--from-label", "app=frontend", "--to-fqdn", "*.google.com"]),
    ("k8s:app=frontend", ["--label", "k8s:app=frontend"]),
    ("!verdict=forwarded to:port=53", ["--not", "--verdict", "FORWARDED", "--to-port", "53"]),
    ("dropped egress udp", ["--verdict", "DROPPED", "--traffic-direction", "egress", "--protocol", "udp"]),
    ("workload=Deployment:frontend", ["--workload", "Deployment/frontend"]),
    ("from:identity=WORLD", ["--from-identity", "world"]),
    ("tcp-flag=syn+ack", ["--tcp-flags", "SYN,ACK"]),
    ("type=trace:to-endpoint", ["--type", "trace:to-endpoint"]),
    ("type=drop:policy-denied", ["--type", "drop:133"]),
    ("drop-reason=policy-denied", ["--drop-reason-desc", "POLICY_DENIED"]),
    ("http-status=5+ method=get path=/api", ["--http-status", "5+", "--http-method", "get", "--http-path", "/api"]),
    ("ipv4 node=worker-1", ["--ipv4", "--node-name", "worker-1"]),
    ("label=app in (a, b)", ["--label", "app in (a, b)"]),
    ("--namespace foo --not --verdict DROPPED --to-port 53 --last 5",
     ["--namespace", "foo", "--not", "--verdict", "DROPPED", "--to-port", "53"]),
    ("ns=otel-demo rcode=nxdomain", ["--namespace", "otel-demo"]),
]


@pytest.mark.parametrize("text,args", ARGS, ids=[a[0] or "empty" for a in ARGS])
def test_args_are_the_flags_a_user_would_type(text, args):
    assert hubble_observe_args(parse_filter(text)) == args


@pytest.mark.parametrize("text", [a[0] for a in ARGS if "rcode" not in a[0]])
def test_the_command_parses_back_to_the_same_filters(text):
    parsed = parse_filter(text)
    again = parse_filter(hubble_observe_command(parsed))
    assert again.whitelist == parsed.whitelist
    assert again.blacklist == parsed.blacklist


def test_command_is_shell_quoted_and_notes_client_side_filters():
    parsed = parse_filter("label=app in (a, b) rcode=nxdomain")
    command = hubble_observe_command(parsed, follow=True)
    assert command.startswith("hubble observe --follow --label 'app in (a, b)'")
    assert command.endswith("# rcode=NXDOMAIN: no hubble flag, kcockpit filters it locally")
    assert shlex.split(command, comments=True) == ["hubble", "observe", "--follow", "--label", "app in (a, b)"]


def test_or_groups_become_one_command_each_with_the_shared_negations():
    parsed = parse_filter("from:pod=a/x to:pod=b/y or from:pod=b/y to:pod=a/x !verdict=forwarded")
    assert hubble_observe_command(parsed).splitlines() == [
        "hubble observe --from-pod a/x --to-pod b/y --not --verdict FORWARDED",
        "hubble observe --from-pod b/y --to-pod a/x --not --verdict FORWARDED",
    ]
    with pytest.raises(ValueError, match="one hubble observe command per alternative"):
        hubble_observe_args(parsed)


def _endpoint(ns: str = "", pod: str = "", workload: str = "", identity: int = 0) -> flow_pb.Endpoint:
    ep = flow_pb.Endpoint(namespace=ns, pod_name=pod, identity=identity)
    if workload:
        ep.workloads.add(name=workload, kind="Deployment")
    return ep


FRONTEND = _endpoint("otel-demo", "frontend-6d9f7c-abcde", "frontend", 12345)
CART = _endpoint("otel-demo", "cartservice-7f8b9-xyz12", "cartservice", 23456)
BARE_POD = _endpoint("default", "debug-shell", "", 777)
WORLD = _endpoint(identity=2)


def _flow(src, dst, src_ip="10.0.1.5", dst_ip="10.0.2.7", verdict=flow_pb.FORWARDED, dst_names=()) -> flow_pb.Flow:
    flow = flow_pb.Flow(verdict=verdict, source=src, destination=dst, destination_names=list(dst_names))
    flow.IP.source, flow.IP.destination = src_ip, dst_ip
    flow.l4.TCP.source_port, flow.l4.TCP.destination_port = 40000, 7070
    return flow


def _reverse(flow: flow_pb.Flow) -> flow_pb.Flow:
    back = _flow(flow.destination, flow.source, flow.IP.destination, flow.IP.source)
    back.source_names.extend(flow.destination_names)
    return back


PEERS = [
    (_flow(FRONTEND, CART),
     "from:ns=otel-demo from:workload=frontend to:ns=otel-demo to:workload=cartservice "
     "or from:ns=otel-demo from:workload=cartservice to:ns=otel-demo to:workload=frontend"),
    (_flow(BARE_POD, CART),
     "from:pod=default/debug-shell to:ns=otel-demo to:workload=cartservice "
     "or from:ns=otel-demo from:workload=cartservice to:pod=default/debug-shell"),
    (_flow(FRONTEND, WORLD, dst_ip="142.250.74.100", dst_names=["www.google.com"]),
     "from:ns=otel-demo from:workload=frontend to:fqdn=www.google.com "
     "or from:fqdn=www.google.com to:ns=otel-demo to:workload=frontend"),
    (_flow(WORLD, FRONTEND, src_ip="203.0.113.9"),
     "from:ip=203.0.113.9 to:ns=otel-demo to:workload=frontend "
     "or from:ns=otel-demo from:workload=frontend to:ip=203.0.113.9"),
]


@pytest.mark.parametrize("flow,text", PEERS)
def test_peer_filter_matches_both_directions_and_nothing_else(flow, text):
    assert filter_for_flow_peers(FlowRecord.from_flow(flow)) == text
    matcher = parse_filter(text).matcher()
    assert matcher.matches(flow)
    assert matcher.matches(_reverse(flow))
    assert not matcher.matches(_flow(flow.source, BARE_POD if flow.destination != BARE_POD else FRONTEND,
                                     flow.IP.source, "10.9.9.9"))


def test_source_drop_filter_keeps_only_drops_of_that_source():
    drop = _flow(FRONTEND, CART, verdict=flow_pb.DROPPED)
    text = filter_for_source_drops(FlowRecord.from_flow(drop))
    assert text == "from:ns=otel-demo from:workload=frontend verdict=dropped"
    matcher = parse_filter(text).matcher()
    assert matcher.matches(drop)
    assert matcher.matches_record(FlowRecord.from_flow(drop))
    assert not matcher.matches(_flow(FRONTEND, CART))
    assert not matcher.matches(_flow(CART, FRONTEND, verdict=flow_pb.DROPPED))
    assert hubble_observe_args(parse_filter(text)) == [
        "--from-namespace", "otel-demo", "--from-workload", "frontend", "--verdict", "DROPPED",
    ]
