"""FlowTable: the live flow list, a line-API view that renders only the visible rows.

The app hands it batches of records on a timer (`add_records`); nothing here touches the
network or protobuf. While following, the newest row is at the bottom and selected;
moving or scrolling up pauses follow, and new rows keep arriving below, counted in
`new_while_paused` so the status bar can say how many are waiting. With `aggregate` on,
consecutive flows that would show the same row are one row with a ×N count (see RowBuffer).
"""

from __future__ import annotations

from datetime import tzinfo

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from kcockpit.model.record import VERDICT_AUDIT, VERDICT_DROPPED, VERDICT_ERROR, VERDICT_FORWARDED, FlowRecord
from kcockpit.ui.columns import ARROW_REPLY, GAP, Column, cell_parts, fit, layout_columns, row_key
from kcockpit.ui.rows import RowBuffer

AGGREGATE_BUDGET = 2_000  # rows keyed per drain (40k flows/s at 20 Hz): about 40 ms of decoding

_VERDICT_CLASS = {
    VERDICT_FORWARDED: "flow-table--forwarded",
    VERDICT_DROPPED: "flow-table--dropped",
    VERDICT_ERROR: "flow-table--dropped",
    VERDICT_AUDIT: "flow-table--audit",
}


class FlowTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Scrollable table of flow records with a fixed header row."""

    BINDINGS = [
        Binding("down,j", "cursor_down", "Down", show=False, id="flows.down"),
        Binding("up,k", "cursor_up", "Up", show=False, id="flows.up"),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False, id="flows.page_down"),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="flows.page_up"),
        Binding("g,home", "first", "Oldest", show=False, id="flows.first"),
        Binding("G,end", "last", "Newest + follow", show=False, id="flows.last"),
        Binding("enter", "open", "Open", tooltip="details of the selected flow", id="flows.open"),
        Binding("space", "toggle_follow", "Pause", tooltip="pause or resume following the newest flows", id="flows.toggle_follow"),
    ]

    COMPONENT_CLASSES = {
        "flow-table--header",
        "flow-table--cursor",
        "flow-table--forwarded",
        "flow-table--dropped",
        "flow-table--audit",
        "flow-table--reason",
        "flow-table--dim",
        "flow-table--count",
    }

    DEFAULT_CSS = """
    FlowTable {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        background: $surface;
        & > .flow-table--header { text-style: bold; color: $text-primary; background: $panel; }
        & > .flow-table--cursor { background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground; }
        &:focus > .flow-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
        & > .flow-table--forwarded { color: $text-success; }
        & > .flow-table--dropped { color: $text-error; text-style: bold; }
        & > .flow-table--audit { color: $text-warning; }
        & > .flow-table--reason { color: $text-error; }
        & > .flow-table--dim { color: $text-muted; }
        & > .flow-table--count { color: $text-accent; text-style: bold; }
    }
    """

    class Opened(Message):
        """The user asked for the details of a flow."""

        def __init__(self, record: FlowRecord) -> None:
            super().__init__()
            self.record = record

    class FollowChanged(Message):
        def __init__(self, follow: bool) -> None:
            super().__init__()
            self.follow = follow

    def __init__(self, capacity: int, zone: tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows = RowBuffer(capacity)
        self.zone = zone
        self.namespace = ""  # the namespace filtered on: not repeated in the name columns
        self.cursor = -1  # index into the rows shown; -1 when empty
        self.follow = True
        self.new_while_paused = 0
        self._strips: LRUCache[tuple, Strip] = LRUCache(2048)
        self._layout: list[tuple[Column, int]] = []
        self._layout_width: tuple[int, bool] | None = None
        self._scrolling_itself = False

    # --- feeding -----------------------------------------------------------------

    @property
    def aggregate(self) -> bool:
        return self.rows.aggregated

    @property
    def row_count(self) -> int:
        return self.rows.row_count()

    def make_rows(self, records: list[FlowRecord], aggregate: bool | None = None) -> RowBuffer:
        """A row buffer holding `records`, aggregated or not (default: as now). Touches no
        widget state, so a worker thread can build a large one."""
        aggregate = self.aggregate if aggregate is None else aggregate
        rows = RowBuffer(self.rows.capacity, row_key if aggregate else None, AGGREGATE_BUDGET)
        rows.reset(records)
        return rows

    def add_records(self, records: list[FlowRecord]) -> None:
        if not records:
            return
        dropped = self.rows.extend(records)
        if self.follow:
            self.cursor = self.row_count - 1
        else:
            self.new_while_paused += len(records)
            if dropped:
                self.cursor = max(0, self.cursor - dropped)
                self._scroll_to_row(max(0, self.scroll_y - dropped))
        self._update_virtual_size()
        if self.follow:
            self._scroll_to_row(None)
        self.refresh()

    def replace_records(self, records: list[FlowRecord]) -> None:
        """Show exactly these records (after a filter change), following the newest."""
        self.show_rows(self.make_rows(records))

    def show_rows(self, rows: RowBuffer, keep: FlowRecord | None = None) -> None:
        """Show this row buffer (from make_rows) instead: paused on the row of `keep` if it
        holds that flow, else following the newest."""
        self.rows = rows
        self._strips.clear()
        kept = None if keep is None else rows.row_of(keep)
        self._update_virtual_size()
        if kept is None:
            self.new_while_paused = 0
            self.cursor = self.row_count - 1
            self._set_follow(True)
            self._scroll_to_row(None)
        else:
            self.cursor = kept
            self._set_follow(False)
            self._scroll_to_row(max(0, kept - self._page // 2))
        self.refresh()

    @property
    def selected(self) -> FlowRecord | None:
        return self.rows.row(self.cursor)[0] if 0 <= self.cursor < self.row_count else None

    # --- follow ------------------------------------------------------------------

    def _set_follow(self, follow: bool) -> None:
        if follow == self.follow:
            return
        self.follow = follow
        if follow:
            self.new_while_paused = 0
        self.post_message(self.FollowChanged(follow))

    def resume_follow(self) -> None:
        self._set_follow(True)
        self.cursor = self.row_count - 1
        self._scroll_to_row(None)
        self.refresh()

    def pause(self) -> None:
        self._set_follow(False)
        self.refresh()

    def select_newest(self, matches) -> bool:
        """Pause on the newest row whose flow `matches` (a predicate); False when none does."""
        for index in range(self.row_count - 1, -1, -1):
            if matches(self.rows.row(index)[0]):
                self._set_follow(False)
                self.cursor = index
                self._reveal_cursor()
                self.refresh()
                return True
        return False

    # --- geometry ----------------------------------------------------------------

    @property
    def _page(self) -> int:
        """How many data rows fit under the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.row_count + 1)

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()
        if self.follow:
            self._scroll_to_row(None)
        else:
            self._reveal_cursor()

    def _scroll_to_row(self, top: float | None) -> None:
        """Scroll on the table's own account (None = to the newest row), which unlike the
        user's scrolling never pauses follow."""
        self._scrolling_itself = True
        try:
            if top is None:
                self.scroll_end(animate=False, immediate=True, x_axis=False)
            else:
                self.scroll_to(y=top, animate=False, immediate=True)
        finally:
            self._scrolling_itself = False

    def _reveal_cursor(self) -> None:
        top = round(self.scroll_y)
        if self.cursor < top:
            self._scroll_to_row(self.cursor)
        elif self.cursor >= top + self._page:
            self._scroll_to_row(self.cursor - self._page + 1)

    def _move_cursor(self, delta: int) -> None:
        count = self.row_count
        if not count:
            return
        target = min(max(0, self.cursor + delta), count - 1)
        if delta < 0:
            self._set_follow(False)
        self.cursor = target
        self._reveal_cursor()
        self.refresh()

    # --- actions -----------------------------------------------------------------

    def action_cursor_down(self) -> None:
        self._move_cursor(1)

    def action_cursor_up(self) -> None:
        self._move_cursor(-1)

    def action_page_down(self) -> None:
        self._move_cursor(self._page)

    def action_page_up(self) -> None:
        self._move_cursor(-self._page)

    def action_first(self) -> None:
        self._move_cursor(-self.row_count)

    def action_last(self) -> None:
        self.resume_follow()

    def action_toggle_follow(self) -> None:
        if self.follow:
            self.pause()
        else:
            self.resume_follow()

    def action_open(self) -> None:
        if (record := self.selected) is not None:
            self.post_message(self.Opened(record))

    # --- mouse -------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # While following, the view only ever moves down by itself: moving up is the user
        # (wheel, scrollbar drag, page up) looking back, which pauses follow. Moving up to
        # the bottom is the view growing taller (a resize), not looking back.
        if self.follow and new_value < old_value and new_value < self.max_scroll_y and not self._scrolling_itself:
            self._set_follow(False)

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        index = round(self.scroll_y) + event.y - 1
        count = self.row_count
        if 0 <= index < count:
            if index != count - 1:
                self._set_follow(False)
            self.cursor = index
            self.refresh()
            if event.chain >= 2:
                self.action_open()

    # --- rendering ---------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def _columns(self, width: int) -> list[tuple[Column, int]]:
        shape = (width, self.aggregate)
        if shape != self._layout_width:
            self._layout = layout_columns(width, self.aggregate)
            self._layout_width = shape
            self._strips.clear()
        return self._layout

    def set_namespace(self, namespace: str) -> None:
        """The namespace filtered on, which the name columns then leave out."""
        if namespace != self.namespace:
            self.namespace = namespace
            self._strips.clear()
            self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        columns = self._columns(width)
        if y == 0:
            return self._header(columns, width)
        index = round(self.scroll_y) + y - 1
        base = self.rich_style
        if not 0 <= index < self.row_count:
            return Strip.blank(width, base)
        record, count = self.rows.row(index)
        is_cursor = index == self.cursor
        key = (record, count, width, is_cursor)  # the record itself: an id() could be reused once it is freed
        strip = self._strips.get(key)
        if strip is None:
            strip = self._row(record, count, columns, width, base, is_cursor)
            self._strips[key] = strip
        return strip

    def _header(self, columns: list[tuple[Column, int]], width: int) -> Strip:
        style = self.get_component_rich_style("flow-table--header")
        text = (" " * GAP).join(fit(column.title, w) for column, w in columns)
        return Strip([Segment(text, style)]).adjust_cell_length(width, style)

    def _foreground(self, component: str) -> Style:
        """A component's colour and weight without its background, so rows keep theirs.
        (Resolved fully: a partial style would lose the alpha blending of muted colours.)"""
        style = self.get_component_rich_style(component)
        return Style(color=style.color, bold=style.bold)

    def _row(
        self, record: FlowRecord, count: int, columns: list[tuple[Column, int]], width: int, base: Style, is_cursor: bool
    ) -> Strip:
        verdict_class = _VERDICT_CLASS.get(record.verdict)
        cells = [(column.key, *cell_parts(record, column.key, w, self.zone, self.namespace, count)) for column, w in columns]
        if is_cursor:
            # The selected row is drawn in the cursor colours only: readable in every theme.
            style = self.get_component_rich_style("flow-table--cursor")
            if verdict_class == "flow-table--dropped":
                style += Style(bold=True)
            text = (" " * GAP).join(text for _, text, _ in cells)
            return Strip([Segment(text, style)]).adjust_cell_length(width, style)
        segments: list[Segment] = []
        gap = Segment(" " * GAP, base)
        dim = base + self._foreground("flow-table--dim")
        for position, (key, text, dim_length) in enumerate(cells):
            if position:
                segments.append(gap)
            style = base
            if key == "verdict" and verdict_class:
                style = base + self._foreground(verdict_class)
            elif key == "info" and record.drop_reason:
                style = base + self._foreground("flow-table--reason")
            elif key == "count":
                style = base + self._foreground("flow-table--count")
            elif key in ("time", "direction", "flags") or (key == "arrow" and ARROW_REPLY not in text):
                style = dim  # a reply's arrow stays bright: it says the endpoints are swapped
            if dim_length:
                segments.append(Segment(text[:dim_length], dim))
                text = text[dim_length:]
            segments.append(Segment(text, style))
        return Strip(segments).adjust_cell_length(width, base)
