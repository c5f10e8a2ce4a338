"""`kcockpit` itself: open the cockpit on a Hubble server, the embedded demo, or a capture file.

`add_arguments(parser)` and `run(args) -> int` are what the top-level command calls.
Everything that can be wrong with the arguments (a bad address, an unreadable file, a
filter that does not parse) is reported as one line before the screen is taken over.
What can only fail later (a kubeconfig, RBAC, an unreachable API server or Prometheus)
shows in the status bar instead, and flows keep flowing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from kcockpit.cli_options import add_connection_arguments, add_kubernetes_arguments, add_prometheus_arguments
from kcockpit.model.store import DEFAULT_CAPACITY

THEME_NAMES = ("dark", "light", "high-contrast")
DEFAULT_DEMO_RATE = 300.0  # flows/s: busy enough to look alive, slow enough to read


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_arguments(parser)
    source = parser.add_argument_group("other flow sources (instead of a Hubble server)")
    source.add_argument(
        "--demo",
        action="store_true",
        help="run the simulated cluster (OpenTelemetry demo shop on Cilium) inside kcockpit and "
        "connect to it; keys ] and [ step its scenario: healthy -> broken DNS -> fixed. It also serves "
        "its Kubernetes API (policies are read from it) and metrics on loopback ports, and starts a "
        "Prometheus scraping them when `prometheus` is on PATH",
    )
    source.add_argument("--seed", type=int, default=1, help="seed of the demo cluster (default: 1)")
    source.add_argument(
        "--rate", type=float, default=DEFAULT_DEMO_RATE, metavar="FLOWS_PER_S",
        help=f"flows per second the demo cluster produces (default: {DEFAULT_DEMO_RATE:.0f})",
    )
    source.add_argument(
        "--input-file", metavar="FILE",
        help="open a capture written by `hubble observe -o jsonpb` (or exported with x); - reads stdin",
    )
    add_kubernetes_arguments(parser)
    add_prometheus_arguments(parser)
    view = parser.add_argument_group("view")
    view.add_argument(
        "--buffer-size", type=int, default=DEFAULT_CAPACITY, metavar="FLOWS",
        help=f"flows kept in memory, about 250 bytes each (their wire bytes compressed); the oldest are evicted "
             f"beyond it (default: {DEFAULT_CAPACITY})",
    )
    view.add_argument(
        "--theme", choices=THEME_NAMES, default=None,
        help="colour theme (default: dark, high-contrast in talk mode; ctrl+t cycles). NO_COLOR=1 turns colour off",
    )
    view.add_argument(
        "--talk", nargs="?", const="", default=None, metavar="FILE",
        help="talk mode: PageDown/PageUp (a presentation clicker) step through the story, with captions; "
        "FILE is a script of your own (YAML: title, steps of caption, phase, tab, filter, select, open); "
        "b blanks the screen, home restarts",
    )
    view.add_argument("--filter", default="", metavar="TEXT", help="initial filter, e.g. 'ns=otel-demo dropped'")
    view.add_argument(
        "--export-dir", default=None, metavar="DIR",
        help="where x writes exported captures and s (in a flow's detail) saves policy fixes "
        "(default: $KCOCKPIT_EXPORT_DIR, else ~/.local/share/kcockpit/exports, created when first used)",
    )


def _talk_script(args: argparse.Namespace):
    """The talk script of --talk (the built-in one without a file), checked before the screen
    is taken over; None without --talk."""
    if args.talk is None:
        return None
    from kcockpit.application.talk import TalkError, built_in_script, load_talk
    from kcockpit.sim.world import PHASES

    try:
        script = load_talk(args.talk, tuple(PHASES)) if args.talk else built_in_script()
    except TalkError as error:
        raise _fail(f"--talk: {error}") from None
    if not args.demo and any(step.phase for step in script.steps):
        raise _fail("--talk: the script sets demo phases; run it with --demo (kcockpit --demo --talk)")
    return script


def _fail(message: str):
    from kcockpit.cli import CliError

    return CliError(message)


def _reattach_terminal() -> None:
    """After reading a capture from a pipe, take keyboard input from the terminal instead."""
    try:
        tty = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        raise _fail("--input-file - read the capture from stdin, but there is no terminal for the keyboard") from None
    os.dup2(tty, 0)
    os.close(tty)
    sys.stdin = open(0, closefd=False)


def _prometheus_config(args: argparse.Namespace):
    from kcockpit.cli_options import prometheus_config_from_args
    from kcockpit.wire.prometheus import PrometheusConfigError

    try:
        return prometheus_config_from_args(args)
    except PrometheusConfigError as error:
        raise _fail(str(error)) from None


def _check_policy_options(args: argparse.Namespace) -> None:
    chosen = [flag for flag, on in (("--policies", args.policies), ("--no-kubernetes", args.no_kubernetes)) if on]
    if len(chosen) > 1:
        raise _fail("--policies and --no-kubernetes contradict each other: pass only one")
    if args.demo and (args.kubeconfig or args.context):
        raise _fail("--demo serves its own Kubernetes API; --kubeconfig and --context are for real clusters")
    if (args.kubeconfig or args.context) and chosen:
        raise _fail(f"--kubeconfig/--context read a cluster, {chosen[0]} says not to: pass only one")
    if args.policies and not os.path.exists(args.policies):
        raise _fail(f"--policies {args.policies!r}: no such file or directory (a folder of YAML/JSON manifests)")


def _integrations(args: argparse.Namespace, prometheus_config):
    from kcockpit.application.integrations import Integrations, PrometheusFeed
    from kcockpit.cli_options import policy_feed_from_args

    return Integrations(policy_feed_from_args(args), PrometheusFeed(prometheus_config))


def _session(args: argparse.Namespace, store):
    if args.demo and args.input_file:
        raise _fail("--demo and --input-file are two different sources: pass only one")
    _check_policy_options(args)
    prometheus_config = _prometheus_config(args)
    session = _flow_session(args, store, prometheus_config)
    if session.integrations is None:
        session.integrations = _integrations(args, prometheus_config)
    return session


def _flow_session(args: argparse.Namespace, store, prometheus_config):
    if args.input_file:
        from kcockpit.sources.capture import CaptureError
        from kcockpit.application.session import CaptureSession

        try:
            session = CaptureSession(args.input_file, store)
        except CaptureError as error:
            raise _fail(str(error)) from None
        result = session.result
        if not result.flows and result.problems:
            raise _fail(f"no flows in {result.source}: {result.skipped} malformed lines (first: {result.problems[0]})")
        if args.input_file == "-":
            _reattach_terminal()
        return session
    if args.demo:
        from kcockpit.sim.traffic import rate_problem

        if problem := rate_problem(args.rate):
            raise _fail(f"--rate {problem}")
        from kcockpit.sim.embedded import DemoCluster
        from kcockpit.application.integrations import PrometheusFeed
        from kcockpit.cli_options import policy_feed_from_args
        from kcockpit.application.session import DemoSession

        explicit_policy = args.policies or args.no_kubernetes
        try:
            return DemoSession(
                DemoCluster(seed=args.seed, rate=args.rate),
                store,
                services=True,
                policy=policy_feed_from_args(args) if explicit_policy else None,
                prometheus=PrometheusFeed(prometheus_config) if prometheus_config else None,
            )
        except OSError as error:
            raise _fail(f"cannot start the demo cluster: {error}") from None
    from kcockpit.cli_options import connection_from_args
    from kcockpit.wire.connection import HubbleError
    from kcockpit.application.session import HubbleSession

    try:
        connection = connection_from_args(args)
    except HubbleError as error:
        raise _fail(str(error)) from None
    return HubbleSession(connection, store)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kcockpit.model.store import FlowStore
    from kcockpit.ui.filtering import compile_filter

    if args.buffer_size < 1:
        raise _fail(f"--buffer-size must be at least 1, got {args.buffer_size}")
    from kcockpit.ui.export import default_export_dir

    export_dir = Path(args.export_dir) if args.export_dir else default_export_dir()
    if args.export_dir and not export_dir.is_dir():
        raise _fail(f"--export-dir {args.export_dir!r} is not a directory")
    talk = _talk_script(args)
    initial = compile_filter(args.filter)
    if initial.error:
        raise _fail(f"--filter {args.filter!r}: {initial.error.lstrip('✗ ')}")
    session = _session(args, FlowStore(args.buffer_size))

    from kcockpit.ui.app import CockpitApp

    app = CockpitApp(session, initial_filter=args.filter, theme=args.theme or ("high-contrast" if talk else "dark"),
                     export_dir=export_dir, quit_on_signals=True, talk=talk)
    try:
        result = app.run()
    finally:
        if not session.stopped:  # the app ended before it could stop it (it never started, or failed)
            import asyncio

            asyncio.run(session.stop())
    code = result if isinstance(result, int) else (app.return_code or 0)
    exit_within(EXIT_GRACE_S, code)
    return code


EXIT_GRACE_S = 5.0


def exit_within(seconds: float, code: int) -> None:
    """The screen is gone and the session stopped: the process ends when its last thread
    does. Should one never end (a server thread stuck on a socket), the cockpit would stay
    behind, unseen, holding its ports: a daemon thread ends the process after `seconds`
    instead. A normal exit is not delayed by it."""
    import threading

    def end() -> None:
        time.sleep(seconds)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)

    threading.Thread(target=end, name="kcockpit-exit-guard", daemon=True).start()
