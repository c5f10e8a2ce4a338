"""`kcockpit policy explain|advise` and the manifests loader behind `--manifests/--policies DIR`."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import yaml

from kcockpit.model.record import FlowRecord
from kcockpit.sim.clock import ManualClock
from kcockpit.sim.scenario import Scenario
from kcockpit.sim.traffic import Simulator
from kcockpit.sim.world import World
from kcockpit.sources import manifests, policy_cli
from kcockpit.sources.capture import write_capture

DATA = Path(__file__).resolve().parents[1] / "data" / "policies"
TALK = DATA / "talk"


def policy(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kcockpit policy")
    policy_cli.add_arguments(parser)
    return policy_cli.run(parser.parse_args(list(argv)))


def test_malformed_documents_are_reported_with_file_and_index_and_the_rest_loads() -> None:
    loaded = manifests.load(DATA / "malformed")
    assert [str(p) for p in loaded.problems] == [
        f"{DATA}/malformed/pods.json: document 1, item 2: missing apiVersion or kind",
        f"{DATA}/malformed/policies.yaml: document 2: invalid YAML at line 18: mapping values are not allowed here",
        f"{DATA}/malformed/policies.yaml: document 3: NetworkPolicy otel-demo/bad-operator: spec.podSelector."
        "matchExpressions[0]: matchExpressions key 'app': unknown operator 'Equals' (In, NotIn, Exists, DoesNotExist)",
        f"{DATA}/malformed/policies.yaml: document 4: not a Kubernetes object (expected a mapping with apiVersion and kind, got list)",
        f"{DATA}/malformed/policies.yaml: document 6: CiliumNetworkPolicy otel-demo/bad-cilium-selector: "
        "spec.egress[0].toEndpoints[0].matchExpressions[0]: matchExpressions key 'app': operator In needs values",
    ]
    names = [(o["kind"], o["metadata"]["name"]) for o in loaded.objects]
    assert names == [("Pod", "debug"), ("NetworkPolicy", "redis-ingress"), ("NetworkPolicy", "cartservice-ingress")]


def test_lists_workloads_and_defaults_from_a_manifest_directory() -> None:
    cluster = manifests.load(TALK).cluster()
    assert cluster.knows_namespace("otel-demo") and cluster.knows_namespace("kube-system")
    frontend = cluster.find_pods("otel-demo", "frontend")[0]
    assert frontend.labels == {"app": "frontend", "app.kubernetes.io/name": "frontend"}
    assert [(p.name, p.port, p.protocol) for p in frontend.ports] == [("http", 8080, "TCP")]
    assert [p["metadata"]["name"] for p in cluster.networkpolicies] == ["frontend-egress-allow-to-backend"]


def test_missing_directory_is_one_clear_error(capsys) -> None:
    assert policy("explain", "--manifests", "/nonexistent/dir", "--from", "a/b", "--to", "c/d", "--port", "80") == 2
    assert capsys.readouterr().err == (
        "kcockpit policy: error: /nonexistent/dir: no such file or directory (expected a directory of YAML/JSON manifests)\n"
    )


def test_explain_denied_dns_exits_1_with_the_talk_sentence(capsys) -> None:
    code = policy("explain", "--manifests", str(TALK), "--from", "otel-demo/frontend", "--to", "kube-system/kube-dns", "--port", "53/udp")
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[0] == (
        "DENIED at egress of otel-demo/frontend: isolated by otel-demo/frontend-egress-allow-to-backend; "
        "its only rule allows app=backend, not kube-system/kube-dns on UDP 53."
    )
    assert "fix (egress): add egress rule 2 to otel-demo/frontend-egress-allow-to-backend" in out


def test_explain_allowed_exits_0_and_json_names_the_deciding_rule(capsys) -> None:
    code = policy("explain", "--manifests", str(TALK), "--from", "otel-demo/frontend", "--to", "otel-demo/cartservice", "--port", "8080", "-o", "json")
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["verdict"] == "allowed"
    assert result["deciding"]["egress"] == [{"kind": "NetworkPolicy", "namespace": "otel-demo", "name": "frontend-egress-allow-to-backend"}]
    assert result["egress"]["rules"][0]["result"] == "match"
    assert result["explanation"].startswith("ALLOWED: egress of otel-demo/frontend allowed by otel-demo/frontend-egress-allow-to-backend egress rule 1")


def test_unknown_names_and_bad_ports_exit_2(capsys) -> None:
    assert policy("explain", "--manifests", str(TALK), "--from", "otel-demo/frontend", "--to", "otel-demo/nope", "--port", "80") == 2
    assert "otel-demo/nope: no such pod, workload or Service (workloads in otel-demo: cartservice, frontend, redis)" in capsys.readouterr().err
    assert policy("explain", "--manifests", str(TALK), "--from", "otel-demo/frontend", "--to", "10.1.2.3", "--port", "53/icmp") == 2
    assert "port '53/icmp': protocol must be tcp, udp or sctp" in capsys.readouterr().err


def test_not_evaluated_exits_2(tmp_path: Path, capsys) -> None:
    shutil.copytree(TALK, tmp_path / "m")
    (tmp_path / "m" / "cnp.yaml").write_text(yaml.safe_dump({
        "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "redis-services", "namespace": "otel-demo"},
        "spec": {"endpointSelector": {"matchLabels": {"app": "redis"}},
                 "egress": [{"toServices": [{"k8sService": {"serviceName": "x", "namespace": "otel-demo"}}]}]},
    }))
    code = policy("explain", "--manifests", str(tmp_path / "m"), "--from", "otel-demo/redis", "--to", "203.0.113.5", "--port", "443")
    assert code == 2
    assert capsys.readouterr().out.startswith("NOT EVALUATED at egress of otel-demo/redis: otel-demo/redis-services egress rule 1")


def test_the_proposed_fix_applied_to_the_manifests_turns_the_answer_to_allowed(tmp_path: Path, capsys) -> None:
    """The CI use: propose, apply to the repo's manifests, assert the pipeline now passes."""
    args = ["--from", "otel-demo/frontend", "--to", "kube-system/kube-dns", "--port", "53/udp"]
    assert policy("explain", "--manifests", str(TALK), *args, "-o", "json") == 1
    fixes = json.loads(capsys.readouterr().out)["fixes"]
    patched = fixes[0]["policy"]
    shutil.copytree(TALK, tmp_path / "m")
    (tmp_path / "m" / "frontend-egress-allow-to-backend.yaml").write_text(yaml.safe_dump(patched, sort_keys=False))
    assert policy("explain", "--manifests", str(tmp_path / "m"), *args) == 0
    assert policy("explain", "--manifests", str(tmp_path / "m"), "--from", "otel-demo/frontend", "--to", "otel-demo/redis", "--port", "6379") == 1


def test_advise_from_a_capture_prints_verified_policies(tmp_path: Path, capsys) -> None:
    world = World.build(5)
    clock = ManualClock()
    simulator = Simulator(world, seed=5, clock=clock, scenario=Scenario(clock, mode="healthy"))
    capture = tmp_path / "flows.json"
    write_capture([FlowRecord.from_flow(r.flow) for r in simulator.take(3000)], capture)
    objects = [item for items in world.k8s_objects("healthy").values() for item in items]
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump_all(objects))
    code = policy("advise", "--manifests", str(tmp_path / "cluster.yaml"), "--input-file", str(capture), "--workload", "otel-demo/frontend")
    out = capsys.readouterr().out
    assert code == 0
    documents = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in documents] == ["NetworkPolicy", "CiliumNetworkPolicy"]
    assert documents[0]["metadata"] == {"name": "frontend-least-privilege", "namespace": "otel-demo"}
    assert out.startswith("# Least-privilege policy for otel-demo/frontend, from ")


def test_advise_unknown_workload_exits_2(tmp_path: Path, capsys) -> None:
    capture = tmp_path / "empty.json"
    capture.write_text("")
    assert policy("advise", "--input-file", str(capture), "--workload", "otel-demo/frontend") == 2
    assert "no forwarded flow to or from otel-demo/frontend in the input" in capsys.readouterr().err


@pytest.mark.parametrize("text,expected", [("53/udp", (53, "UDP")), ("8080", (8080, "TCP")), ("3868/SCTP", (3868, "SCTP"))])
def test_port_syntax(text: str, expected: tuple[int, str]) -> None:
    from kcockpit.policy.targets import parse_port

    assert parse_port(text) == expected


def test_explain_against_a_live_cluster(tmp_path: Path, capsys) -> None:
    from kcockpit.sim.kube_api import start_kube_api, write_kubeconfig

    server = start_kube_api(World.build(5), phase="broken")
    try:
        kubeconfig = write_kubeconfig(tmp_path / "config", server.url)
        args = ["--kubeconfig", str(kubeconfig), "--from", "otel-demo/frontend", "--to", "kube-system/kube-dns", "--port", "53/udp"]
        assert policy("explain", *args) == 1
        assert capsys.readouterr().out.startswith("DENIED at egress of otel-demo/frontend: isolated by otel-demo/frontend-egress-allow-to-backend")
        server.set_phase("fixed")
        assert policy("explain", *args) == 0
        capsys.readouterr()
        server.fail("networkpolicies", 403)
        assert policy("explain", *args) == 2
        err = capsys.readouterr().err
        assert "cannot list networkpolicies.networking.k8s.io at cluster scope: forbidden (RBAC: needs list/watch)" in err
        assert f"error: the policies of context kcockpit-sim at {server.url} could not all be read, so no verdict is given" in err
    finally:
        server.stop()


# ===== Folded from test_review_manifests.py ========================================================
# Review: malformed manifests are reported per document, never a traceback.


POD_X_A = """
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
"""


def test_unquoted_timestamps_in_a_manifest_load(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(POD_X_A.replace("labels:", "creationTimestamp: 2024-01-01T00:00:00Z, labels:"))
    loaded = manifests.load(tmp_path)
    assert loaded.problems == []
    assert loaded.objects[0]["metadata"]["creationTimestamp"].startswith("2024-01-01T00:00:00")


def test_ports_and_peers_that_are_not_mappings_are_reported_not_a_traceback(tmp_path: Path, capsys) -> None:
    (tmp_path / "p.yaml").write_text(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  ingress:
  - ports: [80]
    from: [ipBlock]
---"""
        + POD_X_A
    )
    loaded = manifests.load(tmp_path)
    assert [o["kind"] for o in loaded.objects] == ["Pod"]
    [problem] = loaded.problems
    assert "spec.ingress[0].from[0]: a peer must be a mapping" in str(problem)
    assert "spec.ingress[0].ports[0]: a port must be a mapping" in str(problem)
    assert policy("explain", "--manifests", str(tmp_path), "--from", "x/a", "--to", "x/a", "--port", "80") == 0


def test_ports_of_non_ascii_digits_are_refused_or_named_never_a_traceback(tmp_path: Path, capsys) -> None:
    from kcockpit.policy import targets

    for text in ("²", "²/udp", "٥٣/udp"):
        try:
            targets.parse_port(text)
        except targets.TargetError as error:
            assert "expected PORT[/PROTOCOL]" in str(error)
        else:
            raise AssertionError(f"{text!r} was accepted as a port")
    (tmp_path / "p.yaml").write_text(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  ingress:
  - ports: [{port: "²"}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: c, namespace: x}
spec:
  endpointSelector: {}
  ingress:
  - toPorts: [{ports: [{port: "²"}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
"""
    )
    # "²" is no number: a named port the destination does not have, so nothing matches.
    assert policy("explain", "--manifests", str(tmp_path), "--from", "x/b", "--to", "x/a", "--port", "80") == 1
    assert "allow everyone on TCP ²" in capsys.readouterr().out


def test_services_and_pods_with_malformed_ports_are_reported_and_skipped(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.yaml").write_text(
        """
apiVersion: v1
kind: Service
metadata: {name: s, namespace: x}
spec:
  selector: {app: a}
  ports: [{targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: x, labels: {app: c}}
spec: {containers: [{name: c, ports: [{containerPort: http}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worse, namespace: x}
spec: {template: {metadata: {labels: {app: d}}, spec: {containers: [{name: c, ports: [{containerPort: "80"}]}]}}}
---
apiVersion: v1
kind: Pod
metadata: {name: a-1, namespace: x, labels: {app: a}}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
"""
    )
    loaded = manifests.load(tmp_path)
    assert [o["metadata"]["name"] for o in loaded.objects] == ["a-1", "b"]
    assert [p.message for p in loaded.problems] == [
        "Service x/s: spec.ports[0].port: needs a port number",
        "Pod x/bad: spec.containers[0].ports[0].containerPort: 'http' is not a port number",
        "Deployment x/worse: spec.template.spec.containers[0].ports[0].containerPort: '80' is not a port number",
    ]
    # The Service is gone, so the name is unknown: a one-line error, not a KeyError.
    assert policy("explain", "--manifests", str(tmp_path), "--from", "x/b", "--to", "x/s", "--port", "80") == 2
    assert capsys.readouterr().err.endswith("x/s: no such pod, workload or Service (workloads in x: a, b)\n")
