"""Review 2: URLs with wide characters (CJK, emoji) keep the row's columns in place.

Found by hand at 80x24: `GET /商品/東京/カート/...` filled the L7 INFO column with twice as
many cells as it has (fit() counted characters, not cells), which pushed VERDICT off the
row: a flow's verdict was not shown at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len
from ui_support import UTC, FixedClock, flows, make_flow

from kcockpit.model.store import FlowStore
from kcockpit.sources.capture import write_capture
from kcockpit.ui.app import CockpitApp
from kcockpit.ui.columns import cell_parts, fit, layout_columns
from kcockpit.application.session import CaptureSession
from kcockpit.wire.hubble_pb import flow_pb

URLS = ("http://shop/商品/東京/カート/チェックアウト/確認ページ", "http://shop/" + "🛒" * 30, "http://shop/plain/ascii/path/long/enough/to/cut")


@pytest.mark.parametrize("text", ["abc", "商品東京", "🛒🛒🛒", "a商b品c"])
@pytest.mark.parametrize("width", [0, 1, 2, 3, 5, 8, 20])
def test_fit_is_exactly_width_cells(text: str, width: int) -> None:
    shown = fit(text, width)
    assert cell_len(shown) == width
    if cell_len(text) > width >= 2:
        assert shown.rstrip().endswith("…")


@pytest.mark.parametrize("width", [80, 120, 160])
def test_every_cell_of_a_wide_url_row_is_as_wide_as_its_column(width: int) -> None:
    for index, url in enumerate(URLS):
        record = make_flow(index, http=("GET", url, 0, flow_pb.REQUEST))
        for column, cells in layout_columns(width):
            text, _ = cell_parts(record, column.key, cells, UTC)
            assert cell_len(text) == cells, (column.key, text)


async def test_the_verdict_is_drawn_on_a_row_with_a_cjk_url(tmp_path: Path) -> None:
    capture = tmp_path / "wide.json"
    write_capture([make_flow(i, http=("GET", url, 0, flow_pb.REQUEST)) for i, url in enumerate(URLS)], capture)
    app = CockpitApp(CaptureSession(str(capture), FlowStore(100)), zone=UTC, clock=FixedClock(), export_dir=tmp_path)
    async with app.run_test(size=(80, 24)):
        assert len(flows(app).table.rows) == 3
        for y in (1, 2, 3):
            line = flows(app).table.render_line(y)
            assert line.cell_length == flows(app).table.scrollable_content_region.width
            assert line.text.rstrip().endswith("FORWARDED"), line.text
