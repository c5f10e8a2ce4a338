"""Review 2: `x` (export) when the export directory cannot be written any more.

Found by hand: `kcockpit --input-file F --export-dir D`, then D removed while the app runs,
then `x`: the CaptureError of write_capture escaped action_export (it only caught OSError)
and the app died with a traceback, losing the user's session."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ui_support import UTC, FixedClock, flows, scenario_records

from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import write_capture
from kcockpit.ui.app import CockpitApp
from kcockpit.ui.export import export_records
from kcockpit.application.session import CaptureSession


def test_export_records_raises_oserror_for_a_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    with pytest.raises(OSError, match="cannot write capture file .*gone.*No such file or directory"):
        export_records(scenario_records(2), missing)
    assert not missing.exists()


async def test_export_into_a_removed_directory_reports_and_keeps_running(tmp_path: Path) -> None:
    capture = tmp_path / "flows.json"
    write_capture(scenario_records(10), capture)
    export_dir = tmp_path / "exports"
    export_dir.mkdir()
    app = CockpitApp(CaptureSession(str(capture), FlowStore(1000)), zone=UTC, clock=FixedClock(), export_dir=export_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        assert len(flows(app).table.rows) == 10
        export_dir.rmdir()  # e.g. a tmp dir cleaned up while the cockpit runs
        await pilot.press("x")
        await pilot.pause()
        assert app.is_running
        messages = [str(n.message) for n in app._notifications]
        assert any(m.startswith("Export failed: cannot write capture file") and "exports" in m for m in messages), messages
        assert len(flows(app).table.rows) == 10  # the view is intact
