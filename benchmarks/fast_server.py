"""The fastest GetFlows source we can build, so the client is measured near its own limit.

A grpcio server sends one message per Python-level yield and tops out near 20-25k
messages/s. This one speaks gRPC over HTTP/2 directly with `h2`: the flows are encoded once,
framed as gRPC messages (5-byte prefix + protobuf) into one buffer, and a GetFlows response is
just a window over that buffer sent in DATA frames as large as flow control allows; message
boundaries do not need to line up with frames. It answers GetFlows only (other methods get
UNIMPLEMENTED): `number` flows (or --count when the request has none), endlessly with
`follow`.

    python benchmarks/fast_server.py --listen 127.0.0.1:4245 --count 1000000
"""

from __future__ import annotations

import argparse
import bisect
import random
import select
import socket
import struct
import sys
import threading
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))

from kcockpit.wire.hubble_pb import GetFlowsRequest, GetFlowsResponse, flow_pb  # noqa: E402

_APPS = ("frontend", "cartservice", "checkoutservice", "productcatalogservice", "currencyservice",
         "paymentservice", "shippingservice", "emailservice", "recommendationservice", "adservice")
_NODES = ("kind-control-plane", "kind-worker", "kind-worker2", "kind-worker3")
_GRPC_UNIMPLEMENTED = "12"


PODS_PER_APP = 3


def _endpoint(rng: random.Random, app: str, ns: str = "otel-demo") -> flow_pb.Endpoint:
    """One of the app's few pods, as in a real cluster: a pod keeps its name and endpoint ID,
    and every pod of a deployment shares one security identity (same labels). (Until
    2026-12 each flow had a new random pod and identity: nothing a cluster sends.)"""
    pod = rng.randrange(PODS_PER_APP)
    app_index = _APPS.index(app)
    suffix = "".join("bcdfghjklmnpqrstvwxz2456789"[(app_index * 7 + pod * 3 + i) % 27] for i in range(5))
    return flow_pb.Endpoint(
        ID=100 + app_index * PODS_PER_APP + pod,
        identity=10_000 + app_index,
        namespace=ns,
        pod_name=f"{app}-7d9c8b6f5-{suffix}",
        labels=[
            f"k8s:app={app}",
            f"k8s:app.kubernetes.io/name={app}",
            "k8s:app.kubernetes.io/part-of=opentelemetry-demo",
            f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={ns}",
            f"k8s:io.cilium.k8s.policy.serviceaccount={app}",
            f"k8s:io.kubernetes.pod.namespace={ns}",
        ],
        workloads=[flow_pb.Workload(name=app, kind="Deployment")],
        cluster_name="kind-kind",
    )


def sample_flows(count: int, seed: int = 1, start_ns: int = 1_767_225_600_000_000_000) -> list[GetFlowsResponse]:
    """`count` realistic L3/L4 TCP flows between the demo shop's services (600-800 bytes each,
    like a real agent's), one millisecond apart."""
    rng = random.Random(seed)
    out = []
    for index in range(count):
        src_app, dst_app = rng.sample(_APPS, 2)
        node = rng.choice(_NODES)
        dropped = rng.random() < 0.05
        flow = flow_pb.Flow(
            uuid=f"{rng.getrandbits(64):016x}-{index:08x}",
            verdict=flow_pb.DROPPED if dropped else flow_pb.FORWARDED,
            drop_reason_desc=flow_pb.POLICY_DENIED if dropped else 0,
            ethernet=flow_pb.Ethernet(source="0a:58:0a:f4:01:0b", destination="0a:58:0a:f4:01:01"),
            IP=flow_pb.IP(source=f"10.244.{rng.randrange(4)}.{rng.randrange(2, 250)}",
                          destination=f"10.244.{rng.randrange(4)}.{rng.randrange(2, 250)}",
                          ipVersion=flow_pb.IPv4),
            l4=flow_pb.Layer4(TCP=flow_pb.TCP(source_port=rng.randrange(32768, 60999), destination_port=8080,
                                              flags=flow_pb.TCPFlags(ACK=True, PSH=rng.random() < 0.5))),
            source=_endpoint(rng, src_app),
            destination=_endpoint(rng, dst_app),
            Type=flow_pb.L3_L4,
            node_name=node,
            node_labels=["beta.kubernetes.io/arch=amd64", "kubernetes.io/os=linux", f"kubernetes.io/hostname={node}"],
            event_type=flow_pb.CiliumEventType(type=1 if dropped else 4),
            traffic_direction=flow_pb.EGRESS,
            trace_observation_point=flow_pb.TO_ENDPOINT,
            is_reply=None,
            interface=flow_pb.NetworkInterface(index=rng.randrange(2, 40), name="lxc1a2b3c4d5e6f"),
            Summary="TCP Flags: ACK, PSH",
        )
        flow.is_reply.value = False
        flow.time.FromNanoseconds(start_ns + index * 1_000_000)
        out.append(GetFlowsResponse(flow=flow, node_name=node, time=flow.time))
    return out


def grpc_frame(message: bytes) -> bytes:
    """One gRPC length-prefixed message: uncompressed flag, 4-byte big-endian length, payload."""
    return b"\x00" + struct.pack(">I", len(message)) + message


class MessageTape:
    """The encoded pool laid end to end; byte ranges of it, repeated cyclically, are responses."""

    def __init__(self, messages: list[bytes]) -> None:
        framed = [grpc_frame(m) for m in messages]
        self.blob = b"".join(framed)
        self.ends = []  # cumulative end offset of each framed message
        total = 0
        for item in framed:
            total += len(item)
            self.ends.append(total)

    def length_of(self, count: int) -> int:
        """Bytes taken by the first `count` messages of the endless repetition."""
        loops, rest = divmod(count, len(self.ends))
        return loops * len(self.blob) + (self.ends[rest - 1] if rest else 0)

    def messages_in(self, length: int) -> int:
        loops, rest = divmod(length, len(self.blob))
        return loops * len(self.ends) + bisect.bisect_right(self.ends, rest)

    def read(self, offset: int, size: int) -> bytes:
        start = offset % len(self.blob)
        chunk = self.blob[start: start + size]
        while len(chunk) < size:  # wrap around, as often as the tape is short
            chunk += self.blob[: size - len(chunk)]
        return chunk


class _Stream:
    def __init__(self, stream_id: int, path: str) -> None:
        self.stream_id = stream_id
        self.path = path
        self.body = bytearray()
        self.sent = 0
        self.total: int | None = None  # bytes to send; None while not started; -1 endless


class FastObserverServer:
    """Serves GetFlows from a MessageTape on a plain socket, one thread per connection."""

    def __init__(self, tape: MessageTape, *, host: str = "127.0.0.1", port: int = 0, default_count: int = 1_000_000):
        self.tape = tape
        self.default_count = default_count
        self._listener = socket.create_server((host, port))
        self.address = "%s:%d" % self._listener.getsockname()[:2]
        self._closing = False
        self.streams_served = 0

    def serve_forever(self) -> None:
        while not self._closing:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_connection, args=(sock,), daemon=True).start()

    def start(self) -> FastObserverServer:
        threading.Thread(target=self.serve_forever, name="fast-server", daemon=True).start()
        return self

    def stop(self) -> None:
        self._closing = True
        self._listener.close()

    def _serve_connection(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        streams: dict[int, _Stream] = {}
        try:
            while True:
                sending = [s for s in streams.values() if s.total is not None]
                if sending and self._pump(conn, sending, streams):
                    sock.sendall(conn.data_to_send())
                    if not select.select([sock], [], [], 0)[0]:
                        continue  # keep sending while nothing arrives
                data = sock.recv(1 << 16)
                if not data:
                    return
                for event in conn.receive_data(data):
                    self._on_event(conn, event, streams)
                sock.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            return
        finally:
            sock.close()

    def _on_event(self, conn, event, streams: dict[int, _Stream]) -> None:
        if isinstance(event, h2.events.RequestReceived):
            path = dict(event.headers).get(":path", "")
            streams[event.stream_id] = _Stream(event.stream_id, path)
        elif isinstance(event, h2.events.DataReceived):
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if event.stream_id in streams:
                streams[event.stream_id].body += event.data
        elif isinstance(event, h2.events.StreamEnded) and event.stream_id in streams:
            self._start_response(conn, streams[event.stream_id], streams)
        elif isinstance(event, h2.events.StreamReset):
            streams.pop(event.stream_id, None)

    def _start_response(self, conn, stream: _Stream, streams: dict[int, _Stream]) -> None:
        if stream.path != "/observer.Observer/GetFlows":
            conn.send_headers(stream.stream_id, [(":status", "200"), ("content-type", "application/grpc"),
                                                 ("grpc-status", _GRPC_UNIMPLEMENTED),
                                                 ("grpc-message", f"{stream.path} not served here")],
                              end_stream=True)
            streams.pop(stream.stream_id)
            return
        request = GetFlowsRequest.FromString(bytes(stream.body[5:]))
        conn.send_headers(stream.stream_id, [(":status", "200"), ("content-type", "application/grpc")])
        stream.total = -1 if request.follow else self.tape.length_of(request.number or self.default_count)
        self.streams_served += 1

    def _pump(self, conn, sending: list[_Stream], streams: dict[int, _Stream]) -> bool:
        """Queue as much response data as flow control allows; True when something was queued."""
        queued = False
        budget = 1 << 20  # then let the caller flush and look for incoming frames
        for stream in sending:
            while budget > 0:
                window = min(conn.local_flow_control_window(stream.stream_id), budget)
                remaining = (1 << 62) if stream.total == -1 else stream.total - stream.sent
                size = min(window, conn.max_outbound_frame_size, remaining)
                if size <= 0:
                    break
                conn.send_data(stream.stream_id, self.tape.read(stream.sent, size))
                stream.sent += size
                budget -= size
                queued = True
            if stream.total != -1 and stream.sent >= stream.total:
                conn.send_headers(stream.stream_id, [("grpc-status", "0")], end_stream=True)
                streams.pop(stream.stream_id, None)
                queued = True
        return queued


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0 picks a free one)")
    parser.add_argument("--count", type=int, default=1_000_000, help="flows per request without `number`")
    parser.add_argument("--pool", type=int, default=4096, help="distinct flows encoded and repeated")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    tape = MessageTape([r.SerializeToString() for r in sample_flows(args.pool)])
    server = FastObserverServer(tape, host=host or "127.0.0.1", port=int(port), default_count=args.count)
    print(f"fast_server: serving GetFlows on {server.address} ({len(tape.blob) / len(tape.ends):.0f} bytes/flow "
          f"on the wire)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
