"""A Hubble Relay look-alike: the simulator's flows served over the real observer.Observer API.

`ObserverServer(simulator)` keeps one ring buffer per simulated node (Hubble's default 4095
events each), filled by a pump thread that advances the simulator on its clock, and
answers as Relay does:

- GetFlows: node_status first (NODE_CONNECTED, and NODE_UNAVAILABLE for nodes made
  unreachable with `set_node_available`), then each node's selection merged by time.
  Per node, as the agent's ring reader does: `first` reads from the oldest event; `follow`
  without number or since starts at new events; `since` skips older events; otherwise the
  reader seeks back `number` matching flows (so through Relay N is per node, as with a
  real Relay). `until` ends the stream, `number` caps the flows sent unless following.
  Whitelist/blacklist go through kcockpit.model.matcher.FlowMatcher (lost events pass every
  filter, as in Hubble); bad filters or field masks answer INVALID_ARGUMENT. A field mask
  keeps only the named Flow paths, as Hubble applies it (the CLI's default mask included).
- ServerStatus / GetNodes / GetNamespaces summed over the reachable rings, like Relay's
  aggregation; follow streams get a node_status event when a node goes or comes back.
- GetAgentEvents / GetDebugEvents: UNIMPLEMENTED (as Relay answers).
- peer.Peer/Notify: every node as PEER_ADDED, then the stream stays open (the simulated
  cluster never gains or loses a node), which is what `hubble watch peers` prints.
- grpc.health.v1 with service `hubble.server.Observer` SERVING.

Flows are stored serialized (GetFlowsResponse bytes) and sent as such: the handlers use
an identity serializer, so a stored flow is never encoded twice.
"""

from __future__ import annotations

import errno
import heapq
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent import futures

import grpc
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kcockpit.model.matcher import FilterError, FlowMatcher
from kcockpit.model.record import FlowRecord
from kcockpit.sim.traffic import EMITTER, Simulator
from kcockpit.wire.hubble_pb import GetFlowsResponse, flow_pb, observer_pb, peer_pb, relay_pb

HEALTH_SERVICE = "hubble.server.Observer"
DEFAULT_MAX_FLOWS = 4095  # Hubble's default ring size per agent (2^12 - 1)
PUMP_INTERVAL_S = 0.02
PUMP_CHUNK_FLOWS = 200  # flows generated between two GIL hand-overs
RATE_WINDOW_NS = 60 * 1_000_000_000

# One stored event: (time_ns, seq, serialized GetFlowsResponse, FlowRecord or None for lost
# events and node status notices, node name or "" for notices).
Entry = tuple[int, int, bytes, FlowRecord | None, str]


class _NodeRing:
    __slots__ = ("name", "address", "events", "seen", "seen_before")

    def __init__(self, name: str, address: str, capacity: int) -> None:
        self.name = name
        self.address = address
        self.events: deque[Entry] = deque(maxlen=capacity)
        self.seen = 0  # events stored since the simulated history began
        # Flows the agent saw between its start and the simulated history (None until set).
        self.seen_before: int | None = None


class RequestError(ValueError):
    """A GetFlowsRequest the server refuses (INVALID_ARGUMENT)."""


def _bytes(message: bytes) -> bytes:
    return message


class ObserverServer:
    """Serves `simulator` on a gRPC port; see the module docstring."""

    def __init__(
        self,
        simulator: Simulator,
        *,
        max_flows: int = DEFAULT_MAX_FLOWS,
        pump_interval_s: float = PUMP_INTERVAL_S,
        auto_pump: bool = True,
        max_workers: int = 32,
    ) -> None:
        if max_flows < 1:
            raise ValueError(f"max_flows must be at least 1, got {max_flows}")
        self.simulator = simulator
        self.clock = simulator.clock
        world = simulator.world
        self.version = EMITTER.version
        self._rings = {
            node.hubble_name: _NodeRing(node.hubble_name, f"{node.ip}:4244", max_flows) for node in world.nodes
        }
        self._node_names = [node.hubble_name for node in world.nodes]
        self.max_flows = max_flows
        # The newest events for followers, as many as the rings hold together (the same entry
        # objects, so little extra memory); a follower further behind is told what it lost.
        self._log: deque[Entry] = deque(maxlen=max_flows * len(self._rings))
        self._seq = 0
        self._unavailable: frozenset[str] = frozenset()
        self._cond = threading.Condition()
        self._closed = False
        self._pump_interval = pump_interval_s
        self._auto_pump = auto_pump
        self._max_workers = max_workers
        self._pump_thread: threading.Thread | None = None
        self._server: grpc.Server | None = None
        self._started_ns = self.clock.now_ns()
        self._agent_started_ns = min(self._started_ns, world.created_s * 1_000_000_000)
        # The agents have been up for days but the simulator only made the recent history:
        # their seen_flows count the time before it too, at the rate the history shows.
        self._history_start_ns = max(self._agent_started_ns, min(self._started_ns, simulator.start_ns))
        self.address = ""

    # ---- lifecycle ------------------------------------------------------------------

    def start(self, listen: str = "127.0.0.1:0") -> str:
        """Bind and serve; returns the bound "host:port". OSError when the address is unusable."""
        host, _, port_text = listen.rpartition(":")
        if not host or not (port_text.isascii() and port_text.isdigit()):  # isdigit alone takes "²"
            raise ValueError(f"listen address {listen!r} is not HOST:PORT (e.g. 127.0.0.1:4245)")
        _check_free(host, int(port_text), listen)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="kcockpit-observer"),
            options=[("grpc.so_reuseport", 0)],
        )
        server.add_generic_rpc_handlers((self._handlers(), self._peer_handlers()))
        health_servicer = health.HealthServicer()
        health_servicer.set(HEALTH_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        try:
            port = server.add_insecure_port(listen)
        except RuntimeError as error:  # grpc reports a taken port this way
            raise OSError(f"cannot listen on {listen}: {error}") from None
        if port == 0:
            raise OSError(f"cannot listen on {listen}: address in use or not available")
        server.start()
        self._server = server
        self.address = f"{host}:{port}"
        self.pump()
        if self._auto_pump:
            self._pump_thread = threading.Thread(target=self._pump_loop, name="kcockpit-sim-pump", daemon=True)
            self._pump_thread.start()
        return self.address

    def stop(self, grace: float = 0.5) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.stop(grace).wait(grace + 2)
            self._server = None
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=2)
            self._pump_thread = None

    def __enter__(self) -> ObserverServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- ingest ---------------------------------------------------------------------

    def _pump_loop(self) -> None:
        while not self._closed:
            started = time.monotonic()
            # Small steps of simulated time, giving the GIL away between them: a long
            # CPU-bound batch would make every streaming thread wait for it.
            target = self.clock.now_ns()
            step = max(1_000_000, int(PUMP_CHUNK_FLOWS / self.simulator.rate * 1e9))
            t = self.simulator.now_ns
            while t < target and not self._closed:
                t = min(target, t + step)
                self.pump(t)
                time.sleep(0)
            self.simulator.scenario.phase  # noqa: B018 - reading it tells the scenario's listeners of a change
            time.sleep(max(0.0, self._pump_interval - (time.monotonic() - started)))

    def pump(self, now_ns: int | None = None) -> int:
        """Advance the simulator (to the clock's now by default) and store what it emitted."""
        timed = self.simulator.advance_timed(now_ns)
        if not timed:
            return 0
        entries: list[tuple[_NodeRing, Entry]] = []
        rings = self._rings
        for time_ns, response in timed:
            raw = response.SerializeToString()
            ring = rings.get(response.node_name)
            if ring is None:
                continue
            kind = response.WhichOneof("response_types")
            record = FlowRecord(raw, time_ns, response.flow.verdict, response.node_name) if kind == "flow" else None
            entries.append((ring, (time_ns, 0, raw, record, ring.name)))
        with self._cond:
            for ring, (time_ns, _, raw, record, node) in entries:
                self._seq += 1
                entry = (time_ns, self._seq, raw, record, node)
                ring.events.append(entry)
                ring.seen += 1
                self._log.append(entry)
            self._cond.notify_all()
        return len(entries)

    # ---- gRPC plumbing --------------------------------------------------------------

    def _handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "observer.Observer",
            {
                "GetFlows": grpc.unary_stream_rpc_method_handler(
                    self._get_flows, request_deserializer=observer_pb.GetFlowsRequest.FromString, response_serializer=_bytes
                ),
                "ServerStatus": grpc.unary_unary_rpc_method_handler(
                    self._server_status,
                    request_deserializer=observer_pb.ServerStatusRequest.FromString,
                    response_serializer=observer_pb.ServerStatusResponse.SerializeToString,
                ),
                "GetNodes": grpc.unary_unary_rpc_method_handler(
                    self._get_nodes,
                    request_deserializer=observer_pb.GetNodesRequest.FromString,
                    response_serializer=observer_pb.GetNodesResponse.SerializeToString,
                ),
                "GetNamespaces": grpc.unary_unary_rpc_method_handler(
                    self._get_namespaces,
                    request_deserializer=observer_pb.GetNamespacesRequest.FromString,
                    response_serializer=observer_pb.GetNamespacesResponse.SerializeToString,
                ),
                "GetAgentEvents": grpc.unary_stream_rpc_method_handler(
                    self._unimplemented("GetAgentEvents"),
                    request_deserializer=observer_pb.GetAgentEventsRequest.FromString,
                    response_serializer=_bytes,
                ),
                "GetDebugEvents": grpc.unary_stream_rpc_method_handler(
                    self._unimplemented("GetDebugEvents"),
                    request_deserializer=observer_pb.GetDebugEventsRequest.FromString,
                    response_serializer=_bytes,
                ),
            },
        )

    def _peer_handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "peer.Peer",
            {
                "Notify": grpc.unary_stream_rpc_method_handler(
                    self._notify_peers,
                    request_deserializer=peer_pb.NotifyRequest.FromString,
                    response_serializer=peer_pb.ChangeNotification.SerializeToString,
                ),
            },
        )

    def peers(self) -> list[peer_pb.ChangeNotification]:
        """The cluster's Hubble peers, one PEER_ADDED per node, as the peer service announces them."""
        return [
            peer_pb.ChangeNotification(
                name=ring.name,
                address=ring.address,
                type=peer_pb.PEER_ADDED,
                tls=peer_pb.TLS(server_name=_tls_server_name(ring.name)),
            )
            for ring in self._rings.values()
        ]

    def _notify_peers(self, request: peer_pb.NotifyRequest, context) -> Iterator[peer_pb.ChangeNotification]:
        yield from self.peers()
        # No node ever joins or leaves: hold the stream open, as the peer service does,
        # until the client goes or the server stops.
        while context.is_active():
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(timeout=0.5)

    @staticmethod
    def _unimplemented(name: str):
        def handler(request, context):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} not yet implemented")
            yield b""  # pragma: no cover - abort raises

        return handler

    # ---- GetFlows -------------------------------------------------------------------

    def _get_flows(self, request: observer_pb.GetFlowsRequest, context) -> Iterator[bytes]:
        try:
            plan = _Plan(request)
        except RequestError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        with self._cond:
            snapshot = [list(ring.events) for ring in self._rings.values() if ring.name not in self._unavailable]
            last_seq = self._seq
            connected = [n for n in self._node_names if n not in self._unavailable]
            unavailable = [n for n in self._node_names if n in self._unavailable]
        if connected:
            yield self._node_status(relay_pb.NODE_CONNECTED, connected)
        if unavailable:
            yield self._node_status(relay_pb.NODE_UNAVAILABLE, unavailable)
        for entry in heapq.merge(*(plan.select(events) for events in snapshot)):
            if plan.past_until(entry[0]):
                return
            yield plan.render(entry)
        if not request.follow:
            return
        yield from self._follow(plan, last_seq, context)

    def _follow(self, plan: _Plan, last_seq: int, context) -> Iterator[bytes]:
        while context.is_active():
            with self._cond:
                if self._closed:
                    return
                if self._seq == last_seq:
                    self._cond.wait(timeout=0.5)
                    continue
                log = self._log
                new = []
                for entry in reversed(log):
                    if entry[1] <= last_seq:
                        break
                    new.append(entry)
                missed = (new[-1][1] - last_seq - 1) if new else 0
                last_seq = self._seq
            if missed > 0:
                yield self._lost(missed)
            unavailable = self._unavailable
            for entry in reversed(new):
                if plan.past_until(entry[0]):
                    return
                if entry[4] not in unavailable and plan.passes(entry):
                    yield plan.render(entry)

    def _node_status(self, state: int, names: list[str], message: str = "") -> bytes:
        response = GetFlowsResponse(
            node_status=relay_pb.NodeStatusEvent(state_change=state, node_names=names, message=message)
        )
        response.time.FromNanoseconds(self.clock.now_ns())
        return response.SerializeToString()

    def set_node_available(self, node: str, available: bool) -> None:
        """Make Relay lose (or regain) its connection to one node's agent.

        While unavailable the node's flows are left out of every answer and ServerStatus
        counts it in num_unavailable_nodes; open follow streams get a node_status event.
        The agent keeps recording, so its ring is there again once it is back.
        """
        name = node if "/" in node else f"{self.simulator.world.cluster_name}/{node}"
        if name not in self._rings:
            raise ValueError(f"unknown node {node!r}: expected one of {', '.join(self._node_names)}")
        state = relay_pb.NODE_CONNECTED if available else relay_pb.NODE_UNAVAILABLE
        message = "" if available else f"connection to {self._rings[name].address} lost"
        with self._cond:
            if available == (name not in self._unavailable):
                return
            changed = set(self._unavailable)
            (changed.discard if available else changed.add)(name)
            self._unavailable = frozenset(changed)
            self._seq += 1
            self._log.append((self.clock.now_ns(), self._seq, self._node_status(state, [name], message), None, ""))
            self._cond.notify_all()

    def _lost(self, count: int) -> bytes:
        response = GetFlowsResponse(
            lost_events=flow_pb.LostEvent(source=flow_pb.HUBBLE_RING_BUFFER, num_events_lost=count)
        )
        response.time.FromNanoseconds(self.clock.now_ns())
        return response.SerializeToString()

    # ---- status ---------------------------------------------------------------------

    def _settle_seen_before(self) -> None:
        """Give every ring its flows from before the simulated history, once (caller holds the lock).

        As a real agent's counter: seen_flows / uptime is the node's flow rate. Each node is
        given its own rate over the simulated history so far times the time from agent
        start to the history's start; with too little history to measure (under 10 s or 100
        events), the simulator's nominal rate split evenly. Fixed once given, so
        seen_flows never goes down.
        """
        rings = list(self._rings.values())
        if rings[0].seen_before is not None:
            return
        gap_s = max(0, self._history_start_ns - self._agent_started_ns) / 1e9
        span_s = (self.simulator.now_ns - self._history_start_ns) / 1e9
        seen = sum(ring.seen for ring in rings)
        for ring in rings:
            if span_s >= 10 and seen >= 100:
                ring.seen_before = round(ring.seen / span_s * gap_s)
            else:
                ring.seen_before = round(self.simulator.rate / len(rings) * gap_s)

    def _node_stats(self, ring: _NodeRing, now: int) -> tuple[int, int, float]:
        """(num_flows, seen_flows, flows per second over the last minute) for one node."""
        self._settle_seen_before()
        # As Hubble does: flows in the last minute, or over the span the ring still holds.
        events = ring.events
        recent, oldest = 0, now
        horizon = now - RATE_WINDOW_NS
        for entry in reversed(events):
            if entry[0] < horizon:
                oldest = horizon
                break
            if entry[3] is not None and entry[0] <= now:
                recent += 1
                oldest = entry[0]
        seen = ring.seen + (ring.seen_before or 0)
        return len(events), seen, recent / (max(1, now - oldest) / 1e9) if recent > 1 else 0.0

    def _server_status(self, request, context) -> observer_pb.ServerStatusResponse:
        now = self.clock.now_ns()
        response = observer_pb.ServerStatusResponse(version=self.version, uptime_ns=max(0, now - self._agent_started_ns))
        with self._cond:
            for ring in self._rings.values():
                if ring.name in self._unavailable:
                    response.unavailable_nodes.append(ring.name)
                    continue
                num, seen, rate = self._node_stats(ring, now)
                response.num_flows += num
                response.seen_flows += seen
                response.max_flows += self.max_flows
                response.flows_rate += rate
        response.num_connected_nodes.value = len(self._rings) - len(response.unavailable_nodes)
        response.num_unavailable_nodes.value = len(response.unavailable_nodes)
        return response

    def _get_nodes(self, request, context) -> observer_pb.GetNodesResponse:
        now = self.clock.now_ns()
        response = observer_pb.GetNodesResponse()
        with self._cond:
            for ring in self._rings.values():
                node = response.nodes.add(
                    name=ring.name,
                    address=ring.address,
                    state=relay_pb.NODE_CONNECTED,
                    tls=observer_pb.TLS(enabled=True, server_name=_tls_server_name(ring.name)),
                )
                if ring.name in self._unavailable:
                    node.state = relay_pb.NODE_UNAVAILABLE  # Relay cannot ask it for its status
                    continue
                num, seen, _ = self._node_stats(ring, now)
                node.version = self.version
                node.uptime_ns = max(0, now - self._agent_started_ns)
                node.num_flows, node.max_flows, node.seen_flows = num, self.max_flows, seen
        return response

    def _get_namespaces(self, request, context) -> observer_pb.GetNamespacesResponse:
        cluster = self.simulator.world.cluster_name
        names = sorted(self.simulator.namespaces_seen)
        return observer_pb.GetNamespacesResponse(
            namespaces=[observer_pb.Namespace(cluster=cluster, namespace=n) for n in names]
        )


def _tls_server_name(node: str) -> str:
    """The name an agent's Hubble certificate is issued for ("cluster/node" in, as Cilium names it)."""
    cluster, _, node_name = node.partition("/")
    return f"{node_name}.{cluster}.hubble-grpc.cilium.io"


def _check_free(host: str, port: int, listen: str) -> None:
    """Fail early with a plain message (grpc would log its own bind error to stderr first)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As grpc binds: SO_REUSEADDR lets a restart reuse a port whose old connections sit
        # in TIME_WAIT, while a port someone is listening on is still refused.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as error:
            reason = "address already in use" if error.errno == errno.EADDRINUSE else error.strerror
            raise OSError(f"cannot listen on {listen}: {reason}") from None


class _Plan:
    """One GetFlowsRequest compiled: which stored events to send and how to render them."""

    def __init__(self, request: observer_pb.GetFlowsRequest) -> None:
        if request.first and request.follow:
            raise RequestError("first cannot be combined with follow")
        try:
            self.matcher = FlowMatcher(request.whitelist, request.blacklist)
        except FilterError as error:
            raise RequestError(f"invalid flow filter: {error}") from None
        self.request = request
        self.number = request.number
        self.first = request.first
        self.follow = request.follow
        self.since = request.since.ToNanoseconds() if request.HasField("since") else None
        self.until = request.until.ToNanoseconds() if request.HasField("until") else None
        self.mask = None
        if request.HasField("field_mask") and request.field_mask.paths:
            mask = field_mask_pb2.FieldMask(paths=request.field_mask.paths)
            if not mask.IsValidForDescriptor(flow_pb.Flow.DESCRIPTOR):
                raise RequestError(f"invalid field mask {list(mask.paths)}: not paths of flow.Flow")
            self.mask = mask

    def passes(self, entry: Entry) -> bool:
        time_ns, record = entry[0], entry[3]
        if self.since is not None and time_ns < self.since:
            return False
        if record is None:
            return True  # lost events and node status are not filtered
        return self.matcher.matches_everything or self.matcher.matches_record(record)

    def past_until(self, time_ns: int) -> bool:
        return self.until is not None and time_ns > self.until

    def select(self, events: list[Entry]) -> list[Entry]:
        """The history one node's ring reader sends, oldest first (before until/follow)."""
        if self.first and self.since is None:
            start = 0
        elif self.follow and not self.number and self.since is None:
            return []
        elif self.since is not None:
            start = len(events)
            while start > 0 and events[start - 1][0] >= self.since:
                start -= 1
        else:
            start, found = len(events), 0
            while start > 0 and (not self.number or found < self.number):
                start -= 1
                entry = events[start]
                if entry[3] is not None and self.passes(entry):
                    found += 1
        out, flows = [], 0
        for entry in events[start:]:
            if not self.follow and self.number and flows >= self.number:
                break
            if self.passes(entry):
                out.append(entry)
                flows += entry[3] is not None
        return out

    def render(self, entry: Entry) -> bytes:
        raw, record = entry[2], entry[3]
        if self.mask is None or record is None:
            return raw
        response = GetFlowsResponse.FromString(raw)
        masked = flow_pb.Flow()
        self.mask.MergeMessage(response.flow, masked)
        response.flow.CopyFrom(masked)
        return response.SerializeToString()
