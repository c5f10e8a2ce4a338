"""The DNS tab: every lookup that fails, for whom, how and why, and the "it was DNS" verdict.

It only draws: the verdicts, the search-path folding and the correlation with HTTP errors
come from `kcockpit.model.dns_health` over the aggregates' DNS rows and service edges, and
the CoreDNS line from `kcockpit.application.coredns` (Prometheus). Redrawn only when the
aggregates, the window, the flow-time second or a view option changed; the selected row
and the scroll position survive every redraw.
"""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, OptionList, Static
from textual.widgets.option_list import Option

from kcockpit.model.aggregates.rows import window_label
from kcockpit.model.dns_health import (
    DROPPED, NXDOMAIN, SERVFAIL, SLOW, SLOW_P95_MS, UNANSWERED, DnsHealth, DnsName, Verdict,
    dns_health, flows_filter, format_ms, percent,
)
from kcockpit.model.record import FlowRecord
from kcockpit.ui.printable import printable
from kcockpit.ui.tabs.base import CockpitTab, Legend, TabContext

WINDOWS = (60, 300, 900, None)
MAX_ROWS = 500  # rows put in the table (in sort order); the header says how many more there are
MIN_REDRAW_S = 1.0  # live data redraws at most this often (a user's key redraws at once)
COREDNS_EVERY_S = 5.0
MAX_VERDICT_LINES = 4

# (header, sort key): sort keys put the "worst"/largest first.
COLUMNS: tuple[tuple[str, object], ...] = (
    ("CLIENT", lambda n: (n.client.name, n.query)),
    ("NAME", lambda n: (n.query, n.client.name)),
    ("LOOKUPS", lambda n: -n.requests),
    ("ANS%", lambda n: n.answered_ratio if not math.isnan(n.answered_ratio) else 2.0),
    ("NXDOM", lambda n: -n.rcode("NXDOMAIN")),
    ("SERVF", lambda n: -n.rcode("SERVFAIL")),
    ("UNANS", lambda n: -n.unanswered),
    ("DROP", lambda n: -n.dropped),
    ("P95", lambda n: -_nan0(n.quantile_ms(0.95))),
    ("SEARCH", lambda n: -n.miss_lookups),
    ("NOERR", lambda n: -n.rcode("NOERROR")),
    ("REFUS", lambda n: -n.rcode("REFUSED")),
    ("P50", lambda n: -_nan0(n.quantile_ms(0.5))),
    ("QTYPES", lambda n: ",".join(n.qtypes)),
    ("LAST", lambda n: -n.last_ns),
)
DEFAULT_SORT = 2  # lookups

DNS_LEGEND: Legend = (
    ("✗ verdict", "a client workload whose DNS is unhealthy in the window, worst first: dropped by "
                  "policy, unanswered (no response within 5 s), SERVFAIL/REFUSED, NXDOMAIN after the "
                  f"search path, slow (p95 above {SLOW_P95_MS:g} ms). enter explains it."),
    ("✓ DNS healthy", "every client's lookups were answered, fast, without errors, in the window."),
    ("SEARCH", "search-path misses folded under the name (ndots:5 expansions answered NXDOMAIN, "
               "expected): counted in LOOKUPS, not in NXDOM. p shows them as rows of their own, "
               "marked ↳ and dim."),
    ("(dropped before …)", "DNS packets dropped at L3/L4 before the DNS proxy saw a query name."),
    ("source", "every number comes from the flows (Hubble) in the window shown; the CoreDNS line "
               "from Prometheus."),
)


def _nan0(value: float) -> float:
    return 0.0 if math.isnan(value) else value


class VerdictList(OptionList):
    """The verdict lines; ↓ past the last one moves to the table."""

    def action_cursor_down(self) -> None:
        if self.highlighted is None or self.highlighted >= self.option_count - 1:
            tab = self._tab()
            if tab is not None:
                tab.focus_table()
                return
        super().action_cursor_down()

    def _tab(self) -> DnsTab | None:
        return next((a for a in self.ancestors if isinstance(a, DnsTab)), None)


class DnsTable(DataTable):
    """The lookups table; ↑ on the first row moves to the verdict lines."""

    def action_cursor_up(self) -> None:
        if self.cursor_row <= 0:
            tab = next((a for a in self.ancestors if isinstance(a, DnsTab)), None)
            if tab is not None and tab.focus_verdicts():
                return
        super().action_cursor_up()


class VerdictScreen(ModalScreen[None]):
    """The explanation of a verdict that is not a policy drop (those open the flow detail)."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "Back", id="dns.verdict.back")]
    DEFAULT_CSS = """
    VerdictScreen { align: center middle; }
    VerdictScreen > VerticalScroll { width: 90%; max-width: 100; height: auto; max-height: 90%;
                                     background: $surface; border: round $primary; padding: 0 1; }
    """

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text(self.title_text, style="bold"), id="verdict-title")
            yield Static(Text(self.body), id="verdict-body")


class DnsTab(CockpitTab):
    TAB_ID = "dns"
    TITLE = "DNS"

    BINDINGS = [
        Binding("t", "cycle_window", "Window", tooltip="1m → 5m → 15m → since start", id="dns.window"),
        Binding("s", "sort", "Sort", tooltip="sort the table by the next column", id="dns.sort"),
        Binding("p", "toggle_search_path", "Search path", tooltip="fold / unfold the ndots:5 search-path misses", id="dns.search_path"),
        Binding("slash", "focus_filter", "Filter rows", key_display="/", tooltip="filter rows by client or name", id="dns.filter"),
        Binding("escape", "back", "Clear filter", show=False, tooltip="leave the filter bar; then clear the filter", id="dns.back"),
    ]

    DEFAULT_CSS = """
    DnsTab { height: 1fr; }
    DnsTab > #dns-header { height: 1; color: $text-muted; padding: 0 1; }
    DnsTab > #dns-verdicts { height: auto; max-height: 7; border: none; padding: 0; background: $surface; }
    DnsTab > #dns-verdicts > .option-list--option { padding: 0 1; }
    DnsTab > #dns-coredns { height: 1; color: $text-muted; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    DnsTab > #dns-filter { height: 1; border: none; padding: 0 1; display: none; }
    DnsTab > #dns-filter.-shown { display: block; }
    DnsTab > #dns-table { height: 1fr; }
    """

    def __init__(self, context: TabContext) -> None:
        super().__init__(context)
        self.window_index = 0
        self.sort_index = DEFAULT_SORT
        self.fold = True
        self.filter_text = ""
        self.health: DnsHealth | None = None
        self.names: list[DnsName] = []  # the table's rows, in order
        self._drawn_key: tuple | None = None
        self._keep_key: str | None = None  # the selected row across a rebuild of the columns
        self._drawn_at = 0.0
        self.hidden_rows = 0  # rows beyond MAX_ROWS, not put in the table
        self._clock = context.clock or time.monotonic
        self._coredns_at: float | None = None
        self._coredns_window: int | None | str = "unset"
        self._coredns_text = ""
        self._engine_cache: dict[bytes, str | None] = {}
        self.header = Static("", id="dns-header")
        self.verdicts = VerdictList(id="dns-verdicts")
        self.coredns = Static("", id="dns-coredns")
        self.filter_input = Input(placeholder="client or name (enter applies, esc leaves)", id="dns-filter")
        self.table = DnsTable(id="dns-table", cursor_type="row", zebra_stripes=False)

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.verdicts
        yield self.coredns
        yield self.filter_input
        yield self.table

    def on_mount(self) -> None:
        self._set_columns()

    # --- hooks -----------------------------------------------------------------------

    def tab_shown(self) -> None:
        self.refresh_tab()
        if self.health is not None and self.health.verdicts:
            self.screen.set_focus(self.verdicts)
        else:
            self.screen.set_focus(self.table)

    def refresh_tab(self) -> None:
        self._redraw()
        self._maybe_fetch_coredns()

    def legend(self) -> Legend:
        return DNS_LEGEND

    # --- properties ------------------------------------------------------------------

    @property
    def window_s(self) -> int | None:
        return WINDOWS[self.window_index]

    def focus_table(self) -> None:
        self.screen.set_focus(self.table)

    def focus_verdicts(self) -> bool:
        if self.health is None or not self.health.verdicts:
            return False
        self.screen.set_focus(self.verdicts)
        self.verdicts.highlighted = self.verdicts.option_count - 1
        return True

    # --- drawing ---------------------------------------------------------------------

    def _redraw(self, force: bool = False) -> None:
        session = self.session
        aggregates = session.aggregates
        if aggregates is None:
            if self._drawn_key != ("none",):
                self._drawn_key = ("none",)
                self.header.update("DNS · no flow feed in this session: nothing is counted")
            return
        feed = session.feed
        now_s = feed.now_s() if feed is not None else aggregates.now_s()
        key = (aggregates.generation, now_s, self.window_index, self.sort_index, self.fold, self.filter_text)
        if key == self._drawn_key and not force:
            return
        wall = time.monotonic()
        if not force and self._drawn_key is not None and self._drawn_key[2:] == key[2:] and wall - self._drawn_at < MIN_REDRAW_S:
            return  # only the data moved, and it was drawn less than a second ago
        self._drawn_key = key
        self._drawn_at = wall
        window = self.window_s
        label = window_label(window)
        try:
            rows = aggregates.dns_rows(window, now_s)
            edges = aggregates.services(window, now_s)
            series_s = window or 900

            def series(edge):
                return aggregates.edge_series((edge.client, edge.server, edge.port, edge.protocol), series_s, now_s)

            health = dns_health(rows, edges, fold=self.fold, window=label, explain_policy=self._engine_policy,
                                series=series, now_s=now_s)
        except Exception as error:  # noqa: BLE001 (bad input never gives a traceback)
            self.header.update(Text(f"DNS · cannot compute the view: {type(error).__name__}: {error}", style="bold"))
            return
        had_verdicts = self.health is not None and bool(self.health.verdicts)
        self.health = health
        self._draw_verdicts(health)
        self._draw_table(health, now_s)
        self._draw_header(health, label, aggregates.scope)
        if health.verdicts and not had_verdicts and self.table.has_focus and self.table.cursor_row <= 0:
            # DNS just turned unhealthy while nobody moved in the table: the verdict is the story.
            self.screen.set_focus(self.verdicts)
            self.verdicts.highlighted = 0

    def _draw_header(self, health: DnsHealth, label: str, scope: str) -> None:
        sort = COLUMNS[self.sort_index][0]
        fold = "search path folded" if self.fold else "search path unfolded"
        filtered = f" · filter “{printable(self.filter_text)}”" if self.filter_text else ""
        window = "since start" if self.window_s is None else f"last {label}"
        domain = "" if health.cluster_domain == "cluster.local" else f" · domain {printable(health.cluster_domain)}"
        more = f" · first {MAX_ROWS} rows of {MAX_ROWS + self.hidden_rows:,} (/ narrows)" if self.hidden_rows else ""
        self.header.update(
            f"{health.lookups:,} lookups · {window} (t) · flows, {scope} · {fold} (p) · sort {sort} (s)"
            f"{domain}{filtered}{more}"
        )

    def _draw_verdicts(self, health: DnsHealth) -> None:
        verdicts = self.verdicts
        highlighted = verdicts.highlighted
        previous = verdicts.get_option_at_index(highlighted).id if highlighted is not None and verdicts.option_count else None
        options: list[Option] = []
        if health.verdicts:
            for index, verdict in enumerate(health.verdicts):
                options.append(Option(_verdict_text(verdict), id=f"v{index}:{verdict.client.name}"))
        else:
            style = "bold green" if health.lookups else "dim"
            options.append(Option(Text(health.healthy_line + f" · last {health.window} · flows", style=style), id="healthy"))
        verdicts.set_options(options)
        if health.verdicts:
            ids = [o.id for o in options]
            same = next((i for i, o in enumerate(ids) if previous and o.split(":", 1)[1] == previous.split(":", 1)[-1]), None)
            verdicts.highlighted = same if same is not None else (min(highlighted, len(ids) - 1) if highlighted is not None else 0)

    def _draw_table(self, health: DnsHealth, now_s: int) -> None:
        table = self.table
        names = list(health.names)
        if self.filter_text:
            needle = self.filter_text.lower()
            names = [n for n in names if needle in n.client.name.lower() or needle in n.label.lower()
                     or needle in n.search_miss_of.lower()]
        key = COLUMNS[self.sort_index][1]
        names.sort(key=lambda n: (key(n), n.client.name, n.query))  # type: ignore[operator]
        self.hidden_rows = max(0, len(names) - MAX_ROWS)
        names = names[:MAX_ROWS]
        selected = self._selected_key() if table.row_count else self._keep_key
        self._keep_key = None
        scroll_x, scroll_y = table.scroll_x, table.scroll_y
        table.clear()
        self.names = names
        narrow = (self.size.width or self.app.size.width) < 100
        for name in names:
            table.add_row(*_cells(name, now_s, narrow), key=_row_key(name))
        if selected is not None:
            index = next((i for i, n in enumerate(names) if _row_key(n) == selected), None)
            if index is not None:
                table.move_cursor(row=index, animate=False, scroll=False)
        table.scroll_to(scroll_x, scroll_y, animate=False, immediate=True)
        if not names:
            self.table.border_subtitle = ""

    def _selected_key(self) -> str | None:
        row = self.table.cursor_row
        if 0 <= row < len(self.names):
            return _row_key(self.names[row])
        return None

    def _set_columns(self) -> None:
        table = self.table
        self._keep_key = self._selected_key() or self._keep_key
        table.clear(columns=True)
        width = self.size.width or self.app.size.width
        # The names get what is left by the counts that matter most (up to P95) at this width.
        client_w = 14 if width < 100 else 28
        name_w = max(20, min(52, width - client_w - 64))
        for index, (title, _) in enumerate(COLUMNS):
            label = title + (" ▼" if index == self.sort_index else "")
            fixed = {"CLIENT": client_w, "NAME": name_w}.get(title)
            table.add_column(label, key=title, width=fixed)
        self._drawn_key = None

    def on_resize(self) -> None:
        if not self.size.width:  # hidden: nothing to lay out
            return
        self._set_columns()
        self._redraw(force=True)

    # --- CoreDNS (Prometheus) ----------------------------------------------------------

    def _maybe_fetch_coredns(self) -> None:
        now = self._clock()
        if self._coredns_window == self.window_s and self._coredns_at is not None and now - self._coredns_at < COREDNS_EVERY_S:
            return
        self._coredns_at = now
        self._coredns_window = self.window_s
        integrations = self.session.integrations
        feed = integrations.prometheus if integrations is not None else None
        from kcockpit.application.coredns import why_unavailable

        reason = why_unavailable(feed)
        if reason is not None:
            self._show_coredns(reason)
            return
        self._fetch_coredns(feed, self.window_s)

    @work(exclusive=True, group="dns-coredns")
    async def _fetch_coredns(self, feed, window_s: int | None) -> None:
        from kcockpit.application.coredns import fetch_coredns_line

        line = await fetch_coredns_line(feed, window_s)
        self._show_coredns(line.text)

    def _show_coredns(self, text: str) -> None:
        if text != self._coredns_text:
            self._coredns_text = text
            self.coredns.update(Text(printable(text)))

    # --- the policy engine, for drops Hubble did not name a policy for ----------------

    def _engine_policy(self, sample: bytes) -> str | None:
        if sample in self._engine_cache:
            return self._engine_cache[sample]
        answer = None
        integrations = self.session.integrations
        if integrations is not None:
            data = integrations.policy.data()
            record = FlowRecord.from_bytes(sample)
            if data.cluster is not None and record is not None:
                from kcockpit.policy.flows import explain_flow

                verdict = explain_flow(record, data.cluster, with_fixes=False)
                deciding = verdict.evaluation.egress.deciding or verdict.evaluation.ingress.deciding
                answer = str(deciding[0]) if deciding else None
        if len(self._engine_cache) > 256:
            self._engine_cache.clear()
        self._engine_cache[sample] = answer
        return answer

    # --- events ----------------------------------------------------------------------

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if self.health is None or event.option.id in (None, "healthy"):
            return
        index = int(event.option.id.split(":", 1)[0][1:])
        if index < len(self.health.verdicts):
            self.explain(self.health.verdicts[index])

    def explain(self, verdict: Verdict) -> None:
        """enter on a verdict: a policy drop opens the flow detail of a dropped lookup (the
        engine's explanation and fix, f copies, s saves); the others explain the cause."""
        if verdict.kind == DROPPED and verdict.sample is not None:
            record = FlowRecord.from_bytes(verdict.sample)
            if record is not None:
                from kcockpit.ui.screens.detail import FlowDetailScreen

                self.app.push_screen(FlowDetailScreen(record, self.context.zone), self._after_detail)
                return
        self.app.push_screen(VerdictScreen(printable(verdict.line), _explanation(verdict)))

    def _after_detail(self, jump: str | None) -> None:
        if jump:
            self.open_flows(jump)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = event.cursor_row
        if 0 <= row < len(self.names):
            self.open_flows(flows_filter(self.names[row]))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.filter_text = event.value.strip()
        self.filter_input.set_class(bool(self.filter_text), "-shown")
        self.focus_table()
        self._redraw(force=True)

    # --- actions ---------------------------------------------------------------------

    def action_cycle_window(self) -> None:
        self.window_index = (self.window_index + 1) % len(WINDOWS)
        self._redraw(force=True)
        self._maybe_fetch_coredns()
        self.notify(f"window: {'since start' if self.window_s is None else 'last ' + window_label(self.window_s)}", timeout=1.5)

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(COLUMNS)
        self._set_columns()
        self._drawn_key = None
        self._redraw(force=True)

    def action_toggle_search_path(self) -> None:
        self.fold = not self.fold
        self._redraw(force=True)
        self.notify("search-path misses folded under the asked name" if self.fold
                    else "search-path misses shown as rows (SEARCH: expected)", timeout=2)

    def action_focus_filter(self) -> None:
        self.filter_input.add_class("-shown")
        self.filter_input.value = self.filter_text
        self.screen.set_focus(self.filter_input)

    def action_back(self) -> None:
        if self.filter_input.has_focus:
            self.filter_input.set_class(bool(self.filter_text), "-shown")
            self.focus_table()
        elif self.filter_text:
            self.filter_text = ""
            self.filter_input.value = ""
            self.filter_input.remove_class("-shown")
            self._redraw(force=True)


# --- cells ---------------------------------------------------------------------------


def _row_key(name: DnsName) -> str:
    return f"{name.client.name}\x00{name.client.detail}\x00{name.query}"


def _count(value: int, bad: bool = False) -> Text:
    if not value:
        return Text("·", style="dim", justify="right")
    return Text(f"{value:,}", style="bold red" if bad else "", justify="right")


def _ago(last_ns: int, now_s: int) -> str:
    seconds = max(0, now_s - last_ns // 1_000_000_000)
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def _cells(name: DnsName, now_s: int, narrow: bool = False) -> list:
    """The row's cells; `narrow` (under 100 columns) leaves the client's namespace out."""
    answered = name.answered_ratio
    ratio = Text(percent(answered), justify="right",
                 style="bold red" if not math.isnan(answered) and answered < 0.95 else "")
    if name.before_proxy:
        label = Text("(dropped before the DNS proxy: query unknown)", style="italic", no_wrap=True, overflow="ellipsis")
    elif name.search_miss_of:  # unfolded: an expected search-path miss of another row's name
        label = Text("↳ " + printable(name.query), style="dim", no_wrap=True, overflow="ellipsis")
    else:
        label = Text(printable(name.query), no_wrap=True, overflow="ellipsis")
    if name.search_miss_of:
        search = Text("expected miss", style="dim")
    elif name.miss_lookups:
        misses = len(name.miss_queries)
        search = Text(f"{misses} exp. ({name.miss_lookups:,})", style="dim")
    else:
        search = Text("·", style="dim")
    p95 = name.quantile_ms(0.95)
    return [
        Text(printable(name.client.short if narrow else str(name.client)), no_wrap=True, overflow="ellipsis"),
        label,
        Text(f"{name.requests:,}", justify="right"),
        ratio,
        _count(name.rcode("NXDOMAIN"), bad=not name.search_miss_of) if not name.search_miss_of
        else Text(f"{name.rcode('NXDOMAIN'):,}", style="dim", justify="right"),
        _count(name.rcode("SERVFAIL"), bad=True),
        _count(name.unanswered, bad=True),
        _count(name.dropped, bad=True),
        Text(format_ms(p95), justify="right", style="bold red" if not math.isnan(p95) and p95 > SLOW_P95_MS else ""),
        search,
        _count(name.rcode("NOERROR")),
        _count(name.rcode("REFUSED"), bad=True),
        Text(format_ms(name.quantile_ms(0.5)), justify="right"),
        Text(",".join(name.qtypes) or "·"),
        Text(_ago(name.last_ns, now_s), style="dim"),
    ]


def _verdict_text(verdict: Verdict) -> Text:
    text = Text(printable(verdict.line))
    text.stylize("bold red", 0, 1)
    client = str(verdict.client)
    text.stylize("bold", 2, 2 + len(client))
    if verdict.correlation:
        start = text.plain.find(verdict.correlation)
        text.stylize("yellow", start, start + len(verdict.correlation))
    if verdict.quiet_s is not None:
        text.stylize("dim", text.plain.rfind(" (none for "))
    return text


_FIXES = {
    UNANSWERED: (
        "Lookups leave the client and no answer comes back within 5 s. Usual causes: CoreDNS is "
        "down, overloaded or throttled (check `kubectl -n kube-system get pods -l k8s-app=kube-dns`, "
        "its CPU limits, and the coredns_* request rate and duration on the CoreDNS line); replies "
        "lost to conntrack races on UDP (the A and AAAA queries share a socket: `single-request-reopen` "
        "or NodeLocal DNSCache); an MTU problem on the path to CoreDNS."
    ),
    SERVFAIL: (
        "CoreDNS answered SERVFAIL or REFUSED: the upstream resolver it forwards to (the `forward` "
        "plugin, usually /etc/resolv.conf of the node) is failing or refusing. Check the forward "
        "errors on the CoreDNS line, the upstream's health, and the Corefile."
    ),
    NXDOMAIN: (
        "The name does not exist even after the search path: a typo, a Service that was deleted "
        "or renamed, or a name in another namespace asked without `.<namespace>`. Search-path misses "
        "(the ndots:5 expansions) are already folded away and are not counted here."
    ),
    SLOW: (
        f"The answers' p95 is above {SLOW_P95_MS:g} ms (an in-cluster answer takes about 1 ms, a "
        "forwarded one tens of ms). Look at CoreDNS's p95 and cache hit ratio on the CoreDNS line, "
        "its CPU, and whether ndots:5 multiplies the queries for external names (use FQDNs with a "
        "trailing dot, or lower ndots in the pod's dnsConfig)."
    ),
    DROPPED: (
        "The lookups are dropped by a network policy, and no sample flow is available to explain "
        "which rule: open the Flows tab (enter on the table row) and the flow detail of a drop."
    ),
}


def _explanation(verdict: Verdict) -> str:
    body = [_FIXES.get(verdict.kind, "")]
    if verdict.name:
        body.append(f"Most affected name: {printable(verdict.name)}")
    if verdict.others:
        body.append("Also failing for this client: " + ", ".join(verdict.others))
    if verdict.correlation:
        body.append("At the same time: " + verdict.correlation)
    body.append("Numbers: from the flows (Hubble), in the window shown. enter on a table row opens "
                "the client's DNS flows.")
    return "\n\n".join(b for b in body if b)


__all__ = ["DnsTab", "VerdictScreen", "NXDOMAIN"]
