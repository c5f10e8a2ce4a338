"""Where the cockpit's flows come from: a Hubble server, the embedded demo cluster, or a file.

A session owns the FlowStore and whatever fills it, and answers the status bar's questions
(connection state, nodes) and the namespace picker's. The app never sees gRPC: it calls
these methods and reads the store. `integrations` (policy data, Prometheus) travel with
the session and start and stop with it, and so does the `feed` that counts every flow into
the aggregates the Services, DNS and Policies tabs read (see application.aggregation).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial

from kcockpit.application.aggregation import AggregateFeed, RecordsFeed, StreamFeed
from kcockpit.model.aggregates import FlowAggregates
from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import CaptureResult, load_capture
from kcockpit.sources.hubble import FlowStream, StreamStatus
from kcockpit.application.integrations import Integrations, PolicyFeed, PrometheusFeed, kubeconfig_feed
from kcockpit.wire.connection import HubbleConnection, HubbleError
from kcockpit.wire.hubble_client import HubbleClient, to_timestamp

HISTORY_FLOWS = 2000  # flows asked for when connecting, so the screen is not empty at first


@dataclass(frozen=True, slots=True)
class SessionState:
    state: str  # connecting, live, retrying, offline, stopped, error
    detail: str = ""


class Session:
    """Base: a source of flows for the cockpit."""

    label = ""
    kind = ""  # "hubble", "demo", "file"

    def __init__(self, store: FlowStore) -> None:
        self.store = store
        self.integrations: Integrations | None = None  # policy data and Prometheus, if any
        self.demo: DemoControl | None = None  # the scenario's phase keys: the demo only
        self.feed: AggregateFeed | None = None  # counts every flow for the tabs (set by subclasses)
        self._background_started = False
        self._stopped = False

    @property
    def aggregates(self) -> FlowAggregates | None:
        return self.feed.aggregates if self.feed is not None else None

    def start(self) -> None:
        """Begin filling the store and everything else (returns at once)."""
        self.start_flows()
        self.start_background()

    def start_flows(self) -> None:
        """Begin filling the store: what the first frame shows (returns at once)."""

    def start_background(self) -> None:
        """Start what the first frame does not need (returns at once; once only): the feed
        counting every flow for the other tabs (a child process), policy data and
        Prometheus. The cockpit calls it once its first frame is on screen."""
        if self._background_started or self._stopped:
            return
        self._background_started = True
        if self.integrations is not None:
            self.integrations.start()
        if self.feed is not None:
            self.feed.start()

    async def stop(self) -> None:
        """Stop filling the store, release connections and end child processes. Every part
        is stopped even when one of them fails (the first failure is raised after); a
        second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        failure: Exception | None = None
        for step in self._stop_steps():
            try:
                await step()
            except Exception as error:  # noqa: BLE001 - the other parts must stop all the same
                failure = failure or error
        if failure is not None:
            raise failure

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _stop_steps(self) -> list[Callable[[], Awaitable[object]]]:
        """What stop() awaits, in order; subclasses add their own parts."""
        steps: list[Callable[[], Awaitable[object]]] = []
        if self.integrations is not None:
            steps.append(self.integrations.stop)
        if self.feed is not None:
            steps.append(partial(asyncio.to_thread, self.feed.stop))
        return steps

    def state(self) -> SessionState:
        return SessionState("offline")

    @property
    def server_side_filters(self) -> bool:
        """Whether filters are also sent to a server (else they only apply locally)."""
        return False

    def apply_filter(self, whitelist: Iterable, blacklist: Iterable) -> None:
        """Ask the source for only the flows that match (no-op for offline sources)."""

    def filter_generation(self) -> int:
        """Grows each time a request carrying the latest filters goes live, so the app knows
        when everything still arriving was filtered by the server (see CockpitApp._drain)."""
        return 0

    async def node_counts(self) -> tuple[int, int] | None:
        """(connected, total) nodes, or None when the source has no notion of nodes."""
        return None

    async def namespaces(self) -> list[str]:
        """Namespaces seen recently, sorted."""
        names = {r.source.namespace for r in self.store.latest(5000)}
        names |= {r.destination.namespace for r in self.store.latest(5000)}
        names.discard("")
        return sorted(names)


class HubbleSession(Session):
    """A live Hubble server or Relay: a FlowStream on its reader thread plus an async client
    for ServerStatus and GetNamespaces."""

    kind = "hubble"

    def __init__(
        self,
        connection: HubbleConnection,
        store: FlowStore,
        *,
        clock: Callable[[], float] = time.time,
        history: int = HISTORY_FLOWS,
    ) -> None:
        super().__init__(store)
        self.connection = connection
        self.label = connection.server
        self._clock = clock
        self.stream = FlowStream(connection, store, number=history, follow=True, clock=clock)
        self.client = HubbleClient(connection)
        self.feed = StreamFeed(connection, store, clock=clock)
        self._status_error = ""
        self._flows_started = False

    def start_flows(self) -> None:
        self._flows_started = True
        self.stream.start()

    def _stop_steps(self) -> list[Callable[[], Awaitable[object]]]:
        return [*super()._stop_steps(), self.stream.aclose, self.client.close]

    @property
    def server_side_filters(self) -> bool:
        return True

    def state(self) -> SessionState:
        state = self.stream.state
        status = state.status
        if status is StreamStatus.RETRYING:
            wait = state.retry_in(self._clock())
            return SessionState("retrying", f"in {wait:.0f} s: {state.error}")
        if status is StreamStatus.ERROR:
            return SessionState("error", state.error)
        if status is StreamStatus.ENDED:
            return SessionState("stopped", "the server ended the stream")
        if status is StreamStatus.STOPPED and self._flows_started and not self.stopped:
            return SessionState("connecting")  # started, its reader thread has not run yet
        return SessionState(status.value)

    def apply_filter(self, whitelist: Iterable, blacklist: Iterable) -> None:
        whitelist, blacklist = list(whitelist), list(blacklist)
        if (whitelist or blacklist) and self.feed is not None:
            self.feed.detach()  # the stream will carry only what matches: the aggregates need all
        # The store already holds the history: ask only for what is newer than its newest flow.
        newest = self.store.latest(1)
        self.stream.number = None if newest else HISTORY_FLOWS
        self.stream.since = to_timestamp(newest[0].time_ns) if newest else None
        self.stream.restart(whitelist=list(whitelist), blacklist=list(blacklist))

    def filter_generation(self) -> int:
        return self.stream.connects

    async def node_counts(self) -> tuple[int, int] | None:
        try:
            status = await self.client.server_status()
        except HubbleError:
            return None
        connected = status.num_connected_nodes.value if status.HasField("num_connected_nodes") else 1
        unavailable = status.num_unavailable_nodes.value if status.HasField("num_unavailable_nodes") else 0
        return connected, connected + unavailable

    async def namespaces(self) -> list[str]:
        try:
            found = await asyncio.wait_for(self.client.get_namespaces(), timeout=5)
        except (HubbleError, asyncio.TimeoutError):
            return await super().namespaces()
        return sorted({n.namespace for n in found if n.namespace})


class CaptureSession(Session):
    """A `hubble observe -o jsonpb` capture, read once at start-up; filters apply locally."""

    kind = "file"

    def __init__(self, source: str, store: FlowStore) -> None:
        super().__init__(store)
        self.result: CaptureResult = load_capture(source, store)
        self.label = f"file {self.result.source}"
        # Every flow of the file, even those the store had no room for; then let them go.
        self.feed = RecordsFeed(self.result.records)
        self.result.records = []  # the feed holds them until they are counted

    def start_flows(self) -> None:
        problems = self.result.problems
        if problems and self.integrations is not None:
            # Say where, not just how many: the user can open the file at that line.
            shown = "\n".join(str(p) for p in problems[:MAX_PROBLEMS_SHOWN])
            more = f"\n... and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
            self.integrations.notices.add(
                f"{_lines(len(problems))} skipped, the other {self.result.flows} flows loaded:\n{shown}{more}",
                "warning",
                "Capture file",
            )

    def state(self) -> SessionState:
        skipped = self.result.skipped
        return SessionState("offline", f"{_lines(skipped)} skipped" if skipped else "")


MAX_PROBLEMS_SHOWN = 3


def _lines(count: int) -> str:
    return f"{count} bad line" if count == 1 else f"{count} bad lines"


class DemoSession(HubbleSession):
    """The simulated cluster embedded in this process, reached through the same client code
    as a real server; `demo` steps its scenario (healthy -> broken -> fixed).

    With `services`, the cluster also serves its metrics and its Kubernetes API on free
    loopback ports; policy data then comes from that API through the real Kubernetes
    client (unless `policy` says otherwise), and a real Prometheus scrapes the metrics
    when the binary is installed (unless `prometheus` names one, or start_prometheus is off).
    """

    kind = "demo"

    def __init__(
        self,
        cluster,
        store: FlowStore,
        *,
        clock: Callable[[], float] = time.time,
        services: bool = False,
        policy: PolicyFeed | None = None,
        prometheus: PrometheusFeed | None = None,
        start_prometheus: bool = True,
    ) -> None:
        if services:
            try:
                # Metrics before start(): the exporter must count the backfilled history too.
                metrics_url = cluster.serve_metrics()
                kubeconfig = cluster.serve_kube_api()
            except OSError:
                cluster.stop()
                raise
        try:
            address = cluster.start()
        except OSError:
            cluster.stop()  # the services started above
            raise
        super().__init__(HubbleConnection(server=address), store, clock=clock)
        self.cluster = cluster
        self.demo = DemoControl(cluster.scenario)
        self.label = f"demo {address}"
        if services:
            if prometheus is None:
                prometheus = PrometheusFeed(demo_metrics_url=metrics_url) if start_prometheus else PrometheusFeed()
            self.integrations = Integrations(policy or kubeconfig_feed(str(kubeconfig)), prometheus)

    def _stop_steps(self) -> list[Callable[[], Awaitable[object]]]:
        return [*super()._stop_steps(), partial(asyncio.to_thread, self.cluster.stop)]


class DemoControl:
    """Steps the demo scenario by hand, so a speaker can tell the DNS story live."""

    def __init__(self, scenario) -> None:
        self.scenario = scenario

    @property
    def phases(self) -> tuple[str, ...]:
        from kcockpit.sim.world import PHASES

        return tuple(PHASES)

    @property
    def phase(self) -> str:
        return self.scenario.phase

    def set_phase(self, name: str) -> str:
        self.scenario.set_phase(name)
        return name

    def describe(self) -> str:
        left = self.scenario.seconds_left() if not self.scenario.manual else None
        return f"demo: {self.phase}" + (f" {left:.0f}s" if left is not None else "")
