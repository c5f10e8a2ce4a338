"""Export of the current view to a `hubble observe -o jsonpb` capture file, and where
exports and saved fixes go."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

EXPORT_DIR_ENV = "KCOCKPIT_EXPORT_DIR"


def default_export_dir(environ: dict[str, str] | None = None) -> Path:
    """$KCOCKPIT_EXPORT_DIR, else `$XDG_DATA_HOME/kcockpit/exports` (usually
    ~/.local/share/kcockpit/exports): one known place, not wherever the cockpit was started."""
    environ = os.environ if environ is None else environ
    if environ.get(EXPORT_DIR_ENV):
        return Path(environ[EXPORT_DIR_ENV]).expanduser()
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "kcockpit" / "exports"


def ready_directory(directory: Path) -> Path:
    """`directory`, created if missing; an OSError says why it cannot be."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"cannot create the directory {str(directory)!r}: {error.strerror or error}") from None
    return directory

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


@dataclass(frozen=True, slots=True)
class Exported:
    path: Path
    flows: int  # written
    skipped: int  # records whose stored bytes are lost: nothing to write

    def message(self) -> str:
        text = f"Exported {self.flows} flows to {self.path}"
        if self.skipped:
            text += f"; skipped {self.skipped} whose stored bytes are unreadable"
        return text


def export_records(records: list[FlowRecord], directory: Path) -> Exported:
    """Write `records` to a new capture in `directory`. Any failure is an OSError (the
    caller's "Export failed" message), including the CaptureError of a file that cannot be
    opened, e.g. when `directory` was removed after start-up."""
    path = export_path(ready_directory(directory))
    try:
        written = write_capture(records, path)
    except CaptureError as error:
        raise OSError(str(error)) from None
    return Exported(path, written, len(records) - written)
