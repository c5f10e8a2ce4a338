"""The Flows tab: the filter bar over the live flow list, and everything done to that list.

Flows reach the list only through `store.since(mark)`, drained on a timer in batches: a
busy cluster sends thousands of flows a second, and one message per flow would drown the
event loop. The drain runs whether the tab is shown or not, so the list is current when
it comes back. Filters apply twice: locally at once on what the store holds, and as
whitelist/blacklist on the server (through the session), as `hubble observe` does.
"""

from __future__ import annotations

import time
from dataclasses import replace

from textual import work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding

from kcockpit.application.status import StatusInfo
from kcockpit.model.record import FlowRecord
from kcockpit.ui.filtering import narrowed, NAMESPACE_KEYS, VERDICT_KEYS, FilterState, compile_filter, with_term
from kcockpit.ui.rate import RateMeter
from kcockpit.ui.rows import RowBuffer
from kcockpit.ui.tabs.base import CockpitTab, Legend, TabContext
from kcockpit.ui.widgets.filter_bar import FilterBar
from kcockpit.ui.widgets.flow_table import FlowTable

DRAIN_INTERVAL = 1 / 20  # seconds between store drains (20 Hz)
SYNC_REFILTER_LIMIT = 2_000  # larger stores are re-filtered on a thread
# A thread re-filters the newest flows first and shows them, then the older ones in steps:
# a million stored flows take seconds to match, the newest matches appear at once.
REFILTER_STEP = 50_000
VERDICT_CYCLE = ("", "FORWARDED", "DROPPED", "AUDIT")
FLOW_LIST_LEGEND: Legend = (
    ("a → b", "a sent this to b: a is the client, PORT is b's (the service's) port."),
    ("a ← b", "b's reply to a (is_reply, or an L7 response): shown client first, as hubble "
              "observe does. The detail view (enter) keeps the raw source and destination."),
    ("ns/name", "the namespace, dimmed; left out for the namespace filtered on (n). Narrow "
                "columns only show it while a namespace filter is on."),
    ("world, host", "world shows its DNS name (else its IP); reserved identities their name."),
    ("→ GET /path", "an L7 request; its response reads ← 200 GET /path 12ms, DNS ← DNS A "
                    "name. NXDOMAIN. Cut from the path's end; status and rcode stay."),
    ("POLICY_DENIED", "a drop reason (red), first in L7 INFO and never cut."),
    ("×N", "aggregation (a): N consecutive flows that show the same row."),
)


class FlowsTab(CockpitTab):
    TAB_ID = "flows"
    TITLE = "Flows"

    BINDINGS = [
        # Priority: handled before the key reaches the focused table, so focus moves before
        # the keys typed right after it arrive (otherwise fast type-ahead such as `/ns=...`
        # could reach the table and open the namespace picker). The action steps aside while
        # the filter bar has focus, for filters like http-path=/api.
        Binding("slash", "focus_filter", "Filter", key_display="/", priority=True, id="flows.filter"),
        Binding("v", "cycle_verdict", "Verdict", id="flows.verdict"),
        Binding("n", "pick_namespace", "Namespace", id="flows.namespace"),
        Binding("x", "export", "Export view", show=False, id="flows.export"),
        Binding("a", "toggle_aggregate", "Aggregate", show=False, tooltip="collapse consecutive identical rows into one with ×N", id="flows.aggregate"),
        Binding("escape", "back", "Back/clear", show=False, id="flows.back"),
    ]

    DEFAULT_CSS = """
    FlowsTab { height: 1fr; }
    FlowsTab > #flow-table { height: 1fr; }
    """

    def __init__(self, context: TabContext) -> None:
        super().__init__(context)
        self.store = context.session.store
        self.filter_state = FilterState()
        self.refiltering = False  # a re-filter runs on a thread
        # Kept, not queried: the drain timer uses them 20 times a second, and may fire once
        # more while the app shuts down and the screen is already emptied.
        self.filter_bar = FilterBar(id="filter-bar")
        self.table = FlowTable(self.store.capacity, context.zone, id="flow-table")
        self._rate = RateMeter(context.clock or time.monotonic)
        self._mark = 0
        self._view_generation = 0  # bumped by every re-filter; a late worker result is ignored
        self._keep_in_view: FlowRecord | None = None  # the flow a paused view stays on when regrouped
        self._filter_generation: int | None = None
        self._server_filtered_from: int | None = None
        self._drilled_from: tuple[str, str] | None = None  # (filter before, tab to go back to)

    def compose(self) -> ComposeResult:
        yield self.filter_bar
        yield self.table

    # --- hooks -----------------------------------------------------------------------

    def session_started(self) -> None:
        if self.context.aggregate:
            self.table.show_rows(self.table.make_rows([], aggregate=True))
        if self.context.initial_filter:
            self.filter_bar.set_text(self.context.initial_filter)
            self.apply_filter(self.context.initial_filter)
        else:
            self._drain()
        self.set_interval(DRAIN_INTERVAL, self._drain)

    def tab_shown(self) -> None:
        self.screen.set_focus(self.table)

    def select_text(self, text: str) -> bool:
        """The newest row naming `text` (an endpoint, a DNS name, a path) is selected, paused."""
        if self.refiltering:  # the rows are still those of the previous filter
            return False
        matcher = self.filter_state.matcher

        def shows(record: FlowRecord) -> bool:
            if matcher is not None and not matcher.matches_record(record):
                return False  # a row drained before the server applied the new filter
            record = record.decoded()
            names = (record.source.workload_name(), record.destination.workload_name(),
                     record.source.short_name(), record.destination.short_name(), record.l7_info())
            return any(text in name for name in names)

        return self.table.select_newest(shows)

    def open_selected(self) -> None:
        self.table.action_open()

    def legend(self) -> Legend:
        return FLOW_LIST_LEGEND

    def describe_status(self, info: StatusInfo) -> StatusInfo:
        table = self.table
        return replace(
            info,
            flows_per_second=self._rate.per_second() if self.session.kind != "file" else None,
            follow=table.follow,
            new_while_paused=table.new_while_paused,
            filter_text=self.filter_state.description,
            shown=len(table.rows),
            busy="filtering…" if self.refiltering else "",
        )

    # --- draining --------------------------------------------------------------------

    def _drain(self) -> None:
        if not self.refiltering:
            self._check_server_filter()
            match_locally = self._must_match_locally()
            records, self._mark = self.store.since(self._mark)
            if records:
                self._rate.add_times(r.time_ns for r in records)
                if match_locally:
                    matcher = self.filter_state.matcher
                    records = [r for r in records if matcher.matches_record(r)]
                self.table.add_records(records)
        self._rate.sample(self.store.received)

    def _check_server_filter(self) -> None:
        """Once the server streams with the new filters, note where its flows start."""
        if self._server_filtered_from is None and self._filter_generation is not None:
            if self.session.filter_generation() > self._filter_generation:
                self._server_filtered_from = self.store.received

    def _must_match_locally(self) -> bool:
        """Whether the batch being drained needs the local matcher. Flows a server sent for
        the current filters already match: skipping them keeps 20k flows/s cheap. Flows from
        before the new request went live, and client-only predicates, are matched here."""
        state = self.filter_state
        if state.matcher is None:
            return False
        if state.client_only or not self.session.server_side_filters:
            return True
        return self._server_filtered_from is None or self._mark < self._server_filtered_from

    # --- filter ----------------------------------------------------------------------

    def apply_filter(self, text: str, keep: FlowRecord | None = None) -> bool:
        """Parse and apply `text`; on a syntax error show it under the bar and keep the old
        filter. With `keep`, a paused view stays paused on that flow if it still matches."""
        compiled = compile_filter(text)
        bar = self.filter_bar
        if compiled.error:
            bar.show_error(compiled.error)
            return False
        bar.show_error("")
        if bar.text != text:
            bar.set_text(text)
        bar.set_applied(compiled.text)
        self.filter_state = compiled
        self.table.set_namespace(compiled.namespace)
        self._filter_generation = self.session.filter_generation()
        self._server_filtered_from = None
        self.session.apply_filter(compiled.whitelist, compiled.blacklist)
        self._refilter(keep=keep)
        self.post_message(self.StatusChanged())
        return True

    def _refilter(self, aggregate: bool | None = None, keep: FlowRecord | None = None) -> None:
        """Rebuild the rows from the store with the current filter (and aggregation), then
        follow the newest, or stay on `keep` if it is still shown."""
        self._keep_in_view = keep
        records, mark = self.store.since(0)
        self._view_generation += 1
        aggregate = self.table.aggregate if aggregate is None else aggregate
        if len(records) <= SYNC_REFILTER_LIMIT:
            self.refiltering = False
            self._show_rows(self.table.make_rows(_matching(self.filter_state, records), aggregate), mark)
        else:
            self.refiltering = True
            self._refilter_on_thread(records, mark, self.filter_state, aggregate, self._view_generation)

    @work(thread=True, exclusive=True, group="refilter")
    def _refilter_on_thread(self, records: list[FlowRecord], mark: int, state: FilterState, aggregate: bool, generation: int) -> None:
        matched = _matching(state, records[-REFILTER_STEP:])
        end = len(records) - REFILTER_STEP
        if end > 0 and self._keep_in_view is None:  # following: show the newest matches now
            self.app.call_from_thread(self._show_partial_refilter, self.table.make_rows(matched, aggregate),
                                      mark, generation)
        while end > 0:
            if generation != self._view_generation:
                return  # a newer filter or view took over
            start = max(0, end - REFILTER_STEP)
            matched[:0] = _matching(state, records[start:end])
            end = start
        rows = self.table.make_rows(matched, aggregate)
        self.app.call_from_thread(self._finish_refilter, rows, mark, generation)

    def _show_partial_refilter(self, rows: RowBuffer, mark: int, generation: int) -> None:
        """The newest flows' matches while older ones are still matched (still "filtering…")."""
        if generation == self._view_generation and self._keep_in_view is None:
            self.table.show_rows(rows)

    def _finish_refilter(self, rows: RowBuffer, mark: int, generation: int) -> None:
        if generation == self._view_generation:
            self._show_rows(rows, mark)
            self.refiltering = False

    def _show_rows(self, rows: RowBuffer, mark: int) -> None:
        self._mark = mark
        self.table.show_rows(rows, keep=self._keep_in_view)
        self._keep_in_view = None

    def on_filter_bar_submitted(self, event: FilterBar.Submitted) -> None:
        if self.apply_filter(event.text):
            self.screen.set_focus(self.table)

    # --- flow list events --------------------------------------------------------------

    def on_flow_table_opened(self, event: FlowTable.Opened) -> None:
        from kcockpit.ui.screens.detail import FlowDetailScreen

        self.app.push_screen(FlowDetailScreen(event.record, self.context.zone), self._after_detail)

    def _after_detail(self, jump) -> None:  # a screens.detail.DetailJump, or None
        """`w` narrows the filter to the two workloads (the active filter stays), `d` shows the
        source's drops; a paused view stays paused on the flow it was on."""
        if not jump:
            return
        text = narrowed(self.filter_state.text, jump.filter_text) if jump.narrow else jump.filter_text
        self.apply_filter(text, keep=None if self.table.follow else self.table.selected)
        self.screen.set_focus(self.table)

    def on_flow_table_follow_changed(self, event: FlowTable.FollowChanged) -> None:
        self.post_message(self.StatusChanged())

    # --- actions ---------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        if self.app.focused is self.filter_bar.input:  # not has_focus: it lags behind a burst of keys
            raise SkipAction()  # the priority binding steps aside: the key types "/" into the filter
        self.screen.set_focus(self.filter_bar.input)

    def drill_down(self, filter_text: str, origin: str) -> bool:
        """Show `filter_text` for another tab; esc goes back there with the filter from before."""
        before = self._drilled_from[0] if self._drilled_from else self.filter_state.text
        if not self.apply_filter(filter_text):
            return False
        self.filter_bar.set_text(filter_text)
        self._drilled_from = (before, origin)
        return True

    def action_back(self) -> None:
        """esc: leave the filter bar; after a drill-down from another tab, go back there;
        else clear the active filter."""
        bar = self.filter_bar
        if bar.input.has_focus:
            bar.show_error("")
            self.screen.set_focus(self.table)
        elif self._drilled_from is not None:
            before, origin = self._drilled_from
            self._drilled_from = None
            self.apply_filter(before)
            self.filter_bar.set_text(before)
            self.post_message(self.ShowTab(origin))
        elif self.filter_state.text:
            cleared = self.filter_state.text
            if self.apply_filter(""):
                self.notify(f"{cleared}\n/ then ↑ brings it back", title="Filter cleared", timeout=4, markup=False)

    def action_cycle_verdict(self) -> None:
        current = self.filter_state.verdict
        following = VERDICT_CYCLE[(VERDICT_CYCLE.index(current) + 1) % len(VERDICT_CYCLE)] if current in VERDICT_CYCLE else ""
        self.apply_filter(with_term(self.filter_state.text, VERDICT_KEYS, following.lower()))
        self.notify(f"verdict: {following.lower() or 'any'}", timeout=1.5)

    def action_pick_namespace(self) -> None:
        self._pick_namespace()

    @work(exclusive=True, group="namespaces")
    async def _pick_namespace(self) -> None:
        from kcockpit.ui.screens.namespaces import NamespacePicker

        names = await self.session.namespaces()
        choice = await self.app.push_screen_wait(NamespacePicker(names, self.filter_state.namespace))
        if choice is not None:
            self.apply_filter(with_term(self.filter_state.text, NAMESPACE_KEYS, choice))

    def action_toggle_aggregate(self) -> None:
        table = self.table
        aggregate = not table.aggregate
        self._refilter(aggregate, keep=None if table.follow else table.selected)
        self.notify("consecutive identical flows are one row (×N)" if aggregate else "one row per flow",
                    title=f"Aggregation {'on' if aggregate else 'off'}", timeout=2)

    def action_export(self) -> None:
        from kcockpit.ui.export import export_records

        records = self.table.rows.snapshot()
        if not records:
            self.notify("Nothing to export: the view is empty.", severity="warning")
            return
        try:
            exported = export_records(records, self.context.export_dir)
        except OSError as error:
            self.notify(f"Export failed: {error}", severity="error", markup=False)
            return
        self.notify(exported.message(), title="Export", markup=False, severity="warning" if exported.skipped else "information")


def _matching(state: FilterState, records: list[FlowRecord]) -> list[FlowRecord]:
    matcher = state.matcher
    return records if matcher is None else [r for r in records if matcher.matches_record(r)]
