"""The `hubble observe` flag model: flags -> FlowFilters, and filters -> flags again.

`FlagTracker` combines filter flags exactly as the hubble CLI does (see filterlang for
the rules); `hubble_observe_args` / `hubble_observe_command` turn a parsed filter back
into the command a user would type ("copy as command"); `filter_for_flow_peers` and
`filter_for_source_drops` write filter-bar text for a flow's endpoints.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kcockpit.model.record import DNS_RCODE_NAMES, RESERVED_IDENTITIES, EndpointInfo, FlowRecord
from kcockpit.wire.hubble_pb import flow_pb

if TYPE_CHECKING:
    from kcockpit.model.filterlang import ParsedFilter

VERDICTS = {v.name.lower(): v.name for v in flow_pb.Verdict.DESCRIPTOR.values if v.number}
DROP_REASONS = {v.name: v.number for v in flow_pb.DropReason.DESCRIPTOR.values if v.number}
IDENTITY_NAMES = {name: number for number, name in RESERVED_IDENTITIES.items()} | {"world-ipv4": 9, "world-ipv6": 10}
EVENT_TYPES = {"drop": 1, "debug": 2, "capture": 3, "trace": 4, "policy-verdict": 5, "recorder": 6,
               "trace-sock": 7, "l7": 129, "agent": 130}  # fmt: skip
# event_type.sub_type of trace events: the datapath's observation point numbers.
TRACE_POINTS = {"to-endpoint": 0, "to-proxy": 1, "to-host": 2, "to-stack": 3, "to-overlay": 4,
                "from-endpoint": 5, "from-proxy": 6, "from-host": 7, "from-stack": 8, "from-overlay": 9,
                "from-network": 10, "to-network": 11, "to-crypto": 12, "from-crypto": 13}  # fmt: skip
TCP_FLAGS = ("SYN", "ACK", "PSH", "FIN", "RST", "URG", "ECE", "CWR", "NS")
PROTOCOLS = ("tcp", "udp", "sctp", "icmp", "icmpv4", "icmpv6", "dns", "http", "kafka")
RCODES = {name: number for number, name in DNS_RCODE_NAMES.items()}

# `hubble observe` filter flags: name -> takes a value. Short forms map to long names.
FILTER_FLAGS: dict[str, bool] = {
    **{f"{side}{stem}": True for stem in ("fqdn", "pod", "ip", "label", "namespace", "service", "port",
                                          "workload", "identity") for side in ("", "from-", "to-")},
    **{flag: False for flag in ("ipv4", "ipv6", "not")},
    **{flag: True for flag in ("uuid", "snat-ip", "ip-version", "verdict", "drop-reason-desc", "http-status",
                               "http-method", "http-path", "http-url", "http-header", "type", "protocol",
                               "node-name", "node-label", "cluster", "tcp-flags", "traffic-direction", "interface",
                               "dns-query")},
}  # fmt: skip
# Filters the protocol has (FlowFilter fields) but `hubble observe` has no flag for: sent to
# the server, and left out of the copied command with a note.
NO_CLI_FLAG = frozenset({"dns-query"})
SHORT_FLAGS = {"n": "namespace", "l": "label", "t": "type"}
# Flags of `hubble observe` that are not filters: accepted in a pasted command and ignored.
# (--all-namespaces only lifts a namespace restriction kcockpit never adds.)
OTHER_FLAGS: dict[str, bool] = {
    **{flag: True for flag in ("last", "first", "since", "until", "output", "server", "time-format", "color",
                               "timeout", "request-timeout", "input-file", "config", "field-mask",
                               "tls-ca-cert-files", "tls-client-cert-file", "tls-client-key-file",
                               "tls-server-name", "basic-auth-username", "basic-auth-password")},
    **{flag: False for flag in ("follow", "all", "print-node-name", "print-raw-filters", "numeric", "tls",
                                "tls-allow-insecure", "debug", "ip-translation", "experimental-use-default-colors",
                                "all-namespaces", "from-all-namespaces", "to-all-namespaces")},
}  # fmt: skip
SHORT_OTHER_FLAGS = {"f": "follow", "o": "output", "P": "print-raw-filters", "D": "debug", "A": "all-namespaces"}

# Flags `hubble observe` refuses to combine (same group, different flag).
_CONFLICTS = (
    ("from-fqdn", "from-ip", "ip", "fqdn", "from-namespace", "namespace", "from-all-namespaces", "all-namespaces"),
    ("from-fqdn", "from-ip", "ip", "fqdn", "from-pod", "pod"),
    ("to-fqdn", "to-ip", "ip", "fqdn", "to-namespace", "namespace", "to-all-namespaces", "all-namespaces"),
    ("to-fqdn", "to-ip", "ip", "fqdn", "to-pod", "pod"),
    ("to-pod", "namespace", "all-namespaces"),
    ("from-pod", "namespace", "all-namespaces"),
    ("to-service", "namespace", "all-namespaces"),
    ("from-service", "namespace", "all-namespaces"),
    ("label", "from-label"),
    ("label", "to-label"),
    ("service", "from-service"),
    ("service", "to-service"),
    ("port", "to-port"),
    ("port", "from-port"),
    ("identity", "to-identity"),
    ("identity", "from-identity"),
    ("workload", "to-workload"),
    ("workload", "from-workload"),
    ("node-name", "cluster"),
)


@dataclass(frozen=True)
class FilterEntry:
    """One entry of a filter, as the `hubble observe` flag it stands for."""

    flag: str  # flag name without dashes, e.g. "to-port"; "rcode" for the client-side filter
    value: str | None  # normalized flag value; None for flags without one (--ipv4, --ipv6)
    negated: bool
    token: str  # the text the user typed for it
    position: int
    group: int = 0  # index of the `or` alternative it belongs to

    def args(self) -> list[str]:
        head = ["--not"] if self.negated else []
        return head + [f"--{self.flag}"] + ([] if self.value is None else [self.value])

    def describe(self) -> str:
        text = self.flag if self.value is None else f"{self.flag} {self.value}"
        return f"not {text}" if self.negated else text


class FlagConflictError(ValueError):
    """Flags the hubble CLI refuses to combine; `entry` is the one that conflicted."""

    def __init__(self, message: str, entry: FilterEntry) -> None:
        self.entry = entry
        super().__init__(message)


def _event_type_filter(value: str) -> Any:
    name, sep, sub = value.partition(":")
    etype = EVENT_TYPES[name] if name in EVENT_TYPES else int(name)
    if not sep:
        return flow_pb.EventTypeFilter(type=etype)
    number = TRACE_POINTS[sub] if etype == EVENT_TYPES["trace"] and sub in TRACE_POINTS else int(sub)
    return flow_pb.EventTypeFilter(type=etype, match_sub_type=True, sub_type=number)


def _workload(value: str) -> Any:
    kind, sep, name = value.partition("/")
    return flow_pb.Workload(kind=kind, name=name) if sep else flow_pb.Workload(name=value)


def _identity(value: str) -> int:
    return IDENTITY_NAMES[value] if value in IDENTITY_NAMES else int(value)


def _header(value: str) -> Any:
    key, _, val = value.partition(":")
    return flow_pb.HTTPHeader(key=key, value=val)


_IDENTITY = lambda v: v  # noqa: E731
# Sided stems: FlowFilter field suffix and value conversion.
SIDED_FLAGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "fqdn": ("fqdn", _IDENTITY), "pod": ("pod", _IDENTITY), "ip": ("ip", _IDENTITY),
    "label": ("label", _IDENTITY), "service": ("service", _IDENTITY), "port": ("port", _IDENTITY),
    "workload": ("workload", _workload), "identity": ("identity", _identity),
}  # fmt: skip
# Sideless flags: FlowFilter field and value conversion; applied to both filters.
SIDELESS_FLAGS: dict[str, tuple[str, Callable[[str | None], Any]]] = {
    "uuid": ("uuid", _IDENTITY),
    "snat-ip": ("source_ip_xlated", _IDENTITY),
    "ipv4": ("ip_version", lambda _: flow_pb.IPv4),
    "ipv6": ("ip_version", lambda _: flow_pb.IPv6),
    "ip-version": ("ip_version", lambda v: flow_pb.IPv4 if v == "4" else flow_pb.IPv6),
    "verdict": ("verdict", lambda v: flow_pb.Verdict.Value(v)),
    "drop-reason-desc": ("drop_reason_desc", lambda v: flow_pb.DropReason.Value(v)),
    "http-status": ("http_status_code", _IDENTITY),
    "http-method": ("http_method", _IDENTITY),
    "http-path": ("http_path", _IDENTITY),
    "http-url": ("http_url", _IDENTITY),
    "http-header": ("http_header", _header),
    "type": ("event_type", _event_type_filter),
    "protocol": ("protocol", _IDENTITY),
    "node-name": ("node_name", _IDENTITY),
    "node-label": ("node_labels", _IDENTITY),
    "cluster": ("node_name", lambda v: f"{v}/"),
    "tcp-flags": ("tcp_flags", lambda v: flow_pb.TCPFlags(**{f: True for f in v.split(",")})),
    "traffic-direction": ("traffic_direction", lambda v: flow_pb.INGRESS if v == "ingress" else flow_pb.EGRESS),
    "interface": ("interface", lambda v: flow_pb.NetworkInterface(name=v)),
    "dns-query": ("dns_query", _IDENTITY),  # RE2 on the DNS query name of L7 DNS flows
}


def _append(ff: Any, name: str, value: Any) -> None:
    target = getattr(ff, name)
    if hasattr(value, "DESCRIPTOR"):
        target.add().CopyFrom(value)
    else:
        target.append(value)


def _namespace_of(name: str) -> str:
    parts = name.split("/")
    return parts[0] if len(parts) > 1 else ""


class FlagTracker:
    """What `hubble observe` accumulates for one list: `left OR right` plus namespaces."""

    def __init__(self) -> None:
        self.left: Any = None
        self.right: Any = None
        self.ns: list[str] = []
        self.src_ns: list[str] = []
        self.dst_ns: list[str] = []
        self.changed: list[FilterEntry] = []

    def _side(self, which: str) -> Any:
        if getattr(self, which) is None:
            setattr(self, which, flow_pb.FlowFilter())
        return getattr(self, which)

    def add(self, entry: FilterEntry) -> None:
        self._check_conflicts(entry)
        self.changed.append(entry)
        flag, value = entry.flag, entry.value
        stem = flag.removeprefix("from-").removeprefix("to-")
        if stem == "namespace":
            {"from-namespace": self.src_ns, "to-namespace": self.dst_ns}.get(flag, self.ns).append(value or "")
        elif stem in SIDED_FLAGS:
            suffix, convert = SIDED_FLAGS[stem]
            converted = convert(value)  # type: ignore[arg-type]
            if flag.startswith("from-"):
                for side in ("left", "right"):
                    _append(self._side(side), f"source_{suffix}", converted)
            elif flag.startswith("to-"):
                for side in ("left", "right"):
                    _append(self._side(side), f"destination_{suffix}", converted)
            else:
                _append(self._side("left"), f"source_{suffix}", converted)
                _append(self._side("right"), f"destination_{suffix}", converted)
        else:
            name, convert = SIDELESS_FLAGS[flag]
            converted = convert(value)
            for side in ("left", "right"):
                _append(self._side(side), name, converted)
        self._check_namespaces(entry)

    def _check_conflicts(self, entry: FilterEntry) -> None:
        for group in _CONFLICTS:
            if entry.flag not in group:
                continue
            for other in self.changed:
                if other.flag != entry.flag and other.flag in group:
                    hint = (
                        "put the namespace into the name instead, e.g. to:pod=otel-demo/frontend"
                        if "namespace" in other.flag + entry.flag
                        else "give both with from:/to: or both without"
                    )
                    raise FlagConflictError(
                        f"'{other.token}' and '{entry.token}' cannot be combined (hubble observe refuses "
                        f"--{other.flag} with --{entry.flag}); {hint}",
                        entry,
                    )

    def _check_namespaces(self, entry: FilterEntry) -> None:
        for ff in (self.left, self.right):
            if ff is None:
                continue
            checks = [
                (self.ns, ff.source_pod), (self.ns, ff.source_service), (self.ns, ff.destination_pod),
                (self.ns, ff.destination_service), (self.src_ns, ff.source_pod), (self.src_ns, ff.source_service),
                (self.dst_ns, ff.destination_pod), (self.dst_ns, ff.destination_service),
            ]  # fmt: skip
            for namespaces, names in checks:
                for ns in namespaces:
                    for name in names:
                        if (nn := _namespace_of(name)) and nn != ns:
                            raise FlagConflictError(f"namespace conflict: '{ns}' does not contain '{name}'", entry)
            for pods, services in ((ff.source_pod, ff.source_service), (ff.destination_pod, ff.destination_service)):
                for pod in pods:
                    pod_ns = _namespace_of(pod)
                    for svc in services if pod_ns else ():
                        if _namespace_of(svc) != pod_ns:
                            raise FlagConflictError(
                                f"namespace of service '{svc}' conflicts with pod namespace '{pod_ns}'",
                                entry,
                            )

    def flow_filters(self) -> tuple[Any, ...]:
        if self.left is None and self.right is None and not (self.ns or self.src_ns or self.dst_ns):
            return ()
        # Copies: namespaces are folded in on every call without touching the tracked state.
        left, right = flow_pb.FlowFilter(), flow_pb.FlowFilter()
        left.CopyFrom(self._side("left"))
        right.CopyFrom(self._side("right"))
        if self.dst_ns:
            _apply_namespaces(left, "destination", self.dst_ns)
            _apply_namespaces(right, "destination", self.dst_ns)
        if self.src_ns:
            _apply_namespaces(left, "source", self.src_ns)
            _apply_namespaces(right, "source", self.src_ns)
        if self.ns:
            _apply_namespaces(left, "source", self.ns)
            _apply_namespaces(right, "destination", self.ns)
        return (left,) if left == right else (left, right)


def _apply_namespaces(ff: Any, side: str, namespaces: list[str]) -> None:
    pods, services = getattr(ff, f"{side}_pod"), getattr(ff, f"{side}_service")
    if not pods and not services:
        pods.append("")
    for names in (pods, services):
        qualified = []
        for name in names:
            if "/" in name:
                qualified.append(name)
            else:
                qualified.extend(f"{ns}/{name}" for ns in namespaces)
        del names[:]
        names.extend(qualified)


# --------------------------------------------------------------------------- filter -> command


def hubble_observe_commands_args(parsed: ParsedFilter) -> list[list[str]]:
    """Filter flags per `or` alternative; negated entries belong to every alternative."""
    flags = [e for e in parsed.entries if e.flag != "rcode" and e.flag not in NO_CLI_FLAG]
    groups = max((e.group for e in flags), default=0) + 1
    return [
        [arg for e in flags if e.group == g for arg in e.args()]
        + [arg for e in flags if e.group != g and e.negated for arg in e.args()]
        for g in range(groups)
    ]


def hubble_observe_args(parsed: ParsedFilter) -> list[str]:
    """The `hubble observe` filter flags for `parsed` (one `or` alternative only).

    Raises ValueError for filters with `or`: the CLI has no way to OR flag groups, use
    hubble_observe_command, which writes one command per alternative.
    """
    commands = hubble_observe_commands_args(parsed)
    if len(commands) > 1:
        raise ValueError("a filter with 'or' needs one hubble observe command per alternative")
    return commands[0]


def hubble_observe_command(parsed: ParsedFilter, follow: bool = False) -> str:
    """Shell-quoted `hubble observe ...` line(s) for `parsed` ("copy as command")."""
    head = ["hubble", "observe"] + (["--follow"] if follow else [])
    lines = [shlex.join(head + args) for args in hubble_observe_commands_args(parsed)]
    client_only = [e for e in parsed.entries if e.flag == "rcode"]
    if client_only:
        kept = ", ".join(("not " if e.negated else "") + f"rcode={e.value}" for e in client_only)
        lines[-1] += f"  # {kept}: no hubble flag, kcockpit filters it locally"
    server_only = list(dict.fromkeys(("not " if e.negated else "") + f"{e.flag}={e.value}"
                                     for e in parsed.entries if e.flag in NO_CLI_FLAG))
    if server_only:
        lines[-1] += f"  # {', '.join(server_only)}: no hubble flag (FlowFilter field only)"
    return "\n".join(lines)


# --------------------------------------------------------------------------- flow -> filter text


def _endpoint_terms(endpoint: EndpointInfo, side: str) -> list[str]:
    """Filter-bar entries selecting one endpoint of a flow, most specific stable name first."""
    if endpoint.workload and endpoint.namespace:
        return [f"{side}:ns={endpoint.namespace}", f"{side}:workload={endpoint.workload}"]
    if endpoint.pod:
        return [f"{side}:pod={endpoint.namespace}/{endpoint.pod}"]
    if endpoint.names:
        return [f"{side}:fqdn={endpoint.names[0]}"]
    if endpoint.ip:
        return [f"{side}:ip={endpoint.ip}"]
    if endpoint.reserved:
        return [f"{side}:identity={endpoint.reserved}"]
    return [f"{side}:identity={endpoint.identity}"]


def filter_for_flow_peers(record: FlowRecord) -> str:
    """Filter-bar text for every flow between the record's two endpoints, both directions."""
    a, b = record.source, record.destination
    there = " ".join(_endpoint_terms(a, "from") + _endpoint_terms(b, "to"))
    back = " ".join(_endpoint_terms(b, "from") + _endpoint_terms(a, "to"))
    return there if there == back else f"{there} or {back}"


def filter_for_source_drops(record: FlowRecord) -> str:
    """Filter-bar text for the dropped flows sent by the record's source."""
    return " ".join(_endpoint_terms(record.source, "from") + ["verdict=dropped"])
