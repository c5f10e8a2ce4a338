"""The modelled subset of CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy (cilium.io/v2).

Modelled: endpointSelector, ingress/egress with from/toEndpoints, from/toEntities,
from/toCIDR, from/toCIDRSet, toFQDNs, toPorts (L4; L7 rules are noted, not evaluated),
ingressDeny/egressDeny (deny wins), enableDefaultDeny. Any other field in a rule makes
that rule "unknown", so the engine answers "not evaluated" rather than guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kcockpit.policy import selectors
from kcockpit.policy.cluster import Cluster
from kcockpit.policy.endpoints import (
    CILIUM_NAMESPACE_LABEL,
    CILIUM_NAMESPACE_LABELS_PREFIX,
    CILIUM_SERVICE_ACCOUNT_LABEL,
    HOST,
    KUBE_APISERVER,
    POD,
    REMOTE_NODE,
    UNKNOWN as UNKNOWN_KIND,
    WORLD,
    Endpoint,
    ip_in_block,
)
from kcockpit.policy.networkpolicy import L4_PROTOCOLS, namespace_labels, resolve_named_port
from kcockpit.policy.results import (
    EGRESS,
    MATCH,
    PEER_MISMATCH,
    PORT_MISMATCH,
    PROTOCOL_MISMATCH,
    UNKNOWN,
    Connection,
    PolicyOutcome,
    PolicyRef,
    RuleOutcome,
)

CNP = "CiliumNetworkPolicy"
CCNP = "CiliumClusterwideNetworkPolicy"
ENTITY_KINDS = {
    "world": {WORLD},
    "world-ipv4": {WORLD},
    "world-ipv6": {WORLD},
    # everything but world: also health, init, unmanaged and ingress, which are UNKNOWN_KIND here
    "cluster": {POD, HOST, REMOTE_NODE, KUBE_APISERVER, UNKNOWN_KIND},
    "host": {HOST},
    "remote-node": {REMOTE_NODE},
    "kube-apiserver": {KUBE_APISERVER},
    "all": {POD, HOST, REMOTE_NODE, KUBE_APISERVER, WORLD, UNKNOWN_KIND},
}
# Cilium's cluster-name label on every identity; pods and flows here do not carry the name.
CLUSTER_LABEL = "io.cilium.k8s.policy.cluster"
# Entities that exist in Cilium but name endpoints the engine does not model.
UNMODELLED_ENTITIES = {"health", "init", "unmanaged", "ingress"}
PEER_FIELDS = {
    "ingress": ("fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet"),
    "egress": ("toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toFQDNs"),
}
KNOWN_RULE_FIELDS = {
    "ingress": set(PEER_FIELDS["ingress"]) | {"toPorts"},
    "egress": set(PEER_FIELDS["egress"]) | {"toPorts"},
}


def ref(policy: Mapping) -> PolicyRef:
    metadata = policy.get("metadata") or {}
    if policy.get("kind") == CCNP or not metadata.get("namespace"):
        return PolicyRef(CCNP, "", metadata.get("name", ""))
    return PolicyRef(CNP, metadata["namespace"], metadata.get("name", ""))


def specs(policy: Mapping) -> list[tuple[str, Mapping]]:
    """(section prefix, rule) pairs: `spec` and every item of `specs`."""
    found = [("", policy["spec"])] if policy.get("spec") else []
    found += [(f"specs[{i}].", s) for i, s in enumerate(policy.get("specs") or ()) if s]
    return found


def cilium_labels(endpoint: Endpoint, cluster: Cluster) -> dict[str, str]:
    """The label set Cilium derives for a pod's identity: pod labels, namespace and service account."""
    labels = dict(endpoint.labels)
    labels[CILIUM_NAMESPACE_LABEL] = endpoint.namespace
    if endpoint.service_account:
        labels[CILIUM_SERVICE_ACCOUNT_LABEL] = endpoint.service_account
    for key, value in namespace_labels(endpoint, cluster)[0].items():
        labels[CILIUM_NAMESPACE_LABELS_PREFIX + key] = value
    return labels


def selects(policy: Mapping, spec: Mapping, endpoint: Endpoint, cluster: Cluster) -> bool:
    if endpoint.kind != POD or "endpointSelector" not in spec:
        return False  # nodeSelector (host policies) selects nodes, not pods
    policy_ref = ref(policy)
    if policy_ref.namespace and policy_ref.namespace != endpoint.namespace:
        return False
    selector, names_cluster = _without_cluster_label(spec.get("endpointSelector"))
    matched = selectors.matches(selector, cilium_labels(endpoint, cluster))
    if matched and names_cluster:
        raise selectors.SelectorError(f"endpointSelector uses {CLUSTER_LABEL}, the Cilium cluster name, which kcockpit does not know")
    return matched


def _without_cluster_label(selector: Mapping | None) -> tuple[Mapping | None, bool]:
    """(the selector without requirements on CLUSTER_LABEL, whether it had any)."""
    if not selector:
        return selector, False
    labels = {k: v for k, v in (selector.get("matchLabels") or {}).items() if selectors.strip_source(k) != CLUSTER_LABEL}
    expressions = [e for e in selector.get("matchExpressions") or () if selectors.strip_source(str((e or {}).get("key", ""))) != CLUSTER_LABEL]
    had = len(labels) != len(selector.get("matchLabels") or {}) or len(expressions) != len(selector.get("matchExpressions") or ())
    return {**selector, "matchLabels": labels, "matchExpressions": expressions}, had


def outcome(policy: Mapping, direction: str, endpoint: Endpoint, conn: Connection, cluster: Cluster, dns_rule: bool):
    """The policy's effect on `endpoint` for `direction`; None when it selects nothing here.

    dns_rule: whether some policy selecting the source has a DNS proxy rule (needed by toFQDNs).
    """
    policy_ref = ref(policy)
    isolates = False
    allows: list[RuleOutcome] = []
    denies: list[RuleOutcome] = []
    selected = False
    peer = conn.destination if direction == EGRESS else conn.source
    for prefix, spec in specs(policy):
        try:
            selected_here = selects(policy, spec, endpoint, cluster)
        except selectors.SelectorError as error:  # a CRD object the engine cannot read: say so, do not guess
            invalid = RuleOutcome(policy_ref, prefix + "endpointSelector", 0, UNKNOWN, "endpointSelector", str(error))
            return PolicyOutcome(policy_ref, isolates=True, allows=(invalid,))
        if not selected_here:
            continue
        selected = True
        rules = spec.get(direction) or []
        deny_rules = spec.get(direction + "Deny") or []
        default_deny = (spec.get("enableDefaultDeny") or {}).get(direction, True)
        if (rules or deny_rules) and default_deny is not False:
            isolates = True
        for i, rule in enumerate(rules):
            allows.append(_rule(policy_ref, prefix + direction, i, rule or {}, direction, peer, conn, cluster, dns_rule))
        for i, rule in enumerate(deny_rules):
            section = prefix + direction + "Deny"
            denies.append(_rule(policy_ref, section, i, rule or {}, direction, peer, conn, cluster, dns_rule))
    if not selected:
        return None
    return PolicyOutcome(policy_ref, isolates=isolates, allows=tuple(allows), denies=tuple(denies))


def has_dns_rule(policy: Mapping, endpoint: Endpoint, cluster: Cluster) -> bool:
    """Whether the policy gives `endpoint` an egress rule with L7 DNS rules (Cilium's DNS proxy)."""
    for _, spec in specs(policy):
        try:
            selected = selects(policy, spec, endpoint, cluster)
        except selectors.SelectorError:
            continue  # reported as not evaluated by outcome()
        if selected:
            for rule in spec.get("egress") or ():
                for to_port in (rule or {}).get("toPorts") or ():
                    if ((to_port or {}).get("rules") or {}).get("dns"):
                        return True
    return False


def _rule(policy_ref, section, index, rule, direction, peer, conn, cluster, dns_rule) -> RuleOutcome:
    text = describe_rule(rule, direction)
    unmodelled = sorted(set(rule) - KNOWN_RULE_FIELDS[direction])
    if unmodelled:
        return RuleOutcome(policy_ref, section, index, UNKNOWN, text, f"uses {', '.join(unmodelled)}, which kcockpit does not evaluate")
    peer_result, peer_detail = _match_peers(rule, direction, peer, policy_ref.namespace, cluster, dns_rule)
    if peer_result == PEER_MISMATCH:
        return RuleOutcome(policy_ref, section, index, PEER_MISMATCH, text, peer_detail)
    port_result, port_index, port_detail = _match_to_ports(rule.get("toPorts") or [], conn)
    if port_result in (PORT_MISMATCH, PROTOCOL_MISMATCH):
        return RuleOutcome(policy_ref, section, index, port_result, text, port_detail)
    if UNKNOWN in (peer_result, port_result):
        detail = "; ".join(d for d in (peer_detail, port_detail) if d)
        return RuleOutcome(policy_ref, section, index, UNKNOWN, text, detail, None, port_index)
    return RuleOutcome(policy_ref, section, index, MATCH, text, port_detail, None, port_index)


def _match_peers(rule, direction, peer: Endpoint, namespace: str, cluster: Cluster, dns_rule: bool):
    fields = [f for f in PEER_FIELDS[direction] if rule.get(f) is not None]
    if not fields:
        # Only toPorts: L4 applies to every peer. A rule with nothing at all selects no one.
        return (MATCH, "") if rule.get("toPorts") else (PEER_MISMATCH, "an empty rule selects no peer")
    details = []
    unknown = ""
    for name in fields:
        result, detail = _MATCHERS[name.removeprefix("from").removeprefix("to")](rule[name], peer, namespace, cluster, dns_rule)
        if result == MATCH:
            return MATCH, ""
        if result == UNKNOWN:
            unknown = unknown or detail
        elif detail:
            details.append(detail)
    if unknown:
        return UNKNOWN, unknown
    return PEER_MISMATCH, "; ".join(details) or f"no peer matches {peer.display()}"


def _match_endpoints(items, peer: Endpoint, namespace: str, cluster: Cluster, _dns):
    if peer.kind != POD:
        return PEER_MISMATCH, f"endpoint selectors match pods, not {peer.display()}"
    labels = cilium_labels(peer, cluster)
    unknown = ""
    for selector in items:
        selector = selector or {}
        keys = list((selector.get("matchLabels") or {})) + [e.get("key", "") for e in selector.get("matchExpressions") or ()]
        if any(k.startswith("reserved:") for k in keys):
            return UNKNOWN, "selectors on reserved: labels are not evaluated"
        scoped = any(selectors.strip_source(k) == CILIUM_NAMESPACE_LABEL for k in keys)
        if namespace and not scoped and peer.namespace != namespace:
            continue  # a CNP's endpoint selectors are local to its namespace
        selector, names_cluster = _without_cluster_label(selector)
        if selectors.matches(selector, labels):
            if not names_cluster:
                return MATCH, ""
            unknown = unknown or f"{CLUSTER_LABEL} (the Cilium cluster name) is not known to kcockpit"
    if unknown:
        return UNKNOWN, unknown
    wanted = " or ".join(describe_endpoint_selector(s or {}) for s in items)
    return PEER_MISMATCH, f"{wanted} does not match {peer.display()}"


def _match_entities(items, peer: Endpoint, _ns, _cluster, _dns):
    for entity in items:
        if entity in UNMODELLED_ENTITIES:
            if peer.kind == UNKNOWN_KIND:
                return UNKNOWN, f"entity {entity} is not evaluated"
            continue
        if entity not in ENTITY_KINDS:
            return UNKNOWN, f"unknown entity {entity}"
        if peer.kind in ENTITY_KINDS[entity]:
            return MATCH, ""
    return PEER_MISMATCH, f"entities {', '.join(items)} do not include {peer.kind}"


def _match_cidrs(items, peer, _ns, _cluster, _dns):
    return _match_cidr_set([{"cidr": c} for c in items], peer, _ns, _cluster, _dns)


def _match_cidr_set(items, peer: Endpoint, _ns, _cluster, _dns):
    if peer.kind != WORLD:
        return PEER_MISMATCH, "CIDR rules never select cluster endpoints on Cilium: use toEndpoints or toEntities"
    if not peer.ip:
        return UNKNOWN, f"the IP of {peer.display()} is unknown"
    for item in items:
        if "cidr" not in item:
            return UNKNOWN, "cidrGroupRef is not evaluated"
        try:
            if ip_in_block(peer.ip, item["cidr"], item.get("except") or ()):
                return MATCH, ""
        except ValueError as error:
            return UNKNOWN, f"invalid CIDR: {error}"
    return PEER_MISMATCH, f"CIDRs {', '.join(i.get('cidr', '?') for i in items)} (with their excepts) do not match {peer.ip}"


def _match_fqdns(items, peer: Endpoint, _ns, _cluster, dns_rule: bool):
    if peer.kind != WORLD:
        return PEER_MISMATCH, "toFQDNs never selects cluster endpoints: use toEndpoints"
    if not dns_rule:
        return PEER_MISMATCH, "toFQDNs needs a DNS rule: no egress rule with toPorts rules.dns lets the DNS proxy learn the IPs"
    if not peer.dns_names:
        return UNKNOWN, f"the DNS name of {peer.ip} is unknown"
    for item in items:
        if any(fqdn_matches(item, name) for name in peer.dns_names):
            return MATCH, ""
    return PEER_MISMATCH, f"{peer.dns_names[0]} matches no toFQDNs entry"


def fqdn_matches(item: Mapping, name: str) -> bool:
    """matchName is exact; in matchPattern `*` stands for DNS characters other than the dot."""
    name = name.rstrip(".").lower()
    if "matchName" in item:
        return name == str(item["matchName"]).rstrip(".").lower()
    pattern = str(item.get("matchPattern", "")).rstrip(".").lower()
    if pattern == "*":
        return True
    regex = "".join("[-a-z0-9_]*" if c == "*" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name) is not None


_MATCHERS = {
    "Endpoints": _match_endpoints,
    "Entities": _match_entities,
    "CIDR": _match_cidrs,
    "CIDRSet": _match_cidr_set,
    "FQDNs": _match_fqdns,
}


def _match_to_ports(to_ports: list, conn: Connection):
    if not to_ports:
        return MATCH, None, ""
    unknown = ""
    protocol_seen = False
    for i, to_port in enumerate(to_ports):
        to_port = to_port or {}
        l7 = sorted((to_port.get("rules") or {}).keys())
        note = f"L7 {', '.join(l7)} rules further filter requests (not evaluated)" if l7 else ""
        for entry in to_port.get("ports") or [{}]:
            protocol = (entry or {}).get("protocol", "ANY")
            if protocol != "ANY" and protocol != conn.protocol:
                continue
            if protocol == "ANY" and conn.protocol not in L4_PROTOCOLS:
                continue
            protocol_seen = True
            result, detail = _match_port(entry or {}, protocol, conn)
            if result == MATCH:
                return MATCH, i, note
            if result == UNKNOWN:
                unknown = unknown or detail
    if unknown:
        return UNKNOWN, None, unknown
    wanted = "; ".join(describe_to_port(t or {}) for t in to_ports)
    return (PORT_MISMATCH if protocol_seen else PROTOCOL_MISMATCH), None, f"ports {wanted} do not include {conn.port_text()}"


def _match_port(entry: Mapping, protocol: str, conn: Connection):
    port = str(entry.get("port", "0"))
    if port == "0":
        return MATCH, ""
    if not (port.isascii() and port.isdigit()):  # isdigit alone takes "²"
        return resolve_named_port(port, conn.protocol if protocol == "ANY" else protocol, conn)
    low = int(port)
    high = int(entry.get("endPort") or low)
    return (MATCH if low <= conn.port <= high else PORT_MISMATCH), ""


def describe_endpoint_selector(selector: Mapping) -> str:
    """`k8s-app=kube-dns in namespace kube-system` for selectors that pin the namespace label."""
    match_labels = {selectors.strip_source(k): v for k, v in (selector.get("matchLabels") or {}).items()}
    namespace = match_labels.pop(CILIUM_NAMESPACE_LABEL, None)
    rest = selectors.describe({**selector, "matchLabels": match_labels}, "all endpoints")
    return f"{rest} in namespace {namespace}" if namespace else rest


def describe_to_port(to_port: Mapping) -> str:
    parts = []
    for entry in to_port.get("ports") or [{}]:
        entry = entry or {}
        protocol = entry.get("protocol", "ANY")
        port = str(entry.get("port", "0"))
        port_text = "all ports" if port == "0" else port + (f"-{entry['endPort']}" if entry.get("endPort") else "")
        parts.append(f"{protocol} {port_text}")
    return ", ".join(parts)


def describe_rule(rule: Mapping, direction: str) -> str:
    peers = []
    for name in PEER_FIELDS[direction]:
        value = rule.get(name)
        if value is None:
            continue
        if name.endswith("Endpoints"):
            peers += [describe_endpoint_selector(s or {}) for s in value]
        elif name.endswith("Entities"):
            peers += [f"entity {e}" for e in value]
        elif name.endswith("CIDR"):
            peers += list(value)
        elif name.endswith("CIDRSet"):
            peers += [str(i.get("cidr", i.get("cidrGroupRef", "?"))) for i in value]
        else:
            peers += [str(i.get("matchName") or i.get("matchPattern")) for i in value]
    to_ports = rule.get("toPorts") or []
    unmodelled = sorted(set(rule) - KNOWN_RULE_FIELDS[direction])
    who = " or ".join(peers + unmodelled) if peers or unmodelled else ("everyone" if to_ports else "no one")
    if to_ports:
        return f"{who} on {'; '.join(describe_to_port(t or {}) for t in to_ports)}"
    return who


def validate(policy: Mapping) -> list[str]:
    """Selector problems in a Cilium policy read from a file (the CRD schema would reject them)."""
    problems = []
    if not specs(policy):
        return ["neither spec nor specs is set"]
    for prefix, spec in specs(policy):
        where = f"{prefix or 'spec.'}"
        problems += selectors.validate(spec.get("endpointSelector"), f"{where}endpointSelector")
        for section in ("ingress", "egress", "ingressDeny", "egressDeny"):
            for i, rule in enumerate(spec.get(section) or ()):
                for field in ("fromEndpoints", "toEndpoints"):
                    for j, selector in enumerate((rule or {}).get(field) or ()):
                        problems += selectors.validate(selector, f"{where}{section}[{i}].{field}[{j}]")
    return problems
