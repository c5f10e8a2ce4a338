"""The committed stubs must be exactly what protos/ generates."""

from pathlib import Path

from kcockpit.wire import protogen


def test_committed_stubs_match_protos(tmp_path: Path) -> None:
    generated = protogen.generate(tmp_path / "pb")
    stale = []
    for path in generated:
        rel = path.relative_to(tmp_path / "pb")
        committed = protogen.STUBS_DIR / rel
        if not committed.exists() or committed.read_text() != path.read_text():
            stale.append(str(rel))
    committed_files = {p.relative_to(protogen.STUBS_DIR) for p in protogen.STUBS_DIR.rglob("*.py*")}
    extra = committed_files - {p.relative_to(tmp_path / "pb") for p in generated} - {Path("__init__.py")}
    extra = {p for p in extra if "__pycache__" not in p.parts}
    assert not stale, f"stubs out of date, run `python -m kcockpit.wire.protogen`: {stale}"
    assert not extra, f"stubs without a .proto: {sorted(map(str, extra))}"


def test_wire_names_and_numbers() -> None:
    from kcockpit.wire.hubble_pb import flow_pb, observer_pb

    flow = flow_pb.Flow.DESCRIPTOR.fields_by_name
    assert flow["Summary"].number == 100000
    assert flow["drop_reason_desc"].number == 25
    assert flow["egress_denied_by"].number == 21004
    assert flow_pb.FlowFilter.DESCRIPTOR.fields_by_name["source_workload"].number == 26
    assert flow_pb.TO_ENDPOINT == 101 and flow_pb.POLICY_DENIED == 133
    response = observer_pb.GetFlowsResponse.DESCRIPTOR.fields_by_name
    assert response["node_name"].number == 1000 and response["lost_events"].number == 3
    service = observer_pb.DESCRIPTOR.services_by_name["Observer"]
    assert service.full_name == "observer.Observer"
    assert {m.name for m in service.methods} >= {"GetFlows", "ServerStatus", "GetNodes", "GetNamespaces"}
