"""TabBar: a one-line row of tab names (clickable), the active one highlighted.

The tabs come from the registry (`kcockpit.ui.tabs.TABS`) through the app: (id, title, key).

A custom line instead of Textual's Tabs, which takes two lines: at 80x24 every row counts.
"""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

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

    active: reactive[str] = reactive("")

    def __init__(self, title: str, *, tabs: tuple[tuple[str, str, str], ...], id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.tabs = tabs
        self.set_reactive(TabBar.active, tabs[0][0] if tabs else "")

    def render(self) -> Content:
        pieces: list[Content] = [Content.styled(f" {self.title} ", "bold $text-primary")]
        for tab_id, name, key in self.tabs:
            label = f" {key} {name} "
            style = "bold reverse $text-primary" if tab_id == self.active else "$text-muted"
            pieces.append(Content.from_markup(f"[@click=app.show_tab('{tab_id}')]$label[/]", label=label).stylize(style))
            pieces.append(Content(" "))
        pieces.append(Content.styled(" ?:help  ctrl+p:commands", "$text-muted"))
        return Content.assemble(*pieces)
