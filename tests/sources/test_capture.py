"""jsonpb capture files: round trip, the exact hubble jsonpb shape, malformed lines, stdin/stdout."""

from __future__ import annotations

import functools
import io
import json
import sys
from pathlib import Path

import pytest
from observer_fixture import lost_events_response, make_flow_response, node_status_response

from kcockpit.model.record import FlowRecord
from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import CaptureError, load_capture, read_capture, response_to_line, write_capture
from kcockpit.wire.hubble_pb import flow_pb, relay_pb


def rich_flow_response(index: int):
    """A flow using the awkward corners of protojson: uint64, wrappers, enums, oneofs, L7."""
    response = make_flow_response(index, verdict=flow_pb.DROPPED)
    flow = response.flow
    flow.drop_reason_desc = flow_pb.POLICY_DENIED
    flow.is_reply.value = False
    flow.traffic_direction = flow_pb.EGRESS
    flow.event_type.type = 1
    flow.event_type.sub_type = 133
    flow.source.labels.extend(["k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=otel-demo"])
    flow.source.workloads.add(name="frontend", kind="Deployment")
    flow.destination_names.append("kube-dns.kube-system.svc.cluster.local")
    flow.l7.type = flow_pb.RESPONSE
    flow.l7.latency_ns = 12_345_678_901
    flow.l7.dns.query = "productcatalogservice.otel-demo.svc.cluster.local."
    flow.l7.dns.qtypes.append("A")
    flow.l7.dns.rcode = 3
    flow.egress_denied_by.add(name="frontend-egress-allow-to-backend", namespace="otel-demo", revision=7)
    response.time.CopyFrom(flow.time)
    return response


def test_round_trip_written_then_read_back_is_equal(tmp_path) -> None:
    responses = [rich_flow_response(i) for i in range(5)] + [make_flow_response(i) for i in range(5, 10)]
    records = [FlowRecord.from_bytes(r.SerializeToString()) for r in responses]
    path = tmp_path / "capture.json"
    assert write_capture(records, path) == 10
    result = read_capture(path)
    assert result.problems == [] and result.lines == 10
    assert [r.response() for r in result.records] == responses
    assert [(r.time_ns, r.verdict, r.node) for r in result.records] == [(r.time_ns, r.verdict, r.node) for r in records]
    # And once more: the file we write reads back to the same file.
    again = tmp_path / "again.json"
    write_capture(result.records, again)
    assert again.read_text() == path.read_text()


def test_lines_have_the_hubble_jsonpb_shape() -> None:
    line = response_to_line(rich_flow_response(1))
    assert "\n" not in line and '": ' not in line  # compact, one per line
    document = json.loads(line)
    flow = document["flow"]
    assert flow["verdict"] == "DROPPED" and flow["drop_reason_desc"] == "POLICY_DENIED"
    assert flow["l7"]["latency_ns"] == "12345678901"  # 64-bit integers as strings
    assert flow["l7"]["dns"]["rcode"] == 3
    assert flow["egress_denied_by"][0]["revision"] == "7"
    assert flow["l4"]["TCP"]["destination_port"] == 8080  # proto field names, not lowerCamel
    assert flow["is_reply"] is False and flow["traffic_direction"] == "EGRESS"
    assert flow["time"] == document["time"] == "2023-11-14T22:13:20.001Z"
    assert document["node_name"] == "node-a"


def test_a_line_as_hubble_writes_it_is_read() -> None:
    # Shaped like `hubble observe -o jsonpb` output (Go protojson), fields we do not model included.
    line = (
        '{"flow":{"time":"2026-01-01T00:00:01.500Z","uuid":"u-1","verdict":"FORWARDED",'
        '"IP":{"source":"10.0.1.5","destination":"10.0.2.9","ipVersion":"IPv4"},'
        '"l4":{"UDP":{"source_port":53211,"destination_port":53}},'
        '"source":{"ID":12,"identity":4521,"namespace":"otel-demo","labels":["k8s:app=frontend"],'
        '"pod_name":"frontend-6b9c7d-x2x9q"},"Type":"L7","node_name":"kind-worker",'
        '"event_type":{"type":129},"traffic_direction":"EGRESS","is_reply":false,'
        '"tunnel":{"protocol":"VXLAN"},"Summary":"DNS Query example.com. A"},'
        '"node_name":"kind-worker","time":"2026-01-01T00:00:01.500Z"}'
    )
    result = read_capture(io.StringIO(line + "\n\n"))
    assert result.problems == [] and len(result.records) == 1
    record = result.records[0]
    assert record.node == "kind-worker" and record.verdict_name == "FORWARDED"
    assert record.time_ns == 1_767_225_601_500_000_000
    assert record.source.pod == "frontend-6b9c7d-x2x9q" and record.destination.port == 53
    assert record.protocol == "UDP" and record.uuid == "u-1"


def test_malformed_lines_are_reported_skipped_and_counted() -> None:
    good = response_to_line(make_flow_response(1))
    text = "\n".join(
        [
            good,
            '{"flow": {"verdict": "FORWARDED"',  # truncated
            "[1, 2]",
            '{"flow":{"time":"yesterday"}}',
            '{"hello":"world"}',
            "",  # blank lines are not problems
            response_to_line(lost_events_response(9)),
            response_to_line(node_status_response(relay_pb.NODE_CONNECTED, "n1")),
            good,
        ]
    )
    result = read_capture(io.StringIO(text))
    assert len(result.records) == 2 and result.lost_events == 9 and result.node_statuses == 1
    assert result.skipped == 4 and result.lines == 8
    messages = [str(problem) for problem in result.problems]
    assert messages[0] == "<stream>:2: not JSON: Expecting ',' delimiter at column 33"
    assert messages[1] == "<stream>:3: expected a JSON object (one GetFlowsResponse), got list"
    assert messages[2] == (
        "<stream>:4: not a GetFlowsResponse: Failed to parse time field: Failed to parse timestamp: "
        "missing valid timezone offset. at GetFlowsResponse.flow.time."
    )
    assert messages[3] == "<stream>:5: no flow, node_status or lost_events (keys: hello)"
    assert "4 malformed lines skipped (first: <stream>:2: not JSON" in result.summary()


def test_load_into_store_and_stdin(monkeypatch) -> None:
    lines = [response_to_line(make_flow_response(i)) for i in range(3)] + [response_to_line(lost_events_response(5))]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    store = FlowStore(2)
    result = load_capture("-", store)
    assert result.source == "<stdin>" and len(result.records) == 3
    counters = store.counters()
    assert (counters.received, counters.retained, counters.evicted, counters.lost_at_server) == (3, 2, 1, 5)


def test_write_to_stdout(monkeypatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    write_capture([FlowRecord.from_flow(make_flow_response(1).flow)], "-")
    assert json.loads(out.getvalue())["flow"]["uuid"] == "f-1"


def test_missing_file_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(CaptureError) as caught:
        read_capture(tmp_path / "nope.json")
    assert str(caught.value) == f"cannot read capture file {str(tmp_path / 'nope.json')!r}: No such file or directory"
    with pytest.raises(CaptureError, match="cannot write capture file"):
        write_capture([], tmp_path / "missing-dir" / "out.json")


# ----- the fast protojson reader agrees with ParseDict ------------------------------------------


@functools.lru_cache(maxsize=1)
def _simulated_lines() -> tuple[str, ...]:
    from kcockpit.sim.clock import ManualClock
    from kcockpit.sim.scenario import Scenario
    from kcockpit.sim.traffic import Simulator
    from kcockpit.sim.world import World

    clock = ManualClock()
    simulator = Simulator(World.build(5), seed=5, clock=clock, scenario=Scenario(clock, mode="healthy"), rate=400)
    clock.advance(3)
    responses = simulator.advance()
    kinds = {r.flow.l7.WhichOneof("record") for r in responses if r.HasField("flow")}
    assert kinds >= {"dns", "http", None}, "L3/L4, DNS and HTTP flows"
    return tuple(response_to_line(r) for r in responses)


def test_fast_reader_matches_parse_dict_without_falling_back(monkeypatch) -> None:
    from google.protobuf import json_format

    from kcockpit.wire.hubble_pb import GetFlowsResponse
    from kcockpit.wire.protojson import parse_dict

    lines = [
        *_simulated_lines(),
        *(response_to_line(rich_flow_response(i)) for i in range(3)),
        response_to_line(lost_events_response(3)),
        response_to_line(node_status_response(relay_pb.NODE_ERROR, "a", "b", message="down")),
    ]
    documents = [json.loads(line) for line in lines]
    expected = []
    for document in documents:
        message = GetFlowsResponse()
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
        expected.append(message)

    def no_fallback(*args, **kwargs):
        raise AssertionError("fell back to ParseDict on a well-formed flow")

    monkeypatch.setattr(json_format, "ParseDict", no_fallback)
    assert [parse_dict(document, GetFlowsResponse()) for document in documents] == expected


def test_fast_writer_matches_message_to_dict() -> None:
    from google.protobuf import json_format

    from kcockpit.wire.hubble_pb import GetFlowsResponse, observer_pb
    from kcockpit.wire.protojson import message_to_dict

    messages = [json_format.Parse(line, GetFlowsResponse()) for line in _simulated_lines()]
    messages += [rich_flow_response(1), lost_events_response(3), node_status_response(relay_pb.NODE_GONE, "a")]
    odd = rich_flow_response(2)
    odd.flow.verdict = 99  # an enum number without a name stays a number
    odd.flow.l7.dns.ttl = 0
    messages.append(odd)
    status = observer_pb.ServerStatusResponse(num_flows=5, flows_rate=12.5, version="v")  # a double: delegated
    status.num_connected_nodes.value = 3
    messages.append(status)
    for message in messages:
        assert message_to_dict(message) == json_format.MessageToDict(message, preserving_proto_field_name=True)


@pytest.mark.parametrize(
    "mutation",
    [
        {"node_name": 5},
        {"flow": {"verdict": 2.5}},
        {"flow": {"verdict": "2"}},
        {"flow": {"verdict": "NOT_A_VERDICT"}},
        {"flow": {"l4": {"TCP": {"source_port": "12 3"}}}},
        {"flow": {"l4": {"TCP": {"source_port": 70000000000}}}},
        {"flow": {"l4": {"TCP": {"source_port": True}}}},
        {"flow": {"l4": {"TCP": {"source_port": 1.0}}}},
        {"flow": {"l4": {"TCP": {}, "UDP": {}}}},
        {"flow": {"time": 12}},
        {"flow": {"time": "2026-13-01T00:00:00Z"}},
        {"flow": {"is_reply": "yes"}},
        {"flow": {"is_reply": None}},
        {"flow": {"source_names": "not-a-list"}},
        {"flow": {"source_names": ["ok", 3]}},
        {"flow": {"source": []}},
        {"flow": {"Summary": "tab\there"}},
        {"flow": {"node_name": "a", "nodeName": "b"}},
        {"flow": {"egress_denied_by": [{"revision": "18446744073709551616"}]}},
        {"flow": {"unknown_field": {"x": 1}, "uuid": "u"}},
        {"flow": {"trace_reason": 3}},
        {"lost_events": {"cpu": 3, "num_events_lost": "9"}},
        {"node_status": {"state_change": "NODE_GONE", "node_names": ["a"]}},
    ],
)
def test_fast_reader_gives_parse_dicts_answer_on_odd_input(mutation) -> None:
    from google.protobuf import json_format

    from kcockpit.wire.hubble_pb import GetFlowsResponse
    from kcockpit.wire.protojson import parse_dict

    def outcome(parse):
        try:
            return "ok", parse()
        except json_format.ParseError as error:
            return "error", str(error)

    def reference():
        message = GetFlowsResponse()
        json_format.ParseDict(mutation, message, ignore_unknown_fields=True)
        return message

    assert outcome(lambda: parse_dict(mutation, GetFlowsResponse())) == outcome(reference)


# ===== Folded from test_review_capture.py ==========================================================
# Review tests for capture files: each pins a bug found by reading the code against what
# `hubble observe -o jsonpb` writes and what tools do to such files.


# ----- capture files ------------------------------------------------------------------------------


def test_a_byte_order_mark_at_the_start_of_a_capture_is_not_a_malformed_line(tmp_path) -> None:
    # Editors and Windows tools save UTF-8 with a BOM; the first flow must not be lost to it.
    lines = [response_to_line(make_flow_response(i)) for i in range(2)]
    text = "\ufeff" + "\r\n".join(lines) + "\r\n"
    path = tmp_path / "bom.json"
    path.write_bytes(text.encode("utf-8"))
    for source in (path, io.StringIO(text)):
        result = read_capture(source)
        assert result.problems == []
        assert [r.uuid for r in result.records] == ["f-0", "f-1"]


def test_a_byte_order_mark_elsewhere_is_still_reported() -> None:
    line = response_to_line(make_flow_response(0))
    result = read_capture(io.StringIO(line + "\n\ufeff" + line + "\n"))
    assert len(result.records) == 1
    assert [p.line for p in result.problems] == [2]


def test_a_utf16_capture_from_powershell_redirection_is_read(tmp_path) -> None:
    # Windows PowerShell 5's `hubble observe -o jsonpb > flows.json` writes UTF-16 with a BOM.
    lines = [response_to_line(make_flow_response(i)) for i in range(3)]
    path = tmp_path / "ps.json"
    path.write_bytes("\r\n".join(lines).encode("utf-16"))  # BOM + UTF-16LE/BE (native order)
    result = read_capture(path)
    assert result.problems == []
    assert [r.uuid for r in result.records] == ["f-0", "f-1", "f-2"]


def test_a_capture_read_from_a_pipe_loses_no_bytes(tmp_path) -> None:
    import os
    import threading

    line = response_to_line(make_flow_response(0))
    fifo = tmp_path / "flows.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w", encoding="utf-8") as writer:
            writer.write(line + "\n")

    feeder = threading.Thread(target=feed)
    feeder.start()
    result = read_capture(fifo)
    feeder.join(5)
    assert result.problems == [] and [r.uuid for r in result.records] == ["f-0"]

def test_a_masked_capture_takes_node_and_time_from_the_response(tmp_path: Path):
    lines = [
        # hubble observe -o jsonpb --field-mask verdict,l4: neither time nor node_name in the flow
        {"flow": {"verdict": "DROPPED", "l4": {"UDP": {"source_port": 5353, "destination_port": 53}}},
         "node_name": "kind-kind/kind-worker", "time": "2026-01-01T00:00:01.5Z"},
        # the flow's own values win
        {"flow": {"verdict": "FORWARDED", "node_name": "kind-kind/kind-worker2", "time": "2026-01-01T00:00:02Z"},
         "node_name": "elsewhere", "time": "2026-01-01T00:00:09Z"},
    ]  # fmt: skip
    path = tmp_path / "masked.json"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = read_capture(path)
    assert result.problems == []
    first, second = result.records
    assert (first.node, first.time_ns) == ("kind-kind/kind-worker", 1_767_225_601_500_000_000)
    assert first.flow().node_name == "kind-kind/kind-worker" and first.flow().time.ToNanoseconds() == first.time_ns
    assert (second.node, second.time_ns) == ("kind-kind/kind-worker2", 1_767_225_602_000_000_000)


def test_a_capture_with_vendor_extensions_keeps_the_flow(tmp_path: Path):
    line = {"flow": {"verdict": "FORWARDED", "node_name": "n", "time": "2026-01-01T00:00:01Z",
                     "extensions": {"@type": "type.googleapis.com/vendor.Unknown", "x": 1}},
            "node_name": "n", "time": "2026-01-01T00:00:01Z"}  # fmt: skip
    path = tmp_path / "ext.json"
    path.write_text(json.dumps(line) + "\n")
    result = read_capture(path)
    assert result.problems == [] and len(result.records) == 1
    assert result.records[0].node == "n" and not result.records[0].flow().HasField("extensions")
