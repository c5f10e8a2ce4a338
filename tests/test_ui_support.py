"""Shared pieces for the UI tests: deterministic flows, an offline session, a fixed clock.

Also tests of the UI's pure helpers (columns, row buffer, status line, rate meter).
"""

from __future__ import annotations

from datetime import timezone

import pytest

from kcockpit.model.record import FlowRecord
from kcockpit.model.store import FlowStore
from kcockpit.ui.tabs.flows import FlowsTab
from kcockpit.wire.hubble_pb import flow_pb

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def _endpoint(namespace: str, pod: str, workload: str, identity: int, app: str = ""):
    labels = [f"k8s:app={app or workload}", f"k8s:io.kubernetes.pod.namespace={namespace}"] if namespace else []
    endpoint = flow_pb.Endpoint(namespace=namespace, pod_name=pod, identity=identity, labels=labels)
    if workload:
        endpoint.workloads.add(name=workload, kind="Deployment")
    return endpoint


FRONTEND = ("otel-demo", "frontend-6d9c7b8f5-x2x9q", "frontend", 21845)
CART = ("otel-demo", "cartservice-7f6b9d5c4-m8k2p", "cartservice", 40112)
COREDNS = ("kube-system", "coredns-5d78c9869d-7wq4z", "coredns", 10452)
LOADGEN = ("otel-demo", "loadgenerator-84f8d6c9b7-2l9xv", "loadgenerator", 33218)


def make_flow(
    index: int,
    source=FRONTEND,
    destination=CART,
    *,
    verdict: int = flow_pb.FORWARDED,
    drop_reason: int = 0,
    udp: bool = False,
    port: int = 7070,
    flags: tuple[str, ...] = ("ACK", "PSH"),
    dns: tuple[str, int, int] | None = None,  # (query, l7 type, rcode)
    http: tuple[str, str, int, int] | None = None,  # (method, url, code, l7 type)
    direction: int = flow_pb.EGRESS,
    reply: bool | None = None,  # set is_reply; a reply comes from `port` to an ephemeral port
) -> FlowRecord:
    flow = flow_pb.Flow(
        verdict=verdict,
        drop_reason_desc=drop_reason,
        node_name=f"kind-worker{index % 3 + 1}" if index % 4 else "kind-control-plane",
        traffic_direction=direction,
        uuid=f"00000000-0000-4000-8000-{index:012d}",
        source=_endpoint(*source),
        destination=_endpoint(*destination),
        Type=flow_pb.L3_L4,
    )
    flow.time.FromNanoseconds(T0 + index * 37_000_000)
    flow.IP.source = f"10.244.1.{10 + index % 50}"
    flow.IP.destination = f"10.244.2.{20 + index % 40}"
    flow.IP.ipVersion = flow_pb.IPv4
    ports = (port, 40000 + index) if reply else (40000 + index, port)
    if reply is not None:
        flow.is_reply.value = reply
    if udp:
        flow.l4.UDP.source_port, flow.l4.UDP.destination_port = ports
    else:
        flow.l4.TCP.source_port, flow.l4.TCP.destination_port = ports
        for name in flags:
            setattr(flow.l4.TCP.flags, name, True)
    if verdict == flow_pb.DROPPED:
        flow.event_type.type = 1
        flow.event_type.sub_type = drop_reason
        flow.egress_denied_by.add(name="frontend-egress-allow-to-backend", namespace="otel-demo", kind="NetworkPolicy")
        flow.Summary = f"{flow_pb.DropReason.Name(drop_reason)}"
    else:
        flow.event_type.type = 4
        flow.trace_observation_point = flow_pb.TO_ENDPOINT
        flow.Summary = "TCP Flags: " + ", ".join(flags) if not udp else "UDP"
    if dns is not None:
        query, l7_type, rcode = dns
        flow.Type = flow_pb.L7
        flow.event_type.type = 129
        flow.l7.type = l7_type
        flow.l7.dns.query = query
        flow.l7.dns.qtypes.append("A")
        flow.l7.dns.observation_source = "proxy"
        if l7_type == flow_pb.RESPONSE:
            flow.l7.dns.rcode = rcode
            flow.l7.latency_ns = 1_200_000
            if rcode == 0:
                flow.l7.dns.ips.append("10.96.4.20")
                flow.l7.dns.ttl = 30
    if http is not None:
        method, url, code, l7_type = http
        flow.Type = flow_pb.L7
        flow.event_type.type = 129
        flow.l7.type = l7_type
        flow.l7.http.method = method
        flow.l7.http.url = url
        flow.l7.http.protocol = "HTTP/1.1"
        if l7_type == flow_pb.RESPONSE:
            flow.l7.http.code = code
            flow.l7.latency_ns = 12_000_000
    return FlowRecord.from_flow(flow)


def scenario_records(count: int = 120) -> list[FlowRecord]:
    """A fixed mix: HTTP request and response (full URLs, as Hubble sends them), DNS query
    and NXDOMAIN answer, a policy drop, a TCP SYN. Answers are replies (is_reply) from
    the server's port."""
    records: list[FlowRecord] = []
    for i in range(count):
        kind = i % 6
        if kind == 0:
            records.append(make_flow(i, LOADGEN, FRONTEND, port=8080, reply=False, http=("GET", "http://frontend:8080/api/products/66VCHSJNUP", 0, flow_pb.REQUEST)))
        elif kind == 1:
            records.append(make_flow(i, FRONTEND, COREDNS, udp=True, port=53, reply=False, dns=("cartservice.otel-demo.svc.cluster.local.", flow_pb.REQUEST, 0)))
        elif kind == 2:
            records.append(make_flow(i, COREDNS, FRONTEND, udp=True, port=53, reply=True, dns=("cartservice.otel-demo.otel-demo.svc.cluster.local.", flow_pb.RESPONSE, 3), direction=flow_pb.INGRESS))
        elif kind == 3:
            records.append(make_flow(i, FRONTEND, COREDNS, udp=True, port=53, verdict=flow_pb.DROPPED, drop_reason=flow_pb.POLICY_DENIED, flags=()))
        elif kind == 4:
            records.append(make_flow(i, FRONTEND, CART, reply=False, flags=("SYN",)))
        else:
            records.append(make_flow(i, FRONTEND, LOADGEN, port=8080, reply=True, http=("POST", "http://frontend:8080/api/checkout", 503, flow_pb.RESPONSE)))
    return records


def filled_store(count: int = 120, capacity: int = 10_000) -> FlowStore:
    store = FlowStore(capacity)
    store.extend(scenario_records(count))
    return store


class FixedClock:
    """A monotonic clock for the rate meter that only moves when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


UTC = timezone.utc


def flows(app) -> FlowsTab:
    """The Flows tab of a running CockpitApp: its table, filter bar and filter state."""
    return app.tab(FlowsTab)



# --- the UI's pure helpers --------------------------------------------------------------

from kcockpit.ui.columns import cell, cell_parts, endpoint_cell, layout_columns, row_key  # noqa: E402
from kcockpit.ui.filtering import NAMESPACE_KEYS, VERDICT_KEYS, compile_filter, with_term  # noqa: E402
from kcockpit.ui.rate import RateMeter  # noqa: E402
from kcockpit.ui.rows import RowBuffer  # noqa: E402
from kcockpit.application.status import StatusInfo, fit_parts, status_parts  # noqa: E402


def test_columns_drop_least_important_first() -> None:
    def keys(width: int, aggregate: bool = False) -> list[str]:
        return [column.key for column, _ in layout_columns(width, aggregate)]

    every = ["time", "source", "arrow", "destination", "port", "info", "direction", "verdict", "flags"]
    assert keys(160) == keys(120) == every
    assert keys(100) == [k for k in every if k != "flags"]  # direction before TCP flags
    assert keys(80) == keys(79) == ["time", "source", "arrow", "destination", "port", "info", "verdict"]
    assert keys(80, aggregate=True) == ["time", "count", "source", "arrow", "destination", "port", "info", "verdict"]
    assert "verdict" in keys(60) and "info" in keys(60)  # verdict and drop reason are never dropped
    widths = {width: dict((c.key, w) for c, w in layout_columns(width)) for width in (80, 100, 120, 160)}
    assert widths[80]["time"] == widths[100]["time"] == 8  # HH:MM:SS
    assert widths[120]["time"] == widths[160]["time"] == 12  # HH:MM:SS.mmm once there is room
    for width in (60, 79, 80, 100, 119, 120, 160):
        for aggregate in (False, True):
            layout = layout_columns(width, aggregate)
            assert sum(w for _, w in layout) + len(layout) - 1 <= width


def test_info_keeps_status_rcode_and_the_paths_start_when_cut() -> None:
    nxdomain = make_flow(2, COREDNS, FRONTEND, udp=True, port=53, reply=True, dns=("cartservice.otel-demo.otel-demo.svc.cluster.local.", flow_pb.RESPONSE, 3))
    assert cell(nxdomain, "info", 70, UTC).rstrip() == "← DNS A cartservice.otel-demo.otel-demo.svc.cluster.local. NXDOMAIN"
    assert cell(nxdomain, "info", 24, UTC) == "← DNS A cartse… NXDOMAIN"
    assert cell(nxdomain, "info", 18, UTC) == "← cartse… NXDOMAIN"  # the name before "DNS A"
    assert cell(nxdomain, "info", 12, UTC) == "← … NXDOMAIN"
    response = make_flow(5, FRONTEND, LOADGEN, port=8080, reply=True, http=("GET", "http://frontend:8080/api/products/66VCHSJNUP", 200, flow_pb.RESPONSE))
    assert cell(response, "info", 40, UTC).rstrip() == "← 200 GET /api/products/66VCHSJNUP 12ms"
    assert cell(response, "info", 24, UTC) == "← 200 GET /api/pro… 12ms"  # the path's end goes first
    assert cell(response, "info", 17, UTC) == "← 200 GET /api/p…"
    assert cell(response, "info", 14, UTC) == "← 200 /api/pr…"
    request = make_flow(6, LOADGEN, FRONTEND, port=8080, http=("GET", "http://frontend:8080/api/products/66VCHSJNUP", 0, flow_pb.REQUEST))
    assert cell(request, "info", 40, UTC).rstrip() == "→ GET /api/products/66VCHSJNUP"
    query = make_flow(1, FRONTEND, COREDNS, udp=True, port=53, dns=("cartservice.otel-demo.svc.cluster.local.", flow_pb.REQUEST, 0))
    assert cell(query, "info", 60, UTC).rstrip() == "→ DNS A cartservice.otel-demo.svc.cluster.local."
    assert cell(query, "info", 60, UTC).rstrip() == query.l7_info()  # one implementation


def test_drop_reason_comes_first_and_is_never_cut() -> None:
    drop = make_flow(3, FRONTEND, COREDNS, udp=True, port=53, verdict=flow_pb.DROPPED, drop_reason=flow_pb.POLICY_DENIED)
    assert cell(drop, "info", 14, UTC) == "POLICY_DENIED "
    assert cell(drop, "port", 9, UTC) == "53/UDP   "
    assert cell(drop, "time", 12, UTC) == "00:00:00.111"
    assert cell(drop, "time", 8, UTC) == "00:00:00"
    l7_denied = make_flow(4, FRONTEND, CART, verdict=flow_pb.DROPPED, drop_reason=flow_pb.POLICY_DENIED, http=("GET", "http://cart:7070/admin/settings", 0, flow_pb.REQUEST))
    assert cell(l7_denied, "info", 40, UTC).rstrip() == "POLICY_DENIED → GET /admin/settings"
    assert cell(l7_denied, "info", 22, UTC) == "POLICY_DENIED → /admi…"


def test_replies_show_the_client_first_and_the_service_port() -> None:
    reply = make_flow(7, CART, FRONTEND, port=7070, reply=True)  # cartservice:7070 -> frontend:40007
    assert [cell(reply, key, 12, UTC).rstrip() for key in ("source", "arrow", "destination", "port")] == [
        "frontend", "←", "cartservice", "7070/TCP"
    ]
    request = make_flow(8, FRONTEND, CART, port=7070, reply=False)
    assert [cell(request, key, 12, UTC).rstrip() for key in ("source", "arrow", "destination", "port")] == [
        "frontend", "→", "cartservice", "7070/TCP"
    ]
    # No is_reply flag: an L7 response still counts as a reply, anything else stays as sent.
    unflagged = make_flow(9, COREDNS, FRONTEND, udp=True, port=53, reply=True, dns=("a.", flow_pb.RESPONSE, 0))
    flow = unflagged.flow()
    flow.ClearField("is_reply")
    unflagged = FlowRecord.from_flow(flow)
    assert cell(unflagged, "arrow", 1, UTC) == "←" and cell(unflagged, "port", 9, UTC).rstrip() == "53/UDP"
    assert cell(make_flow(10), "arrow", 1, UTC) == "→"


def test_namespaces_show_the_same_way_on_every_row() -> None:
    frontend, coredns = make_flow(1, FRONTEND, COREDNS).source, make_flow(1, FRONTEND, COREDNS).destination
    # Narrow column, no namespace filter: no namespaces at all, however short the name.
    assert endpoint_cell(frontend, 14, "") == ("frontend      ", 0)
    assert endpoint_cell(coredns, 14, "") == ("coredns       ", 0)
    # Wide column: every namespace, as a dim prefix.
    assert endpoint_cell(frontend, 30, "") == ("otel-demo/frontend".ljust(30), len("otel-demo/"))
    # With a namespace filter: that namespace is left out, the others shown (shortened, never the name).
    assert endpoint_cell(frontend, 30, "otel-demo") == ("frontend".ljust(30), 0)
    assert endpoint_cell(coredns, 16, "otel-demo") == ("kube-sy…/coredns", 9)
    assert endpoint_cell(coredns, 20, "otel-demo") == ("kube-system/coredns ", 12)
    assert endpoint_cell(coredns, 10, "otel-demo") == ("k…/coredns", 3)
    assert endpoint_cell(coredns, 9, "otel-demo") == ("coredns  ", 0)  # no room for a prefix
    text, dim = cell_parts(make_flow(1, FRONTEND, COREDNS), "destination", 26, UTC)
    assert (text.rstrip(), dim) == ("kube-system/coredns", 12)


def test_world_and_reserved_endpoints_are_named() -> None:
    flow = make_flow(11).flow()
    flow.destination.Clear()
    flow.destination.identity = 2  # reserved:world
    flow.IP.destination = "142.250.74.110"
    flow.destination_names.append("www.google.com")
    flow.source.Clear()
    flow.source.identity = 6  # reserved:remote-node
    record = FlowRecord.from_flow(flow)
    assert cell(record, "destination", 30, UTC).rstrip() == "www.google.com"
    assert cell(record, "source", 30, UTC).rstrip() == "remote-node"
    del flow.destination_names[:]
    assert cell(FlowRecord.from_flow(flow), "destination", 30, UTC).rstrip() == "142.250.74.110"


def test_aggregated_rows_count_consecutive_identical_flows() -> None:
    drops = [make_flow(i, FRONTEND, COREDNS, udp=True, port=53, verdict=flow_pb.DROPPED, drop_reason=flow_pb.POLICY_DENIED) for i in range(20)]
    syn = make_flow(20, FRONTEND, CART, flags=("SYN",))
    assert row_key(drops[0]) == row_key(drops[19])  # ephemeral ports, IPs and times differ
    assert row_key(drops[0]) != row_key(syn)
    rows = RowBuffer(100, row_key)
    rows.extend(drops[:5])
    rows.extend([*drops[5:], syn, drops[0]])  # a burst spanning two drains, then other rows
    assert rows.row_count() == 3 and len(rows) == 22
    assert rows.row(0) == (drops[19], 20)  # shown as its newest flow
    assert rows.row(1) == (syn, 1) and rows.row(2) == (drops[0], 1)
    assert cell(drops[19], "count", 5, UTC, count=20) == "  ×20" and cell(syn, "count", 5, UTC) == "     "
    assert rows.snapshot() == [*drops, syn, drops[0]]  # every flow kept, for export


def test_aggregation_keys_at_most_a_budget_per_batch_and_keep_records_light() -> None:
    same = [make_flow(i, FRONTEND, CART) for i in range(5)]
    rows = RowBuffer(100, row_key, key_budget=2)
    rows.extend(same)  # an overload: only the newest two are keyed (and merged)
    assert [rows.row(i)[1] for i in range(rows.row_count())] == [1, 1, 1, 2]
    rows.extend(same[:1])
    assert rows.row(3)[1] == 3  # the next batch still joins the last row
    rows.reset(same)  # a reset keys every record
    assert rows.row_count() == 1
    fresh = make_flow(9, FRONTEND, CART)
    row_key(fresh)
    with pytest.raises(AttributeError):
        object.__getattribute__(fresh, "source")  # the key's decoding was not kept on the record


def test_aggregated_rows_drop_from_the_front_whole_or_in_part() -> None:
    a = [make_flow(i, FRONTEND, CART) for i in range(6)]
    b = [make_flow(10 + i, FRONTEND, COREDNS, udp=True, port=53) for i in range(3)]
    rows = RowBuffer(8, row_key)
    assert rows.extend(a) == 0
    assert rows.extend(b) == 0  # one record of the first row goes: the row stays, smaller
    assert [count for _, count in (rows.row(0), rows.row(1))] == [5, 3]
    assert rows.extend([a[0]] * 6) == 1  # the first row went entirely
    assert rows.row_count() == 2 and rows.row(0)[1] == 2 and rows.row(1) == (a[0], 6)
    assert sum(rows.row(i)[1] for i in range(rows.row_count())) == len(rows) == 8
    with pytest.raises(IndexError):
        rows.row(2)
    assert rows.row_of(a[0]) == 1 and rows.row_of(b[2]) == 0 and rows.row_of(a[1]) is None
    plain = RowBuffer(8)
    plain.extend(a)
    assert plain.row_of(a[4]) == 4


def test_row_buffer_is_bounded_and_reports_shift() -> None:
    rows = RowBuffer(5)
    records = scenario_records(12)
    assert rows.extend(records[:3]) == 0
    assert rows.extend(records[3:8]) == 3
    assert rows.snapshot() == records[3:8]
    assert rows[0] is records[3] and rows[4] is records[7]
    assert rows.extend(records[8:12]) == 4
    assert len(rows) == 5 and rows.snapshot() == records[7:12]


def test_status_line_keeps_state_and_follow_when_narrow() -> None:
    info = StatusInfo(source="demo 127.0.0.1:4245", state="retrying", state_detail="in 3 s: connection refused",
                      flows_per_second=1234.5, nodes=(3, 4), retained=120_000, evicted=5, lost=2, follow=False,
                      new_while_paused=42, filter_text="verdict DROPPED")
    wide = [p.text for p in fit_parts(status_parts(info), 200)]
    assert "1.2k flows/s" in wide and "nodes 3/4" in wide and "PAUSED +42 new" in wide
    narrow = [p.text for p in fit_parts(status_parts(info), 60)]
    assert narrow[0].startswith("● retrying in 3 s") and narrow[-1] == "PAUSED +42 new"
    assert sum(len(t) + 3 for t in narrow) - 2 <= 60


def test_rate_meter_over_a_window() -> None:
    clock = FixedClock(0.0)
    meter = RateMeter(clock, window=2.0)
    for second in range(5):
        clock.now = float(second)
        meter.sample(second * 500)
    assert meter.per_second() == 500.0


def test_verdict_and_namespace_terms_rewrite_the_filter_text() -> None:
    assert with_term("ns=a to:port=53", VERDICT_KEYS, "dropped") == "ns=a to:port=53 verdict=dropped"
    assert with_term("verdict=dropped, ns=a", VERDICT_KEYS, "audit") == "ns=a verdict=audit"
    assert with_term("ns=a, to:ns=b", NAMESPACE_KEYS, "c") == "to:ns=b namespace=c"
    assert with_term("namespace=c", NAMESPACE_KEYS, "") == ""
    state = compile_filter("ns=otel-demo verdict=dropped")
    assert state.verdict == "DROPPED" and state.namespace == "otel-demo" and not state.error
    bad = compile_filter("verdict=nope")
    assert bad.error.startswith("✗ column 1: unknown verdict 'nope'") and bad.matcher is None
