"""NetworkPolicy and CiliumNetworkPolicy semantics, one table row per rule of the reference.

Each case: the policies, the connection, the expected verdict, and the policies expected to
decide each side (the allowing/denying rule's policy, or every isolating policy when denied).
"""

from __future__ import annotations

import pytest

from kcockpit.model.record import EndpointInfo
from kcockpit.policy.cluster import Cluster
from kcockpit.policy.endpoints import UNKNOWN, WORLD, Endpoint, flow_endpoint
from kcockpit.policy.engine import Engine
from kcockpit.policy.results import Connection, Options
from policy_fixtures import app, base_objects, ccnp, cnp, connection, np, ns_name


BACKEND = app("backend")
DNS_RULE = {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}}],
            "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}]}

# id, policies, (source, destination, port, protocol), verdict, {side: deciding policies}
CASES = [
    # --- isolation and policyTypes defaulting
    ("no-policies-allow", [], ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {}),
    ("ingress-deny-all", [np("deny-in", BACKEND, types=["Ingress"])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/deny-in"]}),
    ("ingress-isolation-leaves-egress-open", [np("deny-in", BACKEND, types=["Ingress"])],
     ("prod/backend", "prod/db", 5432, "TCP"), "allowed", {}),
    ("egress-deny-all", [np("deny-out", app("frontend"), types=["Egress"])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "denied", {"egress": ["prod/deny-out"]}),
    ("default-types-egress-rules-also-isolate-ingress", [np("fe", app("frontend"), egress=[{"to": [{"podSelector": BACKEND}]}])],
     ("dev/tester", "prod/frontend", 80, "TCP"), "denied", {"ingress": ["prod/fe"]}),
    ("default-types-egress-rules-isolate-egress", [np("fe", app("frontend"), egress=[{"to": [{"podSelector": BACKEND}]}])],
     ("prod/frontend", "prod/db", 5432, "TCP"), "denied", {"egress": ["prod/fe"]}),
    ("default-types-no-rules-is-ingress-only", [np("bare", app("frontend"))],
     ("prod/frontend", "prod/db", 5432, "TCP"), "allowed", {}),
    ("default-types-no-rules-denies-ingress", [np("bare", app("frontend"))],
     ("prod/backend", "prod/frontend", 80, "TCP"), "denied", {"ingress": ["prod/bare"]}),
    ("egress-rules-ignored-without-egress-type", [np("typo", app("frontend"), types=["Ingress"], egress=[{"to": [{"podSelector": BACKEND}]}])],
     ("prod/frontend", "prod/db", 5432, "TCP"), "allowed", {}),
    ("empty-egress-list-defaults-to-ingress-only", [np("empty", app("frontend"), egress=[])],
     ("prod/frontend", "prod/db", 5432, "TCP"), "allowed", {}),
    ("ingress-empty-rule-allows-all", [np("all-in", BACKEND, ingress=[{}])],
     ("dev/tester", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/all-in"]}),
    ("policy-in-other-namespace-does-not-select", [np("deny-dev", {}, ns="dev", types=["Ingress", "Egress"])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {}),
    ("selector-for-other-pod-does-not-isolate", [np("db-only", app("db"), types=["Ingress"])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {}),
    ("union-of-policies-second-allows",
     [np("from-fe", BACKEND, ingress=[{"from": [{"podSelector": app("frontend")}]}]),
      np("from-mon", BACKEND, ingress=[{"from": [{"namespaceSelector": ns_name("monitoring")}]}])],
     ("monitoring/prometheus", "prod/backend", 9090, "TCP"), "allowed", {"ingress": ["prod/from-mon"]}),
    ("union-of-policies-none-allows",
     [np("from-fe", BACKEND, ingress=[{"from": [{"podSelector": app("frontend")}]}]),
      np("from-mon", BACKEND, ingress=[{"from": [{"namespaceSelector": ns_name("monitoring")}]}])],
     ("dev/tester", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/from-fe", "prod/from-mon"]}),
    # --- peers: podSelector, namespaceSelector, AND within a peer, OR across peers
    ("pod-selector-same-namespace", [np("in", BACKEND, ingress=[{"from": [{"podSelector": app("frontend")}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("pod-selector-is-namespace-local", [np("in", BACKEND, ingress=[{"from": [{"podSelector": app("frontend")}]}])],
     ("dev/frontend", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("namespace-selector-alone-all-pods", [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "obs"}}}]}])],
     ("monitoring/prometheus", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("namespace-selector-alone-other-namespace", [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "obs"}}}]}])],
     ("dev/tester", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("and-within-peer-both-match",
     [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"env": "dev"}}, "podSelector": app("tester")}]}])],
     ("dev/tester", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("and-within-peer-pod-mismatch",
     [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"env": "dev"}}, "podSelector": app("tester")}]}])],
     ("dev/frontend", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("and-within-peer-namespace-mismatch",
     [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"env": "dev"}}, "podSelector": app("frontend")}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("or-across-peers-pod-item",
     [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"env": "dev"}}}, {"podSelector": app("frontend")}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("or-across-peers-namespace-item",
     [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"env": "dev"}}}, {"podSelector": app("frontend")}]}])],
     ("dev/tester", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("namespace-by-name", [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": ns_name("monitoring")}]}])],
     ("monitoring/prometheus", "prod/backend", 9090, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("namespace-by-name-other", [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": ns_name("monitoring")}]}])],
     ("dev/tester", "prod/backend", 9090, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("all-namespaces-with-pod-selector", [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {}, "podSelector": app("frontend")}]}])],
     ("dev/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("all-namespaces-all-pods", [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {}}]}])],
     ("dev/tester", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("empty-pod-selector-own-namespace", [np("in", BACKEND, ingress=[{"from": [{"podSelector": {}}]}])],
     ("prod/db", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("empty-pod-selector-not-other-namespace", [np("in", BACKEND, ingress=[{"from": [{"podSelector": {}}]}])],
     ("dev/tester", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/in"]}),
    # --- matchExpressions
    ("expr-in-match", [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {}, "podSelector": {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["frontend", "tester"]}]}}]}])],
     ("dev/tester", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("expr-in-no-match", [np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["frontend", "tester"]}]}}]}])],
     ("prod/db", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("expr-notin-match", [np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchExpressions": [
        {"key": "app", "operator": "NotIn", "values": ["frontend"]}]}}]}])],
     ("prod/db", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("expr-notin-no-match", [np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchExpressions": [
        {"key": "app", "operator": "NotIn", "values": ["frontend"]}]}}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("expr-exists-match", [np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchExpressions": [
        {"key": "tier", "operator": "Exists"}]}}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("expr-exists-no-match", [np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchExpressions": [
        {"key": "tier", "operator": "Exists"}]}}]}])],
     ("prod/db", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("expr-does-not-exist-match", [np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchExpressions": [
        {"key": "tier", "operator": "DoesNotExist"}]}}]}])],
     ("prod/db", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("expr-does-not-exist-no-match", [np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchExpressions": [
        {"key": "tier", "operator": "DoesNotExist"}]}}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("expr-on-namespace-labels", [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {"matchExpressions": [
        {"key": "env", "operator": "In", "values": ["prod", "dev"]}]}, "podSelector": app("frontend")}]}])],
     ("dev/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("expr-in-pod-selector-isolates", [np("deny", {"matchExpressions": [{"key": "app", "operator": "In", "values": ["backend"]}]}, types=["Ingress"])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/deny"]}),
    # --- ipBlock
    ("ipblock-world-match", [np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}])],
     ("prod/frontend", "world:203.0.113.10", 443, "TCP"), "allowed", {"egress": ["prod/out"]}),
    ("ipblock-except", [np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.10/32"]}}]}])],
     ("prod/frontend", "world:203.0.113.10", 443, "TCP"), "denied", {"egress": ["prod/out"]}),
    ("ipblock-outside-cidr", [np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}])],
     ("prod/frontend", "world:198.51.100.7", 443, "TCP"), "denied", {"egress": ["prod/out"]}),
    ("ipblock-not-pods-on-cilium", [np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "denied", {"egress": ["prod/out"]}),
    ("ipblock-from-world-ingress", [np("in", BACKEND, ingress=[{"from": [{"ipBlock": {"cidr": "198.51.100.0/24"}}]}])],
     ("world:198.51.100.7", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("ipblock-other-family", [np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}])],
     ("prod/frontend", "world:2001:db8::1", 443, "TCP"), "denied", {"egress": ["prod/out"]}),
    ("selectors-do-not-match-world", [np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"namespaceSelector": {}}]}])],
     ("prod/frontend", "world:203.0.113.10", 443, "TCP"), "denied", {"egress": ["prod/out"]}),
    ("world-source-denied-at-ingress", [np("in", BACKEND, ingress=[{"from": [{"podSelector": {}}]}])],
     ("world:198.51.100.7", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/in"]}),
    # --- ports and protocols
    ("port-number-match", [np("in", BACKEND, ingress=[{"ports": [{"port": 8080}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("port-number-mismatch", [np("in", BACKEND, ingress=[{"ports": [{"port": 8080}]}])],
     ("prod/frontend", "prod/backend", 9090, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("protocol-defaults-to-tcp", [np("out", app("frontend"), types=["Egress"], egress=[{"ports": [{"port": 53}]}])],
     ("prod/frontend", "kube-system/coredns", 53, "UDP"), "denied", {"egress": ["prod/out"]}),
    ("empty-port-entry-is-tcp-only", [np("out", app("frontend"), types=["Egress"], egress=[{"ports": [{}]}])],
     ("prod/frontend", "kube-system/coredns", 53, "UDP"), "denied", {"egress": ["prod/out"]}),
    ("empty-port-entry-allows-any-tcp", [np("out", app("frontend"), types=["Egress"], egress=[{"ports": [{}]}])],
     ("prod/frontend", "kube-system/coredns", 53, "TCP"), "allowed", {"egress": ["prod/out"]}),
    ("udp-protocol-without-port", [np("out", app("frontend"), types=["Egress"], egress=[{"ports": [{"protocol": "UDP"}]}])],
     ("prod/frontend", "kube-system/coredns", 5353, "UDP"), "allowed", {"egress": ["prod/out"]}),
    ("named-port-match", [np("in", BACKEND, ingress=[{"ports": [{"port": "http"}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("named-port-other-number", [np("in", BACKEND, ingress=[{"ports": [{"port": "http"}]}])],
     ("prod/frontend", "prod/backend", 9090, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("named-port-resolved-on-destination-for-egress", [np("out", app("frontend"), types=["Egress"], egress=[{"ports": [{"port": "metrics"}]}])],
     ("prod/frontend", "prod/backend", 9090, "TCP"), "allowed", {"egress": ["prod/out"]}),
    ("named-port-protocol-must-match", [np("out", app("frontend"), types=["Egress"], egress=[{"ports": [{"port": "dns", "protocol": "TCP"}]}])],
     ("prod/frontend", "kube-system/coredns", 53, "TCP"), "denied", {"egress": ["prod/out"]}),
    ("named-port-never-matches-world", [np("out", app("frontend"), types=["Egress"], egress=[{"ports": [{"port": "http"}]}])],
     ("prod/frontend", "world:203.0.113.10", 80, "TCP"), "denied", {"egress": ["prod/out"]}),
    ("end-port-range-inside", [np("in", BACKEND, ingress=[{"ports": [{"port": 8000, "endPort": 8100}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("end-port-range-inclusive-end", [np("in", BACKEND, ingress=[{"ports": [{"port": 8000, "endPort": 8080}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    ("end-port-range-outside", [np("in", BACKEND, ingress=[{"ports": [{"port": 8000, "endPort": 8100}]}])],
     ("prod/frontend", "prod/backend", 9090, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("sctp-port", [np("in", app("sig"), ingress=[{"ports": [{"protocol": "SCTP", "port": 3868}]}])],
     ("prod/frontend", "prod/sig", 3868, "SCTP"), "allowed", {"ingress": ["prod/in"]}),
    ("sctp-is-not-tcp", [np("in", app("sig"), ingress=[{"ports": [{"port": 3868}]}])],
     ("prod/frontend", "prod/sig", 3868, "SCTP"), "denied", {"ingress": ["prod/in"]}),
    ("icmp-with-portless-rule", [np("in", BACKEND, ingress=[{"from": [{"podSelector": {}}]}])],
     ("prod/frontend", "prod/backend", 0, "ICMPv4"), "allowed", {"ingress": ["prod/in"]}),
    ("icmp-never-matches-ports", [np("in", BACKEND, ingress=[{"ports": [{"port": 8080}]}])],
     ("prod/frontend", "prod/backend", 0, "ICMPv4"), "denied", {"ingress": ["prod/in"]}),
    ("rules-union-within-policy-second-rule",
     [np("in", BACKEND, ingress=[{"from": [{"podSelector": app("db")}]}, {"from": [{"podSelector": app("frontend")}], "ports": [{"port": 8080}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/in"]}),
    # --- both ends
    ("egress-allows-ingress-denies",
     [np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"podSelector": BACKEND}]}]), np("in", BACKEND, types=["Ingress"])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "denied", {"egress": ["prod/out"], "ingress": ["prod/in"]}),
    ("egress-denies-ingress-allows",
     [np("out", app("frontend"), types=["Egress"]), np("in", BACKEND, ingress=[{}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "denied", {"egress": ["prod/out"], "ingress": ["prod/in"]}),
    ("both-ends-allow",
     [np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"podSelector": BACKEND}]}]),
      np("in", BACKEND, ingress=[{"from": [{"podSelector": app("frontend")}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"egress": ["prod/out"], "ingress": ["prod/in"]}),
    # --- always-allowed traffic
    ("pod-reaches-itself", [np("deny", {}, types=["Ingress", "Egress"])],
     ("prod/backend", "prod/backend", 8080, "TCP"), "allowed", {}),
    ("own-node-reaches-pod", [np("deny", {}, types=["Ingress"])], ("host", "prod/backend", 8080, "TCP"), "allowed", {}),
    ("host-network-pod-not-subject", [np("deny", {}, types=["Ingress"])], ("prod/frontend", "prod/agent", 8080, "TCP"), "allowed", {}),
    # --- DNS, the talk's mistake and its fix
    ("dns-denied-by-talk-policy", [np("frontend-egress-allow-to-backend", app("frontend"), egress=[{"to": [{"podSelector": BACKEND}]}])],
     ("prod/frontend", "kube-system/coredns", 53, "UDP"), "denied", {"egress": ["prod/frontend-egress-allow-to-backend"]}),
    ("dns-allowed-after-fix", [np("frontend-egress-allow-to-backend", app("frontend"), egress=[
        {"to": [{"podSelector": BACKEND}]},
        {"to": [{"namespaceSelector": ns_name("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
         "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}])],
     ("prod/frontend", "kube-system/coredns", 53, "UDP"), "allowed", {"egress": ["prod/frontend-egress-allow-to-backend"]}),
    ("dns-fix-as-two-peers-is-too-wide", [np("wide", app("frontend"), egress=[
        {"to": [{"namespaceSelector": ns_name("kube-system")}, {"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]}])],
     ("prod/frontend", "kube-system/coredns", 9153, "TCP"), "allowed", {"egress": ["prod/wide"]}),
    # --- CiliumNetworkPolicy subset
    ("cnp-from-endpoints", [cnp("c", BACKEND, ingress=[{"fromEndpoints": [app("frontend")]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/c"]}),
    ("cnp-endpoints-namespace-local", [cnp("c", BACKEND, ingress=[{"fromEndpoints": [app("frontend")]}])],
     ("dev/frontend", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/c"]}),
    ("cnp-endpoints-explicit-namespace", [cnp("c", BACKEND, ingress=[{"fromEndpoints": [
        {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "dev", "app": "frontend"}}]}])],
     ("dev/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/c"]}),
    ("cnp-ingress-deny-wins-over-np-allow",
     [np("all-in", BACKEND, ingress=[{}]), cnp("no-fe", BACKEND, ingressDeny=[{"fromEndpoints": [app("frontend")]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/no-fe"]}),
    ("cnp-deny-does-not-hit-others",
     [np("all-in", BACKEND, ingress=[{}]), cnp("no-fe", BACKEND, ingressDeny=[{"fromEndpoints": [app("frontend")]}])],
     ("prod/db", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/all-in"]}),
    ("cnp-egress-deny-world-wins",
     [cnp("c", app("frontend"), egress=[{"toEntities": ["all"]}], egressDeny=[{"toEntities": ["world"]}])],
     ("prod/frontend", "world:203.0.113.10", 443, "TCP"), "denied", {"egress": ["prod/c"]}),
    ("cnp-to-entities-world", [cnp("c", app("frontend"), egress=[{"toEntities": ["world"]}])],
     ("prod/frontend", "world:203.0.113.10", 443, "TCP"), "allowed", {"egress": ["prod/c"]}),
    ("cnp-to-entities-cluster-pod", [cnp("c", app("frontend"), egress=[{"toEntities": ["cluster"]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"egress": ["prod/c"]}),
    ("cnp-to-entities-cluster-not-world", [cnp("c", app("frontend"), egress=[{"toEntities": ["cluster"]}])],
     ("prod/frontend", "world:203.0.113.10", 443, "TCP"), "denied", {"egress": ["prod/c"]}),
    ("cnp-to-cidr", [cnp("c", app("frontend"), egress=[{"toCIDR": ["203.0.113.0/24"]}])],
     ("prod/frontend", "world:203.0.113.10", 443, "TCP"), "allowed", {"egress": ["prod/c"]}),
    ("cnp-to-cidr-set-except", [cnp("c", app("frontend"), egress=[{"toCIDRSet": [{"cidr": "203.0.113.0/24", "except": ["203.0.113.8/29"]}]}])],
     ("prod/frontend", "world:203.0.113.10", 443, "TCP"), "denied", {"egress": ["prod/c"]}),
    ("cnp-fqdn-needs-dns-rule", [cnp("c", app("frontend"), egress=[{"toFQDNs": [{"matchName": "api.example.com"}]}])],
     ("prod/frontend", "world:203.0.113.10|api.example.com", 443, "TCP"), "denied", {"egress": ["prod/c"]}),
    ("cnp-fqdn-with-dns-rule", [cnp("c", app("frontend"), egress=[DNS_RULE, {"toFQDNs": [{"matchName": "api.example.com"}]}])],
     ("prod/frontend", "world:203.0.113.10|api.example.com", 443, "TCP"), "allowed", {"egress": ["prod/c"]}),
    ("cnp-fqdn-pattern-one-label", [cnp("c", app("frontend"), egress=[DNS_RULE, {"toFQDNs": [{"matchPattern": "*.example.com"}]}])],
     ("prod/frontend", "world:203.0.113.10|a.b.example.com", 443, "TCP"), "denied", {"egress": ["prod/c"]}),
    ("cnp-dns-rule-port-any", [cnp("c", app("frontend"), egress=[DNS_RULE])],
     ("prod/frontend", "kube-system/coredns", 53, "UDP"), "allowed", {"egress": ["prod/c"]}),
    ("cnp-empty-rule-is-default-deny", [cnp("c", BACKEND, ingress=[{}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/c"]}),
    ("cnp-l4-only-rule-any-peer", [cnp("c", BACKEND, ingress=[{"toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}])],
     ("dev/tester", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/c"]}),
    ("cnp-named-to-port", [cnp("c", BACKEND, ingress=[{"toPorts": [{"ports": [{"port": "grpc", "protocol": "TCP"}]}]}])],
     ("dev/tester", "prod/backend", 50051, "TCP"), "allowed", {"ingress": ["prod/c"]}),
    ("cnp-to-services-not-evaluated", [cnp("c", app("frontend"), egress=[{"toServices": [{"k8sService": {"serviceName": "backend"}}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "not-evaluated", {"egress": ["prod/c"]}),
    ("cnp-default-deny-disabled", [cnp("c", app("frontend"), egress=[{"toEndpoints": [BACKEND]}], enableDefaultDeny={"egress": False})],
     ("prod/frontend", "prod/db", 5432, "TCP"), "allowed", {}),
    ("cnp-to-entities-remote-node", [cnp("c", app("frontend"), egress=[{"toEntities": ["remote-node"]}])],
     ("prod/frontend", "remote-node", 10250, "TCP"), "allowed", {"egress": ["prod/c"]}),
    ("cnp-to-entities-kube-apiserver", [cnp("c", app("frontend"), egress=[{"toEntities": ["kube-apiserver"]}])],
     ("prod/frontend", "kube-apiserver", 6443, "TCP"), "allowed", {"egress": ["prod/c"]}),
    ("cnp-world-entity-is-not-the-apiserver", [cnp("c", app("frontend"), egress=[{"toEntities": ["world"]}])],
     ("prod/frontend", "kube-apiserver", 6443, "TCP"), "denied", {"egress": ["prod/c"]}),
    ("np-ipblock-does-not-match-nodes-on-cilium", [np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "192.168.0.0/16"}}]}])],
     ("prod/frontend", "remote-node", 10250, "TCP"), "denied", {"egress": ["prod/out"]}),
    ("remote-node-is-not-the-own-node", [np("in", BACKEND, types=["Ingress"])],
     ("remote-node", "prod/backend", 8080, "TCP"), "denied", {"ingress": ["prod/in"]}),
    ("ccnp-deny-applies-in-every-namespace", [ccnp("no-world", {}, egressDeny=[{"toEntities": ["world"]}])],
     ("dev/tester", "world:203.0.113.10", 443, "TCP"), "denied", {"egress": ["no-world"]}),
    ("ccnp-endpoints-span-namespaces", [ccnp("fe", BACKEND, ingress=[{"fromEndpoints": [app("frontend")]}])],
     ("dev/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["fe"]}),
    ("np-and-cnp-union",
     [np("from-fe", BACKEND, ingress=[{"from": [{"podSelector": app("frontend")}]}]),
      cnp("from-mon", BACKEND, ingress=[{"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "monitoring"}}]}])],
     ("monitoring/prometheus", "prod/backend", 9090, "TCP"), "allowed", {"ingress": ["prod/from-mon"]}),
    ("cnp-l7-rule-allows-at-l4", [cnp("c", BACKEND, ingress=[{"fromEndpoints": [app("frontend")],
        "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}], "rules": {"http": [{"method": "GET"}]}}]}])],
     ("prod/frontend", "prod/backend", 8080, "TCP"), "allowed", {"ingress": ["prod/c"]}),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_semantics(case) -> None:
    name, policies, (source, destination, port, protocol), verdict, deciding = case
    objects = base_objects()
    for policy in policies:
        resource = {"NetworkPolicy": "networkpolicies", "CiliumNetworkPolicy": "ciliumnetworkpolicies"}.get(
            policy["kind"], "ciliumclusterwidenetworkpolicies"
        )
        objects.setdefault(resource, []).append(policy)
    cluster = Cluster(objects)
    evaluation = Engine(cluster).evaluate(connection(cluster, source, destination, port, protocol))
    assert evaluation.verdict == verdict, evaluation
    for side in evaluation.sides:
        assert [str(p) for p in side.deciding] == deciding.get(side.direction, []), side


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 60


def _single(policies, source, destination, port, protocol="TCP", options=None):
    objects = base_objects()
    objects["networkpolicies"] = policies
    cluster = Cluster(objects)
    return Engine(cluster, options).evaluate(connection(cluster, source, destination, port, protocol))


def test_calico_switch_lets_ipblock_match_pod_ips() -> None:
    policy = np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}])
    assert _single([policy], "prod/frontend", "prod/backend", 8080).verdict == "denied"
    calico = _single([policy], "prod/frontend", "prod/backend", 8080, options=Options(ipblock_matches_pods=True))
    assert calico.verdict == "allowed"
    assert calico.egress.allowed_by[0].peer_index == 0


def test_deciding_rule_index_peer_and_port() -> None:
    policy = np("in", BACKEND, ingress=[
        {"from": [{"podSelector": app("db")}]},
        {"from": [{"podSelector": app("db")}, {"podSelector": app("frontend")}], "ports": [{"port": 9090}, {"port": "http"}]},
    ])
    evaluation = _single([policy], "prod/frontend", "prod/backend", 8080)
    rule = evaluation.ingress.allowed_by[0]
    assert (rule.section, rule.index, rule.peer_index, rule.port_index) == ("ingress", 1, 1, 1)
    first = evaluation.ingress.rules[0]
    assert first.result == "peer" and "app=db does not match prod/frontend" in first.detail


def test_port_and_protocol_mismatch_reasons() -> None:
    policy = np("in", BACKEND, ingress=[{"ports": [{"port": 8080}]}, {"ports": [{"protocol": "UDP", "port": 9090}]}])
    evaluation = _single([policy], "prod/frontend", "prod/backend", 9090)
    results = [(r.result, r.detail) for r in evaluation.ingress.rules]
    assert results == [("port", "ports TCP 8080 do not include TCP 9090"), ("protocol", "ports UDP 9090 do not include TCP")]


def test_unknown_container_ports_leave_named_port_not_evaluated() -> None:
    cluster = Cluster({**base_objects(), "networkpolicies": [np("in", BACKEND, ingress=[{"ports": [{"port": "http"}]}])]})
    backend = cluster.pod("prod", "backend")
    from_flow = Endpoint(kind="pod", namespace="prod", name="backend", labels=backend.labels, ip=backend.ip)
    evaluation = Engine(cluster).evaluate(Connection(cluster.pod("prod", "frontend"), from_flow, 8080, "TCP"))
    assert evaluation.verdict == "not-evaluated"
    assert "container ports of prod/backend are unknown" in evaluation.ingress.unknown[0].detail


def test_unknown_namespace_labels_leave_namespace_selector_not_evaluated() -> None:
    cluster = Cluster({**base_objects(), "networkpolicies": [
        np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"env": "staging"}}}]}])]})
    stranger = Endpoint(kind="pod", namespace="staging", name="x", labels={"app": "x"}, ip="10.0.9.9")
    evaluation = Engine(cluster).evaluate(Connection(stranger, cluster.pod("prod", "backend"), 8080, "TCP"))
    assert evaluation.verdict == "not-evaluated"
    by_name = Cluster({**base_objects(), "networkpolicies": [np("in", BACKEND, ingress=[{"from": [{"namespaceSelector": ns_name("staging")}]}])]})
    assert Engine(by_name).evaluate(Connection(stranger, by_name.pod("prod", "backend"), 8080, "TCP")).verdict == "allowed"


def test_ignored_egress_rules_are_warned_about() -> None:
    policy = np("typo", app("frontend"), types=["Ingress"], egress=[{"to": [{"podSelector": BACKEND}]}])
    evaluation = _single([policy], "prod/frontend", "prod/db", 5432)
    assert evaluation.egress.warnings == ("prod/typo has egress rules but policyTypes ['Ingress'] lacks Egress: they are ignored",)


def test_host_network_pod_is_not_subject_to_pod_policies() -> None:
    evaluation = _single([np("deny", {}, types=["Ingress"])], "prod/frontend", "prod/agent", 8080)
    assert evaluation.ingress.reason == "prod/agent uses the host network: pod policies do not apply to it"


def test_peer_mismatch_names_the_selector_that_failed() -> None:
    from kcockpit.policy import explain

    both = np("in", BACKEND, ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"env": "dev"}}, "podSelector": app("frontend")},
        {"podSelector": app("tester")},
    ]}])
    evaluation = _single([both], "prod/frontend", "prod/backend", 8080)
    assert evaluation.ingress.rules[0].detail == (
        "peer 1: namespaceSelector env=dev does not match namespace prod; peer 2: podSelector app=tester does not match prod/frontend"
    )
    local = np("in", BACKEND, ingress=[{"from": [{"podSelector": app("frontend")}]}])
    assert _single([local], "dev/frontend", "prod/backend", 8080).ingress.rules[0].detail == (
        "podSelector app=frontend (pods of namespace prod) does not match dev/frontend"
    )
    excepted = np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.8/29"]}}]}])
    assert _single([excepted], "prod/frontend", "world:203.0.113.10", 443).egress.rules[0].detail == (
        "ipBlock 203.0.113.0/24 does not match 203.0.113.10: it is in except 203.0.113.8/29"
    )
    pods_by_cidr = np("out", app("frontend"), types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}])
    assert explain.sentence(_single([pods_by_cidr], "prod/frontend", "prod/backend", 8080)) == (
        "DENIED at egress of prod/frontend: isolated by prod/out; its only rule allows 10.0.0.0/8, not prod/backend on TCP 8080 "
        "(on Cilium an ipBlock never selects cluster endpoints: use a podSelector, or --calico for Calico's behaviour)."
    )


def test_an_unreadable_cilium_selector_is_not_evaluated() -> None:
    broken = cnp("bad", {"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["x"]}]}, egress=[{"toEntities": ["all"]}])
    objects = {**base_objects(), "ciliumnetworkpolicies": [broken]}
    cluster = Cluster(objects)
    evaluation = Engine(cluster).evaluate(connection(cluster, "prod/frontend", "prod/backend", 8080))
    assert evaluation.verdict == "not-evaluated"
    assert "unknown operator 'Equals'" in evaluation.egress.unknown[0].detail


# ===== Folded from test_review_engine.py ===========================================================
# Review: engine edge cases (host-network peers, reserved identities).


def _np(name, selector, **spec):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "prod"},
            "spec": {"podSelector": selector, **spec}}


def _cnp(name, selector, **spec):
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": "prod"},
            "spec": {"endpointSelector": selector, **spec}}




def _evaluate(policies, source, destination, port, agent_node="node-1"):
    objects = base_objects()
    for item in objects["pods"]:
        if item["metadata"]["name"] == "agent":
            item["spec"]["nodeName"] = agent_node
    for policy in policies:
        objects.setdefault("networkpolicies" if policy["kind"] == "NetworkPolicy" else "ciliumnetworkpolicies", []).append(policy)
    cluster = Cluster(objects)
    return Engine(cluster).evaluate(connection(cluster, source, destination, port))


# Host-network peers: Cilium gives them their node's identity, never a pod identity.


def test_a_host_network_pod_on_the_own_node_is_the_node_and_always_allowed() -> None:
    only_frontend = _np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}])
    evaluation = _evaluate([only_frontend], "prod/agent", "prod/backend", 8080)
    assert evaluation.verdict == "allowed"
    assert "own node" in evaluation.ingress.reason


def test_a_host_network_pod_on_another_node_is_not_selected_by_pod_selectors() -> None:
    by_label = _np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "agent"}}}]}])
    assert _evaluate([by_label], "prod/agent", "prod/backend", 8080, agent_node="node-2").verdict == "denied"
    remote_nodes = _cnp("in", BACKEND, ingress=[{"fromEntities": ["remote-node"]}])
    assert _evaluate([remote_nodes], "prod/agent", "prod/backend", 8080, agent_node="node-2").verdict == "allowed"


def test_a_host_network_pod_on_an_unknown_node_is_not_evaluated() -> None:
    by_label = _np("in", BACKEND, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "agent"}}}]}])
    evaluation = _evaluate([by_label], "prod/agent", "prod/backend", 8080, agent_node="")
    assert evaluation.verdict == "not-evaluated"
    assert "uses the host network" in evaluation.ingress.reason


# --- reserved identities


def _info(labels, identity=0, ip="203.0.113.7"):
    return EndpointInfo("", "", "", identity, ip, 443, tuple(labels), (), "")


def test_dual_stack_world_identities_are_world() -> None:
    assert flow_endpoint(_info(["reserved:world-ipv4"], 9)).kind == WORLD
    assert flow_endpoint(_info(["reserved:world-ipv6"], 10, "2001:db8::7")).kind == WORLD


def test_the_cluster_entity_includes_cilium_s_other_reserved_endpoints() -> None:
    health = flow_endpoint(_info(["reserved:health"], 4, "10.0.9.9"))
    assert health.kind == UNKNOWN
    objects = base_objects()
    objects["ciliumnetworkpolicies"] = [_cnp("in", BACKEND, ingress=[{"fromEntities": ["cluster"]}])]
    cluster = Cluster(objects)
    assert Engine(cluster).evaluate(Connection(health, cluster.pod("prod", "backend"), 8080, "TCP")).verdict == "allowed"
    world = Endpoint(kind=WORLD, ip="203.0.113.7")
    assert Engine(cluster).evaluate(Connection(world, cluster.pod("prod", "backend"), 8080, "TCP")).verdict == "denied"


def test_selectors_on_the_cilium_cluster_label_are_not_evaluated_rather_than_denied() -> None:
    # Cilium puts io.cilium.k8s.policy.cluster (the cluster's name) on every pod identity;
    # neither pod objects nor kcockpit's endpoints carry it, so a mismatch would be a guess.
    same_cluster = {"matchLabels": {"k8s:io.cilium.k8s.policy.cluster": "default", "k8s:app": "frontend"}}
    policy = _cnp("in", BACKEND, ingress=[{"fromEndpoints": [same_cluster]}])
    evaluation = _evaluate([policy], "prod/frontend", "prod/backend", 8080)
    assert evaluation.verdict == "not-evaluated"
    assert "io.cilium.k8s.policy.cluster" in evaluation.ingress.unknown[0].detail
    other_app = {"matchLabels": {"k8s:io.cilium.k8s.policy.cluster": "default", "k8s:app": "db"}}
    policy = _cnp("in", BACKEND, ingress=[{"fromEndpoints": [other_app]}])
    assert _evaluate([policy], "prod/frontend", "prod/backend", 8080).verdict == "denied"  # app=db fails whatever the cluster
    scoped = _cnp("in", {"matchLabels": {"io.cilium.k8s.policy.cluster": "default", "app": "backend"}}, ingress=[{}])
    assert _evaluate([scoped], "prod/frontend", "prod/backend", 8080).verdict == "not-evaluated"


def test_a_node_ip_named_on_the_command_line_is_that_node_not_the_world() -> None:
    from kcockpit.policy import targets

    objects = base_objects()
    objects["nodes"] = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
         "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}}
        for name, ip in (("node-1", "192.168.0.11"), ("node-2", "192.168.0.12"))
    ]
    objects["networkpolicies"] = [_np("in", BACKEND, ingress=[{"from": [{"ipBlock": {"cidr": "192.168.0.0/16"}}]}])]
    cluster = Cluster(objects)
    node, _ = targets.resolve(cluster, "192.168.0.12")
    assert (node.kind, node.node) == ("remote-node", "node-2")
    backend = cluster.pod("prod", "backend")  # on node-1
    # On Cilium an ipBlock never selects nodes: from another node this is denied...
    assert Engine(cluster).evaluate(Connection(node, backend, 8080, "TCP")).verdict == "denied"
    # ...and from the backend's own node it is always allowed.
    own, _ = targets.resolve(cluster, "192.168.0.11")
    evaluation = Engine(cluster).evaluate(Connection(own, backend, 8080, "TCP"))
    assert evaluation.verdict == "allowed" and "own node" in evaluation.ingress.reason


def test_ingress_rules_ignored_by_policy_types_are_warned_about_too() -> None:
    policy = _np("p", BACKEND, policyTypes=["Egress"], ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}]}])
    evaluation = _evaluate([policy], "prod/frontend", "prod/backend", 8080)
    assert evaluation.verdict == "allowed"  # ingress is not isolated: the rules do not apply
    assert evaluation.ingress.warnings == ("prod/p has ingress rules but policyTypes ['Egress'] lacks Ingress: they are ignored",)
