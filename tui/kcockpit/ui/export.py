"""Export of the current view to a `hubble observe -o jsonpb` capture file."""

from __future__ import annotations

import time
from pathlib import Path

from kcockpit.model.record import FlowRecord
from kcockpit.sources.capture import CaptureError, write_capture


def unused_path(directory: Path, stem: str, extension: str) -> Path:
    """`directory/stem.extension`, or `stem-2`, `stem-3`, ... : a name no file has yet.

    What the user already saved is never overwritten."""
    path = directory / f"{stem}{extension}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = directory / f"{stem}-{suffix}{extension}"
    return path


def export_path(directory: Path, now: float | None = None) -> Path:
    """A new file name in `directory`, stamped with the UTC time (never overwrites)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return unused_path(directory, f"kcockpit-flows-{stamp}", ".json")


def export_records(records: list[FlowRecord], directory: Path) -> Path:
    """Write `records` to a new capture in `directory`. Any failure is an OSError (the
    caller's "Export failed" message), including the CaptureError of a file that cannot be
    opened, e.g. when `directory` was removed after start-up."""
    path = export_path(directory)
    try:
        write_capture(records, path)
    except CaptureError as error:
        raise OSError(str(error)) from None
    return path
