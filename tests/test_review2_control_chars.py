"""Review 2: control characters in flow text never reach the terminal.

Found by hand: a capture (or a live flow) whose HTTP URL or DNS name holds an ESC, e.g.
`GET /\\x1b]0;PWNED\\x07`, set the terminal's window title when the Flows table or the
detail view drew it; `\\x1b[2J` cleared the screen, `\\n` broke the row. Whoever sends
traffic through the cluster chooses those strings. They are now shown as control
pictures (␛, ␇, ␊), one cell each, so the columns stay aligned."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_support import UTC, FixedClock, flows, make_flow

from kcockpit.model.record import FlowRecord
from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import write_capture
from kcockpit.ui.app import CockpitApp
from kcockpit.ui.columns import cell_parts, layout_columns
from kcockpit.ui.printable import printable
from kcockpit.ui.screens.detail import FlowDetailScreen
from kcockpit.application.session import CaptureSession
from kcockpit.wire.hubble_pb import flow_pb

EVIL_URL = "http://shop/\x1b]0;PWNED\x07/\x1b[2J\x9b31m\nnext\tcol\x7f"
EVIL_QUERY = "evil.\x1b[5m.example.com."


def evil_records() -> list[FlowRecord]:
    http = make_flow(1, http=("GET", EVIL_URL, 0, flow_pb.REQUEST))
    dns = make_flow(2, udp=True, port=53, dns=(EVIL_QUERY, flow_pb.REQUEST, 0))
    return [http, dns]


def is_clean(text: str) -> bool:
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def test_printable_maps_every_control_to_one_visible_character() -> None:
    assert printable("plain text/é") == "plain text/é"
    shown = printable(EVIL_URL)
    assert is_clean(shown)
    assert len(shown) == len(EVIL_URL)
    assert "␛]0;PWNED␇" in shown and "␊next␉col␡" in shown and "\ufffd31m" in shown
    assert printable("a\nb\x1b", keep_newlines=True) == "a\nb␛"


@pytest.mark.parametrize("width", [80, 160])
def test_table_cells_of_a_hostile_flow_are_clean_and_exactly_as_wide_as_the_column(width: int) -> None:
    for record in evil_records():
        for column, cells in layout_columns(width):
            text, _ = cell_parts(record, column.key, cells, UTC)
            assert is_clean(text), (column.key, text)
            assert len(text) == cells, (column.key, text)
    assert "␛]0;PWNED␇" in cell_parts(evil_records()[0], "info", 60, UTC)[0]


async def test_flows_table_and_detail_draw_no_control_characters(tmp_path: Path) -> None:
    capture = tmp_path / "evil.json"
    write_capture(evil_records(), capture)
    app = CockpitApp(CaptureSession(str(capture), FlowStore(100)), zone=UTC, clock=FixedClock(), export_dir=tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        assert len(flows(app).table.rows) == 2
        drawn = [flows(app).table.render_line(y).text for y in range(4)]
        assert any("␛]0;PWNED␇" in line for line in drawn), drawn
        assert all(is_clean(line) for line in drawn), drawn
        await pilot.press("g", "enter")
        await pilot.pause()
        assert isinstance(app.screen, FlowDetailScreen)
        texts = [str(static.render()) for static in app.screen.query("Static")]
        assert any("␛]0;PWNED␇" in text for text in texts), texts
        for text in texts:
            assert is_clean(text.replace("\n", "")), text
