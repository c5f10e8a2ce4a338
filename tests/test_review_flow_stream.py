"""Review tests for FlowStream: each pins a bug found by driving restart/stop at awkward moments."""

from __future__ import annotations

import socket
import time

from kcockpit.model.store import FlowStore
from kcockpit.sources.hubble import FlowStream, StreamState, StreamStatus
from kcockpit.wire.connection import HubbleConnection
from polling import wait_until


def test_a_restart_while_connecting_does_not_skip_the_next_backoff() -> None:
    # The server accepts TCP but never speaks HTTP/2, so each attempt lasts the dial timeout.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        states: list[tuple[float, StreamState]] = []
        # The dial timeout is the window for restarting while connecting: wide enough that a
        # loaded machine still restarts inside it (0.3 s was not: the restart then landed in
        # the backoff, which it rightly cuts short, and the test failed).
        stream = FlowStream(HubbleConnection(address, timeout=1.5), FlowStore(10), backoff=lambda attempt: 5.0)
        stream.add_listener(lambda state: states.append((time.monotonic(), state)))
        stream.start()
        try:
            wait_until(lambda: stream.state.status is StreamStatus.CONNECTING)
            stream.restart()  # e.g. the user changed the filter while it was still dialling
            assert not any(s.status is StreamStatus.RETRYING for _, s in states), "restarted after the dial timed out"
            wait_until(lambda: any(s.status is StreamStatus.RETRYING for _, s in states))
            time.sleep(0.3)
            retrying_at = next(t for t, s in states if s.status is StreamStatus.RETRYING)
            after = [s.status for t, s in states if t > retrying_at]
            assert StreamStatus.CONNECTING not in after, "the 5 s backoff was skipped"
            assert stream.state.status is StreamStatus.RETRYING and stream.state.attempts == 1
        finally:
            stream.stop()
            assert stream.join(10)


def test_a_restart_right_after_an_unexpected_failure_runs_again() -> None:
    from observer_fixture import FixtureServer, make_flow_response

    class StoreThatFailsOnce(FlowStore):
        failed = False

        def append(self, record) -> None:
            if not self.failed:
                self.failed = True
                raise RuntimeError("disk on fire")
            super().append(record)

    server = FixtureServer().start()
    server.servicer.publish(make_flow_response(1))
    try:
        store = StoreThatFailsOnce(10)
        stream = FlowStream(HubbleConnection(server.address), store, number=1, follow=False)
        restarted: list[bool] = []

        def on_state(state: StreamState) -> None:
            # The user re-applies the filter the moment the error shows: the failed reader is
            # still closing its channel then.
            if state.status is StreamStatus.ERROR and not restarted:
                restarted.append(True)
                stream.restart()

        stream.add_listener(on_state)
        stream.start()
        wait_until(lambda: stream.state.status is StreamStatus.ENDED)
        assert stream.join(5)
        assert [r.uuid for r in store.snapshot()] == ["f-1"]
    finally:
        server.stop()
