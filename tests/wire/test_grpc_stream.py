"""The HTTP/2 flow reader (wire.grpc_stream) against real grpc servers, next to grpcio's
channel, and against a scripted server that sends the frames a real one may send."""

from __future__ import annotations

import socket
import struct
import threading
import time
from urllib.parse import quote

import grpc
import hpack
import pytest
from observer_fixture import FixtureServer, lost_events_response, make_flow_response, node_status_response
from tls_certs import certs, server_credentials  # noqa: F401 - certs is a fixture

from kcockpit.model.store import FlowStore
from kcockpit.sources.hubble import FlowStream, StreamStatus
from kcockpit.wire.connection import HubbleConnection, HubbleError
from kcockpit.wire.grpc_stream import StreamCall, StreamCallError
from kcockpit.wire.hubble_client import GET_FLOWS_METHOD, flows_request
from kcockpit.wire.hubble_pb import relay_pb

TRANSPORTS = ("h2", "grpcio")


def read_flows(connection: HubbleConnection, **request) -> tuple[FlowStream, FlowStore]:
    """A non-follow FlowStream run to its end."""
    store = FlowStore(100_000)
    stream = FlowStream(connection, store, follow=False, **request)
    stream.start()
    assert stream.join(20)
    return stream, store


@pytest.fixture
def plain_server():
    server = FixtureServer().start()
    server.servicer.publish(
        node_status_response(relay_pb.NODE_CONNECTED, "node-a"),
        *(make_flow_response(i) for i in range(40)),
        lost_events_response(7),
    )
    yield server
    server.stop()


def test_both_transports_store_the_same_bytes(plain_server) -> None:
    stored = {}
    for transport in TRANSPORTS:
        stream, store = read_flows(HubbleConnection(plain_server.address, stream_transport=transport), number=100)
        assert stream.state.status is StreamStatus.ENDED
        assert (stream.node_status_events, store.lost_at_server) == (1, 7)
        stored[transport] = [record.raw for record in store.snapshot()]
    assert len(stored["h2"]) == 40
    assert stored["h2"] == stored["grpcio"]
    assert stored["h2"][0] == make_flow_response(0).SerializeToString()


def test_more_than_the_initial_flow_control_windows_arrive(plain_server) -> None:
    # ~20 MB: past our 16 MiB window refill and any server's default 64 KiB window.
    big = [make_flow_response(i) for i in range(40, 40 + 16_000)]
    for response in big:
        response.flow.Summary = "x" * 1200
    plain_server.servicer.publish(*big)
    stream, store = read_flows(HubbleConnection(plain_server.address), number=20_000)
    assert stream.state.status is StreamStatus.ENDED
    assert store.received == 16_040
    assert store.snapshot()[-1].raw == big[-1].SerializeToString()


def test_tls_and_mtls_read_the_same_flows(certs, tmp_path) -> None:  # noqa: F811 - fixture
    server = FixtureServer(credentials=server_credentials(certs, require_client_auth=True)).start()
    server.servicer.publish(*(make_flow_response(i) for i in range(5)))
    pair = {"tls_client_cert_file": str(certs / "client.pem"), "tls_client_key_file": str(certs / "client.key")}
    try:
        connection = HubbleConnection(server.address, tls=True, tls_ca_cert_files=(str(certs / "ca.pem"),),
                                      tls_server_name="relay.test", **pair)
        _, store = read_flows(connection, number=5)
        assert [r.uuid for r in store.snapshot()] == [f"f-{i}" for i in range(5)]
        _, insecure = read_flows(HubbleConnection(server.address, tls_allow_insecure=True, **pair), number=5)
        assert insecure.received == 5
    finally:
        server.stop()


def test_a_unix_socket_server(tmp_path) -> None:
    from concurrent import futures

    from observer_fixture import ObserverServicer

    from kcockpit.wire.hubble_pb import observer_grpc

    servicer = ObserverServicer()
    servicer.publish(*(make_flow_response(i) for i in range(3)))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    observer_grpc.add_ObserverServicer_to_server(servicer, server)
    path = tmp_path / "hubble.sock"
    server.add_insecure_port(f"unix://{path}")
    server.start()
    try:
        _, store = read_flows(HubbleConnection(f"unix://{path}"), number=3)
        assert store.received == 3
    finally:
        server.stop(None)


# ----- failures read the same as grpcio's -------------------------------------------------------


def stream_error(connection: HubbleConnection) -> str:
    stream, store = read_flows(connection, number=1)
    assert stream.state.status is StreamStatus.ERROR and store.received == 0
    return stream.state.error


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_reads_as_with_grpcio() -> None:
    address = f"127.0.0.1:{unused_port()}"
    errors = {t: stream_error(HubbleConnection(address, stream_transport=t)) for t in TRANSPORTS}
    assert errors["h2"] == errors["grpcio"] == (
        f"Hubble server {address}: connection refused (is the server or port-forward running?)")


def test_missing_unix_socket_reads_as_with_grpcio(tmp_path) -> None:
    address = f"unix://{tmp_path / 'gone.sock'}"
    errors = {t: stream_error(HubbleConnection(address, stream_transport=t)) for t in TRANSPORTS}
    assert errors["h2"] == errors["grpcio"] == f"Hubble server {address}: no such socket file"


def test_a_silent_server_times_out_like_the_cli() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never speaks HTTP/2
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        for transport in TRANSPORTS:
            error = stream_error(HubbleConnection(address, timeout=0.3, stream_transport=transport))
            assert error == f"Hubble server {address}: no connection within 0.3s"


def test_tls_to_a_plaintext_server_reads_as_with_grpcio(plain_server) -> None:
    for transport in TRANSPORTS:
        error = stream_error(HubbleConnection(plain_server.address, tls=True, stream_transport=transport))
        assert error == (f"Hubble server {plain_server.address}: TLS handshake failed "
                         "(the server does not speak TLS on this port?)"), transport


def test_an_untrusted_certificate_fails_the_handshake(certs) -> None:  # noqa: F811 - fixture
    server = FixtureServer(credentials=server_credentials(certs)).start()
    try:
        for transport in TRANSPORTS:
            error = stream_error(HubbleConnection(server.address, tls=True, tls_server_name="relay.test",
                                                  stream_transport=transport))
            assert error.startswith(f"Hubble server {server.address}: TLS handshake failed ("), (transport, error)
    finally:
        server.stop()


def test_an_unknown_transport_is_refused_before_connecting() -> None:
    with pytest.raises(HubbleError, match="unknown stream transport 'quic': use one of h2, grpcio"):
        HubbleConnection("relay:4245", stream_transport="quic").validate()


def test_cancel_from_another_thread_ends_the_read_promptly(plain_server) -> None:
    call = StreamCall(HubbleConnection(plain_server.address), GET_FLOWS_METHOD,
                      flows_request(number=1, follow=True).SerializeToString())
    got: list[bytes] = []
    failure: list[BaseException] = []

    def read() -> None:
        try:
            for message in call:
                got.append(message)
        except StreamCallError as error:
            failure.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    call.cancel()
    reader.join(5)
    assert not reader.is_alive() and time.monotonic() - started < 1
    assert len(got) == 1 and failure[0].code() is grpc.StatusCode.CANCELLED


# ----- a scripted server: the frames a real one may send ------------------------------------------

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">IBI", len(payload) << 8 | kind, flags, stream) + payload


def grpc_message(payload: bytes, compressed: bool = False) -> bytes:
    return bytes([compressed]) + struct.pack(">I", len(payload)) + payload


def response_headers(encoder: hpack.Encoder, **extra: str) -> bytes:
    return encoder.encode([(":status", extra.pop("status", "200")), ("content-type", "application/grpc"),
                           *((k.replace("_", "-"), v) for k, v in extra.items())])


class ScriptedServer:
    """Accepts one connection, waits for the request, sends `script` (bytes, in pieces of
    `piece` bytes), then records what the client sends until it closes or 1 s passes."""

    def __init__(self, script: bytes, piece: int = 0) -> None:
        self.script, self.piece = script, piece
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.received = bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(1)
            while b"\x00\x01\x00\x00\x00\x01" not in self.received:  # the request's END_STREAM DATA
                self.received += conn.recv(65536)
            self.request_end = len(self.received)
            step = self.piece or len(self.script)
            try:
                for start in range(0, len(self.script), step):
                    conn.sendall(self.script[start:start + step])
                    if self.piece:
                        time.sleep(0.0005)
                while chunk := conn.recv(65536):
                    self.received += chunk
            except OSError:
                pass

    def client_frames(self) -> list[tuple[int, int, int, bytes]]:
        """(type, flags, stream, payload) of what the client sent after its request."""
        self.thread.join(3)
        data, position, out = bytes(self.received[self.request_end:]), 0, []
        while len(data) - position >= 9:
            length_type, flags, stream = struct.unpack_from(">IBI", data, position)
            length = length_type >> 8
            out.append((length_type & 0xFF, flags, stream, data[position + 9:position + 9 + length]))
            position += 9 + length
        return out

    def close(self) -> None:
        self.listener.close()


def run_script(script: bytes, piece: int = 0) -> tuple[list[bytes], StreamCallError | None, ScriptedServer]:
    server = ScriptedServer(script, piece)
    call = StreamCall(HubbleConnection(server.address, timeout=2), GET_FLOWS_METHOD,
                      flows_request(number=3).SerializeToString())
    messages, error = [], None
    try:
        for message in call:
            messages.append(message)
    except StreamCallError as failure:
        error = failure
    server.close()
    return messages, error, server


def ok_trailers(encoder: hpack.Encoder) -> bytes:
    return frame(HEADERS, 0x1 | 0x4, 1, encoder.encode([("grpc-status", "0")]))


FLOWS = [make_flow_response(i).SerializeToString() for i in range(3)]


def test_messages_cut_anywhere_by_frames_and_reads_come_back_whole() -> None:
    encoder = hpack.Encoder()
    body = b"".join(grpc_message(m) for m in FLOWS)
    # DATA frames of 7 bytes (messages cross frames), sent 5 bytes per write (frames cross reads).
    data = b"".join(frame(DATA, 0, 1, body[i:i + 7]) for i in range(0, len(body), 7))
    script = frame(SETTINGS, 0, 0) + frame(HEADERS, 0x4, 1, response_headers(encoder)) + data + ok_trailers(encoder)
    messages, error, _ = run_script(script, piece=5)
    assert error is None and messages == FLOWS


def test_padding_continuation_and_ping_are_handled() -> None:
    encoder = hpack.Encoder()
    block = response_headers(encoder, x_note="a" * 40)
    padded = bytes([4]) + grpc_message(FLOWS[0]) + b"\0" * 4
    script = (
        frame(SETTINGS, 0, 0)
        + frame(HEADERS, 0, 1, block[:10]) + frame(CONTINUATION, 0x4, 1, block[10:])
        + frame(PING, 0, 0, b"12345678")
        + frame(DATA, 0x8, 1, padded)
        + frame(DATA, 0, 1, grpc_message(FLOWS[1]) + grpc_message(FLOWS[2]))
        + ok_trailers(encoder)
    )
    messages, error, server = run_script(script)
    assert error is None and messages == FLOWS
    sent = server.client_frames()
    assert (PING, 0x1, 0, b"12345678") in sent  # answered
    assert (SETTINGS, 0x1, 0, b"") in sent  # acknowledged


def test_an_error_status_in_trailers_only_is_raised_with_its_message() -> None:
    encoder = hpack.Encoder()
    block = response_headers(encoder, grpc_status="3", grpc_message=quote("bad filter: ünknown"))
    messages, error, _ = run_script(frame(SETTINGS, 0, 0) + frame(HEADERS, 0x1 | 0x4, 1, block))
    assert messages == [] and error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "bad filter: ünknown"


def test_an_http_error_without_grpc_status_maps_like_grpc() -> None:
    block = hpack.Encoder().encode([(":status", "404"), ("content-type", "text/plain")])
    _, error, _ = run_script(frame(SETTINGS, 0, 0) + frame(HEADERS, 0x1 | 0x4, 1, block))
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED


HALF = frame(DATA, 0, 1, grpc_message(FLOWS[1])[:20])  # a message cut short


@pytest.mark.parametrize(
    ("tail", "code", "words"),
    [
        (HALF + frame(RST_STREAM, 0, 1, struct.pack(">I", 2)), grpc.StatusCode.INTERNAL, "RST_STREAM with error code 2"),
        (HALF + frame(GOAWAY, 0, 0, struct.pack(">II", 0, 11) + b"calm down"), grpc.StatusCode.UNAVAILABLE, "GOAWAY"),
        (HALF, grpc.StatusCode.UNAVAILABLE, "Socket closed"),  # the server just goes away
        (frame(DATA, 0, 1, grpc_message(b"zz", compressed=True)), grpc.StatusCode.INTERNAL, "compressed"),
    ],
)
def test_a_broken_stream_keeps_what_arrived_and_says_why(tail, code, words) -> None:
    encoder = hpack.Encoder()
    script = (frame(SETTINGS, 0, 0) + frame(HEADERS, 0x4, 1, response_headers(encoder))
              + frame(DATA, 0, 1, grpc_message(FLOWS[0])) + tail)
    messages, error, _ = run_script(script)
    assert messages == [FLOWS[0]]
    assert error.code() is code and words in error.details()


def test_a_graceful_goaway_lets_the_stream_finish() -> None:
    encoder = hpack.Encoder()
    script = (frame(SETTINGS, 0, 0) + frame(HEADERS, 0x4, 1, response_headers(encoder))
              + frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0))
              + frame(DATA, 0, 1, b"".join(grpc_message(m) for m in FLOWS)) + ok_trailers(encoder))
    messages, error, _ = run_script(script)
    assert error is None and messages == FLOWS


def test_credit_is_returned_as_data_is_consumed() -> None:
    encoder = hpack.Encoder()
    big = b"y" * (1 << 20)
    body = grpc_message(big) * 17  # 17 MiB: one refill of 16 MiB
    data = b"".join(frame(DATA, 0, 1, body[i:i + (1 << 20)]) for i in range(0, len(body), 1 << 20))
    messages, error, server = run_script(frame(SETTINGS, 0, 0) + frame(HEADERS, 0x4, 1, response_headers(encoder))
                                         + data + ok_trailers(encoder))
    assert error is None and len(messages) == 17 and messages[0] == big
    updates = [(stream, struct.unpack(">I", payload)[0]) for kind, _, stream, payload in server.client_frames()
               if kind == 8]
    assert {stream for stream, _ in updates} == {0, 1} and all(credit >= 16 << 20 for _, credit in updates)


def test_mtls_without_a_client_certificate_is_refused_clearly(certs) -> None:  # noqa: F811 - fixture
    server = FixtureServer(credentials=server_credentials(certs, require_client_auth=True)).start()
    try:
        for transport in TRANSPORTS:
            error = stream_error(HubbleConnection(server.address, tls=True, tls_ca_cert_files=(str(certs / "ca.pem"),),
                                                  tls_server_name="relay.test", stream_transport=transport))
            assert error.startswith(f"Hubble server {server.address}: "), error
        # The h2 reader sees the server's TLS alert and says so; grpc-core says "connection lost".
        assert error_h2(server.address, certs) == (
            f"Hubble server {server.address}: TLS handshake failed (TLS closed by the server before HTTP/2 began: "
            "does it require a client certificate (--tls-client-cert-file)?)")
    finally:
        server.stop()


def error_h2(address: str, certs) -> str:  # noqa: F811 - fixture value
    return stream_error(HubbleConnection(address, tls=True, tls_ca_cert_files=(str(certs / "ca.pem"),),
                                         tls_server_name="relay.test"))


def test_a_message_over_the_size_limit_is_refused_before_it_is_buffered() -> None:
    encoder = hpack.Encoder()
    huge_prefix = b"\0" + struct.pack(">I", 65 * 1024 * 1024)  # 65 MiB announced, a few bytes sent
    script = (frame(SETTINGS, 0, 0) + frame(HEADERS, 0x4, 1, response_headers(encoder))
              + frame(DATA, 0, 1, grpc_message(FLOWS[0]) + huge_prefix + b"abc"))
    messages, error, _ = run_script(script)
    assert messages == [FLOWS[0]]
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in error.details()


def test_the_stream_connection_is_probed_when_quiet() -> None:
    # A peer that vanished without a FIN would otherwise leave a quiet follow stream waiting for ever.
    from kcockpit.wire import grpc_stream

    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname()) as sock:
        grpc_stream._keep_alive(sock)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == grpc_stream.KEEPALIVE_IDLE_S
