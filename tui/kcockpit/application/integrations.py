"""The cockpit's other data sources besides flows: policy data (Kubernetes API or manifests)
and Prometheus, each started off the event loop and reported compactly in the status bar.

Nothing here may delay the first screen or stop the flows: a missing kubeconfig, a 403 on
NetworkPolicies or an unreachable Prometheus become a status part and a one-time notice.
No Textual here; the status bar and the flow detail read these objects.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kcockpit.policy.cluster import CILIUM_RESOURCES, NETWORKPOLICIES, POLICY_RESOURCES, Cluster
from kcockpit.sources.kubernetes import (
    ABSENT,
    FORBIDDEN,
    LOADING,
    OK,
    UNAUTHORIZED,
    UNREACHABLE,
    KubernetesSnapshot,
    PolicyOptions,
)
from kcockpit.application.status import Part

PROMETHEUS_POLL_S = 5.0
NO_PROMETHEUS_NOTICE = "signals from flows; apt-get install prometheus for Prometheus"


@dataclass(frozen=True, slots=True)
class Notice:
    text: str
    severity: str = "information"  # Textual's notify severities: information, warning, error
    title: str = ""


class Notices:
    """Thread-safe queue of one-time messages; the UI takes them and shows notifications."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Notice] = []
        self._seen: set[str] = set()

    def add(self, text: str, severity: str = "information", title: str = "") -> None:
        with self._lock:
            if text not in self._seen:
                self._seen.add(text)
                self._pending.append(Notice(text, severity, title))

    def take(self) -> list[Notice]:
        with self._lock:
            pending, self._pending = self._pending, []
        return pending


# --------------------------------------------------------------------------- policy data


@dataclass(frozen=True, slots=True)
class PolicyData:
    """What the flow detail needs: a cluster to evaluate against, or why there is none."""

    cluster: Cluster | None
    generation: int
    reason: str = ""  # why cluster is None ("no policy data: --no-kubernetes", ...)
    caveat: str = ""  # shown with an answer that may be stale


class PolicyFeed:
    """A policy source (KubernetesSource or manifests) opened and started on a thread.

    `opener` builds the source (importing the kubernetes client and reading a kubeconfig
    take a noticeable fraction of a second); None means policy data is switched off and
    `disabled` says why in a few words.
    """

    def __init__(self, opener: Callable[[], object] | None, *, disabled: str = "", label: str = "k8s") -> None:
        self._opener = opener
        self.disabled = disabled
        self.label = label  # "k8s" for a cluster, "files" for --policies DIR
        self.source = None
        self.open_error = ""
        self._lock = threading.Lock()
        # Held while the source starts and while it is stopped: stop() must not meet a
        # source half started (its threads not all running yet: joining one raises, and the
        # session's other parts were then never stopped).
        self._lifecycle = threading.Lock()
        self._snapshot: KubernetesSnapshot | None = None
        self._cluster: tuple[int, Cluster] | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.notices: Notices | None = None

    def start(self, notices: Notices) -> None:
        self.notices = notices
        if self._opener is None:
            return
        self._thread = threading.Thread(target=self._open, name="kcockpit-policy-open", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        from kcockpit.sources.kubernetes import KubernetesConfigError
        from kcockpit.sources.manifests import ManifestError

        assert self._opener is not None
        try:
            source = self._opener()
        except (KubernetesConfigError, ManifestError) as error:
            self.open_error = str(error)
            self._notify(f"no policy data: {error}", "warning")
            return
        with self._lifecycle:
            with self._lock:
                if self._stopped:
                    return
                self.source = source
            source.start(on_change=self._changed)

    def _changed(self, snapshot: KubernetesSnapshot) -> None:
        with self._lock:
            self._snapshot = snapshot
        for problem in snapshot.problems():
            self._notify(problem, "warning")

    def _notify(self, text: str, severity: str) -> None:
        if self.notices is not None:
            self.notices.add(text, severity, title="Kubernetes" if self.label == "k8s" else "Policies")

    def stop(self) -> None:
        with self._lifecycle, self._lock:
            self._stopped = True
            source = self.source
        if source is not None:
            source.stop()

    def snapshot(self) -> KubernetesSnapshot | None:
        with self._lock:
            return self._snapshot

    @property
    def generation(self) -> int:
        snapshot = self.snapshot()
        return snapshot.generation if snapshot is not None else -1

    def data(self) -> PolicyData:
        """A cluster for the engine (built once per snapshot generation), or the reason there is none."""
        if self._opener is None:
            return PolicyData(None, -1, f"no policy data: {self.disabled}")
        if self.open_error:
            return PolicyData(None, -1, f"no policy data: {self.open_error}")
        snapshot = self.snapshot()
        if snapshot is None:
            return PolicyData(None, -1, "policy data loading…")
        policies = snapshot.states.get(NETWORKPOLICIES)
        caveat = ""
        if policies is None or policies.state == LOADING:
            return PolicyData(None, snapshot.generation, f"policy data loading from {snapshot.origin}…")
        if policies.state == UNREACHABLE and policies.count:
            caveat = f"policy data may be stale: {policies.message}"
        elif policies.state != OK:
            prefix = "Kubernetes API unreachable: " if policies.state == UNREACHABLE else "no policy data: "
            return PolicyData(None, snapshot.generation, prefix + policies.message)
        with self._lock:
            if self._cluster is None or self._cluster[0] != snapshot.generation:
                self._cluster = (snapshot.generation, snapshot.cluster())
            cluster = self._cluster[1]
        return PolicyData(cluster, snapshot.generation, caveat=caveat)

    def status_part(self) -> Part:
        label = self.label
        if self._opener is None:
            return Part(f"{label} off", "muted", 8)
        if self.open_error:
            return Part(f"{label} ✗ {_open_problem(self.open_error)}", "warning", 1)
        snapshot = self.snapshot()
        if snapshot is None or not snapshot.states:
            return Part(f"{label} …", "muted", 6)
        problem = _worst_state(snapshot)
        if problem is not None and not _is_manifest(problem.resource):
            # As important as the flows' own connection state: explanations depend on it.
            return Part(f"{label} ✗ {_short_problem(problem.state, problem.resource)}", "warning", 1)
        policies = snapshot.states.get(NETWORKPOLICIES)
        if policies is None or policies.state == LOADING:
            return Part(f"{label} …", "muted", 6)
        count = sum(len(snapshot.objects.get(r) or ()) for r in POLICY_RESOURCES)
        loaded = f"{label} ✓ {count} {'policy' if count == 1 else 'policies'}"
        if problem is not None:
            # Malformed documents were skipped; the rest loaded and is in use.
            bad = sum(1 for st in snapshot.states.values() if _is_manifest(st.resource) and st.state not in (OK, LOADING, ABSENT))
            return Part(f"{loaded}, {bad} bad {'document' if bad == 1 else 'documents'}", "warning", 1)
        return Part(loaded, "good", 4)


def _worst_state(snapshot: KubernetesSnapshot):
    """The failing resource to name: policies first, then whatever else failed."""
    failing = [s for s in snapshot.states.values() if s.state not in (OK, LOADING, ABSENT)]
    if not failing:
        return None
    order = (NETWORKPOLICIES, *CILIUM_RESOURCES)
    return min(failing, key=lambda s: order.index(s.resource) if s.resource in order else len(order))


def _is_manifest(resource: str) -> bool:
    return resource.startswith("manifest-")


def _open_problem(message: str) -> str:
    """The status bar's words for why policy data could not be opened at all: only a missing
    kubeconfig is "no kubeconfig"; one that exists but cannot be used is "bad kubeconfig"."""
    if message.startswith("no kubeconfig") or "No configuration found" in message:  # the latter: a missing file
        return "no kubeconfig"
    if message.startswith("cannot use") and "kubeconfig" in message:
        return "bad kubeconfig"
    return "unusable"


def _short_problem(state: str, resource: str) -> str:
    if state == FORBIDDEN:
        return f"forbidden {resource}"
    if state == UNAUTHORIZED:
        return "unauthorized"
    if state == UNREACHABLE:
        return "unreachable"
    return f"error {resource}"


# --------------------------------------------------------------------------- Prometheus


class PrometheusFeed:
    """A configured Prometheus (`--prometheus URL`) or, in the demo, one started here.

    Its readiness is polled from the event loop; the demo's Prometheus is started on a
    thread (it takes a few seconds to answer /-/ready) so the first screen never waits.
    """

    def __init__(self, config=None, *, demo_metrics_url: str | None = None) -> None:
        self.config = config  # PrometheusConfig or None
        self.demo_metrics_url = demo_metrics_url if config is None else None
        self.url = config.url if config is not None else ""
        self.state = "starting" if self.demo_metrics_url else ("checking" if config is not None else "off")
        self.detail = ""
        self.running = None  # RunningPrometheus the demo started
        self._lock = threading.Lock()
        self._stopped = False
        self._task: asyncio.Task | None = None
        self.notices: Notices | None = None

    @property
    def enabled(self) -> bool:
        return self.config is not None or self.demo_metrics_url is not None

    def start(self, notices: Notices) -> None:
        self.notices = notices
        if self.demo_metrics_url:
            threading.Thread(target=self._start_demo_prometheus, name="kcockpit-prometheus-start", daemon=True).start()
        if self.enabled:
            try:
                self._task = asyncio.get_running_loop().create_task(self._poll())
            except RuntimeError:  # no event loop (a plain script): readiness is not watched
                self._task = None

    def _start_demo_prometheus(self) -> None:
        from kcockpit.sources.prometheus_runner import start_demo_prometheus
        from kcockpit.wire.prometheus import PrometheusConfig

        assert self.demo_metrics_url is not None
        running, message = start_demo_prometheus(self.demo_metrics_url)
        with self._lock:
            if self._stopped and running is not None:
                running.stop()
                return
            self.running = running
            if running is None:
                self.state, self.detail = "absent", message
            else:
                self.config, self.url = PrometheusConfig(running.url), running.url
                self.state = "checking"
        if self.notices is not None:
            if running is None:
                self.notices.add(NO_PROMETHEUS_NOTICE if "not on PATH" in message else message, "information", "Signals")
            else:
                self.notices.add(message, "information", "Prometheus")

    async def _poll(self) -> None:
        from kcockpit.wire.prometheus import PrometheusClient, PrometheusError

        client = None
        try:
            while True:
                if client is None and self.config is not None:
                    client = PrometheusClient(self.config)
                if client is not None:
                    try:
                        ready = await client.ready()
                        self.state, self.detail = ("ready", "") if ready else ("starting", "not ready yet")
                    except PrometheusError as error:
                        self.state, self.detail = "failed", str(error)
                        if self.notices is not None:
                            self.notices.add(str(error), "warning", "Prometheus")
                elif self.state == "absent":
                    return
                await asyncio.sleep(PROMETHEUS_POLL_S if self.state in ("ready", "failed") else 0.5)
        finally:
            if client is not None:
                await client.aclose()

    async def stop(self) -> None:
        with self._lock:
            self._stopped = True
            running = self.running
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        if running is not None:
            await asyncio.to_thread(running.stop)

    def status_part(self) -> Part | None:
        if not self.enabled:
            return None
        if self.state == "ready":
            return Part("prom ✓", "good", 5)
        if self.state == "absent":
            return Part("signals: flows", "muted", 8)
        if self.state == "failed":
            return Part(f"prom ✗ {_short_prometheus_error(self.detail)}", "warning", 3)
        return Part("prom …", "muted", 8)


def _short_prometheus_error(message: str) -> str:
    lowered = message.lower()
    for needle, short in (("refused", "refused"), ("did not answer", "timeout"), ("401", "unauthorized"),
                          ("403", "forbidden"), ("404", "not found"), ("tls", "tls")):
        if needle in lowered:
            return short
    return "error"


# --------------------------------------------------------------------------- together


class Integrations:
    """Policy data and Prometheus for one cockpit session."""

    def __init__(self, policy: PolicyFeed, prometheus: PrometheusFeed | None = None) -> None:
        self.policy = policy
        self.prometheus = prometheus or PrometheusFeed()
        self.notices = Notices()

    def start(self) -> None:
        self.policy.start(self.notices)
        self.prometheus.start(self.notices)

    async def stop(self) -> None:
        await self.prometheus.stop()
        await asyncio.to_thread(self.policy.stop)

    def status_parts(self) -> tuple[Part, ...]:
        parts = [self.policy.status_part(), self.prometheus.status_part()]
        return tuple(p for p in parts if p is not None)


def kubeconfig_feed(kubeconfig: str | None = None, context: str | None = None) -> PolicyFeed:
    """Policy data from a cluster, found like kubectl finds it."""

    def open_source():
        from kcockpit.sources.kubernetes import KubernetesSource

        return KubernetesSource.from_kubeconfig(kubeconfig, context)

    return PolicyFeed(open_source)


def policy_feed(options: PolicyOptions) -> PolicyFeed:
    """The policy data `options` ask for (not started)."""
    if options.disabled:
        return PolicyFeed(None, disabled="--no-kubernetes")
    directory = options.policies
    if directory:

        def open_manifests():
            from kcockpit.sources.kubernetes import manifests_source

            return manifests_source(directory)

        return PolicyFeed(open_manifests, label="files")
    return kubeconfig_feed(options.kubeconfig, options.context)
