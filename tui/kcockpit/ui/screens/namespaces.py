"""NamespacePicker: choose one namespace (from GetNamespaces) to filter on, or all of them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

ALL = "\0all"


class NamespacePicker(ModalScreen[str | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="namespaces.cancel"),
        Binding("j", "cursor('down')", "Down", show=False, id="namespaces.down"),
        Binding("k", "cursor('up')", "Up", show=False, id="namespaces.up"),
    ]

    DEFAULT_CSS = """
    NamespacePicker { align: center middle; }
    NamespacePicker > OptionList {
        width: 44; height: auto; max-height: 80%;
        border: round $primary; background: $surface;
        border-title-color: $text-primary;
    }
    """

    def __init__(self, namespaces: list[str], current: str = "") -> None:
        super().__init__()
        self.namespaces = namespaces
        self.current = current

    def compose(self) -> ComposeResult:
        options = [Option("(all namespaces)", id=ALL)] + [Option(name, id=name) for name in self.namespaces]
        picker = OptionList(*options)
        picker.border_title = "Namespace"
        yield picker

    def on_mount(self) -> None:
        picker = self.query_one(OptionList)
        if self.current in self.namespaces:
            picker.highlighted = self.namespaces.index(self.current) + 1
        else:
            picker.highlighted = 0
        picker.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        choice = event.option.id
        self.dismiss("" if choice == ALL else choice)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_cursor(self, direction: str) -> None:
        picker = self.query_one(OptionList)
        (picker.action_cursor_down if direction == "down" else picker.action_cursor_up)()
