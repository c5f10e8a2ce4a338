"""PlaceholderTab: a tab that is not built yet, saying what it will show.

No sample data on purpose: a cockpit must never show numbers it did not measure.
"""

from __future__ import annotations

from typing import ClassVar

from textual.content import Content

from kcockpit.ui.tabs.base import CockpitTab


class PlaceholderTab(CockpitTab):
    DEFAULT_CSS = """
    PlaceholderTab {
        width: 1fr; height: 1fr; content-align: center middle; padding: 1 4;
        color: $text-muted;
    }
    """

    HEADLINE: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""

    # Focus stays in the tab shown: with nothing focused, Textual would focus the first
    # focusable widget when a screen above closes, which may be in a hidden tab.
    can_focus = True

    def render(self) -> Content:
        return Content.from_markup(
            f"[b $text-primary]{self.HEADLINE}[/]\n\n{self.DESCRIPTION}\n\n"
            "[dim]Nothing here is simulated: this tab is not built yet.[/]"
        )
