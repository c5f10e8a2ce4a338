"""Review tests for FlowRecord and FlowStore: each pins a bug found by reading the code for
what the reader thread and the UI do to the same records at the same time."""

from __future__ import annotations

import sys

from observer_fixture import make_flow_response

from kcockpit.model.record import _DETAIL_FIELDS, FlowRecord
from kcockpit.wire.hubble_pb import flow_pb

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
    # Another thread (the UI) may read a record while the reader thread decodes it: any slot it
    # can see must already hold its final value, never a placeholder ("" or ()) set on the way.
    record = FlowRecord.from_bytes(_dns_response_flow().SerializeToString())
    seen: dict[str, list[object]] = {}

    def snapshot() -> None:
        for name in _DETAIL_FIELDS:
            try:
                value = object.__getattribute__(record, name)
            except AttributeError:
                continue
            seen.setdefault(name, []).append(value)

    def tracer(frame, event, arg):
        if frame.f_code is FlowRecord._decode_details.__code__:
            def on_line(frame, event, arg):
                snapshot()  # what a second thread would see at this point
                return on_line
            return on_line
        return None

    sys.settrace(tracer)
    try:
        record._decode_details()
    finally:
        sys.settrace(None)
    snapshot()
    changed = {name: values for name, values in seen.items() if any(v != values[-1] for v in values)}
    assert changed == {}
    assert (record.dns_query, record.dns_qtypes, record.dns_ips, record.dns_rcode) == (
        "example.com.", ("A",), ("1.2.3.4",), 3
    )
