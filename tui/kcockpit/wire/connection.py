"""How to reach a Hubble server: address and TLS options, spelled like the `hubble` CLI.

A `HubbleConnection` is validated by `validate()` (unreadable certificate files fail
there, naming the file). The command-line options that build one (`--server`, `--tls*`,
`--timeout`) live in `kcockpit.cli_options`: the address defaults to `$HUBBLE_SERVER`,
else `localhost:4245`; a `tls://` prefix turns TLS on, as in the CLI.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
from dataclasses import dataclass
from functools import cached_property

import grpc
import grpc.aio
import grpc.experimental

DEFAULT_SERVER = "localhost:4245"
SERVER_ENV = "HUBBLE_SERVER"
TLS_PREFIX = "tls://"
DEFAULT_DIAL_TIMEOUT = 5.0  # seconds, the CLI's --timeout default
DEFAULT_REQUEST_TIMEOUT = 12.0  # seconds, the CLI's deadline for unary requests
STREAM_TRANSPORTS = ("h2", "grpcio")

# Flows can be large (many labels, HTTP headers); Relay allows big messages too.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class HubbleError(Exception):
    """Anything that went wrong talking to a Hubble server; str() is one line naming the address."""

    def __init__(self, message: str, *, address: str = "", code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.address = address
        self.code = code


@dataclass(frozen=True)
class HubbleConnection:
    """Where the Hubble server is and how to talk to it. Immutable; build channels from it."""

    server: str = DEFAULT_SERVER
    tls: bool = False
    tls_ca_cert_files: tuple[str, ...] = ()
    tls_client_cert_file: str | None = None
    tls_client_key_file: str | None = None
    tls_server_name: str | None = None
    tls_allow_insecure: bool = False
    timeout: float = DEFAULT_DIAL_TIMEOUT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    # How the flow stream is read: "h2" (kcockpit's own HTTP/2 reader, wire.grpc_stream) or
    # "grpcio" (grpc's channel, ~5x the per-message cost; kept as a fallback).
    stream_transport: str = "h2"

    @property
    def target(self) -> str:
        """The gRPC target: the address without the `tls://` scheme."""
        return self.server.removeprefix(TLS_PREFIX)

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.server.startswith(TLS_PREFIX) or self._tls_options_given()

    def _tls_options_given(self) -> bool:
        return bool(self.tls_ca_cert_files or self.tls_client_cert_file or self.tls_allow_insecure)

    def validate(self) -> None:
        """Check the address and read every certificate file now, so mistakes surface before connecting."""
        problem = address_problem(self.target)
        if problem:
            raise HubbleError(f"server address {self.server!r} {problem}", address=self.server)
        if bool(self.tls_client_cert_file) != bool(self.tls_client_key_file):
            raise HubbleError(
                "mTLS needs both --tls-client-cert-file and --tls-client-key-file", address=self.server
            )
        if not 0 < self.timeout < float("inf"):  # also refuses nan
            raise HubbleError(f"--timeout must be positive (seconds), got {self.timeout}", address=self.server)
        if self.stream_transport not in STREAM_TRANSPORTS:
            raise HubbleError(
                f"unknown stream transport {self.stream_transport!r}: use one of {', '.join(STREAM_TRANSPORTS)}",
                address=self.server,
            )
        self._pem_files  # noqa: B018 - reads (and caches) the files, raising on a bad one

    @cached_property
    def _pem_files(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        """(CA roots, client certificate, client key) as read from their files, once."""
        roots = b"".join(_read_pem(path, "CA certificate") for path in self.tls_ca_cert_files)
        cert = _read_pem(self.tls_client_cert_file, "client certificate") if self.tls_client_cert_file else None
        key = _read_pem(self.tls_client_key_file, "client key") if self.tls_client_key_file else None
        return roots or None, cert, key

    def ca_roots(self) -> bytes | None:
        """The CA certificates of --tls-ca-cert-files (PEM), or None for the system's."""
        return self._pem_files[0]

    def channel_options(self) -> list[tuple[str, object]]:
        options: list[tuple[str, object]] = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            # Reconnect quickly after a server restart; our own backoff paces retries.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        return options

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials, or None for plaintext. May connect once when --tls-allow-insecure is set."""
        if not self.uses_tls:
            return None
        roots, cert, key = self._pem_files
        if self.tls_allow_insecure:
            roots = self.presented_certificate()
        return grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=cert)

    def presented_certificate(self) -> bytes:
        """The PEM certificate the server presents, fetched once without verification (blocking).
        grpc has no "skip verification" switch, so --tls-allow-insecure trusts exactly this one."""
        return self._fetched_certificate

    @cached_property
    def _fetched_certificate(self) -> bytes:
        host, port = split_host_port(self.target)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection((host, port), timeout=self.timeout) as sock:
                with context.wrap_socket(sock, server_hostname=host) as tls_sock:
                    der = tls_sock.getpeercert(binary_form=True)
        except OSError as error:
            raise HubbleError(
                f"cannot fetch the TLS certificate of {self.server}: {error}", address=self.server
            ) from None
        return ssl.DER_cert_to_PEM_cert(der).encode()

    def _secure_options(self) -> list[tuple[str, object]]:
        options = self.channel_options()
        name = self.tls_server_name
        if self.tls_allow_insecure and not name:
            # Any name will do when nothing is verified: take the one the certificate holds.
            name = _certificate_name(self.presented_certificate())
        if name:
            options.append(("grpc.ssl_target_name_override", name))
        return options

    def sync_channel(self, *, single_threaded_stream: bool = False) -> grpc.Channel:
        """A plain grpc channel. single_threaded_stream=True enables the fast unary-stream reader:
        the stream must then be consumed from one thread only."""
        credentials = self.credentials()
        options = self._secure_options() if credentials else self.channel_options()
        if single_threaded_stream:
            options.append((grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1))
        if credentials is None:
            return grpc.insecure_channel(self.target, options=options)
        return grpc.secure_channel(self.target, credentials, options=options)

    def aio_channel(self) -> grpc.aio.Channel:
        """An asyncio channel (make it on the loop's thread). With --tls-allow-insecure, first run
        the blocking `presented_certificate()` through asyncio.to_thread."""
        credentials = self.credentials()
        if credentials is None:
            return grpc.aio.insecure_channel(self.target, options=self.channel_options())
        return grpc.aio.secure_channel(self.target, credentials, options=self._secure_options())


def address_problem(target: str) -> str:
    """What is wrong with a gRPC target for a Hubble server ("" when nothing is):
    HOST:PORT, [IPv6]:PORT or unix://PATH (after any tls:// prefix was removed)."""
    usage = "use HOST:PORT (e.g. localhost:4245), tls://HOST:PORT or unix://PATH"
    if target.startswith(("unix:", "unix-abstract:")):
        return "" if target.partition(":")[2].strip("/") else f"names no socket path: {usage}"
    if "://" in target:
        return f"has an unsupported scheme {target.split('://')[0]!r}: {usage}"
    host, sep, port = target.rpartition(":")
    if not sep or host.endswith(":") or (host.count(":") and not host.startswith("[")):
        return f"has no port: {usage}"
    if not host.strip("[]"):
        return f"has no host: {usage}"
    if not _is_port_number(port) or not 0 < int(port) < 65536:
        return f"has no valid port ({port!r}): {usage}"
    return ""


def _read_pem(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise HubbleError(f"cannot read TLS {what} file {path!r}: {error.strerror or error}") from None
    if b"-----BEGIN" not in data:
        raise HubbleError(f"TLS {what} file {path!r} is not PEM (no '-----BEGIN' line)")
    return data


def _is_port_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts digits gRPC and int() cannot use ("²", "٤")."""
    return text.isascii() and text.isdigit()


def split_host_port(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not _is_port_number(port):
        raise HubbleError(f"server address {target!r} is not HOST:PORT", address=target)
    return host.strip("[]") or "localhost", int(port)


def _certificate_name(pem: bytes) -> str:
    """The first DNS name (else the common name) in a PEM certificate, or ""."""
    with tempfile.NamedTemporaryFile(suffix=".pem") as handle:
        handle.write(pem)
        handle.flush()
        try:
            decoded = ssl._ssl._test_decode_cert(handle.name)  # the stdlib's only certificate parser
        except (AttributeError, ssl.SSLError):
            return ""
    for kind, value in decoded.get("subjectAltName", ()):
        if kind == "DNS":
            return value
    for rdn in decoded.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return ""
