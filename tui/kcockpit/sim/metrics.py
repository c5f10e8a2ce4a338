"""The simulated cluster's /metrics: Hubble and CoreDNS metrics derived from the flows it streams.

`MetricsExporter.observe(response)` takes every GetFlowsResponse the simulator emits and
counts it the way Cilium's Hubble metric handlers would (flow, drop, dns, tcp, httpV2,
policy, lost events; context labels as `labelsContext=source_namespace,source_workload,
destination_namespace,destination_workload`), and the way the CoreDNS answering those
DNS flows would. So the golden signals Prometheus computes agree with what the flow list
shows, phase by phase: when the broken policy drops frontend's DNS, the drops appear with
reason POLICY_DENIED, and the dropped queries count with rcode "Policy denied" and never
get a response.

`start_metrics_server(exporter, host, port)` serves the Prometheus text format from a
stdlib HTTP server thread.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kcockpit.wire.hubble_pb import flow_pb

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HUBBLE_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COREDNS_DURATION_BUCKETS = tuple(0.00025 * 2**i for i in range(16))  # 0.25 ms .. 8.192 s, as CoreDNS
CONTEXT_LABELS = ("source_namespace", "source_workload", "destination_namespace", "destination_workload")

# Hubble writes DNS rcodes as words; CoreDNS writes the RFC mnemonics.
HUBBLE_RCODES = {
    0: "No Error",
    1: "Format Error",
    2: "Server Failure",
    3: "Non-Existent Domain",
    4: "Not Implemented",
    5: "Query Refused",
}
COREDNS_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
POLICY_DENIED_RCODE = "Policy denied"
POLICY_MATCH = {0: "none", 1: "l3-only", 2: "l3-l4", 3: "l4-only", 4: "all", 5: "l3-proto", 6: "proto-only"}

COREDNS_SERVER = "dns://:53"
COREDNS_UPSTREAM = "172.18.0.1:53"  # the kind node's resolver, where CoreDNS forwards external names
COREDNS_CACHE_TTL_S = 30.0
CLUSTER_DOMAIN_SUFFIX = ".cluster.local"

EVENT_DROP = 1
EVENT_POLICY_VERDICT = 5
EVENT_L7 = 129
L7_REQUEST = 1
L7_RESPONSE = 2
DNS_PORT = 53
_L7_PROTOCOLS = {"dns": "DNS", "http": "HTTP", "kafka": "Kafka"}


# ---------------------------------------------------------------------------- a tiny registry


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


class _Counter:
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name, self.help, self.labels = name, help_text, labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        self.values[key] = self.values.get(key, 0.0) + amount

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {self.help}")
        out.append(f"# TYPE {self.name} {self.kind}")
        for key in sorted(self.values):
            out.append(f"{self.name}{{{_labels(self.labels, key)}}} {_number(self.values[key])}")


class _Gauge(_Counter):
    kind = "gauge"

    def set(self, key: tuple[str, ...], value: float) -> None:
        self.values[key] = value


class _Histogram:
    def __init__(self, name: str, help_text: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.labels, self.buckets = name, help_text, labels, buckets
        self.values: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}  # per-bucket counts, [sum]

    def observe(self, key: tuple[str, ...], value: float) -> None:
        counts, total = self.values.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
        counts[bisect_left(self.buckets, value)] += 1  # le is inclusive: value == bound goes in that bucket
        total[0] += value

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {self.help}")
        out.append(f"# TYPE {self.name} histogram")
        for key in sorted(self.values):
            counts, total = self.values[key]
            base = _labels(self.labels, key)
            prefix = f"{base}," if base else ""
            cumulative = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                cumulative += count
                le = "+Inf" if math.isinf(bound) else f"{bound:g}"
                out.append(f'{self.name}_bucket{{{prefix}le="{le}"}} {cumulative}')
            out.append(f"{self.name}_sum{{{base}}} {_number(total[0])}")
            out.append(f"{self.name}_count{{{base}}} {cumulative}")


# ---------------------------------------------------------------------------- flow helpers


@dataclass(frozen=True, slots=True)
class _Endpoint:
    namespace: str
    workload: str
    is_coredns: bool


def _endpoint(ep) -> _Endpoint:
    workload = ep.workloads[0].name if ep.workloads else ""
    coredns = any(label.endswith("k8s-app=kube-dns") for label in ep.labels)
    return _Endpoint(ep.namespace, workload, coredns)


def _l4(flow) -> tuple[str, int]:
    """The L4 protocol name and destination port."""
    protocol = flow.l4.WhichOneof("protocol") or ""
    port = getattr(flow.l4, protocol).destination_port if protocol in ("TCP", "UDP", "SCTP") else 0
    return protocol, port


def _flow_type(flow) -> tuple[str, str]:
    """Hubble's `type` and `subtype` labels."""
    kind = flow.l7.WhichOneof("record")
    if flow.Type == flow_pb.L7 or flow.event_type.type == EVENT_L7:
        return "L7", _L7_PROTOCOLS.get(kind or "", "")
    if flow.event_type.type == EVENT_POLICY_VERDICT:
        return "PolicyVerdict", ""
    if flow.event_type.type == EVENT_DROP or flow.verdict == flow_pb.DROPPED:
        return "Drop", ""
    point = flow_pb.TraceObservationPoint.Name(flow.trace_observation_point)
    return "Trace", "" if point == "UNKNOWN_POINT" else point.lower().replace("_", "-")


def _reporter(flow) -> str:
    return {flow_pb.EGRESS: "client", flow_pb.INGRESS: "server"}.get(flow.traffic_direction, "unknown")


# ---------------------------------------------------------------------------- the exporter


PENDING_LIMIT = 16_384  # flows observed but not yet counted, at most


class MetricsExporter:
    """Counts simulated flows into Hubble and CoreDNS metrics. Thread-safe: the simulator
    calls `observe` from its thread while the HTTP server renders from another.

    Counting is deferred: `observe` queues the response and `render` counts what is queued
    first, so a scrape sees every flow observed before it. The demo's 30 s of backfilled
    history is then counted by the first scrape instead of on the way to the first frame
    (a fifth of a second); the queue is counted on the spot when it reaches PENDING_LIMIT."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the counters
        self._pending_lock = threading.Lock()  # the queue
        self._pending: list = []
        ctx = CONTEXT_LABELS
        self.flows = _Counter(
            "hubble_flows_processed_total",
            "Flows processed by Hubble, by protocol, event type and verdict.",
            ("protocol", "type", "subtype", "verdict", *ctx),
        )
        self.drops = _Counter("hubble_drop_total", "Packets dropped, by drop reason and protocol.", ("reason", "protocol", *ctx))
        self.dns_queries = _Counter(
            "hubble_dns_queries_total", "DNS queries observed.", ("rcode", "qtypes", "ips_returned", *ctx)
        )
        self.dns_responses = _Counter(
            "hubble_dns_responses_total", "DNS responses observed.", ("rcode", "qtypes", "ips_returned", *ctx)
        )
        self.dns_response_types = _Counter(
            "hubble_dns_response_types_total", "DNS response records, by record type.", ("type", "qtypes", *ctx)
        )
        self.tcp_flags = _Counter("hubble_tcp_flags_total", "TCP packets, by flag.", ("flag", "family", *ctx))
        self.http_requests = _Counter(
            "hubble_http_requests_total",
            "HTTP requests, counted on their responses.",
            ("method", "protocol", "status", "reporter", *ctx),
        )
        self.http_duration = _Histogram(
            "hubble_http_request_duration_seconds",
            "HTTP request latency, from request to response.",
            ("method", "reporter", *ctx),
            HUBBLE_DURATION_BUCKETS,
        )
        self.policy_verdicts = _Counter(
            "hubble_policy_verdicts_total", "Network policy verdicts.", ("direction", "match", "action", *ctx)
        )
        self.lost_events = _Counter("hubble_lost_events_total", "Events lost, by where they were lost.", ("source",))
        dns_server = ("server", "zone", "view")
        self.coredns_requests = _Counter(
            "coredns_dns_requests_total", "DNS requests CoreDNS received.", (*dns_server, "proto", "family", "type")
        )
        self.coredns_responses = _Counter(
            "coredns_dns_responses_total", "DNS responses CoreDNS sent, by rcode.", (*dns_server, "rcode", "plugin")
        )
        self.coredns_duration = _Histogram(
            "coredns_dns_request_duration_seconds",
            "Time CoreDNS took to answer.",
            dns_server,
            COREDNS_DURATION_BUCKETS,
        )
        self.coredns_cache_hits = _Counter(
            "coredns_cache_hits_total", "Answers served from the cache.", ("server", "type", "zones", "view")
        )
        self.coredns_cache_misses = _Counter(
            "coredns_cache_misses_total", "Queries the cache could not answer.", ("server", "zones", "view")
        )
        self.coredns_forward = _Histogram(
            "coredns_proxy_request_duration_seconds",
            "Time upstream servers took to answer forwarded queries.",
            ("proxy_name", "to", "rcode"),
            COREDNS_DURATION_BUCKETS,
        )
        self.coredns_build_info = _Gauge(
            "coredns_build_info", "CoreDNS version.", ("version", "revision", "goversion")
        )
        self.coredns_build_info.set(("1.11.3", "a6338e9", "go1.21.11"), 1)
        self._families = (
            self.flows,
            self.drops,
            self.dns_queries,
            self.dns_responses,
            self.dns_response_types,
            self.tcp_flags,
            self.http_requests,
            self.http_duration,
            self.policy_verdicts,
            self.lost_events,
            self.coredns_build_info,
            self.coredns_requests,
            self.coredns_responses,
            self.coredns_duration,
            self.coredns_cache_hits,
            self.coredns_cache_misses,
            self.coredns_forward,
        )
        self._cache_expiry: dict[tuple[str, str], float] = {}  # (query, qtype) -> unix seconds

    # --------------------------------------------------------------- input

    def observe(self, response) -> None:
        """Count one observer_pb.GetFlowsResponse (flows and lost events; node status is
        ignored) before the next render. The response must not change afterwards."""
        with self._pending_lock:
            self._pending.append(response)
            full = len(self._pending) >= PENDING_LIMIT
        if full:
            with self._lock:
                self._count_pending()

    def _count_pending(self) -> None:
        """Count the queued responses, in order (holding self._lock)."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for response in pending:
            kind = response.WhichOneof("response_types")
            if kind == "flow":
                self._observe_flow(response.flow)
            elif kind == "lost_events":
                lost = response.lost_events
                source = flow_pb.LostEventSource.Name(lost.source).lower()
                self.lost_events.inc((source,), lost.num_events_lost)

    def _observe_flow(self, flow) -> None:
        src, dst = _endpoint(flow.source), _endpoint(flow.destination)
        ctx = (src.namespace, src.workload, dst.namespace, dst.workload)
        reversed_ctx = (dst.namespace, dst.workload, src.namespace, src.workload)
        protocol, port = _l4(flow)
        l7 = flow.l7.WhichOneof("record")
        verdict = flow_pb.Verdict.Name(flow.verdict)
        dropped = flow.verdict == flow_pb.DROPPED
        flow_type, subtype = _flow_type(flow)

        flow_protocol = _L7_PROTOCOLS.get(l7, "") if l7 else protocol
        self.flows.inc((flow_protocol, flow_type, subtype, verdict, *ctx))
        is_drop_event = dropped and flow.event_type.type != EVENT_POLICY_VERDICT
        if is_drop_event:  # a denied packet's policy-verdict event is not a second drop
            reason = flow_pb.DropReason.Name(flow.drop_reason_desc or flow.drop_reason)
            self.drops.inc((reason, protocol, *ctx))
        if protocol == "TCP" and l7 is None:
            self._observe_tcp(flow, ctx)
        if flow.event_type.type == EVENT_POLICY_VERDICT:
            direction = flow_pb.TrafficDirection.Name(flow.traffic_direction).lower()
            match = POLICY_MATCH.get(flow.policy_match_type, str(flow.policy_match_type))
            self.policy_verdicts.inc((direction, match, verdict.lower(), *ctx))
        elif l7 in ("http", "dns") and flow.l7.type == L7_REQUEST:
            direction = flow_pb.TrafficDirection.Name(flow.traffic_direction).lower()
            self.policy_verdicts.inc((direction, f"l7/{l7}", verdict.lower(), *ctx))

        if l7 == "http" and flow.l7.type == L7_RESPONSE:
            http = flow.l7.http
            reporter = _reporter(flow)
            # A response travels server -> client; Hubble counts it for the request, client -> server.
            self.http_requests.inc((http.method, http.protocol, str(http.code), reporter, *reversed_ctx))
            self.http_duration.observe((http.method, reporter, *reversed_ctx), flow.l7.latency_ns / 1e9)
        elif l7 == "dns":
            self._observe_dns(flow, ctx, src, dst, protocol, dropped)
        elif is_drop_event and port == DNS_PORT and protocol in ("UDP", "TCP") and not flow.is_reply.value:
            # A query dropped by policy before any proxy saw it: Hubble counts it as "Policy denied".
            # (Its policy-verdict event describes the same packet, so only the drop event counts.)
            self.dns_queries.inc((POLICY_DENIED_RCODE, "", "0", *ctx))

    def _observe_tcp(self, flow, ctx: tuple[str, ...]) -> None:
        flags = flow.l4.TCP.flags
        family = "IPv6" if flow.IP.ipVersion == flow_pb.IPv6 else "IPv4"
        if flags.SYN:
            self.tcp_flags.inc(("SYN-ACK" if flags.ACK else "SYN", family, *ctx))
        if flags.FIN:
            self.tcp_flags.inc(("FIN", family, *ctx))
        if flags.RST:
            self.tcp_flags.inc(("RST", family, *ctx))

    def _observe_dns(self, flow, ctx, src: _Endpoint, dst: _Endpoint, protocol: str, dropped: bool) -> None:
        dns = flow.l7.dns
        qtypes = ",".join(dns.qtypes)
        is_query = flow.l7.type == L7_REQUEST if flow.l7.type else not flow.is_reply.value
        if is_query:
            rcode = POLICY_DENIED_RCODE if dropped else ""
            self.dns_queries.inc((rcode, qtypes, "0", *ctx))
            if dst.is_coredns and not dropped:
                for qtype in dns.qtypes or ("A",):
                    self.coredns_requests.inc((COREDNS_SERVER, ".", "", protocol.lower() or "udp", "1", qtype))
            return
        rcode = POLICY_DENIED_RCODE if dropped else HUBBLE_RCODES.get(dns.rcode, str(dns.rcode))
        self.dns_responses.inc((rcode, qtypes, str(len(dns.ips)), *ctx))
        for rrtype in dns.rrtypes:
            self.dns_response_types.inc((rrtype, qtypes, *ctx))
        if src.is_coredns and not dropped:
            self._observe_coredns_answer(flow, dns)

    def _observe_coredns_answer(self, flow, dns) -> None:
        rcode = COREDNS_RCODES.get(dns.rcode, str(dns.rcode))
        latency = flow.l7.latency_ns / 1e9
        now = flow.time.seconds + flow.time.nanos / 1e9
        key = (dns.query.lower(), ",".join(dns.qtypes))
        cached = self._cache_expiry.get(key, -math.inf) > now
        external = not key[0].rstrip(".").endswith(CLUSTER_DOMAIN_SUFFIX)
        if cached:
            kind = "denial" if dns.rcode == 3 else "success"
            self.coredns_cache_hits.inc((COREDNS_SERVER, kind, ".", ""))
            plugin = "cache"
        else:
            self.coredns_cache_misses.inc((COREDNS_SERVER, ".", ""))
            if dns.rcode in (0, 3):  # CoreDNS caches answers and denials, not failures
                self._cache_expiry[key] = now + COREDNS_CACHE_TTL_S
            plugin = "forward" if external else "kubernetes"
            if external:
                self.coredns_forward.observe(("forward", COREDNS_UPSTREAM, rcode), latency)
        self.coredns_responses.inc((COREDNS_SERVER, ".", "", rcode, plugin))
        self.coredns_duration.observe((COREDNS_SERVER, ".", ""), latency)

    # --------------------------------------------------------------- output

    def render(self) -> str:
        """Everything observed so far in the Prometheus text format (families without samples left out)."""
        out: list[str] = []
        with self._lock:
            self._count_pending()
            for family in self._families:
                if family.values:
                    family.render(out)
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- the HTTP server


class MetricsServer:
    """A running /metrics endpoint. `url` is the full metrics URL; `stop()` shuts it down."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server, self._thread = server, thread
        host, port = server.server_address[:2]
        self.host, self.port = host, port
        self.address = f"{host}:{port}"
        self.url = f"http://{host}:{port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_metrics_server(exporter: MetricsExporter, host: str = "127.0.0.1", port: int = 9965) -> MetricsServer:
    """Serve `exporter` at http://host:port/metrics (port 0 picks a free one) from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if self.path.split("?", 1)[0] != "/metrics":
                self._reply(404, "text/plain; charset=utf-8", b"404 page not found: the metrics are at /metrics\n")
                return
            self._reply(200, CONTENT_TYPE, exporter.render().encode())

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # Prometheus scrapes every second; the cockpit's terminal is not a log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="kcockpit-metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)


def serve_simulator_metrics(simulator, host: str = "127.0.0.1", port: int = 9965) -> tuple[MetricsExporter, MetricsServer]:
    """Attach an exporter to a simulator (anything with `add_listener(callback)`) and serve it."""
    exporter = MetricsExporter()
    simulator.add_listener(exporter.observe)
    return exporter, start_metrics_server(exporter, host, port)
