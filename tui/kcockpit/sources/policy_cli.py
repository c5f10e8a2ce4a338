"""`kcockpit policy explain|advise`: policy answers for scripts and CI, without the TUI.

Lives in the sources layer because it reads manifests, captures and live clusters; the
answers themselves come from kcockpit.policy. Exit status: 0 allowed (or advice printed),
1 denied, 2 error or not evaluated, so a pipeline can gate a policy change on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from kcockpit.policy import advise as advice_module
from kcockpit.policy import explain as explain_text
from kcockpit.policy import fix, targets
from kcockpit.policy.cluster import Cluster
from kcockpit.policy.engine import Engine
from kcockpit.policy.results import ALLOWED, DENIED, Connection, Options
from kcockpit.sources import manifests
from kcockpit.sources.kubernetes import KubernetesConfigError, KubernetesSource

EXIT = {ALLOWED: 0, DENIED: 1}
EXIT_ERROR = 2


class PolicyCliError(Exception):
    """Printed as one line on stderr; exit status 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="policy_command", metavar="{explain,advise}", required=True)
    explain = commands.add_parser("explain", help="would this connection be allowed, and why (exit 0 allowed, 1 denied, 2 error/not evaluated)")
    _add_source(explain)
    explain.add_argument("--from", dest="source", required=True, metavar="NS/POD", help="source pod or workload (NS/NAME) or an IP")
    explain.add_argument("--to", dest="destination", required=True, metavar="NS/POD|IP", help="destination pod, workload or Service (NS/NAME), or an IP")
    explain.add_argument("--port", required=True, metavar="PORT[/PROTO]", help="destination port, protocol tcp (default), udp or sctp; a Service port is translated to its target port")
    explain.add_argument("--fix", action="store_true", help="print the proposed fixes as ready-to-apply YAML")
    explain.add_argument("-o", "--output", choices=("text", "json"), default="text")
    advise = commands.add_parser("advise", help="least-privilege NetworkPolicy and CiliumNetworkPolicy from observed flows")
    _add_source(advise, live=False)
    advise.add_argument("--input-file", required=True, metavar="CAPTURE", help="flows as written by `hubble observe -o jsonpb` (- for stdin)")
    advise.add_argument("--workload", required=True, metavar="NS/NAME", help="the workload to write the policy for")
    advise.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")


def _add_source(parser: argparse.ArgumentParser, live: bool = True) -> None:
    where = " (default: the cluster of --kubeconfig/--context)" if live else ""
    parser.add_argument("--manifests", "--policies", dest="manifests", metavar="DIR",
                        help=f"directory (or file) of YAML/JSON manifests: policies, namespaces, pods or workloads, services{where}")
    if live:
        parser.add_argument("--kubeconfig", metavar="PATH", help="read the live cluster with this kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
        parser.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current one)")
    parser.add_argument("--calico", action="store_true", help="let ipBlock match pod IPs as Calico does (default: Cilium behaviour)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.policy_command == "explain":
            return _explain(args)
        return _advise(args)
    except (PolicyCliError, KubernetesConfigError, manifests.ManifestError, targets.TargetError, advice_module.AdviceError) as error:
        print(f"kcockpit policy: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def _live_cluster(args: argparse.Namespace) -> Cluster:
    """One synchronous read of the cluster; refuses to answer without complete policy data."""
    snapshot = KubernetesSource.from_kubeconfig(args.kubeconfig, args.context).read_once()
    for problem in snapshot.problems():
        print(f"kcockpit policy: warning: {problem}", file=sys.stderr)
    if not snapshot.policies_complete:
        raise PolicyCliError(f"the policies of {snapshot.origin} could not all be read, so no verdict is given")
    return snapshot.cluster()


def _load_cluster(path: str | None) -> Cluster:
    if not path:
        return Cluster()
    loaded = manifests.load(path)
    for problem in loaded.problems:
        print(f"kcockpit policy: warning: {problem} (skipped)", file=sys.stderr)
    if not loaded.files:
        raise PolicyCliError(f"{path}: no .yaml, .yml or .json file found")
    return loaded.cluster()


def _explain(args: argparse.Namespace) -> int:
    cluster = _load_cluster(args.manifests) if args.manifests else _live_cluster(args)
    options = Options(ipblock_matches_pods=args.calico)
    port, protocol = targets.parse_port(args.port)
    source, _ = targets.resolve(cluster, args.source)
    destination, target_port = targets.resolve(cluster, args.destination, port, protocol)
    evaluation = Engine(cluster, options).evaluate(Connection(source, destination, target_port, protocol))
    proposals = fix.propose(cluster, evaluation, options) if evaluation.verdict == DENIED else []
    if args.output == "json":
        result = explain_text.to_dict(evaluation)
        result["fixes"] = [p.to_dict() for p in proposals]
        _write(json.dumps(result, indent=2))
    else:
        lines = [explain_text.sentence(evaluation)]
        lines += ["  " + line for line in explain_text.details(evaluation)]
        lines += [_proposal_text(proposal, args.fix) for proposal in proposals]
        if proposals and not args.fix:
            lines.append("(run with --fix for ready-to-apply YAML)")
        _write("\n".join(lines))
    return EXIT.get(evaluation.verdict, EXIT_ERROR)


def _write(text: str) -> None:
    """Print the answer; a reader that stops early (`| head`) is not an error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit


def _proposal_text(proposal: fix.FixProposal, with_yaml: bool) -> str:
    lines = [f"fix ({proposal.side}): {proposal.title}"]
    if proposal.policy is not None:
        if proposal.verified:
            lines.append("  verified: allows this connection and opens nothing unrelated; it opens:")
        elif not proposal.allows_flow:
            lines.append("  NOT verified: the engine still does not allow this connection; it opens:")
        elif proposal.unrelated:
            lines.append("  NOT verified: it also opens unrelated peers or ports; it opens:")
        else:
            lines.append("  NOT verified: it isolates pods the deciding policy leaves alone; it opens:")
        lines += [f"    {opening}" for opening in proposal.opens] or ["    nothing"]
        if proposal.closes:
            lines.append("  and denies what was allowed before:")
            lines += [f"    {closing}" for closing in proposal.closes]
        if with_yaml:
            lines.append("---\n" + proposal.yaml().rstrip())
    return "\n".join(lines)


def _advise(args: argparse.Namespace) -> int:
    from kcockpit.sources.capture import CaptureError, read_capture

    namespace, slash, name = args.workload.partition("/")
    if not slash or not namespace or not name:
        raise PolicyCliError(f"--workload {args.workload!r}: expected NAMESPACE/NAME")
    cluster = _load_cluster(args.manifests)
    try:
        capture = read_capture(args.input_file)
    except CaptureError as error:
        raise PolicyCliError(str(error)) from error
    for problem in capture.problems:
        print(f"kcockpit policy: warning: {problem} (skipped)", file=sys.stderr)
    advice = advice_module.advise(capture.records, namespace, name, cluster)
    _write(json.dumps(advice.to_dict(), indent=2) if args.output == "json" else advice.yaml().rstrip("\n"))
    if not advice.verified:
        for failure in advice.failures:
            print(f"kcockpit policy: warning: generated policy does not allow {failure}", file=sys.stderr)
        return EXIT_ERROR
    return 0
