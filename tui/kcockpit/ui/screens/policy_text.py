"""PolicyTextScreen: a policy's YAML with its hits, a what-if, or an advised policy, with
`f` copy (OSC 52) and `s` save of the YAML when there is something to apply, and `a` to
step through alternatives (the fixes of a drop). Read-only: nothing is ever applied."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from kcockpit.ui.export import unused_path
from kcockpit.ui.printable import printable
from kcockpit.ui.screens.scrolling import scroll, scroll_bindings


@dataclass(frozen=True)
class TextPage:
    title: str
    body: str  # shown, scrollable
    document: str = ""  # what f copies and s saves ("" = nothing to apply)
    stem: str = "kcockpit-policy"  # file name stem for s
    alternatives: str = ""  # e.g. "fix 1/3": `a` shows the next
    yaml: str = ""  # shown after the body, unwrapped (indentation matters)


class PolicyTextScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back", id="policytext.back"),
        Binding("f", "copy", "Copy YAML", tooltip="copy the YAML (OSC 52)", id="policytext.copy"),
        Binding("s", "save", "Save YAML", tooltip="save the YAML in --export-dir", id="policytext.save"),
        Binding("a", "next", "Next", tooltip="the next alternative", id="policytext.next"),
        *scroll_bindings("policytext"),
    ]

    DEFAULT_CSS = """
    PolicyTextScreen {
        & > #policytext-title { height: auto; max-height: 3; background: $panel; padding: 0 1; text-style: bold; }
        & > #policytext-body { background: $surface; padding: 0 1; scrollbar-size-vertical: 1; }
        & #policytext-text { text-wrap: wrap; }
        & #policytext-yaml { text-wrap: nowrap; text-overflow: ellipsis; }
    }
    """

    def __init__(self, page: TextPage, export_dir: Path, next_page: Callable[[int], TextPage | None] | None = None) -> None:
        super().__init__()
        self.page = page
        self.export_dir = export_dir
        self.next_page = next_page
        self.index = 0

    def compose(self) -> ComposeResult:
        yield Static(printable(self._title()), id="policytext-title", markup=False)
        with VerticalScroll(id="policytext-body"):
            yield Static(printable(self.page.body.rstrip("\n"), keep_newlines=True), id="policytext-text", markup=False)
            yield Static(printable(self.page.yaml.rstrip("\n"), keep_newlines=True), id="policytext-yaml", markup=False)
        yield Footer(show_command_palette=False)

    def _title(self) -> str:
        extra = f"  ({self.page.alternatives} · a next)" if self.page.alternatives else ""
        return self.page.title + extra

    def on_mount(self) -> None:
        self.query_one("#policytext-body").focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("copy", "save"):
            return bool(self.page.document)
        if action == "next":
            return self.next_page is not None and bool(self.page.alternatives)
        return True

    def action_back(self) -> None:
        self.dismiss(None)

    def action_copy(self) -> None:
        if self.page.document:
            self.app.copy_to_clipboard(self.page.document)
            self.notify("YAML copied to the clipboard (OSC 52)", timeout=3)

    def action_save(self) -> None:
        if not self.page.document:
            return
        try:
            path = unused_path(Path(self.export_dir), self.page.stem, ".yaml")
            path.write_text(self.page.document, encoding="utf-8")
        except OSError as error:
            self.notify(f"cannot save in {self.export_dir}: {error.strerror or error}", severity="error", markup=False)
            return
        self.notify(f"saved to {path}", title="Policy", timeout=5, markup=False)

    def action_next(self) -> None:
        if self.next_page is None:
            return
        self.index += 1
        page = self.next_page(self.index)
        if page is None:
            return
        self.page = page
        self.query_one("#policytext-title", Static).update(printable(self._title()))
        self.query_one("#policytext-text", Static).update(printable(page.body.rstrip("\n"), keep_newlines=True))
        self.query_one("#policytext-yaml", Static).update(printable(page.yaml.rstrip("\n"), keep_newlines=True))
        self.refresh_bindings()

    def action_scroll(self, where: str) -> None:
        scroll(self.query_one("#policytext-body", VerticalScroll), where)


class PathPrompt(Screen[str | None]):
    """Asks for a path to a policy manifest file or directory (for a what-if)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="policypath.cancel")]

    DEFAULT_CSS = """
    PathPrompt { align: center middle; background: $background 60%; }
    PathPrompt > #policypath-box { width: 90%; max-width: 100; height: auto; background: $panel; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        from textual.containers import Vertical
        from textual.widgets import Input

        with Vertical(id="policypath-box"):
            yield Static("What-if: a policy manifest file or directory (read, never applied)", markup=False)
            yield Input(placeholder="path/to/policy.yaml", id="policypath-input")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        from textual.widgets import Input

        self.query_one("#policypath-input", Input).focus()

    def on_input_submitted(self, event) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
