"""Offline cluster data: a directory (or file) of YAML/JSON manifests, as `--policies DIR` reads it.

Multi-document files and `kubectl get -o yaml` Lists are expanded. Deployments,
StatefulSets, DaemonSets, ReplicaSets and Jobs stand in for their pods (one pod named
after the workload, with the template's labels and ports), so application manifests are
enough to ask about a connection. A malformed document is reported with its file and
document number and skipped; everything else is still loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kcockpit.policy import cilium, networkpolicy
from kcockpit.policy.cluster import RESOURCE_OF_KIND, Cluster

SUFFIXES = (".yaml", ".yml", ".json")
CLUSTER_SCOPED = ("Namespace", "Node", "CiliumClusterwideNetworkPolicy")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
_DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)


class ManifestError(Exception):
    """The path itself cannot be read (missing, not a manifest file, permission)."""


@dataclass(frozen=True)
class ManifestProblem:
    path: str
    document: int  # 1-based
    message: str
    item: int | None = None  # 1-based index inside a List document

    def __str__(self) -> str:
        item = f", item {self.item}" if self.item is not None else ""
        return f"{self.path}: document {self.document}{item}: {self.message}"


@dataclass
class ManifestSet:
    objects: list[dict] = field(default_factory=list)
    problems: list[ManifestProblem] = field(default_factory=list)
    files: int = 0
    ignored: int = 0  # well-formed objects of kinds the policy engine does not use

    def cluster(self) -> Cluster:
        return Cluster.from_items(self.objects)


def load(path: str | Path) -> ManifestSet:
    """Read every manifest under `path` (recursively, sorted), or the single file `path`."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    elif root.is_file():
        files = [root]
    else:
        raise ManifestError(f"{path}: no such file or directory (expected a directory of YAML/JSON manifests)")
    result = ManifestSet()
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            result.problems.append(ManifestProblem(str(file), 1, f"cannot read: {error}"))
            continue
        result.files += 1
        for index, (first_line, document) in enumerate(_documents(text, file.suffix.lower() == ".json"), start=1):
            _add_document(result, str(file), index, first_line, document)
    return result


def _documents(text: str, is_json: bool) -> list[tuple[int, str]]:
    """(first line number in the file, text) of each document."""
    if is_json and text.lstrip().startswith(("{", "[")):
        return [(1, text)]
    documents, start, line = [], 0, 1
    for separator in _DOCUMENT_SEPARATOR.finditer(text):
        documents.append((line, text[start : separator.start()]))
        line += text.count("\n", start, separator.end()) + 1
        start = separator.end() + 1
    documents.append((line, text[start:]))
    return documents


def _add_document(result: ManifestSet, path: str, index: int, first_line: int, text: str) -> None:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {first_line + mark.line}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        result.problems.append(ManifestProblem(path, index, f"invalid YAML{where}: {problem}"))
        return
    if document is None:
        return
    if isinstance(document, Mapping) and str(document.get("kind", "")).endswith("List") and "items" in document:
        for number, item in enumerate(document.get("items") or [], start=1):
            _add_object(result, path, index, number, item)
    else:
        _add_object(result, path, index, None, document)


def _add_object(result: ManifestSet, path: str, index: int, item: int | None, obj) -> None:
    def problem(message: str) -> None:
        result.problems.append(ManifestProblem(path, index, message, item))

    if not isinstance(obj, Mapping):
        problem(f"not a Kubernetes object (expected a mapping with apiVersion and kind, got {type(obj).__name__})")
        return
    kind, metadata = obj.get("kind"), obj.get("metadata")
    if not kind or not obj.get("apiVersion"):
        problem("missing apiVersion or kind")
        return
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        problem(f"{kind} without metadata.name")
        return
    validator = {
        "NetworkPolicy": networkpolicy.validate,
        "CiliumNetworkPolicy": cilium.validate,
        "CiliumClusterwideNetworkPolicy": cilium.validate,
        "Service": _validate_service,
        "Pod": lambda pod: _validate_containers(pod.get("spec"), "spec"),
        **{kind: lambda workload: _validate_containers(((workload.get("spec") or {}).get("template") or {}).get("spec"), "spec.template.spec") for kind in WORKLOAD_KINDS},
    }.get(kind)
    errors = validator(obj) if validator else []
    if errors:
        where = f"{metadata['namespace']}/" if metadata.get("namespace") else ("default/" if kind != "CiliumClusterwideNetworkPolicy" else "")
        problem(f"{kind} {where}{metadata['name']}: {'; '.join(errors)}")
        return
    if kind in WORKLOAD_KINDS:
        obj = _pod_from_workload(obj)
        if obj is None:
            problem(f"{kind} {metadata['name']} has no spec.template")
            return
    elif kind not in RESOURCE_OF_KIND:
        result.ignored += 1
        return
    obj = json.loads(json.dumps(obj, default=_json_scalar))  # plain dicts/lists/str, as the API server would return
    if kind not in CLUSTER_SCOPED:
        obj["metadata"].setdefault("namespace", "default")
    result.objects.append(obj)


def _is_port(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


def _validate_service(service: Mapping) -> list[str]:
    """What the engine reads of a Service: every port has a number (targetPort may be a name)."""
    problems = []
    for i, port in enumerate((service.get("spec") or {}).get("ports") or ()):
        if not isinstance(port, Mapping):
            problems.append(f"spec.ports[{i}]: must be a mapping with port and targetPort")
        elif not _is_port(port.get("port")):
            problems.append(f"spec.ports[{i}].port: needs a port number")
        elif not (_is_port(port.get("targetPort", 1)) or isinstance(port.get("targetPort"), str)):
            problems.append(f"spec.ports[{i}].targetPort: {port['targetPort']!r} is neither a port number nor a port name")
    return problems


def _validate_containers(spec, where: str) -> list[str]:
    """Container ports as the engine resolves named ports: each containerPort a number."""
    problems = []
    containers = spec.get("containers") or () if isinstance(spec, Mapping) else ()
    for i, container in enumerate(containers):
        if not isinstance(container, Mapping):
            problems.append(f"{where}.containers[{i}]: must be a mapping with name and ports")
            continue
        for j, port in enumerate(container.get("ports") or ()):
            value = port.get("containerPort") if isinstance(port, Mapping) else port
            if not _is_port(value):
                problems.append(f"{where}.containers[{i}].ports[{j}].containerPort: {value!r} is not a port number")
    return problems


def _json_scalar(value) -> str:
    """YAML scalars JSON lacks (unquoted timestamps and dates) as the API server writes them."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _pod_from_workload(workload: Mapping) -> dict | None:
    """A stand-in Pod for a workload manifest: the template's labels and containers, the workload's name."""
    template = (workload.get("spec") or {}).get("template")
    if not isinstance(template, Mapping):
        return None
    metadata = workload["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata.get("namespace", "default"),
            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
            "ownerReferences": [{"kind": workload["kind"], "name": metadata["name"]}],
        },
        "spec": dict(template.get("spec") or {}),
        "status": {},
    }
