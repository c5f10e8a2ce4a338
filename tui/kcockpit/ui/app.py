"""CockpitApp: the full-screen shell (tabs, filter bar, flow table, status bar, footer).

Flows reach the screen only through `store.since(mark)`, drained on a timer in batches:
a busy cluster sends thousands of flows a second, and one message per flow would drown
the event loop. Filters apply twice: locally at once on what the store holds, and as
whitelist/blacklist on the server, as `hubble observe` does.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Callable, Iterable
from datetime import tzinfo
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.actions import SkipAction
from textual.command import CommandPalette
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer

from kcockpit.model.record import FlowRecord
from kcockpit.ui.filtering import NAMESPACE_KEYS, VERDICT_KEYS, FilterState, compile_filter, with_term
from kcockpit.ui.hangup import on_hangup
from kcockpit.ui.rate import RateMeter
from kcockpit.ui.rows import RowBuffer
from kcockpit.application.session import Session
from kcockpit.application.status import StatusInfo
from kcockpit.ui.themes import THEMES
from kcockpit.ui.widgets.coming_soon import COMING_SOON, ComingSoon
from kcockpit.ui.widgets.filter_bar import FilterBar
from kcockpit.ui.widgets.flow_table import FlowTable
from kcockpit.ui.widgets.status_bar import StatusBar
from kcockpit.ui.widgets.tab_bar import TABS, TabBar

DRAIN_INTERVAL = 1 / 20  # seconds between store drains (20 Hz)
STATUS_EVERY = 4  # drains per status bar update (5 Hz)
NODES_INTERVAL = 5.0  # seconds between ServerStatus polls
SYNC_REFILTER_LIMIT = 2_000  # larger stores are re-filtered on a thread
FULL_GC_INTERVAL = 60.0  # seconds between the app's own full garbage collections
MIN_SIZE = (80, 24)
VERDICT_CYCLE = ("", "FORWARDED", "DROPPED", "AUDIT")
DEMO_PHASE_HELP = {
    "healthy": "no policy on frontend: the shop works",
    "broken": "apply frontend-egress-allow-to-backend: frontend's DNS lookups are dropped",
    "fixed": "the policy now also allows DNS to kube-dns: traffic recovers",
}
MAIN_SCREEN_ACTIONS = {
    "show_tab", "next_tab", "previous_tab", "focus_filter", "cycle_verdict", "pick_namespace", "export", "back",
    "toggle_aggregate",
}
FLOW_LIST_LEGEND = (
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


class CockpitScreen(Screen):
    """The main screen: tab bar, tab bodies, status bar, footer."""

    def compose(self) -> ComposeResult:
        app = self.app
        assert isinstance(app, CockpitApp)
        yield TabBar("kcockpit", id="tab-bar")
        with ContentSwitcher(initial="flows", id="tabs"):
            with Vertical(id="flows"):
                yield FilterBar(id="filter-bar")
                yield FlowTable(app.store.capacity, app.zone, id="flow-table")
            for tab_id in COMING_SOON:
                yield ComingSoon(tab_id)
        yield StatusBar(id="status-bar")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        app = self.app
        assert isinstance(app, CockpitApp)
        app.main_screen_ready(self)

    def on_resize(self) -> None:
        app = self.app
        assert isinstance(app, CockpitApp)
        app.check_size()


class CockpitApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "kcockpit"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("1", "show_tab('flows')", "Flows", show=False, id="app.tab.flows"),
        Binding("2", "show_tab('services')", "Services", show=False, id="app.tab.services"),
        Binding("3", "show_tab('dns')", "DNS", show=False, id="app.tab.dns"),
        Binding("4", "show_tab('policies')", "Policies", show=False, id="app.tab.policies"),
        Binding("tab", "next_tab", "Next tab", show=False, priority=True, id="app.tab.next"),
        Binding("shift+tab", "previous_tab", "Previous tab", show=False, priority=True, id="app.tab.previous"),
        # Priority: handled before the key reaches the focused table, so focus moves before
        # the keys typed right after it arrive (otherwise fast type-ahead such as `/ns=...`
        # could reach the table and open the namespace picker). The action steps aside while
        # the filter bar has focus, for filters like http-path=/api.
        Binding("slash", "focus_filter", "Filter", key_display="/", priority=True, id="app.filter"),
        Binding("v", "cycle_verdict", "Verdict", id="app.verdict"),
        Binding("n", "pick_namespace", "Namespace", id="app.namespace"),
        Binding("x", "export", "Export view", show=False, id="app.export"),
        Binding("a", "toggle_aggregate", "Aggregate", show=False, tooltip="collapse consecutive identical rows into one with ×N", id="app.aggregate"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
        Binding("escape", "back", "Back/clear", show=False, id="app.back"),
        Binding("ctrl+t", "cycle_theme", "Theme", show=False, id="app.theme"),
        Binding("right_square_bracket", "demo_phase(1)", "Phase", key_display="]", tooltip="next demo scenario phase", id="demo.next_phase"),
        Binding("left_square_bracket", "demo_phase(-1)", "Previous demo phase", key_display="[", show=False, id="demo.previous_phase"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        session: Session,
        *,
        initial_filter: str = "",
        theme: str = "dark",
        zone: tzinfo | None = None,
        clock: Callable[[], float] = time.monotonic,
        export_dir: Path | None = None,
        start_session: bool = True,
        aggregate: bool = False,
        quit_on_signals: bool = False,
    ) -> None:
        super().__init__()
        self.session = session
        self.store = session.store
        self.zone = zone
        self.clock = clock
        self.export_dir = export_dir or Path.cwd()
        self.start_session = start_session
        self._quit_on_signals = quit_on_signals
        self._aggregate_at_start = aggregate
        self._view_generation = 0  # bumped by every re-filter; a late worker result is ignored
        self._keep_in_view: FlowRecord | None = None  # the flow a paused view stays on when regrouped
        self.filter_state = FilterState()
        self._initial_filter = initial_filter
        self._mark = 0
        self._ticks = 0
        self.refiltering = False
        self._node_counts: tuple[int, int] | None = None
        self._rate = RateMeter(clock)
        self._too_small = False
        self._filter_generation: int | None = None
        self._server_filtered_from: int | None = None
        self._gc_thresholds = gc.get_threshold()
        for custom in THEMES.values():
            self.register_theme(custom)
        self.theme = THEMES[theme].name

    # --- lifecycle ---------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        self.main = CockpitScreen()
        return self.main

    @property
    def table(self) -> FlowTable:
        return self._table

    @property
    def filter_bar(self) -> FilterBar:
        return self._filter_bar

    def main_screen_ready(self, screen: CockpitScreen) -> None:
        # Kept, not queried: the drain timer uses them 20 times a second, and may fire once
        # more while the app shuts down and the screen is already emptied.
        self._table = screen.query_one(FlowTable)
        self._filter_bar = screen.query_one(FilterBar)
        self._status_bar = screen.query_one(StatusBar)
        if self.start_session:
            self.session.start()
        if self._quit_on_signals:
            self._exit_cleanly_on_signals()
        self.main.set_focus(self.table)
        if self._aggregate_at_start:
            self.table.show_rows(self.table.make_rows([], aggregate=True))
        if self._initial_filter:
            self.filter_bar.set_text(self._initial_filter)
            self.apply_filter(self._initial_filter)
        else:
            self._drain()
        self.set_interval(DRAIN_INTERVAL, self._drain)
        self._tame_garbage_collector()
        if self.session.server_side_filters:
            self.set_interval(NODES_INTERVAL, self._poll_nodes)
            self.call_later(self._poll_nodes)
        self._update_status()
        self.check_size()

    def _exit_cleanly_on_signals(self) -> None:
        """SIGTERM, and SIGHUP when the SSH session drops, quit like `q`: the session stops
        its servers and removes its temporary files instead of leaving them behind."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, self.exit)
            signal.signal(signal.SIGHUP, lambda _number, _frame: self._hang_up(loop))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such signal
            pass

    def _hang_up(self, loop: asyncio.AbstractEventLoop) -> None:
        """A plain signal handler, not the loop's: it runs before a pending SIGCONT's (lower
        signal number), which `on_hangup` must neutralise first."""
        on_hangup()
        loop.call_soon_threadsafe(self.exit)

    async def on_unmount(self) -> None:
        gc.set_threshold(*self._gc_thresholds)
        gc.unfreeze()
        await self.session.stop()

    def _tame_garbage_collector(self) -> None:
        """Python's automatic full collections walk every live object: with a quarter million
        flow records that is a 100+ ms freeze every few seconds at 20k flows/s. Records are
        freed by reference counting (no cycles), so full collections run here once a minute
        instead, and the objects of the app itself are frozen out of them."""
        young, middle, _ = self._gc_thresholds
        gc.collect()
        gc.freeze()
        gc.set_threshold(young, middle, 1_000_000)
        self.set_interval(FULL_GC_INTERVAL, self._collect_garbage)

    def _collect_garbage(self) -> None:
        # A method, not gc.collect itself: Textual's timers inspect the callback's
        # signature, which a C builtin does not have (the app crashed after a minute).
        gc.collect()

    # --- draining ----------------------------------------------------------------

    def _drain(self) -> None:
        self._ticks += 1
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
        if self._ticks % STATUS_EVERY == 0:
            self._update_status()

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

    def _update_status(self) -> None:
        state = self.session.state()
        demo = getattr(self.session, "demo", None)
        table = self.table
        counters = self.store.counters()
        info = StatusInfo(
            source=self.session.label,
            state=state.state,
            state_detail=state.detail,
            flows_per_second=self._rate.per_second() if self.session.kind != "file" else None,
            nodes=self._node_counts,
            retained=counters.retained,
            evicted=counters.evicted,
            lost=counters.lost_at_server,
            follow=table.follow,
            new_while_paused=table.new_while_paused,
            filter_text=self.filter_state.description,
            shown=len(table.rows),
            busy="filtering…" if self.refiltering else "",
            scenario=demo.describe() if demo is not None else "",
        )
        self._status_bar.show(info)
        if self.screen is not self.main:
            for bar in self.screen.query(StatusBar):  # screens pushed over it show one too
                bar.show(info)

    async def _poll_nodes(self) -> None:
        self._node_counts = await self.session.node_counts()

    # --- filter --------------------------------------------------------------------

    def apply_filter(self, text: str) -> bool:
        """Parse and apply `text`; on a syntax error show it under the bar and keep the old filter."""
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
        self._refilter()
        self._update_status()
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
        rows = self.table.make_rows(_matching(state, records), aggregate)
        self.call_from_thread(self._finish_refilter, rows, mark, generation)

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
            self.main.set_focus(self.table)

    # --- flows table events ------------------------------------------------------

    def on_flow_table_opened(self, event: FlowTable.Opened) -> None:
        from kcockpit.ui.screens.detail import FlowDetailScreen

        self.push_screen(FlowDetailScreen(event.record, self.zone), self._after_detail)

    def _after_detail(self, jump: str | None) -> None:
        if jump:
            self.apply_filter(jump)
            self.main.set_focus(self.table)

    def on_flow_table_follow_changed(self, event: FlowTable.FollowChanged) -> None:
        self._update_status()

    # --- actions -----------------------------------------------------------------

    def action_show_tab(self, tab_id: str) -> None:
        self.main.query_one(ContentSwitcher).current = tab_id
        self.main.query_one(TabBar).active = tab_id
        if tab_id == "flows":
            self.main.set_focus(self.table)

    def _step_tab(self, step: int) -> None:
        if len(self.screen_stack) > 1:
            return
        ids = [tab_id for tab_id, _ in TABS]
        current = self.main.query_one(ContentSwitcher).current or "flows"
        self.action_show_tab(ids[(ids.index(current) + step) % len(ids)])

    def action_next_tab(self) -> None:
        self._step_tab(1)

    def action_previous_tab(self) -> None:
        self._step_tab(-1)

    def action_focus_filter(self) -> None:
        if self.focused is self.filter_bar.input:  # not has_focus: it lags behind a burst of keys
            raise SkipAction()  # the priority binding steps aside: the key types "/" into the filter
        self.action_show_tab("flows")
        self.main.set_focus(self.filter_bar.input)

    def action_back(self) -> None:
        """esc: leave the filter bar, else clear the active filter."""
        bar = self.filter_bar
        if bar.input.has_focus:
            bar.show_error("")
            self.main.set_focus(self.table)
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
        choice = await self.push_screen_wait(NamespacePicker(names, self.filter_state.namespace))
        if choice is not None:
            self.apply_filter(with_term(self.filter_state.text, NAMESPACE_KEYS, choice))

    def action_help(self) -> None:
        from kcockpit.ui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self.screen, FLOW_LIST_LEGEND if self.screen is self.main else ()))

    def action_toggle_aggregate(self) -> None:
        table = self.table
        aggregate = not table.aggregate
        self._refilter(aggregate, keep=None if table.follow else table.selected)
        self.notify("consecutive identical flows are one row (×N)" if aggregate else "one row per flow",
                    title=f"Aggregation {'on' if aggregate else 'off'}", timeout=2)

    def action_cycle_theme(self) -> None:
        names = [theme.name for theme in THEMES.values()]
        self.theme = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else names[0]

    def action_export(self) -> None:
        from kcockpit.ui.export import export_records

        records = self.table.rows.snapshot()
        if not records:
            self.notify("Nothing to export: the view is empty.", severity="warning")
            return
        try:
            path = export_records(records, self.export_dir)
        except OSError as error:
            self.notify(f"Export failed: {error}", severity="error", markup=False)
            return
        self.notify(f"Exported {len(records)} flows to {path}", title="Export", markup=False)

    def action_demo_phase(self, step: int) -> None:
        demo = getattr(self.session, "demo", None)
        if demo is not None:
            self.set_demo_phase(demo.phases[(demo.phases.index(demo.phase) + step) % len(demo.phases)])

    def set_demo_phase(self, phase: str) -> None:
        demo = getattr(self.session, "demo", None)
        if demo is None:
            return
        demo.set_phase(phase)
        self.notify(DEMO_PHASE_HELP.get(phase, phase), title=f"Demo scenario: {phase}")
        self._update_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "demo_phase":
            return getattr(self.session, "demo", None) is not None
        if action in MAIN_SCREEN_ACTIONS:
            # Over the detail or help screen these would act on the hidden flow list; the
            # command palette does not count (it runs them on the screen below).
            below = [screen for screen in self.screen_stack if not isinstance(screen, CommandPalette)]
            return below[-1] is self.main
        return True

    # --- command palette -----------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action bound on the screen, whichever widget has focus, then the demo
        phases and themes by name."""
        from kcockpit.ui.screens.help import bound_actions

        for bound in bound_actions(screen, self.get_key_display):
            if bound.action == "command_palette":
                continue
            help_text = f"{bound.keys} · {bound.tooltip}" if bound.tooltip else f"key: {bound.keys}"
            yield SystemCommand(bound.description, help_text, lambda b=bound: self._run_bound(b.node, b.action))
        demo = getattr(self.session, "demo", None)
        if demo is not None:
            for phase, help_text in DEMO_PHASE_HELP.items():
                yield SystemCommand(f"Demo: {phase}", help_text, lambda phase=phase: self.set_demo_phase(phase))
        for name, theme in THEMES.items():
            yield SystemCommand(f"Theme: {name}", "switch the colour theme", lambda t=theme.name: setattr(self, "theme", t))

    async def _run_bound(self, node, action: str) -> None:
        if node is self.table:  # flow list actions from another tab act on the list shown
            self.action_show_tab("flows")
        await self.run_action(action, node)

    # --- terminal size -------------------------------------------------------------

    def check_size(self) -> None:
        """Show or hide the "terminal too small" notice (screens call this when resized)."""
        from kcockpit.ui.screens.too_small import TooSmallScreen

        width, height = self.size
        too_small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        if too_small and not self._too_small:
            self._too_small = True
            self.push_screen(TooSmallScreen(MIN_SIZE))
        elif not too_small and self._too_small:
            self._too_small = False
            if isinstance(self.screen, TooSmallScreen):
                self.pop_screen()


def _matching(state: FilterState, records: list[FlowRecord]) -> list[FlowRecord]:
    matcher = state.matcher
    return records if matcher is None else [r for r in records if matcher.matches_record(r)]
