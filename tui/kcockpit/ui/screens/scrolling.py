"""The keys and the action that scroll a full-screen text view (the flow detail, a policy's YAML)."""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import VerticalScroll


def scroll_bindings(prefix: str) -> list[Binding]:
    """j/k (arrows) and g/G (home/end), hidden from the footer; ids `<prefix>.down` etc."""
    return [
        Binding("j,down", "scroll('down')", "Scroll down", show=False, id=f"{prefix}.down"),
        Binding("k,up", "scroll('up')", "Scroll up", show=False, id=f"{prefix}.up"),
        Binding("g,home", "scroll('home')", "Top", show=False, id=f"{prefix}.top"),
        Binding("G,end", "scroll('end')", "Bottom", show=False, id=f"{prefix}.bottom"),
    ]


def scroll(body: VerticalScroll, where: str) -> None:
    """What `scroll('down'|'up'|'home'|'end')` does to `body`, without animation."""
    {"down": body.scroll_down, "up": body.scroll_up, "home": body.scroll_home, "end": body.scroll_end}[where](animate=False)
