"""A loopback Kubernetes API server for the simulated cluster: real paths, real JSON.

It serves what kcockpit reads (namespaces, nodes, pods, services, EndpointSlices,
NetworkPolicies and, when enabled, Cilium's policies) as Lists with a resourceVersion,
single objects, discovery documents, and `?watch=1` streams of ADDED/MODIFIED/DELETED
events when the objects change (a scenario phase switching the policies). The official
`kubernetes` Python client talks to it through a kubeconfig from `write_kubeconfig`.
Faults for tests: a Status 401/403 on one resource, and the whole server going down and
coming back on the same port. Read-only: anything but GET gets 405.

    server = start_kube_api(world, phase="broken")      # or a dict, or a callable
    write_kubeconfig(path, server.url)
    server.set_phase("fixed")                           # watchers get MODIFIED events
    server.stop()
"""

from __future__ import annotations

import collections
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

from kcockpit.policy.cluster import API_RESOURCES, CILIUM_RESOURCES, ApiResource

ObjectSource = Mapping[str, list[dict]] | Callable[[str], Mapping[str, list[dict]]]
VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0",
    "gitCommit": "7c48c2bd72b9bf5c44d21d7338cc7bea77d0ad2a",
    "gitTreeState": "clean",
    "buildDate": "2024-04-17T17:27:03Z",
    "goVersion": "go1.22.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}
SHORT_NAMES = {
    "namespaces": ["ns"],
    "nodes": ["no"],
    "pods": ["po"],
    "services": ["svc"],
    "networkpolicies": ["netpol"],
    "ciliumnetworkpolicies": ["cnp", "ciliumnp"],
    "ciliumclusterwidenetworkpolicies": ["ccnp"],
}
EVENT_LOG_SIZE = 4096  # watch resumes older than this many changes get 410 Gone, as on a real server


def _key(obj: Mapping) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace") or "", metadata.get("name", "")


class ObjectStore:
    """Current objects per resource plus a log of changes, each change with its own resourceVersion."""

    def __init__(self, objects: Mapping[str, list[dict]]) -> None:
        self.changed = threading.Condition()
        self._items: dict[str, dict[tuple[str, str], dict]] = {r: {} for r in API_RESOURCES}
        self._log: collections.deque[tuple[int, str, str, dict]] = collections.deque(maxlen=EVENT_LOG_SIZE)
        versions = [int(o.get("metadata", {}).get("resourceVersion", 0) or 0) for items in objects.values() for o in items]
        self.resource_version = max(versions, default=0) + 1
        for resource, items in objects.items():
            if resource in self._items:
                self._items[resource] = {_key(o): o for o in items}

    def replace(self, objects: Mapping[str, list[dict]]) -> int:
        """Swap in a new set of objects; every difference becomes a watch event. Returns the number of events."""
        events = 0
        with self.changed:
            for resource, current in self._items.items():
                new = {_key(o): o for o in objects.get(resource) or ()}
                for key, obj in new.items():
                    old = current.get(key)
                    if old is not None and _content(old) == _content(obj):
                        new[key] = old  # unchanged: keeps its resourceVersion
                    else:
                        new[key] = self._record(resource, "ADDED" if old is None else "MODIFIED", obj)
                        events += 1
                for key in [k for k in current if k not in new]:
                    self._record(resource, "DELETED", current[key])
                    events += 1
                self._items[resource] = new
            self.changed.notify_all()
        return events

    def _record(self, resource: str, kind: str, obj: dict) -> dict:
        self.resource_version += 1
        stamped = json.loads(json.dumps(obj))
        stamped.setdefault("metadata", {})["resourceVersion"] = str(self.resource_version)
        self._log.append((self.resource_version, resource, kind, stamped))
        return stamped

    def list(self, resource: str, namespace: str | None) -> tuple[str, list[dict]]:
        with self.changed:
            items = [o for (ns, _), o in sorted(self._items[resource].items()) if namespace is None or ns == namespace]
            return str(self.resource_version), items

    def get(self, resource: str, namespace: str, name: str) -> dict | None:
        with self.changed:
            return self._items[resource].get((namespace, name))

    def events_after(self, resource: str, namespace: str | None, version: int) -> list[tuple[int, str, dict]] | None:
        """Events newer than `version`; None when `version` is older than the log keeps (410 Gone)."""
        with self.changed:
            if self._log and version < self._log[0][0] - 1 and len(self._log) == self._log.maxlen:
                return None
            return [
                (rv, kind, obj)
                for rv, logged_resource, kind, obj in self._log
                if rv > version and logged_resource == resource and (namespace is None or _key(obj)[0] == namespace)
            ]


def _content(obj: Mapping) -> str:
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
    return json.dumps({**obj, "metadata": metadata}, sort_keys=True)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # clients open one watch per resource at once; the default 5 drops SYNs
    daemon_threads = True


class KubeApiServer:
    """Handle on a running server: `.url`, `.stop()`, `.set_phase()`, `.set_objects()`, faults."""

    def __init__(self, source: ObjectSource, host: str, port: int, phase: str, cilium: bool, token: str | None) -> None:
        self._source = source
        self.phase = phase
        self.cilium = cilium
        self.token = token
        self.faults: dict[str, int] = {}
        self.requests: collections.Counter[str] = collections.Counter()
        self.store = ObjectStore(self._objects_for(phase))
        self.host = host
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._following = threading.Event()  # set when the server is closed for good
        self.running = False
        self.port = self._serve(port)

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve(self, port: int) -> int:
        handler = type("Handler", (_Handler,), {"api": self})
        self._httpd = _Server((self.host, port), handler)
        self.running = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="kube-api", daemon=True)
        self._thread.start()
        return self._httpd.server_address[1]

    def stop(self) -> None:
        """Close the listening socket and end every open watch (the client sees the server go away)."""
        if not self.running:
            return
        self.running = False
        with self.store.changed:
            self.store.changed.notify_all()
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:  # keep-alive connections too: a stopped server answers nothing
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        """Stop for good, including the scenario poller."""
        self._following.set()
        self.stop()

    def start(self) -> None:
        """Come back on the same port after `stop()` (an API server restart)."""
        if not self.running:
            self._serve(self.port)

    # ---- what is served ----------------------------------------------------------------

    def _objects_for(self, phase: str) -> Mapping[str, list[dict]]:
        source = self._source
        if hasattr(source, "k8s_objects"):
            return source.k8s_objects(phase)
        if callable(source):
            return source(phase)
        return source

    def set_phase(self, phase: str) -> int:
        """Serve the objects of another scenario phase; returns the number of watch events it caused."""
        self.phase = phase
        return self.store.replace(self._objects_for(phase))

    def follow(self, scenario, poll_s: float = 0.5) -> None:
        """Serve whatever phase `scenario` is in: switched on its change events, and polled every
        poll_s so an automatic timeline is noticed even when nobody else asks it."""
        scenario.add_listener(lambda phase, _at_ns: self.set_phase(phase))
        self.set_phase(scenario.phase)

        def poll() -> None:
            while not self._following.wait(poll_s):
                _ = scenario.phase  # reading it notifies the listener above when the phase changed

        threading.Thread(target=poll, name="kube-api-scenario", daemon=True).start()

    def set_objects(self, objects: Mapping[str, list[dict]]) -> int:
        return self.store.replace(objects)

    def fail(self, resource: str, status: int = 403) -> None:
        """Answer every request for `resource` with a Status error (401 or 403) until `heal()`."""
        if resource not in API_RESOURCES:
            raise ValueError(f"unknown resource {resource!r}: expected one of {', '.join(API_RESOURCES)}")
        self.faults[resource] = status

    def heal(self, resource: str | None = None) -> None:
        if resource is None:
            self.faults.clear()
        else:
            self.faults.pop(resource, None)

    def resources(self) -> list[ApiResource]:
        return [r for r in API_RESOURCES.values() if self.cilium or r.resource not in CILIUM_RESOURCES]


def start_kube_api(
    source: ObjectSource,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    phase: str = "healthy",
    cilium: bool = False,
    token: str | None = None,
) -> KubeApiServer:
    """Serve a World (its `k8s_objects(phase)`), a callable phase -> objects, or a fixed dict."""
    return KubeApiServer(source, host, port, phase, cilium, token)


def write_kubeconfig(path: str | Path, server_url: str, context: str = "kcockpit-sim", token: str | None = None) -> Path:
    """A kubeconfig with one cluster, user and context pointing at `server_url`."""
    user: dict = {"token": token} if token else {}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server_url}}],
        "users": [{"name": context, "user": user}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
        "preferences": {},
    }
    path = Path(path)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}
    if details:
        status["details"] = details
    return status


def _label_filter(text: str) -> Callable[[Mapping], bool]:
    """Equality-based label selectors as kubectl sends them: `a=b,c!=d,e,!f`."""
    tests: list[Callable[[Mapping], bool]] = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        if "(" in term or " in " in term or " notin " in term:
            raise ValueError(f"unable to parse requirement {term!r}: set-based selectors are not supported here")
        if "!=" in term:
            key, value = (p.strip() for p in term.split("!=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in term:
            key, value = (p.strip() for p in term.replace("==", "=").split("=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif term.startswith("!"):
            tests.append(lambda labels, k=term[1:]: k not in labels)
        else:
            tests.append(lambda labels, k=term: k in labels)
    return lambda obj: all(test((obj.get("metadata") or {}).get("labels") or {}) for test in tests)


def _field_filter(text: str) -> Callable[[Mapping], bool]:
    """`metadata.name=x,metadata.namespace!=y`, the fields every resource supports."""
    tests: list[Callable[[Mapping], bool]] = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        negate = "!=" in term
        field_name, value = (p.strip() for p in term.replace("!=", "=").replace("==", "=").split("=", 1))
        if field_name not in ("metadata.name", "metadata.namespace"):
            raise ValueError(f"field label not supported: {field_name}")
        key = field_name.split(".", 1)[1]
        tests.append(lambda obj, k=key, v=value, n=negate: ((obj.get("metadata") or {}).get(k) == v) != n)
    return lambda obj: all(test(obj) for test in tests)


class _Handler(BaseHTTPRequestHandler):
    api: KubeApiServer
    protocol_version = "HTTP/1.1"
    server_version = "kcockpit-sim-kube-apiserver"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go servers do: no 40 ms Nagle stalls
        with self.api._connections_lock:
            self.api._connections.add(self.connection)

    def finish(self) -> None:
        with self.api._connections_lock:
            self.api._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        api = self.api
        api.requests[url.path] += 1
        if api.token and self.headers.get("Authorization") != f"Bearer {api.token}":
            return self._json(401, _status(401, "Unauthorized", "Unauthorized"))
        if parts == ["version"]:
            return self._json(200, VERSION)
        if parts == ["api"]:
            address = f"{api.host}:{api.port}"
            return self._json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]})
        if parts == ["apis"]:
            return self._json(200, self._group_list())
        for resource in api.resources():
            prefix = [p for p in resource.prefix.split("/") if p]
            if parts == prefix:
                return self._json(200, self._resource_list(resource.group_version))
            if parts[: len(prefix)] == prefix:
                matched = self._match(resource, parts[len(prefix) :])
                if matched is not None:
                    return self._serve_resource(resource, *matched, query)
        return self._json(404, _status(404, "NotFound", "the server could not find the requested resource", {}))

    def _method_not_allowed(self) -> None:
        self._json(405, _status(405, "MethodNotAllowed", "the simulated API server is read-only"))

    do_POST = do_PUT = do_PATCH = do_DELETE = _method_not_allowed  # noqa: N815

    @staticmethod
    def _match(resource: ApiResource, rest: list[str]) -> tuple[str | None, str | None] | None:
        """(namespace, name) for a path below the group/version prefix, or None if it is not this resource."""
        if rest == [resource.resource]:
            return None, None
        if not resource.namespaced and len(rest) == 2 and rest[0] == resource.resource:
            return None, rest[1]
        if resource.namespaced and len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == resource.resource:
            if len(rest) == 3:
                return rest[1], None
            if len(rest) == 4:
                return rest[1], rest[3]
        return None

    def _serve_resource(self, resource: ApiResource, namespace: str | None, name: str | None, query: dict) -> None:
        api = self.api
        fault = api.faults.get(resource.resource)
        if fault == 403:
            scope = f"in the namespace \"{namespace}\"" if namespace else "at the cluster scope"
            message = (
                f"{resource.qualified} is forbidden: User \"system:serviceaccount:default:kcockpit\" cannot list resource "
                f"\"{resource.resource}\" in API group \"{resource.group}\" {scope}"
            )
            return self._json(403, _status(403, "Forbidden", message, {"group": resource.group, "kind": resource.resource}))
        if fault:
            return self._json(fault, _status(fault, "Unauthorized", "Unauthorized"))
        if name is not None:
            obj = api.store.get(resource.resource, namespace or "", name)
            if obj is None:
                return self._json(404, _status(404, "NotFound", f"{resource.qualified} \"{name}\" not found", {"name": name, "kind": resource.resource}))
            return self._json(200, obj)
        if query.get("watch") in ("1", "true"):
            return self._watch(resource, namespace, query)
        version, items = api.store.list(resource.resource, namespace)
        try:
            wanted = _label_filter(query.get("labelSelector", "")), _field_filter(query.get("fieldSelector", ""))
        except ValueError as error:
            return self._json(400, _status(400, "BadRequest", str(error)))
        items = [o for o in items if all(matches(o) for matches in wanted)]
        body = {"kind": f"{resource.kind}List", "apiVersion": resource.group_version, "metadata": {"resourceVersion": version}, "items": items}
        return self._json(200, body)

    def _watch(self, resource: ApiResource, namespace: str | None, query: dict) -> None:
        store = self.api.store
        requested = query.get("resourceVersion") or "0"
        timeout_text = query.get("timeoutSeconds") or "300"
        if not (requested.isascii() and requested.isdigit()):  # as the API server: 400, not a replay from 0
            return self._json(400, _status(400, "BadRequest", f"invalid resource version: {requested}"))
        if not (timeout_text.isascii() and timeout_text.isdigit()):
            return self._json(400, _status(400, "BadRequest", f"invalid timeoutSeconds: {timeout_text}"))
        deadline = time.monotonic() + int(timeout_text)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if requested == "0":
            version, items = store.list(resource.resource, namespace)
            last = int(version)
            for obj in items:
                self._chunk({"type": "ADDED", "object": obj})
        else:
            last = int(requested)
        try:
            while self.api.running and time.monotonic() < deadline:
                with store.changed:  # check and wait under one lock, so no change slips in between
                    events = store.events_after(resource.resource, namespace, last)
                    if events == []:
                        store.changed.wait(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
                        if self._client_gone():
                            break  # as a real API server: a watcher that hung up frees its handler
                        continue
                if events is None:
                    self._chunk({"type": "ERROR", "object": _status(410, "Expired", f"too old resource version: {last}")})
                    break
                for version, kind, obj in events:
                    self._chunk({"type": kind, "object": obj})
                    last = version
            if self.api.running:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _client_gone(self) -> bool:
        """Whether the watcher closed its end (readable with nothing to read means EOF)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True

    def _chunk(self, event: dict) -> None:
        data = json.dumps(event).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _group_list(self) -> dict:
        groups = {}
        for resource in self.api.resources():
            if resource.group:
                gv = {"groupVersion": resource.group_version, "version": resource.version}
                groups[resource.group] = {"name": resource.group, "versions": [gv], "preferredVersion": gv}
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": list(groups.values())}

    def _resource_list(self, group_version: str) -> dict:
        resources = [
            {
                "name": r.resource,
                "singularName": r.kind.lower(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "list", "watch"],
                "shortNames": SHORT_NAMES.get(r.resource, []),
            }
            for r in self.api.resources()
            if r.group_version == group_version
        ]
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}

    def _json(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
