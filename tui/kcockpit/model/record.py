"""FlowRecord: the compact, decoded-once view of one Hubble flow.

The reader thread builds one per received flow, so construction touches only what the
list view, the filters' fast paths and the aggregates need. The original
GetFlowsResponse bytes stay with the record (compressed in a block once it is stored,
see model.blocks): the detail view and the exporter parse them again on demand
(`record.response()`), so nothing the server sent is lost.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace

from kcockpit.model.blocks import FlowBytesLost
from kcockpit.wire.hubble_pb import GetFlowsResponse, flow_pb

# Enum numbers used on hot paths, spelled once.
VERDICT_FORWARDED = flow_pb.FORWARDED
VERDICT_DROPPED = flow_pb.DROPPED
VERDICT_ERROR = flow_pb.ERROR
VERDICT_AUDIT = flow_pb.AUDIT
DIRECTION_INGRESS = flow_pb.INGRESS
DIRECTION_EGRESS = flow_pb.EGRESS

VERDICT_NAMES = {v.number: v.name for v in flow_pb.Verdict.DESCRIPTOR.values}
DROP_REASON_NAMES = {v.number: v.name for v in flow_pb.DropReason.DESCRIPTOR.values}
DIRECTION_NAMES = {0: "unknown", 1: "ingress", 2: "egress"}
RESERVED_IDENTITIES = {
    1: "host",
    2: "world",
    3: "unmanaged",
    4: "health",
    5: "init",
    6: "remote-node",
    7: "kube-apiserver",
    8: "ingress",
}
_TCP_FLAG_NAMES = ("SYN", "ACK", "PSH", "FIN", "RST", "URG", "ECE", "CWR", "NS")
DNS_RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


@dataclass(slots=True, frozen=True)
class EndpointInfo:
    """One side of a flow, reduced to what is displayed and aggregated."""

    namespace: str
    pod: str
    workload: str  # first workload name, or "" when the endpoint has none
    identity: int
    ip: str
    port: int
    labels: tuple[str, ...]
    names: tuple[str, ...]  # DNS names for the IP (world endpoints)
    service: str  # "ns/name" of the Kubernetes Service, or ""

    @property
    def reserved(self) -> str:
        """The reserved identity name (world, host, ...) or ""."""
        return RESERVED_IDENTITIES.get(self.identity, "")

    def app(self) -> str:
        """The value of the app label (any source prefix), or ""."""
        for label in self.labels:
            key, _, value = label.partition("=")
            if key.rsplit(":", 1)[-1] in ("app", "app.kubernetes.io/name", "k8s-app"):
                return value
        return ""

    def display_name(self) -> str:
        """How Hubble UI names an endpoint: ns/pod, else the reserved name or DNS name, else the IP."""
        if self.pod:
            return f"{self.namespace}/{self.pod}" if self.namespace else self.pod
        if self.names:
            return self.names[0]
        if self.reserved:
            return self.reserved if not self.ip else f"{self.reserved} {self.ip}"
        return self.ip or "?"

    def short_name(self) -> str:
        """The endpoint as the flow list names it, without its namespace: workload (else app
        label, else pod) in the cluster, else its Service, the DNS name of a world IP (else
        the IP), the name of a reserved identity (host, remote-node, ...), else the IP."""
        if self.workload:
            return self.workload
        if self.namespace and (app := self.app()):
            return app
        if self.pod:
            return self.pod
        if self.service:
            return self.service.partition("/")[2]
        if self.names:
            return self.names[0]
        if self.reserved == "world":
            return self.ip or "world"
        return self.reserved or self.ip or "?"

    def workload_name(self) -> str:
        """ns/workload for cluster endpoints, else the display name: the unit the services tree uses."""
        if self.workload:
            return f"{self.namespace}/{self.workload}" if self.namespace else self.workload
        app = self.app()
        if app and self.namespace:
            return f"{self.namespace}/{app}"
        if self.reserved == "world" and self.names:
            return self.names[0]
        return self.reserved or self.display_name()


# Decoded records are kept (the flow list decodes every flow it shows), and each decoding
# makes new strings: the same pod labels and names then cost ~2.8 KB per flow. Sharing one
# copy of each repeated value cuts that to a fraction. Bounded: a cluster with much churn
# starts a fresh table rather than growing it without end.
_SHARED: dict = {}
_SHARED_LIMIT = 100_000


def _shared(value):
    """The one kept copy of a str or tuple of str equal to `value`."""
    kept = _SHARED.get(value)
    if kept is None:
        if len(_SHARED) >= _SHARED_LIMIT:
            _SHARED.clear()
        _SHARED[value] = kept = value
    return kept


def _endpoint(ep, ip: str, port: int, names, service) -> EndpointInfo:
    workloads = ep.workloads
    return EndpointInfo(
        namespace=_shared(ep.namespace),
        pod=_shared(ep.pod_name),
        workload=_shared(workloads[0].name) if workloads else "",
        identity=ep.identity,
        ip=_shared(ip),
        port=port,
        labels=_shared(tuple(ep.labels)),
        names=_shared(tuple(names)) if names else (),
        service=_shared(f"{service.namespace}/{service.name}") if service.name else "",
    )


L7_REQUEST = flow_pb.REQUEST
L7_RESPONSE = flow_pb.RESPONSE
_L7_ARROWS = {L7_REQUEST: "→ ", L7_RESPONSE: "← "}
MIN_SUBJECT = 6  # cells of a path or DNS name (ellipsis included) worth keeping when shortening


def url_path(url: str) -> str:
    """`http://cartservice:8080/api/cart?x=1` -> `/api/cart?x=1`: the host is already the
    flow's destination. A URL that is already a path is returned as it is."""
    _, sep, rest = url.partition("://")
    if not sep:
        return url
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


def format_latency(latency_ns: int) -> str:
    """`1.2ms`, `12ms`, `5.0s`: two or three significant digits in at most 6 cells."""
    milliseconds = latency_ns / 1_000_000
    if milliseconds >= 1000:
        return f"{milliseconds / 1000:.1f}s"
    return f"{milliseconds:.0f}ms" if milliseconds >= 10 else f"{milliseconds:.1f}ms"


def _cut(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return "" if width <= 0 else text[: width - 1] + "…"


@dataclass(frozen=True, slots=True)
class L7Summary:
    """A flow's L7 record on one line, in parts so that a narrow column shortens it well.

    `lead` (arrow, HTTP status, drop reason) and `outcome` (DNS rcode) always stay;
    `subject` (URL path, DNS name) is cut at its end; `extra` (latency) goes first, then
    `label` (method, "DNS A"), before the subject is cut below MIN_SUBJECT cells.
    Requests read `→ GET /api/products`, responses `← 200 GET /api/products 12ms`,
    DNS `→ DNS A example.com.` and `← DNS A example.com. NXDOMAIN`.
    """

    lead: str = ""
    label: str = ""
    subject: str = ""
    outcome: str = ""
    extra: str = ""

    @property
    def text(self) -> str:
        return self.lead + self.label + self.subject + self.outcome + self.extra

    def with_prefix(self, prefix: str) -> L7Summary:
        """The same summary behind `prefix` (a drop reason), which is never shortened."""
        if not self.text:
            return replace(self, lead=prefix.rstrip())
        return replace(self, lead=prefix + self.lead)

    def fit(self, width: int) -> str:
        """The most informative text of at most `width` cells (not padded)."""
        text = self.text
        if len(text) <= width:
            return text
        subject = self.subject
        for label, extra in ((self.label, self.extra), (self.label, ""), ("", "")):
            room = width - len(self.lead) - len(label) - len(self.outcome) - len(extra)
            if room >= min(MIN_SUBJECT, len(subject)):
                return self.lead + label + _cut(subject, room) + self.outcome + extra
        room = width - len(self.lead) - len(self.outcome)
        if subject and room >= 1:
            return self.lead + _cut(subject, room) + self.outcome
        return _cut(text, width)


_DETAIL_FIELDS = (
    "uuid",
    "drop_reason",
    "flow_type",
    "event_type",
    "direction",
    "is_reply",
    "protocol",
    "tcp_flags",
    "source",
    "destination",
    "l7_kind",
    "l7_type",
    "latency_ns",
    "http_method",
    "http_url",
    "http_code",
    "dns_query",
    "dns_rcode",
    "dns_qtypes",
    "dns_ips",
    "summary",
)

UNREADABLE = "flow bytes unreadable"  # what a flow whose stored bytes are lost shows


class _Details:
    """A record's decoded fields, made in one go; a record holds one or none."""

    __slots__ = _DETAIL_FIELDS


def _decode_details(raw: bytes) -> _Details:
    flow = GetFlowsResponse.FromString(raw).flow
    l4 = flow.l4
    protocol = l4.WhichOneof("protocol") or ""
    src_port = dst_port = 0
    flags: tuple[str, ...] = ()
    if protocol:
        layer = getattr(l4, protocol)
        if protocol in ("TCP", "UDP", "SCTP"):
            src_port, dst_port = layer.source_port, layer.destination_port
        if protocol == "TCP" and layer.HasField("flags"):
            f = layer.flags
            flags = tuple(name for name in _TCP_FLAG_NAMES if getattr(f, name))
    ip = flow.IP
    l7 = flow.l7
    l7_kind = l7.WhichOneof("record") or ""
    details = _Details()
    details.http_method = details.http_url = details.dns_query = ""
    details.http_code = details.dns_rcode = 0
    details.dns_qtypes = details.dns_ips = ()
    if l7_kind == "http":
        http = l7.http
        details.http_method, details.http_url, details.http_code = http.method, http.url, http.code
    elif l7_kind == "dns":
        dns = l7.dns
        details.dns_query, details.dns_rcode = dns.query, dns.rcode
        details.dns_qtypes, details.dns_ips = tuple(dns.qtypes), tuple(dns.ips)
    details.uuid = flow.uuid
    details.drop_reason = flow.drop_reason_desc or flow.drop_reason
    details.flow_type = flow.Type
    details.event_type = flow.event_type.type
    details.direction = flow.traffic_direction
    details.is_reply = flow.is_reply.value if flow.HasField("is_reply") else None
    details.protocol = protocol
    details.tcp_flags = flags
    details.source = _endpoint(flow.source, ip.source, src_port, flow.source_names, flow.source_service)
    details.destination = _endpoint(
        flow.destination, ip.destination, dst_port, flow.destination_names, flow.destination_service
    )
    details.l7_kind = l7_kind
    details.l7_type = l7.type
    details.latency_ns = l7.latency_ns
    details.summary = flow.Summary
    return details


def _unreadable_details() -> _Details:
    """What a record whose bytes are lost shows: no L4/L7 fields, `?` endpoints."""
    nobody = EndpointInfo("", "", "", 0, "", 0, (), (), "")
    blank = {"uuid": "", "is_reply": None, "protocol": "", "tcp_flags": (), "source": nobody, "destination": nobody,
             "l7_kind": "", "http_method": "", "http_url": "", "dns_query": "", "dns_qtypes": (), "dns_ips": (),
             "summary": UNREADABLE}
    details = _Details()
    for name in _DETAIL_FIELDS:
        setattr(details, name, blank.get(name, 0))
    return details


_UNREADABLE_DETAILS = _unreadable_details()

# Decoded details stay on a record for its next reads (the flow list renders a row many
# times), but only on the DECODED_KEPT records decoded last: a pass over the whole store (a
# filter, the namespace list) would otherwise leave ~700 B of decoded fields on every flow.
DECODED_KEPT = 8192
_kept: deque[FlowRecord] = deque()
_kept_lock = threading.Lock()

# Every flow names its node: one shared string per node rather than one per flow.
_NODES: dict[str, str] = {}
_NODES_LIMIT = 10_000


def _node(name: str) -> str:
    if len(_NODES) >= _NODES_LIMIT:
        _NODES.clear()
    return _NODES.setdefault(name, name)


class FlowRecord:
    """A received flow. `raw` is the GetFlowsResponse exactly as it came off the wire.

    Only `time_ns`, `verdict` and `node` are decoded when the record is made (that keeps
    ingest above 100k flows/s); the other attributes are decoded together, once, the
    first time any of them is read, and kept for the DECODED_KEPT records decoded last.
    A FlowStore moves the bytes into a compressed block (model.blocks): `raw` then reads
    them back from there, and raises FlowBytesLost if that block is damaged (the record
    then reads as `unreadable`, its details empty). Attribute meanings:
    flow_type (FlowType: 1 L3_L4, 2 L7), event_type (CiliumEventType.type: 1 drop,
    4 trace, 5 policy verdict, 129 L7), direction (TrafficDirection), is_reply (None when
    unknown), protocol ("TCP", "UDP", "ICMPv4", "ICMPv6", "SCTP" or ""), tcp_flags
    (names of the set flags), l7_kind ("", "http", "dns", "kafka"), l7_type (1 request,
    2 response), source/destination (EndpointInfo).
    """

    # _raw: the bytes, or the Block holding them at _index (set before _raw names the block;
    # changed only while _raw holds bytes). _details: a _Details, or None until decoded.
    __slots__ = ("_raw", "_index", "time_ns", "verdict", "node", "_details")

    uuid: str
    drop_reason: int
    flow_type: int
    event_type: int
    direction: int
    is_reply: bool | None
    protocol: str
    tcp_flags: tuple[str, ...]
    source: EndpointInfo
    destination: EndpointInfo
    l7_kind: str
    l7_type: int
    latency_ns: int
    http_method: str
    http_url: str
    http_code: int
    dns_query: str
    dns_rcode: int
    dns_qtypes: tuple[str, ...]
    dns_ips: tuple[str, ...]
    summary: str

    def __init__(self, raw: bytes, time_ns: int, verdict: int, node: str) -> None:
        self._raw = raw
        self.time_ns = time_ns
        self.verdict = verdict
        self.node = _NODES.get(node) or _node(node)
        self._details = None

    def __repr__(self) -> str:
        return f"FlowRecord(time_ns={self.time_ns}, node={self.node!r}, verdict={self.verdict_name})"

    @classmethod
    def from_bytes(cls, raw: bytes) -> FlowRecord | None:
        """Decode a serialized GetFlowsResponse; None when it does not carry a flow."""
        response = GetFlowsResponse.FromString(raw)
        if response.WhichOneof("response_types") != "flow":
            return None
        flow = response.flow
        t = flow.time
        return cls(raw, t.seconds * 1_000_000_000 + t.nanos, flow.verdict, flow.node_name)

    @classmethod
    def from_flow(cls, flow, raw: bytes | None = None) -> FlowRecord:
        """Build from a flow_pb.Flow; raw defaults to the flow wrapped in a GetFlowsResponse."""
        if raw is None:
            raw = GetFlowsResponse(flow=flow, node_name=flow.node_name, time=flow.time).SerializeToString()
        t = flow.time
        return cls(raw, t.seconds * 1_000_000_000 + t.nanos, flow.verdict, flow.node_name)

    @property
    def raw(self) -> bytes:
        """The GetFlowsResponse bytes as received; FlowBytesLost when they cannot be read."""
        while True:
            holder = self._raw
            if holder.__class__ is bytes:
                return holder
            index = self._index
            if self._raw is holder:  # else the store moved the bytes meanwhile: read again
                return holder.get(index)

    @property
    def unreadable(self) -> bool:
        """True when the stored bytes are lost: only time, verdict and node are known."""
        return (self._details or self._decode()) is _UNREADABLE_DETAILS

    @property
    def is_decoded(self) -> bool:
        """Whether decoded details are kept on this record now."""
        return self._details is not None

    def _decode(self) -> _Details:
        try:
            details = _decode_details(self.raw)
        except FlowBytesLost:
            self._details = _UNREADABLE_DETAILS
            return _UNREADABLE_DETAILS
        # The slot is assigned once, with every field set: another thread reading the record
        # meanwhile either finds no details (and decodes too) or complete ones.
        self._details = details
        with _kept_lock:
            _kept.append(self)
            if len(_kept) > DECODED_KEPT:
                _kept.popleft()._details = None
        return details

    def decoded(self) -> FlowRecord:
        """This record if its details are decoded already, else a decoded copy that is not
        kept: a pass over many records (aggregation keys) then leaves the details of the
        records shown (the last decoded) in place."""
        if self._details is not None:
            return self
        try:
            raw = self.raw
        except FlowBytesLost:
            self._details = _UNREADABLE_DETAILS
            return self
        copy = FlowRecord(raw, self.time_ns, self.verdict, self.node)
        copy._details = _decode_details(raw)
        return copy

    def response(self):
        """The full GetFlowsResponse, parsed again from the original bytes."""
        return GetFlowsResponse.FromString(self.raw)

    def flow(self):
        """The full flow_pb.Flow, parsed again from the original bytes."""
        return GetFlowsResponse.FromString(self.raw).flow

    @property
    def verdict_name(self) -> str:
        return VERDICT_NAMES.get(self.verdict, str(self.verdict))

    @property
    def drop_reason_name(self) -> str:
        return DROP_REASON_NAMES.get(self.drop_reason, str(self.drop_reason)) if self.drop_reason else ""

    @property
    def dns_rcode_name(self) -> str:
        return DNS_RCODE_NAMES.get(self.dns_rcode, str(self.dns_rcode))

    def l7_summary(self) -> L7Summary:
        """The L7 record in the flow list's words (see L7Summary); empty without one."""
        kind = self.l7_kind
        if not kind:
            return L7Summary()
        arrow = _L7_ARROWS.get(self.l7_type, "")
        response = self.l7_type == L7_RESPONSE
        if kind == "http":
            method = f"{self.http_method} " if self.http_method else ""
            path = url_path(self.http_url)
            if not response:
                return L7Summary(arrow, method, path)
            code = f"{self.http_code} " if self.http_code else ""
            latency = f" {format_latency(self.latency_ns)}" if self.latency_ns else ""
            return L7Summary(arrow + code, method, path, extra=latency)
        if kind == "dns":
            label = f"DNS {','.join(self.dns_qtypes) or '?'} "
            return L7Summary(arrow, label, self.dns_query, f" {self.dns_rcode_name}" if response else "")
        return L7Summary(arrow, kind.capitalize())

    def l7_info(self, width: int | None = None) -> str:
        """One-line L7 description, as in Hubble UI's L7 info column (`← 200 GET /api 12ms`,
        `→ DNS A example.com.`), shortened to `width` cells when given; "" without L7."""
        summary = self.l7_summary()
        return summary.text if width is None else summary.fit(width)


def _detail_property(name: str) -> property:
    read_slot = getattr(_Details, name).__get__

    def read(record: FlowRecord):
        details = record._details
        if details is None:
            details = record._decode()
        return read_slot(details)

    read.__name__ = name
    return property(read, doc=f"The flow's {name}, decoded with the other details on first use.")


for _name in _DETAIL_FIELDS:
    setattr(FlowRecord, _name, _detail_property(_name))
del _name
