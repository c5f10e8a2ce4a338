"""Label selectors: matching (matchLabels + matchExpressions) and one-line rendering.

Kubernetes selectors and Cilium endpoint selectors share this code. Cilium keys may
carry a source prefix (`k8s:app`, `any:app`); a bare key means "any source", so the
prefix is stripped before matching against plain Kubernetes labels.
"""

from __future__ import annotations

from collections.abc import Mapping

# Prefixes Cilium puts in front of label keys to say where the label came from.
LABEL_SOURCES = ("k8s", "any", "container", "reserved", "cidr", "fqdn", "unspec", "cni")


class SelectorError(ValueError):
    """A selector that the API server would reject (unknown operator, missing values)."""


def strip_source(key: str) -> str:
    """`k8s:app` -> `app`; keys without a known source prefix are returned unchanged."""
    source, sep, rest = key.partition(":")
    return rest if sep and source in LABEL_SOURCES else key


def parse_label(text: str) -> tuple[str, str]:
    """`k8s:app=frontend` -> ("app", "frontend"); a label without `=` has an empty value."""
    key, _, value = text.partition("=")
    return strip_source(key), value


def matches(selector: Mapping | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector matches a label set. None or {} selects everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(strip_source(key)) != str(value):
            return False
    for expression in selector.get("matchExpressions") or ():
        if not _expression_matches(expression, labels):
            return False
    return True


def _expression_matches(expression: Mapping, labels: Mapping[str, str]) -> bool:
    key = strip_source(str(expression.get("key", "")))
    operator = expression.get("operator")
    values = [str(v) for v in expression.get("values") or ()]
    if operator == "In":
        if not values:
            raise SelectorError(f"matchExpressions key {key!r}: operator In needs values")
        return key in labels and labels[key] in values
    if operator == "NotIn":
        if not values:
            raise SelectorError(f"matchExpressions key {key!r}: operator NotIn needs values")
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise SelectorError(f"matchExpressions key {key!r}: unknown operator {operator!r} (In, NotIn, Exists, DoesNotExist)")


def describe(selector: Mapping | None, everything: str = "all pods") -> str:
    """Short human form: `app=backend`, `tier in (a, b)`, `!debug`; `everything` for {}."""
    if not selector:
        return everything
    parts = [f"{strip_source(k)}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or ():
        key = strip_source(str(expression.get("key", "")))
        values = ", ".join(str(v) for v in expression.get("values") or ())
        operator = expression.get("operator")
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(key)
        else:
            parts.append(f"!{key}")
    return ",".join(parts) if parts else everything


def validate(selector: Mapping | None, where: str) -> list[str]:
    """Problems the API server would reject in a LabelSelector, each naming `where`."""
    if selector is None:
        return []
    if not isinstance(selector, Mapping):
        return [f"{where}: a selector must be a mapping"]
    problems = []
    if not isinstance(selector.get("matchLabels") or {}, Mapping):
        problems.append(f"{where}.matchLabels: must be a mapping of label to value")
    for i, expression in enumerate(selector.get("matchExpressions") or ()):
        if not isinstance(expression, Mapping):
            problems.append(f"{where}.matchExpressions[{i}]: must be a mapping with key and operator")
            continue
        try:
            _expression_matches(expression, {})
        except SelectorError as error:
            problems.append(f"{where}.matchExpressions[{i}]: {error}")
    return problems
