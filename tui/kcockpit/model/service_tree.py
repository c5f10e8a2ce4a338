"""The service-dependency tree of the Services tab, built from the aggregates' service edges.

- Roots are the entry points: in-cluster workloads reached from `world`/`ingress`, and
  in-cluster workloads that no in-cluster workload calls (kubelet probes from `host` do not
  count as callers). Reserved callers (`host`, `remote-node`, ...) and any cycle that no
  root reaches follow as roots of their own, so that every edge appears somewhere.
- The children of a node are the endpoints its workload calls, one per server port and
  protocol. A workload is shown in full once (its shallowest occurrence, breadth first) and
  every other time as a back-reference (`backref`), so cycles never recurse.
- Inverted ("who calls X?"): X is the only root and children are the callers.

Every row carries the edge that leads to it (`edge`: client → server on the port), or for a
root the sum of its entry edges from world/ingress; rates divide by the window's span.
Nothing here knows about the screen: the tab flattens `visible_rows` and draws them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from kcockpit.model.aggregates import Endpoint, LatencySketch, ServiceEdge

ENTRY_NAMES = frozenset({"world", "ingress"})
SORTS = ("rate", "errors", "drops", "latency")
DROP_THRESHOLD = 0.01  # an edge with more than 1% of its flows dropped is unhealthy
ERROR_THRESHOLD = 0.05  # an edge with more than 5% of its HTTP responses 5xx is unhealthy

NodeKey = tuple[tuple[str, str, int, str], ...]  # the path from the root: (name, detail, port, protocol)


def is_unhealthy(edge: ServiceEdge | None) -> bool:
    if edge is None:
        return False
    if edge.flows and edge.dropped / edge.flows > DROP_THRESHOLD:
        return True
    return bool(edge.responses) and edge.errors / edge.responses > ERROR_THRESHOLD


def edge_p95_ms(edge: ServiceEdge | None) -> float | None:
    if edge is None:
        return None
    latency = edge.latency_ms()
    return latency["p95"] if latency else None


def sort_key(sort: str, span_s: float):
    """A key for children: busiest / most failing / most dropping / slowest first."""

    def key(node: TreeNode):
        edge = node.edge
        name = (node.endpoint.name, node.endpoint.detail, node.port, node.protocol)
        if edge is None:
            return (1, 0.0, name)
        if sort == "errors":
            value = edge.errors / edge.responses if edge.responses else -1.0
            return (0, -value, -edge.errors, name)
        if sort == "drops":
            return (0, -edge.dropped, -edge.flows, name)
        if sort == "latency":
            p95 = edge_p95_ms(edge)
            return (0, -(p95 if p95 is not None else -1.0), name)
        return (0, -edge.flows, name)

    return key


@dataclass(slots=True, eq=False)
class TreeNode:
    endpoint: Endpoint
    port: int  # the server port of `edge` (0 for a root without entry edges)
    protocol: str
    edge: ServiceEdge | None  # the edge leading here (client → server); a root's entry edges summed
    key: NodeKey
    depth: int = 0
    backref: bool = False  # the workload is shown in full elsewhere
    entry: str = ""  # for roots: "world", "ingress", "uncalled", "caller", "cycle"
    children: list[TreeNode] = field(default_factory=list)

    @property
    def unhealthy(self) -> bool:
        return is_unhealthy(self.edge)

    def walk(self) -> Iterable[TreeNode]:
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


@dataclass(slots=True)
class ServiceTree:
    roots: list[TreeNode]
    inverted: bool
    span_s: float
    edges: int

    def nodes(self) -> Iterable[TreeNode]:
        for root in self.roots:
            yield from root.walk()

    def find(self, key: NodeKey) -> TreeNode | None:
        for node in self.nodes():
            if node.key == key:
                return node
        return None


def combine(edges: list[ServiceEdge], client: Endpoint, server: Endpoint, port: int, protocol: str) -> ServiceEdge | None:
    """Several edges as one (a root's entry edges): counts added, latency sketches merged."""
    if not edges:
        return None
    if len(edges) == 1:
        return edges[0]
    reasons: dict[str, int] = defaultdict(int)
    codes: dict[int, int] = defaultdict(int)
    latency: LatencySketch | None = None
    for edge in edges:
        for name, n in edge.drop_reasons.items():
            reasons[name] += n
        for code, n in edge.status_codes.items():
            codes[code] += n
        if edge.latency is not None:
            if latency is None:
                latency = LatencySketch()
            latency.merge(edge.latency)
    return ServiceEdge(
        client, server, port, protocol,
        flows=sum(e.flows for e in edges), forwarded=sum(e.forwarded for e in edges),
        dropped=sum(e.dropped for e in edges), drop_reasons=dict(reasons),
        requests=sum(e.requests for e in edges), responses=sum(e.responses for e in edges),
        errors=sum(e.errors for e in edges), latency=latency,
        reporter=next((e.reporter for e in edges if e.reporter), ""), status_codes=dict(codes),
        first_ns=min(e.first_ns for e in edges), last_ns=max(e.last_ns for e in edges),
    )


def _is_workload(endpoint: Endpoint) -> bool:
    return endpoint.in_cluster


def build_tree(edges: Iterable[ServiceEdge], span_s: float = 60.0, *, sort: str = "rate",
               invert: str | None = None) -> ServiceTree:
    """The tree of `edges` (one window of `FlowAggregates.services`). `invert` names a
    workload (`ns/name`) to build "who calls it?" instead."""
    edges = list(edges)
    if invert is not None:
        return _inverted(edges, span_s, sort, invert)
    calls: dict[Endpoint, list[ServiceEdge]] = defaultdict(list)
    called_by_cluster: set[Endpoint] = set()
    entries: dict[Endpoint, list[ServiceEdge]] = defaultdict(list)
    for edge in edges:
        calls[edge.client].append(edge)
        if edge.client.name in ENTRY_NAMES and _is_workload(edge.server):
            entries[edge.server].append(edge)
        elif _is_workload(edge.client) and edge.client != edge.server:
            called_by_cluster.add(edge.server)
    key_of = sort_key(sort if sort in SORTS else "rate", span_s)

    roots: list[TreeNode] = []
    for server, entry_edges in entries.items():
        kinds = sorted({e.client.name for e in entry_edges})
        port = entry_edges[0].port if len({(e.port, e.protocol) for e in entry_edges}) == 1 else 0
        protocol = entry_edges[0].protocol if port else ""
        edge = combine(entry_edges, Endpoint("+".join(kinds)), server, port, protocol)
        roots.append(TreeNode(server, port, protocol, edge, ((server.name, server.detail, 0, ""),), entry="/".join(kinds)))
    workloads = {e.client for e in edges if _is_workload(e.client)} | {e.server for e in edges if _is_workload(e.server)}
    for workload in workloads:
        if workload not in entries and workload not in called_by_cluster and workload in calls:
            roots.append(TreeNode(workload, 0, "", None, ((workload.name, workload.detail, 0, ""),), entry="uncalled"))
    roots.sort(key=lambda n: (n.entry == "uncalled", -(n.edge.flows if n.edge else sum(e.flows for e in calls[n.endpoint])),
                              n.endpoint))
    callers = sorted((c for c in calls if not _is_workload(c) and c.name not in ENTRY_NAMES),
                     key=lambda c: (-sum(e.flows for e in calls[c]), c))
    extra = [TreeNode(c, 0, "", None, ((c.name, c.detail, 0, ""),), entry="caller") for c in callers]

    def children_of(node: TreeNode) -> list[TreeNode]:
        made = [TreeNode(e.server, e.port, e.protocol, e, node.key + ((e.server.name, e.server.detail, e.port, e.protocol),),
                         node.depth + 1) for e in calls.get(node.endpoint, ())]
        made.sort(key=key_of)
        return made

    expanded: set[Endpoint] = set()

    def has_children(endpoint: Endpoint) -> bool:
        return bool(calls.get(endpoint))

    _expand(roots, children_of, expanded, has_children)
    # Whatever no root reached (a cycle of workloads called only by each other): its busiest
    # client becomes a root, until every client has been shown.
    while True:
        left = [c for c in calls if _is_workload(c) and c not in expanded]
        if not left:
            break
        start = min(left, key=lambda c: (-sum(e.flows for e in calls[c]), c))
        cycle_root = TreeNode(start, 0, "", None, ((start.name, start.detail, 0, ""),), entry="cycle")
        roots.append(cycle_root)
        _expand([cycle_root], children_of, expanded, has_children)
    _expand(extra, children_of, expanded, has_children)
    roots.extend(extra)
    return ServiceTree(roots, False, span_s, len(edges))


def _expand(roots: list[TreeNode], children_of, expanded: set[Endpoint], has_children) -> None:
    """Breadth first: each endpoint's children hang under its first (shallowest) occurrence;
    later occurrences that would have children are back-references."""
    queue = list(roots)
    index = 0
    while index < len(queue):
        node = queue[index]
        index += 1
        if node.endpoint in expanded:
            node.backref = has_children(node.endpoint)
            continue
        expanded.add(node.endpoint)
        node.children = children_of(node)
        queue.extend(node.children)


def _inverted(edges: list[ServiceEdge], span_s: float, sort: str, target: str) -> ServiceTree:
    callers: dict[Endpoint, list[ServiceEdge]] = defaultdict(list)
    root_endpoint = None
    for edge in edges:
        callers[edge.server].append(edge)
        if edge.server.name == target or edge.client.name == target:
            root_endpoint = edge.server if edge.server.name == target else edge.client
    if root_endpoint is None:
        root_endpoint = Endpoint(target)
    key_of = sort_key(sort if sort in SORTS else "rate", span_s)

    def children_of(node: TreeNode) -> list[TreeNode]:
        made = [TreeNode(e.client, e.port, e.protocol, e, node.key + ((e.client.name, e.client.detail, e.port, e.protocol),),
                         node.depth + 1) for e in callers.get(node.endpoint, ())]
        made.sort(key=key_of)
        return made

    root = TreeNode(root_endpoint, 0, "", None, (("<-", root_endpoint.name, 0, ""),), entry="callee")
    _expand([root], children_of, set(), lambda endpoint: bool(callers.get(endpoint)))
    return ServiceTree([root], True, span_s, len(edges))


@dataclass(frozen=True, slots=True)
class VisibleRow:
    node: TreeNode
    parent: TreeNode | None
    prefix: str  # the tree's guide lines, e.g. "│ ├─"
    collapsed: bool  # has children that are hidden
    matched: bool  # matched the name filter (or no filter)


def visible_rows(tree: ServiceTree, collapsed: set[NodeKey], name_filter: str = "") -> list[VisibleRow]:
    """The rows to draw, in order: collapsed nodes hide their subtree; a name filter keeps
    the nodes whose endpoint contains it, with their ancestors."""
    needle = name_filter.strip().lower()
    keep: set[int] | None = None
    if needle:
        keep = set()
        for root in tree.roots:
            _mark_iterative(root, needle, keep)
    rows: list[VisibleRow] = []

    def add(node: TreeNode, parent: TreeNode | None, guides: str, last: bool) -> None:
        # iterative to survive deep chains
        stack = [(node, parent, guides, last)]
        while stack:
            node, parent, guides, last = stack.pop()
            if keep is not None and id(node) not in keep:
                continue
            branch = "" if parent is None else guides + ("└─" if last else "├─")
            is_collapsed = bool(node.children) and node.key in collapsed and not needle
            matched = not needle or needle in str(node.endpoint).lower()
            rows.append(VisibleRow(node, parent, branch, is_collapsed, matched))
            if is_collapsed:
                continue
            children = node.children if keep is None else [c for c in node.children if id(c) in keep]
            child_guides = "" if parent is None else guides + ("  " if last else "│ ")
            for position in range(len(children) - 1, -1, -1):
                stack.append((children[position], node, child_guides, position == len(children) - 1))

    for root in tree.roots:
        add(root, None, "", True)
    return rows


def _mark_iterative(root: TreeNode, needle: str, keep: set[int]) -> None:
    order: list[tuple[TreeNode, TreeNode | None]] = []
    stack: list[tuple[TreeNode, TreeNode | None]] = [(root, None)]
    while stack:
        node, parent = stack.pop()
        order.append((node, parent))
        stack.extend((child, node) for child in node.children)
    parents = {id(node): parent for node, parent in order}
    for node, _ in order:
        if needle in str(node.endpoint).lower():
            current: TreeNode | None = node
            while current is not None and id(current) not in keep:
                keep.add(id(current))
                current = parents[id(current)]


def expandable_keys(tree: ServiceTree) -> set[NodeKey]:
    return {node.key for node in tree.nodes() if node.children}


def default_collapsed(tree: ServiceTree) -> set[NodeKey]:
    """Reserved callers (host probes and the like) start folded: they are not the story."""
    return {root.key for root in tree.roots if root.entry == "caller" and root.children}


# --- formatting helpers shared by the tab and the tests ------------------------------------


def rate_text(edge: ServiceEdge, span_s: float) -> str:
    """`12.3 req/s` for HTTP edges, `4.1 f/s` (flows) otherwise."""
    if edge.reporter and edge.requests:
        return f"{_compact(edge.requests / span_s)} r/s"
    return f"{_compact(edge.flows / span_s)} f/s"


def _compact(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def count_text(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return str(value)


def error_text(edge: ServiceEdge) -> str:
    if not edge.responses:
        return "-"
    ratio = edge.errors / edge.responses
    return "0%" if ratio == 0 else f"{ratio * 100:.0f}%" if ratio >= 0.1 else f"{ratio * 100:.1f}%"


def latency_text(ms: float | None) -> str:
    if ms is None or math.isnan(ms):
        return "-"
    if ms >= 1000:
        return f"{ms / 1000:.1f}s"
    if ms >= 10:
        return f"{ms:.0f}ms"
    return f"{ms:.1f}ms"


def age_text(last_ns: int, now_s: float) -> str:
    age = max(0.0, now_s - last_ns / 1e9)
    if age < 1.5:
        return "now"
    if age < 90:
        return f"{age:.0f}s"
    if age < 5400:
        return f"{age / 60:.0f}m"
    return f"{age / 3600:.0f}h"


def edge_filter(client: Endpoint, server: Endpoint, port: int, protocol: str) -> str:
    """Flows-tab filter text selecting exactly one edge's flows: the requests client → server
    on the server port, and the replies back (a reply counts on its request's edge)."""
    proto = f" protocol={protocol.lower()}" if protocol.lower() in ("tcp", "udp", "sctp") else ""
    there = " ".join(_terms(client, "from") + _terms(server, "to") + [f"to:port={port}"]) + proto
    back = " ".join(_terms(server, "from") + _terms(client, "to") + [f"from:port={port}"]) + proto
    return f"{there} or {back}"


def _terms(endpoint: Endpoint, side: str) -> list[str]:
    if endpoint.in_cluster:
        namespace, _, workload = endpoint.name.partition("/")
        return [f"{side}:ns={namespace}", f"{side}:workload={workload}"]
    if endpoint.name == "world" and endpoint.detail:
        return [f"{side}:fqdn={endpoint.detail}"]
    if endpoint.name in ("host", "world", "unmanaged", "health", "init", "remote-node", "kube-apiserver", "ingress"):
        return [f"{side}:identity={endpoint.name}"]
    return [f"{side}:ip={endpoint.name}"]
