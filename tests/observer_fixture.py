"""A tiny, real-gRPC Observer server for the client tests: a list of flows the test controls.

It implements just enough of GetFlows (number, first, follow, since, until, and whitelist /
blacklist on verdict only) to exercise the client over loopback; the simulator has the full
semantics. Tests push flows, node status and lost events with `publish` while a follow stream
is open, and restart the server on the same port to test reconnects.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kcockpit.wire.hubble_pb import GetFlowsResponse, flow_pb, observer_grpc, observer_pb, relay_pb

BASE_NS = 1_700_000_000 * 1_000_000_000


def make_flow_response(index: int, *, time_ns: int | None = None, node: str = "node-a",
                       verdict: int = flow_pb.FORWARDED) -> GetFlowsResponse:
    """A distinct flow: time BASE + index ms unless given, uuid f-<index>."""
    flow = flow_pb.Flow(
        uuid=f"f-{index}",
        verdict=verdict,
        node_name=node,
        Type=flow_pb.L3_L4,
        source=flow_pb.Endpoint(namespace="default", pod_name=f"client-{index % 3}", identity=1000 + index % 3),
        destination=flow_pb.Endpoint(namespace="default", pod_name="server-0", identity=2000),
        IP=flow_pb.IP(source="10.0.0.1", destination="10.0.0.2", ipVersion=flow_pb.IPv4),
        l4=flow_pb.Layer4(TCP=flow_pb.TCP(source_port=40000 + index % 1000, destination_port=8080)),
        Summary="TCP Flags: ACK",
    )
    flow.time.FromNanoseconds(time_ns if time_ns is not None else BASE_NS + index * 1_000_000)
    return GetFlowsResponse(flow=flow, node_name=node, time=flow.time)


def node_status_response(state: int, *names: str, message: str = "") -> GetFlowsResponse:
    response = GetFlowsResponse(
        node_status=relay_pb.NodeStatusEvent(state_change=state, node_names=list(names), message=message)
    )
    response.time.FromNanoseconds(BASE_NS)
    return response


def lost_events_response(count: int, time_ns: int = BASE_NS) -> GetFlowsResponse:
    response = GetFlowsResponse(
        lost_events=flow_pb.LostEvent(source=flow_pb.PERF_EVENT_RING_BUFFER, num_events_lost=count)
    )
    response.time.FromNanoseconds(time_ns)
    return response


def _matches(response: GetFlowsResponse, filters) -> bool:
    return any(not f.verdict or response.flow.verdict in f.verdict for f in filters)


@dataclass
class ObserverServicer(observer_grpc.ObserverServicer):
    responses: list[GetFlowsResponse] = field(default_factory=list)
    requests: list[observer_pb.GetFlowsRequest] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False

    def publish(self, *responses: GetFlowsResponse) -> None:
        with self.changed:
            self.responses.extend(responses)
            self.changed.notify_all()

    def _selected(self, request, start: int) -> tuple[list[GetFlowsResponse], int, bool]:
        """Responses from `start` the request selects, the next position, and whether one was
        past `until` (where Hubble ends even a follow stream)."""
        with self.changed:
            batch = self.responses[start:]
            end = len(self.responses)
        out = []
        past_until = False
        for response in batch:
            t = response.time.ToNanoseconds()
            if request.HasField("since") and t < request.since.ToNanoseconds():
                continue
            if request.HasField("until") and t > request.until.ToNanoseconds():
                past_until = True
                continue
            if response.HasField("flow"):
                if request.whitelist and not _matches(response, request.whitelist):
                    continue
                if request.blacklist and _matches(response, request.blacklist):
                    continue
            out.append(response)
        return out, end, past_until

    def GetFlows(self, request, context):
        self.requests.append(request)
        if request.first and request.follow:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first cannot be specified with follow")
        selected, position, past_until = self._selected(request, 0)
        if request.number:
            selected = selected[: request.number] if request.first else selected[-request.number:]
        yield from selected
        while request.follow and not past_until and context.is_active() and not self.closed:
            with self.changed:
                self.changed.wait_for(lambda: len(self.responses) > position or self.closed, timeout=0.05)
            new, position, past_until = self._selected(request, position)
            yield from new

    def ServerStatus(self, request, context):
        flows = sum(1 for r in self.responses if r.HasField("flow"))
        response = observer_pb.ServerStatusResponse(num_flows=flows, max_flows=4095, seen_flows=flows, version="fixture")
        response.num_connected_nodes.value = 1
        return response

    def GetNodes(self, request, context):
        return observer_pb.GetNodesResponse(nodes=[observer_pb.Node(name="node-a", state=relay_pb.NODE_CONNECTED)])

    def GetNamespaces(self, request, context):
        return observer_pb.GetNamespacesResponse(namespaces=[observer_pb.Namespace(namespace="default")])


class FixtureServer:
    """A grpc server on 127.0.0.1 serving ObserverServicer (and health); restartable on its port."""

    def __init__(self, servicer: ObserverServicer | None = None, *, credentials=None, port: int = 0) -> None:
        self.servicer = servicer or ObserverServicer()
        self.credentials = credentials
        self.port = port
        self._server: grpc.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FixtureServer:
        self.servicer.closed = False
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        observer_grpc.add_ObserverServicer_to_server(self.servicer, server)
        health_servicer = health.HealthServicer()
        health_servicer.set("hubble.server.Observer", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        target = f"127.0.0.1:{self.port}"
        if self.credentials is None:
            self.port = server.add_insecure_port(target)
        else:
            self.port = server.add_secure_port(target, self.credentials)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        with self.servicer.changed:
            self.servicer.closed = True
            self.servicer.changed.notify_all()
        if self._server is not None:
            self._server.stop(grace=None).wait(2)
            self._server = None
