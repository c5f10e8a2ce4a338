"""DemoCluster: the whole simulated cluster (world, scenario, flows, Observer API) in-process.

`kcockpit --demo` and `kcockpit demo-server` both use it:

    cluster = DemoCluster(seed=1, rate=200.0, scenario="auto")
    address = cluster.start()          # "127.0.0.1:PORT", served from background threads
    cluster.scenario.set_phase("broken")
    cluster.stop()

`start()` returns once the port is bound and the backfilled history (default 30 s of
traffic, so `--last N` has answers at once) is in the rings; everything else runs in
daemon threads, so it never blocks an asyncio loop for long. `world`, `scenario`,
`simulator` and `server` stay reachable for the other demo services, which the cluster
can also run itself on free loopback ports and stops with it:

    metrics_url = cluster.serve_metrics()      # Hubble + CoreDNS /metrics from the same flows
    kubeconfig = cluster.serve_kube_api()      # the Kubernetes API, following the scenario phase

Scenario listeners (`cluster.scenario.add_listener`) are called from the pump thread when
the phase changes on its timer, and from the caller's thread on `set_phase`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from kcockpit.sim.clock import Clock, SystemClock
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.server import DEFAULT_MAX_FLOWS, ObserverServer
from kcockpit.sim.traffic import DEFAULT_RATE, Simulator
from kcockpit.sim.world import World

DEFAULT_BACKFILL_S = 30.0
CLUSTER_AGE_S = 3 * 24 * 3600  # the simulated cluster was created three days before it starts


class DemoCluster:
    def __init__(
        self,
        seed: int = 1,
        clock: Clock | None = None,
        rate: float = DEFAULT_RATE,
        scenario: str = "auto",
        durations_s: dict[str, float] | None = None,
        loop: bool = True,
        backfill_s: float = DEFAULT_BACKFILL_S,
        max_flows: int = DEFAULT_MAX_FLOWS,
    ) -> None:
        if backfill_s < 0:
            raise ValueError(f"backfill must be 0 seconds or more, got {backfill_s}")
        self.clock = clock or SystemClock()
        now = self.clock.now_ns()
        start = now - int(backfill_s * 1_000_000_000)
        self.world = World.build(seed, created_s=now // 1_000_000_000 - CLUSTER_AGE_S)
        # The story starts now; the backfilled history before it is healthy traffic.
        self.scenario = Scenario(self.clock, mode=scenario, durations_s=durations_s, loop=loop, start_ns=now)
        self.simulator = Simulator(self.world, seed=seed, clock=self.clock, scenario=self.scenario, rate=rate, start_ns=start)
        self.server = ObserverServer(self.simulator, max_flows=max_flows)
        self.address = ""
        self.metrics = None  # MetricsServer once serve_metrics() ran
        self.kube_api = None  # KubeApiServer once serve_kube_api() ran
        self.kubeconfig: Path | None = None
        self._kubeconfig_dir: str | None = None

    def start(self, listen: str = "127.0.0.1:0") -> str:
        """Serve the Observer API; returns "host:port" (a free port unless listen names one)."""
        self.address = self.server.start(listen)
        return self.address

    def serve_metrics(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the simulator's Hubble and CoreDNS metrics; returns the /metrics URL."""
        from kcockpit.sim.metrics import serve_simulator_metrics

        if self.metrics is None:
            _, self.metrics = serve_simulator_metrics(self.simulator, host, port)
        return self.metrics.url

    def serve_kube_api(self, host: str = "127.0.0.1", port: int = 0) -> Path:
        """Serve the world's Kubernetes objects, switching policies with the scenario phase;
        returns a kubeconfig for it in a temporary folder that stop() removes."""
        from kcockpit.sim.kube_api import start_kube_api, write_kubeconfig

        if self.kube_api is None:
            self.kube_api = start_kube_api(self.world, host, port, phase=self.scenario.phase, cilium=True)
            self.kube_api.follow(self.scenario)
            self._kubeconfig_dir = tempfile.mkdtemp(prefix="kcockpit-demo-")
            self.kubeconfig = write_kubeconfig(Path(self._kubeconfig_dir) / "kubeconfig", self.kube_api.url)
        assert self.kubeconfig is not None
        return self.kubeconfig

    def stop(self) -> None:
        if self.kube_api is not None:
            self.kube_api.close()
        if self.metrics is not None:
            self.metrics.stop()
        if self._kubeconfig_dir is not None:
            shutil.rmtree(self._kubeconfig_dir, ignore_errors=True)
            self._kubeconfig_dir = None
        self.server.stop()

    def set_node_available(self, node: str, available: bool) -> None:
        """Make the Relay look-alike lose (or regain) one node, e.g. "kind-worker2"."""
        self.server.set_node_available(node, available)

    def __enter__(self) -> DemoCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
