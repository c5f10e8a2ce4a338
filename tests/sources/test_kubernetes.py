"""The Kubernetes source against the loopback API server: lists, watch update, 403 on one
resource, absent Cilium CRDs, API server down and back, kubeconfig/context selection."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import yaml

from kcockpit.policy.engine import Engine
from kcockpit.policy.results import Connection
from kcockpit.sim.kube_api import start_kube_api, write_kubeconfig
from kcockpit.sim.world import FRONTEND_POLICY, World
from kcockpit.sources.kubernetes import (
    ABSENT,
    FORBIDDEN,
    OK,
    UNAUTHORIZED,
    UNREACHABLE,
    KubernetesConfigError,
    KubernetesSource,
    load_api_client,
)

WORLD = World.build(13)


@pytest.fixture
def server():
    api = start_kube_api(WORLD, phase="broken")
    yield api
    api.stop()


@pytest.fixture
def started():
    sources: list[KubernetesSource] = []

    def start(kubeconfig: Path, **options) -> KubernetesSource:
        source = KubernetesSource.from_kubeconfig(str(kubeconfig), **{"retry_max_s": 0.2, "resync_s": 30, **options})
        sources.append(source)
        source.start()
        return source

    yield start
    for source in sources:
        source.stop()


def _frontend_egress_rules(snapshot) -> int:
    policy = next(p for p in snapshot.objects["networkpolicies"] if p["metadata"]["name"] == FRONTEND_POLICY)
    return len(policy["spec"]["egress"])


def test_lists_every_resource_and_feeds_the_engine(server, started, tmp_path: Path) -> None:
    source = started(write_kubeconfig(tmp_path / "config", server.url))
    snapshot = source.wait(lambda s: s.ready, 10)
    objects = WORLD.k8s_objects("broken")
    for resource in ("namespaces", "nodes", "pods", "services", "endpointslices", "networkpolicies"):
        assert snapshot.states[resource].state == OK
        assert snapshot.states[resource].count == len(objects[resource]), resource
    assert snapshot.states["ciliumnetworkpolicies"].state == ABSENT
    assert snapshot.problems() == [] and snapshot.policies_complete
    assert snapshot.origin == f"context kcockpit-sim at {server.url}"
    cluster = snapshot.cluster()
    frontend = cluster.find_pods("otel-demo", "frontend")[0]
    dns = next(p for p in cluster.pods if p.labels.get("k8s-app") == "kube-dns")
    assert Engine(cluster).evaluate(Connection(frontend, dns, 53, "UDP")).verdict == "denied"


def test_a_phase_change_arrives_by_watch(server, started, tmp_path: Path) -> None:
    source = started(write_kubeconfig(tmp_path / "config", server.url), resync_s=60)
    snapshot = source.wait(lambda s: s.ready, 10)
    assert _frontend_egress_rules(snapshot) == 1
    generation = snapshot.generation
    server.set_phase("fixed")
    snapshot = source.wait(lambda s: _frontend_egress_rules(s) == 2, 5)  # far below the 60 s re-list period
    assert _frontend_egress_rules(snapshot) == 2 and snapshot.generation > generation
    server.set_phase("healthy")
    snapshot = source.wait(lambda s: all(p["metadata"]["name"] != FRONTEND_POLICY for p in s.objects["networkpolicies"]), 5)
    assert all(p["metadata"]["name"] != FRONTEND_POLICY for p in snapshot.objects["networkpolicies"])


def test_forbidden_resource_is_named_and_the_rest_keeps_working(server, started, tmp_path: Path) -> None:
    server.fail("networkpolicies", 403)
    source = started(write_kubeconfig(tmp_path / "config", server.url))
    snapshot = source.wait(lambda s: s.ready, 10)
    assert snapshot.states["networkpolicies"].state == FORBIDDEN
    assert snapshot.problems() == [
        "cannot list networkpolicies.networking.k8s.io at cluster scope: forbidden (RBAC: needs list/watch)"
    ]
    assert not snapshot.policies_complete
    assert snapshot.states["pods"].state == OK and snapshot.objects["pods"]
    assert snapshot.objects["networkpolicies"] == ()


def test_rejected_credentials_are_reported(started, tmp_path: Path) -> None:
    server = start_kube_api(WORLD, token="right")
    try:
        source = started(write_kubeconfig(tmp_path / "config", server.url, token="wrong"))
        snapshot = source.wait(lambda s: s.ready, 10)
        assert {s.state for s in snapshot.states.values()} == {UNAUTHORIZED}
        assert snapshot.problems()[0] == (
            f"cannot list namespaces: unauthorized (the credentials of context kcockpit-sim at {server.url} were rejected)"
        )
    finally:
        server.stop()


def test_cilium_policies_are_read_when_the_crds_exist(started, tmp_path: Path) -> None:
    cnp = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "deny-world", "namespace": "otel-demo"},
           "spec": {"endpointSelector": {}, "egressDeny": [{"toEntities": ["world"]}]}}
    server = start_kube_api({**WORLD.k8s_objects("healthy"), "ciliumnetworkpolicies": [cnp]}, cilium=True)
    try:
        snapshot = started(write_kubeconfig(tmp_path / "config", server.url)).wait(lambda s: s.ready, 10)
        assert snapshot.states["ciliumnetworkpolicies"].state == OK
        assert snapshot.states["ciliumclusterwidenetworkpolicies"].state == OK
        assert [p["kind"] for p in snapshot.cluster().cilium_policies] == ["CiliumNetworkPolicy"]
    finally:
        server.stop()


def test_api_server_down_then_back(server, started, tmp_path: Path) -> None:
    source = started(write_kubeconfig(tmp_path / "config", server.url))
    source.wait(lambda s: s.ready, 10)
    server.stop()
    # First the open watches break ("connection lost"), then the re-lists are refused.
    snapshot = source.wait(lambda s: "connection refused" in s.states["pods"].message, 10)
    assert snapshot.states["pods"].state == UNREACHABLE
    problems = snapshot.problems()
    assert problems and all(p.startswith(f"cannot reach the Kubernetes API server (context kcockpit-sim at {server.url}): ") for p in problems)
    assert any("connection refused; retrying in" in p for p in problems)
    assert snapshot.objects["pods"], "the last known objects stay available while the server is down"
    server.start()
    snapshot = source.wait(lambda s: all(st.state in (OK, ABSENT) for st in s.states.values()), 10)
    assert snapshot.problems() == []


def test_unreachable_from_the_start(started, tmp_path: Path) -> None:
    server = start_kube_api(WORLD)
    url = server.url
    server.stop()
    snapshot = started(write_kubeconfig(tmp_path / "config", url)).wait(lambda s: s.ready, 10)
    assert snapshot.problems()[0].startswith(f"cannot reach the Kubernetes API server (context kcockpit-sim at {url}): connection refused")


def test_read_once_without_threads(server, tmp_path: Path) -> None:
    source = KubernetesSource.from_kubeconfig(str(write_kubeconfig(tmp_path / "config", server.url)))
    snapshot = source.read_once()
    assert snapshot.ready and snapshot.states["pods"].count == len(WORLD.k8s_objects("broken")["pods"])


def test_kubeconfig_env_and_context_like_kubectl(server, tmp_path: Path, monkeypatch) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sim", "cluster": {"server": server.url}}, {"name": "other", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "me", "user": {}}],
        "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "me"}}, {"name": "other", "context": {"cluster": "other", "user": "me"}}],
        "current-context": "other",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert load_api_client()[1] == "context other at http://127.0.0.1:9"
    assert load_api_client(context="sim")[1] == f"context sim at {server.url}"
    with pytest.raises(KubernetesConfigError, match="cannot use context 'nope' in kubeconfig"):
        load_api_client(context="nope")
    with pytest.raises(KubernetesConfigError, match=f"kubeconfig {tmp_path}/missing"):
        load_api_client(kubeconfig=str(tmp_path / "missing"))


def test_no_configuration_at_all_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubernetesConfigError) as error:
        load_api_client()
    assert str(error.value) == (
        f"no kubeconfig at {tmp_path}/.kube/config and not running in a pod: pass --kubeconfig/--context, "
        "set KUBECONFIG, or use --policies DIR for offline manifests"
    )


def test_policy_source_from_arguments(tmp_path: Path) -> None:
    import argparse

    from kcockpit.cli_options import add_kubernetes_arguments, policy_options_from_args
    from kcockpit.sources.kubernetes import StaticSource, open_policy_source

    parser = argparse.ArgumentParser()
    add_kubernetes_arguments(parser)
    malformed = Path(__file__).resolve().parents[1] / "data" / "policies" / "malformed"
    source = open_policy_source(policy_options_from_args(parser.parse_args(["--policies", str(malformed)])))
    assert isinstance(source, StaticSource)
    seen = []
    source.start(seen.append)
    snapshot = source.snapshot()
    assert seen == [snapshot] and snapshot.origin == f"manifests in {malformed}"
    assert len(snapshot.problems()) == 5 and snapshot.problems()[0].endswith("document 1, item 2: missing apiVersion or kind")
    assert [p["metadata"]["name"] for p in snapshot.cluster().networkpolicies] == ["redis-ingress", "cartservice-ingress"]
    assert open_policy_source(policy_options_from_args(parser.parse_args(["--no-kubernetes"]))) is None
    config = write_kubeconfig(tmp_path / "config", "http://127.0.0.1:9")
    live = open_policy_source(policy_options_from_args(parser.parse_args(["--kubeconfig", str(config)])))
    assert isinstance(live, KubernetesSource) and live.origin == "context kcockpit-sim at http://127.0.0.1:9"


# ===== Folded from test_review_kubernetes.py =======================================================
# Review: the Kubernetes source and the loopback API server release everything on stop.


def _sockets() -> set[str]:
    """This process's open sockets, by inode ("socket:[1234]"): a new socket is told apart
    from a closed one even when it reuses the file descriptor."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:"):
            found.add(target)
    return found


def _leftovers(baseline: tuple[set, set], timeout: float = 20.0) -> tuple[set, set]:
    """Threads and sockets that exist now but not at `baseline`, once they stop going away.
    Things of earlier tests that close meanwhile do not count (they did with plain counts)."""
    deadline = time.monotonic() + timeout
    while True:
        threads = set(threading.enumerate()) - baseline[0]
        sockets = _sockets() - baseline[1]
        if not (threads or sockets) or time.monotonic() > deadline:
            return threads, sockets
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts sockets through /proc")
def test_start_stop_twenty_times_leaves_no_thread_or_socket_behind(tmp_path: Path) -> None:
    api = start_kube_api(World.build(13), phase="broken")
    try:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        baseline = (set(threading.enumerate()), _sockets())
        for _ in range(20):
            source = KubernetesSource.from_kubeconfig(str(kubeconfig), retry_max_s=0.2, resync_s=30)
            source.start()
            assert source.wait(lambda snapshot: snapshot.ready, 20).ready
            source.stop()
        # Threads of both the source and the API server's watch handlers, and the sockets between them.
        # The handlers notice a closed watch on their next 0.5 s wake-up: slower with the CPU busy.
        assert _leftovers(baseline) == (set(), set())
    finally:
        api.stop()
