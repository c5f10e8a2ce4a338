"""`kcockpit report` on a capture written by hand (tests/data/captures/incident.jsonl): every
expected number below is counted from that file's 22 lines, not from running the code.

The capture, line by line (times 10:00:SS on 2026-12-04):
 u01 00.050 policy verdict FORWARDED ingress loadgenerator → frontend 8080, allowed by otel-demo/allow-frontend
 u02 00.100 HTTP GET request at the frontend's ingress proxy (server's report)
 u03 00.100 the same request at the loadgenerator's egress proxy (client's report)
 u04 00.112 HTTP 200 response, 12 ms, server's report;  u05 00.113 the same, 13 ms, client's report
 u06 00.114 a TCP reply packet frontend → loadgenerator (is_reply)
 u07 01     HTTP POST request (server's report);  u08 01.040 HTTP 503 response, 40 ms (server's report)
 u09/u10    DNS A cartservice...: request and NOERROR response, 2 ms
 u11/u12    DNS A api.stripe.com.otel-demo.svc.cluster.local.: request and NXDOMAIN, 1 ms
 u13 03     DNS AAAA lost.example.com.: request, never answered (the capture ends 7 s later)
 u14/u15 04 one DNS packet to port 53 dropped by policy: policy-verdict event (egress_denied_by
            otel-demo/frontend-egress-allow-to-backend) and drop event (POLICY_DENIED, no policy)
 u16/u17 05 one DNS A adservice... request reported by node-1 and node-3;  u18 its NOERROR, 3 ms
 u19 06     AUDIT policy verdict frontend → world (api.stripe.com) 443, clusterwide block-egress
 line 20: not JSON;  line 21: 3 lost events
 u20 10     host → frontend 8080 TCP SYN (trace)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kcockpit.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURE = DATA / "captures" / "incident.jsonl"


def report_json(capsys, *args: str) -> dict:
    assert main(["report", "--input-file", str(CAPTURE), "-o", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def by(rows: list[dict], *keys: str) -> dict:
    return {tuple(row[k] for k in keys): row for row in rows}


def test_window_counts_every_flow_of_the_capture(capsys) -> None:
    window = report_json(capsys)["window"]
    assert window["flows"] == 20
    assert window["from"] == "2026-12-04T10:00:00.050Z"
    assert window["to"] == "2026-12-04T10:00:10.000Z"


def test_service_edges_follow_the_counting_rules(capsys) -> None:
    services = by(report_json(capsys)["services"], "source", "destination", "port", "protocol")
    assert set(services) == {
        ("otel-demo/loadgenerator", "otel-demo/frontend", 8080, "TCP"),
        ("otel-demo/frontend", "kube-system/coredns", 53, "UDP"),
        ("host", "otel-demo/frontend", 8080, "TCP"),
        ("otel-demo/frontend", "world", 443, "TCP"),
    }
    web = services[("otel-demo/loadgenerator", "otel-demo/frontend", 8080, "TCP")]
    # u01-u08, the reply u06 included; requests and errors from the server's proxy only.
    assert (web["flows"], web["forwarded"], web["dropped"], web["requests"], web["errors"]) == (8, 8, 0, 2, 1)
    assert web["latency_ms"]["p50"] == pytest.approx(12, rel=0.05)
    assert web["latency_ms"]["p95"] == pytest.approx(40, rel=0.05)
    assert web["latency_ms"]["p99"] == pytest.approx(40, rel=0.05)
    dns = services[("otel-demo/frontend", "kube-system/coredns", 53, "UDP")]
    # u09-u18: DNS flows count on the edge, not as HTTP requests; u14 and u15 are both drops.
    assert (dns["flows"], dns["forwarded"], dns["dropped"], dns["requests"], dns["errors"], dns["latency_ms"]) == (10, 8, 2, 0, 0, None)
    assert dns["drop_reasons"] == {"POLICY_DENIED": 2}
    world = services[("otel-demo/frontend", "world", 443, "TCP")]
    assert (world["flows"], world["forwarded"], world["dropped"], world["destination_detail"]) == (1, 0, 0, "api.stripe.com")


def test_dns_rows_count_each_lookup_once(capsys) -> None:
    dns = by(report_json(capsys)["dns"], "client", "query", "qtype")
    assert set(dns) == {
        ("otel-demo/frontend", "", ""),
        ("otel-demo/frontend", "cartservice.otel-demo.svc.cluster.local.", "A"),
        ("otel-demo/frontend", "api.stripe.com.otel-demo.svc.cluster.local.", "A"),
        ("otel-demo/frontend", "lost.example.com.", "AAAA"),
        ("otel-demo/frontend", "adservice.otel-demo.svc.cluster.local.", "A"),
    }

    def counts(query: str, qtype: str) -> tuple:
        row = dns[("otel-demo/frontend", query, qtype)]
        return row["requests"], row["responses"], row["rcodes"], row["unanswered"], row["dropped"]

    assert counts("", "") == (1, 0, {}, 0, 1)  # one packet: its drop and policy-verdict events
    assert counts("cartservice.otel-demo.svc.cluster.local.", "A") == (1, 1, {"NOERROR": 1}, 0, 0)
    assert counts("api.stripe.com.otel-demo.svc.cluster.local.", "A") == (1, 1, {"NXDOMAIN": 1}, 0, 0)
    assert counts("lost.example.com.", "AAAA") == (1, 0, {}, 1, 0)
    assert counts("adservice.otel-demo.svc.cluster.local.", "A") == (1, 1, {"NOERROR": 1}, 0, 0)  # two nodes, once
    assert dns[("otel-demo/frontend", "cartservice.otel-demo.svc.cluster.local.", "A")]["latency_ms"]["p50"] == pytest.approx(2, rel=0.05)
    assert dns[("otel-demo/frontend", "lost.example.com.", "AAAA")]["latency_ms"] is None


def test_policy_groups_name_hubbles_deciding_policy(capsys) -> None:
    groups = by(report_json(capsys)["policies"], "verdict", "direction", "policy", "source", "destination", "port", "protocol")
    flows = {key: (row["flows"], row["decided_by"]) for key, row in groups.items()}
    assert flows == {
        ("FORWARDED", "ingress", "otel-demo/allow-frontend", "otel-demo/loadgenerator", "otel-demo/frontend", 8080, "TCP"): (1, "hubble"),
        ("DROPPED", "egress", "otel-demo/frontend-egress-allow-to-backend", "otel-demo/frontend", "kube-system/coredns", 53, "UDP"): (1, "hubble"),
        ("DROPPED", "egress", None, "otel-demo/frontend", "kube-system/coredns", 53, "UDP"): (1, None),
        ("AUDIT", "egress", "block-egress", "otel-demo/frontend", "world", 443, "TCP"): (1, "hubble"),
    }


def test_the_policy_engine_names_the_policy_hubble_did_not(capsys) -> None:
    policies = report_json(capsys, "--policies", str(DATA / "policies" / "talk"))["policies"]
    engine = [g for g in policies if g["decided_by"] == "engine"]
    assert [(g["policy"], g["flows"]) for g in engine] == [("otel-demo/frontend-egress-allow-to-backend", 1)]


def test_since_until_and_last_select_flows_by_their_time(capsys) -> None:
    assert report_json(capsys, "--since", "2026-12-04T10:00:04Z", "--until", "2026-12-04T10:00:06Z")["window"]["flows"] == 6  # u14-u19
    assert report_json(capsys, "--last", "2")["window"]["flows"] == 2


def test_text_output_fits_80_columns_and_names_the_problem_lines(capsys) -> None:
    assert main(["report", "--input-file", str(CAPTURE)]) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    words = " ".join(text.split())  # notes wrap at 80 columns wherever the path ends
    assert "incident.jsonl:20: not JSON" in words
    assert "otel-demo/frontend  (query unknown: dropped before the DNS proxy)" in text
    assert "dropped by otel-demo/frontend-egress-allow-to-backend" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input-file", "/nonexistent/capture.json"], "cannot read capture file '/nonexistent/capture.json'"),
        (["--input-file", str(CAPTURE), "--since", "yesterday"], "'yesterday' is neither a duration"),
        (["--input-file", str(CAPTURE), "--last", "0"], "--last 0: expected a number of flows"),
        (["--input-file", str(CAPTURE), "--demo"], "two different sources"),
        (["--server", "127.0.0.1:1", "--timeout", "0.5"], "127.0.0.1:1"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args, message) -> None:
    done = subprocess.run([sys.executable, "-m", "kcockpit", "report", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_capture_of_only_garbage_is_bad_input(tmp_path, capsys) -> None:
    path = tmp_path / "garbage.json"
    path.write_text("not json\n{\"foo\": 1}\n")
    assert main(["report", "--input-file", str(path)]) == 2
    assert "no flows in" in capsys.readouterr().err


def test_demo_report_tells_the_story_deterministically(capsys) -> None:
    first = report_json_demo(capsys)
    assert first == report_json_demo(capsys)
    dropped = [r for r in first["dns"] if r["client"] == "otel-demo/frontend" and r["dropped"]]
    assert dropped and dropped[0]["query"] == ""
    assert any(g["policy"] == "otel-demo/frontend-egress-allow-to-backend" and g["verdict"] == "DROPPED" for g in first["policies"])


def report_json_demo(capsys) -> dict:
    assert main(["report", "--demo", "--scenario", "broken", "--demo-seconds", "20", "-o", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_live_server_is_read_over_grpc_with_last_n_per_node(capsys) -> None:
    from kcockpit.sim.embedded import DemoCluster

    with DemoCluster(seed=2, rate=400, scenario="broken", backfill_s=10) as cluster:
        address = cluster.start()
        assert main(["report", "--server", address, "--last", "50", "-o", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == f"server {address}"
    assert report["window"]["flows"] == 50 * len(cluster.world.nodes)  # through Relay, N per node
    assert sum(e["flows"] for e in report["services"]) == report["window"]["flows"]
