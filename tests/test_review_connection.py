"""Review tests for server addresses: bad input is one clear error, never a traceback."""

from __future__ import annotations

import pytest

from kcockpit.wire.connection import HubbleConnection, HubbleError


@pytest.mark.parametrize("port", ["²", "٤٢٤٥", "４２４５"])
def test_a_port_of_non_ascii_digits_is_refused_with_the_usual_message(port) -> None:
    # str.isdigit() accepts these; int() then fails on some and gRPC cannot use any of them.
    server = f"relay:{port}"
    with pytest.raises(HubbleError) as caught:
        HubbleConnection(server).validate()
    assert str(caught.value) == (
        f"server address {server!r} has no valid port ({port!r}): "
        "use HOST:PORT (e.g. localhost:4245), tls://HOST:PORT or unix://PATH"
    )


def test_allow_insecure_with_a_non_ascii_port_is_a_hubble_error_not_a_traceback() -> None:
    connection = HubbleConnection("tls://relay:²", tls_allow_insecure=True)
    with pytest.raises(HubbleError, match="is not HOST:PORT"):
        connection.presented_certificate()
