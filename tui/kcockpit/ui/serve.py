"""`kcockpit serve`: the same cockpit in a browser, through textual-serve.

Every browser tab that opens the page gets a cockpit process of its own, started with the
options given here (`kcockpit serve --demo`, `kcockpit serve --server relay:4245`, ...).
It listens on 127.0.0.1 by default: the cockpit has no login of its own, so reach it from
another machine through an SSH tunnel (`ssh -L 8000:127.0.0.1:8000 bastion`) rather than
by listening on a public address; `--host` does that anyway, with a warning.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
_SERVE_FLAGS = ("--host", "--port")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kcockpit.ui import cli

    parser.description = (
        "Serve the cockpit to a browser (textual-serve). Each browser tab runs its own cockpit with "
        "the cockpit options given here. Bound to 127.0.0.1: use an SSH tunnel to reach it."
    )
    serve = parser.add_argument_group("web server")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"address to listen on (default {DEFAULT_HOST}; the cockpit has no login: prefer an SSH tunnel)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    cli.add_arguments(parser)


def cockpit_arguments(raw: list[str]) -> list[str]:
    """The command line given to `serve` without its own flags: what each cockpit gets."""
    out, skip = [], False
    for word in raw:
        if skip:
            skip = False
            continue
        if word in _SERVE_FLAGS:
            skip = True
            continue
        if word.split("=", 1)[0] in _SERVE_FLAGS:
            continue
        out.append(word)
    return out


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    from kcockpit.cli import CliError

    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: expected a port number from 1 to 65535")
    if args.input_file == "-":
        raise CliError("--input-file -: a served cockpit cannot read stdin; pass a file")
    try:
        from textual_serve.server import Server
    except ImportError:
        raise CliError("kcockpit serve needs textual-serve: pip install textual-serve") from None
    command = shlex.join([sys.executable, "-m", "kcockpit", *cockpit_arguments(getattr(args, "raw_argv", []))])
    if not is_loopback(args.host):
        print(f"kcockpit serve: warning: listening on {args.host}: anyone who can reach it gets the cockpit "
              "(there is no login); an SSH tunnel to 127.0.0.1 is safer", file=sys.stderr)
    Server(command, host=args.host, port=args.port, title="kcockpit").serve()
    return 0
