"""TabBar: a one-line row of tab names (clickable), the active one highlighted.

A custom line instead of Textual's Tabs, which takes two lines: at 80x24 every row counts.
"""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

TABS: tuple[tuple[str, str], ...] = (
    ("flows", "Flows"),
    ("services", "Services"),
    ("dns", "DNS"),
    ("policies", "Policies"),
)


class TabBar(Widget):
    DEFAULT_CSS = """
    TabBar {
        height: 1;
        background: $panel;
        link-style: none;
        link-style-hover: bold;
        link-background-hover: $primary 30%;
    }
    """

    active: reactive[str] = reactive("flows")

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title

    def render(self) -> Content:
        pieces: list[Content] = [Content.styled(f" {self.title} ", "bold $text-primary")]
        for number, (tab_id, name) in enumerate(TABS, start=1):
            label = f" {number} {name} "
            style = "bold reverse $text-primary" if tab_id == self.active else "$text-muted"
            pieces.append(Content.from_markup(f"[@click=app.show_tab('{tab_id}')]$label[/]", label=label).stylize(style))
            pieces.append(Content(" "))
        pieces.append(Content.styled(" ?:help  ctrl+p:commands", "$text-muted"))
        return Content.assemble(*pieces)
