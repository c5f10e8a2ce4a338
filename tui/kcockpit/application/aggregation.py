"""Feeding the aggregates: every flow once, on the second core, whatever the Flows tab filters.

The per-flow counting (`model.aggregates.Accumulator`) runs in a child process, a fresh
interpreter talking pickled messages over two pipes; a thread here merges the Deltas it
sends back (per-second cells: their size follows the active keys, not the flows) into the
FlowAggregates the tabs read.

What the child counts must be every flow. While the session's stream is unfiltered, a tap
thread here ships the wire bytes of what the stream stored to the child in large batches
(cheap: no decoding on this side). The Flows tab's filter is also sent to the server, and
from then on that stream only carries matching flows: "100% of lookups dropped" would only
mean "100% of the drops you asked for". So at the first server-side filter the feed
*detaches*: the child opens an unfiltered GetFlows stream of its own, resuming after the
newest flow it counted, and keeps it for the rest of the session.

The child is watched: if it dies, or stops answering (it sends at least a heartbeat every
SEND_INTERVAL_S), it is ended and restarted (a detached one resumes after the newest flow
counted); the state, `restarts` and `last_exit` say so, for the status bar and a notice. It
exits by itself when this process goes away (its pipe closes, or its parent changes), so
no child outlives the cockpit.

A capture file is counted once, on a thread, from the records it loaded.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kcockpit.application.status import Part, compact_count
from kcockpit.model.aggregates import Accumulator, FlowAggregates
from kcockpit.model.blocks import FlowBytesLost
from kcockpit.model.record import FlowRecord
from kcockpit.model.store import pack_records, unpack_records

SEND_INTERVAL_S = 0.25  # how often the child hands over what it counted
TAP_INTERVAL_S = 0.05  # how often the tap ships what the session's stream stored
TAP_BATCH = 8192  # flows per message to the child at most
CHILD_STORE = 65_536
OWN_HISTORY_FLOWS = 5_000  # per node through Relay: the history a stream of its own starts with  # flows a detached child's own stream may buffer between two counting passes
RESTART_DELAY_S = 1.0
STALL_S = 10.0  # a child silent this long is stuck (it sends every SEND_INTERVAL_S): ended and restarted
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
        self.restarts = 0  # times the counting process died and was started again
        self.missed = 0  # flows the store let go of before they could be counted
        self.last_exit = ""  # how it last ended: "its pipe closed, exit code -9"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop feeding (blocks for at most a few seconds: call it off the event loop)."""

    def detach(self) -> None:
        """The session's stream is about to carry only what the Flows tab filters."""

    def state(self) -> FeedState:
        return self._state

    def status_part(self) -> Part | None:
        """The status bar's word on the counting behind the Services, DNS and Policies tabs,
        when there is one: restarting, failed or retrying (with the restarts so far), else
        how many times the counting process was restarted, which stays shown."""
        state = self._state.state
        restarted = f" ↻{self.restarts}" if self.restarts else ""
        missed = self.missed
        uncounted = f" {compact_count(missed)} uncounted" if missed else ""
        if state in ("restarting", "error", "retrying"):
            return Part(f"aggregator {state}{restarted}{uncounted}", "warning", 1)
        if self.restarts or missed:
            return Part(f"aggregator{restarted}{uncounted}", "warning", 3)
        return None

    def restart_notice(self) -> str:
        """What the cockpit says once the counting process was restarted."""
        return f"aggregator restarted ({self.restarts}): {self.last_exit}; the counts go on (flows in flight may be missing)"

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
        """Count every record whose bytes can still be read; a failure is said in the state,
        never left as a feed "starting" forever."""
        try:
            unreadable = self._count_records()
        except Exception as error:  # noqa: BLE001 - the status bar says it; the tabs keep what was counted
            self._state = FeedState("error", f"counting the capture failed: {type(error).__name__}: {error}")
            return
        lost = f", {unreadable} not (their stored bytes are unreadable)" if unreadable else ""
        self._state = FeedState("done", f"{self.aggregates.flows} flows counted{lost}")

    def _count_records(self) -> int:
        """Count the records; returns how many could not be read."""
        accumulator = Accumulator()
        batch: list[bytes] = []
        unreadable = 0
        for record in self._records:
            try:
                batch.append(record.raw)
            except FlowBytesLost:  # its compressed block is damaged: nothing left to count
                unreadable += 1
                continue
            if len(batch) >= 4096:
                accumulator.add_raw(batch)
                self._merged(accumulator.take())
                batch = []
        self._records = ()  # counted: let the records go
        accumulator.add_raw(batch)
        accumulator.expire(self.aggregates.last_ns + 6 * NS)  # nothing follows the capture's end
        self._merged(accumulator.take())
        return unreadable

    def now_s(self) -> int:
        return self.aggregates.now_s()  # a capture's windows end at its newest flow

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join(5)


class StreamFeed(AggregateFeed):
    """Counts a live session's flows in a child process: shipped from `store` while the
    session's stream is unfiltered, from a stream of the child's own once detached."""

    def __init__(self, connection, store, aggregates: FlowAggregates | None = None, **kwargs) -> None:
        super().__init__(aggregates, **kwargs)
        self.connection = connection
        self.store = store
        self.detached = False
        self.shipped = 0  # flows sent to the child
        self._mark = store.received  # the store's flows before us are history the child is not sent
        self._shipped_newest_ns = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # one sender on the pipe at a time
        self._watcher: threading.Thread | None = None
        self._tap: threading.Thread | None = None
        self._process: subprocess.Popen | None = None
        self._pipe: _Pipe | None = None

    def start(self) -> None:
        self._mark = 0  # everything the store holds now is counted too
        self._watcher = threading.Thread(target=self._watch, name="kcockpit-aggregate-feed", daemon=True)
        self._watcher.start()
        self._tap = threading.Thread(target=self._run_tap, name="kcockpit-aggregate-tap", daemon=True)
        self._tap.start()

    @property
    def child_pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    # --- the child ----------------------------------------------------------------------

    def _spawn(self) -> tuple[subprocess.Popen, _Pipe]:
        """A fresh interpreter running `run_child` (not a fork: grpc's threads do not survive
        one); its stdout and stderr go nowhere, so nothing it prints reaches the screen."""
        commands_read, commands_write = os.pipe()
        deltas_read, deltas_write = os.pipe()
        _widen(commands_write)  # flows go this way: fewer, larger writes
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
        pipe.send(("start", (self.connection, os.getpid())))
        return process, pipe

    def _watch(self) -> None:
        while not self._stopping.is_set():
            try:
                process, pipe = self._spawn()
            except OSError as error:
                self._state = FeedState("error", f"cannot start the aggregator process: {error}")
                return
            with self._lock:
                self._process, self._pipe = process, pipe
                if self.detached:
                    self._send(("own", self.aggregates.last_ns or None))
                else:
                    self._state = FeedState("live")
            ended = self._receive(pipe)
            if self._stopping.is_set():
                return
            if ended.startswith("it stopped answering"):
                process.kill()
            try:
                code = process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait(5)
            with self._lock:
                self._pipe = None
            pipe.close()
            self.last_exit = f"it ended ({ended}, {_exit_words(code)})"
            self.restarts += 1
            self._state = FeedState("restarting", f"the aggregator process ended ({ended}, exit code {code}); restarting")
            self._stopping.wait(RESTART_DELAY_S)

    def _receive(self, pipe: _Pipe) -> str:
        """Merge what the child sends until it ends; returns how it ended. A child that says
        nothing for STALL_S (it sends at least a heartbeat every SEND_INTERVAL_S) is stuck:
        stopped, deadlocked, or starved. It is ended, and restarted like a dead one."""
        while True:
            try:
                if not pipe.poll(STALL_S):
                    return f"it stopped answering for {STALL_S:g} s"
                kind, payload = pipe.recv()
            except (EOFError, OSError):
                return "its pipe closed"
            except Exception as error:  # a message that cannot be read: restart rather than stall
                return f"unreadable message: {error}"
            if kind == "delta":
                self._merged(payload)
            elif kind == "state":
                self._state = FeedState(*payload)

    def _send(self, message) -> bool:
        """Send to the child (holding self._lock); False when there is no child to take it."""
        if self._pipe is None:
            return False
        try:
            self._pipe.send(message)
            return True
        except (OSError, ValueError):
            return False

    # --- the tap ------------------------------------------------------------------------

    def _run_tap(self) -> None:
        while not self._stopping.wait(TAP_INTERVAL_S):
            if self.detached:
                return
            self._ship()

    def _ship(self) -> None:
        """Send the child what the store received since the last call, in large batches."""
        records, mark = self.store.since(self._mark)
        self.missed += max(0, (mark - self._mark) - len(records))
        if not records:
            self._mark = mark
            return
        with self._lock:
            if self.detached:
                return
            for start in range(0, len(records), TAP_BATCH):
                batch = records[start:start + TAP_BATCH]
                # Sealed blocks go as they are stored, compressed: ~20x fewer bytes through
                # the pipe and nothing decompressed here (the child does it).
                if not self._send(("flows", pack_records(batch))):
                    self._mark = mark - len(records) + start  # the rest waits in the store for the next child
                    return
                self.shipped += len(batch)
                self._shipped_newest_ns = max(self._shipped_newest_ns, batch[-1].time_ns)
            self._mark = mark

    def detach(self) -> None:
        """Ship what is stored, then let the child follow every flow on its own stream, from
        the newest flow shipped on."""
        if self.detached:
            return
        self._ship()
        with self._lock:
            self.detached = True
            self._send(("own", self._shipped_newest_ns or None))

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._send(("stop", None))
            pipe, process = self._pipe, self._process
        if process is not None:
            try:
                process.wait(3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(2)
        for thread in (self._watcher, self._tap):
            if thread is not None:
                thread.join(3)
        if pipe is not None:
            pipe.close()
        self._state = FeedState("stopped")


def _exit_words(code: int) -> str:
    """A child's exit status as a person reads it: "killed by SIGKILL", "exit code 1"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


F_SETPIPE_SZ = 1031  # Linux fcntl: a pipe's buffer size


def _widen(fd: int, size: int = 1 << 20) -> None:
    """A 1 MiB pipe buffer instead of 64 KiB: shipping flows costs half the CPU (fewer
    wake-ups of the child). Where the system refuses, the default stays."""
    try:
        import fcntl

        fcntl.fcntl(fd, F_SETPIPE_SZ, size)
    except (ImportError, OSError):
        pass


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


# --- the child process ------------------------------------------------------------------------

class _OwnStream:
    """A detached child's unfiltered follow stream, counted from a small store."""

    def __init__(self, connection, since_ns: int | None) -> None:
        from kcockpit.model.store import FlowStore
        from kcockpit.sources.hubble import FlowStream

        self.store = FlowStore(CHILD_STORE)
        self.after_ns = since_ns or 0  # flows at or before it were counted from the shipped ones
        # Detached before anything was shipped (a --filter at start): begin with history, as
        # the session's stream would have, instead of only what happens from now on.
        self.stream = FlowStream(connection, self.store, follow=True, since=since_ns,
                                 number=None if since_ns else OWN_HISTORY_FLOWS)
        self.mark = 0
        self.missed = 0
        self.stream.start()

    def take(self) -> list[bytes]:
        received = self.store.received
        records, mark = self.store.since(self.mark)
        self.missed += max(0, (received - self.mark) - len(records))
        self.mark = mark
        after = self.after_ns
        return [r.raw for r in records if r.time_ns > after]

    def state(self) -> tuple[str, str]:
        state = self.stream.state
        detail = state.error or ""
        if self.missed:
            detail = (detail + "; " if detail else "") + f"{self.missed} flows arrived faster than they could be counted"
        return state.status.value, detail

    def stop(self) -> None:
        self.stream.stop()
        self.stream.join(2)


def run_child(connection, pipe: _Pipe, parent_pid: int) -> None:
    """Count what the parent ships (or, once told "own", an unfiltered stream of our own),
    and hand over a Delta every SEND_INTERVAL_S. Ends on "stop", when the pipe closes, or
    when the parent is gone."""
    accumulator = Accumulator()
    own: _OwnStream | None = None
    newest_ns, newest_at = 0, time.time()
    last_state: tuple[str, str] | None = None
    next_send = time.monotonic() + SEND_INTERVAL_S
    try:
        while True:
            while pipe.poll(max(0.0, next_send - time.monotonic())):
                kind, payload = pipe.recv()
                if kind == "stop":
                    return
                if kind == "flows":
                    flows, _lost = unpack_records(payload)  # damaged blocks: nothing to count
                    accumulator.add_raw(flows)
                elif kind == "own" and own is None:
                    own = _OwnStream(connection, payload)
                if time.monotonic() >= next_send:
                    break
            next_send = time.monotonic() + SEND_INTERVAL_S
            if os.getppid() != parent_pid:
                return
            if own is not None:
                raws = own.take()
                if raws:
                    accumulator.add_raw(raws)
                state = own.state()
            else:
                state = ("live", "")
            if accumulator.newest_ns > newest_ns:
                newest_ns, newest_at = accumulator.newest_ns, time.time()
            elif newest_ns:
                # No new flows: lookups that waited 5 s become unanswered as time goes on.
                accumulator.expire(newest_ns + int((time.time() - newest_at) * NS))
            if state != last_state:  # before the flows it explains
                pipe.send(("state", state))
                last_state = state
            delta = accumulator.take()
            # Every round says something, a heartbeat at least: the parent tells a quiet
            # stream from a stuck child by it.
            pipe.send(("delta", delta) if delta else ("alive", None))
    except (EOFError, OSError):
        return
    finally:
        if own is not None:
            own.stop()


def _child_main(argv: list[str]) -> int:
    pipe = _Pipe(int(argv[0]), int(argv[1]))
    try:
        kind, payload = pipe.recv()
    except (EOFError, OSError):
        return 0
    if kind != "start":
        return 2
    connection, parent_pid = payload
    try:
        run_child(connection, pipe, parent_pid)
    except Exception as error:  # say why before going: the parent shows it and restarts us
        try:
            pipe.send(("state", ("error", f"aggregator failed: {type(error).__name__}: {error}")))
        except OSError:
            pass
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
