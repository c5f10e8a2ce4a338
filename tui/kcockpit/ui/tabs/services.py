"""The Services tab: a live service-dependency tree with rates, errors, drops, latency and
the golden signals of the selected workload.

The tree is built below the ui (`model.service_tree`) from the aggregates' service edges
of the window; this module only decides when to rebuild (the aggregates' generation, the
window, the second of 'now', the sort, the inversion) and draws. The golden-signals panel
(`application.service_signals`) says where every number comes from: `prometheus` when the
session's Prometheus is ready, else `flows`, with Prometheus's error shown.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Input, Sparkline, Static

from kcockpit.application.service_signals import PanelSignals, fetch_prometheus_signals, flow_signals
from kcockpit.model.aggregates import Endpoint, window_label
from kcockpit.model.service_tree import (
    DROP_THRESHOLD, ERROR_THRESHOLD, SORTS, NodeKey, ServiceTree, build_tree, default_collapsed, edge_filter,
    expandable_keys, visible_rows,
)
from kcockpit.ui.printable import printable
from kcockpit.ui.tabs.base import CockpitTab, Legend, TabContext
from kcockpit.ui.widgets.service_tree import MARK_BACKREF, MARK_BAD, MARK_FOLDED, ServiceTreeView

WINDOWS = (60, 300, 900, None)
PROMETHEUS_REFRESH_S = 5.0
WIDE = 120  # from this width the signals panel sits beside the tree

SERVICES_LEGEND: Legend = (
    ("a tree row", "an endpoint the row above calls, on its server PORT/protocol; the numbers are that edge's."),
    ("roots", "entry points: workloads reached from world/ingress (← world), workloads nobody in the cluster "
              "calls, then reserved callers such as host (kubelet probes, folded)."),
    ("RATE", "r/s: HTTP requests per second (L7 visibility); f/s: flows per second otherwise; over the window."),
    ("ERR", "5xx among the HTTP responses (the server's proxy's report when it has one)."),
    ("DROPS", "dropped flows in the window, and the most frequent drop reason."),
    ("P95 · SEEN", "95th percentile HTTP latency; how long ago the edge's last flow was seen."),
    (MARK_BAD, f"an unhealthy edge (red): more than {DROP_THRESHOLD:.0%} of its flows dropped or more than "
               f"{ERROR_THRESHOLD:.0%} 5xx."),
    (MARK_BACKREF, "before a name: a workload shown in full elsewhere in the tree (cycles never recurse)."),
    (f"{MARK_FOLDED} ▾", "folded / unfolded: space, ←/→."),
    ("ns/", "dim: the namespace, shown only when it differs from the parent's."),
    ("signals", "the selected workload as a server; every number says its source: prometheus (the Hubble "
                "dashboards' queries) or flows (counted here)."),
)


DATA_REDRAW_S = 1.0  # new counts redraw the tree at most this often


class ServicesTab(CockpitTab):
    TAB_ID = "services"
    TITLE = "Services"

    BINDINGS = [
        Binding("r", "invert", "Who calls?", tooltip="invert the tree: who calls the selected workload (again: back)", id="services.invert"),
        Binding("t", "cycle_window", "Window", tooltip="window: 1m, 5m, 15m, all", id="services.window"),
        Binding("s", "cycle_sort", "Sort", tooltip="sort children by rate, errors, drops, latency", id="services.sort"),
        Binding("e", "expand_all", "Fold all", tooltip="expand or collapse the whole tree", id="services.expand_all"),
        Binding("slash", "find", "Find", key_display="/", tooltip="show only rows whose name contains a text", id="services.find"),
        Binding("g", "toggle_signals", "Signals", tooltip="show or hide the golden-signals panel", id="services.signals"),
        Binding("escape", "clear", "Clear", show=False, tooltip="clear the name filter, leave the inverted view", id="services.clear"),
    ]

    DEFAULT_CSS = """
    ServicesTab { height: 1fr; }
    ServicesTab #svc-head { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    ServicesTab #svc-body { height: 1fr; layout: vertical; }
    ServicesTab.-wide #svc-body { layout: horizontal; }
    ServicesTab #svc-tree { height: 1fr; width: 1fr; }
    ServicesTab #svc-signals { height: auto; max-height: 9; width: 1fr; border-top: solid $primary-muted; padding: 0 1; }
    ServicesTab.-wide #svc-signals { height: 1fr; max-height: 100%; width: 38; border-top: none; border-left: solid $primary-muted; }
    ServicesTab #svc-signals.-hidden { display: none; }
    ServicesTab .sig-row { height: 1; layout: horizontal; }
    ServicesTab.-wide .sig-row { height: 2; layout: vertical; }
    ServicesTab .sig-text { width: 1fr; height: 1; }
    ServicesTab .sig-row Sparkline { width: 18; height: 1; }
    ServicesTab.-wide .sig-row Sparkline { width: 1fr; }
    ServicesTab #sig-title { height: 1; text-style: bold; text-wrap: nowrap; text-overflow: ellipsis; }
    ServicesTab.-wide #sig-title { height: auto; text-wrap: wrap; margin-bottom: 1; }
    ServicesTab #sig-rest { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    ServicesTab .sig-text { text-wrap: nowrap; text-overflow: ellipsis; }
    ServicesTab #svc-find { dock: bottom; display: none; height: 1; border: none; padding: 0 1; }
    ServicesTab #svc-find.-shown { display: block; }
    """

    def __init__(self, context: TabContext) -> None:
        super().__init__(context)
        self.window_index = 0
        self.sort = "rate"
        self.invert_target: str | None = None
        self._return_key: NodeKey | None = None  # where the cursor goes back to when leaving the inverted view
        self.collapsed: set[NodeKey] = set()
        self._folded_by_default: set[NodeKey] = set()
        self.name_filter = ""
        self.service_tree: ServiceTree | None = None
        self._edges: list = []
        self._drawn: tuple | None = None
        self._now_s = 0
        self._span_s = 1.0
        self._signals_for: tuple | None = None
        self._prometheus: PanelSignals | None = None
        self._prometheus_busy = False
        self._prometheus_cache: dict = {}
        self.refreshes = 0  # tree rebuilds: the benchmark reads it
        self._signals_stale = False
        self._by_endpoint: dict = {}  # endpoint -> its edges (as client or server) in the window
        self.tree_view = ServiceTreeView(id="svc-tree")

    def compose(self) -> ComposeResult:
        yield Static(id="svc-head")
        with Horizontal(id="svc-body"):
            yield self.tree_view
            with Vertical(id="svc-signals"):
                yield Static(id="sig-title")
                for name in ("traffic", "errors", "latency"):
                    with Horizontal(classes="sig-row"):
                        yield Static(classes="sig-text", id=f"sig-{name}")
                        yield Sparkline([], id=f"spark-{name}")
                yield Static(id="sig-rest")
        yield Input(placeholder="find: a name or part of one (enter keeps it, esc clears)", id="svc-find")

    # --- hooks ---------------------------------------------------------------------------

    def on_resize(self) -> None:
        self.set_class(self.size.width >= WIDE, "-wide")

    def tab_shown(self) -> None:
        self.set_class(self.size.width >= WIDE, "-wide")
        self.screen.set_focus(self.tree_view)
        self.refresh_tab()

    def refresh_tab(self) -> None:
        aggregates = self.session.aggregates
        if aggregates is None:
            self._head(Content.from_markup("[b]Services[/] · no flow counting in this session"))
            return
        feed = self.session.feed
        now_s = feed.now_s() if feed is not None else aggregates.now_s()
        # What the user changed redraws at once; new counts at most once a second (they are
        # per-second cells): a rebuild every merge cost key presses their latency at 20k flows/s.
        view = (self.window_s, self.sort, self.invert_target)
        data = (aggregates.generation, now_s)
        drawn_view, drawn_data, drawn_at = self._drawn if self._drawn else (None, None, 0.0)
        clock = time.monotonic()
        if view != drawn_view or (data != drawn_data and clock - drawn_at >= DATA_REDRAW_S):
            self._drawn = (view, data, clock)
            self._rebuild(now_s)
        elif self._signals_stale:
            self._update_signals()
        self._maybe_fetch_prometheus()

    def legend(self) -> Legend:
        return SERVICES_LEGEND

    # --- building ------------------------------------------------------------------------

    @property
    def window_s(self) -> int | None:
        return WINDOWS[self.window_index]

    def _rebuild(self, now_s: int, keep: NodeKey | None = None) -> None:
        aggregates = self.session.aggregates
        if aggregates is None:
            return
        self._now_s = now_s
        window = aggregates.window(self.window_s, now_s)
        self._span_s = window.span_s
        self._edges = aggregates.services(self.window_s, now_s)
        self._by_endpoint = {}
        for edge in self._edges:
            self._by_endpoint.setdefault(edge.client, []).append(edge)
            if edge.server != edge.client:
                self._by_endpoint.setdefault(edge.server, []).append(edge)
        self.service_tree = build_tree(self._edges, self._span_s, sort=self.sort, invert=self.invert_target)
        fresh = default_collapsed(self.service_tree) - self._folded_by_default
        self.collapsed |= fresh
        self._folded_by_default |= fresh
        self.refreshes += 1
        self._redraw_rows(keep)
        what = f"who calls {self.invert_target}? (r/esc: back)" if self.invert_target else f"{len(self._edges)} edges"
        found = f" · find “{printable(self.name_filter)}”" if self.name_filter else ""
        span = "since start" if self.window_s is None else f"last {window.label}"
        self._head(Content.assemble(
            ("Services", "bold"), " · from flows, ", (span, "bold"),
            f" · {what} · {window.flows:,} flows · sort {self.sort} · {window.scope}{found}",
        ))
        self._update_signals()

    def _redraw_rows(self, keep: NodeKey | None = None) -> None:
        if self.service_tree is None:
            return
        rows = visible_rows(self.service_tree, self.collapsed, self.name_filter)
        self.tree_view.set_rows(rows, self._now_s, self._span_s, self.name_filter, keep=keep)

    def _head(self, content: Content) -> None:
        self.query_one("#svc-head", Static).update(content)

    # --- keys ----------------------------------------------------------------------------

    def action_cycle_window(self) -> None:
        self.window_index = (self.window_index + 1) % len(WINDOWS)
        self._prometheus = None
        self.refresh_tab()
        self.notify(f"window: {window_label(self.window_s)}", timeout=1.5)

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.refresh_tab()

    def action_invert(self) -> None:
        if self.invert_target is not None:
            self.invert_target = None
            keep, self._return_key = self._return_key, None
            self._drawn = None
            self._rebuild(self._now_s, keep)
            return
        row = self.tree_view.selected
        if row is None or not row.node.endpoint.in_cluster:
            self.notify("select a workload first (r shows who calls it)", severity="warning", timeout=2)
            return
        self._return_key = row.node.key
        self.invert_target = row.node.endpoint.name
        self._drawn = None
        self.refresh_tab()
        if self.service_tree is not None and self.service_tree.roots:
            self.tree_view.set_rows(self.tree_view.rows, self._now_s, self._span_s, self.name_filter, keep=self.service_tree.roots[0].key)

    def action_expand_all(self) -> None:
        if self.service_tree is None:
            return
        expandable = expandable_keys(self.service_tree)
        if self.collapsed & expandable:
            self.collapsed -= expandable
        else:
            self.collapsed |= expandable
        self._redraw_rows()

    def action_find(self) -> None:
        find = self.query_one("#svc-find", Input)
        find.add_class("-shown")
        find.value = self.name_filter
        find.focus()

    def action_clear(self) -> None:
        if self.name_filter:
            self._set_filter("")
        elif self.invert_target is not None:
            self.action_invert()

    def action_toggle_signals(self) -> None:
        panel = self.query_one("#svc-signals")
        panel.toggle_class("-hidden")
        self._update_signals()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "svc-find":
            event.stop()
            self._set_filter(event.value, focus=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "svc-find":
            event.stop()
            self._set_filter(event.value)

    def on_key(self, event) -> None:
        find = self.query_one("#svc-find", Input)
        if event.key == "escape" and find.has_focus:
            event.stop()
            event.prevent_default()
            self._set_filter("")

    def _set_filter(self, text: str, focus: bool = True) -> None:
        self.name_filter = text.strip()
        find = self.query_one("#svc-find", Input)
        if focus:
            find.set_class(bool(self.name_filter), "-shown")
            self.tree_view.focus()
        self._drawn = None
        self.refresh_tab()

    def on_service_tree_view_toggled(self, event: ServiceTreeView.Toggled) -> None:
        event.stop()
        fold = (event.key not in self.collapsed) if event.fold is None else event.fold
        if fold:
            self.collapsed.add(event.key)
        else:
            self.collapsed.discard(event.key)
        self._redraw_rows()

    def on_service_tree_view_moved(self, event: ServiceTreeView.Moved) -> None:
        event.stop()
        self._signals_stale = True  # drawn by the next refresh (4 Hz): moving stays instant

    def on_service_tree_view_opened(self, event: ServiceTreeView.Opened) -> None:
        event.stop()
        text = self.filter_for(event.row)
        if text:
            self.open_flows(text)

    def filter_for(self, row) -> str:
        """The Flows tab's filter for a row: exactly its edge; a root without one, its flows."""
        node, edge = row.node, row.node.edge
        if edge is not None and row.parent is not None or (edge is not None and edge.client.name in ("world", "ingress")):
            return edge_filter(edge.client, edge.server, edge.port, edge.protocol)
        endpoint = node.endpoint
        if endpoint.in_cluster:
            namespace, _, workload = endpoint.name.partition("/")
            return f"ns={namespace} workload={workload}"
        return edge_filter(edge.client, edge.server, edge.port, edge.protocol) if edge is not None else ""

    # --- golden signals ------------------------------------------------------------------

    def _selected_workload(self) -> Endpoint | None:
        row = self.tree_view.selected
        return row.node.endpoint if row is not None else None

    def _prometheus_feed(self):
        integrations = self.session.integrations
        return integrations.prometheus if integrations is not None else None

    def _update_signals(self) -> None:
        self._signals_stale = False
        aggregates = self.session.aggregates
        workload = self._selected_workload()
        panel = next(iter(self.query("#svc-signals")), None)  # gone while the app shuts down
        if panel is None:
            return
        if aggregates is None or workload is None or panel.has_class("-hidden"):
            self._paint_signals(None, "")
            return
        label = window_label(self.window_s)
        flows = flow_signals(aggregates, self._by_endpoint.get(workload, []), workload, self.window_s, self._now_s, self._span_s, label)
        why = self._prometheus_problem()
        prometheus = self._prometheus
        if prometheus is not None and prometheus.workload == workload.name and prometheus.window == label:
            if prometheus.lines:
                self._paint_signals(prometheus, "")
                return
            why = prometheus.error
        self._paint_signals(flows, why)

    def _prometheus_problem(self) -> str:
        feed = self._prometheus_feed()
        if feed is None or not feed.enabled:
            return "no Prometheus (--prometheus URL)"
        if feed.state == "ready":
            return "prometheus: asking…"
        if feed.state == "failed":
            return f"prometheus: {feed.detail}"
        if feed.state == "absent":
            return f"no Prometheus: {feed.detail}" if feed.detail else "no Prometheus"
        return f"prometheus {feed.state}"

    def _maybe_fetch_prometheus(self) -> None:
        feed = self._prometheus_feed()
        workload = self._selected_workload()
        if feed is None or feed.state != "ready" or feed.config is None or workload is None or self._prometheus_busy:
            return
        panel = next(iter(self.query("#svc-signals")), None)
        if panel is None or panel.has_class("-hidden"):
            return
        label = window_label(self.window_s)
        current = self._prometheus
        if (current is not None and current.workload == workload.name and current.window == label
                and time.time() - current.fetched_at < PROMETHEUS_REFRESH_S):
            return
        self._prometheus_busy = True
        self.run_worker(self._fetch(feed.config, workload, label), group="services-prometheus", exclusive=True)

    async def _fetch(self, config, workload: Endpoint, label: str) -> None:
        try:
            self._prometheus = await fetch_prometheus_signals(config, workload, label, self._prometheus_cache)
        finally:
            self._prometheus_busy = False
        self._update_signals()

    def _paint_signals(self, signals: PanelSignals | None, why: str) -> None:
        title = self.query_one("#sig-title", Static)
        rest = self.query_one("#sig-rest", Static)
        if signals is None:
            title.update("golden signals: select a workload")
            for name in ("traffic", "errors", "latency"):
                self.query_one(f"#sig-{name}", Static).update("")
                self.query_one(f"#spark-{name}", Sparkline).data = []
            rest.update("")
            return
        title.update(Content.assemble(
            (printable(signals.workload), "bold"), f" as a server · {signals.window} · source: ",
            (signals.source, "bold"),
        ))
        lines = {line.name: line for line in signals.lines}
        for name in ("traffic", "errors", "latency"):
            line = lines.get(name)
            text = self.query_one(f"#sig-{name}", Static)
            spark = self.query_one(f"#spark-{name}", Sparkline)
            if line is None:
                text.update("")
                spark.data = []
                continue
            text.update(_line_content(line))
            spark.data = list(line.series) if any(line.series) else []
        others = [_line_content(line) for line in signals.lines if line.name not in ("traffic", "errors", "latency")]
        if why:
            others.append(Content.assemble(("! ", "bold $text-warning"), (printable(why)[:200], "$text-warning")))
        rest.update(Content("\n").join(others))


def _line_content(line) -> Content:
    mark = f"{MARK_BAD} " if line.bad else ""
    return Content.assemble(
        (f"{line.name:<11}", "$text-muted"), (mark + printable(line.text), "bold $text-error" if line.bad else "bold"),
        (f" · {line.source}", "$text-muted"),
    )
