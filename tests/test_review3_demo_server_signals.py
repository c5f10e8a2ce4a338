"""Review 3: `kcockpit demo-server` could hang for good on Ctrl+C with clients connected.

The stop signal's handler called threading.Event.set(), which takes the Event's lock.
Python runs signal handlers in the main thread between bytecodes, and they nest: a second
SIGINT arriving while the first handler held that lock (a burst of Ctrl+C, `timeout`
forwarding one more, the GIL handed to the busy pump/stream threads in between) ran the
handler again inside it, and it waited for its own lock forever. The main thread never got
to `cluster.stop()`, so follow streams and watches went on being served (the reported
dump: threads parked in `_follow` and `_watch`). The handler is now a no-op and the main
thread wakes on the signal wakeup pipe."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import grpc
import pytest

from kcockpit.wire.hubble_pb import observer_pb

STOP_DEADLINE_S = 20.0  # generous: a loaded 2-core machine


def _burst(pid: int, number: int, count: int = 200) -> None:
    """`count` signals as fast as they go (microseconds apart): some land while a handler runs."""
    for _ in range(count):
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            return


def test_stop_signals_survive_signal_bursts_while_other_threads_hold_the_gil() -> None:
    # The stop wait alone, with two threads contending for the GIL as the pump and streams
    # do: with an Event set from the handler this hung in about one burst in twenty.
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import sys, threading
            from kcockpit.sim.cli import StopSignals
            def busy():
                while True:
                    sum(range(1000))
            for _ in range(2):
                threading.Thread(target=busy, daemon=True).start()
            sys.setswitchinterval(0.0005)
            for _ in range(int(sys.argv[1])):
                with StopSignals() as stop_signals:
                    print("ready", flush=True)
                    number = stop_signals.wait()
                print("got", number, flush=True)
            """
        ), "300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(child.stdout), daemon=True)
    reader.start()
    try:
        for round_ in range(300):
            deadline = time.monotonic() + STOP_DEADLINE_S
            while lines.count("ready\n") <= round_:
                assert child.poll() is None, child.stderr.read()
                assert time.monotonic() < deadline, f"round {round_}: child never got ready: {lines[-3:]}"
                time.sleep(0.005)
            _burst(child.pid, signal.SIGINT)
            while sum(line.startswith("got") for line in lines) <= round_:
                assert child.poll() is None, child.stderr.read()
                if time.monotonic() > deadline:
                    os.kill(child.pid, signal.SIGKILL)
                    pytest.fail(f"round {round_}: StopSignals.wait still waiting {STOP_DEADLINE_S:g} s after a burst of SIGINTs")
                time.sleep(0.005)
            assert [line for line in lines if line.startswith("got")][round_] == f"got {int(signal.SIGINT)}\n"
        assert child.wait(timeout=STOP_DEADLINE_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def _start_with_clients(tmp_path) -> tuple[subprocess.Popen, list[str], list]:
    server = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "kcockpit", "demo-server", "--listen", "127.0.0.1:0",
         "--kube-api", "127.0.0.1:0", "--kubeconfig-out", str(tmp_path / "kubeconfig"), "--metrics", "127.0.0.1:0",
         "--backfill", "1", "--rate", "2000", "--scenario", "broken"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    errors: list[str] = []
    threading.Thread(target=lambda: errors.extend(server.stderr), daemon=True).start()  # never let stderr fill up
    lines = [server.stdout.readline() for _ in range(5)]
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
    observer = re.search(r"on (127\.0\.0\.1:\d+)", lines[0])
    kube = next((re.search(r"kube-api: http://(127\.0\.0\.1):(\d+)", line) for line in lines if "kube-api:" in line), None)
    assert observer and kube, lines
    channel = grpc.insecure_channel(observer.group(1))
    follow = channel.unary_stream(
        "/observer.Observer/GetFlows",
        request_serializer=observer_pb.GetFlowsRequest.SerializeToString,
        response_deserializer=lambda raw: raw,
    )(observer_pb.GetFlowsRequest(follow=True, number=10))
    next(follow)  # the stream is open and answering
    threading.Thread(target=lambda: [None for _ in follow], daemon=True).start()

    watch = socket.create_connection((kube.group(1), int(kube.group(2))), timeout=STOP_DEADLINE_S)
    watch.sendall(b"GET /apis/networking.k8s.io/v1/networkpolicies?watch=1 HTTP/1.1\r\nHost: kube\r\n\r\n")
    assert watch.recv(64).startswith(b"HTTP/1.1 200"), "the watch did not start"
    return server, errors, [channel, follow, watch]


def _assert_stops(server: subprocess.Popen, errors: list[str], after: str) -> None:
    try:
        code = server.wait(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.kill(server.pid, signal.SIGABRT)  # faulthandler prints every thread's stack
        server.wait()
        time.sleep(0.5)
        pytest.fail(f"demo-server still running {STOP_DEADLINE_S:g} s after {after}:\n" + "".join(errors)[-8000:])
    deadline = time.monotonic() + 5
    while "stopped" not in "".join(errors) and time.monotonic() < deadline:
        time.sleep(0.01)
    stderr = "".join(errors)
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert "kcockpit demo-server: stopped" in stderr


def _close(server: subprocess.Popen, clients: list) -> None:
    channel, follow, watch = clients
    watch.close()
    follow.cancel()
    channel.close()
    if server.poll() is None:
        server.kill()
        server.wait()


@pytest.mark.parametrize("attempt", range(3))
def test_a_burst_of_sigints_stops_the_demo_server_with_a_follow_stream_and_a_watch_open(tmp_path, attempt: int) -> None:
    server, errors, clients = _start_with_clients(tmp_path)
    try:
        _burst(server.pid, signal.SIGINT)
        _assert_stops(server, errors, "a burst of SIGINTs")
    finally:
        _close(server, clients)


def test_sigterm_stops_the_demo_server_with_a_follow_stream_and_a_watch_open(tmp_path) -> None:
    server, errors, clients = _start_with_clients(tmp_path)
    try:
        os.kill(server.pid, signal.SIGTERM)
        _assert_stops(server, errors, "SIGTERM")
    finally:
        _close(server, clients)
