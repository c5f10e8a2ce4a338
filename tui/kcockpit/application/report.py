"""`kcockpit report`: the aggregates without a screen, for postmortems, tickets and CI.

It reads the same sources as the cockpit (a capture file or stdin, a Hubble server or
Relay, the simulated cluster), selects flows like `hubble observe` (`--since`, `--until`,
`--last N`), passes every flow once through the same aggregates model the tabs read, and
prints the services, DNS and policy tables as text for 80 columns, or as one JSON document
(`-o json`). Flows are counted as they stream by and then dropped: memory depends on the
aggregates' key caps, not on the size of the input.

The command line (`kcockpit report`, exit status 0 done, 2 bad input) is in
`kcockpit.report_cli`.
"""

from __future__ import annotations

import json
import math
import sys
import textwrap
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from kcockpit.model.aggregates import DnsRow, FlowAggregates, PolicyGroup, ServiceEdge, Window
from kcockpit.model.record import FlowRecord
from kcockpit.model.times import NS, TimeError, parse_time_ns

DEFAULT_TOP = 15
DEFAULT_DEMO_SECONDS = 180.0  # one loop of the story: healthy, broken, fixed
WIDTH = 80


class ReportError(Exception):
    """Bad input: printed as one line, exit status 2."""


@dataclass(frozen=True)
class Selection:
    since_ns: int | None = None
    until_ns: int | None = None
    last: int | None = None

    def describe(self) -> str:
        parts = []
        if self.since_ns is not None:
            parts.append(f"since {_clock(self.since_ns)}")
        if self.until_ns is not None:
            parts.append(f"until {_clock(self.until_ns)}")
        if self.last is not None:
            parts.append(f"last {self.last}")
        return ", ".join(parts)


# --- building -------------------------------------------------------------------------------

@dataclass
class Report:
    source: str
    window: Window
    services: list[ServiceEdge]
    dns: list[DnsRow]
    policies: list[PolicyGroup]
    notes: list[str]

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "window": self.window.to_json(),
            "services": [e.to_json() for e in self.services],
            "dns": [r.to_json() for r in self.dns],
            "policies": [g.to_json() for g in self.policies],
            "notes": self.notes,
        }

    def to_text(self, top: int = DEFAULT_TOP) -> str:
        return render_text(self, top)


@dataclass(frozen=True)
class ReportRequest:
    """What to report on: one source (a capture path or "-", the demo, else `connection`),
    which flows, and optional policy manifests for the engine."""

    input_file: str | None = None
    demo: bool = False
    connection: object | None = None  # a wire.connection.HubbleConnection
    seed: int = 1
    scenario: str = "auto"
    demo_seconds: float = DEFAULT_DEMO_SECONDS
    rate: float = 200.0
    since: str | None = None
    until: str | None = None
    last: int | None = None
    top: int = DEFAULT_TOP
    policies: str | None = None


def build_report(args: ReportRequest) -> Report:
    if args.input_file and args.demo:
        raise ReportError("--input-file and --demo are two different sources: pass only one")
    if args.last is not None and args.last < 1:
        raise ReportError(f"--last {args.last}: expected a number of flows, 1 or more")
    if args.top < 0:
        raise ReportError(f"--top {args.top}: expected 0 (all rows) or more")
    now_ns = time.time_ns()
    try:
        selection = Selection(
            since_ns=parse_time_ns(args.since, now_ns) if args.since else None,
            until_ns=parse_time_ns(args.until, now_ns) if args.until else None,
            last=args.last,
        )
    except TimeError as error:
        raise ReportError(f"--since/--until: {error}") from None
    cluster = _policy_cluster(args.policies) if args.policies else None
    aggregates = FlowAggregates()
    notes: list[str] = []
    from kcockpit.sources.capture import CaptureResult

    capture_result = CaptureResult(source=args.input_file or "")
    if args.input_file:
        source, raws = _capture_flows(args.input_file, capture_result, notes)
        raws = select(raws, selection)
    elif args.demo:
        source, raws = _demo_flows(args)
        raws = select(raws, selection)
    else:
        source, raws = _server_flows(args.connection, selection, notes)
    for batch in _batches(raws, 4096):
        aggregates.ingest_raw(batch)
    if args.input_file and not aggregates.flows and capture_result.problems and not capture_result.lost_events:
        raise ReportError(f"no flows in {capture_result.source}: {capture_result.skipped} malformed lines "
                          f"(first: {capture_result.problems[0]})")
    aggregates.advance(aggregates.last_ns + 6 * NS)  # the input ended: waiting lookups are unanswered
    if not aggregates.flows:
        what = selection.describe()
        notes.append(f"no flows{' ' + what if what else ''}" + (" (durations count back from now)" if args.since or args.until else ""))
    policies = aggregates.policy_groups(None)
    if cluster is not None:
        policies = engine_decisions(policies, cluster)
    return Report(source, aggregates.window(None), aggregates.services(None), aggregates.dns_rows(None), policies, notes)


def _batches(raws: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for raw in raws:
        batch.append(raw)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def select(raws: Iterable[bytes], selection: Selection) -> Iterator[bytes]:
    """Flows within since/until (by their own time), then only the last N."""
    since, until = selection.since_ns, selection.until_ns
    if since is not None or until is not None:
        raws = (raw for raw in raws if _within(raw, since, until))
    if selection.last is not None:
        raws = iter(deque(raws, maxlen=selection.last))
    return iter(raws)


def _within(raw: bytes, since: int | None, until: int | None) -> bool:
    record = FlowRecord.from_bytes(raw)
    if record is None:
        return False
    return (since is None or record.time_ns >= since) and (until is None or record.time_ns <= until)


def _capture_flows(path: str, result, notes: list[str]) -> tuple[str, Iterator[bytes]]:
    from kcockpit.sources.capture import CaptureError, iter_capture

    def flows() -> Iterator[bytes]:
        try:
            yield from iter_capture(path, result)
        except CaptureError as error:
            raise ReportError(str(error)) from None
        for problem in result.problems[:3]:
            notes.append(f"skipped {problem}")
        if len(result.problems) > 3:
            notes.append(f"skipped {len(result.problems) - 3} more malformed lines")
        if result.lost_events:
            notes.append(f"the capture records {result.lost_events} events Hubble lost: counts are lower bounds")

    return ("<stdin>" if path == "-" else path), flows()


def _demo_flows(args: ReportRequest) -> tuple[str, Iterator[bytes]]:
    from kcockpit.sim.clock import ManualClock
    from kcockpit.sim.scenario import Scenario
    from kcockpit.sim.traffic import Simulator, rate_problem
    from kcockpit.sim.world import World

    if problem := rate_problem(args.rate):
        raise ReportError(f"--rate {problem}")
    if not (0 < args.demo_seconds <= 24 * 3600) or math.isnan(args.demo_seconds):
        raise ReportError(f"--demo-seconds {args.demo_seconds:g}: expected more than 0 and at most a day (86400)")
    clock = ManualClock()
    scenario = Scenario(clock, mode=args.scenario, loop=True, start_ns=clock.now_ns())
    simulator = Simulator(World.build(args.seed), seed=args.seed, clock=clock, scenario=scenario, rate=args.rate)

    def flows() -> Iterator[bytes]:
        for _ in range(math.ceil(args.demo_seconds)):
            clock.advance(1.0)
            for response in simulator.advance():
                yield response.SerializeToString()

    return f"demo (seed {args.seed}, scenario {args.scenario}, {args.demo_seconds:g} s simulated)", flows()


def _server_flows(connection, selection: Selection, notes: list[str]) -> tuple[str, Iterator[bytes]]:
    import grpc

    from kcockpit.wire.errors import describe_rpc_error
    from kcockpit.wire.hubble_client import GET_FLOWS_METHOD, flows_request
    from kcockpit.wire.hubble_pb import GetFlowsRequest, GetFlowsResponse

    everything = selection.last is None and selection.since_ns is None
    request = flows_request(
        number=selection.last if selection.last is not None else (2**63 - 1 if everything else None),
        since=selection.since_ns, until=selection.until_ns,
    )

    def flows() -> Iterator[bytes]:
        channel = connection.sync_channel()
        try:
            try:
                grpc.channel_ready_future(channel).result(timeout=connection.timeout)
            except grpc.FutureTimeoutError:
                raise ReportError(f"Hubble server {connection.server}: no connection within {connection.timeout:g}s "
                                  "(is it running? `cilium hubble port-forward`, or pass --server)") from None
            call = channel.unary_stream(GET_FLOWS_METHOD, request_serializer=GetFlowsRequest.SerializeToString,
                                        response_deserializer=None)(request)
            lost = 0
            try:
                for raw in call:
                    response = GetFlowsResponse.FromString(raw)
                    kind = response.WhichOneof("response_types")
                    if kind == "flow":
                        yield raw
                    elif kind == "lost_events":
                        lost += response.lost_events.num_events_lost
            except grpc.RpcError as error:
                raise ReportError(str(describe_rpc_error(error, connection.server, "GetFlows"))) from None
            if lost:
                notes.append(f"the server reported {lost} lost events: counts are lower bounds")
        finally:
            channel.close()

    return f"server {connection.server}", flows()


def _policy_cluster(path: str):
    from kcockpit.sources import manifests

    try:
        loaded = manifests.load(path)
    except manifests.ManifestError as error:
        raise ReportError(str(error)) from None
    for problem in loaded.problems:
        print(f"kcockpit report: warning: {problem} (skipped)", file=sys.stderr)
    if not loaded.files:
        raise ReportError(f"--policies {path}: no .yaml, .yml or .json file found")
    return loaded.cluster()


def engine_decisions(groups: list[PolicyGroup], cluster) -> list[PolicyGroup]:
    """Name the deciding policy with the policy engine where Hubble named none (marked
    `decided_by: engine`); groups the engine cannot place stay as they are."""
    from kcockpit.policy.flows import explain_flow

    resolved = []
    for group in groups:
        if group.policy is None and group.sample is not None:
            record = FlowRecord.from_bytes(group.sample)
            if record is not None:
                verdict = explain_flow(record, cluster, with_fixes=False)
                side = next((s for s in verdict.evaluation.sides if s.direction == group.direction), None)
                if side is not None and side.deciding:
                    group = replace(group, policy=str(side.deciding[0]), decided_by="engine")
        resolved.append(group)
    return resolved


# --- text -------------------------------------------------------------------------------------

def _clock(time_ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time_ns / NS)) + "Z"


def _count(value: int) -> str:
    return f"{value:,}"


def _ms(latency: dict | None, key: str = "p95") -> str:
    if not latency:
        return "-"
    value = latency[key]
    return f"{value / 1000:.1f}s" if value >= 1000 else (f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms")


def _relative(endpoint, to) -> str:
    """`coredns` for kube-system/coredns seen from kube-system, else the full name."""
    if endpoint.namespace and endpoint.namespace == to.namespace:
        return str(endpoint).partition("/")[2]
    return str(endpoint)


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{name} {_count(count)}" for name, count in sorted(reasons.items(), key=lambda item: -item[1]))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _records(name_header: str, headers: list[str], rows: list[tuple[str, list[str], str]]) -> list[str]:
    """Two lines a row, so that names are never cut at 80 columns: the names, then the
    numbers in right-aligned columns under `headers`, then a remark."""
    widths = [max([len(h)] + [len(r[1][i]) for r in rows]) for i, h in enumerate(headers)]

    def numbers(cells: list[str]) -> str:
        return "    " + "  ".join(cell.rjust(widths[i]) for i, cell in enumerate(cells))

    lines = [name_header, numbers(headers)]
    for names, cells, remark in rows:
        lines.append(_cut(names, WIDTH))
        line = numbers(cells)
        if remark and len(line) + 2 + len(remark) <= WIDTH:
            lines.append(f"{line}  {remark}")
        else:
            lines.append(line)
            if remark:
                lines.append(_cut(f"      {remark}", WIDTH))
    return lines


def _limited(rows: list, top: int) -> tuple[list, str]:
    if top and len(rows) > top:
        return rows[:top], f"  … {len(rows) - top} more (--top 0 shows all, -o json has every row)"
    return rows, ""


def render_text(report: Report, top: int = DEFAULT_TOP) -> str:
    window = report.window
    lines = textwrap.wrap(f"kcockpit report · {report.source}", WIDTH, subsequent_indent="  ", break_on_hyphens=False)
    lines.append(
        f"{_count(window.flows)} flows"
        + (f", {_clock(window.from_ns)} → {_clock(window.to_ns)}" if window.flows else "")
        + f" · scope: {window.scope}"
    )
    for note in report.notes:
        lines += textwrap.wrap(f"note: {note}", WIDTH, subsequent_indent="      ", break_on_hyphens=False)

    services, more = _limited(report.services, top)
    lines += ["", f"SERVICES  {len(report.services)} edges, busiest first (HTTP: the server's proxy's view)"]
    rows = [(f"{e.client} → {_relative(e.server, e.client)} {e.port}/{e.protocol}".rstrip("/0 ") if e.protocol else f"{e.client} → {_relative(e.server, e.client)}",
             [_count(e.flows), _count(e.forwarded), _count(e.dropped), _count(e.requests) if e.reporter else "-",
              f"{100 * e.error_ratio:.1f}%" if e.responses else "-", _ms(e.latency_ms(), "p50"), _ms(e.latency_ms())],
             (f"drops: {_reasons(e.drop_reasons)}" if e.dropped else "") + (f"  (HTTP seen by the {e.reporter})" if e.reporter == "client" else ""))
            for e in services]
    lines += _records("CLIENT → SERVER PORT", ["FLOWS", "FORWARDED", "DROPPED", "REQUESTS", "5XX", "P50", "P95"], rows) if rows else ["  none"]
    lines += [more] if more else []

    dns, more = _limited(report.dns, top)
    lines += ["", f"DNS  {len(report.dns)} rows of lookups by client, name and type"]
    rows = []
    for r in dns:
        failing = {k: v for k, v in r.rcodes.items() if k != "NOERROR"}
        policies = ", ".join(p for p in r.drop_policies if p)
        remark = f"dropped by {policies}" if policies else ""
        if failing:
            remark = ", ".join(f"{k} {v}" for k, v in sorted(failing.items())) + (f"; {remark}" if remark else "")
        name = f"{r.query} {r.qtype}" if r.query else "(query unknown: dropped before the DNS proxy)"
        rows.append((f"{r.client}  {name}",
                     [_count(r.requests), f"{100 * r.answered_ratio:.0f}%" if r.requests else "-", _count(r.unanswered),
                      _count(r.dropped), _ms(r.latency_ms(), "p50"), _ms(r.latency_ms())], remark))
    lines += _records("CLIENT  QUERY TYPE", ["LOOKUPS", "ANSWERED", "UNANSWERED", "DROPPED", "P50", "P95"], rows) if rows else ["  none"]
    lines += [more] if more else []

    policies, more = _limited(report.policies, top)
    lines += ["", f"POLICY VERDICTS  {len(report.policies)} groups; * marks the policy engine's answer"]
    rows = [(f"{g.verdict} {g.direction} {g.policy or '(no policy named)'}{'*' if g.decided_by == 'engine' else ''}",
             [_count(g.flows)], f"{g.source} → {_relative(g.destination, g.source)} {g.port}/{g.protocol}")
            for g in policies]
    lines += _records("VERDICT DIRECTION POLICY", ["FLOWS"], rows) if rows else ["  none"]
    lines += [more] if more else []
    return "\n".join(lines)
