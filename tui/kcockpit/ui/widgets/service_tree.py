"""ServiceTreeView: the Services tab's dependency tree as a line-API widget.

It draws only the rows in view (render_line), caches each drawn row until the tree changes,
and keeps the selected row (by its path in the tree, not its index) and the scroll offset
when the rows are replaced by a live update.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from kcockpit.model.service_tree import (
    NodeKey, VisibleRow, age_text, count_text, edge_p95_ms, error_text, latency_text, rate_text,
)
from kcockpit.ui.columns import fit

MARK_BAD = "✗"  # an unhealthy edge: red, and marked for NO_COLOR and projectors
MARK_BACKREF = "↺"  # shown in full elsewhere in the tree
MARK_FOLDED = "▸"
MARK_OPEN = "▾"
GAP = 1

# (key, title, width); the name column takes what is left, the drops column grows with room
FIXED = (("port", "PORT", 9), ("rate", "RATE", 8), ("errors", "ERR", 4), ("p95", "P95", 5), ("seen", "SEEN", 4))


def layout(width: int) -> tuple[int, int]:
    """(name width, drops width) for a row `width` cells wide."""
    fixed = 2 + sum(w for _, _, w in FIXED) + GAP * (len(FIXED) + 1)
    room = max(20, width - fixed)
    drops = 20 if room >= 70 else 18 if room >= 40 else 11
    return max(12, room - drops), drops


class ServiceTreeView(ScrollView, can_focus=True, inherit_bindings=False):
    BINDINGS = [
        Binding("down,j", "cursor(1)", "Down", show=False, id="services.down"),
        Binding("up,k", "cursor(-1)", "Up", show=False, id="services.up"),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False, id="services.page_down"),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False, id="services.page_up"),
        Binding("home", "jump('first')", "First", show=False, id="services.first"),
        Binding("end,G", "jump('last')", "Last", show=False, id="services.last"),
        Binding("space", "toggle", "Fold", show=False, tooltip="fold or unfold the selected workload", id="services.toggle"),
        Binding("left,h", "fold(True)", "Fold", show=False, id="services.fold"),
        Binding("right,l", "fold(False)", "Unfold", show=False, id="services.unfold"),
        Binding("enter", "open", "Flows of edge", tooltip="the Flows tab filtered to exactly this edge", id="services.open"),
    ]

    COMPONENT_CLASSES = {
        "service-tree--header", "service-tree--cursor", "service-tree--bad", "service-tree--dim",
        "service-tree--match",
    }

    DEFAULT_CSS = """
    ServiceTreeView {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        background: $surface;
        & > .service-tree--header { text-style: bold; color: $text-primary; background: $panel; }
        & > .service-tree--cursor { background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground; }
        &:focus > .service-tree--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
        & > .service-tree--bad { color: $text-error; text-style: bold; }
        & > .service-tree--dim { color: $text-muted; }
        & > .service-tree--match { color: $text-accent; text-style: bold; }
    }
    """

    class Opened(Message):
        def __init__(self, row: VisibleRow) -> None:
            super().__init__()
            self.row = row

    class Toggled(Message):
        def __init__(self, key: NodeKey, fold: bool | None) -> None:
            super().__init__()
            self.key = key
            self.fold = fold  # None: toggle

    class Moved(Message):
        """The selection changed (the golden-signals panel follows it)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[VisibleRow] = []
        self.cursor = -1
        self.now_s = 0.0
        self.span_s = 1.0
        self.filter_text = ""
        self._strips: dict[tuple, Strip] = {}
        self.renders = 0  # rows drawn (not served from the cache): the benchmark reads it
        self.chosen = False  # the user moved the selection: live updates follow that node, else stay on top

    # --- feeding -------------------------------------------------------------------------

    @property
    def selected(self) -> VisibleRow | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def set_rows(self, rows: list[VisibleRow], now_s: float, span_s: float, filter_text: str = "",
                 keep: NodeKey | None = None) -> None:
        """Replace the rows; the selection stays on the same node (by path) or, if it is gone,
        at the same index; the scroll offset stays unless the selection would leave the view."""
        previous = self.selected
        wanted = keep if keep is not None else (previous.node.key if previous is not None and self.chosen else None)
        old_index = self.cursor
        self.rows = rows
        self.now_s, self.span_s, self.filter_text = now_s, span_s, filter_text
        self._strips.clear()
        index = -1
        if wanted is not None:
            index = next((i for i, row in enumerate(rows) if row.node.key == wanted), -1)
            if index < 0:  # gone (or folded away): its nearest visible ancestor, else the same index
                for cut in range(len(wanted) - 1, 0, -1):
                    index = next((i for i, row in enumerate(rows) if row.node.key == wanted[:cut]), -1)
                    if index >= 0:
                        break
        if index < 0:
            index = min(max(old_index if self.chosen else 0, 0), len(rows) - 1)
        new_key = rows[index].node.key if index >= 0 else None
        moved = new_key != (previous.node.key if previous is not None else None)
        self.cursor = index
        self.virtual_size = Size(self.size.width, len(rows) + 1)
        if keep is not None:
            self._scroll_to_cursor()
        else:
            self._keep_cursor_in_view()
        self.refresh()
        if moved:
            self.post_message(self.Moved())

    def invalidate(self) -> None:
        """Redraw every row (the time 'now' moved: the SEEN column changes)."""
        self._strips.clear()
        self.refresh()

    # --- moving -------------------------------------------------------------------------

    def _body_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _keep_cursor_in_view(self) -> None:
        if self.cursor < 0 or self.scrollable_content_region.height < 2:
            return  # hidden (another tab is shown) or not laid out yet: the scroll stays
        top = round(self.scroll_y)
        if self.cursor < top or self.cursor >= top + self._body_height():
            self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        if self.scrollable_content_region.height < 2:
            return
        top = round(self.scroll_y)
        height = self._body_height()
        if self.cursor < top:
            top = self.cursor
        elif self.cursor >= top + height:
            top = self.cursor - height + 1
        self.scroll_to(y=max(0, top), animate=False, immediate=True)

    def move_to(self, index: int) -> None:
        if not self.rows:
            return
        self.chosen = True
        index = max(0, min(len(self.rows) - 1, index))
        if index != self.cursor:
            self.cursor = index
            self._scroll_to_cursor()
            self.refresh()
            self.post_message(self.Moved())

    def action_cursor(self, step: int) -> None:
        self.move_to(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * self._body_height())

    def action_jump(self, where: str) -> None:
        self.move_to(0 if where == "first" else len(self.rows) - 1)

    def action_toggle(self) -> None:
        row = self.selected
        if row is not None and row.node.children:
            self.post_message(self.Toggled(row.node.key, None))

    def action_fold(self, fold: bool) -> None:
        row = self.selected
        if row is None:
            return
        if fold and (not row.node.children or row.collapsed) and row.parent is not None:
            self.move_to(next(i for i, r in enumerate(self.rows) if r.node is row.parent))  # to the parent
            return
        if row.node.children:
            self.post_message(self.Toggled(row.node.key, fold))

    def action_open(self) -> None:
        if self.selected is not None:
            self.post_message(self.Opened(self.selected))

    def on_focus(self) -> None:
        self.invalidate()  # the cursor's colours depend on focus

    def on_blur(self) -> None:
        self.invalidate()

    def on_click(self, event) -> None:
        index = round(self.scroll_y) + event.y - 1
        if 0 <= index < len(self.rows):
            self.move_to(index)

    # --- drawing --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._header(width)
        index = round(self.scroll_y) + y - 1
        base = self.rich_style
        if not 0 <= index < len(self.rows):
            return Strip.blank(width, base)
        is_cursor = index == self.cursor
        key = (index, width, is_cursor)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._row(self.rows[index], width, base, is_cursor)
            self._strips[key] = strip
            self.renders += 1
        return strip

    def _header(self, width: int) -> Strip:
        style = self.get_component_rich_style("service-tree--header")
        name_w, drops_w = layout(width)
        cells = ["  " + fit("ENDPOINT", name_w)] + [fit(t, w) for _, t, w in FIXED[:3]]
        cells += [fit("DROPS", drops_w)] + [fit(t, w) for _, t, w in FIXED[3:]]
        return Strip([Segment((" " * GAP).join(cells), style)]).adjust_cell_length(width, style)

    def _foreground(self, component: str) -> Style:
        style = self.get_component_rich_style(component)
        return Style(color=style.color, bold=style.bold)

    def _row(self, row: VisibleRow, width: int, base: Style, is_cursor: bool) -> Strip:
        node, edge = row.node, row.node.edge
        name_w, drops_w = layout(width)
        bad = node.unhealthy
        fold = MARK_FOLDED if row.collapsed else MARK_OPEN if node.children else MARK_BACKREF if node.backref else " "
        parent_ns = row.parent.endpoint.namespace if row.parent is not None else None
        endpoint = node.endpoint
        namespace = endpoint.namespace
        dim_part = f"{namespace}/" if namespace and namespace != parent_ns else ""
        name = endpoint.short if endpoint.in_cluster else endpoint.name
        if endpoint.detail:
            name = f"{name} {endpoint.detail}"
        suffix = ""
        if row.parent is None and node.entry in ("world", "ingress", "world/ingress"):
            suffix += f" ← {node.entry}"
        elif row.parent is None and node.entry == "callee":
            suffix += " ← who calls it"
        name_text = fit(f"{row.prefix}{fold}{dim_part}{name}{suffix}", name_w)
        if edge is not None:
            port = f"{node.port}/{node.protocol}" if node.port else ""
            reason = edge.top_drop_reason
            drops = f"{count_text(edge.dropped)} {reason}" if edge.dropped else "-"
            cells = [fit(port, 9), fit(rate_text(edge, self.span_s), 8), fit(error_text(edge), 4),
                     fit(drops, drops_w), fit(latency_text(edge_p95_ms(edge)), 5), fit(age_text(edge.last_ns, self.now_s), 4)]
        else:
            cells = [fit("", 9), fit("", 8), fit("", 4), fit("", drops_w), fit("", 5), fit("", 4)]
        mark = MARK_BAD + " " if bad else "  "
        if is_cursor:
            style = self.get_component_rich_style("service-tree--cursor") + Style(bold=bad)
            text = mark + (" " * GAP).join([name_text, *cells])
            return Strip([Segment(text, style)]).adjust_cell_length(width, style)
        dim = base + self._foreground("service-tree--dim")
        red = base + self._foreground("service-tree--bad")
        strong = red if bad else base
        segments = [Segment(mark, red if bad else base)]
        # the tree guides and a namespace that differs from the parent's are dim
        guides = len(row.prefix) + 1
        name_style = strong
        if self.filter_text and row.matched:
            name_style = base + self._foreground("service-tree--match")
        elif not row.matched or node.backref:
            name_style = dim
        segments.append(Segment(name_text[:guides], dim))
        rest = name_text[guides:]
        if dim_part and rest.startswith(dim_part):
            segments.append(Segment(dim_part, dim))
            rest = rest[len(dim_part):]
        segments.append(Segment(rest, name_style))
        quiet = dim if not bad else red
        for position, cell in enumerate(cells):
            segments.append(Segment(" " * GAP, base))
            if position == 3 and edge is not None and edge.dropped:
                segments.append(Segment(cell, red if bad else base))
            elif position == 2 and edge is not None and edge.errors:
                segments.append(Segment(cell, red if bad else base))
            else:
                segments.append(Segment(cell, quiet if position in (0, 5) else strong))
        return Strip(segments).adjust_cell_length(width, base)
