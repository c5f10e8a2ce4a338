"""The Flows table's columns: what each shows, and which survive on a narrow terminal.

Pure formatting (no Textual), so the layout rules are testable on their own. Columns
follow Hubble UI's flows table; each has a priority, and when the terminal is too narrow
the least important ones are dropped first, then flexible columns share what is left.

Rows read the way `hubble observe` prints them: a reply (is_reply, or an L7 response
when the flag is unset) is shown client first with a `←` between the endpoints, so a
conversation keeps its client on the left and PORT is always the service's port. The
detail view keeps the flow's raw source and destination.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo

from rich.cells import cell_len, set_cell_size

from kcockpit.model.record import DIRECTION_NAMES, L7_RESPONSE, UNREADABLE, EndpointInfo, FlowRecord
from kcockpit.ui.printable import printable

GAP = 1  # blank cells between columns
OPTIONAL = 4  # columns with this priority or higher are the first to go
COMFORT = 6  # extra cells each flexible column should get before optional columns are shown
NAMESPACE_ROOM = 24  # from this width a name column shows every namespace (as a dim prefix)
NAME_LIMIT = 26  # wider name columns would mostly be padding: L7 info gets the rest
ARROW_REQUEST = "→"
ARROW_REPLY = "←"


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int  # fixed width, or the minimum width of a flexible column
    priority: int  # 1 = never dropped; higher numbers are dropped first
    flex: int = 0  # share of the spare width (0 = fixed)
    preferred: int = 0  # grows to this width first when there is room
    limit: int = 0  # a flexible column grows no wider than this (0 = no limit)


COLUMNS: tuple[Column, ...] = (
    Column("time", "TIME", 8, 3, preferred=12),
    Column("count", "×", 5, 1),  # only while aggregating
    Column("source", "SOURCE", 12, 1, flex=2, limit=NAME_LIMIT),
    Column("arrow", "", 1, 1),
    Column("destination", "DESTINATION", 12, 1, flex=2, limit=NAME_LIMIT),
    Column("port", "PORT", 9, 2),
    Column("info", "L7 INFO", 14, 1, flex=3),  # also the drop reason: never dropped
    Column("direction", "DIR", 7, 4),
    Column("verdict", "VERDICT", 9, 1),
    Column("flags", "TCP FLAGS", 11, 5),
)


def layout_columns(width: int, aggregate: bool = False, columns: tuple[Column, ...] = COLUMNS) -> list[tuple[Column, int]]:
    """Columns that fit in `width` cells, in display order, with their widths."""
    kept = [c for c in columns if aggregate or c.key != "count"]

    def needed(cols: list[Column], comfort: int = 0) -> int:
        return sum(c.width + (comfort if c.flex else 0) for c in cols) + GAP * (len(cols) - 1)

    def drop_least_important() -> bool:
        least = max(kept, key=lambda c: (c.priority, columns.index(c)))
        if least.priority == 1:
            return False
        kept.remove(least)
        return True

    # Optional columns only stay while names and L7 info keep some room to breathe.
    while needed(kept, COMFORT) > width and max(c.priority for c in kept) >= OPTIONAL:
        drop_least_important()
    while needed(kept) > width and drop_least_important():
        pass
    spare = max(0, width - needed(kept))
    widths = {c.key: c.width for c in kept}
    for column in kept:
        if column.preferred > column.width and spare >= 24:
            grow = min(spare, column.preferred - column.width)
            widths[column.key] += grow
            spare -= grow
    flexible = [c for c in kept if c.flex]
    while spare and flexible:
        flex_total = sum(c.flex for c in flexible)
        given = 0
        for column in flexible:
            share = spare * column.flex // flex_total
            if column is flexible[-1]:
                share = spare - given  # rounding remainder
            if column.limit:
                share = max(0, min(share, column.limit - widths[column.key]))
            widths[column.key] += share
            given += share
        spare -= given
        # Columns at their limit leave the rest to the others.
        flexible = [c for c in flexible if not c.limit or widths[c.key] < c.limit]
        if not given:
            break
    return [(c, widths[c.key]) for c in kept]


# --- what a row shows -------------------------------------------------------------------

def is_reply(record: FlowRecord) -> bool:
    """Whether the flow goes from server to client: the is_reply flag, or for flows without
    it (some L7 and drop events) an L7 response."""
    if record.is_reply is not None:
        return record.is_reply
    return record.l7_type == L7_RESPONSE


def oriented(record: FlowRecord) -> tuple[EndpointInfo, str, EndpointInfo]:
    """(left endpoint, arrow, right endpoint): the client stays on the left, the arrow
    gives the direction of this flow's packets."""
    if is_reply(record):
        return record.destination, ARROW_REPLY, record.source
    return record.source, ARROW_REQUEST, record.destination


def _port_text(port: int, protocol: str) -> str:
    if port:
        return f"{port}/{protocol}" if protocol else str(port)
    return protocol


def format_port(record: FlowRecord) -> str:
    """The raw destination port and protocol (`8080/TCP`), as the detail view shows them."""
    return _port_text(record.destination.port, record.protocol)


def service_port(record: FlowRecord) -> str:
    """The server's port and protocol: the destination port, or the source port of a reply."""
    server = record.source if is_reply(record) else record.destination
    return _port_text(server.port, record.protocol)


def format_time(time_ns: int, zone: tzinfo | None, width: int = 12) -> str:
    """HH:MM:SS.mmm, or HH:MM:SS in a narrow column; `zone` None means the local time zone."""
    moment = datetime.fromtimestamp(time_ns / 1e9, tz=zone or timezone.utc)
    if zone is None:
        moment = moment.astimezone()
    if width < 12:
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def format_count(count: int) -> str:
    """×N for an aggregated row, blank for a single flow; at most 5 cells."""
    if count <= 1:
        return ""
    return f"×{count}" if count < 10_000 else f"×{min(count // 1000, 999)}k"


def info_text(record: FlowRecord, width: int) -> str:
    """The drop reason (never shortened) then the L7 summary, fitted to `width` cells; for
    a flow whose stored bytes are lost, that they are (its time, verdict and node remain)."""
    if record.unreadable:
        return UNREADABLE
    summary = record.l7_summary()
    reason = record.drop_reason_name
    if reason:
        summary = summary.with_prefix(reason + " ")
    return summary.fit(width)


def endpoint_cell(endpoint: EndpointInfo, width: int, namespace_filter: str = "") -> tuple[str, int]:
    """(text exactly `width` cells wide, length of the dim namespace prefix at its start).

    The same rule for every row, so one namespace never shows two ways: the namespace
    filtered on is never repeated; other namespaces show as an `ns/` prefix in a column
    at least NAMESPACE_ROOM wide, or in any column while a namespace filter is on (a peer
    outside it is worth seeing). A prefix that does not fit is shortened (`kube-s…/`),
    never the name; below 3 cells of room it is left out.
    """
    name = endpoint.short_name()
    namespace = endpoint.namespace
    if not namespace or namespace == namespace_filter or (width < NAMESPACE_ROOM and not namespace_filter):
        return fit(name, width), 0
    prefix = namespace + "/"
    room = width - len(name)
    if len(prefix) > room:
        if room < 3:
            return fit(name, width), 0
        prefix = namespace[: room - 2] + "…/"
    return fit(prefix + name, width), len(prefix)


CELL_TEXT: dict[str, Callable[[FlowRecord, int], str]] = {
    "arrow": lambda r, width: oriented(r)[1],
    "port": lambda r, width: service_port(r),
    "info": info_text,
    "direction": lambda r, width: DIRECTION_NAMES.get(r.direction, "?"),
    "verdict": lambda r, width: r.verdict_name,
    "flags": lambda r, width: ",".join(r.tcp_flags),
}


def cell_parts(
    record: FlowRecord, key: str, width: int, zone: tzinfo | None, namespace: str = "", count: int = 1
) -> tuple[str, int]:
    """One cell, exactly `width` cells wide, and the length of its dim prefix (0 for none).
    `namespace` is the namespace filtered on, `count` the flows an aggregated row stands for.
    Every text cell goes through fit(), which also makes control characters visible."""
    if key == "source":
        return endpoint_cell(oriented(record)[0], width, namespace)
    if key == "destination":
        return endpoint_cell(oriented(record)[2], width, namespace)
    if key == "time":
        return fit(format_time(record.time_ns, zone, width), width), 0
    if key == "count":
        return format_count(count).rjust(width)[:width], 0
    return fit(CELL_TEXT[key](record, width), width), 0


def cell(record: FlowRecord, key: str, width: int, zone: tzinfo | None, namespace: str = "", count: int = 1) -> str:
    """The text of one cell, exactly `width` cells wide."""
    return cell_parts(record, key, width, zone, namespace, count)[0]


def row_key(record: FlowRecord) -> tuple:
    """What a row shows apart from its time (and an HTTP latency): consecutive flows with
    the same key are one row when aggregating."""
    record = record.decoded()  # not record's own decoding: that would stay in memory
    left, arrow, right = oriented(record)
    return (
        record.verdict,
        record.drop_reason,
        left.namespace,
        left.short_name(),
        arrow,
        right.namespace,
        right.short_name(),
        service_port(record),
        record.l7_kind,
        record.l7_type,
        record.http_method,
        record.http_url,
        record.http_code,
        record.dns_query,
        record.dns_rcode,
        record.dns_qtypes,
        record.direction,
        record.tcp_flags,
    )


def fit(text: str, width: int) -> str:
    """Pad or cut `text` to exactly `width` cells, marking a cut with an ellipsis.

    Cells, not characters: a URL or DNS name with CJK or emoji (two cells each) must not
    push the columns after it, the verdict above all, off the row. Control characters
    (an ESC in a URL) are shown as one visible cell each, never sent to the terminal."""
    text = printable(text)
    if text.isascii():
        if len(text) <= width:
            return text.ljust(width)
        if width <= 1:
            return text[:width]
        return text[: width - 1] + "…"
    cells = cell_len(text)
    if cells <= width:
        return text + " " * (width - cells)
    if width <= 1:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"  # pads with a space where a wide character is split
