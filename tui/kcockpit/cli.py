"""The `kcockpit` command: the cockpit itself, plus subcommands for scripts and demos.

Each subcommand lives in the module of the layer it belongs to and exposes
`add_arguments(parser)` and `run(args) -> int`; this module only dispatches, so that
`kcockpit --help` stays fast and a broken optional part cannot stop the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kcockpit import __version__

# name -> (module, one-line help). Modules are imported only when their command runs.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo-server": ("kcockpit.sim.cli", "run the simulated cluster: a Hubble Observer gRPC server (and metrics, Kubernetes API)"),
    "policy": ("kcockpit.sources.policy_cli", "explain a policy verdict or advise a least-privilege policy, without the TUI"),
    "report": ("kcockpit.report_cli", "the services, DNS and policy tables of the tabs as text or JSON, without the TUI"),
    "serve": ("kcockpit.ui.serve", "the cockpit in a browser (each tab its own cockpit), on 127.0.0.1 by default"),
}
APP_MODULE = "kcockpit.ui.cli"


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _fail(message: str) -> int:
    print(f"kcockpit: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:
        # Answer without importing the app: it must work even when the UI cannot load.
        print(f"kcockpit {__version__}")
        return 0
    if argv and argv[0] in SUBCOMMANDS:
        name = argv[0]
        module_name, help_text = SUBCOMMANDS[name]
        module = importlib.import_module(module_name)
        parser = argparse.ArgumentParser(prog=f"kcockpit {name}", description=help_text)
        module.add_arguments(parser)
        args = parser.parse_args(argv[1:])
        args.raw_argv = argv[1:]  # as typed: `serve` hands the cockpit's options on
        runner = module.run
    else:
        module = importlib.import_module(APP_MODULE)
        parser = argparse.ArgumentParser(
            prog="kcockpit",
            description="A terminal cockpit for troubleshooting Kubernetes networking on Cilium.",
            epilog="subcommands:\n"
            + "\n".join(f"  kcockpit {n:<12} {h}" for n, (_, h) in SUBCOMMANDS.items())
            + "\n\nrun 'kcockpit SUBCOMMAND --help' for their options.",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("--version", action="version", version=f"kcockpit {__version__}")
        module.add_arguments(parser)
        args = parser.parse_args(argv)
        runner = module.run
    try:
        return runner(args)
    except CliError as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        return 130
