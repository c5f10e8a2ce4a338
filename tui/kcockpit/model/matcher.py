"""FlowMatcher: flow.FlowFilter semantics, evaluated locally.

The simulator's GetFlows and the UI's local re-filtering both use this class, so a
filter means the same thing everywhere: what a Cilium v1.19 Hubble server would send.

Semantics (as the Hubble server applies them): a flow passes when the whitelist is
empty or any whitelist filter matches, and no blacklist filter matches. Inside one
FlowFilter every set field must match (AND); inside one repeated field any value may
match (OR). A FlowFilter with no field set matches every flow.

Every filter is compiled once into a tuple of small closures. Each field yields a check
on the protobuf Flow and, when the compact FlowRecord carries enough to decide exactly,
a check on the record too; otherwise `matches_record` parses the full flow once.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import unquote

from google.protobuf import unknown_fields

from kcockpit.model.re2 import RE2Error, compile_re2
from kcockpit.model.blocks import FlowBytesLost
from kcockpit.model.record import FlowRecord
from kcockpit.wire.hubble_pb import flow_pb

Check = Callable[[Any], bool]

# Cilium's default cluster name: node names without a "cluster/" prefix belong to it.
DEFAULT_CLUSTER = "default"
MESSAGE_TYPE_ACCESS_LOG = 129  # event_type.type of L7 flows


class FilterError(ValueError):
    """A FlowFilter field value the matcher cannot compile (the server would reject it too)."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}: invalid value {value!r} ({expected})")


class UnsupportedFilterField(FilterError):
    """A FlowFilter field that is set but that kcockpit's matcher cannot evaluate."""

    def __init__(self, name: str | None, number: int, why: str = "") -> None:
        label = f"FlowFilter.{name} (field {number})" if name else f"FlowFilter field {number}"
        message = f"{label} is not supported by kcockpit's matcher"
        if why:
            message += f": {why}"
        ValueError.__init__(self, message)
        self.field = name or f"field {number}"
        self.value = None
        self.expected = message
        self.number = number


# --------------------------------------------------------------------------- labels


class _LabelSet:
    """Labels as Cilium parses them: `source:key=value` -> {(source, key): value}."""

    __slots__ = ("by_key", "by_name")

    def __init__(self, labels: Iterable[str]) -> None:
        self.by_key: dict[tuple[str, str], str] = {}
        self.by_name: dict[str, str] = {}  # key ignoring the source: what `any:` selects
        for label in labels:
            source, key, value = _parse_label(label)
            self.by_key.setdefault((source, key), value)
            self.by_name.setdefault(key, value)

    def get(self, source: str, key: str) -> str | None:
        if source == "any":
            return self.by_name.get(key)
        return self.by_key.get((source, key))


def _parse_label(label: str) -> tuple[str, str, str]:
    key, _, value = label.partition("=")
    # A colon names the source only when it comes before the value.
    source, colon, name = key.partition(":")
    if not colon:
        return "unspec", key, value
    return source, name, value


_SELECTOR_KEY = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?")
_SELECTOR_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_SELECTOR_TOKEN = re.compile(r"\s*(==|!=|=|\(|\)|,|!|>|<|[^\s=!,()<>]+)")


def _split_source(key: str) -> tuple[str, str]:
    """`k8s:app` -> ("k8s", "app"); a key without a source selects any source."""
    source, colon, name = key.partition(":")
    return (source, name) if colon else ("any", key)


def compile_label_selector(selector: str, field: str = "label") -> Check:
    """Compile a Kubernetes label selector (with Cilium `source:` key prefixes).

    Returns a check on a _LabelSet. Supported: `k`, `!k`, `k=v`, `k==v`, `k!=v`,
    `k in (a,b)`, `k notin (a,b)`, `k>n`, `k<n`, requirements joined by commas (AND).
    """

    def fail(expected: str) -> FilterError:
        return FilterError(field, selector, expected)

    tokens = [m.group(1) for m in _SELECTOR_TOKEN.finditer(selector)]
    requirements: list[Callable[[_LabelSet], bool]] = []
    pos = 0

    def take() -> str | None:
        nonlocal pos
        if pos < len(tokens):
            pos += 1
            return tokens[pos - 1]
        return None

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def check_key(key: str | None) -> tuple[str, str]:
        if key is None or key in "=!,()<>" or key in ("==", "!="):
            raise fail("expected a label key such as app or k8s:app")
        source, name = _split_source(key)
        if not _SELECTOR_KEY.fullmatch(name) or (source != "any" and not _SELECTOR_KEY.fullmatch(source)):
            raise fail(f"invalid label key {key!r}")
        return source, name

    def check_value(value: str | None) -> str:
        if value is None or value in ("=", "==", "!=", ",", "(", ")", "!", "<", ">"):
            raise fail("expected a label value")
        if len(value) > 63 or not _SELECTOR_VALUE.fullmatch(value):
            raise fail(f"invalid label value {value!r}")
        return value

    if not tokens:
        raise fail("empty label selector")
    while True:
        token = take()
        if token == "!":
            source, name = check_key(take())
            requirements.append(lambda ls, s=source, n=name: ls.get(s, n) is None)
        else:
            source, name = check_key(token)
            op = peek()
            if op in (None, ","):
                requirements.append(lambda ls, s=source, n=name: ls.get(s, n) is not None)
            else:
                take()
                if op in ("=", "==", "!="):
                    # As in Kubernetes, `key=` (nothing before the next comma) selects an empty value.
                    v = "" if peek() in (None, ",") else check_value(take())
                if op in ("=", "=="):
                    requirements.append(lambda ls, s=source, n=name, v=v: ls.get(s, n) == v)
                elif op == "!=":
                    requirements.append(lambda ls, s=source, n=name, v=v: ls.get(s, n) != v)
                elif op in ("in", "notin"):
                    if take() != "(":
                        raise fail(f"expected '(' after {op}")
                    values: set[str] = set()
                    while True:
                        values.add(check_value(take()))
                        sep = take()
                        if sep == ")":
                            break
                        if sep != ",":
                            raise fail("expected ',' or ')' in value list")
                    if op == "in":
                        requirements.append(lambda ls, s=source, n=name, vs=frozenset(values): ls.get(s, n) in vs)
                    else:
                        requirements.append(
                            lambda ls, s=source, n=name, vs=frozenset(values): ls.get(s, n) not in vs
                        )
                elif op in (">", "<"):
                    raw = take()
                    if raw is None or not re.fullmatch(r"-?[0-9]+", raw):
                        raise fail(f"expected an integer after {op}")
                    requirements.append(_numeric_requirement(source, name, op, int(raw)))
                else:
                    raise fail(f"unexpected {op!r}: expected =, ==, !=, in, notin, > or <")
        sep = take()
        if sep is None:
            break
        if sep != ",":
            raise fail(f"unexpected {sep!r}: requirements are separated by commas")
    reqs = tuple(requirements)
    return lambda ls: all(r(ls) for r in reqs)


def _numeric_requirement(source: str, name: str, op: str, bound: int) -> Callable[[_LabelSet], bool]:
    def check(ls: _LabelSet) -> bool:
        value = ls.get(source, name)
        if value is None or not re.fullmatch(r"-?[0-9]+", value):
            return False
        return int(value) > bound if op == ">" else int(value) < bound

    return check


def _label_check(selectors: Sequence[str], field: str, get_labels: Callable[[Any], Iterable[str]]) -> Check:
    compiled = tuple(compile_label_selector(s, field) for s in selectors)

    def check(obj: Any) -> bool:
        labels = _LabelSet(get_labels(obj))
        return any(c(labels) for c in compiled)

    return check


# --------------------------------------------------------------------------- patterns

_FQDN_ANY = r"(?:[-0-9_a-z]+(?:\.[-0-9_a-z]+)*)"


def _fqdn_regex(pattern: str, field: str) -> str:
    """Hubble's FQDN glob: lowercase, one trailing dot dropped, `*` spans [-.0-9a-z]*."""
    canon = pattern.strip().removesuffix(".").lower()
    if not canon:
        raise FilterError(field, pattern, "empty pattern; expected a name such as *.example.com")
    if canon.endswith("."):
        raise FilterError(field, pattern, "more than one trailing dot")
    out = []
    for ch in canon:
        if ch == ".":
            out.append(r"\.")
        elif ch == "*":
            out.append(r"[-.0-9a-z]*")
        elif ch in "-_" or ch.isdigit() or "a" <= ch <= "z":
            out.append(ch)
        else:
            raise FilterError(field, pattern, f"{ch!r} is not allowed; use letters, digits, '-', '_', '.' and '*'")
    return "".join(out)


def _node_name_regex(pattern: str) -> str:
    """`[cluster/]node` glob; an empty part matches any name, no slash means any cluster."""
    if not pattern:
        raise FilterError("node_name", pattern, "empty pattern; expected a node name such as worker-1 or prod/*")
    parts = pattern.split("/")
    if len(parts) > 2:
        raise FilterError("node_name", pattern, "too many slashes; expected [cluster/]node")
    cluster, node = ("", parts[0]) if len(parts) == 1 else parts
    cluster_re = _fqdn_regex(cluster, "node_name") if cluster else _FQDN_ANY
    node_re = _fqdn_regex(node, "node_name") if node else _FQDN_ANY
    return f"{cluster_re}/{node_re}"


def _compile_re2(pattern: str, field: str) -> re.Pattern[str]:
    """Compile a Go RE2 regex with Python's `re`, rejecting what RE2 does not support."""
    try:
        return compile_re2(pattern)
    except RE2Error as err:
        raise FilterError(field, pattern, str(err)) from None


def _request_uri_path(url: str) -> str | None:
    """The unescaped path of a request URI as Go's url.ParseRequestURI gives it, None if invalid."""
    if url.startswith("/"):
        rest = url
    else:
        m = re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", url)
        if not m:
            return None
        rest = url[m.end() :]
        if not rest.startswith("//"):
            return ""  # opaque URI: no path
        slash = rest.find("/", 2)
        rest = rest[slash:] if slash >= 0 else ""
    path = rest.split("?", 1)[0]
    if re.search(r"%(?![0-9A-Fa-f]{2})", path):
        return None
    return unquote(path)


# --------------------------------------------------------------------------- helpers


def _ip_check(values: Sequence[str], field: str) -> Callable[[str], bool]:
    addresses: set[str] = set()
    networks = []
    for value in values:
        try:
            if "/" in value:
                networks.append(ipaddress.ip_network(value, strict=False))
            else:
                ipaddress.ip_address(value)
                addresses.add(value)  # Hubble compares addresses as strings
        except ValueError:
            raise FilterError(field, value, "expected an IP address or a CIDR such as 10.0.0.0/8") from None

    def check(ip: str) -> bool:
        if not ip:
            return False
        if ip in addresses:
            return True
        if networks:
            try:
                parsed = ipaddress.ip_address(ip)
            except ValueError:
                return False
            # Like Go's IPNet.Contains: an IPv4-mapped IPv6 address is its IPv4 address.
            parsed = getattr(parsed, "ipv4_mapped", None) or parsed
            return any(parsed in net for net in networks)
        return False

    return check


def _namespaced_check(values: Sequence[str], field: str) -> Callable[[str, str], bool]:
    """Pod/service names: `ns/prefix`, `ns/` (whole namespace), `prefix` (namespace default)."""
    wanted: list[tuple[str, str]] = []
    for value in values:
        parts = value.split("/")
        if len(parts) > 1:
            ns, prefix = parts[0], parts[1]
        else:
            ns, prefix = ("default", parts[0]) if parts[0] else ("", "")
        if not ns and not prefix:  # "" and "/": Hubble refuses both
            raise FilterError(field, value, "expected [namespace/][name-prefix]")
        wanted.append((ns, prefix))
    pairs = tuple(wanted)

    def check(ns: str, name: str) -> bool:
        if not ns and not name:
            return False
        return any(ns == w_ns and name.startswith(w_prefix) for w_ns, w_prefix in pairs)

    return check


def _port_set(values: Sequence[str], field: str) -> frozenset[int]:
    ports = set()
    for value in values:
        if not re.fullmatch(r"[0-9]{1,5}", value) or int(value) > 65535:
            raise FilterError(field, value, "expected a port number 0-65535")
        ports.add(int(value))
    return frozenset(ports)


def _flow_port(flow: Any, side: str) -> int | None:
    l4 = flow.l4
    which = l4.WhichOneof("protocol")
    if which in ("TCP", "UDP", "SCTP"):
        return getattr(getattr(l4, which), side)
    return None


def _undecoded(check: Check) -> Check:
    """Mark a record check that reads only what a record holds undecoded (verdict, node)."""
    check.undecoded = True  # type: ignore[attr-defined]
    return check


def _enum_check(values: Iterable[int], get: Callable[[Any], int]) -> Check:
    wanted = frozenset(values)
    return lambda obj: get(obj) in wanted


_L4_PROTOCOLS = {"icmp": ("ICMPv4", "ICMPv6"), "icmpv4": ("ICMPv4",), "icmpv6": ("ICMPv6",),
                 "tcp": ("TCP",), "udp": ("UDP",), "sctp": ("SCTP",)}  # fmt: skip
_L7_PROTOCOLS = {"dns": "dns", "http": "http", "kafka": "kafka"}
_TCP_FLAG_FIELDS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS")
_STATUS_FULL = re.compile(r"[1-5][0-9]{2}")
_STATUS_PREFIX = re.compile(r"[1-5][0-9]?\+")

# --------------------------------------------------------------------------- field compilers
# Each returns (check on Flow, check on FlowRecord or None when the record cannot decide).

FieldChecks = tuple[Check, Check | None]


def _ips(ff: Any, side: str) -> FieldChecks:
    check = _ip_check(getattr(ff, f"{side}_ip"), f"{side}_ip")
    attr = "source" if side == "source" else "destination"
    return (lambda f: check(getattr(f.IP, attr))), (lambda r: check(getattr(r, attr).ip))


def _ip_xlated(ff: Any) -> FieldChecks:
    check = _ip_check(ff.source_ip_xlated, "source_ip_xlated")
    return (lambda f: check(f.IP.source_xlated)), None


def _pods(ff: Any, side: str) -> FieldChecks:
    check = _namespaced_check(getattr(ff, f"{side}_pod"), f"{side}_pod")
    return (
        lambda f: check(getattr(f, side).namespace, getattr(f, side).pod_name),
        lambda r: check(getattr(r, side).namespace, getattr(r, side).pod),
    )


def _services(ff: Any, side: str) -> FieldChecks:
    values = getattr(ff, f"{side}_service")
    check = _namespaced_check(values, f"{side}_service")

    def on_record(r: Any) -> bool:
        ns, _, name = getattr(r, side).service.partition("/")
        return check(ns, name)

    # The record keeps no text for a Service without a name, which `ns/` (an empty prefix)
    # matches by its namespace alone: only the flow can answer then.
    exact = all(value.partition("/")[2] if "/" in value else value for value in values)
    return (
        lambda f: check(getattr(f, f"{side}_service").namespace, getattr(f, f"{side}_service").name)
    ), (on_record if exact else None)


def _fqdns(ff: Any, side: str) -> FieldChecks:
    field = f"{side}_fqdn"
    regex = re.compile(r"\A(?:" + "|".join(_fqdn_regex(p, field) for p in getattr(ff, field)) + r")\Z")
    match = regex.match

    def check(names: Iterable[str]) -> bool:
        return any(match(n) for n in names)

    return (lambda f: check(getattr(f, f"{side}_names"))), (lambda r: check(getattr(r, side).names))


def _labels(ff: Any, side: str) -> FieldChecks:
    field = f"{side}_label"
    return (
        _label_check(getattr(ff, field), field, lambda f: getattr(f, side).labels),
        _label_check(getattr(ff, field), field, lambda r: getattr(r, side).labels),
    )


def _node_labels(ff: Any) -> FieldChecks:
    return _label_check(ff.node_labels, "node_labels", lambda f: f.node_labels), None


def _workloads(ff: Any, side: str) -> FieldChecks:
    wanted = tuple((w.name, w.kind) for w in getattr(ff, f"{side}_workload"))

    def check(f: Any) -> bool:
        for w in getattr(f, side).workloads:
            for name, kind in wanted:
                if (not name or name == w.name) and (not kind or kind == w.kind):
                    return True
        return False

    return check, None


def _cluster_names(ff: Any, side: str) -> FieldChecks:
    field = f"{side}_cluster_name"
    names = frozenset(getattr(ff, field))
    if "" in names:
        raise FilterError(field, "", "expected a non-empty cluster name")
    return (lambda f: getattr(f, side).cluster_name in names), None


def _identities(ff: Any, side: str) -> FieldChecks:
    wanted = frozenset(getattr(ff, f"{side}_identity"))
    on_flow = lambda f: f.HasField(side) and getattr(f, side).identity in wanted  # noqa: E731
    # An absent endpoint and identity 0 look alike on a record.
    on_record = None if 0 in wanted else (lambda r: getattr(r, side).identity in wanted)
    return on_flow, on_record


def _ports(ff: Any, side: str) -> FieldChecks:
    ports = _port_set(getattr(ff, f"{side}_port"), f"{side}_port")
    pb_attr = f"{side}_port"

    def on_flow(f: Any) -> bool:
        port = _flow_port(f, pb_attr)
        return port is not None and port in ports

    def on_record(r: Any) -> bool:
        return r.protocol in ("TCP", "UDP", "SCTP") and getattr(r, side).port in ports

    return on_flow, on_record


def _verdicts(ff: Any) -> FieldChecks:
    return _enum_check(ff.verdict, lambda f: f.verdict), _undecoded(_enum_check(ff.verdict, lambda r: r.verdict))


def _drop_reasons(ff: Any) -> FieldChecks:
    # The record folds the deprecated drop_reason in, so only the flow answers exactly.
    return _enum_check(ff.drop_reason_desc, lambda f: f.drop_reason_desc), None


def _directions(ff: Any) -> FieldChecks:
    return (
        _enum_check(ff.traffic_direction, lambda f: f.traffic_direction),
        _enum_check(ff.traffic_direction, lambda r: r.direction),
    )


def _ip_versions(ff: Any) -> FieldChecks:
    return _enum_check(ff.ip_version, lambda f: f.IP.ipVersion), None


def _uuids(ff: Any) -> FieldChecks:
    wanted = frozenset(ff.uuid)
    return (lambda f: f.uuid in wanted), (lambda r: r.uuid in wanted)


def _interfaces(ff: Any) -> FieldChecks:
    wanted = tuple((i.index, i.name) for i in ff.interface)

    def check(f: Any) -> bool:
        if not f.HasField("interface"):
            return False
        iface = f.interface
        return any((not idx or idx == iface.index) and (not name or name == iface.name) for idx, name in wanted)

    return check, None


def _event_types(ff: Any) -> FieldChecks:
    wanted = tuple((t.type, t.match_sub_type, t.sub_type) for t in ff.event_type)

    def on_flow(f: Any) -> bool:
        if not f.HasField("event_type"):
            return False
        ev = f.event_type
        return any((not t or t == ev.type) and (not m or s == ev.sub_type) for t, m, s in wanted)

    # The record keeps only the type, and an absent event_type reads as type 0.
    record_ok = all(t and not m for t, m, _ in wanted)
    types = frozenset(t for t, _, _ in wanted)
    return on_flow, ((lambda r: r.event_type in types) if record_ok else None)


def _require_l7_event_type(ff: Any, field: str) -> None:
    types = [t.type for t in ff.event_type]
    if types and MESSAGE_TYPE_ACCESS_LOG not in types:
        raise FilterError(
            field, list(getattr(ff, field)), "HTTP filters need the event type filter to include l7 (129)"
        )


def _on_http(check: Callable[[Any], bool], pb_attr: str, record_attr: str) -> FieldChecks:
    """Apply `check` to one HTTP attribute; flows without an HTTP record never match."""
    return (
        lambda f: f.l7.WhichOneof("record") == "http" and check(getattr(f.l7.http, pb_attr)),
        lambda r: r.l7_kind == "http" and check(getattr(r, record_attr)),
    )


def _http_status(ff: Any) -> FieldChecks:
    _require_l7_event_type(ff, "http_status_code")
    full, prefixes = set(), []
    for value in ff.http_status_code:
        if _STATUS_FULL.fullmatch(value):
            full.add(value)
        elif _STATUS_PREFIX.fullmatch(value):
            prefixes.append(value[:-1])
        else:
            raise FilterError("http_status_code", value, "expected a status code like 404 or a prefix like 5+ or 40+")
    prefix_tuple = tuple(prefixes)

    def check(code: int) -> bool:
        if not code:
            return False
        text = f"{code:03d}"
        return text in full or text.startswith(prefix_tuple)

    return _on_http(check, "code", "http_code")


def _http_methods(ff: Any) -> FieldChecks:
    _require_l7_event_type(ff, "http_method")
    wanted = frozenset(m.casefold() for m in ff.http_method)

    def check(method: str) -> bool:
        return bool(method) and method.casefold() in wanted

    return _on_http(check, "method", "http_method")


def _http_paths(ff: Any) -> FieldChecks:
    _require_l7_event_type(ff, "http_path")
    regexes = tuple(_compile_re2(p, "http_path") for p in ff.http_path)

    def check(url: str) -> bool:
        if not url:
            return False
        path = _request_uri_path(url)
        return path is not None and any(r.search(path) for r in regexes)

    return _on_http(check, "url", "http_url")


def _http_urls(ff: Any) -> FieldChecks:
    _require_l7_event_type(ff, "http_url")
    regexes = tuple(_compile_re2(p, "http_url") for p in ff.http_url)

    def check(url: str) -> bool:
        return bool(url) and any(r.search(url) for r in regexes)

    return _on_http(check, "url", "http_url")


def _http_headers(ff: Any) -> FieldChecks:
    _require_l7_event_type(ff, "http_header")
    wanted = tuple((h.key, h.value) for h in ff.http_header)

    def check(f: Any) -> bool:
        if f.l7.WhichOneof("record") != "http":
            return False
        for h in f.l7.http.headers:
            if any((not k or k == h.key) and (not v or v == h.value) for k, v in wanted):
                return True
        return False

    return check, None


def _dns_queries(ff: Any) -> FieldChecks:
    regexes = tuple(_compile_re2(p, "dns_query") for p in ff.dns_query)

    def check(query: str) -> bool:
        return any(r.search(query) for r in regexes)

    return (
        lambda f: f.l7.WhichOneof("record") == "dns" and check(f.l7.dns.query),
        lambda r: r.l7_kind == "dns" and check(r.dns_query),
    )


def _protocols(ff: Any) -> FieldChecks:
    l4: set[str] = set()
    l7: set[str] = set()
    for value in ff.protocol:
        name = value.lower()
        if name in _L4_PROTOCOLS:
            l4.update(_L4_PROTOCOLS[name])
        elif name in _L7_PROTOCOLS:
            l7.add(_L7_PROTOCOLS[name])
        else:
            expected = "expected one of tcp, udp, sctp, icmp, icmpv4, icmpv6, dns, http, kafka"
            raise FilterError("protocol", value, expected)
    return (
        lambda f: f.l4.WhichOneof("protocol") in l4 or f.l7.WhichOneof("record") in l7,
        lambda r: r.protocol in l4 or r.l7_kind in l7,
    )


def _tcp_flags(ff: Any) -> FieldChecks:
    wanted = tuple(tuple(name for name in _TCP_FLAG_FIELDS if getattr(t, name)) for t in ff.tcp_flags)

    def on_flow(f: Any) -> bool:
        if f.l4.WhichOneof("protocol") != "TCP" or not f.l4.TCP.HasField("flags"):
            return False
        flags = f.l4.TCP.flags
        return any(all(getattr(flags, name) for name in names) for names in wanted)

    def on_record(r: Any) -> bool:
        present = r.tcp_flags
        return any(all(name in present for name in names) for names in wanted)

    # An all-false TCPFlags entry matches any flow carrying flags; the record cannot tell.
    return on_flow, (on_record if all(wanted) else None)


def _replies(ff: Any) -> FieldChecks:
    wanted = frozenset(ff.reply)
    dropped = flow_pb.DROPPED

    def on_flow(f: Any) -> bool:
        # Like Hubble: an unknown is_reply counts as "not a reply" for dropped flows only.
        if not f.HasField("is_reply"):
            return f.verdict == dropped and False in wanted
        return f.is_reply.value in wanted

    def on_record(r: Any) -> bool:
        if r.is_reply is None:
            return r.verdict == dropped and False in wanted
        return r.is_reply in wanted

    return on_flow, on_record


def _node_names(ff: Any) -> FieldChecks:
    regex = re.compile(r"\A(?:" + "|".join(_node_name_regex(p) for p in ff.node_name) + r")\Z")
    match = regex.match

    def check(node: str) -> bool:
        if not node:
            return False
        if "/" not in node:
            node = f"{DEFAULT_CLUSTER}/{node}"
        return match(node) is not None

    return (lambda f: check(f.node_name)), _undecoded(lambda r: check(r.node))


def _encrypted(ff: Any) -> FieldChecks:
    # As Hubble: IP.encrypted (IPsec or WireGuard) must be one of the values; a flow without
    # an IP header counts as not encrypted.
    wanted = frozenset(ff.encrypted)
    return (lambda f: f.IP.encrypted in wanted), None


def _ip_trace_ids(ff: Any) -> FieldChecks:
    # As Hubble: a flow without an IP trace ID has ID 0, so 0 matches it.
    wanted = frozenset(ff.ip_trace_id)
    return (lambda f: f.ip_trace_id.trace_id in wanted), None


def _unsupported(field: str, why: str) -> Callable[[Any], FieldChecks]:
    number = flow_pb.FlowFilter.DESCRIPTOR.fields_by_name[field].number

    def build(ff: Any) -> FieldChecks:
        raise UnsupportedFilterField(field, number, why)

    return build


def _experimental(ff: Any) -> FieldChecks:
    if ff.experimental.cel_expression:
        raise FilterError(
            "experimental.cel_expression",
            list(ff.experimental.cel_expression),
            "CEL expressions are not supported by kcockpit's matcher; use the other FlowFilter fields",
        )
    return (lambda f: True), (lambda r: True)


def _sided(builder: Callable[[Any, str], FieldChecks], side: str) -> Callable[[Any], FieldChecks]:
    return lambda ff: builder(ff, side)


# Field name -> compiler. Order is cheap-first so AND short-circuits early.
_COMPILERS: dict[str, Callable[[Any], FieldChecks]] = {
    "verdict": _verdicts,
    "event_type": _event_types,
    "traffic_direction": _directions,
    "reply": _replies,
    "protocol": _protocols,
    "source_identity": _sided(_identities, "source"),
    "destination_identity": _sided(_identities, "destination"),
    "uuid": _uuids,
    "source_port": _sided(_ports, "source"),
    "destination_port": _sided(_ports, "destination"),
    "drop_reason_desc": _drop_reasons,
    "ip_version": _ip_versions,
    "tcp_flags": _tcp_flags,
    "source_ip": _sided(_ips, "source"),
    "destination_ip": _sided(_ips, "destination"),
    "source_ip_xlated": _ip_xlated,
    "source_pod": _sided(_pods, "source"),
    "destination_pod": _sided(_pods, "destination"),
    "source_service": _sided(_services, "source"),
    "destination_service": _sided(_services, "destination"),
    "source_workload": _sided(_workloads, "source"),
    "destination_workload": _sided(_workloads, "destination"),
    "source_cluster_name": _sided(_cluster_names, "source"),
    "destination_cluster_name": _sided(_cluster_names, "destination"),
    "source_fqdn": _sided(_fqdns, "source"),
    "destination_fqdn": _sided(_fqdns, "destination"),
    "source_label": _sided(_labels, "source"),
    "destination_label": _sided(_labels, "destination"),
    "node_name": _node_names,
    "node_labels": _node_labels,
    "interface": _interfaces,
    "http_status_code": _http_status,
    "http_method": _http_methods,
    "http_path": _http_paths,
    "http_url": _http_urls,
    "http_header": _http_headers,
    "dns_query": _dns_queries,
    "encrypted": _encrypted,
    "ip_trace_id": _ip_trace_ids,
    "trace_id": _unsupported("trace_id", "filtering by W3C trace ID is not implemented"),
    "experimental": _experimental,
}


class _CompiledFilter:
    """One FlowFilter as a tuple of checks that must all pass."""

    __slots__ = ("on_flow", "on_record", "undecoded")

    def __init__(self, ff: Any) -> None:
        unknown = [u.field_number for u in unknown_fields.UnknownFieldSet(ff)]
        if unknown:
            # Newer than the v1.19 API kcockpit's protos describe: its name is not known here.
            raise UnsupportedFilterField(None, unknown[0], "the field is newer than the Cilium v1.19 API kcockpit knows")
        flow_checks: list[Check] = []
        record_checks: list[Check] | None = []
        for desc, _ in ff.ListFields():
            compiler = _COMPILERS.get(desc.name)
            if compiler is None:
                raise UnsupportedFilterField(desc.name, desc.number)
            on_flow, on_record = compiler(ff)
            flow_checks.append(on_flow)
            if record_checks is not None:
                if on_record is None:
                    record_checks = None
                else:
                    record_checks.append(on_record)
        self.on_flow: tuple[Check, ...] = tuple(flow_checks)
        self.on_record: tuple[Check, ...] | None = None if record_checks is None else tuple(record_checks)
        # Whether the record checks read only a record's undecoded fields.
        self.undecoded = record_checks is not None and all(getattr(c, "undecoded", False) for c in record_checks)


def _compile_all(filters: Sequence[Any]) -> tuple[_CompiledFilter, ...]:
    return tuple(_CompiledFilter(ff) for ff in filters)


class FlowMatcher:
    """Whitelist/blacklist of FlowFilters, compiled once, applied to flows or FlowRecords."""

    __slots__ = ("_white", "_black", "_record_ok", "_undecoded", "_white_records", "_black_records")

    def __init__(self, whitelist: Sequence[Any] = (), blacklist: Sequence[Any] = ()) -> None:
        self._white = _compile_all(whitelist)
        self._black = _compile_all(blacklist)
        self._record_ok = all(c.on_record is not None for c in (*self._white, *self._black))
        self._undecoded = all(c.undecoded for c in (*self._white, *self._black))
        # The record checks, used only when every filter has them.
        self._white_records = tuple(c.on_record or () for c in self._white)
        self._black_records = tuple(c.on_record or () for c in self._black)

    @property
    def matches_everything(self) -> bool:
        """True when no filter is set, so callers can skip matching entirely."""
        return not self._white and not self._black

    def matches(self, flow: Any) -> bool:
        """Whether a Hubble server would send this flow_pb.Flow for these filters."""
        if self._white and not any(all(check(flow) for check in c.on_flow) for c in self._white):
            return False
        return not any(all(check(flow) for check in c.on_flow) for c in self._black)

    def matches_record(self, record: FlowRecord) -> bool:
        """Same answer as matches(record.flow()), from the record's fields when they suffice."""
        if not self._white and not self._black:
            return True
        if not self._record_ok or not (self._undecoded or record.is_decoded):
            # A record's details are decoded into Python objects (~20 us) and not kept for
            # long (model.record): checking the parsed flow costs a quarter of that.
            try:
                return self.matches(record.flow())
            except FlowBytesLost:
                return self._record_ok and self._matches_fields(record)  # what the record still holds
        return self._matches_fields(record)

    def _matches_fields(self, record: FlowRecord) -> bool:
        white = self._white_records
        if white and not any(all(check(record) for check in checks) for checks in white):
            return False
        return not any(all(check(record) for check in checks) for checks in self._black_records)
