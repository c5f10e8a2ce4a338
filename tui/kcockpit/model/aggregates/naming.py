"""How the aggregates name an endpoint: one rule for every tab, the report and its JSON.

- in the cluster: `namespace/workload` (the first of the endpoint's workloads), else
  `namespace/pod`;
- a reserved identity: its name (`world`, `host`, `remote-node`, `kube-apiserver`, ...);
- world: `world`, with the first DNS name Hubble knows for the IP as extra detail
  (`world` + `api.stripe.com`), so that external destinations stay apart.
"""

from __future__ import annotations

from typing import NamedTuple

from kcockpit.model.record import RESERVED_IDENTITIES

# world-ipv4 and world-ipv6 (newer Cilium), and CIDR identities (local scope, 2^24 and up),
# are all outside the cluster.
_WORLD_IDENTITIES = frozenset({2, 9, 10})
_LOCAL_IDENTITY_SCOPE = 1 << 24


class Endpoint(NamedTuple):
    """A named endpoint: `name` is the unit aggregated on, `detail` sets world peers apart.
    A tuple, so that keys made of endpoints hash at C speed on the ingest path."""

    name: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.name} {self.detail}" if self.detail else self.name

    @property
    def namespace(self) -> str:
        """The namespace of an in-cluster endpoint, "" otherwise."""
        namespace, slash, _ = self.name.partition("/")
        return namespace if slash else ""

    @property
    def short(self) -> str:
        """The name without its namespace (`frontend`), or the reserved/world name."""
        return self.name.rpartition("/")[2]

    @property
    def in_cluster(self) -> bool:
        return "/" in self.name


OTHER = Endpoint("(other)")


def own_name(namespace: str, workload: str, pod: str, identity: int) -> Endpoint | None:
    """The Endpoint when the endpoint's own fields name it (in the cluster, or a reserved
    identity); None when the flow's DNS name or IP takes part (world and the rest)."""
    if namespace and (workload or pod):
        return Endpoint(f"{namespace}/{workload or pod}")
    if identity in _WORLD_IDENTITIES or identity >= _LOCAL_IDENTITY_SCOPE:
        return None
    reserved = RESERVED_IDENTITIES.get(identity)
    return Endpoint(reserved) if reserved else None


def name_endpoint(namespace: str, workload: str, pod: str, identity: int, dns_name: str, ip: str) -> Endpoint:
    """The Endpoint for one side of a flow (see the module docstring)."""
    own = own_name(namespace, workload, pod, identity)
    if own is not None:
        return own
    if identity in _WORLD_IDENTITIES or identity >= _LOCAL_IDENTITY_SCOPE:
        return Endpoint("world", dns_name)
    if dns_name:
        return Endpoint("world", dns_name)
    if pod:
        return Endpoint(pod)
    return Endpoint(ip or "unknown")
