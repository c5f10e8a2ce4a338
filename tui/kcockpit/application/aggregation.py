"""Feeding the aggregates: every flow once, whatever the Flows tab is filtering.

The Flows tab asks its server for what its filter matches; the aggregates must count
everything, or a "100% of lookups dropped" would only mean "100% of the drops you asked
for". So a live source (a Hubble server, Relay, the demo) feeds the aggregates through a
stream of its own, unfiltered, and that stream and the per-flow counting run in a child
process: on the machine's second core, never in the UI's way. The child sends Deltas of
per-second cells back through a pipe (their size follows the active keys, not the flows);
a thread here merges them into the FlowAggregates the tabs read.

A capture file is counted once, on a thread, from the records it loaded.

The child is watched: if it dies it is restarted (resuming after the newest flow counted)
and the feed's state says so; it exits on its own when this process goes away (its end of
the pipe closes), so no child outlives the cockpit.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kcockpit.model.aggregates import Accumulator, FlowAggregates
from kcockpit.model.record import FlowRecord

SEND_INTERVAL_S = 0.25  # how often the child hands over what it counted
HISTORY_FLOWS = 20_000  # flows asked for when the stream starts, so the tabs are not empty at first
CHILD_STORE = 65_536  # flows the child's stream may buffer between two counting passes
RESTART_DELAY_S = 1.0
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class FeedState:
    state: str  # starting, live, retrying, restarting, done, stopped, error
    detail: str = ""


class AggregateFeed:
    """Base: fills `aggregates`, says how it is doing."""

    def __init__(self, aggregates: FlowAggregates | None = None, clock: Callable[[], float] = time.time) -> None:
        self.aggregates = aggregates or FlowAggregates()
        self._clock = clock
        self._state = FeedState("starting")
        self._merged_at = clock()  # wall time of the last merge that carried flows

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop feeding (blocking for at most a few seconds; call it off the event loop)."""

    def state(self) -> FeedState:
        return self._state

    def now_s(self) -> int:
        """'Now' in flow time for the windows: the newest flow counted, moved on by the wall
        time since, so a quiet stream's windows empty as time passes, whatever the skew
        between this machine's clock and the cluster's."""
        newest = self.aggregates.last_ns
        if not newest:
            return int(self._clock())
        return int(newest / NS + max(0.0, self._clock() - self._merged_at))

    def _merged(self, delta) -> None:
        self.aggregates.merge(delta)
        if delta.flows:
            self._merged_at = self._clock()


class RecordsFeed(AggregateFeed):
    """Counts a fixed set of records (a capture) once, on a thread."""

    def __init__(self, records: Iterable[FlowRecord], aggregates: FlowAggregates | None = None, **kwargs) -> None:
        super().__init__(aggregates, **kwargs)
        self._records = records
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._count, name="kcockpit-aggregate-records", daemon=True)
        self._thread.start()

    def _count(self) -> None:
        accumulator = Accumulator()
        batch: list[bytes] = []
        for record in self._records:
            batch.append(record.raw)
            if len(batch) >= 4096:
                accumulator.add_raw(batch)
                self._merged(accumulator.take())
                batch = []
        accumulator.add_raw(batch)
        accumulator.expire(self.aggregates.last_ns + 6 * NS)  # nothing follows the capture's end
        self._merged(accumulator.take())
        self._state = FeedState("done", f"{self.aggregates.flows} flows counted")

    def now_s(self) -> int:
        return self.aggregates.now_s()  # a capture's windows end at its newest flow

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join(5)


class StreamFeed(AggregateFeed):
    """A GetFlows stream of its own, unfiltered, counted in a child process."""

    def __init__(self, connection, aggregates: FlowAggregates | None = None, *, history: int = HISTORY_FLOWS, **kwargs) -> None:
        super().__init__(aggregates, **kwargs)
        self.connection = connection
        self.history = history
        self.restarts = 0
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._process = None
        self._pipe = None

    def start(self) -> None:
        self._watcher = threading.Thread(target=self._watch, name="kcockpit-aggregate-feed", daemon=True)
        self._watcher.start()

    @property
    def child_pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def _spawn(self, since_ns: int | None):
        """A fresh interpreter running `run_child` (not a fork: grpc's threads do not survive
        one), talking pickled messages over two pipes; its stderr goes nowhere, so nothing
        it prints can reach the cockpit's screen."""
        commands_read, commands_write = os.pipe()
        deltas_read, deltas_write = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "kcockpit.application.aggregation", str(commands_read), str(deltas_write)],
                pass_fds=(commands_read, deltas_write), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": _package_root()},
            )
        finally:
            os.close(commands_read)
            os.close(deltas_write)
        pipe = _Pipe(deltas_read, commands_write)
        pipe.send(("start", (self.connection, self.history if since_ns is None else None, since_ns, os.getpid())))
        return process, pipe

    def _watch(self) -> None:
        since_ns = None
        while not self._stopping.is_set():
            try:
                self._process, self._pipe = self._spawn(since_ns)
            except OSError as error:
                self._state = FeedState("error", f"cannot start the aggregator process: {error}")
                return
            ended = self._receive(self._pipe)
            if self._stopping.is_set():
                return
            self.restarts += 1
            code = self._process.wait(5) if self._process is not None else None
            self._state = FeedState("restarting", f"the aggregator process ended ({ended}{'' if code is None else f', exit code {code}'}); restarted")
            since_ns = self.aggregates.last_ns or None
            self._stopping.wait(RESTART_DELAY_S)

    def _receive(self, pipe) -> str:
        while True:
            try:
                kind, payload = pipe.recv()
            except (EOFError, OSError):
                return "its pipe closed"
            except Exception as error:  # a message that cannot be read: restart rather than stall
                return f"unreadable message: {error}"
            if kind == "delta":
                self._merged(payload)
            elif kind == "state":
                state, detail = payload
                self._state = FeedState(state, detail)

    def stop(self) -> None:
        self._stopping.set()
        pipe, process = self._pipe, self._process
        if pipe is not None:
            try:
                pipe.send(("stop", None))
            except (OSError, ValueError):
                pass
        if process is not None:
            try:
                process.wait(3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(2)
        if pipe is not None:
            pipe.close()
        if self._watcher is not None:
            self._watcher.join(3)
        self._state = FeedState("stopped")


class _Pipe:
    """Pickled messages over a pair of OS pipes (multiprocessing's framing, without its
    process management)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        from multiprocessing.connection import Connection

        self._in = Connection(read_fd, writable=False)
        self._out = Connection(write_fd, readable=False)

    def send(self, message) -> None:
        self._out.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def recv(self):
        return pickle.loads(self._in.recv_bytes())

    def poll(self, timeout: float) -> bool:
        return self._in.poll(timeout)

    def close(self) -> None:
        self._in.close()
        self._out.close()


def _package_root() -> str:
    """The directory holding the kcockpit package, first on the child's path, so the child
    runs this very code (a checkout, an editable or a regular install alike)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    existing = os.environ.get("PYTHONPATH")
    return root + (os.pathsep + existing if existing else "")


def run_child(connection, pipe, history: int | None, since_ns: int | None, parent_pid: int) -> None:
    """The aggregator: its own unfiltered follow stream into a small store, counted every
    SEND_INTERVAL_S and handed over as a Delta. Ends on "stop", when the pipe closes, or when
    the parent process is gone."""
    from kcockpit.model.store import FlowStore
    from kcockpit.sources.hubble import FlowStream

    store = FlowStore(CHILD_STORE)
    stream = FlowStream(connection, store, number=history, follow=True, since=since_ns)
    accumulator = Accumulator()
    mark = 0
    missed = 0
    last_state: tuple[str, str] | None = None
    newest_ns, newest_at = 0, time.time()
    stream.start()
    try:
        while True:
            if pipe.poll(SEND_INTERVAL_S):
                kind, _ = pipe.recv()
                if kind == "stop":
                    return
            if os.getppid() != parent_pid:
                return
            received = store.received
            records, mark_after = store.since(mark)
            missed += (received - mark) - len(records) if received >= mark else 0
            mark = mark_after
            if records:
                accumulator.add_raw(r.raw for r in records)
                newest_ns, newest_at = max(newest_ns, records[-1].time_ns), time.time()
            elif newest_ns:
                # No flows: let lookups that waited 5 s become unanswered as time goes on.
                accumulator.expire(newest_ns + int((time.time() - newest_at) * NS))
            state = stream.state
            detail = state.error or ""
            if missed:
                detail = (detail + "; " if detail else "") + f"{missed} flows arrived faster than they could be counted"
            current = (state.status.value, detail)
            if current != last_state:  # before the flows it explains
                pipe.send(("state", current))
                last_state = current
            delta = accumulator.take()
            if delta:
                pipe.send(("delta", delta))
    except (EOFError, OSError, BrokenPipeError):
        return
    finally:
        stream.stop()
        stream.join(2)


def _child_main(argv: list[str]) -> int:
    pipe = _Pipe(int(argv[0]), int(argv[1]))
    try:
        kind, payload = pipe.recv()
    except (EOFError, OSError):
        return 0
    if kind != "start":
        return 2
    try:
        run_child(*payload[:1], pipe, *payload[1:])
    except Exception as error:  # say why before going: the parent shows it and restarts us
        try:
            pipe.send(("state", ("error", f"aggregator failed: {type(error).__name__}: {error}")))
        except OSError:
            pass
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
