"""The simulated cluster's loopback Kubernetes API server, driven by the official `kubernetes` client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from kubernetes import client, config, watch

from kcockpit.sim.kube_api import start_kube_api, write_kubeconfig
from kcockpit.sim.world import FRONTEND_POLICY, World
from polling import wait_until

WORLD = World.build(11)


@pytest.fixture
def server():
    api = start_kube_api(WORLD, phase="broken")
    yield api
    api.stop()


def api_client(server, tmp_path: Path, token: str | None = None) -> client.ApiClient:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url, token=token)
    return config.new_client_from_config(str(kubeconfig), persist_config=False)


def test_typed_lists_match_the_world(server, tmp_path: Path) -> None:
    api = api_client(server, tmp_path)
    objects = WORLD.k8s_objects("broken")
    namespaces = client.CoreV1Api(api).list_namespace()
    assert [n.metadata.name for n in namespaces.items] == sorted(n["metadata"]["name"] for n in objects["namespaces"])
    assert int(namespaces.metadata.resource_version) > 0
    policies = client.NetworkingV1Api(api).list_network_policy_for_all_namespaces()
    frontend = next(p for p in policies.items if p.metadata.name == FRONTEND_POLICY)
    assert frontend.spec.pod_selector.match_labels == {"app": "frontend"}
    assert frontend.spec.policy_types == ["Egress"]
    slices = client.DiscoveryV1Api(api).list_endpoint_slice_for_all_namespaces()
    assert len(slices.items) == len(objects["endpointslices"])
    services = client.CoreV1Api(api).list_namespaced_service("kube-system")
    assert "kube-dns" in [s.metadata.name for s in services.items]
    assert client.VersionApi(api).get_code().git_version == "v1.30.0"


def test_raw_lists_and_single_objects_are_the_world_json(server, tmp_path: Path) -> None:
    core = client.CoreV1Api(api_client(server, tmp_path))
    body = json.loads(core.list_pod_for_all_namespaces(_preload_content=False).data)
    assert body["kind"] == "PodList" and body["apiVersion"] == "v1"
    world_pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in WORLD.k8s_objects("broken")["pods"]}
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in body["items"]} == set(world_pods)
    pod = body["items"][0]
    single = json.loads(core.read_namespaced_pod(pod["metadata"]["name"], pod["metadata"]["namespace"], _preload_content=False).data)
    assert single == pod
    in_namespace = json.loads(core.list_namespaced_pod("otel-demo", _preload_content=False).data)["items"]
    assert in_namespace and all(p["metadata"]["namespace"] == "otel-demo" for p in in_namespace)
    with pytest.raises(client.ApiException) as missing:
        core.read_namespace("no-such-namespace")
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["reason"] == "NotFound"


def test_discovery_and_cilium_crds_only_when_enabled(server, tmp_path: Path) -> None:
    api = api_client(server, tmp_path)
    groups = [g.name for g in client.ApisApi(api).get_api_versions().groups]
    assert groups == ["discovery.k8s.io", "networking.k8s.io"]
    custom = client.CustomObjectsApi(api)
    with pytest.raises(client.ApiException) as absent:
        custom.list_cluster_custom_object("cilium.io", "v2", "ciliumnetworkpolicies")
    assert absent.value.status == 404
    cnp = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "dns", "namespace": "otel-demo"},
           "spec": {"endpointSelector": {}, "egress": [{"toEntities": ["cluster"]}]}}
    with_cilium = start_kube_api({**WORLD.k8s_objects("broken"), "ciliumnetworkpolicies": [cnp]}, cilium=True)
    try:
        api = api_client(with_cilium, tmp_path)
        assert "cilium.io" in [g.name for g in client.ApisApi(api).get_api_versions().groups]
        listed = client.CustomObjectsApi(api).list_namespaced_custom_object("cilium.io", "v2", "otel-demo", "ciliumnetworkpolicies")
        assert [i["metadata"]["name"] for i in listed["items"]] == ["dns"]
        assert client.CustomObjectsApi(api).list_cluster_custom_object("cilium.io", "v2", "ciliumclusterwidenetworkpolicies")["items"] == []
    finally:
        with_cilium.stop()


def test_watch_streams_the_phase_change(server, tmp_path: Path) -> None:
    networking = client.NetworkingV1Api(api_client(server, tmp_path))
    version = networking.list_network_policy_for_all_namespaces().metadata.resource_version
    events: list[tuple[str, str, int]] = []
    stream = watch.Watch()

    def follow() -> None:
        for event in stream.stream(networking.list_network_policy_for_all_namespaces, resource_version=version, timeout_seconds=5):
            events.append((event["type"], event["object"].metadata.name, len(event["object"].spec.egress or ())))
            if len(events) == 2:
                stream.stop()

    follower = threading.Thread(target=follow)
    follower.start()
    assert server.set_phase("fixed") == 1
    assert server.set_phase("healthy") == 1
    follower.join(6)
    assert events == [("MODIFIED", FRONTEND_POLICY, 2), ("DELETED", FRONTEND_POLICY, 2)]


def test_watch_resumes_from_an_old_resource_version(server, tmp_path: Path) -> None:
    networking = client.NetworkingV1Api(api_client(server, tmp_path))
    version = networking.list_network_policy_for_all_namespaces().metadata.resource_version
    server.set_phase("fixed")  # happens while nobody watches
    events = list(watch.Watch().stream(networking.list_network_policy_for_all_namespaces, resource_version=version, timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("MODIFIED", FRONTEND_POLICY)]
    assert int(events[0]["object"].metadata.resource_version) > int(version)


def test_forbidden_resource_returns_a_status(server, tmp_path: Path) -> None:
    server.fail("networkpolicies", 403)
    api = api_client(server, tmp_path)
    with pytest.raises(client.ApiException) as forbidden:
        client.NetworkingV1Api(api).list_network_policy_for_all_namespaces()
    status = json.loads(forbidden.value.body)
    assert forbidden.value.status == 403 and status["reason"] == "Forbidden" and status["kind"] == "Status"
    assert 'cannot list resource "networkpolicies" in API group "networking.k8s.io" at the cluster scope' in status["message"]
    assert client.CoreV1Api(api).list_namespace().items  # other resources still answer
    server.heal()
    assert client.NetworkingV1Api(api).list_network_policy_for_all_namespaces().items


def test_bearer_token_is_checked(tmp_path: Path) -> None:
    server = start_kube_api(WORLD, token="s3cret")
    try:
        with pytest.raises(client.ApiException) as unauthorized:
            client.CoreV1Api(api_client(server, tmp_path, token="wrong")).list_namespace()
        assert unauthorized.value.status == 401
        assert client.CoreV1Api(api_client(server, tmp_path, token="s3cret")).list_namespace().items
    finally:
        server.stop()


def test_read_only_and_down_then_back_on_the_same_port(server, tmp_path: Path) -> None:
    api = api_client(server, tmp_path)
    core = client.CoreV1Api(api)
    with pytest.raises(client.ApiException) as refused:
        core.delete_namespace("otel-demo")
    assert refused.value.status == 405
    port = server.port
    server.stop()
    api.configuration.retries = 0
    with pytest.raises(Exception) as down:
        client.CoreV1Api(client.ApiClient(api.configuration)).list_namespace(_request_timeout=2)
    assert "refused" in str(down.value).lower() or "connection" in str(down.value).lower()
    server.start()
    assert server.port == port
    assert client.CoreV1Api(api_client(server, tmp_path)).list_namespace().items


def test_follows_the_scenario_timeline(tmp_path: Path) -> None:
    from kcockpit.sim.clock import ManualClock
    from kcockpit.sim.scenario import Scenario

    clock = ManualClock()
    scenario = Scenario(clock, durations_s={"healthy": 10, "broken": 10, "fixed": 10})
    server = start_kube_api(WORLD)
    try:
        server.follow(scenario, poll_s=0.02)
        networking = client.NetworkingV1Api(api_client(server, tmp_path))
        version = networking.list_network_policy_for_all_namespaces().metadata.resource_version
        clock.advance(11)  # the automatic timeline enters "broken"; nobody but the poller asks
        # The poller thread notices within poll_s, or later on a loaded machine: wait for it
        # (reading server.phase does not ask the scenario), then the watch from the old
        # version replays what it did, however late it came.
        wait_until(lambda: server.phase == "broken", timeout=10)
        events = list(watch.Watch().stream(networking.list_network_policy_for_all_namespaces, resource_version=version, timeout_seconds=1))
        assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", FRONTEND_POLICY)]
        assert server.phase == "broken"
    finally:
        server.close()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_reads_it_too(server, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    env = {"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    result = subprocess.run(["kubectl", "get", "netpol", "-A", "-o", "json"], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    names = sorted(i["metadata"]["name"] for i in json.loads(result.stdout)["items"])
    assert names == sorted(p["metadata"]["name"] for p in WORLD.k8s_objects("broken")["networkpolicies"])


def test_label_and_field_selectors(server, tmp_path: Path) -> None:
    core = client.CoreV1Api(api_client(server, tmp_path))
    selected = json.loads(core.list_pod_for_all_namespaces(label_selector="app=frontend", _preload_content=False).data)["items"]
    assert selected and all(p["metadata"]["labels"]["app"] == "frontend" for p in selected)
    others = json.loads(core.list_namespaced_pod("otel-demo", label_selector="app!=frontend,app", _preload_content=False).data)["items"]
    assert others and all(p["metadata"]["labels"]["app"] != "frontend" for p in others)
    named = core.list_namespace(field_selector="metadata.name=kube-system").items
    assert [n.metadata.name for n in named] == ["kube-system"]
    with pytest.raises(client.ApiException) as bad:
        core.list_namespace(label_selector="env in (a,b)")
    assert bad.value.status == 400


# ===== Folded from test_review_sim.py ==============================================================
# Review: the simulator's servers refuse bad addresses and requests with their own messages.


def test_the_simulated_kube_api_refuses_a_malformed_watch_resource_version(tmp_path) -> None:
    import json
    import urllib.error
    import urllib.request

    from kcockpit.sim.kube_api import start_kube_api

    api = start_kube_api(World.build(3), phase="healthy")
    try:
        for query in ("resourceVersion=abc", "resourceVersion=%C2%B2", "resourceVersion=1&timeoutSeconds=x"):
            url = f"{api.url}/api/v1/pods?watch=true&{query}"
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(url, timeout=5)
            assert caught.value.code == 400, query
            assert json.loads(caught.value.read())["reason"] == "BadRequest"
    finally:
        api.stop()
