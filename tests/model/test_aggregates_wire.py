"""How the accumulator reads flows off the wire (issue 13): responses parsed in batches,
sub-messages read as their encodings, names and cells remembered between flows. Whatever
way the bytes come, the counts are the ones the rules in test_aggregates.py give."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError

from handmade_flows import CART, FRONTEND, LOADGEN, STRIPE, T0, Reserved, flow, raw
from observer_fixture import lost_events_response

from kcockpit.model.aggregates import Accumulator, FlowAggregates
from kcockpit.model.aggregates.view import BATCH


def counted(raws) -> FlowAggregates:
    result = FlowAggregates()
    result.ingest_raw(raws)
    return result


def edges(result: FlowAggregates) -> dict:
    return {(e.client.name, e.client.detail, e.server.name, e.server.detail, e.port): (e.flows, e.forwarded, e.dropped)
            for e in result.services(None)}


def test_a_response_without_a_flow_amid_a_batch_leaves_every_flow_counted() -> None:
    count = 2 * BATCH + 100
    flows = raw(*(flow(i / 1000, FRONTEND, CART, dport=8080) for i in range(count)))
    flows.insert(BATCH + BATCH // 2, lost_events_response(3).SerializeToString())  # in the second batch
    result = counted(flows)
    assert result.flows == count
    assert edges(result) == {("otel-demo/frontend", "", "otel-demo/cartservice", "", 8080): (count, count, 0)}


def test_memoryviews_count_as_their_bytes_and_samples_are_bytes() -> None:
    responses = [flow(1, FRONTEND, STRIPE, dport=443, verdict="DROPPED", event=5), flow(2, LOADGEN, FRONTEND, dport=8080)]
    views = [memoryview(b"xx" + data)[2:] for data in raw(*responses)]  # as the aggregator process splits its pipe
    from_views, from_bytes = counted(views), counted(raw(*responses))
    assert edges(from_views) == edges(from_bytes) and len(edges(from_views)) == 2
    (group,) = from_views.policy_groups(None)
    assert type(group.sample) is bytes and group.sample == raw(responses[0])[0]


def _varint(value: int) -> bytes:
    out = b""
    while value > 0x7F:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def _with_is_reply(response, encoded_bool: bytes) -> bytes:
    """`response` serialized with `is_reply` written as `encoded_bool` (a BoolValue's bytes),
    which a protobuf encoder would write differently or not at all."""
    flow_bytes = response.flow.SerializeToString() + _varint(26 << 3 | 2) + _varint(len(encoded_bool)) + encoded_bool
    return _varint(1 << 3 | 2) + _varint(len(flow_bytes)) + flow_bytes  # GetFlowsResponse.flow


def test_is_reply_means_what_its_bool_says_however_it_is_encoded() -> None:
    request = flow(1, LOADGEN, FRONTEND, sport=41000, dport=8080, reply=None)
    reply = flow(1.1, FRONTEND, LOADGEN, sport=8080, dport=41000, reply=None)
    result = counted([
        _with_is_reply(request, b"\x08\x00"),  # false, written out
        _with_is_reply(reply, b"\x08\x02"),  # true, as any non-zero varint
        _with_is_reply(reply, b"\x08\x00\x08\x01"),  # the last value wins: true
    ])
    assert edges(result) == {("otel-demo/loadgenerator", "", "otel-demo/frontend", "", 8080): (3, 3, 0)}


def test_one_world_endpoint_is_named_by_each_flows_dns_name() -> None:
    other = Reserved(2, "198.51.100.9", ("api.example.com",))
    result = counted(raw(flow(1, FRONTEND, STRIPE, dport=443), flow(2, FRONTEND, other, dport=443),
                         flow(3, FRONTEND, STRIPE, dport=443)))
    assert edges(result) == {
        ("otel-demo/frontend", "", "world", "api.stripe.com", 443): (2, 2, 0),
        ("otel-demo/frontend", "", "world", "api.example.com", 443): (1, 1, 0),
    }


def test_an_endpoint_known_only_by_its_ip_is_named_by_each_flows_ip() -> None:
    first, second = Reserved(0, "192.0.2.1"), Reserved(0, "192.0.2.2")  # no identity, pod or DNS name
    result = counted(raw(flow(1, first, CART, dport=8080), flow(2, second, CART, dport=8080), flow(3, first, CART, dport=8080)))
    assert edges(result) == {
        ("192.0.2.1", "", "otel-demo/cartservice", "", 8080): (2, 2, 0),
        ("192.0.2.2", "", "otel-demo/cartservice", "", 8080): (1, 1, 0),
    }


def test_one_edge_and_second_counted_in_two_deltas_adds_up() -> None:
    forwarded = [flow(1 + i / 100, FRONTEND, CART, dport=8080) for i in range(3)]
    dropped = [flow(1.5 + i / 100, FRONTEND, CART, dport=8080, verdict="DROPPED", drop_reason=133, event=1) for i in range(2)]
    accumulator = Accumulator()
    accumulator.add_raw(raw(*forwarded))
    first = accumulator.take()
    accumulator.add_raw(raw(*dropped))
    second = accumulator.take()
    ((_, cell_1),) = first.edges.items()
    ((_, cell_2),) = second.edges.items()
    times = lambda responses: [r.flow.time.ToNanoseconds() for r in responses]  # noqa: E731
    assert (cell_1.flows, cell_1.forwarded, cell_1.dropped, cell_1.first_ns, cell_1.last_ns) == (
        3, 3, 0, times(forwarded)[0], times(forwarded)[-1])
    assert (cell_2.flows, cell_2.forwarded, cell_2.dropped, cell_2.drop_reasons, cell_2.first_ns, cell_2.last_ns) == (
        2, 0, 2, {133: 2}, times(dropped)[0], times(dropped)[-1])
    result = FlowAggregates()
    result.merge(first)
    result.merge(second)
    assert edges(result) == {("otel-demo/frontend", "", "otel-demo/cartservice", "", 8080): (5, 3, 2)}


def test_a_flow_without_a_time_is_counted() -> None:
    untimed = flow(0, FRONTEND, CART, dport=8080)
    untimed.flow.ClearField("time")
    result = counted(raw(flow(1, FRONTEND, CART, dport=8080), untimed, flow(2, FRONTEND, CART, dport=8080)))
    assert result.flows == 3
    assert sum(e.flows for e in result.services(None)) == 3


def test_flows_out_of_time_order_land_in_their_own_seconds() -> None:
    responses = [flow(at, FRONTEND, CART, dport=8080) for at in (1.5, 2.5, 1.25, 2.75, 1.75, 2.25)]
    accumulator = Accumulator()
    accumulator.add_raw(raw(*responses))
    delta = accumulator.take()
    times = [r.flow.time.ToNanoseconds() for r in responses]
    by_second = {second - T0: (cell.flows, cell.first_ns, cell.last_ns) for (_, second), cell in delta.edges.items()}
    assert by_second == {1: (3, times[2], times[4]), 2: (3, times[5], times[3])}
    assert (delta.flows, delta.first_ns, delta.last_ns) == (6, times[2], times[3])


def test_each_protocol_counts_on_its_server_port_and_one_without_ports_on_port_0() -> None:
    icmp = flow(4, FRONTEND, CART, dport=8080)
    icmp.flow.l4.ICMPv4.type = 8  # the oneof now holds ICMPv4 (no ports)
    result = counted(raw(
        flow(1, FRONTEND, CART, dport=8080),
        flow(2, CART, FRONTEND, sport=8080, dport=40000, reply=True),
        flow(3, FRONTEND, CART, sport=40000, dport=0),
        flow(3.5, FRONTEND, CART, sport=0, dport=53, proto="UDP"),
        flow(3.6, CART, FRONTEND, sport=53, dport=0, proto="UDP", reply=True),
        icmp,
    ))
    assert {(e.port, e.protocol): e.flows for e in result.services(None)} == {
        (8080, "TCP"): 2, (0, "TCP"): 1, (53, "UDP"): 2, (0, "ICMPv4"): 1}


def test_a_response_that_does_not_parse_raises_after_the_ones_before_it_are_counted() -> None:
    accumulator = Accumulator()
    good = raw(flow(1, FRONTEND, CART, dport=8080), flow(2, FRONTEND, CART, dport=8080))
    with pytest.raises(DecodeError):
        accumulator.add_raw([*good, b"\x0a\x05\x08"])  # a flow 5 bytes long, cut after 1
    assert accumulator.take().flows == 2
