"""One import point for the generated Hubble messages, so callers never touch pb paths."""

from kcockpit.wire.pb.flow import flow_pb2 as flow_pb
from kcockpit.wire.pb.observer import observer_pb2 as observer_pb
from kcockpit.wire.pb.observer import observer_pb2_grpc as observer_grpc
from kcockpit.wire.pb.peer import peer_pb2 as peer_pb
from kcockpit.wire.pb.relay import relay_pb2 as relay_pb

Flow = flow_pb.Flow
FlowFilter = flow_pb.FlowFilter
GetFlowsRequest = observer_pb.GetFlowsRequest
GetFlowsResponse = observer_pb.GetFlowsResponse

__all__ = [
    "flow_pb",
    "observer_pb",
    "observer_grpc",
    "relay_pb",
    "peer_pb",
    "Flow",
    "FlowFilter",
    "GetFlowsRequest",
    "GetFlowsResponse",
]
