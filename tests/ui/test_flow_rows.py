"""The UI's pure helpers: columns, row buffer, aggregated rows, status line, rate meter,
and the filter terms `v` and `n` write."""

from __future__ import annotations

import pytest
from ui_support import CART, COREDNS, FRONTEND, LOADGEN, UTC, FixedClock, make_flow, scenario_records

from kcockpit.application.status import StatusInfo, fit_parts, status_parts
from kcockpit.model.record import FlowRecord
from kcockpit.ui.columns import cell, cell_parts, endpoint_cell, layout_columns, row_key
from kcockpit.ui.filtering import NAMESPACE_KEYS, VERDICT_KEYS, compile_filter, with_term
from kcockpit.ui.rate import RateMeter
from kcockpit.ui.rows import RowBuffer
from kcockpit.wire.hubble_pb import flow_pb


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
