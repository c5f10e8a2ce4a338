"""One server-streaming gRPC call over a plain HTTP/2 connection, read as fast as Python can.

grpcio hands a Python reader one message at a time, through its completion queue: about
7 us per message here, so receiving alone tops out near 135k flows/s before anything is
decoded. GetFlows is one request and then a long stream of small messages, and HTTP/2
carries them in DATA frames: this module reads the socket in large chunks and cuts frames
and gRPC messages out of them with `struct`, about 1 us per message. It speaks just what
one streaming call needs (RFC 9113 and gRPC's HTTP/2 mapping):

- the client preface, SETTINGS (ours: no push, large windows and frames; the server's are
  acknowledged), PING answered, WINDOW_UPDATE sent as we consume, GOAWAY honoured;
- the request as HEADERS (HPACK via the `hpack` package) plus DATA with END_STREAM;
- response headers, DATA split into length-prefixed messages (uncompressed: we never
  offer a grpc-encoding), trailers with grpc-status and grpc-message;
- TCP, unix sockets and TLS (ALPN "h2", CA files, client certificate, server name,
  or no verification for --tls-allow-insecure).

Failures are raised as `StreamCallError`, a `grpc.RpcError` with `code()` and `details()`
worded like grpc-core's, so callers describe them with `wire.errors` as any other call.
`cancel()` may be called from any thread; the reader then ends with CANCELLED.

    call = StreamCall(connection, "/observer.Observer/GetFlows", request.SerializeToString(),
                      on_ready=went_live)
    for batch in call.batches():      # lists of serialized response messages
        ...
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from itertools import chain
from urllib.parse import unquote

import grpc
import hpack

from kcockpit.wire.connection import HubbleConnection, split_host_port

__all__ = ["StreamCall", "StreamCallError"]

# Frame types (RFC 9113 section 6) and flags.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 0x2, 0x4, 0x5

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
STREAM_ID = 1  # the one stream of the connection
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65_535
DEFAULT_MAX_FRAME = 16_384
OUR_MAX_FRAME = 1 << 20  # frames up to 1 MiB: fewer headers to cut when a server coalesces
WINDOW_REFILL = 16 << 20  # give the server more credit after every 16 MiB consumed
READ_CHUNK = 1 << 20
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # as the grpc channels' receive limit

_FRAME_HEADER = struct.Struct(">IBI")  # (length << 8 | type), flags, stream id
_MESSAGE_LENGTH = struct.Struct(">I")

# gRPC's mapping of HTTP status codes when a response carries no grpc-status.
_HTTP_STATUS_CODES = {
    400: grpc.StatusCode.INTERNAL,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.UNIMPLEMENTED,
    429: grpc.StatusCode.UNAVAILABLE,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.UNAVAILABLE,
}
_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
_RST_CANCEL, _RST_REFUSED_STREAM = 0x8, 0x7


class StreamCallError(grpc.RpcError):
    """A failed call, with grpc's `code()` and `details()`."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class StreamCall:
    """A server-streaming call on a connection of its own. Iterate it (messages) or its
    `batches()` (lists of messages, one per socket read) from one thread."""

    def __init__(
        self,
        connection: HubbleConnection,
        path: str,
        request: bytes,
        *,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.connection = connection
        self.path = path
        self.request = request
        self.on_ready = on_ready
        self._lock = threading.Lock()
        self._cancelled = False
        self._socket: socket.socket | None = None
        self._shutter: socket.socket | None = None  # a dup of the TCP socket, for cancel()
        self.authority = ""  # the request's :authority, known once connected

    def __iter__(self) -> Iterator[bytes]:
        return chain.from_iterable(self.batches())

    def cancel(self) -> None:
        """End the call from any thread: the reader stops with CANCELLED."""
        with self._lock:
            self._cancelled = True
            shutter = self._shutter
        if shutter is not None:
            try:
                # shutdown, not close: the reader may be inside recv on this very socket.
                shutter.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def batches(self) -> Iterator[list[bytes]]:
        """Connect, send the request, then yield the response messages as they arrive."""
        try:
            sock = self._connect()
        except OSError as error:
            raise self._failure(_connect_error(error)) from None
        reader = _Reader(self, sock)
        try:
            yield from reader.run()
        except ssl.SSLError as error:
            if reader.settings_seen:
                raise self._failure(StreamCallError(grpc.StatusCode.UNAVAILABLE, f"Socket closed: {error}")) from None
            # TLS 1.3 reports a refused client certificate after the handshake, on the first read.
            raise self._failure(_connect_error(_TlsFailure(str(error)))) from None
        except (socket.timeout, TimeoutError):  # only the dial has a timeout
            raise self._failure(StreamCallError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                                "Timeout occurred: the server never started HTTP/2")) from None
        except OSError as error:  # ssl.SSLError included
            raise self._failure(StreamCallError(grpc.StatusCode.UNAVAILABLE, f"Socket closed: {error}")) from None
        finally:
            with self._lock:
                shutter, self._shutter = self._shutter, None
            for each in (sock, shutter):
                try:
                    each.close()
                except OSError:
                    pass

    def _failure(self, error: StreamCallError) -> StreamCallError:
        if self._cancelled:
            return StreamCallError(grpc.StatusCode.CANCELLED, "Cancelled")
        return error

    # --- connecting -------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        connection = self.connection
        target = connection.target
        timeout = connection.timeout
        if target.startswith(("unix:", "unix-abstract:")):
            scheme, _, rest = target.partition(":")
            path = ("\0" + rest) if scheme == "unix-abstract" else ("/" + rest.lstrip("/") if rest.startswith("//") else rest)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(path)
            except OSError:
                sock.close()
                raise
            authority = "localhost"
        else:
            host, port = split_host_port(target)
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _keep_alive(sock)
            authority = target
        with self._lock:
            if self._cancelled:
                sock.close()
                raise ConnectionAbortedError("cancelled")
            self._shutter = sock.dup()
        self.authority = authority
        if connection.uses_tls:
            try:
                sock = self._tls_context().wrap_socket(sock, server_hostname=self._server_name(authority))
            except ssl.SSLError as error:
                sock.close()
                raise _TlsFailure(str(error)) from None
            except OSError:
                sock.close()
                raise
            if sock.selected_alpn_protocol() not in ("h2", None):
                sock.close()
                raise _TlsFailure(f"the server chose ALPN protocol {sock.selected_alpn_protocol()!r}, not h2")
        return sock

    def _server_name(self, authority: str) -> str | None:
        name = self.connection.tls_server_name
        if name:
            return name
        if authority.startswith("["):
            return authority[1:].partition("]")[0]
        return authority.rpartition(":")[0] or authority

    def _tls_context(self) -> ssl.SSLContext:
        connection = self.connection
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.set_alpn_protocols(["h2"])
        if connection.tls_allow_insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            roots = connection.ca_roots()
            if roots:
                context.load_verify_locations(cadata=roots.decode("ascii", "replace"))
            else:
                context.load_default_certs()
        if connection.tls_client_cert_file and connection.tls_client_key_file:
            context.load_cert_chain(connection.tls_client_cert_file, connection.tls_client_key_file)
        return context


KEEPALIVE_IDLE_S = 30  # a quiet follow stream (a filter nothing matches) is probed after this
KEEPALIVE_INTERVAL_S = 10
KEEPALIVE_PROBES = 3


def _keep_alive(sock: socket.socket) -> None:
    """TCP keepalive: a connection whose peer vanished without a word (a node gone, a NAT
    that forgot it) fails within ~a minute, and the stream retries, instead of waiting for
    flows for ever. Where the options do not exist, the system's defaults stay."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
                        ("TCP_KEEPCNT", KEEPALIVE_PROBES)):
        option = getattr(socket, name, None)
        if option is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
            except OSError:
                pass


class _TlsFailure(OSError):
    """A TLS handshake that failed (its text carries the handshake's words for the hint)."""


def _connect_error(error: OSError) -> StreamCallError:
    """grpc-core's words for a connection that could not be made, which wire.errors knows."""
    if isinstance(error, _TlsFailure):
        return StreamCallError(grpc.StatusCode.UNAVAILABLE, f"TLS handshake failed: {error}")
    if isinstance(error, socket.gaierror):
        return StreamCallError(grpc.StatusCode.UNAVAILABLE, f"DNS resolution failed: {error}")
    if isinstance(error, (socket.timeout, TimeoutError)):
        return StreamCallError(grpc.StatusCode.DEADLINE_EXCEEDED, "Timeout occurred while connecting")
    if isinstance(error, ConnectionRefusedError):
        return StreamCallError(grpc.StatusCode.UNAVAILABLE, "Connection refused")
    if isinstance(error, FileNotFoundError):
        return StreamCallError(grpc.StatusCode.UNAVAILABLE, f"unix: No such file or directory ({error.filename})")
    if isinstance(error, ConnectionAbortedError):
        return StreamCallError(grpc.StatusCode.CANCELLED, "Cancelled")
    return StreamCallError(grpc.StatusCode.UNAVAILABLE, f"{error.strerror or error}")


class _Reader:
    """The connection's state while one call runs: frames in, messages out."""

    def __init__(self, call: StreamCall, sock: socket.socket) -> None:
        self.call = call
        self.sock = sock
        self.decoder = hpack.Decoder()
        self.header_block = bytearray()  # a HEADERS block still waiting for its CONTINUATION
        self.header_end_stream = False
        self.headers_seen = False
        self.messages = bytearray()  # DATA bytes not yet a whole message
        self.unacknowledged = 0  # DATA bytes consumed since the last WINDOW_UPDATE
        self.ended = False
        self.status: StreamCallError | None = None  # set by trailers, RST_STREAM or GOAWAY
        self.settings_seen = False  # the server's first SETTINGS: it speaks HTTP/2

    def run(self) -> Iterator[list[bytes]]:
        call, sock = self.call, self.sock
        sock.sendall(self._opening())
        pending = bytearray()  # the start of a frame the last read cut in two
        chunk = bytearray(READ_CHUNK)
        view = memoryview(chunk)
        ready = False
        while True:
            size = sock.recv_into(chunk)
            if not size:
                if self.ended:
                    break
                if call.connection.uses_tls and not self.settings_seen:
                    # TLS 1.3 servers refuse a client certificate after the handshake, by closing.
                    raise call._failure(StreamCallError(
                        grpc.StatusCode.UNAVAILABLE, "TLS closed by the server before HTTP/2 began: does it "
                        "require a client certificate (--tls-client-cert-file)?"))
                raise call._failure(StreamCallError(grpc.StatusCode.UNAVAILABLE, "Socket closed by the server"))
            batch: list[bytes] = []
            if pending:
                pending += view[:size]
                with memoryview(pending) as data:
                    used = self._frames(data, batch)
                del pending[:used]
            else:
                used = self._frames(view[:size], batch)
                if used < size:
                    pending = bytearray(view[used:size])
            if not ready and self.settings_seen:
                ready = True
                sock.settimeout(None)  # the dial timeout covered connecting only
                if call.on_ready is not None:
                    call.on_ready()
            if batch:
                yield batch
            if self.status is not None:
                raise call._failure(self.status)
            if self.ended:
                break

    def _opening(self) -> bytes:
        """Preface, our SETTINGS, a large connection window, the request's HEADERS and DATA."""
        call = self.call
        settings = struct.pack(
            ">HIHIHI", SETTINGS_ENABLE_PUSH, 0, SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW,
            SETTINGS_MAX_FRAME_SIZE, OUR_MAX_FRAME,
        )
        scheme = "https" if call.connection.uses_tls else "http"
        headers = hpack.Encoder().encode([
            (":method", "POST"), (":scheme", scheme), (":path", call.path), (":authority", call.authority),
            ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "kcockpit-h2-stream"),
        ])
        message = b"\0" + _MESSAGE_LENGTH.pack(len(call.request)) + call.request
        if len(message) > DEFAULT_WINDOW:
            raise StreamCallError(grpc.StatusCode.INVALID_ARGUMENT,
                                  f"request of {len(message)} bytes is larger than HTTP/2's initial window")
        parts = [PREFACE, _frame(SETTINGS, 0, 0, settings),
                 _frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", MAX_WINDOW - DEFAULT_WINDOW)),
                 _frame(HEADERS, END_HEADERS, STREAM_ID, headers)]
        for start in range(0, len(message), DEFAULT_MAX_FRAME):
            piece = message[start:start + DEFAULT_MAX_FRAME]
            last = start + DEFAULT_MAX_FRAME >= len(message)
            parts.append(_frame(DATA, END_STREAM if last else 0, STREAM_ID, piece))
        return b"".join(parts)

    def _frames(self, data, batch: list[bytes]) -> int:
        """Handle every whole frame in `data`; returns the bytes used."""
        unpack = _FRAME_HEADER.unpack_from
        size = len(data)
        position = 0
        while size - position >= 9:
            length_type, flags, stream = unpack(data, position)
            length = length_type >> 8
            end = position + 9 + length
            if end > size:
                break
            kind = length_type & 0xFF
            if kind == DATA:
                self._data(data, position + 9, end, flags, stream, batch)
            else:
                self._control(kind, flags, stream & 0x7FFFFFFF, bytes(data[position + 9:end]))
            position = end
            if self.status is not None:
                break
        return position

    def _data(self, data, start: int, end: int, flags: int, stream: int, batch: list[bytes]) -> None:
        self.unacknowledged += end - start
        if flags & PADDED:
            pad = data[start]
            start, end = start + 1, end - pad
        if stream == STREAM_ID:
            if self.messages:
                start = self._carry_on(data, start, end, batch)
            # Whole messages in the frame are cut straight from the read (one copy each).
            unpack = _MESSAGE_LENGTH.unpack_from
            append = batch.append
            while end - start >= 5:
                length = unpack(data, start + 1)[0]
                stop = start + 5 + length
                if stop > end:
                    break
                if data[start]:
                    self._compressed()
                    return
                append(bytes(data[start + 5:stop]))
                start = stop
            if start < end:  # the start of a message the next frames finish
                self.messages += data[start:end]
                self._check_carried()
        if flags & END_STREAM:
            self.ended = True
            if self.status is None and not self.headers_seen:
                self.status = StreamCallError(grpc.StatusCode.INTERNAL, "stream ended without a status")
        if self.unacknowledged >= WINDOW_REFILL:
            credit = struct.pack(">I", self.unacknowledged)
            self.unacknowledged = 0
            self.sock.sendall(_frame(WINDOW_UPDATE, 0, 0, credit) + _frame(WINDOW_UPDATE, 0, STREAM_ID, credit))

    def _carry_on(self, data, start: int, end: int, batch: list[bytes]) -> int:
        """Add to the message carried over from earlier frames what this frame has of it;
        emit it when whole. Returns where the frame's next message starts."""
        messages = self.messages
        if len(messages) < 5:  # its length prefix is still cut
            take = min(5 - len(messages), end - start)
            messages += data[start:start + take]
            start += take
            if not self._check_carried():
                return end
        need = 5 + _MESSAGE_LENGTH.unpack_from(messages, 1)[0] - len(messages)
        take = min(need, end - start)
        messages += data[start:start + take]
        if take == need:
            if messages[0]:
                self._compressed()
                return end
            batch.append(bytes(messages[5:]))
            messages.clear()
        return start + take

    def _check_carried(self) -> bool:
        """Whether the carried-over message's length is known (and allowed)."""
        messages = self.messages
        if len(messages) < 5:
            return False
        length = _MESSAGE_LENGTH.unpack_from(messages, 1)[0]
        if length > MAX_MESSAGE_BYTES:
            self.status = StreamCallError(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"Received message larger than max ({length} vs. {MAX_MESSAGE_BYTES})")
            messages.clear()
            return False
        return True

    def _compressed(self) -> None:
        self.status = StreamCallError(grpc.StatusCode.INTERNAL, "the server sent a compressed message, which was never offered")

    def _control(self, kind: int, flags: int, stream: int, payload: bytes) -> None:
        if kind == SETTINGS:
            if not flags & ACK:
                # Nothing in the server's settings matters here: our only frames (the
                # request, sent first) already fit the smallest limits a server may set.
                self.sock.sendall(_frame(SETTINGS, ACK, 0, b""))
                self.settings_seen = True
        elif kind == PING:
            if not flags & ACK:
                self.sock.sendall(_frame(PING, ACK, 0, payload))
        elif kind in (HEADERS, CONTINUATION) and stream == STREAM_ID:
            self._headers(kind, flags, payload)
        elif kind == RST_STREAM and stream == STREAM_ID:
            (code,) = struct.unpack(">I", payload[:4])
            self.ended = True
            if self.status is None:
                if code == _RST_CANCEL:
                    self.status = StreamCallError(grpc.StatusCode.CANCELLED, "Received RST_STREAM with error code 8")
                elif code == _RST_REFUSED_STREAM:
                    self.status = StreamCallError(grpc.StatusCode.UNAVAILABLE, "Received RST_STREAM with error code 7")
                else:
                    self.status = StreamCallError(grpc.StatusCode.INTERNAL, f"Received RST_STREAM with error code {code}")
        elif kind == GOAWAY:
            last_stream, code = struct.unpack(">II", payload[:8])
            if (last_stream & 0x7FFFFFFF) < STREAM_ID or code != 0:
                # Our stream was not taken, or the connection ends in error: it will not finish.
                if self.status is None and not self.ended:
                    debug = payload[8:].decode("utf-8", "replace")
                    self.status = StreamCallError(
                        grpc.StatusCode.UNAVAILABLE, f"GOAWAY received (error code {code}){': ' + debug if debug else ''}")
        elif kind == PUSH_PROMISE:
            self.status = StreamCallError(grpc.StatusCode.INTERNAL, "the server pushed a stream after push was disabled")
        # PRIORITY, WINDOW_UPDATE (our only DATA is the small request) and unknown types: nothing to do.

    def _headers(self, kind: int, flags: int, payload: bytes) -> None:
        if kind == HEADERS:
            start, end = 0, len(payload)
            if flags & PADDED:
                start, end = 1, end - payload[0]
            if flags & PRIORITY_FLAG:
                start += 5
            self.header_block = bytearray(payload[start:end])
            self.header_end_stream = bool(flags & END_STREAM)
        else:
            self.header_block += payload
        if not flags & END_HEADERS:
            return
        headers = {name.lower(): value for name, value in self.decoder.decode(bytes(self.header_block), raw=False)}
        self.header_block = bytearray()
        if not self.headers_seen:
            self.headers_seen = True
            status = headers.get(":status", "200")
            if status != "200" and "grpc-status" not in headers:
                code = _HTTP_STATUS_CODES.get(int(status) if status.isdigit() else 0, grpc.StatusCode.UNKNOWN)
                self.status = StreamCallError(code, f"Received http2 header with status: {status}")
                return
            content_type = headers.get("content-type", "")
            if "grpc-status" not in headers and not content_type.startswith("application/grpc"):
                self.status = StreamCallError(
                    grpc.StatusCode.UNKNOWN, f"the server answered with content-type {content_type!r}, not gRPC")
                return
        if "grpc-status" in headers:
            number = headers["grpc-status"]
            code = _STATUS_BY_NUMBER.get(int(number) if number.isdigit() else -1, grpc.StatusCode.UNKNOWN)
            if code is not grpc.StatusCode.OK:
                self.status = StreamCallError(code, unquote(headers.get("grpc-message", "")))
        if self.header_end_stream:
            self.ended = True


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return _FRAME_HEADER.pack(len(payload) << 8 | kind, flags, stream) + payload
