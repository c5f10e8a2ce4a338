"""Command-line options shared by kcockpit's commands, and the typed configurations they
become: argparse stays here, in the command layer; the wire, sources and application
modules take the dataclasses only (HubbleConnection, PrometheusConfig, PolicyOptions).

`add_connection_arguments` spells the `hubble` CLI's connection flags (`--server`,
`--tls`, `--tls-ca-cert-files`, `--tls-client-cert-file`, `--tls-client-key-file`,
`--tls-server-name`, `--tls-allow-insecure`, `--timeout`); `add_prometheus_arguments` the
Prometheus ones; `add_kubernetes_arguments` kubectl's `--kubeconfig`/`--context` plus
offline manifests. Each has a `..._from_args` that builds and checks the configuration.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from kcockpit.wire.connection import (
    DEFAULT_DIAL_TIMEOUT,
    DEFAULT_SERVER,
    SERVER_ENV,
    STREAM_TRANSPORTS,
    TLS_PREFIX,
    HubbleConnection,
)
from kcockpit.wire.prometheus import (
    DEFAULT_TIMEOUT_S,
    PrometheusClient,
    PrometheusConfig,
    PrometheusConfigError,
    check_timeout,
    parse_header,
)

if TYPE_CHECKING:  # loaded when policy data is asked for: the policy model is not needed before
    from kcockpit.application.integrations import PolicyFeed
    from kcockpit.sources.kubernetes import PolicyOptions

# ---------------------------------------------------------------------------- Hubble


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the hubble CLI's connection flags to an argparse parser."""
    group = parser.add_argument_group("Hubble server connection")
    group.add_argument(
        "--server",
        default=None,
        metavar="ADDRESS",
        help=f"Hubble server or Relay address (default: ${SERVER_ENV} or {DEFAULT_SERVER}); "
        f"a {TLS_PREFIX} prefix enables TLS",
    )
    group.add_argument(
        "--tls", action="store_true", help="use TLS (implied by a tls:// address and the other --tls-* file options)"
    )
    group.add_argument(
        "--tls-ca-cert-files",
        action="append",
        default=[],
        metavar="FILE",
        help="PEM CA certificates to trust (repeat or comma-separate for several)",
    )
    group.add_argument("--tls-client-cert-file", metavar="FILE", help="PEM client certificate for mTLS")
    group.add_argument("--tls-client-key-file", metavar="FILE", help="PEM client key for mTLS")
    group.add_argument("--tls-server-name", metavar="NAME", help="server name to verify the certificate against")
    group.add_argument(
        "--tls-allow-insecure",
        action="store_true",
        help="accept whatever certificate the server presents (no verification)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_DIAL_TIMEOUT,
        metavar="SECONDS",
        help=f"connection timeout in seconds (default {DEFAULT_DIAL_TIMEOUT:g})",
    )
    group.add_argument(
        "--stream-transport",
        choices=STREAM_TRANSPORTS,
        default="h2",
        help="how the flow stream is read: kcockpit's own HTTP/2 reader (h2, default, ~5x faster) "
        "or grpc's channel (grpcio, a fallback)",
    )


def connection_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> HubbleConnection:
    """Build and validate a HubbleConnection from parsed arguments; raises HubbleError."""
    env = os.environ if environ is None else environ
    server = args.server or env.get(SERVER_ENV) or DEFAULT_SERVER
    ca_files = tuple(part for value in args.tls_ca_cert_files for part in value.split(",") if part)
    connection = HubbleConnection(
        server=server,
        tls=args.tls,
        tls_ca_cert_files=ca_files,
        tls_client_cert_file=args.tls_client_cert_file,
        tls_client_key_file=args.tls_client_key_file,
        tls_server_name=args.tls_server_name,
        tls_allow_insecure=args.tls_allow_insecure,
        timeout=args.timeout,
        stream_transport=getattr(args, "stream_transport", "h2"),
    )
    connection.validate()
    return connection


# ---------------------------------------------------------------------------- Prometheus


def add_prometheus_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Prometheus (golden signals)")
    group.add_argument(
        "--prometheus",
        metavar="URL",
        default=os.environ.get("PROMETHEUS_URL"),
        help="Prometheus-compatible API base URL, including any path prefix (env PROMETHEUS_URL)",
    )
    group.add_argument(
        "--prometheus-token",
        metavar="TOKEN",
        default=os.environ.get("PROMETHEUS_TOKEN"),
        help="bearer token (env PROMETHEUS_TOKEN)",
    )
    group.add_argument("--prometheus-token-file", metavar="FILE", help="read the bearer token from FILE")
    group.add_argument("--prometheus-user", metavar="USER", help="basic auth user name")
    group.add_argument(
        "--prometheus-password",
        metavar="PASSWORD",
        default=os.environ.get("PROMETHEUS_PASSWORD"),
        help="basic auth password (env PROMETHEUS_PASSWORD)",
    )
    group.add_argument("--prometheus-ca-file", metavar="FILE", help="CA bundle to verify the server's certificate")
    group.add_argument(
        "--prometheus-insecure-skip-verify",
        action="store_true",
        help="do not verify the server's TLS certificate",
    )
    group.add_argument(
        "--prometheus-header",
        metavar="'NAME: VALUE'",
        action="append",
        default=[],
        help="extra HTTP header, repeatable (e.g. 'X-Scope-OrgID: tenant1' for Mimir)",
    )
    group.add_argument(
        "--prometheus-timeout",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"per-request timeout (default {DEFAULT_TIMEOUT_S:g})",
    )


def prometheus_config_from_args(args: argparse.Namespace) -> PrometheusConfig | None:
    """The configuration the options describe, or None when no URL was given.

    Raises PrometheusConfigError (one line) for unusable options, also without a URL: a
    mistyped option should not wait to be noticed until Prometheus is configured."""
    headers = dict(parse_header(h) for h in args.prometheus_header)
    check_timeout(args.prometheus_timeout)
    if not args.prometheus:
        return None
    token = args.prometheus_token
    if args.prometheus_token_file:
        try:
            with open(args.prometheus_token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as error:
            raise PrometheusConfigError(
                f"cannot read Prometheus token file {args.prometheus_token_file!r}: {error.strerror}"
            ) from None
    return PrometheusConfig(
        url=args.prometheus,
        bearer_token=token or None,
        username=args.prometheus_user,
        password=args.prometheus_password,
        ca_file=args.prometheus_ca_file,
        insecure_skip_verify=args.prometheus_insecure_skip_verify,
        headers=headers,
        timeout_s=args.prometheus_timeout,
    )


def prometheus_from_args(args: argparse.Namespace) -> PrometheusClient | None:
    """A client for the options, or None when no URL was given (flow-derived signals only)."""
    config = prometheus_config_from_args(args)
    return PrometheusClient(config) if config else None


# ---------------------------------------------------------------------------- Kubernetes (policy data)


def add_kubernetes_arguments(parser: argparse.ArgumentParser) -> None:
    """The options kubectl users expect, plus offline manifests."""
    group = parser.add_argument_group("Kubernetes (policy data)")
    group.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
    group.add_argument("--context", metavar="NAME", help="kubeconfig context to use (default: the current context)")
    group.add_argument("--policies", metavar="DIR", help="read policies, pods and namespaces from YAML/JSON manifests instead of a cluster")
    group.add_argument("--no-kubernetes", action="store_true", help="do not read policy data from any cluster")


def policy_options_from_args(args: argparse.Namespace) -> PolicyOptions:
    """What the options of `add_kubernetes_arguments` ask for."""
    from kcockpit.sources.kubernetes import PolicyOptions

    return PolicyOptions(kubeconfig=args.kubeconfig, context=args.context, policies=args.policies, disabled=args.no_kubernetes)


def policy_feed_from_args(args: argparse.Namespace) -> PolicyFeed:
    """The policy data the options of `add_kubernetes_arguments` ask for (not started)."""
    from kcockpit.application.integrations import policy_feed

    return policy_feed(policy_options_from_args(args))
