"""FlowStream: the live GetFlows stream from a Hubble server into a FlowStore, at full speed.

grpc.aio handles about 18k messages/s; a plain grpc channel with the SingleThreadedUnaryStream
option, read on a dedicated thread, ~135k/s; kcockpit's own HTTP/2 reader
(`wire.grpc_stream.StreamCall`, the default; `connection.stream_transport == "grpcio"` picks
the grpc channel) ~270k/s. So the stream runs on its own reader thread, keeps each
response's raw bytes (FlowRecord), and appends to the store's deque; the UI drains it on a
timer with `store.since(mark)`. Nothing is ever pushed into the event loop per flow.

    stream = FlowStream(connection, store, number=1000, follow=True)
    stream.add_listener(lambda state: app.call_from_thread(show, state))  # marshal to the UI!
    stream.start()
    ...
    stream.restart(whitelist=[...], blacklist=[...])   # new filters, the original request again
    stream.restart(whitelist=[...], resume=True)       # new filters, only flows newer than held
    await stream.aclose()

A follow stream survives server restarts and network faults: it retries with exponential
backoff (capped at `max_backoff` seconds, deterministic jitter from `seed`) and resumes with
`since` = the time of the last flow it received, skipping the flows at that instant it
already has (same time and uuid), so nothing the server still holds is lost or duplicated.
(A flow Relay delivers late, older than one already received, is not asked for again.)
stop() then start() resumes the same way. `number`, `first`, `follow`, `since` and `until`
are plain attributes: change them, then restart(), to send a different request.

Flows go into the store a batch at a time (what one socket read brought): one lock and one
deque extend per batch instead of per flow. While flows pour in, the reader hands the GIL
over at most every 2 ms, between batches (time.sleep(0)): otherwise the event loop waits up
to the interpreter's 5 ms switch interval per wake-up, which doubled the loop's timer lag
p99 in benchmarks/ingest.py (handing over every 64 flows cut the lag further but cost a
fifth of the throughput: sleep(0) takes ~60 us, the kernel's timer slack).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import Enum

import grpc
from google.protobuf.message import DecodeError

from kcockpit.model.record import FlowRecord
from kcockpit.model.store import FlowStore
from kcockpit.wire.connection import HubbleConnection, HubbleError
from kcockpit.wire.errors import describe_rpc_error
from kcockpit.wire.grpc_stream import StreamCall
from kcockpit.wire.trimmed_schema import trimmed_classes
from kcockpit.wire.hubble_client import GET_FLOWS_METHOD, TimeLike, flows_request, to_timestamp
from kcockpit.wire.hubble_pb import FlowFilter, GetFlowsRequest, GetFlowsResponse, relay_pb

__all__ = ["FlowStream", "StreamState", "StreamStatus", "NodeStatus", "exponential_backoff"]

# Codes that retrying cannot fix: report them and stop.
_PERMANENT = {
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
}


_HAND_OVER_INTERVAL = 0.002  # seconds between GIL hand-overs (each costs time.sleep(0), ~60 us)
_sleep = time.sleep
_monotonic = time.monotonic


class StreamStatus(str, Enum):
    CONNECTING = "connecting"  # request sent, transport not ready yet
    LIVE = "live"  # connected, flows arrive (or may arrive)
    RETRYING = "retrying"  # the stream failed; next attempt at `retry_at`
    ENDED = "ended"  # the server finished a non-follow request
    STOPPED = "stopped"  # stop() was called (or never started)
    ERROR = "error"  # failed for good (bad request, unimplemented, non-follow failure)


@dataclass(frozen=True, slots=True)
class StreamState:
    """A snapshot of the stream's connection state, given to listeners on every change."""

    status: StreamStatus
    address: str
    error: str = ""  # one line, naming the address; set while retrying and on error
    retry_at: float | None = None  # clock() time of the next attempt while retrying
    attempts: int = 0  # consecutive failed attempts since the stream was last live

    def retry_in(self, now: float) -> float:
        return max(0.0, self.retry_at - now) if self.retry_at is not None else 0.0

    def describe(self, now: float | None = None) -> str:
        """One line for a status bar: "live", "retrying in 3 s: <error>", ..."""
        if self.status is StreamStatus.RETRYING:
            wait = self.retry_in(time.time() if now is None else now)
            return f"retrying in {wait:.0f} s (attempt {self.attempts}): {self.error}"
        if self.status is StreamStatus.ERROR:
            return f"error: {self.error}"
        return f"{self.status.value} {self.address}"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """The latest node_status event Relay sent about one node."""

    name: str
    state: int  # relay_pb.NodeState
    message: str
    time_ns: int

    @property
    def state_name(self) -> str:
        return relay_pb.NodeState.Name(self.state) if self.state in relay_pb.NodeState.values() else str(self.state)


class _Session:
    """Controls of one reader thread: stop() and restart() talk to the current one only."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.wake = threading.Event()  # interrupts a backoff wait
        self.restart_requested = False
        self.restart_resets = True  # forget the resume position on restart
        self.finishing = False  # ended or failed for good: a restart needs a new session
        self.thread: threading.Thread
        self.on_connectivity: Callable[[grpc.ChannelConnectivity], None] | None = None

    def accepts_restart(self) -> bool:
        return self.thread.is_alive() and not self.stopping.is_set() and not self.finishing


def exponential_backoff(
    seed: int = 0, *, base: float = 0.5, cap: float = 10.0, jitter: float = 0.2
) -> Callable[[int], float]:
    """delay(attempt) = min(cap, base * 2**(attempt-1)), scaled by a seeded factor in [1-jitter, 1+jitter]
    (still capped). Deterministic for a given seed, so tests and recordings repeat."""
    rng = random.Random(seed)

    def delay(attempt: int) -> float:
        raw = min(cap, base * 2 ** max(0, attempt - 1))
        return min(cap, raw * (1 - jitter + 2 * jitter * rng.random()))

    return delay


class FlowStream:
    """GetFlows on a reader thread, appending FlowRecords to `store`.

    Thread model: `start`, `stop`, `restart`, `state`, `nodes` are safe to call from the event
    loop and never block it (`aclose` awaits the thread without blocking). Listeners added
    with `add_listener` are called FROM BACKGROUND THREADS (the reader thread, or grpc's
    connectivity thread for the switch to live), one at a time and in order: a Textual app
    must marshal with `app.call_from_thread` (or loop.call_soon_threadsafe) and must not
    block in them.
    """

    def __init__(
        self,
        connection: HubbleConnection,
        store: FlowStore,
        *,
        whitelist: Iterable[FlowFilter] = (),
        blacklist: Iterable[FlowFilter] = (),
        number: int | None = None,
        first: bool = False,
        follow: bool = True,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        backoff: Callable[[int], float] | None = None,
        seed: int = 0,
        max_backoff: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self.store = store
        self.number, self.first, self.follow = number, first, follow
        self.since = to_timestamp(since) if since is not None else None
        self.until = to_timestamp(until) if until is not None else None
        self._whitelist: tuple[FlowFilter, ...] = tuple(whitelist)
        self._blacklist: tuple[FlowFilter, ...] = tuple(blacklist)
        self._backoff = backoff or exponential_backoff(seed, cap=max_backoff)
        self._clock = clock
        self._state = StreamState(StreamStatus.STOPPED, connection.server)
        self._listeners: list[Callable[[StreamState], None]] = []
        self._nodes: dict[str, NodeStatus] = {}
        self._lock = threading.Lock()  # guards _session, _call and the session flags
        self._state_lock = threading.RLock()  # serialises state changes and listener calls
        self._session: _Session | None = None  # the current reader thread's controls
        self._call = None  # the GetFlows call in progress, for cancelling it
        # Resume bookkeeping (reader thread only): newest flow time and the flows at that instant.
        self._last_time_ns = -1
        self._at_last_time: list[FlowRecord] = []
        # Counters (written by the reader thread only).
        self.flows_received = 0
        self.node_status_events = 0
        self.lost_event_messages = 0
        self.duplicates_skipped = 0
        self.connects = 0  # attempts that went live
        self._attempt_live = False
        self._connectivity: grpc.ChannelConnectivity | None = None  # last seen by the poller

    # ----- public API -------------------------------------------------------------------

    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def nodes(self) -> dict[str, NodeStatus]:
        """Latest node_status per node name (a copy)."""
        return dict(self._nodes)

    @property
    def whitelist(self) -> tuple[FlowFilter, ...]:
        return self._whitelist

    @property
    def blacklist(self) -> tuple[FlowFilter, ...]:
        return self._blacklist

    @property
    def running(self) -> bool:
        session = self._session
        return session is not None and session.thread.is_alive()

    def add_listener(self, listener: Callable[[StreamState], None]) -> Callable[[], None]:
        """Call `listener(state)` on every state change, from a background thread (see the class
        docstring). Returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def start(self) -> None:
        """Start reading (no-op while running). After stop(), a follow stream resumes after the
        last flow it received; the previous reader, if still winding down, is awaited by the
        new thread, never by the caller."""
        self._spawn(reset_resume=False)

    def stop(self) -> None:
        """Cancel the call and end the reader thread promptly; returns at once (see `join`)."""
        with self._lock:
            session = self._session
            call = self._call
        if session is not None:
            session.stopping.set()
            session.wake.set()
        if call is not None:
            call.cancel()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the reader thread to end (blocking: not on the event loop). True when it ended."""
        session = self._session
        if session is not None:
            session.thread.join(timeout)
            return not session.thread.is_alive()
        return True

    async def aclose(self, timeout: float = 5.0) -> None:
        """stop() and wait for the reader thread without blocking the event loop."""
        self.stop()
        await asyncio.to_thread(self.join, timeout)

    def restart(
        self,
        *,
        whitelist: Iterable[FlowFilter] | None = None,
        blacklist: Iterable[FlowFilter] | None = None,
        resume: bool = False,
    ) -> None:
        """Re-request with new filters (None keeps the current ones). By default the original
        number/since apply again and the resume position is forgotten; with resume=True a
        follow stream continues after the newest flow it holds (no duplicates at the boundary).
        Starts reading if stopped or ended."""
        if whitelist is not None:
            self._whitelist = tuple(whitelist)
        if blacklist is not None:
            self._blacklist = tuple(blacklist)
        with self._lock:
            session = self._session
            active = session is not None and session.accepts_restart()
            if active:
                session.restart_requested = True
                session.restart_resets = not resume
                session.wake.set()  # with the request, so the reader clears both together
                call = self._call
        if not active:
            self._spawn(reset_resume=not resume)
            return
        if call is not None:
            call.cancel()

    def _spawn(self, *, reset_resume: bool) -> None:
        with self._lock:
            previous = self._session
            if previous is not None and previous.accepts_restart():
                return
            session = _Session()
            thread = threading.Thread(
                target=self._run, args=(session, previous, reset_resume), name="hubble-flow-reader", daemon=True
            )
            session.thread = thread
            self._session = session
            thread.start()

    def request(self) -> GetFlowsRequest:
        """The GetFlowsRequest the next attempt sends: the original one, or for a resumed follow
        stream `since` = the last flow's time instead of `number`."""
        if self.follow and self._last_time_ns >= 0:
            since = max(self._last_time_ns, self.since.ToNanoseconds() if self.since else 0)
            return flows_request(
                follow=True, since=since, until=self.until,
                whitelist=self._whitelist, blacklist=self._blacklist,
            )
        return flows_request(
            number=self.number, first=self.first, follow=self.follow, since=self.since, until=self.until,
            whitelist=self._whitelist, blacklist=self._blacklist,
        )

    # ----- reader thread ----------------------------------------------------------------

    def _set_state(self, status: StreamStatus, *, only_from: StreamStatus | None = None, **changes) -> bool:
        """Change state and tell listeners; with only_from, only when the current status is that."""
        with self._state_lock:
            if only_from is not None and self._state.status is not only_from:
                return False
            self._state = state = replace(self._state, status=status, **changes)
            for listener in list(self._listeners):
                try:
                    listener(state)
                except Exception:  # noqa: BLE001 - a broken listener must not kill the stream
                    pass
        return True

    def _reset_resume(self) -> None:
        self._last_time_ns = -1
        self._at_last_time = []

    def _run(self, session: _Session, previous: _Session | None, reset_resume: bool) -> None:
        if previous is not None:
            previous.thread.join()  # one reader at a time; its call is already cancelled
        if reset_resume:
            self._reset_resume()
        # One channel for the session: grpc reconnects it underneath our retries.
        channel: grpc.Channel | None = None
        attempts = 0
        try:
            while not session.stopping.is_set():
                with self._lock:
                    if session.restart_requested:
                        session.restart_requested = False
                        # A restart that came during an attempt set `wake` to cut a backoff
                        # wait short; left set, it would skip the next attempt's backoff.
                        session.wake.clear()
                        if session.restart_resets:
                            self._reset_resume()
                        attempts = 0
                self._set_state(StreamStatus.CONNECTING, error="", retry_at=None, attempts=attempts)
                try:
                    if channel is None and self.connection.stream_transport == "grpcio":
                        channel = self._open_channel(session)
                    outcome, error = self._attempt(channel, session)
                except HubbleError as failure:  # e.g. the certificate fetch for --tls-allow-insecure
                    outcome, error = "failed", failure
                if session.stopping.is_set():
                    break
                if outcome == "dropped":
                    attempts = 0
                final = outcome == "ended" or (
                    error is not None and (not self.follow or error.code in _PERMANENT)
                )
                with self._lock:
                    if session.restart_requested:
                        continue
                    session.finishing = final  # from here on restart() starts a new session
                if outcome == "ended":
                    self._set_state(StreamStatus.ENDED, error="", retry_at=None, attempts=0)
                    return
                if final:
                    self._set_state(StreamStatus.ERROR, error=str(error), retry_at=None, attempts=attempts + 1)
                    return
                attempts += 1
                delay = self._backoff(attempts)
                message = str(error) if error is not None else f"Hubble server {self.connection.server} closed the stream"
                self._set_state(
                    StreamStatus.RETRYING, error=message, retry_at=self._clock() + delay, attempts=attempts
                )
                session.wake.wait(delay)
                session.wake.clear()
            self._set_state(StreamStatus.STOPPED, retry_at=None)
        except Exception as bug:  # noqa: BLE001 - a thread's traceback would garble the terminal
            with self._lock:
                session.finishing = True  # a restart from here on (even from a listener) starts anew
            self._set_state(
                StreamStatus.ERROR, error=f"Hubble stream from {self.connection.server} failed: "
                f"{type(bug).__name__}: {bug}", retry_at=None,
            )
        finally:
            if channel is not None:
                self._close_channel(channel, session)

    def _open_channel(self, session: _Session) -> grpc.Channel:
        channel = self.connection.sync_channel(single_threaded_stream=True)
        self._connectivity = None

        def on_connectivity(connectivity: grpc.ChannelConnectivity) -> None:
            # On grpc's polling thread: the transport is up, so the call is live even if no
            # flow matches the filters yet.
            self._connectivity = connectivity
            if connectivity is grpc.ChannelConnectivity.READY and not session.stopping.is_set():
                self._went_live()

        session.on_connectivity = on_connectivity
        channel.subscribe(on_connectivity, try_to_connect=True)
        return channel

    def _close_channel(self, channel: grpc.Channel, session: _Session) -> None:
        channel.unsubscribe(session.on_connectivity)
        # grpc's connectivity poller fails loudly ("Channel closed!") if the channel closes
        # under it; it notices the unsubscribe within its 0.2 s poll, so let it finish first.
        poller = getattr(channel, "_connectivity_state", None)
        deadline = time.monotonic() + 0.5
        while poller is not None and getattr(poller, "polling", False) and time.monotonic() < deadline:
            time.sleep(0.02)
        channel.close()

    def _open_call(self, channel: grpc.Channel | None):
        """The GetFlows call of one attempt, an iterable of response bytes with cancel()."""
        if channel is None:
            # Our own HTTP/2 reader (wire.grpc_stream): ~1 us per message against grpcio's ~7.
            return StreamCall(self.connection, GET_FLOWS_METHOD, self.request().SerializeToString(),
                              on_ready=self._went_live)
        call = channel.unary_stream(
            GET_FLOWS_METHOD,
            request_serializer=GetFlowsRequest.SerializeToString,
            response_deserializer=None,  # keep the wire bytes: FlowRecord.raw
        )(self.request())
        if self._connectivity is grpc.ChannelConnectivity.READY:
            self._went_live()  # connected already: no READY event will come for this call
        return call

    def _attempt(self, channel: grpc.Channel | None, session: _Session) -> tuple[str, HubbleError | None]:
        """One GetFlows call. Returns (outcome, error): outcome "ended" (a non-follow request
        finished), "dropped" (responses arrived, then it failed or closed) or "failed"."""
        self._attempt_live = False
        responses_before = self._responses_seen()
        error: HubbleError | None = None
        call = self._open_call(channel)
        with self._lock:
            self._call = call
            if session.stopping.is_set() or session.restart_requested:
                call.cancel()
        # Like the CLI's --timeout: a server that never completes the connection (a dropped
        # SYN, a port that accepts but never speaks HTTP/2) is given up on, then retried.
        dial_timed_out = threading.Event()

        def give_up_dialing() -> None:
            if not self._attempt_live:
                dial_timed_out.set()
                call.cancel()

        timer = threading.Timer(self.connection.timeout, give_up_dialing)
        timer.daemon = True
        timer.start()
        try:
            self.ingest_batches(call.batches() if isinstance(call, StreamCall) else ([raw] for raw in call))
        except grpc.RpcError as rpc_error:
            if dial_timed_out.is_set() and not session.stopping.is_set():
                error = HubbleError(
                    f"Hubble server {self.connection.server}: no connection within {self.connection.timeout:g}s",
                    address=self.connection.server,
                    code=grpc.StatusCode.DEADLINE_EXCEEDED,
                )
            else:
                error = describe_rpc_error(rpc_error, self.connection.server, "GetFlows")
        finally:
            timer.cancel()
            with self._lock:
                self._call = None
        if error is None and (not self.follow or self.until is not None):
            return "ended", None  # a follow stream with `until` ends there
        # Only a stream that delivered something resets the backoff: a stale READY from the
        # connectivity poller must not turn a dead server into a tight retry loop.
        return ("dropped" if self._responses_seen() > responses_before else "failed"), error

    def _responses_seen(self) -> int:
        return self.flows_received + self.duplicates_skipped + self.node_status_events + self.lost_event_messages

    def _went_live(self) -> None:
        if self._attempt_live:
            return
        # Both the reader and grpc's connectivity thread get here; only the first one switches.
        if self._set_state(StreamStatus.LIVE, only_from=StreamStatus.CONNECTING, error="", retry_at=None, attempts=0):
            self._attempt_live = True
            self.connects += 1

    def ingest(self, messages: Iterable[bytes]) -> None:
        """Ingest serialized GetFlowsResponses one by one (benchmarks and replays feed bytes;
        grpcio's call yields them so): see `ingest_batches`."""
        self.ingest_batches([raw] for raw in messages)

    def ingest_batches(self, batches: Iterable[list[bytes]]) -> None:
        """The reader's hot loop: parse the serialized GetFlowsResponses of each batch (what
        one socket read brought, so batching adds no delay), build FlowRecords (keeping the
        bytes), append them to the store in one step, track nodes, lost events and the
        resume position. A batch of flows only is parsed in one call with a schema that
        declares only time, verdict and node (wire.trimmed_schema: ~1.2 us a flow less);
        one with node status or lost events, one response at a time."""
        extend = self.store.extend
        record_type = FlowRecord
        last_time = self._last_time_ns
        at_last_time = self._at_last_time
        # Flows at or before the resume instant may repeat what we already hold.
        resume_time = last_time
        resume_keys = {_flow_key(r) for r in at_last_time} if last_time >= 0 else set()
        hand_over_at = _monotonic() + _HAND_OVER_INTERVAL
        try:
            for batch in batches:
                records: list[FlowRecord] = []
                keep = records.append
                for raw, flow in _flows_of(batch, self._handle_response):
                    t = flow.time
                    time_ns = t.seconds * 1_000_000_000 + t.nanos
                    record = record_type(raw, time_ns, flow.verdict, flow.node_name)
                    if time_ns <= resume_time:
                        if time_ns == resume_time and _flow_key(record) in resume_keys:
                            self.duplicates_skipped += 1
                            continue
                    if time_ns > last_time:
                        last_time = time_ns
                        at_last_time = [record]
                    elif time_ns == last_time:
                        at_last_time.append(record)
                    keep(record)
                if not records:
                    continue
                extend(records)
                self._went_live()  # a no-op once this attempt is live
                self.flows_received += len(records)
                now = _monotonic()
                if now >= hand_over_at:
                    # Let a waiting event loop thread have the GIL now rather than after
                    # the interpreter's 5 ms switch interval: that wait is the UI's lag.
                    _sleep(0)
                    hand_over_at = now + _HAND_OVER_INTERVAL
        finally:
            self._last_time_ns = last_time
            self._at_last_time = at_last_time

    def _handle_response(self, response: GetFlowsResponse) -> None:
        """A response that carries no flow (node status, lost events)."""
        self._went_live()
        if response.time.ToNanoseconds() >= self._last_time_ns:  # older ones we counted already
            self._handle_other(response)

    def _handle_other(self, response: GetFlowsResponse) -> None:
        kind = response.WhichOneof("response_types")
        if kind == "lost_events":
            self.lost_event_messages += 1
            self.store.add_lost(response.lost_events.num_events_lost)
        elif kind == "node_status":
            self.node_status_events += 1
            event = response.node_status
            time_ns = response.time.ToNanoseconds()
            for name in event.node_names:
                self._nodes[name] = NodeStatus(name, event.state_change, event.message, time_ns)


_HEAD = trimmed_classes({"Flow": {"time": "", "verdict": "", "node_name": ""}}, "kcockpit.stream")
_parse_heads = _HEAD["kcockpit.stream.Batch"].FromString


def _flows_of(batch: list[bytes], other: Callable[[GetFlowsResponse], None]) -> Iterable[tuple[bytes, object]]:
    """(bytes, flow) for each response of `batch` that carries a flow, in order; `other` is
    called with each that does not, in its place. The flows are trimmed (time, verdict,
    node_name) when the batch is flows only."""
    if len(batch) > 1:
        try:
            heads = _parse_heads(b"".join(batch))
        except DecodeError:
            heads = None  # one at a time: the bad one raises, after those before it
        if heads is not None and len(heads.flow) == len(batch) and not heads.node_status and not heads.lost_events:
            return zip(batch, heads.flow)
    return _one_by_one(batch, other)


def _one_by_one(batch: list[bytes], other: Callable[[GetFlowsResponse], None]) -> Iterable[tuple[bytes, object]]:
    parse = GetFlowsResponse.FromString
    for raw in batch:
        response = parse(raw)
        if response.WhichOneof("response_types") == "flow":
            yield raw, response.flow
        else:
            other(response)


def _flow_key(record: FlowRecord) -> tuple[int, str | bytes]:
    """Identity of a flow for de-duplication at the resume boundary: time and uuid (raw bytes
    when the server sends no uuid)."""
    return record.time_ns, (record.uuid or record.raw)
