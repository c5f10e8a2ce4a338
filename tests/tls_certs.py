"""Certificates for the TLS tests, made with the openssl CLI: a CA, a server certificate for
relay.test signed by it, a client certificate, and a self-signed one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _key(name: str, cwd: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key", cwd=cwd)


def _signed(name: str, subject: str, ext: str, cwd: Path) -> None:
    _key(name, cwd)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=cwd)
    (cwd / f"{name}.ext").write_text(ext + "\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=cwd)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """A CA, a server certificate for relay.test signed by it, a client certificate, and a
    self-signed server certificate (for --tls-allow-insecure)."""
    d = tmp_path_factory.mktemp("certs")
    _key("ca", d)
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=kcockpit test CA", "-days", "2",
             "-out", "ca.pem", cwd=d)
    _signed("server", "/CN=relay.test", "subjectAltName=DNS:relay.test", d)
    _signed("client", "/CN=kcockpit", "extendedKeyUsage=clientAuth", d)
    _key("selfsigned", d)
    _openssl("req", "-x509", "-new", "-key", "selfsigned.key", "-subj", "/CN=self.test", "-days", "2",
             "-addext", "subjectAltName=DNS:self.test", "-out", "selfsigned.pem", cwd=d)
    return d


def server_credentials(certs: Path, name: str = "server", *, require_client_auth: bool = False):
    pair = ((certs / f"{name}.key").read_bytes(), (certs / f"{name}.pem").read_bytes())
    return grpc.ssl_server_credentials(
        [pair],
        root_certificates=(certs / "ca.pem").read_bytes() if require_client_auth else None,
        require_client_auth=require_client_auth,
    )
