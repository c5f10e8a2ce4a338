"""Cluster data for the policy engine, read (never written) with the official `kubernetes` client.

One daemon thread per resource lists it, then follows a watch from the list's
resourceVersion (re-listing when the watch ends or expires), so the UI's event loop never
blocks. Objects stay plain API JSON (no typed models: faster, and exactly what the engine
and the manifests loader use). Failures are per resource: a 401/403 names the resource
and the missing RBAC permission, absent Cilium CRDs are "absent" rather than an error,
an unreachable server is retried with backoff; everything else keeps working.

    source = KubernetesSource.from_kubeconfig(kubeconfig, context)   # or open_policy_source(PolicyOptions(...))
    source.start(on_change=lambda snapshot: ...)   # called from the source's threads
    snapshot = source.snapshot()                     # plain data, any thread
    cluster = snapshot.cluster()                     # for kcockpit.policy.Engine
    source.stop()
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kcockpit.policy.cluster import API_RESOURCES, CILIUM_RESOURCES, RESOURCES, ApiResource, Cluster

LOADING = "loading"
OK = "ok"
FORBIDDEN = "forbidden"
UNAUTHORIZED = "unauthorized"
ABSENT = "absent"
UNREACHABLE = "unreachable"
ERROR = "error"

WATCH_TIMEOUT_S = 240  # the server ends each watch after this; we re-list and watch again
CONNECT_TIMEOUT_S = 5.0
RETRY_MIN_S = 1.0
RETRY_MAX_S = 30.0
FORBIDDEN_RETRY_S = 60.0  # RBAC can be granted while we run; check again now and then
ABSENT_RETRY_S = 300.0  # CRDs can be installed while we run


class KubernetesConfigError(Exception):
    """No usable kubeconfig/context or in-cluster configuration; the message says what to do."""


class _ApiFailure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ResourceState:
    resource: str
    state: str  # LOADING, OK, FORBIDDEN, UNAUTHORIZED, ABSENT, UNREACHABLE, ERROR
    message: str = ""
    count: int = 0


@dataclass(frozen=True)
class KubernetesSnapshot:
    """What is known about the cluster right now; plain data, safe to hand to any thread."""

    origin: str  # "context kind-kind at https://..." or "manifests in DIR"
    objects: Mapping[str, tuple[dict, ...]] = field(default_factory=dict)
    states: Mapping[str, ResourceState] = field(default_factory=dict)
    generation: int = 0  # increases with every change

    def cluster(self) -> Cluster:
        return Cluster({r: list(items) for r, items in self.objects.items()})

    @property
    def ready(self) -> bool:
        """Every resource has been answered (successfully or not)."""
        return all(s.state != LOADING for s in self.states.values())

    @property
    def policies_complete(self) -> bool:
        """NetworkPolicies are readable and Cilium policies are readable or not installed."""
        wanted = ("networkpolicies",) + CILIUM_RESOURCES
        return all(self.states.get(r, ResourceState(r, OK)).state in (OK, ABSENT) for r in wanted)

    def problems(self) -> list[str]:
        """One line per resource that could not be read, for the status bar and logs."""
        return list(dict.fromkeys(s.message for s in self.states.values() if s.state not in (OK, LOADING, ABSENT)))


def load_api_client(kubeconfig: str | None = None, context: str | None = None):
    """(ApiClient, description) like kubectl: --kubeconfig, else $KUBECONFIG, else ~/.kube/config, else in-cluster."""
    import yaml
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    configuration = client.Configuration()
    explicit = bool(kubeconfig or os.environ.get("KUBECONFIG") or context)
    if explicit or any(Path(p).expanduser().exists() for p in path.split(os.pathsep) if p):
        where = f"context {context!r} in " if context else ""
        try:
            config.load_kube_config(config_file=path, context=context, client_configuration=configuration, persist_config=False)
        except (ConfigException, OSError, ValueError) as error:
            raise KubernetesConfigError(f"cannot use {where}kubeconfig {path}: {error}") from error
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise KubernetesConfigError(f"cannot use {where}kubeconfig {path}: not valid YAML{at}") from error
        except (TypeError, AttributeError, KeyError, IndexError) as error:
            # The client indexes the parsed YAML blindly: a file that is not a kubeconfig
            # (a list, a string, `clusters: 5`) fails with a Python error about its types.
            raise KubernetesConfigError(
                f"cannot use {where}kubeconfig {path}: not a kubeconfig (expected a mapping with clusters, "
                f"contexts and users; the client said: {error})"
            ) from error
        contexts, current = config.list_kube_config_contexts(config_file=path)
        name = context or (current or {}).get("name", "?")
        description = f"context {name} at {configuration.host}"
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config(client_configuration=configuration)
        except ConfigException as error:
            raise KubernetesConfigError(f"in-cluster configuration: {error}") from error
        description = f"in-cluster service account at {configuration.host}"
    else:
        raise KubernetesConfigError(
            f"no kubeconfig at {path} and not running in a pod: pass --kubeconfig/--context, set KUBECONFIG, "
            "or use --policies DIR for offline manifests"
        )
    configuration.retries = 0  # fail fast; the source has its own backoff
    return client.ApiClient(configuration), description


class KubernetesSource:
    """Lists and watches the resources the policy engine needs, each in its own thread."""

    def __init__(
        self,
        api_client,
        origin: str,
        resources: Iterable[str] = RESOURCES,
        *,
        watch: bool = True,
        resync_s: float = WATCH_TIMEOUT_S,
        retry_max_s: float = RETRY_MAX_S,
        request_timeout_s: float = 10.0,
    ) -> None:
        self.api_client = api_client
        self.origin = origin
        self.resources = [API_RESOURCES[r] for r in resources]
        self.watch = watch
        self.resync_s = resync_s
        self.retry_max_s = retry_max_s
        self.request_timeout_s = request_timeout_s
        self._lock = threading.Condition()
        self._objects: dict[str, dict[tuple[str, str], dict]] = {r.resource: {} for r in self.resources}
        self._states = {r.resource: ResourceState(r.resource, LOADING) for r in self.resources}
        self._generation = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listeners: list[Callable[[KubernetesSnapshot], None]] = []
        self._open_watches: set = set()

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, context: str | None = None, **options) -> KubernetesSource:
        api_client, origin = load_api_client(kubeconfig, context)
        return cls(api_client, origin, **options)

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self, on_change: Callable[[KubernetesSnapshot], None] | None = None) -> None:
        if on_change:
            self._listeners.append(on_change)
        for resource in self.resources:
            thread = threading.Thread(target=self._run, args=(resource,), name=f"k8s-{resource.resource}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
            watches = list(self._open_watches)
        for response in watches:  # unblock threads waiting for the next watch event
            _shutdown(response)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not any(thread.is_alive() for thread in self._threads):
            self.api_client.close()  # the pooled keep-alive connections, else one socket per resource stays open

    def snapshot(self) -> KubernetesSnapshot:
        with self._lock:
            return self._snapshot_locked()

    def _snapshot_locked(self) -> KubernetesSnapshot:
        objects = {r: tuple(items.values()) for r, items in self._objects.items()}
        return KubernetesSnapshot(self.origin, objects, dict(self._states), self._generation)

    def wait(self, predicate: Callable[[KubernetesSnapshot], bool], timeout: float) -> KubernetesSnapshot:
        """Block until predicate(snapshot) holds or timeout passes; returns the last snapshot."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                snapshot = self._snapshot_locked()
                remaining = deadline - time.monotonic()
                if predicate(snapshot) or remaining <= 0:
                    return snapshot
                self._lock.wait(remaining)

    def read_once(self) -> KubernetesSnapshot:
        """List every resource once, synchronously (for command-line answers)."""
        for resource in self.resources:
            try:
                self._list(resource)
            except Exception as error:  # noqa: BLE001 - reported per resource, never raised
                self._set_state(resource, *self._classify(resource, error))
        return self.snapshot()

    # ---- per-resource loop -------------------------------------------------------------

    def _run(self, resource: ApiResource) -> None:
        backoff = RETRY_MIN_S
        while not self._stop.is_set():
            try:
                version = self._list(resource)
                backoff = RETRY_MIN_S
                if not self.watch:
                    self._stop.wait(self.resync_s)
                    continue
                self._watch(resource, version)
            except Exception as error:  # noqa: BLE001 - every failure becomes a state and a retry
                state, message = self._classify(resource, error)
                delay = {FORBIDDEN: FORBIDDEN_RETRY_S, UNAUTHORIZED: FORBIDDEN_RETRY_S, ABSENT: ABSENT_RETRY_S}.get(state)
                if delay is None:
                    delay, backoff = min(backoff, self.retry_max_s), min(backoff * 2, self.retry_max_s)
                if state == UNREACHABLE:
                    message += f"; retrying in {delay:.0f} s"
                self._set_state(resource, state, message)
                self._stop.wait(delay)

    def _get(self, resource: ApiResource, query: list[tuple[str, str]], read_timeout: float):
        """GET the resource's cluster-wide collection; returns the streaming urllib3 response.

        Straight through the ApiClient (its auth, TLS and proxy settings) rather than the
        generated per-resource methods, whose first call costs ~0.1-0.5 s of validator set-up.
        """
        method, url, headers, _, _ = self.api_client.param_serialize(
            method="GET",
            resource_path=f"{resource.prefix}/{resource.resource}",
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        return self.api_client.call_api(method, url, header_params=headers, _request_timeout=(CONNECT_TIMEOUT_S, read_timeout)).response

    def _list(self, resource: ApiResource) -> str:
        body = _read_json(self._get(resource, [], self.request_timeout_s))
        items = body.get("items") or []
        for item in items:  # List items may omit kind/apiVersion; the engine keys on kind
            item.setdefault("kind", resource.kind)
            item.setdefault("apiVersion", resource.group_version)
        with self._lock:
            self._objects[resource.resource] = {_key(o): o for o in items}
            self._states[resource.resource] = ResourceState(resource.resource, OK, "", len(items))
            self._changed_locked()
        return (body.get("metadata") or {}).get("resourceVersion", "")

    def _watch(self, resource: ApiResource, version: str) -> None:
        from kubernetes.watch.watch import iter_resp_lines

        query = [("watch", "true"), ("resourceVersion", version), ("timeoutSeconds", str(int(self.resync_s)))]
        response = self._get(resource, query, self.resync_s + 15)
        with self._lock:
            self._open_watches.add(response)
        try:
            if self._stop.is_set():  # stop() ran while this request was in flight
                return
            _check_status(response)
            for line in iter_resp_lines(response):
                if self._stop.is_set():
                    return
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return  # expired resourceVersion: list again
                    raise _ApiFailure(int(obj.get("code") or 500), obj.get("message", "watch error"))
                self._apply(resource, kind, obj)
        finally:
            with self._lock:
                self._open_watches.discard(response)
            response.close()
            response.release_conn()

    def _apply(self, resource: ApiResource, kind: str, obj: dict) -> None:
        obj.setdefault("kind", resource.kind)
        obj.setdefault("apiVersion", resource.group_version)
        with self._lock:
            items = self._objects[resource.resource]
            if kind == "DELETED":
                items.pop(_key(obj), None)
            elif kind in ("ADDED", "MODIFIED"):
                items[_key(obj)] = obj
            else:
                return  # BOOKMARK and unknown event types carry no object change
            self._states[resource.resource] = ResourceState(resource.resource, OK, "", len(items))
            self._changed_locked()

    def _set_state(self, resource: ApiResource, state: str, message: str) -> None:
        with self._lock:
            if state in (ABSENT, FORBIDDEN, UNAUTHORIZED):
                self._objects[resource.resource] = {}
            previous = self._states.get(resource.resource)
            self._states[resource.resource] = ResourceState(resource.resource, state, message, len(self._objects[resource.resource]))
            if previous is None or (previous.state, previous.message) != (state, message):
                self._changed_locked()

    def _changed_locked(self) -> None:
        self._generation += 1
        self._lock.notify_all()
        snapshot = self._snapshot_locked()
        for listener in list(self._listeners):
            listener(snapshot)

    def _classify(self, resource: ApiResource, error: Exception) -> tuple[str, str]:
        """(state, one-line message naming the resource and what to do)."""
        status = getattr(error, "status", None)
        scope = "at cluster scope"
        if status == 403:
            return FORBIDDEN, f"cannot list {resource.qualified} {scope}: forbidden (RBAC: needs list/watch)"
        if status == 401:
            return UNAUTHORIZED, f"cannot list {resource.qualified}: unauthorized (the credentials of {self.origin} were rejected)"
        if status == 404 and resource.resource in CILIUM_RESOURCES:
            return ABSENT, f"{resource.qualified}: not served (Cilium CRDs not installed), Cilium policies skipped"
        if status == 0:  # the client's own wrapping of TLS and transport failures
            return UNREACHABLE, f"cannot reach the Kubernetes API server ({self.origin}): {getattr(error, 'reason', error)}"
        if status:
            return ERROR, f"cannot list {resource.qualified}: HTTP {status}: {error}"
        reason = _connection_reason(error)
        if reason:
            return UNREACHABLE, f"cannot reach the Kubernetes API server ({self.origin}): {reason}"
        return ERROR, f"cannot read {resource.qualified}: {type(error).__name__}: {error}"


def _key(obj: Mapping) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace") or "", metadata.get("name", "")


def _shutdown(response) -> None:
    """Shut the socket under a streaming response down so a blocked read returns at once."""
    connection = getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _check_status(response) -> None:
    status = getattr(response, "status", 200)
    if not 200 <= status <= 299:
        body = response.data if hasattr(response, "data") else b""
        try:
            message = json.loads(body).get("message", "")
        except (ValueError, AttributeError):
            message = ""
        raise _ApiFailure(status, message or f"HTTP {status}")


def _read_json(response) -> dict:
    try:
        _check_status(response)
        return json.loads(response.data)
    finally:
        response.release_conn()


def _connection_reason(error: Exception) -> str:
    """A short reason for network-level failures (refused, timeout, DNS, TLS), or ""."""
    import urllib3.exceptions as urllib3_errors

    if isinstance(error, urllib3_errors.MaxRetryError) and error.reason is not None:
        error = error.reason
    if isinstance(error, urllib3_errors.NewConnectionError):
        return "connection refused" if "refused" in str(error).lower() else str(error).split(": ", 1)[-1]
    if isinstance(error, (urllib3_errors.ConnectTimeoutError, urllib3_errors.ReadTimeoutError, TimeoutError)):
        return "timed out"
    if isinstance(error, urllib3_errors.SSLError):
        return f"TLS error: {error}"
    if isinstance(error, (urllib3_errors.ProtocolError, ConnectionError, OSError)):
        return "connection lost"
    return ""


def static_snapshot(origin: str, objects: Mapping[str, list[dict]], problems: Iterable[str] = ()) -> KubernetesSnapshot:
    """A snapshot of fixed data (manifests), shaped like a live one for the UI."""
    states = {r: ResourceState(r, OK, "", len(objects.get(r) or ())) for r in RESOURCES}
    for index, problem in enumerate(problems):
        states[f"manifest-{index}"] = ResourceState(f"manifest-{index}", ERROR, problem)
    return KubernetesSnapshot(origin, {r: tuple(objects.get(r) or ()) for r in RESOURCES}, states, 1)


class StaticSource:
    """Fixed cluster data (a manifests directory) behind the same interface as KubernetesSource."""

    def __init__(self, snapshot: KubernetesSnapshot) -> None:
        self._snapshot = snapshot

    def start(self, on_change: Callable[[KubernetesSnapshot], None] | None = None) -> None:
        if on_change:
            on_change(self._snapshot)

    def stop(self, timeout: float = 0.0) -> None:
        pass

    def snapshot(self) -> KubernetesSnapshot:
        return self._snapshot

    def wait(self, predicate: Callable[[KubernetesSnapshot], bool], timeout: float) -> KubernetesSnapshot:
        return self._snapshot

    def read_once(self) -> KubernetesSnapshot:
        return self._snapshot


def manifests_source(path: str) -> StaticSource:
    """Policy data from `--policies DIR`; malformed documents become problems of the snapshot."""
    from kcockpit.sources import manifests

    loaded = manifests.load(path)
    cluster = loaded.cluster()
    return StaticSource(static_snapshot(f"manifests in {path}", cluster.objects, [str(p) for p in loaded.problems]))


@dataclass(frozen=True, slots=True)
class PolicyOptions:
    """Where policy data comes from: a cluster found like kubectl finds it (kubeconfig,
    context), a directory of manifests (policies), or nowhere (disabled)."""

    kubeconfig: str | None = None
    context: str | None = None
    policies: str | None = None  # a directory of YAML/JSON manifests instead of a cluster
    disabled: bool = False  # --no-kubernetes


def open_policy_source(options: PolicyOptions) -> KubernetesSource | StaticSource | None:
    """The policy data source `options` ask for (not started).

    None when disabled. Raises KubernetesConfigError (no usable kubeconfig) and
    manifests.ManifestError (no such directory) with one-line messages.
    """
    if options.disabled:
        return None
    if options.policies:
        return manifests_source(options.policies)
    return KubernetesSource.from_kubeconfig(options.kubeconfig, options.context)
