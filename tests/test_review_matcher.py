"""Review tests for FlowMatcher: each pins a place where the local matcher disagreed with what
a Hubble server (Go RE2 regexes, Kubernetes label selectors, Hubble's name filters) does."""

from __future__ import annotations

import warnings

import pytest

from kcockpit.model.matcher import FilterError, FlowMatcher
from kcockpit.model.record import FlowRecord
from kcockpit.wire.hubble_pb import FlowFilter, flow_pb


def verdicts(flow_filter: FlowFilter, flow) -> bool:
    """The matcher's answer, the same from the flow and from its record (else the test fails)."""
    matcher = FlowMatcher([flow_filter])
    on_flow = matcher.matches(flow)
    assert matcher.matches_record(FlowRecord.from_flow(flow)) is on_flow
    return on_flow


def dns_flow(query: str):
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
        assert verdicts(FlowFilter(dns_query=[pattern]), dns_flow(query)) is expected


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
    assert verdicts(FlowFilter(dns_query=[pattern]), dns_flow(query)) is expected


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
