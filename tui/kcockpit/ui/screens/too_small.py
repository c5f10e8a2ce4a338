"""TooSmallScreen: shown instead of a broken layout when the terminal is below the minimum."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static


class TooSmallScreen(Screen):
    DEFAULT_CSS = """
    TooSmallScreen { align: center middle; background: $background; }
    TooSmallScreen > Static { width: auto; height: auto; content-align: center middle; text-align: center; color: $text-warning; }
    """
    BINDINGS = [Binding("q", "app.quit", "Quit", id="too_small.quit")]

    def __init__(self, minimum: tuple[int, int]) -> None:
        super().__init__()
        self.minimum = minimum

    def compose(self) -> ComposeResult:
        yield Static(id="too-small-notice", markup=False)

    def on_mount(self) -> None:
        self._describe()

    def on_resize(self, event: events.Resize) -> None:
        self._describe()
        from kcockpit.ui.app import CockpitApp

        if isinstance(self.app, CockpitApp):
            self.app.check_size()

    def _describe(self) -> None:
        width, height = self.app.size
        min_width, min_height = self.minimum
        self.query_one(Static).update(
            f"Terminal too small: {width}x{height}\n"
            f"kcockpit needs at least {min_width}x{min_height}.\n"
            "Enlarge the window, or press q to quit."
        )
