"""FlowRecord: cheap construction from wire bytes, lazy detail decoding, display helpers."""

from __future__ import annotations

import sys

from observer_fixture import lost_events_response, make_flow_response, node_status_response

import kcockpit.model.record as record_module
from kcockpit.model.record import _DETAIL_FIELDS, FlowRecord, url_path
from kcockpit.wire.hubble_pb import flow_pb, relay_pb


def test_from_bytes_keeps_the_wire_bytes_and_decodes_the_hot_fields() -> None:
    response = make_flow_response(7, node="kind-worker", verdict=flow_pb.DROPPED)
    raw = response.SerializeToString()
    record = FlowRecord.from_bytes(raw)
    assert record.raw is raw
    assert (record.time_ns, record.verdict, record.node) == (response.flow.time.ToNanoseconds(), 2, "kind-worker")
    assert record.verdict_name == "DROPPED"
    assert record.response() == response and record.flow() == response.flow


def test_non_flow_responses_are_not_records() -> None:
    assert FlowRecord.from_bytes(lost_events_response(3).SerializeToString()) is None
    assert FlowRecord.from_bytes(node_status_response(relay_pb.NODE_GONE, "n").SerializeToString()) is None


def test_details_decode_lazily_and_once() -> None:
    record = FlowRecord.from_bytes(make_flow_response(4).SerializeToString())
    assert not record.is_decoded
    assert record.uuid == "f-4"  # first detail access decodes all of them
    assert record.is_decoded
    source = record.source
    assert record.source is source  # decoded once, then plain slot reads
    assert (source.namespace, source.pod, source.identity, source.ip, source.port) == (
        "default", "client-1", 1001, "10.0.0.1", 40004
    )
    assert record.destination.display_name() == "default/server-0"
    assert record.protocol == "TCP" and record.destination.port == 8080
    assert record.summary == "TCP Flags: ACK" and record.is_reply is None


def test_l7_dns_and_http_info() -> None:
    response = make_flow_response(1)
    flow = response.flow
    flow.l7.type = flow_pb.RESPONSE
    flow.l7.dns.query = "api.example.com."
    flow.l7.dns.qtypes.append("AAAA")
    flow.l7.dns.rcode = 3
    record = FlowRecord.from_flow(flow)
    assert record.l7_kind == "dns" and record.dns_rcode_name == "NXDOMAIN"
    assert record.l7_info() == "← DNS AAAA api.example.com. NXDOMAIN"
    flow.l7.type = flow_pb.REQUEST
    flow.l7.dns.rcode = 0
    assert FlowRecord.from_flow(flow).l7_info() == "→ DNS AAAA api.example.com."

    http = make_flow_response(2).flow
    http.l7.type = flow_pb.RESPONSE
    http.l7.latency_ns = 35_000_000
    http.l7.http.method, http.l7.http.url, http.l7.http.code = "GET", "http://cart:8080/api/cart?id=7", 503
    assert FlowRecord.from_flow(http).l7_info() == "← 503 GET /api/cart?id=7 35ms"  # the path, not the URL
    http.l7.latency_ns = 1_250_000
    assert FlowRecord.from_flow(http).l7_info() == "← 503 GET /api/cart?id=7 1.2ms"
    http.l7.latency_ns = 5_002_000_000
    assert FlowRecord.from_flow(http).l7_info() == "← 503 GET /api/cart?id=7 5.0s"
    http.l7.type = flow_pb.REQUEST
    http.l7.http.code = 0
    http.l7.latency_ns = 0
    assert FlowRecord.from_flow(http).l7_info() == "→ GET /api/cart?id=7"
    assert FlowRecord.from_flow(make_flow_response(3).flow).l7_info() == ""


def test_l7_info_shortens_the_least_informative_parts_first() -> None:
    http = make_flow_response(2).flow
    http.l7.type = flow_pb.RESPONSE
    http.l7.latency_ns = 12_000_000
    http.l7.http.method, http.l7.http.url, http.l7.http.code = "GET", "http://frontend:8080/api/products/66VCHSJNUP", 200
    record = FlowRecord.from_flow(http)
    widths = {width: record.l7_info(width) for width in (60, 24, 17, 14, 8, 3)}
    assert widths == {
        60: "← 200 GET /api/products/66VCHSJNUP 12ms",
        24: "← 200 GET /api/pro… 12ms",  # the path's end goes first
        17: "← 200 GET /api/p…",  # then the latency
        14: "← 200 /api/pr…",  # then the method
        8: "← 200 /…",
        3: "← …",
    }
    assert all(len(text) <= width for width, text in widths.items())


def test_url_path_drops_scheme_and_host() -> None:
    assert url_path("http://cartservice:8080/api/cart?x=1") == "/api/cart?x=1"
    assert url_path("https://example.com") == "/"
    assert url_path("/already/a/path") == "/already/a/path"


def test_decoded_gives_a_copy_until_the_record_itself_is_decoded() -> None:
    record = FlowRecord.from_bytes(make_flow_response(4).SerializeToString())
    copy = record.decoded()
    assert copy is not record and copy.source.pod == "client-1" and copy.raw is record.raw
    assert copy.is_decoded and not record.is_decoded
    assert record.uuid == "f-4" and record.decoded() is record


def test_decoded_details_stay_on_the_last_decoded_records_only(monkeypatch) -> None:
    monkeypatch.setattr(record_module, "DECODED_KEPT", 100)
    monkeypatch.setattr(record_module, "_kept", type(record_module._kept)())
    kept = [FlowRecord.from_bytes(make_flow_response(i).SerializeToString()) for i in range(600)]
    assert [record.uuid for record in kept] == [f"f-{i}" for i in range(600)]  # every one decoded once...
    assert sum(record.is_decoded for record in kept) == 100  # ...the last 100 keep it
    assert all(record.is_decoded for record in kept[-100:])
    assert kept[0].source.pod == "client-0" and kept[0].is_decoded  # decoded again on demand


def test_from_flow_wraps_in_a_response_with_node_and_time() -> None:
    flow = make_flow_response(3, node="n2").flow
    record = FlowRecord.from_flow(flow)
    response = record.response()
    assert response.flow == flow and response.node_name == "n2" and response.time == flow.time


def test_short_names() -> None:
    record = FlowRecord.from_bytes(make_flow_response(4).SerializeToString())
    assert record.destination.short_name() == "server-0"  # a pod without workload: its name
    flow = record.flow()
    flow.destination.workloads.add(name="server", kind="Deployment")
    flow.source.Clear()
    flow.source.identity = 1
    record = FlowRecord.from_flow(flow)
    assert record.destination.short_name() == "server" and record.destination.workload_name() == "default/server"
    assert record.source.short_name() == "host"
    flow.destination.Clear()
    flow.destination_service.name, flow.destination_service.namespace = "cartservice", "shop"
    assert FlowRecord.from_flow(flow).destination.short_name() == "cartservice"  # no pod known: its Service


def test_drop_reason_and_reserved_identity_names() -> None:
    flow = make_flow_response(5, verdict=flow_pb.DROPPED).flow
    flow.drop_reason_desc = flow_pb.POLICY_DENIED
    flow.destination.Clear()
    flow.destination.identity = 2
    flow.IP.destination = "1.1.1.1"
    flow.destination_names.append("one.one.one.one")
    record = FlowRecord.from_flow(flow)
    assert record.drop_reason_name == "POLICY_DENIED"
    assert record.destination.reserved == "world"
    assert record.destination.display_name() == "one.one.one.one"
    assert record.destination.workload_name() == "one.one.one.one"
    assert record.destination.short_name() == "one.one.one.one"
    flow.ClearField("destination_names")
    assert FlowRecord.from_flow(flow).destination.short_name() == "1.1.1.1"  # world without a name: its IP


# ===== Folded from test_review_record_store.py =====================================================
# Review tests for FlowRecord and FlowStore: each pins a bug found by reading the code for
# what the reader thread and the UI do to the same records at the same time.


# ----- FlowRecord's lazy decoding ------------------------------------------------------------------


def _dns_response_flow():
    response = make_flow_response(3)
    response.flow.l7.type = flow_pb.RESPONSE
    response.flow.l7.dns.query = "example.com."
    response.flow.l7.dns.rcode = 3
    response.flow.l7.dns.qtypes.append("A")
    response.flow.l7.dns.ips.append("1.2.3.4")
    return response


def test_a_detail_attribute_once_visible_never_changes_while_the_record_decodes() -> None:
    # Another thread (the UI) may read a record while the reader thread decodes it: what it
    # can see must already hold its final values, never a placeholder ("" or ()) set on the way.
    record = FlowRecord.from_bytes(_dns_response_flow().SerializeToString())
    seen: list[object] = []

    def tracer(frame, event, arg):
        if frame.f_code is FlowRecord._decode.__code__:
            def on_line(frame, event, arg):
                seen.append(record._details)  # what a second thread would see at this point
                return on_line
            return on_line
        return None

    sys.settrace(tracer)
    try:
        record._decode()
    finally:
        sys.settrace(None)
    details = record._details
    assert details is not None and {id(d) for d in seen} <= {id(None), id(details)}
    assert all(getattr(details, name, "unset") != "unset" for name in _DETAIL_FIELDS)
    assert (record.dns_query, record.dns_qtypes, record.dns_ips, record.dns_rcode) == (
        "example.com.", ("A",), ("1.2.3.4",), 3
    )
