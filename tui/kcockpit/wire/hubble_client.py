"""Async client for the Hubble Observer API (a Relay or one agent's Hubble server).

For status calls and simple, low-rate flow reads from the asyncio app:

    client = HubbleClient(connection)
    status = await client.server_status()
    async for response in client.get_flows(number=100):   # GetFlowsResponse messages
        ...
    await client.close()

Every failure is raised as `HubbleError`, whose str() is one line naming the address.
The grpc.aio stream tops out near 18k messages/s; the live flow view uses
`kcockpit.sources.hubble.FlowStream`, which reads on a thread, instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import datetime

import grpc
import grpc.aio
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kcockpit.wire.connection import HubbleConnection, HubbleError
from kcockpit.wire.errors import describe_rpc_error
from kcockpit.wire.hubble_pb import FlowFilter, GetFlowsRequest, GetFlowsResponse, observer_grpc, observer_pb

__all__ = ["HubbleClient", "HubbleError", "HEALTH_SERVICE", "GET_FLOWS_METHOD", "flows_request", "to_timestamp"]

HEALTH_SERVICE = "hubble.server.Observer"
GET_FLOWS_METHOD = "/observer.Observer/GetFlows"

TimeLike = datetime | int | Timestamp  # int: nanoseconds since the epoch


def to_timestamp(value: TimeLike) -> Timestamp:
    """A protobuf Timestamp from a datetime (naive means UTC), epoch nanoseconds or a Timestamp."""
    if isinstance(value, Timestamp):
        return value
    stamp = Timestamp()
    if isinstance(value, datetime):
        stamp.FromDatetime(value)
    elif isinstance(value, int):
        stamp.FromNanoseconds(value)
    else:
        raise TypeError(f"expected a datetime, epoch nanoseconds or Timestamp, got {type(value).__name__}")
    return stamp


def flows_request(
    *,
    number: int | None = None,
    first: bool = False,
    follow: bool = False,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    whitelist: Iterable[FlowFilter] = (),
    blacklist: Iterable[FlowFilter] = (),
) -> GetFlowsRequest:
    """A GetFlowsRequest with the hubble CLI's meanings: number = last N (first N with first)."""
    request = GetFlowsRequest(follow=follow, first=first, whitelist=list(whitelist), blacklist=list(blacklist))
    if number is not None:
        if number < 0:
            raise ValueError(f"number of flows must not be negative, got {number}")
        request.number = number
    if since is not None:
        request.since.CopyFrom(to_timestamp(since))
    if until is not None:
        request.until.CopyFrom(to_timestamp(until))
    return request


class HubbleClient:
    """Async Observer client over one lazily created grpc.aio channel. Use as an async context
    manager or call `close()`."""

    def __init__(self, connection: HubbleConnection) -> None:
        self.connection = connection
        self._channel: grpc.aio.Channel | None = None
        self._lock = asyncio.Lock()

    @property
    def address(self) -> str:
        return self.connection.server

    async def __aenter__(self) -> HubbleClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def _get_channel(self) -> grpc.aio.Channel:
        async with self._lock:
            if self._channel is None:
                if self.connection.tls_allow_insecure:
                    # Fetching the server's certificate is blocking network I/O; the aio
                    # channel itself must be made on the loop's thread.
                    await asyncio.to_thread(self.connection.presented_certificate)
                self._channel = self.connection.aio_channel()
            return self._channel

    async def _ready_channel(self) -> grpc.aio.Channel:
        """The channel once it is connected, or failed (the call then reports why); like the
        CLI's --timeout, give up on a server that does not complete the connection."""
        channel = await self._get_channel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connection.timeout
        settled = (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE,
                   grpc.ChannelConnectivity.SHUTDOWN)
        state = channel.get_state(try_to_connect=True)
        while state not in settled:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise HubbleError(
                    f"Hubble server {self.address}: no connection within {self.connection.timeout:g}s",
                    address=self.address,
                    code=grpc.StatusCode.DEADLINE_EXCEEDED,
                )
            try:
                await asyncio.wait_for(channel.wait_for_state_change(state), remaining)
            except asyncio.TimeoutError:
                pass
            state = channel.get_state()
        return channel

    async def _unary(self, method: str, call) -> object:
        timeout = self.connection.request_timeout
        try:
            return await call(timeout)
        except grpc.RpcError as error:
            raise describe_rpc_error(error, self.address, method, timeout) from None

    async def server_status(self) -> observer_pb.ServerStatusResponse:
        """ServerStatus: flows in the buffer, capacity, seen, uptime, nodes, version, rate."""
        stub = observer_grpc.ObserverStub(await self._ready_channel())
        request = observer_pb.ServerStatusRequest()
        return await self._unary("ServerStatus", lambda t: stub.ServerStatus(request, timeout=t))

    async def get_nodes(self) -> list[observer_pb.Node]:
        """GetNodes: one entry per node Relay knows (UNIMPLEMENTED on a single agent)."""
        stub = observer_grpc.ObserverStub(await self._ready_channel())
        request = observer_pb.GetNodesRequest()
        response = await self._unary("GetNodes", lambda t: stub.GetNodes(request, timeout=t))
        return list(response.nodes)

    async def get_namespaces(self) -> list[observer_pb.Namespace]:
        """GetNamespaces: the namespaces that recently had flows."""
        stub = observer_grpc.ObserverStub(await self._ready_channel())
        request = observer_pb.GetNamespacesRequest()
        response = await self._unary("GetNamespaces", lambda t: stub.GetNamespaces(request, timeout=t))
        return list(response.namespaces)

    async def health(self) -> str:
        """grpc.health.v1 Check for hubble.server.Observer; returns the status name ("SERVING", ...)."""
        stub = health_pb2_grpc.HealthStub(await self._ready_channel())
        request = health_pb2.HealthCheckRequest(service=HEALTH_SERVICE)
        response = await self._unary("grpc.health.v1.Health/Check", lambda t: stub.Check(request, timeout=t))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    async def get_flows(self, request: GetFlowsRequest | None = None, **fields) -> AsyncIterator[GetFlowsResponse]:
        """Stream GetFlowsResponse messages (flow, node_status or lost_events: check
        `response.WhichOneof("response_types")`). Pass a ready request, or the keyword fields of
        `flows_request` (number, first, follow, since, until, whitelist, blacklist).
        Breaking out of the loop cancels the call."""
        if request is None:
            request = flows_request(**fields)
        stub = observer_grpc.ObserverStub(await self._ready_channel())
        call = stub.GetFlows(request)
        try:
            async for response in call:
                yield response
        except grpc.RpcError as error:
            raise describe_rpc_error(error, self.address, "GetFlows") from None
        finally:
            call.cancel()
