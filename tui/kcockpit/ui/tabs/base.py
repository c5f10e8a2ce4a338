"""CockpitTab: the base of every tab of the main screen, and the hooks the shell calls on it.

A tab is a container widget with its own keys (BINDINGS): Textual looks keys up from the
focused widget through its ancestors, so a tab's keys work while focus is inside that tab
and do nothing on another tab. The help screen and the command palette list the keys of
the tab shown plus the shell's (see `screens/help.bound_actions`).

The shell gives each tab the application objects explicitly, in a `TabContext`: the
`Session` (flow store, integrations, demo control) and the view options from the command
line. A tab never reaches for them through the app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import ClassVar

from textual.binding import BindingType
from textual.containers import Vertical
from textual.message import Message

from kcockpit.application.session import Session
from kcockpit.application.status import StatusInfo

Legend = tuple[tuple[str, str], ...]  # (term, meaning) rows for the help screen


@dataclass(frozen=True, slots=True)
class TabContext:
    """What every tab is built with: the application objects and the view options."""

    session: Session
    zone: tzinfo | None = None  # times are shown in this zone (None: local time)
    clock: Callable[[], float] | None = None  # monotonic seconds, for rates (None: time.monotonic)
    export_dir: Path = Path(".")  # where exports and saved fixes go
    initial_filter: str = ""  # --filter
    aggregate: bool = False  # start with consecutive identical rows collapsed


class CockpitTab(Vertical):
    """Base of the main screen's tabs. Subclasses set TAB_ID, TITLE and BINDINGS and
    override the hooks they need; every hook has a cheap default."""

    TAB_ID: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = []

    class StatusChanged(Message):
        """What the tab adds to the status bar changed: the shell repaints the bar now
        instead of at its next timed update."""

    class OpenFlows(Message):
        """Show the Flows tab with `filter_text`; esc there comes back to tab `origin`
        (which keeps its selection) and restores the Flows tab's filter."""

        def __init__(self, filter_text: str, origin: str) -> None:
            super().__init__()
            self.filter_text = filter_text
            self.origin = origin

    class ShowTab(Message):
        """Show another tab (the Flows tab going back after a drill-down)."""

        def __init__(self, tab_id: str) -> None:
            super().__init__()
            self.tab_id = tab_id

    def __init__(self, context: TabContext) -> None:
        if not self.TAB_ID:
            raise TypeError(f"{type(self).__name__} must set TAB_ID")
        super().__init__(id=self.TAB_ID)
        self.context = context

    @property
    def session(self) -> Session:
        return self.context.session

    def open_flows(self, filter_text: str) -> None:
        """Drill down: the Flows tab, filtered to `filter_text`; esc there comes back here."""
        self.post_message(self.OpenFlows(filter_text, self.TAB_ID))

    # --- hooks the shell calls -------------------------------------------------------

    def session_started(self) -> None:
        """Called once, right after the shell started the session (before the first
        `tab_shown`): start the tab's own timers, apply start-up options."""

    def tab_shown(self) -> None:
        """The tab became visible: focus its main widget. The default focuses the first
        focusable widget inside the tab, else the tab itself if it can take focus, else
        nothing; never a widget of a hidden tab, whose keys must not act."""
        focusable = next((widget for widget in self.query("*") if widget.focusable), None)
        if focusable is None and self.focusable:
            focusable = self
        self.screen.set_focus(focusable)

    def refresh_tab(self) -> None:
        """Called by the shell about four times a second, only while the tab is visible.
        Must be cheap; the default does nothing."""

    def select_text(self, text: str) -> bool:
        """Select the first row that shows `text` (talk mode's `select`); False when no row
        does yet. The default selects nothing."""
        return False

    def open_selected(self) -> None:
        """Open the selected row as `enter` would (talk mode's `open`)."""

    def legend(self) -> Legend:
        """Extra help for the help screen (how to read the tab), after its keys."""
        return ()

    def describe_status(self, info: StatusInfo) -> StatusInfo:
        """Add what this tab knows to the status line the shell composed (every tab is
        asked, shown or not, in registry order); the default adds nothing."""
        return info
