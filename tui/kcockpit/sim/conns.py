"""The two ends of a simulated connection, shared by the traffic and DNS generators."""

from __future__ import annotations

from dataclasses import dataclass

from kcockpit.sim.world import Pod
from kcockpit.wire.hubble_pb import flow_pb


@dataclass(frozen=True, slots=True)
class Peer:
    """One end of a connection as a Cilium agent sees it."""

    key: str
    ip: str
    node: str  # node where this is a local endpoint (pods), "" for world/remote addresses
    is_pod: bool
    endpoint: flow_pb.Endpoint
    names: tuple[str, ...] = ()
    pod: Pod | None = None


@dataclass(slots=True)
class Conn:
    client: Peer
    server: Peer
    sport: int
    dport: int
    proto: str  # "TCP" or "UDP"
    service: tuple[str, str] | None  # (namespace, name) of the Service the client dialled
    requests_left: int
    policy: tuple  # (phase, egress, ingress) decided when opened; a phase change reopens it
