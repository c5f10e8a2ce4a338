"""CockpitApp: the full-screen shell around the tabs.

The shell owns what every tab shares: the tab bar and the tab bodies (built from the
registry in `kcockpit.ui.tabs`), the number keys and tab/shift+tab, themes, help and the
command palette (the current tab's actions plus the shell's), the status bar, the size
check, signals and hang-up, the garbage collector's pacing and the demo phase keys. What a
tab does lives in its module (the flow list: `tabs/flows.py`).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Callable, Iterable
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer

from kcockpit.application.session import Session
from kcockpit.application.status import StatusInfo
from kcockpit.application.collector import FULL_GC_INTERVAL_S, defer_full_collections, restore_collections
from kcockpit.ui.export import default_export_dir
from kcockpit.ui.hangup import on_hangup
from kcockpit.ui.tabs import TABS, CockpitTab, TabContext
from kcockpit.ui.themes import THEMES
from kcockpit.ui.widgets.status_bar import StatusBar
from kcockpit.ui.widgets.tab_bar import TabBar

if TYPE_CHECKING:
    from kcockpit.application.talk import TalkScript  # YAML and the talk: loaded only in talk mode

STATUS_INTERVAL = 1 / 5  # seconds between status bar updates (5 Hz)
REFRESH_INTERVAL = 1 / 4  # seconds between refresh_tab calls on the tab shown (4 Hz)
NODES_INTERVAL = 5.0  # seconds between ServerStatus polls
FIRST_FRAME_WAIT_S = 1.0  # the session's background parts start then at the latest, flows shown or not
FIRST_FRAME_POLL_S = 1 / 20
MIN_SIZE = (80, 24)
DEMO_PHASE_HELP = {
    "healthy": "no policy on frontend: the shop works",
    "broken": "apply frontend-egress-allow-to-backend: frontend's DNS lookups are dropped",
    "fixed": "the policy now also allows DNS to kube-dns: traffic recovers",
    "dns-overload": "CoreDNS is overloaded: many lookups go unanswered (see the DNS tab, 3)",
}
MAIN_SCREEN_ACTIONS = {"show_tab", "next_tab", "previous_tab"}

TabT = TypeVar("TabT", bound=CockpitTab)


class CockpitScreen(Screen):
    """The main screen: tab bar, tab bodies, status bar, footer.

    Focus is placed by the tabs (`CockpitTab.tab_shown`), never by Textual's auto-focus,
    which could pick a widget of a hidden tab."""

    AUTO_FOCUS = None

    def __init__(self, tabs: tuple[CockpitTab, ...]) -> None:
        super().__init__()
        self.tabs = tabs

    def compose(self) -> ComposeResult:
        yield TabBar("kcockpit", tabs=tuple((spec.id, spec.title, spec.key) for spec in TABS), id="tab-bar")
        app = self.app
        if isinstance(app, CockpitApp) and app.talk is not None:
            from kcockpit.ui.talk import CaptionBar

            yield CaptionBar("", id="talk-caption", markup=False)
        with ContentSwitcher(initial=TABS[0].id, id="tabs"):
            yield from self.tabs
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
        *(Binding(spec.key, f"show_tab('{spec.id}')", spec.title, show=False, id=f"app.tab.{spec.id}") for spec in TABS),
        Binding("tab", "next_tab", "Next tab", show=False, priority=True, id="app.tab.next"),
        Binding("shift+tab", "previous_tab", "Previous tab", show=False, priority=True, id="app.tab.previous"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
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
        talk: TalkScript | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.talk = talk  # talk mode's script, or None
        self._talk = None  # its controller, once the screen is up
        self.store = session.store
        self.context = TabContext(
            session=session,
            zone=zone,
            clock=clock,
            export_dir=export_dir or default_export_dir(),
            initial_filter=initial_filter,
            aggregate=aggregate,
        )
        self.start_session = start_session
        self._quit_on_signals = quit_on_signals
        self._tabs: dict[str, CockpitTab] = {}
        self._node_counts: tuple[int, int] | None = None
        self._restarts_told = 0  # aggregator restarts already announced
        self._too_small = False
        self._gc_thresholds = gc.get_threshold()  # restored on unmount
        for custom in THEMES.values():
            self.register_theme(custom)
        self.theme = THEMES[theme].name
        if talk is not None:
            from kcockpit.ui.talk import TALK_BINDINGS

            for binding in TALK_BINDINGS:
                self._bindings.key_to_bindings.setdefault(binding.key, []).append(binding)

    # --- lifecycle ---------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        self._tabs = {spec.id: spec.cls(self.context) for spec in TABS}
        self.main = CockpitScreen(tuple(self._tabs.values()))
        return self.main

    def tab(self, kind: type[TabT]) -> TabT:
        """The tab of that class (tests and tools reach a tab's widgets through it)."""
        for tab in self._tabs.values():
            if isinstance(tab, kind):
                return tab
        raise LookupError(f"no {kind.__name__} among the tabs")

    @property
    def current_tab(self) -> CockpitTab:
        return self._tabs[self._switcher.current or TABS[0].id]

    def main_screen_ready(self, screen: CockpitScreen) -> None:
        # Kept, not queried: timers use them, and may fire once more while the app shuts
        # down and the screen is already emptied.
        self._switcher = screen.query_one(ContentSwitcher)
        self._tab_bar = screen.query_one(TabBar)
        self._status_bar = screen.query_one(StatusBar)
        if self.start_session:
            self.session.start_flows()
            self._after_first_frame(self.session.start_background)
        if self._quit_on_signals:
            self._exit_cleanly_on_signals()
        for tab in self._tabs.values():
            tab.session_started()
        self.current_tab.tab_shown()
        self.set_interval(STATUS_INTERVAL, self._update_status)
        self.set_interval(REFRESH_INTERVAL, self._refresh_current_tab)
        self._after_first_frame(self._tame_garbage_collector)
        if self.session.server_side_filters:
            self.set_interval(NODES_INTERVAL, self._poll_nodes)
            self.call_later(self._poll_nodes)
        self._update_status()
        self.check_size()
        if self.talk is not None:
            from kcockpit.ui.talk import TalkController

            self._talk = TalkController(self, self.talk)
            self._talk.go(0)

    def _after_first_frame(self, callback: Callable[[], object]) -> None:
        """Run `callback` once the first frame showing flows has been painted, or after
        FIRST_FRAME_WAIT_S without flows: what the first frame does not need (the aggregator
        child, policy data, Prometheus, a full garbage collection) must not delay it."""
        from kcockpit.ui.tabs.flows import FlowsTab

        deadline = time.monotonic() + FIRST_FRAME_WAIT_S
        table = self.tab(FlowsTab).table

        def check() -> None:
            if self._shutting_down():
                timer.stop()
            elif table.row_count or time.monotonic() >= deadline:
                timer.stop()
                self.call_after_refresh(lambda: None if self._shutting_down() else callback())

        timer = self.set_interval(FIRST_FRAME_POLL_S, check)

    # --- talk mode -----------------------------------------------------------------

    def action_talk_step(self, step: int) -> None:
        if self._talk is not None:
            self._talk.go(self._talk.index + step)

    def action_talk_restart(self) -> None:
        if self._talk is not None:
            self._talk.go(0)

    def action_talk_blank(self) -> None:
        from kcockpit.ui.talk import TitleCard

        if self._talk is not None and not isinstance(self.screen, TitleCard):
            self.push_screen(TitleCard(self.talk.title))

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
        restore_collections(self._gc_thresholds)
        await self.session.stop()

    def _tame_garbage_collector(self) -> None:
        """Full collections once a minute, not every few seconds (application.collector)."""
        self._gc_thresholds = defer_full_collections()
        self.set_interval(FULL_GC_INTERVAL_S, self._collect_garbage)

    def _collect_garbage(self) -> None:
        # A method, not gc.collect itself: Textual's timers inspect the callback's
        # signature, which a C builtin does not have (the app crashed after a minute).
        gc.collect()

    def _shutting_down(self) -> bool:
        """No screen left: a timer that fires once more while the app exits does nothing
        (found in CI: the status timer met an empty screen stack)."""
        return not self.screen_stack or not self.is_running

    def _refresh_current_tab(self) -> None:
        if not self._shutting_down():
            self.current_tab.refresh_tab()

    # --- status bar ----------------------------------------------------------------

    def _update_status(self) -> None:
        """Compose the status line: the session's parts here, then what each tab adds."""
        if self._shutting_down():
            return
        state = self.session.state()
        demo = self.session.demo
        counters = self.store.counters()
        info = StatusInfo(
            source=self.session.label,
            state=state.state,
            state_detail=state.detail,
            nodes=self._node_counts,
            retained=counters.retained,
            evicted=counters.evicted,
            lost=counters.lost_at_server,
            scenario=demo.describe() if demo is not None else "",
        )
        for tab in self._tabs.values():
            info = tab.describe_status(info)
        integrations = self.session.integrations
        if integrations is not None:
            # The other sources (policy data, Prometheus) and their one-time notices.
            info.extra = integrations.status_parts()
            for notice in integrations.notices.take():
                self.notify(notice.text, title=notice.title, severity=notice.severity, timeout=8, markup=False)
        feed = self.session.feed
        if feed is not None:
            # The counting behind the other tabs: a restart is said once, and its count stays.
            part = feed.status_part()
            if part is not None:
                info.extra = (*info.extra, part)
            if feed.restarts > self._restarts_told:
                self._restarts_told = feed.restarts
                self.notify(feed.restart_notice(), severity="warning", timeout=10, markup=False)
        self._status_bar.show(info)
        if self.screen is not self.main:
            for bar in self.screen.query(StatusBar):  # screens pushed over it show one too
                bar.show(info)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Notices go on the footer's line (see app.tcss), newest only: an information notice
        becomes one line, `title: text`, so it covers nothing the user is reading."""
        if severity == "information":
            first, *rest = str(message).splitlines() or [""]
            text = " · ".join([first, *rest]) if rest else first
            message, title = (f"{title}: {text}" if title else text), ""
        self.clear_notifications()
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def on_cockpit_tab_open_flows(self, event: CockpitTab.OpenFlows) -> None:
        event.stop()
        from kcockpit.ui.tabs.flows import FlowsTab

        if self.tab(FlowsTab).drill_down(event.filter_text, event.origin):
            self.action_show_tab(FlowsTab.TAB_ID)

    def on_cockpit_tab_show_tab(self, event: CockpitTab.ShowTab) -> None:
        event.stop()
        self.action_show_tab(event.tab_id)

    def on_cockpit_tab_status_changed(self, event: CockpitTab.StatusChanged) -> None:
        self._update_status()

    async def _poll_nodes(self) -> None:
        self._node_counts = await self.session.node_counts()

    # --- actions -----------------------------------------------------------------

    def action_show_tab(self, tab_id: str) -> None:
        self._switcher.current = tab_id
        self._tab_bar.active = tab_id
        self._tabs[tab_id].tab_shown()

    def _step_tab(self, step: int) -> None:
        if len(self.screen_stack) > 1:
            return
        ids = [spec.id for spec in TABS]
        current = self._switcher.current or ids[0]
        self.action_show_tab(ids[(ids.index(current) + step) % len(ids)])

    def action_next_tab(self) -> None:
        self._step_tab(1)

    def action_previous_tab(self) -> None:
        self._step_tab(-1)

    def action_help(self) -> None:
        from kcockpit.ui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self.screen, self.current_tab.legend() if self.screen is self.main else ()))

    def action_cycle_theme(self) -> None:
        names = [theme.name for theme in THEMES.values()]
        self.theme = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else names[0]

    def action_demo_phase(self, step: int) -> None:
        demo = self.session.demo
        if demo is not None:
            self.set_demo_phase(demo.phases[(demo.phases.index(demo.phase) + step) % len(demo.phases)])

    def set_demo_phase(self, phase: str) -> None:
        demo = self.session.demo
        if demo is None:
            return
        demo.set_phase(phase)
        self.notify(DEMO_PHASE_HELP.get(phase, phase), title=f"Demo scenario: {phase}")
        self._update_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "demo_phase":
            return self.session.demo is not None
        if action in MAIN_SCREEN_ACTIONS:
            # Over the detail or help screen these would switch the hidden tabs; the
            # command palette does not count (it runs them on the screen below).
            below = [screen for screen in self.screen_stack if not isinstance(screen, CommandPalette)]
            return below[-1] is self.main
        return True

    # --- command palette -----------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action bound on the screen (on the main screen: the tab shown and the
        shell), whichever widget has focus, then the demo phases and themes by name."""
        from kcockpit.ui.screens.help import bound_actions

        for bound in bound_actions(screen, self.get_key_display):
            if bound.action == "command_palette":
                continue
            help_text = f"{bound.keys} · {bound.tooltip}" if bound.tooltip else f"key: {bound.keys}"
            yield SystemCommand(bound.description, help_text, lambda b=bound: self.run_action(b.action, b.node))
        if self.session.demo is not None:
            for phase, help_text in DEMO_PHASE_HELP.items():
                yield SystemCommand(f"Demo: {phase}", help_text, lambda phase=phase: self.set_demo_phase(phase))
        for name, theme in THEMES.items():
            yield SystemCommand(f"Theme: {name}", "switch the colour theme", lambda t=theme.name: setattr(self, "theme", t))

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
