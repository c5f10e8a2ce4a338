"""FilterBar: the filter input plus an error line under it that keeps what was typed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Static

PLACEHOLDER = "filter, e.g. ns=otel-demo dropped to:port=53 (/ to type, enter applies)"

# The mark left of the input says whether what is typed is what is applied.
MARK_EMPTY = " / "
MARK_APPLIED = " ✓ "
MARK_EDITED = " ✎ "
HISTORY_SIZE = 50


class FilterBar(Vertical):
    """Also keeps the filters applied this session: up/down in the input recall them, so a
    long filter cleared by esc (or replaced) is one key away."""

    BINDINGS = [
        Binding("up", "recall(-1)", "Filter bar: older filter", show=False, id="filter.history.older"),
        Binding("down", "recall(1)", "Filter bar: newer filter", show=False, id="filter.history.newer"),
    ]

    DEFAULT_CSS = """
    FilterBar {
        height: auto;
        & > Horizontal { height: 1; }
        & #filter-mark { width: 3; background: $boost; color: $text-muted; }
        & #filter-mark.-applied { color: $text-success; text-style: bold; }
        & #filter-mark.-edited { color: $text-warning; text-style: bold; }
        & #filter-input { height: 1; border: none; padding: 0 1 0 0; background: $boost; }
        & #filter-input:focus { background: $primary 20%; }
        & > #filter-error { color: $text-error; padding: 0 1; display: none; }
        &.-error > #filter-error { display: block; }
    }
    """

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.applied = ""
        self.history: list[str] = []
        self._recalled: int | None = None  # index into history while browsing it
        self._draft = ""  # what was typed before browsing began

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(MARK_EMPTY, id="filter-mark", markup=False)
            yield Input(placeholder=PLACEHOLDER, id="filter-input", compact=True, select_on_focus=False)
        yield Static("", id="filter-error", markup=False)

    def set_applied(self, text: str) -> None:
        self.applied = text
        self._recalled = None
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
            del self.history[:-HISTORY_SIZE]
        self._update_mark()

    def action_recall(self, step: int) -> None:
        """Show an older (-1) or newer (+1) applied filter; past the newest, the draft again."""
        if not self.history:
            return
        if self._recalled is None:
            if step > 0:
                return
            self._draft = self.text
            index = len(self.history) - 1
        else:
            index = self._recalled + step
        if index < 0:
            return
        if index >= len(self.history):
            self._recalled = None
            self.set_text(self._draft)
            return
        self._recalled = index
        self.set_text(self.history[index])

    def _update_mark(self) -> None:
        mark = self.query_one("#filter-mark", Static)
        typed = self.text.strip()
        edited = typed != self.applied
        mark.update(MARK_EDITED if edited else MARK_APPLIED if typed else MARK_EMPTY)
        mark.set_class(edited, "-edited")
        mark.set_class(not edited and bool(typed), "-applied")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._update_mark()

    @property
    def input(self) -> Input:
        return self.query_one("#filter-input", Input)

    @property
    def text(self) -> str:
        return self.input.value

    def set_text(self, text: str) -> None:
        self.input.value = text
        self.input.cursor_position = len(text)

    def show_error(self, message: str) -> None:
        self.query_one("#filter-error", Static).update(message)
        self.set_class(bool(message), "-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted(event.value))
