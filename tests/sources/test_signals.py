"""HTTP signals count each request once: one reporter's view (client- and server-side
proxies both export hubble_http_* when both ends have L7 visibility)."""

from kcockpit.model.red import Scope
from kcockpit.sources.signals import LABELS_CONTEXT, LabelMode, SignalQueries


def test_every_http_query_pins_the_discovered_reporter() -> None:
    queries = SignalQueries(LabelMode(LABELS_CONTEXT, http_reporter="server"), Scope("otel-demo", "frontend"))
    for promql in (queries.traffic(), queries.errors(), queries.latency(0.95), queries.requests_by_source(),
                   queries.top_traffic(5), queries.top_errors(5), queries.top_latency_p95(5)):  # fmt: skip
        http_selectors = promql.count("hubble_http_")
        assert promql.count('reporter="server"') == http_selectors, promql


def test_without_a_reporter_label_nothing_is_pinned() -> None:
    queries = SignalQueries(LabelMode(LABELS_CONTEXT), Scope("otel-demo", "frontend"))
    assert "reporter" not in queries.traffic()
