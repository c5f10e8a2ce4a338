"""The Services tab's tree builder (model/service_tree.py) on hand-made edges and flows:
roots, children by port, back-references for cycles, inversion, windows, the edge filter."""

from __future__ import annotations

from handmade_flows import (
    CART, COREDNS, FRONTEND, HOST, LOADGEN, STRIPE, T0, Reserved, flow, raw,
)
from kcockpit.model.aggregates import Endpoint, FlowAggregates, ServiceEdge
from kcockpit.model.filterlang import parse_filter
from kcockpit.model.record import FlowRecord
from kcockpit.model.service_tree import (
    build_tree, default_collapsed, edge_filter, is_unhealthy, visible_rows,
)

NS = 1_000_000_000


def e(client: str, server: str, port: int = 8080, protocol: str = "TCP", *, flows: int = 10, dropped: int = 0,
      responses: int = 0, errors: int = 0, detail: str = "", reasons=None, last_s: int = 100) -> ServiceEdge:
    return ServiceEdge(
        Endpoint(client), Endpoint(server, detail), port, protocol, flows, flows - dropped, dropped,
        reasons or ({"POLICY_DENIED": dropped} if dropped else {}), responses, responses, errors, None,
        "server" if responses else "", {500: errors, 200: responses - errors} if responses else {},
        (T0 + 1) * NS, (T0 + last_s) * NS,
    )


def shape(tree) -> list[str]:
    return [f"{row.prefix}{row.node.endpoint.name}{' ' + str(row.node.port) if row.node.port else ''}"
            f"{' ↺' if row.node.backref else ''}" for row in visible_rows(tree, set())]


DEMO = [
    e("otel-demo/loadgenerator", "otel-demo/frontend", 8080, flows=100, responses=50, errors=50),
    e("otel-demo/frontend", "kube-system/coredns", 53, "UDP", flows=80, dropped=80),
    e("otel-demo/frontend", "otel-demo/cartservice", 8080, flows=40),
    e("otel-demo/cartservice", "otel-demo/redis", 6379, flows=30),
    e("otel-demo/cartservice", "kube-system/coredns", 53, "UDP", flows=5),
    e("host", "otel-demo/frontend", 8080, flows=3),
    e("host", "otel-demo/loadgenerator", 8089, flows=3),
    e("world", "otel-demo/frontend-proxy", 8080, flows=7),
    e("otel-demo/frontend-proxy", "otel-demo/frontend", 8080, flows=6),
]


def test_roots_are_entry_points_and_uncalled_workloads_then_reserved_callers() -> None:
    tree = build_tree(DEMO, 60.0)
    assert [(r.endpoint.name, r.entry) for r in tree.roots] == [
        ("otel-demo/frontend-proxy", "world"),  # reached from world
        ("otel-demo/loadgenerator", "uncalled"),  # only host (kubelet probes) calls it
        ("host", "caller"),  # folded by default, so that every edge is somewhere
    ]
    assert tree.roots[0].edge is not None and tree.roots[0].edge.flows == 7
    assert default_collapsed(tree) == {tree.roots[2].key}


def test_children_by_port_and_a_workload_is_shown_in_full_once() -> None:
    tree = build_tree(DEMO, 60.0)
    assert shape(tree) == [
        "otel-demo/frontend-proxy 8080",  # its entry edge from world
        "└─otel-demo/frontend 8080",
        "  ├─kube-system/coredns 53",
        "  └─otel-demo/cartservice 8080",
        "    ├─otel-demo/redis 6379",
        "    └─kube-system/coredns 53",
        "otel-demo/loadgenerator",
        "└─otel-demo/frontend 8080 ↺",  # shown in full under frontend-proxy (shallower)
        "host",
        "├─otel-demo/frontend 8080 ↺",
        "└─otel-demo/loadgenerator 8089 ↺",
    ]


def test_cycles_never_recurse_and_an_unreached_cycle_gets_a_root() -> None:
    edges = [e("a/x", "a/y", 1, flows=5), e("a/y", "a/z", 2, flows=4), e("a/z", "a/x", 3, flows=3)]
    tree = build_tree(edges, 60.0)
    assert [r.entry for r in tree.roots] == ["cycle"]
    assert shape(tree) == ["a/x", "└─a/y 1", "  └─a/z 2", "    └─a/x 3 ↺"]
    assert sum(1 for _ in tree.nodes()) == 4


def test_every_edge_appears_in_the_tree() -> None:
    tree = build_tree(DEMO, 60.0)
    shown = {id(node.edge) for node in tree.nodes() if node.edge is not None}
    for edge in DEMO:
        if edge.client.name != "world":
            assert id(edge) in shown, edge


def test_sorting_children_by_drops_errors_latency_and_rate() -> None:
    edges = [e("a/c", "a/s1", 1, flows=100), e("a/c", "a/s2", 2, flows=10, dropped=5),
             e("a/c", "a/s3", 3, flows=20, responses=10, errors=9)]
    children = lambda sort: [n.endpoint.name for n in build_tree(edges, 60.0, sort=sort).roots[0].children]  # noqa: E731
    assert children("rate") == ["a/s1", "a/s3", "a/s2"]
    assert children("drops") == ["a/s2", "a/s1", "a/s3"]  # ties on drops: busiest first
    assert children("errors") == ["a/s3", "a/s1", "a/s2"]  # no HTTP ranks after any error ratio


def test_inverted_tree_shows_who_calls_a_workload() -> None:
    tree = build_tree(DEMO, 60.0, invert="kube-system/coredns")
    assert tree.inverted and len(tree.roots) == 1
    assert shape(tree) == [
        "kube-system/coredns",
        "├─otel-demo/frontend 53",
        "│ ├─otel-demo/loadgenerator 8080",
        "│ │ └─host 8089",
        "│ ├─otel-demo/frontend-proxy 8080",
        "│ │ └─world 8080",
        "│ └─host 8080",
        "└─otel-demo/cartservice 53",
        "  └─otel-demo/frontend 8080 ↺",
    ]


def test_health_thresholds() -> None:
    assert is_unhealthy(e("a/c", "a/s", flows=100, dropped=2))  # 2% dropped
    assert not is_unhealthy(e("a/c", "a/s", flows=100, dropped=1))  # 1% is the threshold
    assert is_unhealthy(e("a/c", "a/s", responses=100, errors=6))
    assert not is_unhealthy(e("a/c", "a/s", responses=100, errors=5))


def test_name_filter_keeps_matches_and_their_ancestors_and_collapse_hides_subtrees() -> None:
    tree = build_tree(DEMO, 60.0)
    rows = visible_rows(tree, set(), "redis")
    assert [r.node.endpoint.name for r in rows] == [
        "otel-demo/frontend-proxy", "otel-demo/frontend", "otel-demo/cartservice", "otel-demo/redis"]
    assert [r.matched for r in rows] == [False, False, False, True]
    frontend = tree.roots[0].children[0]
    rows = visible_rows(tree, {frontend.key})
    assert [r.node.endpoint.name for r in rows][:3] == ["otel-demo/frontend-proxy", "otel-demo/frontend", "otel-demo/loadgenerator"]
    assert rows[1].collapsed


# --- on counted flows: windows and the drill-down filter ------------------------------------------

def _counted() -> tuple[FlowAggregates, list[bytes]]:
    flows = []
    # loadgenerator → frontend: HTTP at t=10..19 (old), frontend → coredns drops at t=290..299
    for i in range(10):
        flows.append(flow(10 + i, LOADGEN, FRONTEND, dport=8080, sport=41000 + i))
        flows.append(flow(10 + i, FRONTEND, LOADGEN, sport=8080, dport=41000 + i, reply=True))
        flows.append(flow(290 + i, FRONTEND, COREDNS, dport=53, proto="UDP", verdict="DROPPED", drop_reason=133, event=1))
        flows.append(flow(290 + i, FRONTEND, CART, dport=8080))
        flows.append(flow(290 + i, HOST, CART, dport=8080))
    raws = raw(*flows)
    aggregates = FlowAggregates()
    aggregates.ingest_raw(raws)
    return aggregates, raws


def test_windows_change_what_the_tree_holds() -> None:
    aggregates, _ = _counted()
    now = T0 + 300
    recent = build_tree(aggregates.services(60, now), aggregates.window(60, now).span_s)
    everything = build_tree(aggregates.services(None, now), aggregates.window(None, now).span_s)
    assert [r.endpoint.name for r in recent.roots] == ["otel-demo/frontend", "host"]
    assert [r.endpoint.name for r in everything.roots] == ["otel-demo/loadgenerator", "host"]
    dns = next(n for n in recent.nodes() if n.endpoint.name == "kube-system/coredns")
    assert dns.unhealthy and dns.edge.dropped == 10 and dns.edge.top_drop_reason == "POLICY_DENIED"


def test_the_edge_filter_matches_exactly_that_edges_flows() -> None:
    aggregates, raws = _counted()
    for edge in aggregates.services(None, T0 + 300):
        matcher = parse_filter(edge_filter(edge.client, edge.server, edge.port, edge.protocol)).matcher()
        matched = sum(1 for r in raws if matcher.matches_record(FlowRecord.from_bytes(r)))
        assert matched == edge.flows, (edge.client, edge.server, edge.port, edge_filter(edge.client, edge.server, edge.port, edge.protocol))


def test_the_edge_filter_names_world_and_reserved_endpoints() -> None:
    text = edge_filter(Endpoint("otel-demo/cartservice"), Endpoint("world", "api.stripe.com"), 443, "TCP")
    assert text.startswith("from:ns=otel-demo from:workload=cartservice to:fqdn=api.stripe.com to:port=443")
    parse_filter(text)
    parse_filter(edge_filter(Endpoint("host"), Endpoint("otel-demo/cartservice"), 8080, "TCP"))
    stripe = Reserved(2, "203.0.113.7", ("api.stripe.com",))
    aggregates = FlowAggregates()
    raws = raw(flow(1, CART, stripe, dport=443), flow(2, CART, STRIPE, dport=443))
    aggregates.ingest_raw(raws)
    (edge,) = aggregates.services(None)
    matcher = parse_filter(edge_filter(edge.client, edge.server, edge.port, edge.protocol)).matcher()
    assert sum(matcher.matches_record(FlowRecord.from_bytes(r)) for r in raws) == edge.flows == 2

