"""A compressed block of stored flows that cannot be read back: the cockpit shows what it
still knows of those flows, says what is lost, exports the rest, and keeps running."""

from __future__ import annotations

from pathlib import Path

from ui_support import flows, make_app, scenario_records, wait_until

from kcockpit.model.blocks import forget_cached, seal_pending
from kcockpit.sources.capture import read_capture, write_capture
from kcockpit.ui.screens.detail import FlowDetailScreen


def damage_first_block(store) -> None:
    """Flip a bit in the middle of the first sealed block's frame (the first 256 flows)."""
    seal_pending()
    kept = store.snapshot()
    block = kept[0]._raw
    assert block.sealed and kept[256]._raw is not block
    data = bytearray(block._data)
    data[len(data) // 2] ^= 0x10
    block._data = bytes(data)
    forget_cached()
    for record in kept[:256]:
        record._details = None  # what was decoded before the damage would still show


async def test_flows_whose_bytes_are_lost_show_a_marker_a_one_line_detail_and_are_not_exported(tmp_path: Path) -> None:
    capture = tmp_path / "flows.json"
    written = scenario_records(300)
    write_capture(written, capture)
    exports = tmp_path / "exports"
    app = make_app(capture, exports)
    async with app.run_test(size=(120, 30)) as pilot:
        table = flows(app).table
        await wait_until(lambda: len(table.rows) == 300, pilot)
        damage_first_block(app.session.store)
        await pilot.press("g")  # the oldest row: in the damaged block
        await pilot.pause()
        row = table.render_line(1).text
        assert "flow bytes unreadable" in row and "FORWARDED" in row, row

        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, FlowDetailScreen), pilot)
        text = str(app.screen.query_one("#detail-lost").render())
        assert text.startswith("flow bytes lost: a compressed block of 256 flows cannot be read (")
        assert "Only its time (" in text and "verdict and node (" in text
        assert "flow bytes unreadable" in str(app.screen.query_one("#detail-title").render())
        await pilot.press("c", "w")  # nothing to copy, nothing to jump to: ignored
        assert isinstance(app.screen, FlowDetailScreen)
        await pilot.press("escape")
        await wait_until(lambda: not isinstance(app.screen, FlowDetailScreen), pilot)

        await pilot.press("x")
        await pilot.pause()
        assert app.is_running
        messages = [str(n.message) for n in app._notifications]
        assert any("Exported 44 flows to" in m and m.endswith("; skipped 256 whose stored bytes are unreadable")
                   for m in messages), messages
    exported = list(exports.glob("kcockpit-flows-*.json"))
    assert len(exported) == 1
    assert [r.raw for r in read_capture(exported[0]).records] == [r.raw for r in written[256:]]
