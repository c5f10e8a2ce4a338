"""DNS health from the flow aggregates: search-path folding, the verdict rules, and the
correlation with the same workload's HTTP errors and drops. Plain data, no screen: the DNS
tab only draws what `dns_health(...)` answers, and the model tests check it on hand-made
flows.

Search-path folding. A pod's resolv.conf has `search <ns>.svc.<domain> svc.<domain> <domain>`
and `options ndots:5`, so a name with fewer than five dots is first tried with each search
domain: a pod in `payments` asking for `api.stripe.com` sends
`api.stripe.com.payments.svc.cluster.local.`, `api.stripe.com.svc.cluster.local.`,
`api.stripe.com.cluster.local.` (NXDOMAIN, expected) before `api.stripe.com.`. A query is
folded under the name the application asked when (1) it is one of those expansions, built
from the client's own namespace and the cluster domain seen in the flows (default
`cluster.local`), (2) every answer it got was NXDOMAIN, and (3) the same client also asked a
later name of the same chain (the one that ended the search). Folded queries are counted as
"search-path misses" of that name, never as its NXDOMAINs.

A folded name counts its misses among its lookups and answers (they were sent and
answered), but their NXDOMAINs only as misses, never among the name's rcodes.

Verdict rules, per client workload over the window (the first that holds is the line's
cause; the others still show in the table); lines are ordered by rule, then by how many
lookups fail:

1. dropped: at least one lookup dropped (by policy: before the DNS proxy, or by it);
2. unanswered: at least 2 lookups, and 5 % of them, without a response within 5 s;
3. SERVFAIL / REFUSED: at least one such answer (the upstream resolver failing);
4. NXDOMAIN: at least 2 answers, and 5 % of them, NXDOMAIN after search-path folding;
5. slow: p95 of the answers above SLOW_P95_MS (100 ms) over at least 5 answers.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kcockpit.model.aggregates.naming import Endpoint
from kcockpit.model.aggregates.rows import DnsRow, ServiceEdge
from kcockpit.model.aggregates.sketch import LatencySketch

DEFAULT_CLUSTER_DOMAIN = "cluster.local"
SLOW_P95_MS = 100.0  # an in-cluster answer takes ~1 ms, a forwarded one tens: 100 ms p95 is slow
SLOW_MIN_ANSWERS = 5
UNANSWERED_MIN, UNANSWERED_RATIO = 2, 0.05
NXDOMAIN_MIN, NXDOMAIN_RATIO = 2, 0.05
DNS_PORT = 53
QUIET_AFTER_S = 10  # a verdict whose failures stopped this long ago says so
BEFORE_PROXY = "(dropped before the DNS proxy: query unknown)"

# Verdict kinds, worst first.
DROPPED, UNANSWERED, SERVFAIL, NXDOMAIN, SLOW = "dropped", "unanswered", "servfail", "nxdomain", "slow"
KINDS = (DROPPED, UNANSWERED, SERVFAIL, NXDOMAIN, SLOW)

# Looks up the deciding policy of a dropped lookup's sample when Hubble did not name one:
# returns "ns/name" or None. Supplied by the caller (the policy engine lives above the model).
PolicyLookup = Callable[[bytes], "str | None"]


@dataclass(slots=True)
class DnsName:
    """One client's lookups of one name (all query types), with the search-path misses folded
    under it. `query` "" is the row of lookups dropped before the DNS proxy."""

    client: Endpoint
    query: str
    qtypes: tuple[str, ...] = ()
    requests: int = 0
    responses: int = 0
    rcodes: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0
    dropped: int = 0
    drop_policies: dict[str, int] = field(default_factory=dict)
    latency: LatencySketch | None = None
    first_ns: int = 0
    last_ns: int = 0
    sample: bytes | None = None
    miss_queries: tuple[str, ...] = ()  # expanded names folded here
    miss_lookups: int = 0  # their requests, included in `requests` (answered NXDOMAIN, as expected)
    search_miss_of: str = ""  # unfolded view: the asked name this expansion belongs to

    @property
    def before_proxy(self) -> bool:
        return self.query == ""

    @property
    def label(self) -> str:
        return BEFORE_PROXY if self.before_proxy else self.query

    @property
    def answered_ratio(self) -> float:
        # At most 1: a window can hold the response of a request sent just before it began.
        return min(1.0, self.responses / self.requests) if self.requests else math.nan

    def rcode(self, name: str) -> int:
        return self.rcodes.get(name, 0)

    def quantile_ms(self, quantile: float) -> float:
        if self.latency is None or not self.latency.count:
            return math.nan
        return self.latency.quantile_ns(quantile) / 1e6

    def add(self, row: DnsRow) -> None:
        self.requests += row.requests
        self.responses += row.responses
        for code, count in row.rcodes.items():
            self.rcodes[code] = self.rcodes.get(code, 0) + count
        self.unanswered += row.unanswered
        self.dropped += row.dropped
        for policy, count in row.drop_policies.items():
            self.drop_policies[policy] = self.drop_policies.get(policy, 0) + count
        if row.latency is not None and row.latency.count:
            if self.latency is None:
                self.latency = LatencySketch()
            self.latency.merge(row.latency)
        if row.qtype and row.qtype not in self.qtypes:
            self.qtypes = tuple(sorted((*self.qtypes, row.qtype)))
        self.first_ns = min(self.first_ns, row.first_ns) if self.first_ns else row.first_ns
        self.last_ns = max(self.last_ns, row.last_ns)
        if row.sample is not None and (self.sample is None or row.dropped):
            self.sample = row.sample


@dataclass(frozen=True, slots=True)
class Correlation:
    """What else went wrong for the same workload in the window (from the service edges).
    With per-second series, its HTTP responses are split at the moment its DNS started
    failing: `before_*` and `since_*` (else only the window's totals are known)."""

    http_responses: int = 0  # served by the workload, in the window
    http_errors: int = 0  # 5xx among them
    calls: int = 0  # flows of its own calls (DNS left out)
    calls_dropped: int = 0
    before_responses: int = 0
    before_errors: int = 0
    since_responses: int = 0
    since_errors: int = 0

    @property
    def error_ratio(self) -> float:
        return self.http_errors / self.http_responses if self.http_responses else 0.0

    def text(self, window: str) -> str:
        parts = []
        if self.since_errors and self.since_responses:
            since = self.since_errors / self.since_responses
            before = self.before_errors / self.before_responses if self.before_responses else None
            if before is not None and since > before:
                parts.append(f"its 5xx rose from {_pct(before)} to {_pct(since)} at the same time")
            else:
                parts.append(f"its 5xx is {_pct(since)} of {self.since_responses:,} responses since then")
        elif self.http_errors:
            parts.append(f"its HTTP 5xx is {_pct(self.error_ratio)} of {self.http_responses:,} responses in the same {window}")
        if self.calls_dropped:
            parts.append(f"{self.calls_dropped:,} of its calls dropped")
        return "; ".join(parts)


# The per-second cells of one edge over the window: (start second, EdgeCell), oldest first.
EdgeSeries = Callable[[ServiceEdge], "list[tuple[int, object]]"]


@dataclass(frozen=True, slots=True)
class Verdict:
    client: Endpoint
    kind: str
    text: str  # the line, without the ✗ and the correlation
    failures: int  # lookups failing this way
    lookups: int  # all the client's lookups in the window (misses included)
    name: str = ""  # the name most affected ("" for drops before the proxy)
    policy: str = ""  # dropped: the deciding policy
    decided_by: str = ""  # "hubble" or "engine" (dropped), else ""
    direction: str = ""  # dropped: "egress" / "ingress" / ""
    sample: bytes | None = field(default=None, repr=False)
    correlation: str = ""  # "its HTTP 5xx is 38% ..." or ""
    others: tuple[str, ...] = ()  # the other failing kinds of the same client
    quiet_s: int | None = None  # seconds since the last failing lookup, when over QUIET_AFTER_S

    @property
    def line(self) -> str:
        tail = f"; {self.correlation}" if self.correlation else ""
        quiet = f" (none for {self.quiet_s} s: recovering?)" if self.quiet_s is not None else ""
        return f"✗ {self.client}: {self.text}{tail}{quiet}"

    @property
    def severity(self) -> int:
        return KINDS.index(self.kind)


@dataclass(frozen=True, slots=True)
class DnsHealth:
    names: tuple[DnsName, ...]
    verdicts: tuple[Verdict, ...]
    lookups: int
    responses: int
    latency: LatencySketch | None
    cluster_domain: str
    folded: bool
    window: str

    @property
    def answered_ratio(self) -> float:
        return min(1.0, self.responses / self.lookups) if self.lookups else math.nan

    @property
    def healthy(self) -> bool:
        return not self.verdicts

    def p95_ms(self) -> float:
        if self.latency is None or not self.latency.count:
            return math.nan
        return self.latency.quantile_ns(0.95) / 1e6

    @property
    def healthy_line(self) -> str:
        if not self.lookups:
            return f"· no DNS lookups in the last {self.window}"
        p95 = self.p95_ms()
        latency = f", p95 {format_ms(p95)}" if not math.isnan(p95) else ""
        return f"✓ DNS healthy: {_pct(self.answered_ratio, 1)} answered{latency}, {self.lookups:,} lookups"


# --------------------------------------------------------------------------- folding


def cluster_domain(queries: Iterable[str]) -> str:
    """The cluster domain the flows show: what follows the last `.svc.` of the queries that
    have one (the most common), else cluster.local."""
    seen: Counter[str] = Counter()
    for query in queries:
        head, sep, tail = query.rstrip(".").rpartition(".svc.")
        if sep and head and tail:
            seen[tail.lower()] += 1
    return seen.most_common(1)[0][0] if seen else DEFAULT_CLUSTER_DOMAIN


def search_suffixes(namespace: str, domain: str) -> tuple[str, ...]:
    """The search domains of a pod in `namespace`, as query suffixes, in resolver order."""
    own = (f".{namespace}.svc.{domain}.",) if namespace else ()
    return (*own, f".svc.{domain}.", f".{domain}.")


def asked_name(query: str, queried: set[str], suffixes: tuple[str, ...]) -> str | None:
    """The name whose search ended the chain `query` belongs to, if the client asked it."""
    lowered = query.lower()
    for index, suffix in enumerate(suffixes):
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            base = query[: -len(suffix)]
            for candidate in reversed([*(base + s for s in suffixes[index + 1:]), base + "."]):
                if candidate in queried and candidate != query:
                    return candidate
    return None


def _only_nxdomain(rows: list[DnsRow]) -> bool:
    codes: Counter[str] = Counter()
    for row in rows:
        codes.update(row.rcodes)
        if row.dropped:
            return False
    return bool(codes) and set(codes) == {"NXDOMAIN"}


def fold_names(rows: Iterable[DnsRow], *, fold: bool = True, domain: str | None = None) -> list[DnsName]:
    """Group the (client, query, qtype) rows by client and name, folding the search-path misses
    (see the module docstring); `fold=False` keeps them apart but marks them."""
    rows = list(rows)
    domain = domain or cluster_domain(r.query for r in rows)
    by_client: dict[Endpoint, dict[str, list[DnsRow]]] = {}
    for row in rows:
        by_client.setdefault(row.client, {}).setdefault(row.query, []).append(row)
    names: list[DnsName] = []
    for client, queries in by_client.items():
        suffixes = search_suffixes(client.namespace, domain)
        queried = set(queries)
        target: dict[str, str] = {}
        for query, query_rows in queries.items():
            if query and _only_nxdomain(query_rows):
                asked = asked_name(query, queried, suffixes)
                if asked is not None:
                    target[query] = asked
        # A chain folds into its last name: follow targets that were folded themselves.
        for query in list(target):
            seen = {query}
            while target[query] in target and target[query] not in seen:
                seen.add(target[query])
                target[query] = target[target[query]]
        grouped: dict[str, DnsName] = {}
        for query, query_rows in queries.items():
            home = target.get(query) if fold else None
            if home is None:
                entry = grouped.get(query)
                if entry is None:
                    entry = grouped[query] = DnsName(client, query)
                if not fold and query in target:
                    entry.search_miss_of = target[query]
                for row in query_rows:
                    entry.add(row)
        if fold:
            for query, home in target.items():
                entry = grouped.get(home)
                if entry is None:
                    entry = grouped[home] = DnsName(client, home)
                entry.miss_queries = tuple(sorted((*entry.miss_queries, query)))
                for row in queries[query]:
                    # A miss is a lookup of the name (sent, and answered or not), but its
                    # NXDOMAIN is expected: counted as a miss, not among the name's rcodes.
                    entry.add(row)
                    entry.miss_lookups += row.requests
                    misses = row.rcodes.get("NXDOMAIN", 0)
                    remaining = entry.rcodes.get("NXDOMAIN", 0) - misses
                    if remaining > 0:
                        entry.rcodes["NXDOMAIN"] = remaining
                    else:
                        entry.rcodes.pop("NXDOMAIN", None)
        names.extend(grouped.values())
    names.sort(key=lambda n: (-n.requests, n.client, n.query))
    return names


# --------------------------------------------------------------------------- verdicts


def correlation_of(client: Endpoint, edges: Iterable[ServiceEdge], since_s: int | None = None,
                   series: EdgeSeries | None = None) -> Correlation:
    """The client's HTTP 5xx (as a server) and dropped calls (as a client) in the window;
    with `series` and `since_s`, its responses split before / since that second."""
    responses = errors = calls = dropped = 0
    before = [0, 0]
    since = [0, 0]
    for edge in edges:
        if edge.server == client and edge.responses:
            responses += edge.responses
            errors += edge.errors
            if series is not None and since_s is not None:
                for second, cell in series(edge):
                    if edge.reporter == "server":
                        n, e = cell.server_responses, cell.server_errors
                    else:
                        n, e = cell.client_responses, cell.client_errors
                    side = since if second >= since_s else before
                    side[0] += n
                    side[1] += e
        if edge.client == client and edge.port != DNS_PORT:
            calls += edge.flows
            dropped += edge.dropped
    return Correlation(responses, errors, calls, dropped, before[0], before[1], since[0], since[1])


def _failing(verdict: Verdict, names: list[DnsName]) -> list[DnsName]:
    failing = {
        DROPPED: lambda n: n.dropped,
        UNANSWERED: lambda n: n.unanswered,
        SERVFAIL: lambda n: n.rcode("SERVFAIL") + n.rcode("REFUSED"),
        NXDOMAIN: lambda n: n.rcode("NXDOMAIN"),
    }.get(verdict.kind)
    return [n for n in names if failing(n)] if failing is not None else names


def _failing_since_s(verdict: Verdict, names: list[DnsName]) -> int | None:
    """The first second of the window in which the verdict's failure shows. Known only for
    drops before the proxy, whose row holds nothing but failures; a name's other failures
    are not timed apart from its answers, so the others compare over the whole window."""
    if verdict.kind != DROPPED:
        return None
    starts = [n.first_ns for n in _failing(verdict, names) if n.first_ns and n.before_proxy]
    return min(starts) // 1_000_000_000 if starts else None


def _quiet_s(verdict: Verdict, names: list[DnsName], now_s: int | None) -> int | None:
    """Seconds since the verdict's last failing lookup, when that is over QUIET_AFTER_S (the
    names' last lookup stands for it: a name fails as a whole in these rules)."""
    ends = [n.last_ns for n in _failing(verdict, names) if n.last_ns]
    if now_s is None or not ends:
        return None
    quiet = now_s - max(ends) // 1_000_000_000
    return quiet if quiet > QUIET_AFTER_S else None


def _top_policy(names: list[DnsName]) -> tuple[str, int, bytes | None]:
    policies: Counter[str] = Counter()
    sample = None
    for name in names:
        policies.update(name.drop_policies)
        if name.dropped and name.sample is not None and (sample is None or name.before_proxy):
            sample = name.sample
    named = [(count, policy) for policy, count in policies.items() if policy]
    if named:
        count, policy = max(named)
        return policy, count, sample
    return "", 0, sample


def _direction(sample: bytes | None) -> str:
    if sample is None:
        return ""
    try:
        from kcockpit.model.record import FlowRecord

        record = FlowRecord.from_bytes(sample)
        direction = record.flow().traffic_direction if record is not None else 0
    except Exception:  # noqa: BLE001 (a bad sample only loses the direction word)
        return ""
    return {1: "ingress", 2: "egress"}.get(direction, "")


def _worst(names: list[DnsName], key: Callable[[DnsName], int]) -> DnsName | None:
    hits = [n for n in names if key(n)]
    return max(hits, key=lambda n: (key(n), n.requests)) if hits else None


def client_verdict(client: Endpoint, names: list[DnsName], *, window: str, explain_policy: PolicyLookup | None = None,
                   slow_p95_ms: float = SLOW_P95_MS) -> Verdict | None:
    """The verdict for one client's names (folded), or None when its DNS is healthy."""
    lookups = sum(n.requests for n in names)
    if not lookups:
        return None
    responses = sum(n.responses for n in names)
    found: list[Verdict] = []
    dropped = sum(n.dropped for n in names)
    if dropped:
        policy, _, sample = _top_policy(names)
        decided_by = "hubble" if policy else ""
        if not policy and sample is not None and explain_policy is not None:
            try:
                policy = explain_policy(sample) or ""
            except Exception:  # noqa: BLE001 (no engine answer: the line says so)
                policy = ""
            decided_by = "engine" if policy else ""
        direction = _direction(sample)
        where = f" at {direction}" if direction else ""
        if policy:
            by = f" by {policy}" + (" (policy engine)" if decided_by == "engine" else "")
        else:
            by = " by policy (deciding policy unknown)"
        worst = _worst(names, lambda n: n.dropped)
        text = f"{_pct(dropped / lookups)} of {lookups:,} lookups dropped{where}{by} — it was DNS"
        found.append(Verdict(client, DROPPED, text, dropped, lookups, worst.query if worst else "", policy,
                             decided_by, direction, sample))
    unanswered = sum(n.unanswered for n in names)
    if unanswered >= UNANSWERED_MIN and unanswered >= UNANSWERED_RATIO * lookups:
        worst = _worst(names, lambda n: n.unanswered)
        text = (f"{_pct(unanswered / lookups)} of {lookups:,} lookups unanswered (no response within 5 s)"
                " — CoreDNS down or overloaded, or replies lost (conntrack, MTU)")
        found.append(Verdict(client, UNANSWERED, text, unanswered, lookups, worst.query if worst else ""))
    failed = sum(n.rcode("SERVFAIL") + n.rcode("REFUSED") for n in names)
    if failed:
        worst = _worst(names, lambda n: n.rcode("SERVFAIL") + n.rcode("REFUSED"))
        codes = "/".join(c for c in ("SERVFAIL", "REFUSED") if any(n.rcode(c) for n in names))
        target = f" for {worst.query}" if worst and worst.query else ""
        text = f"{failed:,} of {responses:,} answers {codes}{target} — the upstream resolver is failing"
        found.append(Verdict(client, SERVFAIL, text, failed, lookups, worst.query if worst else ""))
    nxdomain = sum(n.rcode("NXDOMAIN") for n in names)
    if nxdomain >= NXDOMAIN_MIN and responses and nxdomain >= NXDOMAIN_RATIO * responses:
        worst = _worst(names, lambda n: n.rcode("NXDOMAIN"))
        target = f" for {worst.query}" if worst and worst.query else ""
        text = f"{nxdomain:,} of {responses:,} answers NXDOMAIN{target} after the search path — the name does not exist"
        found.append(Verdict(client, NXDOMAIN, text, nxdomain, lookups, worst.query if worst else ""))
    latency = LatencySketch.of(name.latency for name in names)
    if latency.count >= SLOW_MIN_ANSWERS:
        p95 = latency.quantile_ns(0.95) / 1e6
        if p95 > slow_p95_ms:
            worst = max((n for n in names if n.latency is not None), key=lambda n: n.quantile_ms(0.95), default=None)
            target = f", slowest {worst.query}" if worst and worst.query else ""
            text = f"slow lookups: p95 {format_ms(p95)} over {latency.count:,} answers (above {slow_p95_ms:g} ms){target}"
            found.append(Verdict(client, SLOW, text, latency.count, lookups, worst.query if worst else ""))
    if not found:
        return None
    first = found[0]
    others = tuple(v.kind for v in found[1:])
    return Verdict(first.client, first.kind, first.text, first.failures, first.lookups, first.name, first.policy,
                   first.decided_by, first.direction, first.sample, "", others)


def dns_health(rows: Iterable[DnsRow], edges: Iterable[ServiceEdge] = (), *, fold: bool = True, window: str = "1m",
               explain_policy: PolicyLookup | None = None, slow_p95_ms: float = SLOW_P95_MS,
               series: EdgeSeries | None = None, now_s: int | None = None) -> DnsHealth:
    """Everything the DNS tab shows for one window (see the module docstring). `series`
    (the aggregates' edge_series for the window) lets the correlation say "rose from ... to"."""
    rows = list(rows)
    edges = list(edges)
    domain = cluster_domain(r.query for r in rows)
    folded_names = fold_names(rows, fold=True, domain=domain)
    shown = folded_names if fold else fold_names(rows, fold=False, domain=domain)
    by_client: dict[Endpoint, list[DnsName]] = {}
    for name in folded_names:
        by_client.setdefault(name.client, []).append(name)
    verdicts = []
    for client, names in by_client.items():
        verdict = client_verdict(client, names, window=window, explain_policy=explain_policy, slow_p95_ms=slow_p95_ms)
        if verdict is not None:
            since_s = _failing_since_s(verdict, names) if series is not None else None
            correlation = correlation_of(client, edges, since_s, series).text(window)
            verdict = _with_correlation(verdict, correlation, _quiet_s(verdict, names, now_s))
            verdicts.append(verdict)
    verdicts.sort(key=lambda v: (v.severity, -v.failures, -v.failures / max(v.lookups, 1), v.client))
    lookups = sum(r.requests for r in rows)
    responses = sum(r.responses for r in rows)
    latency = LatencySketch.of(row.latency for row in rows)
    return DnsHealth(tuple(shown), tuple(verdicts), lookups, responses, latency if latency.count else None,
                     domain, fold, window)


def _with_correlation(verdict: Verdict, correlation: str, quiet_s: int | None) -> Verdict:
    return Verdict(verdict.client, verdict.kind, verdict.text, verdict.failures, verdict.lookups, verdict.name,
                   verdict.policy, verdict.decided_by, verdict.direction, verdict.sample, correlation, verdict.others,
                   quiet_s)


# --------------------------------------------------------------------------- drill-down


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def query_pattern(name: DnsName) -> str:
    """The RE2 for the filter bar's `query=`: the name exactly, or with its folded search-path
    misses, every query that starts with it ("" for a name the bar could not carry)."""
    if not name.query or not _PLAIN_NAME.fullmatch(name.query):
        return ""
    escaped = re.escape(name.query)
    return f"^{escaped}" if name.miss_queries else f"^{escaped}$"


def flows_filter(name: DnsName) -> str:
    """The Flows tab filter for one client's lookups of one name (its L7 DNS requests and
    answers, `query=` being FlowFilter.dns_query); for the dropped-before-proxy row, the
    client's dropped packets to port 53."""
    client = name.client
    if client.in_cluster:
        namespace, _, workload = client.name.partition("/")
        source = f"from:pod={namespace}/ from:workload={workload}"
        destination = f"to:pod={namespace}/ to:workload={workload}"
    else:
        return "port=53 dropped" if name.before_proxy else "port=53"
    if name.before_proxy:
        return f"{source} to:port=53 dropped"
    pattern = query_pattern(name)
    if pattern:
        return f"{source} query={pattern} or {destination} query={pattern}"
    return f"{source} to:port=53 or {destination} from:port=53"


# --------------------------------------------------------------------------- formatting


def _pct(ratio: float, digits: int = 0) -> str:
    if math.isnan(ratio):
        return "–"
    value = ratio * 100
    if digits and value < 100:
        return f"{value:.{digits}f}%"
    if 0 < value < 1:
        return "<1%"
    if 99 < value < 100:
        return ">99%"
    return f"{value:.0f}%"


def format_ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    if value < 9.95:
        return f"{value:.1f} ms"
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s"


def percent(ratio: float) -> str:
    return _pct(ratio)
