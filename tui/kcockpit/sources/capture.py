"""Capture files: what `hubble observe -o jsonpb` writes and `hubble observe --input-file` reads.

One GetFlowsResponse per line in protojson: proto field names, 64-bit integers as strings,
enums by name. `read_capture` turns a file (or `-` for stdin) into FlowRecords plus a list of
problems (bad lines are reported with their line number, skipped and counted; the rest is
kept). `write_capture` exports records in the same format, one compact line each.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from google.protobuf import json_format

from kcockpit.model.record import FlowBytesLost, FlowRecord
from kcockpit.model.store import FlowStore
from kcockpit.wire.hubble_pb import GetFlowsResponse
from kcockpit.wire.protojson import message_to_dict, parse_dict

__all__ = ["CaptureError", "CaptureProblem", "CaptureResult", "iter_capture", "read_capture", "load_capture", "write_capture",
           "response_to_line"]

STDIO = "-"
_MAX_SHOWN = 120  # characters of a bad value quoted back in a message
_BOM = "\ufeff"


class CaptureError(Exception):
    """The capture as a whole cannot be read or written (missing file, permission...)."""


@dataclass(frozen=True, slots=True)
class CaptureProblem:
    """One line that could not be used."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass
class CaptureResult:
    """What a capture held. `problems` lists the skipped lines; `lost_events` sums the
    num_events_lost of lost_events lines; `node_statuses` counts node_status lines."""

    source: str
    records: list[FlowRecord] = field(default_factory=list)
    problems: list[CaptureProblem] = field(default_factory=list)
    lost_events: int = 0
    node_statuses: int = 0
    lines: int = 0  # non-empty lines read
    flows: int = 0  # flows read (they stay in `records` until their reader lets them go)

    @property
    def skipped(self) -> int:
        return len(self.problems)

    def summary(self) -> str:
        text = f"{self.source}: {self.flows} flows from {self.lines} lines"
        if self.problems:
            text += f", {self.skipped} malformed lines skipped (first: {self.problems[0]})"
        return text


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _parse_line(text: str) -> GetFlowsResponse | str:
    """The response on one line, or what is wrong with it."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return f"not JSON: {error.msg} at column {error.colno}"
    if not isinstance(document, dict):
        return f"expected a JSON object (one GetFlowsResponse), got {type(document).__name__}"
    try:
        # Newer servers add fields our protos do not know: skip them rather than the flow.
        response = parse_dict(document, GetFlowsResponse())
    except json_format.ParseError as error:
        flow = document.get("flow")
        if not (isinstance(flow, dict) and "extensions" in flow):
            return f"not a GetFlowsResponse: {_shorten(str(error))}"
        # Flow.extensions is an Any of a type only its vendor knows: skip it, keep the flow.
        try:
            response = parse_dict({**document, "flow": {k: v for k, v in flow.items() if k != "extensions"}},
                                  GetFlowsResponse())
        except json_format.ParseError:
            return f"not a GetFlowsResponse: {_shorten(str(error))}"
    if response.WhichOneof("response_types") is None:
        keys = ", ".join(sorted(document)[:5]) or "none"
        return f"no flow, node_status or lost_events (keys: {_shorten(keys)})"
    return response


@contextmanager
def _open(source: str | Path | IO[str], mode: str) -> Iterator[tuple[IO[str], str]]:
    if not isinstance(source, (str, Path)):
        yield source, getattr(source, "name", "<stream>")
        return
    if str(source) == STDIO:
        yield (sys.stdin if mode == "r" else sys.stdout), ("<stdin>" if mode == "r" else "<stdout>")
        return
    try:
        encoding = _file_encoding(source) if mode == "r" else "utf-8"
        handle = open(source, mode, encoding=encoding, errors="replace" if mode == "r" else "strict")
    except OSError as error:
        verb = "read" if mode == "r" else "write"
        raise CaptureError(f"cannot {verb} capture file {str(source)!r}: {error.strerror or error}") from None
    with handle:
        yield handle, str(source)


def _file_encoding(path: str | Path) -> str:
    """UTF-16 when the file starts with its byte order mark (what Windows PowerShell's `>`
    writes), else UTF-8. Pipes (`<(hubble observe ...)`) are not sniffed: that would eat bytes."""
    if not Path(path).is_file():
        return "utf-8"
    with open(path, "rb") as handle:
        head = handle.read(2)
    return "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8"


def iter_capture(source: str | Path | IO[str], result: CaptureResult | None = None) -> Iterator[bytes]:
    """The flows of a jsonpb capture one at a time, as serialized GetFlowsResponses, without
    keeping them: a capture of any size reads in constant memory. Problems, lost events and
    node statuses are tallied in `result` (pass one to read them afterwards)."""
    with _open(source, "r") as (handle, name):
        if result is None:
            result = CaptureResult(source=name)
        result.source = name
        for number, text in enumerate(handle, start=1):
            if number == 1:
                text = text.removeprefix(_BOM)  # editors and Windows tools save UTF-8 with one
            text = text.strip()
            if not text:
                continue
            result.lines += 1
            parsed = _parse_line(text)
            if isinstance(parsed, str):
                result.problems.append(CaptureProblem(name, number, parsed))
                continue
            kind = parsed.WhichOneof("response_types")
            if kind == "flow":
                _fill_from_response(parsed)
                yield parsed.SerializeToString()
            elif kind == "lost_events":
                result.lost_events += parsed.lost_events.num_events_lost
            else:
                result.node_statuses += 1


def _fill_from_response(response: GetFlowsResponse) -> None:
    """Give a flow the response's node_name and time when it lacks its own: a capture made
    with a field mask (`hubble observe --field-mask`, or `-o jsonpb` after a masked request)
    may leave them out of the flow while the response around it still names both."""
    flow = response.flow
    if not flow.node_name and response.node_name:
        flow.node_name = response.node_name
    if not flow.HasField("time") and response.HasField("time"):
        flow.time.CopyFrom(response.time)


def read_capture(source: str | Path | IO[str]) -> CaptureResult:
    """Read a jsonpb capture: a path, `-` for stdin, or an open text stream."""
    result = CaptureResult(source=str(source))
    for raw in iter_capture(source, result):
        record = FlowRecord.from_bytes(raw)
        if record is not None:
            result.records.append(record)
    result.flows = len(result.records)
    return result


def load_capture(source: str | Path | IO[str], store: FlowStore) -> CaptureResult:
    """read_capture, then put the flows (and the lost-event count) into `store`."""
    result = read_capture(source)
    store.extend(result.records)
    store.add_lost(result.lost_events)
    return result


def response_to_line(response: GetFlowsResponse) -> str:
    """One capture line: protojson with proto field names, compact."""
    document = message_to_dict(response)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def write_capture(records: Iterable[FlowRecord], destination: str | Path | IO[str]) -> int:
    """Write records as `hubble observe -o jsonpb` lines (to a path, `-` for stdout, or a text
    stream); returns how many were written. The original wire message is exported unchanged.
    A record whose stored bytes are lost (FlowBytesLost: a damaged compressed block) has
    nothing to write and is skipped: fewer lines than records then."""
    count = 0
    with _open(destination, "w") as (handle, _):
        for record in records:
            try:
                response = record.response()
            except FlowBytesLost:
                continue
            handle.write(response_to_line(response))
            handle.write("\n")
            count += 1
        handle.flush()
    return count
