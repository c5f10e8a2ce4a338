"""HelpScreen: every key of the view it was opened from, with what it does and its binding id.

Also `bound_actions`, the list both this screen and the command palette are made from:
every action bound on a screen whatever has focus, so neither depends on where the
cursor happens to be. On the main screen that is the keys of the tab shown and the
shell's: a hidden tab's keys do nothing, so they are not offered.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import NamedTuple

from textual.actions import parse
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Static

from kcockpit.ui.tabs.base import CockpitTab

KEY_WIDTH = 16
LEGEND_WIDTH = 52  # the box's text width after the key column


class BoundAction(NamedTuple):
    keys: str  # every key bound to it, as displayed
    description: str
    binding_id: str
    tooltip: str
    node: DOMNode  # where the action runs
    action: str


def _binding_nodes(screen: Screen) -> list[DOMNode]:
    """kcockpit's own widgets on the screen (not the keys of Textual's stock widgets, such as
    the input's cursor keys), then the screen, then the app unless the screen is modal."""
    widgets = [w for w in screen.walk_children() if type(w).__module__.startswith("kcockpit.") and not _in_hidden_tab(w)]
    return [*widgets, screen] if screen.is_modal else [*widgets, screen, screen.app]


def _in_hidden_tab(widget: DOMNode) -> bool:
    return any(isinstance(node, CockpitTab) and not node.display for node in widget.ancestors_with_self)


def _enabled(node: DOMNode, screen: Screen, action: str) -> bool:
    destination, name, parameters = parse(action)
    target = {"app": screen.app, "screen": screen}.get(destination, node)
    return bool(target.check_action(name, parameters))


def bound_actions(screen: Screen, key_display: Callable[[Binding], str]) -> list[BoundAction]:
    """Each enabled, described action bound on `screen` or its widgets, keys of one action
    merged. A key bound several times counts for the binding a key press would run: the
    first priority binding from the app down, else the first from the widgets up."""
    chain: dict[str, list[tuple[DOMNode, Binding]]] = {}
    for node in _binding_nodes(screen):
        for key, binding in node._bindings:
            chain.setdefault(key, []).append((node, binding))
    winners = {id(_winner(candidates)[1]) for candidates in chain.values()}
    found: dict[tuple[int, str], BoundAction] = {}
    for node in _binding_nodes(screen):
        for _, binding in node._bindings:
            if id(binding) not in winners or not binding.description or not _enabled(node, screen, binding.action):
                continue
            slot = (id(node), binding.action)
            display = key_display(binding)
            known = found.get(slot)
            if known is None:
                found[slot] = BoundAction(display, binding.description, binding.id or "", binding.tooltip, node, binding.action)
            elif display not in known.keys.split(" "):
                found[slot] = known._replace(keys=f"{known.keys} {display}", binding_id=known.binding_id or binding.id or "")
    return list(found.values())


def _winner(candidates: list[tuple[DOMNode, Binding]]) -> tuple[DOMNode, Binding]:
    return next((c for c in reversed(candidates) if c[1].priority), candidates[0])


def binding_rows(screen: Screen, key_display: Callable[[Binding], str]) -> list[tuple[str, str, str]]:
    """(keys, description, id) for each action bound on `screen`."""
    return [(a.keys, a.description, a.binding_id) for a in bound_actions(screen, key_display)]


STATUS_LEGEND = (
    ("● live", "the stream's state: connecting, live, retrying in N s (with the reason), offline for a file."),
    ("N shown/M kept", "rows the filter shows / flows kept in memory (the newest --buffer-size); "
                       "older ones are evicted, the tabs' counts keep them."),
    ("N lost", "events Hubble itself lost before sending them (lost_events: a node's perf ring buffer or "
               "event queue overflowed under load). Flows and every count are then lower bounds. A "
               "server-side filter does not help (the loss happens before filtering); on the cluster, "
               "Cilium's hubble.eventBufferCapacity / hubble.eventQueueSize, or bpf.monitorAggregation, do."),
    ("k8s ✓ / ✗", "policy data for explanations: the number of policies, or why there is none."),
    ("prom ✓ / ✗", "Prometheus for golden signals; without it they come from the flows."),
    ("aggregator ↻N", "the process counting every flow for the Services, DNS and Policies tabs died and "
                      "was restarted N times (the notice said why); their counts went on. While it "
                      "restarts: `aggregator restarting`. `N uncounted`: flows the buffer let go of "
                      "before that process counted them (it fell behind a very fast stream; a larger "
                      "--buffer-size gives it more time): those tabs' counts are then lower bounds."),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close help", id="help.close"),
        Binding("j,down", "scroll('down')", "Scroll down", show=False, id="help.down"),
        Binding("k,up", "scroll('up')", "Scroll up", show=False, id="help.up"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
        border-title-color: $text-primary; border-subtitle-color: $text-muted;
    }
    """

    def __init__(self, origin: Screen, legend: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__()
        self.rows = binding_rows(origin, self._key_display)
        self.origin_name = type(origin).__name__
        self.legend = legend

    def _key_display(self, binding: Binding) -> str:
        return self.app.get_key_display(binding)

    def compose(self) -> ComposeResult:
        lines = [Content.styled(f"{'KEY':<{KEY_WIDTH}}{'ACTION':<28}BINDING ID", "bold $text-primary")]
        for keys, description, binding_id in self.rows:
            lines.append(
                Content.assemble(
                    Content.styled(f"{keys:<{KEY_WIDTH}}", "bold $text-accent"),
                    Content(f"{description:<28}"),
                    Content.styled(binding_id, "$text-muted"),
                )
            )
        if self.legend:
            lines.append(Content(""))
            lines.append(Content.styled("READING THE LIST", "bold $text-primary"))
            for term, meaning in self.legend:
                for number, part in enumerate(textwrap.wrap(meaning, LEGEND_WIDTH)):
                    label = term if number == 0 else ""
                    lines.append(Content.assemble(Content.styled(f"{label:<{KEY_WIDTH}}", "bold $text-accent"), Content(part)))
        lines.append(Content(""))
        lines.append(Content.styled("THE STATUS BAR", "bold $text-primary"))
        for term, meaning in STATUS_LEGEND:
            for number, part in enumerate(textwrap.wrap(meaning, LEGEND_WIDTH)):
                label = term if number == 0 else ""
                lines.append(Content.assemble(Content.styled(f"{label:<{KEY_WIDTH}}", "bold $text-accent"), Content(part)))
        lines.append(Content(""))
        lines.append(Content.styled("ctrl+p finds every action by name; the mouse works too.", "$text-muted"))
        scroll = VerticalScroll(Static(Content("\n").join(lines)))
        scroll.border_title = "Keys"
        scroll.border_subtitle = "esc closes"
        yield scroll

    def action_scroll(self, where: str) -> None:
        body = self.query_one(VerticalScroll)
        (body.scroll_down if where == "down" else body.scroll_up)(animate=False)
