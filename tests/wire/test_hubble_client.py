"""HubbleClient and connection options over real loopback gRPC, plaintext, TLS and mTLS
(certificates generated here with the openssl CLI)."""

from __future__ import annotations

import argparse
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc
from observer_fixture import FixtureServer, ObserverServicer, make_flow_response
from tls_certs import certs, server_credentials  # noqa: F401 - certs is a fixture

from kcockpit.cli_options import add_connection_arguments, connection_from_args
from kcockpit.wire.connection import (
    DEFAULT_SERVER,
    HubbleConnection,
    HubbleError,
)
from kcockpit.wire.errors import describe_rpc_error
from kcockpit.wire.hubble_client import HubbleClient, flows_request
from kcockpit.wire.hubble_pb import observer_grpc


def parse(*argv: str, environ: dict[str, str] | None = None) -> HubbleConnection:
    parser = argparse.ArgumentParser()
    add_connection_arguments(parser)
    return connection_from_args(parser.parse_args(list(argv)), environ=environ or {})


@pytest.fixture
def plain_server():
    server = FixtureServer().start()
    server.servicer.publish(*(make_flow_response(i) for i in range(30)))
    yield server
    server.stop()


# ----- plaintext calls ------------------------------------------------------------------------


async def test_status_nodes_namespaces_health_and_flows(plain_server) -> None:
    async with HubbleClient(HubbleConnection(plain_server.address)) as client:
        status = await client.server_status()
        assert (status.num_flows, status.max_flows, status.version) == (30, 4095, "fixture")
        assert [node.name for node in await client.get_nodes()] == ["node-a"]
        assert [ns.namespace for ns in await client.get_namespaces()] == ["default"]
        assert await client.health() == "SERVING"
        flows = [response.flow.uuid async for response in client.get_flows(number=3)]
        assert flows == ["f-27", "f-28", "f-29"]


async def test_breaking_out_of_a_follow_stream_cancels_it(plain_server) -> None:
    async with HubbleClient(HubbleConnection(plain_server.address)) as client:
        seen = []
        async for response in client.get_flows(number=2, follow=True):
            seen.append(response.flow.uuid)
            if len(seen) == 2:
                break
        assert seen == ["f-28", "f-29"]
        # The channel is still usable after the cancelled stream.
        assert (await client.server_status()).num_flows == 30


async def test_invalid_argument_carries_the_server_message(plain_server) -> None:
    async with HubbleClient(HubbleConnection(plain_server.address)) as client:
        with pytest.raises(HubbleError) as caught:
            async for _ in client.get_flows(first=True, follow=True):
                pass
    assert str(caught.value) == (
        f"Hubble server {plain_server.address} rejected the GetFlows request: first cannot be specified with follow"
    )
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT


async def test_refused_connection_is_one_line_naming_the_address() -> None:
    async with HubbleClient(HubbleConnection("127.0.0.1:1")) as client:
        with pytest.raises(HubbleError) as caught:
            await client.server_status()
    assert str(caught.value) == "Hubble server 127.0.0.1:1: connection refused (is the server or port-forward running?)"
    assert caught.value.address == "127.0.0.1:1"


async def test_unimplemented_service_says_it_is_not_hubble() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        async with HubbleClient(HubbleConnection(f"127.0.0.1:{port}")) as client:
            with pytest.raises(HubbleError, match=r"does not implement observer.Observer/GetFlows \(is it a Hubble"):
                async for _ in client.get_flows(number=1):
                    pass
            with pytest.raises(HubbleError, match="does not implement observer.Observer/ServerStatus"):
                await client.server_status()
    finally:
        server.stop(None)


async def test_a_server_without_the_health_service(plain_server_without_health) -> None:
    async with HubbleClient(HubbleConnection(plain_server_without_health)) as client:
        with pytest.raises(HubbleError) as caught:
            await client.health()
    assert str(caught.value) == (
        f"Hubble server {plain_server_without_health} does not implement grpc.health.v1.Health/Check "
        "(is it a Hubble server or Relay?)"
    )


@pytest.fixture
def plain_server_without_health():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    observer_grpc.add_ObserverServicer_to_server(ObserverServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


class _SlowServicer(ObserverServicer):
    def ServerStatus(self, request, context):
        time.sleep(0.5)
        return super().ServerStatus(request, context)


async def test_deadline_names_the_call_and_the_timeout() -> None:
    server = FixtureServer(_SlowServicer()).start()
    try:
        connection = HubbleConnection(server.address, request_timeout=0.1)
        async with HubbleClient(connection) as client:
            with pytest.raises(HubbleError) as caught:
                await client.server_status()
        assert str(caught.value) == f"Hubble server {server.address}: no answer to ServerStatus within 0.1s (deadline exceeded)"
    finally:
        server.stop()


async def test_a_server_that_never_answers_times_out_like_the_cli() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never speaks HTTP/2
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        async with HubbleClient(HubbleConnection(address, timeout=0.2)) as client:
            with pytest.raises(HubbleError) as caught:
                await client.server_status()
            with pytest.raises(HubbleError, match="no connection within 0.2s"):
                async for _ in client.get_flows(follow=True):
                    pass
    assert str(caught.value) == f"Hubble server {address}: no connection within 0.2s"


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        # grpc-core's wording for a name that does not resolve (not looked up for real: no network here).
        (grpc.StatusCode.UNAVAILABLE,
         "errors resolving nosuch.invalid:4245: [field:hostname lookup error:address lookup failed "
         "for nosuch.invalid:4245: Domain name not found]",
         "Hubble server nosuch.invalid:4245: cannot resolve the host name"),
        (grpc.StatusCode.UNAVAILABLE, "Cancelling all calls",
         "Hubble server nosuch.invalid:4245: connection lost (server restarted or network fault)"),
        (grpc.StatusCode.UNAVAILABLE, "something\nnew",
         "Hubble server nosuch.invalid:4245 is unavailable: something new"),
        (grpc.StatusCode.INTERNAL, "boom",
         "Hubble server nosuch.invalid:4245: GetFlows failed with INTERNAL: boom"),
    ],
)
def test_error_descriptions(code, details, expected) -> None:
    assert str(describe_rpc_error(_FakeRpcError(code, details), "nosuch.invalid:4245", "GetFlows")) == expected


# ----- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(certs):
    server = FixtureServer(credentials=server_credentials(certs)).start()
    yield server
    server.stop()


async def test_tls_with_ca_file_and_server_name(certs, tls_server) -> None:
    connection = parse("--server", f"tls://{tls_server.address}", "--tls-ca-cert-files", str(certs / "ca.pem"),
                       "--tls-server-name", "relay.test")
    assert connection.uses_tls and connection.target == tls_server.address
    async with HubbleClient(connection) as client:
        assert (await client.server_status()).version == "fixture"


async def test_tls_without_the_ca_fails_the_handshake(tls_server) -> None:
    connection = HubbleConnection(tls_server.address, tls=True, tls_server_name="relay.test")
    async with HubbleClient(connection) as client:
        with pytest.raises(HubbleError, match=f"^Hubble server {tls_server.address}: TLS handshake failed"):
            await client.server_status()


async def test_tls_to_a_plaintext_server_fails_clearly(plain_server) -> None:
    async with HubbleClient(HubbleConnection(plain_server.address, tls=True)) as client:
        with pytest.raises(HubbleError) as caught:
            await client.server_status()
    assert str(caught.value) == (
        f"Hubble server {plain_server.address}: TLS handshake failed (the server does not speak TLS on this port?)"
    )


@pytest.fixture
def mtls_server(certs):
    server = FixtureServer(credentials=server_credentials(certs, require_client_auth=True)).start()
    server.servicer.publish(make_flow_response(1))
    yield server
    server.stop()


async def test_mtls_with_client_certificate(certs, mtls_server) -> None:
    connection = parse(
        "--server", mtls_server.address, "--tls", "--tls-ca-cert-files", str(certs / "ca.pem"),
        "--tls-client-cert-file", str(certs / "client.pem"), "--tls-client-key-file", str(certs / "client.key"),
        "--tls-server-name", "relay.test",
    )
    async with HubbleClient(connection) as client:
        assert [r.flow.uuid async for r in client.get_flows(number=1)] == ["f-1"]


def test_flow_stream_over_mtls_and_allow_insecure(certs, mtls_server) -> None:
    from kcockpit.model.store import FlowStore
    from kcockpit.sources.hubble import FlowStream, StreamStatus

    pair = {"tls_client_cert_file": str(certs / "client.pem"), "tls_client_key_file": str(certs / "client.key")}
    verified = HubbleConnection(mtls_server.address, tls=True, tls_ca_cert_files=(str(certs / "ca.pem"),),
                                tls_server_name="relay.test", **pair)
    unverified = HubbleConnection(mtls_server.address, tls_allow_insecure=True, **pair)
    for connection in (verified, unverified):
        store = FlowStore(10)
        stream = FlowStream(connection, store, number=1, follow=False)
        stream.start()
        assert stream.join(10)
        assert stream.state.status is StreamStatus.ENDED and [r.uuid for r in store.snapshot()] == ["f-1"]


async def test_mtls_without_client_certificate_is_refused(certs, mtls_server) -> None:
    connection = HubbleConnection(mtls_server.address, tls=True, tls_ca_cert_files=(str(certs / "ca.pem"),),
                                  tls_server_name="relay.test")
    async with HubbleClient(connection) as client:
        with pytest.raises(HubbleError, match=f"^Hubble server {mtls_server.address}: "):
            await client.server_status()


@pytest.mark.parametrize("certificate", ["selfsigned", "server"])
async def test_allow_insecure_accepts_a_certificate_nobody_vouches_for(certs, certificate) -> None:
    # Self-signed, or signed by a CA the client was not given.
    server = FixtureServer(credentials=server_credentials(certs, certificate)).start()
    try:
        connection = parse("--server", server.address, "--tls-allow-insecure")
        async with HubbleClient(connection) as client:
            assert await client.health() == "SERVING"
    finally:
        server.stop()


# ----- options ----------------------------------------------------------------------------------


def test_server_defaults_env_and_flag() -> None:
    assert parse().server == DEFAULT_SERVER == "localhost:4245"
    assert parse(environ={"HUBBLE_SERVER": "relay:80"}).server == "relay:80"
    assert parse("--server", "x:1", environ={"HUBBLE_SERVER": "relay:80"}).server == "x:1"
    connection = parse("--server", "tls://relay:443", "--timeout", "2.5")
    assert connection.uses_tls and connection.target == "relay:443" and connection.timeout == 2.5
    assert not parse().uses_tls


@pytest.mark.parametrize(
    ("server", "problem"),
    [
        ("localhost", "has no port"),
        ("relay:http", "has no valid port ('http')"),
        ("relay:99999", "has no valid port ('99999')"),
        (":4245", "has no host"),
        ("http://relay:80", "has an unsupported scheme 'http'"),
        ("::1", "has no port"),
        ("unix://", "names no socket path"),
        ("", "has no port"),
    ],
)
def test_malformed_server_addresses_are_refused_before_connecting(server, problem) -> None:
    with pytest.raises(HubbleError) as caught:
        parse("--server", server) if server else HubbleConnection("").validate()
    assert str(caught.value) == (
        f"server address {server!r} {problem}: use HOST:PORT (e.g. localhost:4245), tls://HOST:PORT or unix://PATH"
    )


@pytest.mark.parametrize("server", ["relay.kube-system:4245", "tls://10.0.0.1:443", "[::1]:4245", "unix:///var/run/cilium/hubble.sock"])
def test_well_formed_server_addresses(server) -> None:
    assert parse("--server", server).server == server


async def test_missing_unix_socket_is_named(tmp_path) -> None:
    path = tmp_path / "hubble.sock"
    async with HubbleClient(HubbleConnection(f"unix://{path}")) as client:
        with pytest.raises(HubbleError) as caught:
            await client.server_status()
    assert str(caught.value) == f"Hubble server unix://{path}: no such socket file"


def test_ca_files_accept_commas_and_repeats(certs) -> None:
    ca = str(certs / "ca.pem")
    connection = parse("--tls-ca-cert-files", f"{ca},{ca}", "--tls-ca-cert-files", ca)
    assert connection.tls_ca_cert_files == (ca, ca, ca) and connection.uses_tls


def test_unreadable_certificate_file_is_named(tmp_path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(HubbleError) as caught:
        parse("--tls", "--tls-ca-cert-files", str(missing))
    assert str(caught.value) == f"cannot read TLS CA certificate file {str(missing)!r}: No such file or directory"


def test_non_pem_file_and_half_mtls_are_rejected(tmp_path, certs) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(HubbleError, match=r"TLS client certificate file .*junk.pem' is not PEM"):
        parse("--tls-client-cert-file", str(junk), "--tls-client-key-file", str(certs / "client.key"))
    with pytest.raises(HubbleError, match="mTLS needs both --tls-client-cert-file and --tls-client-key-file"):
        parse("--tls-client-cert-file", str(certs / "client.pem"))


def test_flows_request_fields() -> None:
    request = flows_request(number=5, follow=True, since=1_000_000_123, until=2_000_000_000)
    assert (request.number, request.follow, request.first) == (5, True, False)
    assert request.since.seconds == 1 and request.since.nanos == 123
    assert request.until.ToNanoseconds() == 2_000_000_000
    assert not flows_request().HasField("since")
    with pytest.raises(ValueError, match="must not be negative"):
        flows_request(number=-1)


def test_stub_import_is_the_generated_one() -> None:
    assert observer_grpc.ObserverStub.__module__.endswith("observer_pb2_grpc")


# ----- against the simulated Relay ---------------------------------------------------------------


async def test_client_against_the_simulator() -> None:
    from kcockpit.sim.clock import ManualClock
    from kcockpit.sim.embedded import DemoCluster

    with DemoCluster(seed=2, clock=ManualClock(), backfill_s=5, rate=100) as cluster:
        async with HubbleClient(HubbleConnection(cluster.address)) as client:
            status = await client.server_status()
            nodes = await client.get_nodes()
            namespaces = {ns.namespace for ns in await client.get_namespaces()}
            assert await client.health() == "SERVING"
            assert len(nodes) == status.num_connected_nodes.value == 4
            assert status.num_flows == sum(node.num_flows for node in nodes) > 0
            assert {"otel-demo", "kube-system"} <= namespaces
            kinds = [r.WhichOneof("response_types") async for r in client.get_flows(number=3)]
            assert kinds[0] == "node_status" and kinds.count("flow") == 12


# ===== Folded from test_review_connection.py =======================================================
# Review tests for server addresses: bad input is one clear error, never a traceback.


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
