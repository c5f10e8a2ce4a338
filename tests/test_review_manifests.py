"""Review: malformed manifests are reported per document, never a traceback."""

from __future__ import annotations

import argparse
from pathlib import Path

from kcockpit.sources import manifests, policy_cli


def policy(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kcockpit policy")
    policy_cli.add_arguments(parser)
    return policy_cli.run(parser.parse_args(list(argv)))


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
