"""Review 2: `x` (export) when the export directory cannot be written any more.

Found by hand: `kcockpit --input-file F --export-dir D`, then D removed while the app runs,
then `x`: the CaptureError of write_capture escaped action_export (it only caught OSError)
and the app died with a traceback, losing the user's session."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_support import UTC, FixedClock, flows, scenario_records

from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import write_capture
from kcockpit.ui.app import CockpitApp
from kcockpit.ui.export import export_records
from kcockpit.application.session import CaptureSession


def test_export_records_raises_oserror_when_the_directory_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    impossible = tmp_path / "file" / "exports"  # below a file: no directory can be made there
    with pytest.raises(OSError, match="cannot create the directory .*file/exports.*Not a directory"):
        export_records(scenario_records(2), impossible)
    assert not impossible.exists()


async def test_export_into_a_removed_directory_reports_and_keeps_running(tmp_path: Path) -> None:
    capture = tmp_path / "flows.json"
    write_capture(scenario_records(10), capture)
    export_dir = tmp_path / "exports"
    export_dir.mkdir()
    app = CockpitApp(CaptureSession(str(capture), FlowStore(1000)), zone=UTC, clock=FixedClock(), export_dir=export_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        assert len(flows(app).table.rows) == 10
        export_dir.rmdir()  # e.g. a tmp dir cleaned up while the cockpit runs...
        export_dir.write_text("")  # ...and its name taken by a file: it cannot be made again
        await pilot.press("x")
        await pilot.pause()
        assert app.is_running
        messages = [str(n.message) for n in app._notifications]
        assert any(m.startswith("Export failed: cannot create the directory") and "exports" in m for m in messages), messages
        assert len(flows(app).table.rows) == 10  # the view is intact


async def test_export_into_a_removed_directory_makes_it_again_and_says_where(tmp_path: Path) -> None:
    capture = tmp_path / "flows.json"
    write_capture(scenario_records(10), capture)
    export_dir = tmp_path / "exports"
    app = CockpitApp(CaptureSession(str(capture), FlowStore(1000)), zone=UTC, clock=FixedClock(), export_dir=export_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("x")
        await pilot.pause()
        written = list(export_dir.glob("kcockpit-flows-*.json"))
        assert len(written) == 1
        messages = [str(n.message) for n in app._notifications]
        assert any(str(written[0]) in m for m in messages), messages  # the notice names the file
