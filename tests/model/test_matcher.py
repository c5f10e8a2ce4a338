"""FlowMatcher against Hubble's FlowFilter semantics, one table row per field kind.

Every row is checked twice: on the protobuf Flow and on a FlowRecord made from it,
so the record fast path can never disagree with the full-flow path.
"""

from __future__ import annotations

import warnings

import pytest
from google.protobuf.wrappers_pb2 import BoolValue

from kcockpit.model.matcher import FilterError, FlowMatcher, UnsupportedFilterField, compile_label_selector
from kcockpit.model.record import FlowRecord
from kcockpit.wire.hubble_pb import FlowFilter, flow_pb

F = flow_pb.FlowFilter


def make_flow(**overrides) -> flow_pb.Flow:
    """A frontend -> cartservice HTTP request over TCP, forwarded, egress; overrides merge in."""
    flow = flow_pb.Flow(
        uuid="u-1",
        verdict=flow_pb.FORWARDED,
        node_name="worker-1",
        node_labels=["kubernetes.io/hostname=worker-1", "topology.kubernetes.io/zone=a"],
        IP=flow_pb.IP(source="10.0.1.5", destination="10.0.2.7", ipVersion=flow_pb.IPv4, source_xlated="192.168.0.9"),
        l4=flow_pb.Layer4(
            TCP=flow_pb.TCP(source_port=40000, destination_port=7070, flags=flow_pb.TCPFlags(PSH=True, ACK=True))
        ),
        source=flow_pb.Endpoint(
            identity=12345,
            cluster_name="prod",
            namespace="otel-demo",
            pod_name="frontend-6d9f7c-abcde",
            labels=["k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=otel-demo", "k8s:tier=web"],
            workloads=[flow_pb.Workload(name="frontend", kind="Deployment")],
        ),
        destination=flow_pb.Endpoint(
            identity=23456,
            cluster_name="prod",
            namespace="otel-demo",
            pod_name="cartservice-7f8b9-xyz12",
            labels=["k8s:app=cartservice", "k8s:io.kubernetes.pod.namespace=otel-demo", "k8s:version=3"],
            workloads=[flow_pb.Workload(name="cartservice", kind="Deployment")],
        ),
        destination_service=flow_pb.Service(name="cartservice", namespace="otel-demo"),
        destination_names=["cart.otel-demo.example.com"],
        Type=flow_pb.L7,
        event_type=flow_pb.CiliumEventType(type=129, sub_type=0),
        traffic_direction=flow_pb.EGRESS,
        is_reply=BoolValue(value=False),
        l7=flow_pb.Layer7(
            type=flow_pb.REQUEST,
            http=flow_pb.HTTP(
                code=503,
                method="POST",
                url="http://cartservice:7070/api/cart/items?id=3",
                headers=[flow_pb.HTTPHeader(key="x-request-id", value="abc")],
            ),
        ),
        interface=flow_pb.NetworkInterface(index=7, name="lxc12345"),
    )
    for key, value in overrides.items():
        if value is None:
            flow.ClearField(key)
        elif isinstance(value, list):
            del getattr(flow, key)[:]
            getattr(flow, key).extend(value)
        elif hasattr(value, "DESCRIPTOR"):
            getattr(flow, key).CopyFrom(value)
        else:
            setattr(flow, key, value)
    return flow


def dns_flow(query: str = "cartservice.otel-demo.svc.cluster.local.") -> flow_pb.Flow:
    flow = make_flow(l7=None, l4=None)
    flow.l4.UDP.source_port = 53000
    flow.l4.UDP.destination_port = 53
    flow.l7.type = flow_pb.REQUEST
    flow.l7.dns.query = query
    return flow


def dropped_syn() -> flow_pb.Flow:
    flow = make_flow(verdict=flow_pb.DROPPED, drop_reason_desc=flow_pb.POLICY_DENIED, drop_reason=133, l7=None, is_reply=None)
    flow.l4.TCP.flags.CopyFrom(flow_pb.TCPFlags(SYN=True))
    flow.event_type.type = 1
    flow.event_type.sub_type = 133
    return flow


def encrypted_flow() -> flow_pb.Flow:
    flow = make_flow()
    flow.IP.encrypted = True  # WireGuard or IPsec
    return flow


def assert_both(matcher: FlowMatcher, flow: flow_pb.Flow, expected: bool) -> None:
    assert matcher.matches(flow) is expected
    assert matcher.matches_record(FlowRecord.from_flow(flow)) is expected


CASES = [
    # (id, FlowFilter, flow factory, expected)
    ("uuid-hit", F(uuid=["x", "u-1"]), make_flow, True),
    ("uuid-miss", F(uuid=["u-2"]), make_flow, False),
    ("src-ip-exact", F(source_ip=["10.0.1.5"]), make_flow, True),
    ("src-ip-miss", F(source_ip=["10.0.1.6"]), make_flow, False),
    ("dst-ip-cidr", F(destination_ip=["10.0.0.0/16"]), make_flow, True),
    ("dst-ip-cidr-host-bits", F(destination_ip=["10.0.2.1/24"]), make_flow, True),
    ("dst-ip-cidr-miss", F(destination_ip=["10.1.0.0/16"]), make_flow, False),
    ("ip-v6-cidr-vs-v4", F(source_ip=["fd00::/8"]), make_flow, False),
    ("ip-xlated", F(source_ip_xlated=["192.168.0.0/24"]), make_flow, True),
    ("ip-xlated-miss", F(source_ip_xlated=["192.168.1.9"]), make_flow, False),
    ("pod-ns-prefix", F(source_pod=["otel-demo/frontend"]), make_flow, True),
    ("pod-ns-only", F(destination_pod=["otel-demo/"]), make_flow, True),
    ("pod-wrong-ns", F(source_pod=["default/frontend"]), make_flow, False),
    ("pod-no-ns-means-default", F(source_pod=["frontend"]), make_flow, False),
    ("pod-prefix-miss", F(source_pod=["otel-demo/cart"]), make_flow, False),
    ("pod-empty-ns-slash", F(source_pod=["/frontend"]), make_flow, False),
    ("fqdn-wildcard", F(destination_fqdn=["*.example.com"]), make_flow, True),
    ("fqdn-case-trailing-dot", F(destination_fqdn=["CART.otel-demo.Example.com."]), make_flow, True),
    ("fqdn-miss", F(destination_fqdn=["*.example.org"]), make_flow, False),
    ("fqdn-source-has-none", F(source_fqdn=["*"]), make_flow, False),
    ("label-bare-key-any-source", F(source_label=["app=frontend"]), make_flow, True),
    ("label-k8s-source", F(source_label=["k8s:app=frontend"]), make_flow, True),
    ("label-wrong-source", F(source_label=["reserved:app=frontend"]), make_flow, False),
    ("label-in", F(destination_label=["app in (cartservice, redis)"]), make_flow, True),
    ("label-notin", F(destination_label=["app notin (cartservice)"]), make_flow, False),
    ("label-not-exists", F(source_label=["!k8s:version"]), make_flow, True),
    ("label-exists", F(destination_label=["k8s:version"]), make_flow, True),
    ("label-and-within-selector", F(source_label=["app=frontend,tier=db"]), make_flow, False),
    ("label-or-across-selectors", F(source_label=["app=nope", "tier=web"]), make_flow, True),
    ("label-namespace-key", F(source_label=["k8s:io.kubernetes.pod.namespace=otel-demo"]), make_flow, True),
    ("label-gt", F(destination_label=["version>2"]), make_flow, True),
    ("label-lt-miss", F(destination_label=["version<3"]), make_flow, False),
    ("label-not-equal", F(source_label=["app!=frontend"]), make_flow, False),
    ("service-dst", F(destination_service=["otel-demo/cart"]), make_flow, True),
    ("service-src-none", F(source_service=["otel-demo/"]), make_flow, False),
    ("workload-name", F(source_workload=[flow_pb.Workload(name="frontend")]), make_flow, True),
    ("workload-kind", F(source_workload=[flow_pb.Workload(kind="Deployment")]), make_flow, True),
    ("workload-name-kind-miss", F(source_workload=[flow_pb.Workload(name="frontend", kind="StatefulSet")]), make_flow, False),
    ("cluster-src", F(source_cluster_name=["prod"]), make_flow, True),
    ("cluster-dst-miss", F(destination_cluster_name=["staging"]), make_flow, False),
    ("identity-src", F(source_identity=[1, 12345]), make_flow, True),
    ("identity-dst-miss", F(destination_identity=[2]), make_flow, False),
    ("direction", F(traffic_direction=[flow_pb.EGRESS]), make_flow, True),
    ("direction-miss", F(traffic_direction=[flow_pb.INGRESS]), make_flow, False),
    ("verdict", F(verdict=[flow_pb.DROPPED, flow_pb.FORWARDED]), make_flow, True),
    ("verdict-miss", F(verdict=[flow_pb.DROPPED]), make_flow, False),
    ("drop-reason", F(drop_reason_desc=[flow_pb.POLICY_DENIED]), dropped_syn, True),
    ("drop-reason-miss", F(drop_reason_desc=[flow_pb.POLICY_DENY]), dropped_syn, False),
    ("interface-name", F(interface=[flow_pb.NetworkInterface(name="lxc12345")]), make_flow, True),
    ("interface-index-miss", F(interface=[flow_pb.NetworkInterface(index=8)]), make_flow, False),
    ("event-type-l7", F(event_type=[flow_pb.EventTypeFilter(type=129)]), make_flow, True),
    ("event-type-drop-miss", F(event_type=[flow_pb.EventTypeFilter(type=1)]), make_flow, False),
    ("event-type-subtype", F(event_type=[flow_pb.EventTypeFilter(type=1, match_sub_type=True, sub_type=133)]), dropped_syn, True),
    ("event-type-subtype-miss", F(event_type=[flow_pb.EventTypeFilter(type=1, match_sub_type=True, sub_type=181)]), dropped_syn, False),
    ("event-type-any-type", F(event_type=[flow_pb.EventTypeFilter(type=0)]), make_flow, True),
    ("event-type-absent", F(event_type=[flow_pb.EventTypeFilter(type=0)]), lambda: make_flow(event_type=None), False),
    ("status-full", F(http_status_code=["503"]), make_flow, True),
    ("status-prefix", F(http_status_code=["5+"]), make_flow, True),
    ("status-two-digit-prefix", F(http_status_code=["50+"]), make_flow, True),
    ("status-miss", F(http_status_code=["4+", "200"]), make_flow, False),
    ("status-no-http", F(http_status_code=["5+"]), dns_flow, False),
    ("method-case-insensitive", F(http_method=["post"]), make_flow, True),
    ("method-miss", F(http_method=["GET"]), make_flow, False),
    ("path-regex-search", F(http_path=["/cart/"]), make_flow, True),
    ("path-anchored", F(http_path=["^/api/cart/items$"]), make_flow, True),
    ("path-excludes-query", F(http_path=["id=3"]), make_flow, False),
    ("url-includes-query", F(http_url=["id=3$"]), make_flow, True),
    ("url-miss", F(http_url=["^https://"]), make_flow, False),
    ("header-key-value", F(http_header=[flow_pb.HTTPHeader(key="x-request-id", value="abc")]), make_flow, True),
    ("header-key-only", F(http_header=[flow_pb.HTTPHeader(key="x-request-id")]), make_flow, True),
    ("header-miss", F(http_header=[flow_pb.HTTPHeader(key="x-request-id", value="zzz")]), make_flow, False),
    ("protocol-l4", F(protocol=["TCP"]), make_flow, True),
    ("protocol-l7", F(protocol=["http"]), make_flow, True),
    ("protocol-icmp-miss", F(protocol=["icmp"]), make_flow, False),
    ("protocol-dns", F(protocol=["dns"]), dns_flow, True),
    ("port-dst", F(destination_port=["7070"]), make_flow, True),
    ("port-src-miss", F(source_port=["7070"]), make_flow, False),
    ("port-udp", F(destination_port=["53"]), dns_flow, True),
    ("port-icmp-none", F(destination_port=["0"]), lambda: make_flow(l4=flow_pb.Layer4(ICMPv4=flow_pb.ICMPv4(type=8))), False),
    ("reply-false", F(reply=[False]), make_flow, True),
    ("reply-true-miss", F(reply=[True]), make_flow, False),
    ("reply-unknown-forwarded", F(reply=[False]), lambda: make_flow(is_reply=None), False),
    ("reply-unknown-dropped-counts-as-false", F(reply=[False]), dropped_syn, True),
    ("dns-query-regex", F(dns_query=[r"cartservice\.otel-demo"]), dns_flow, True),
    ("dns-query-miss", F(dns_query=["^redis"]), dns_flow, False),
    ("dns-query-not-dns", F(dns_query=[".*"]), make_flow, False),
    ("tcp-flags-subset", F(tcp_flags=[flow_pb.TCPFlags(ACK=True)]), make_flow, True),
    ("tcp-flags-all-of-entry", F(tcp_flags=[flow_pb.TCPFlags(SYN=True, ACK=True)]), make_flow, False),
    ("tcp-flags-or-entries", F(tcp_flags=[flow_pb.TCPFlags(SYN=True), flow_pb.TCPFlags(PSH=True)]), make_flow, True),
    ("tcp-flags-empty-entry-needs-flags", F(tcp_flags=[flow_pb.TCPFlags()]), dns_flow, False),
    ("node-name", F(node_name=["worker-1"]), make_flow, True),
    ("node-glob", F(node_name=["worker-*"]), make_flow, True),
    ("node-default-cluster", F(node_name=["default/worker-1"]), make_flow, True),
    ("node-other-cluster", F(node_name=["prod/worker-1"]), make_flow, False),
    ("node-cluster-prefixed-flow", F(node_name=["prod/*"]), lambda: make_flow(node_name="prod/worker-1"), True),
    ("node-miss", F(node_name=["worker-2"]), make_flow, False),
    ("node-labels", F(node_labels=["topology.kubernetes.io/zone in (a, b)"]), make_flow, True),
    ("node-labels-miss", F(node_labels=["topology.kubernetes.io/zone=c"]), make_flow, False),
    ("ip-version", F(ip_version=[flow_pb.IPv4]), make_flow, True),
    ("ip-version-miss", F(ip_version=[flow_pb.IPv6]), make_flow, False),
    ("encrypted-miss", F(encrypted=[True]), make_flow, False),
    ("unencrypted-hit", F(encrypted=[False]), make_flow, True),
    ("encrypted-hit", F(encrypted=[True]), lambda: encrypted_flow(), True),
    ("encrypted-either", F(encrypted=[True, False]), make_flow, True),
    ("unencrypted-miss", F(encrypted=[False]), lambda: encrypted_flow(), False),
    ("ip-trace-id-hit", F(ip_trace_id=[7, 42]), lambda: make_flow(ip_trace_id=flow_pb.IPTraceID(trace_id=42)), True),
    ("ip-trace-id-miss", F(ip_trace_id=[7]), lambda: make_flow(ip_trace_id=flow_pb.IPTraceID(trace_id=42)), False),
    ("ip-trace-id-absent", F(ip_trace_id=[42]), make_flow, False),
    ("dst-cluster", F(destination_cluster_name=["staging", "prod"]), make_flow, True),
    ("src-cluster-miss", F(source_cluster_name=["staging"]), make_flow, False),
    ("dst-identity", F(destination_identity=[23456]), make_flow, True),
    ("src-identity-miss", F(source_identity=[2]), make_flow, False),
    ("dst-workload", F(destination_workload=[flow_pb.Workload(name="cartservice", kind="Deployment")]), make_flow, True),
    ("dst-workload-miss", F(destination_workload=[flow_pb.Workload(name="frontend")]), make_flow, False),
    ("src-fqdn", F(source_fqdn=["*.example.com"]), lambda: make_flow(source_names=["shop.example.com"]), True),
    ("src-port", F(source_port=["40000"]), make_flow, True),
    ("src-service", F(source_service=["kube-system/kube"]),
     lambda: make_flow(source_service=flow_pb.Service(name="kube-dns", namespace="kube-system")), True),
    ("dst-service-miss", F(destination_service=["kube-system/"]), make_flow, False),
    ("dst-pod-miss", F(destination_pod=["otel-demo/frontend"]), make_flow, False),
    ("empty-filter-matches-all", F(), make_flow, True),
    ("and-across-fields", F(source_pod=["otel-demo/frontend"], verdict=[flow_pb.DROPPED]), make_flow, False),
    ("and-across-fields-hit", F(source_pod=["otel-demo/frontend"], destination_port=["7070"]), make_flow, True),
]


@pytest.mark.parametrize("flow_filter,factory,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_whitelist_field(flow_filter, factory, expected):
    assert_both(FlowMatcher(whitelist=[flow_filter]), factory(), expected)


@pytest.mark.parametrize("flow_filter,factory,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_blacklist_is_the_negation(flow_filter, factory, expected):
    assert_both(FlowMatcher(blacklist=[flow_filter]), factory(), not expected)


def test_whitelist_is_or_across_filters_and_blacklist_wins():
    flow = make_flow()
    hit, miss = F(verdict=[flow_pb.FORWARDED]), F(verdict=[flow_pb.DROPPED])
    assert_both(FlowMatcher(whitelist=[miss, hit]), flow, True)
    assert_both(FlowMatcher(whitelist=[miss]), flow, False)
    assert_both(FlowMatcher(whitelist=[hit], blacklist=[F(source_pod=["otel-demo/"])]), flow, False)
    assert_both(FlowMatcher(), flow, True)
    assert FlowMatcher().matches_everything and not FlowMatcher(whitelist=[hit]).matches_everything


ERRORS = [
    (F(source_ip=["10.0.0.300"]), "source_ip"),
    (F(destination_ip=["10.0.0.0/33"]), "destination_ip"),
    (F(source_pod=[""]), "source_pod"),
    (F(destination_service=[""]), "destination_service"),
    (F(source_label=["app in (a"]), "source_label"),
    (F(source_label=["app==="]), "source_label"),
    (F(destination_label=["=x"]), "destination_label"),
    (F(node_labels=["zone in a"]), "node_labels"),
    (F(source_fqdn=["exa$mple.com"]), "source_fqdn"),
    (F(destination_fqdn=[""]), "destination_fqdn"),
    (F(node_name=["a/b/c"]), "node_name"),
    (F(node_name=["Worker_1!"]), "node_name"),
    (F(dns_query=["(unclosed"]), "dns_query"),
    (F(http_path=["(?=lookahead)"]), "http_path"),
    (F(http_url=["[z-a]"]), "http_url"),
    (F(http_status_code=["600"]), "http_status_code"),
    (F(http_status_code=["5xx"]), "http_status_code"),
    (F(http_method=["GET"], event_type=[flow_pb.EventTypeFilter(type=1)]), "http_method"),
    (F(protocol=["quic"]), "protocol"),
    (F(source_port=["70000"]), "source_port"),
    (F(destination_port=["+53"]), "destination_port"),
    (F(source_cluster_name=[""]), "source_cluster_name"),
    (F(experimental=F.Experimental(cel_expression=["true"])), "experimental.cel_expression"),
]


@pytest.mark.parametrize("flow_filter,field", ERRORS, ids=[e[1] + str(i) for i, e in enumerate(ERRORS)])
def test_invalid_filters_raise_filter_error_naming_the_field(flow_filter, field):
    with pytest.raises(FilterError) as err:
        FlowMatcher(blacklist=[flow_filter])
    assert str(err.value).startswith(field + ":")
    assert err.value.field == field


def test_unsupported_filter_field_is_named_with_its_number():
    with pytest.raises(UnsupportedFilterField) as err:
        FlowMatcher(whitelist=[F(trace_id=["4bf92f3577b34da6a3ce929d0e0e4736"])])
    assert str(err.value).startswith("FlowFilter.trace_id (field 28) is not supported by kcockpit's matcher")
    assert isinstance(err.value, FilterError) and err.value.field == "trace_id"


def test_unknown_filter_field_is_rejected_by_number():
    raw = F(verdict=[1]).SerializeToString() + bytes([0xA0, 0x1F, 1])  # field 500, varint 1
    with pytest.raises(UnsupportedFilterField) as err:
        FlowMatcher(whitelist=[F.FromString(raw)])
    assert str(err.value).startswith("FlowFilter field 500 is not supported by kcockpit's matcher")


def test_a_declared_field_without_a_compiler_is_named(monkeypatch):
    from kcockpit.model import matcher

    monkeypatch.delitem(matcher._COMPILERS, "encrypted")
    with pytest.raises(UnsupportedFilterField, match=r"^FlowFilter\.encrypted \(field 40\) is not supported by kcockpit's matcher$"):
        FlowMatcher(whitelist=[F(encrypted=[True])])


def test_the_fields_the_hubble_cli_sets_for_encrypted_and_ip_trace_id():
    # `hubble observe --unencrypted --ip-trace-id 42` sends field 40 (false) and 39 (42);
    # the bytes as the Go encoder packs them.
    raw = bytes([0xB8, 0x02, 42, 0xC2, 0x02, 1, 0])  # 39: varint 42; 40: packed [false]
    ff = F.FromString(raw)
    assert list(ff.ip_trace_id) == [42] and list(ff.encrypted) == [False]
    flow = make_flow(ip_trace_id=flow_pb.IPTraceID(trace_id=42))
    assert FlowMatcher(whitelist=[ff]).matches(flow)
    assert not FlowMatcher(whitelist=[ff]).matches(encrypted_flow())


def test_label_selector_edge_cases():
    from kcockpit.model.matcher import _LabelSet

    labels = _LabelSet(["k8s:app=frontend", "reserved:world", "plain=1"])
    assert compile_label_selector("reserved:world")(labels)
    assert compile_label_selector("any:app=frontend")(labels)
    assert compile_label_selector("plain=1")(labels)
    assert not compile_label_selector("k8s:plain")(labels)
    assert compile_label_selector("  app  ==  frontend , !missing ")(labels)


def test_record_path_avoids_reparsing_when_fields_suffice(monkeypatch):
    # A record whose details are decoded (a row on screen), or a filter on what every record
    # holds undecoded (verdict, node), is answered from the record's fields.
    decoded = FlowRecord.from_flow(make_flow())
    assert decoded.source.namespace == "otel-demo" and decoded.is_decoded
    undecoded = FlowRecord.from_flow(make_flow())
    monkeypatch.setattr(FlowRecord, "flow", lambda self: pytest.fail("record path reparsed the flow"))
    assert FlowMatcher(whitelist=[F(source_pod=["otel-demo/"], http_status_code=["5+"])]).matches_record(decoded)
    assert FlowMatcher(whitelist=[F(verdict=[flow_pb.FORWARDED])]).matches_record(undecoded)
    assert not undecoded.is_decoded


def test_undecoded_records_are_matched_on_the_parsed_flow_and_stay_undecoded():
    # Decoding every detail costs ~4x a parse, and a refilter of the whole store would then
    # also push the rows on screen out of the decoded records kept.
    record = FlowRecord.from_flow(make_flow())
    assert FlowMatcher(whitelist=[F(source_pod=["otel-demo/"], http_status_code=["5+"])]).matches_record(record)
    assert not FlowMatcher(whitelist=[F(source_pod=["kube-system/"])]).matches_record(record)
    assert not record.is_decoded


def test_every_flowfilter_field_has_a_positive_and_a_negative_row():
    covered_true = {d.name for _, ff, _, expected in CASES if expected for d, _ in ff.ListFields()}
    covered_false = {d.name for _, ff, _, expected in CASES if not expected for d, _ in ff.ListFields()}
    rejected = {d.name for ff, _ in ERRORS for d, _ in ff.ListFields()}
    fields = set(F.DESCRIPTOR.fields_by_name)
    assert fields - (covered_true & covered_false) == {"trace_id", "experimental"}
    assert "experimental" in rejected  # trace_id: test_unsupported_filter_field_is_named_with_its_number


# ===== Folded from test_review_matcher.py ==========================================================
# Review tests for FlowMatcher: each pins a place where the local matcher disagreed with what
# a Hubble server (Go RE2 regexes, Kubernetes label selectors, Hubble's name filters) does.


def verdicts(flow_filter: FlowFilter, flow) -> bool:
    """The matcher's answer, the same from the flow and from its record (else the test fails)."""
    matcher = FlowMatcher([flow_filter])
    on_flow = matcher.matches(flow)
    assert matcher.matches_record(FlowRecord.from_flow(flow)) is on_flow
    return on_flow


def dns_query_flow(query: str):
    return flow_pb.Flow(l7=flow_pb.Layer7(dns=flow_pb.DNS(query=query)))


def http_flow(url: str):
    return flow_pb.Flow(
        event_type=flow_pb.CiliumEventType(type=129),
        l7=flow_pb.Layer7(http=flow_pb.HTTP(url=url, method="GET", code=200)),
    )


# ----- RE2 character classes in dns_query / http_path / http_url -----------------------------------


@pytest.mark.parametrize(
    ("pattern", "query", "expected"),
    [
        (r"^[[:digit:]]+\.", "123.example.com.", True),
        (r"^[[:digit:]]+\.", "www.example.com.", False),
        (r"^[[:alpha:][:digit:]-]+\.svc", "db-1.svc.cluster.local.", True),
        (r"^[^[:space:]]+$", "a.b.", True),
        (r"^[[:^alpha:]]", "1a.", True),
        (r"^[[:^alpha:]]", "a1.", False),
        (r"[[:upper:]]", "example.com.", False),
        (r"^[[:xdigit:]]{4}\.", "beef.example.", True),
        (r"^[[:word:]]+\.", "a_b.", True),
        (r"\[:digit:\]", "[:digit:]", True),  # escaped brackets stay literal
    ],
)
def test_posix_classes_in_brackets_match_as_in_re2(pattern, query, expected) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Python's "Possible nested set" means it misread the class
        assert verdicts(FlowFilter(dns_query=[pattern]), dns_query_flow(query)) is expected


def test_posix_classes_in_http_path_and_url() -> None:
    l7 = [flow_pb.EventTypeFilter(type=129)]
    flow = http_flow("http://api:8080/v2/items?id=7")
    assert verdicts(FlowFilter(event_type=l7, http_path=[r"^/v[[:digit:]]+/"]), flow)
    assert verdicts(FlowFilter(event_type=l7, http_url=[r"id=[[:digit:]]$"]), flow)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        (r"^/items/\w+$", "/items/caf%C3%A9", False),  # RE2's \w is ASCII: é is not a word character
        (r"^/items/\w+$", "/items/cafe_1", True),
        (r"^/v\d/", "/v\u0663/", False),  # an Arabic-Indic digit is not RE2's \d
        (r"^/v\d/", "/v3/", True),
        (r"^/a\sb$", "/a\u00a0b", False),  # nor a no-break space RE2's \s
        (r"^/a\Sb$", "/a\u00a0b", True),
        (r"^/[\d.]+$", "/1.2", True),
        (r"^/[^\W_]+$", "/abc", True),
        (r"^/[^\W_]+$", "/caf%C3%A9", False),
    ],
)
def test_perl_classes_are_ascii_as_in_re2(pattern, path, expected) -> None:
    l7 = [flow_pb.EventTypeFilter(type=129)]
    assert verdicts(FlowFilter(event_type=l7, http_path=[pattern]), http_flow(path)) is expected


@pytest.mark.parametrize(
    ("pattern", "query", "expected"),
    [
        (r"^a\056b$", "a.b", True),  # octal escapes, as Go's regexp reads them
        (r"^a\056b$", "axb", False),
        (r"^\101", "A.", True),
        (r"[\060-\071]{2}", "x42.", True),
        (r"^a\\1$", "a\\1", True),  # an escaped backslash, then a plain 1
    ],
)
def test_octal_escapes_are_characters_as_in_re2(pattern, query, expected) -> None:
    assert verdicts(FlowFilter(dns_query=[pattern]), dns_query_flow(query)) is expected


@pytest.mark.parametrize("pattern", [r"(a)\1", r"x\1y", r"\8"])
def test_backreferences_are_refused_like_re2_does(pattern) -> None:
    with pytest.raises(FilterError, match="dns_query"):
        FlowMatcher([FlowFilter(dns_query=[pattern])])


def test_an_unknown_posix_class_is_refused_like_re2_does() -> None:
    with pytest.raises(FilterError, match="dns_query"):
        FlowMatcher([FlowFilter(dns_query=["[[:digits:]]"])])


# ----- label selectors -------------------------------------------------------------------------------


def labelled(*labels: str):
    return flow_pb.Flow(source=flow_pb.Endpoint(labels=list(labels), identity=2))


def test_a_label_requirement_with_an_empty_value_is_valid_as_in_kubernetes() -> None:
    # `key=` selects labels whose value is empty, e.g. Cilium's reserved:world.
    world = labelled("reserved:world")
    assert verdicts(FlowFilter(source_label=["reserved:world="]), world)
    assert verdicts(FlowFilter(source_label=["reserved:world=="]), world)
    assert not verdicts(FlowFilter(source_label=["reserved:world!="]), world)
    assert not verdicts(FlowFilter(source_label=["app="]), world)  # absent is not empty
    assert verdicts(FlowFilter(source_label=["reserved:world=,!app"]), world)
    assert not verdicts(FlowFilter(source_label=["k8s:app="]), labelled("k8s:app=frontend"))


# ----- pod and service names ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["source_pod", "destination_pod", "source_service", "destination_service"])
def test_a_lone_slash_names_neither_namespace_nor_name_and_is_refused_like_hubble(field) -> None:
    with pytest.raises(FilterError, match=field):
        FlowMatcher([FlowFilter(**{field: ["/"]})])


def test_a_service_known_only_by_namespace_matches_the_same_from_the_record() -> None:
    # Hubble matches `ns/` against a Service with a namespace and no name; the record keeps
    # no service text for it, so it must not answer (differently) on its own.
    flow = flow_pb.Flow(destination_service=flow_pb.Service(namespace="shop"))
    assert verdicts(FlowFilter(destination_service=["shop/"]), flow)
    assert not verdicts(FlowFilter(destination_service=["shop/cart"]), flow)
    assert not verdicts(FlowFilter(destination_service=["other/"]), flow)


# ----- IP filters ---------------------------------------------------------------------------------------


def test_an_ipv4_mapped_ipv6_address_is_in_an_ipv4_cidr_as_go_net_says() -> None:
    # Go's IPNet.Contains reduces ::ffff:a.b.c.d to a.b.c.d before comparing.
    flow = flow_pb.Flow(IP=flow_pb.IP(source="::ffff:10.1.2.3", destination="10.9.9.9"))
    assert verdicts(FlowFilter(source_ip=["10.0.0.0/8"]), flow)
    assert not verdicts(FlowFilter(source_ip=["192.168.0.0/16"]), flow)
    assert not verdicts(FlowFilter(source_ip=["10.1.2.3"]), flow)  # exact addresses compare as text
    assert not verdicts(FlowFilter(source_ip=["::/0"]), flow)  # Go: a 4-byte address is in no IPv6 net
