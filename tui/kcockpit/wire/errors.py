"""Turn grpc failures into one-line HubbleErrors that say what happened and where."""

from __future__ import annotations

import re

import grpc

from kcockpit.wire.connection import HubbleError

# Fragments of grpc-core status details, most specific first, and what they mean to a user.
_UNAVAILABLE_CAUSES = (
    (re.compile(r"DNS resolution failed|errors resolving|Domain name not found|name resolution|"
                r"Name or service not known|not resolve", re.I),
     "cannot resolve the host name"),
    (re.compile(r"Connection refused", re.I), "connection refused (is the server or port-forward running?)"),
    (re.compile(r"unix:.*No such file or directory", re.I), "no such socket file"),
    (re.compile(r"handshake|SSL|TLS|certificate|WRONG_VERSION_NUMBER", re.I), "TLS handshake failed"),
    (re.compile(r"No route to host|Network is unreachable", re.I), "network unreachable"),
    (re.compile(r"Socket closed|Connection reset|GOAWAY|Cancelling all calls|Broken pipe|"
                r"stream removed|RST_STREAM|Server shutdown", re.I),
     "connection lost (server restarted or network fault)"),
    (re.compile(r"timed out|Timeout occurred|Deadline", re.I), "connection timed out"),
)


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_rpc_error(error: grpc.RpcError, address: str, method: str, timeout: float | None = None) -> HubbleError:
    """A HubbleError for a failed call of `method` on `address`: an Observer method name
    ("GetFlows") or a full "package.Service/Method"."""
    code = error.code() if hasattr(error, "code") else None
    details = (error.details() if hasattr(error, "details") else None) or ""
    where = f"Hubble server {address}"
    if code == grpc.StatusCode.UNAVAILABLE:
        cause = next((meaning for pattern, meaning in _UNAVAILABLE_CAUSES if pattern.search(details)), "")
        if cause == "TLS handshake failed":
            message = f"{where}: TLS handshake failed ({_one_line(_tls_hint(details), 120)})"
        elif cause:
            message = f"{where}: {cause}"
        else:
            message = f"{where} is unavailable: {_one_line(details)}"
    elif code == grpc.StatusCode.UNIMPLEMENTED:
        path = method if "/" in method else f"observer.Observer/{method}"
        message = f"{where} does not implement {path} (is it a Hubble server or Relay?)"
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        after = f" within {timeout:g}s" if timeout else ""
        message = f"{where}: no answer to {method}{after} (deadline exceeded)"
    elif code == grpc.StatusCode.INVALID_ARGUMENT:
        message = f"{where} rejected the {method} request: {_one_line(details)}"
    elif code == grpc.StatusCode.CANCELLED:
        message = f"{where}: {method} cancelled"
    elif code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        message = f"{where} refused access to {method}: {_one_line(details)}"
    else:
        name = code.name if code is not None else "error"
        message = f"{where}: {method} failed with {name}: {_one_line(details)}"
    return HubbleError(message, address=address, code=code)


def _tls_hint(details: str) -> str:
    if "WRONG_VERSION_NUMBER" in details:
        return "the server does not speak TLS on this port?"
    for hint in ("CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER", "certificate verify failed",
                 "Peer name", "alert", "handshake"):
        index = details.find(hint)
        if index >= 0:
            end = details.find(".", index)
            return details[index: end if end > index else None]
    return details
