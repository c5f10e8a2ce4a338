"""StatusBar: one line at the bottom of every view, fed a StatusInfo by the app.

The app composes the StatusInfo five times a second (the session's state, what each tab
adds, the other sources: policy data, Prometheus); the bar only fits it to its width.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from kcockpit.application.status import SEPARATOR, StatusInfo, fit_parts, status_parts

# Part style keys -> Textual style strings (theme variables resolve per theme).
_STYLES = {
    "state-live": "bold $text-success",
    "state-connecting": "bold $text-warning",
    "state-retrying": "bold $text-error",
    "state-offline": "bold $text-accent",
    "state-stopped": "bold $text-muted",
    "follow": "bold $text-success",
    "paused": "bold reverse $text-warning",
    "warning": "$text-warning",
    "filter": "$text-accent",
    "scenario": "bold $text-accent",
    "good": "$text-success",
    "muted": "$text-muted",
    "plain": "",
}


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info: StatusInfo | None = None

    def show(self, info: StatusInfo) -> None:
        if info != self.info:
            self.info = info
            self.refresh()

    def render(self) -> Content:
        if self.info is None:
            return Content("")
        parts = fit_parts(status_parts(self.info), self.size.width)
        pieces: list[Content | tuple[str, str]] = [Content(" ")]
        for index, part in enumerate(parts):
            if index:
                pieces.append(Content.styled(SEPARATOR, "$text-muted"))
            pieces.append(Content.styled(part.text, _STYLES.get(part.style, "")))
        return Content.assemble(*pieces)
