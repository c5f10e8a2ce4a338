"""`kcockpit report`: its options, and the run that prints the report (see
kcockpit.application.report for what it counts). Exit status: 0 done, 2 bad input (one line
on stderr, no traceback)."""

from __future__ import annotations

import argparse
import json
import sys

from kcockpit.application.report import DEFAULT_DEMO_SECONDS, DEFAULT_TOP, ReportError, ReportRequest, build_report
from kcockpit.cli_options import add_connection_arguments, connection_from_args
from kcockpit.wire.connection import HubbleError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Count flows into the services, DNS and policy tables the cockpit's tabs show, and print "
        "them as text or JSON. Reads a Hubble server (default), --input-file, or --demo."
    )
    source = parser.add_argument_group("flow source (default: a Hubble server, see below)")
    source.add_argument("--input-file", metavar="FILE", help="a `hubble observe -o jsonpb` capture; - reads stdin")
    source.add_argument("--demo", action="store_true", help="the simulated cluster, run for --demo-seconds of its time")
    source.add_argument("--seed", type=int, default=1, help="seed of the simulated cluster (default 1)")
    source.add_argument("--scenario", default="auto", choices=("auto", "healthy", "broken", "fixed", "dns-overload"),
                        help="demo story: auto plays healthy, broken, fixed, dns-overload (60 s each)")
    source.add_argument("--demo-seconds", type=float, default=DEFAULT_DEMO_SECONDS, metavar="S",
                        help=f"simulated seconds of demo traffic (default {DEFAULT_DEMO_SECONDS:g})")
    source.add_argument("--rate", type=float, default=200.0, help="demo flows per second (default 200)")
    select = parser.add_argument_group("which flows (as hubble observe)")
    select.add_argument("--since", metavar="TIME", help="from this time: a duration back from now (5m, 1h30m) or RFC 3339")
    select.add_argument("--until", metavar="TIME", help="up to this time (same forms)")
    select.add_argument("--last", type=int, metavar="N", help="only the last N flows (through Relay: N per node)")
    output = parser.add_argument_group("output")
    output.add_argument("-o", "--output", choices=("table", "json"), default="table", help="table (default) or json")
    output.add_argument("--top", type=int, default=DEFAULT_TOP, metavar="N",
                        help=f"rows per table in text output (default {DEFAULT_TOP}; 0 for all)")
    output.add_argument("--policies", metavar="DIR",
                        help="NetworkPolicy manifests: the policy engine names the deciding policy where Hubble did not")
    add_connection_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        connection = None if (args.input_file or args.demo) else connection_from_args(args)
        request = ReportRequest(
            input_file=args.input_file, demo=args.demo, connection=connection, seed=args.seed,
            scenario=args.scenario, demo_seconds=args.demo_seconds, rate=args.rate, since=args.since,
            until=args.until, last=args.last, top=args.top, policies=args.policies,
        )
        report = build_report(request)
    except (ReportError, HubbleError) as error:
        print(f"kcockpit report: error: {error}", file=sys.stderr)
        return 2
    text = json.dumps(report.to_json(), indent=2) if args.output == "json" else report.to_text(args.top)
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`
        return 0
    return 0
