"""Review 2: what `v` (verdict) and `n` (namespace) write into the filter.

Found by hand: after `w` in a flow's detail (it writes `from:… to:… or from:… to:…`),
`v` to dropped appended `verdict=dropped` once, so it only narrowed the second
alternative: forwarded flows of the first direction stayed on screen under a filter
that reads "dropped". Also: `not verdict=dropped` counted as the verdict dropped (`v`
then wrote `not verdict=audit`), a typed `dropped` did not count (so `v` added a second,
OR-ed verdict), and `n` on `ns=a or ns=b` wrote the broken `or namespace=…`.
The terms are now read from the parsed filter."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_support import CART, FRONTEND, UTC, FixedClock, flows, make_flow

from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import write_capture
from kcockpit.ui.app import CockpitApp
from kcockpit.ui.filtering import NAMESPACE_KEYS, VERDICT_KEYS, compile_filter, with_term
from kcockpit.application.session import CaptureSession
from kcockpit.wire.hubble_pb import flow_pb

BETWEEN = "from:pod=otel-demo/frontend to:pod=otel-demo/cartservice or from:pod=otel-demo/cartservice to:pod=otel-demo/frontend"


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        (BETWEEN, "dropped",
         "from:pod=otel-demo/frontend to:pod=otel-demo/cartservice verdict=dropped or "
         "from:pod=otel-demo/cartservice to:pod=otel-demo/frontend verdict=dropped"),
        ("dropped ns=otel-demo", "audit", "ns=otel-demo verdict=audit"),
        ("not verdict=dropped", "forwarded", "not verdict=dropped verdict=forwarded"),
        ("hubble observe -n otel-demo --verdict DROPPED --to-port 53", "audit",
         "hubble observe -n otel-demo --to-port 53 verdict=audit"),
        ("a=b verdict=dropped or c=d verdict=dropped", "", "a=b or c=d"),
    ],
)
def test_verdict_term_in_every_alternative(text: str, value: str, expected: str) -> None:
    assert with_term(text, VERDICT_KEYS, value) == expected
    assert not compile_filter(expected).error


def test_namespace_term_never_leaves_a_dangling_or() -> None:
    assert with_term("ns=a or ns=b", NAMESPACE_KEYS, "") == ""
    assert with_term("ns=a or ns=b", NAMESPACE_KEYS, "c") == "namespace=c or namespace=c"
    assert not compile_filter(with_term("ns=a or ns=b", NAMESPACE_KEYS, "c")).error


@pytest.mark.parametrize(
    ("text", "verdict", "namespace"),
    [
        ("dropped", "DROPPED", ""),
        ("not verdict=dropped", "", ""),
        ("!dropped ns=a", "", "a"),
        ("verdict=dropped,verdict=forwarded", "", ""),
        ("ns=a or ns=b", "", ""),
        ("ns=a verdict=dropped or ns=a verdict=dropped udp", "DROPPED", "a"),
        ("hubble observe -n x --verdict DROPPED", "DROPPED", "x"),
    ],
)
def test_the_verdict_and_namespace_are_those_every_alternative_requires(text: str, verdict: str, namespace: str) -> None:
    state = compile_filter(text)
    assert not state.error
    assert (state.verdict, state.namespace) == (verdict, namespace)


async def test_v_after_a_between_filter_shows_only_drops_in_both_directions(tmp_path: Path) -> None:
    records = [
        make_flow(0, FRONTEND, CART),
        make_flow(1, CART, FRONTEND),
        make_flow(2, FRONTEND, CART, verdict=flow_pb.DROPPED, drop_reason=flow_pb.POLICY_DENIED),
        make_flow(3, CART, FRONTEND, verdict=flow_pb.DROPPED, drop_reason=flow_pb.POLICY_DENIED),
    ]
    capture = tmp_path / "flows.json"
    write_capture(records, capture)
    app = CockpitApp(CaptureSession(str(capture), FlowStore(100)), zone=UTC, clock=FixedClock(),
                     export_dir=tmp_path, initial_filter=BETWEEN)
    async with app.run_test(size=(120, 30)) as pilot:
        assert len(flows(app).table.rows) == 4
        await pilot.press("v", "v")  # any -> forwarded -> dropped
        await pilot.pause()
        assert flows(app).filter_state.verdict == "DROPPED"
        shown = flows(app).table.rows.snapshot()
        assert [r.verdict for r in shown] == [flow_pb.DROPPED, flow_pb.DROPPED]


def test_all_namespaces_on_an_alternative_of_only_a_namespace_clears_the_filter() -> None:
    # (ns=a) or (ns=b) or (udp) without the namespaces is (anything) or ...: every flow.
    assert with_term("ns=a or ns=b or udp", NAMESPACE_KEYS, "") == ""
    assert with_term("ns=a udp or ns=b tcp", NAMESPACE_KEYS, "") == "udp or tcp"
