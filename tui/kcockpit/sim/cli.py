"""`kcockpit demo-server`: the simulated cluster as a standalone Hubble Relay look-alike.

Any Hubble client works against it unchanged, the real `hubble` CLI included:
`hubble observe --server 127.0.0.1:4245 --last 20`, `hubble status`, `hubble list nodes`.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys

from kcockpit.sim.embedded import DEFAULT_BACKFILL_S, DemoCluster
from kcockpit.sim.scenario import DEFAULT_DURATIONS_S
from kcockpit.sim.server import DEFAULT_MAX_FLOWS
from kcockpit.sim.traffic import DEFAULT_RATE, rate_problem
from kcockpit.sim.world import PHASES

MAX_SECONDS = 86_400.0  # a phase longer than a day is a typo (and inf or nan would crash the timers)
MAX_BACKFILL_S = 3_600.0  # history is generated before the server starts: an hour already takes a while


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", default="127.0.0.1:4245", metavar="HOST:PORT", help="Observer API address (default: 127.0.0.1:4245)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated cluster: same seed, same pods and flows (default: 1)")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, metavar="FLOWS_PER_S", help=f"flows per second in the healthy phase (default: {DEFAULT_RATE:g})")
    parser.add_argument(
        "--scenario",
        choices=("auto", *PHASES),
        default="auto",
        help="auto: healthy -> broken (frontend DNS denied by policy) -> fixed -> dns-overload (CoreDNS leaves lookups unanswered), on a timer; or stay in one phase (default: auto)",
    )
    for phase in PHASES:
        parser.add_argument(
            f"--{phase}-s",
            type=float,
            default=DEFAULT_DURATIONS_S[phase],
            metavar="SECONDS",
            help=f"length of the {phase} phase in auto mode (default: {DEFAULT_DURATIONS_S[phase]:g})",
        )
    parser.add_argument("--once", action="store_true", help="auto mode: play the story once and stay in its last phase (default: loop)")
    parser.add_argument("--max-flows", type=int, default=DEFAULT_MAX_FLOWS, help=f"ring buffer size per node (default: {DEFAULT_MAX_FLOWS})")
    parser.add_argument("--backfill", type=float, default=DEFAULT_BACKFILL_S, metavar="SECONDS", help=f"seconds of history present at start (default: {DEFAULT_BACKFILL_S:g})")
    parser.add_argument("--metrics", metavar="HOST:PORT", help="also serve Hubble and CoreDNS metrics at http://HOST:PORT/metrics")
    parser.add_argument(
        "--kube-api",
        metavar="HOST:PORT",
        help="also serve the simulated Kubernetes API (pods, services, NetworkPolicies of the current phase, ...)",
    )
    parser.add_argument("--kubeconfig-out", metavar="PATH", help="with --kube-api: write a kubeconfig for it to PATH")


def _fail(message: str) -> Exception:
    from kcockpit.cli import CliError

    return CliError(message)


def _host_port(value: str, flag: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:  # isdigit alone takes "²"
        raise _fail(f"{flag} {value!r} is not HOST:PORT (e.g. 127.0.0.1:4245)")
    return host, int(port)


def _no_op(_number: int, _frame: object) -> None:
    """The Python-level handler: nothing, above all no lock. Handlers run in the main thread
    between any two bytecodes and can nest (a burst of signals, `timeout` forwarding one more),
    so one taking a lock, as threading.Event.set does, can interrupt itself inside that lock
    and wait for it forever."""


class StopSignals:
    """SIGINT and SIGTERM caught for a clean stop: `with StopSignals() as signals: ... signals.wait()`.

    Entering installs the handlers (a signal from then on is never lost: the C-level handler
    writes its number to a wakeup pipe that `wait` reads); leaving ignores SIGINT (the process
    is ending: a second Ctrl+C must not raise inside the shutdown) and restores SIGTERM."""

    WANTED = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> StopSignals:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)  # set_wakeup_fd requires it
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)  # before the handlers
        self._previous: dict[int, object] = {}
        try:
            for number in self.WANTED:
                self._previous[number] = signal.signal(number, _no_op)
        except BaseException:
            self.__exit__()
            raise
        return self

    def wait(self) -> int:
        """Block until SIGINT or SIGTERM arrives (or arrived since entering); returns its number."""
        while True:
            select.select([self._read_fd], [], [])  # retried after a signal's Python handler ran (PEP 475)
            for number in os.read(self._read_fd, 512):
                if number in self.WANTED:
                    return number

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if signal.SIGTERM in self._previous:
            signal.signal(signal.SIGTERM, self._previous[signal.SIGTERM])
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self._read_fd)
        os.close(self._write_fd)


def run(args: argparse.Namespace) -> int:
    _host_port(args.listen, "--listen")
    if problem := rate_problem(args.rate):
        raise _fail(f"--rate {problem}")
    if args.max_flows < 1:
        raise _fail(f"--max-flows must be at least 1, got {args.max_flows}")
    durations = {phase: getattr(args, f"{phase.replace('-', '_')}_s") for phase in PHASES}
    for phase, seconds in durations.items():
        if not 0 < seconds <= MAX_SECONDS:
            raise _fail(f"--{phase}-s must be above 0 and at most {MAX_SECONDS:g} seconds, got {seconds:g}")
    if not 0 <= args.backfill <= MAX_BACKFILL_S:
        raise _fail(f"--backfill must be 0 to {MAX_BACKFILL_S:g} seconds, got {args.backfill:g}")
    if args.kubeconfig_out and not args.kube_api:
        raise _fail("--kubeconfig-out needs --kube-api HOST:PORT")
    metrics_at = _host_port(args.metrics, "--metrics") if args.metrics else None
    kube_api_at = _host_port(args.kube_api, "--kube-api") if args.kube_api else None
    # The pump thread is CPU-bound at high rates; a short GIL switch interval keeps the
    # streaming threads from waiting the default 5 ms for the GIL after every message sent.
    sys.setswitchinterval(0.0005)
    cluster = DemoCluster(
        seed=args.seed,
        rate=args.rate,
        scenario=args.scenario,
        durations_s=durations,
        loop=not args.once,
        backfill_s=args.backfill,
        max_flows=args.max_flows,
    )
    try:
        if metrics_at:
            # Before start(): the exporter must see the backfilled history start() generates,
            # or the metrics would disagree with the flows the server holds.
            try:
                cluster.serve_metrics(*metrics_at)
            except OSError as error:
                raise _fail(f"cannot serve metrics on {args.metrics}: {error.strerror or error}") from None
        try:
            address = cluster.start(args.listen)
        except OSError as error:
            raise _fail(f"{error}; is another demo-server or Hubble Relay running? Pick a free port with --listen") from None
        if kube_api_at:
            try:
                cluster.serve_kube_api(*kube_api_at)
            except OSError as error:
                raise _fail(f"cannot serve the Kubernetes API on {args.kube_api}: {error.strerror or error}") from None
            if args.kubeconfig_out:
                from kcockpit.sim.kube_api import write_kubeconfig

                try:
                    write_kubeconfig(args.kubeconfig_out, cluster.kube_api.url)
                except OSError as error:
                    raise _fail(f"cannot write the kubeconfig {args.kubeconfig_out}: {error.strerror or error}") from None
    except Exception:
        cluster.stop()
        raise
    metrics, kube_api = cluster.metrics, cluster.kube_api

    story = (
        " -> ".join(f"{phase} {durations[phase]:g}s" for phase in PHASES) + ("" if args.once else ", looping")
        if args.scenario == "auto"
        else f"{args.scenario} (fixed)"
    )
    try:
        with StopSignals() as stop_signals:  # caught before the banner says Ctrl+C stops
            print(f"kcockpit demo-server: Hubble Observer API on {address} (seed {args.seed}, {args.rate:g} flows/s)", flush=True)
            print(f"  scenario: {story}", flush=True)
            if metrics is not None:
                print(f"  metrics:  {metrics.url}", flush=True)
            if kube_api is not None:
                kubeconfig = f" (kubeconfig: {args.kubeconfig_out})" if args.kubeconfig_out else ""
                print(f"  kube-api: {kube_api.url}{kubeconfig}", flush=True)
            print(f"  try: hubble observe --server {address} --last 20   (Ctrl+C stops)", flush=True)
            cluster.scenario.add_listener(lambda phase, _at: print(f"  phase -> {phase}", flush=True))
            stop_signals.wait()  # phase changes are announced from the server's pump thread
    finally:  # SIGINT is ignored from here on
        cluster.stop()
        print("kcockpit demo-server: stopped", file=sys.stderr, flush=True)
    return 0

