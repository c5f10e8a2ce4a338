"""Applied filters are remembered: esc (or a new filter) loses nothing that ↑ cannot bring back."""

from __future__ import annotations

from pathlib import Path

from ui_support import capture, flows, make_app, wait_until  # noqa: F401 - capture is a fixture


async def test_esc_clears_the_filter_says_so_and_up_brings_it_back(capture: Path, tmp_path: Path) -> None:  # noqa: F811
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        bar = flows(app).filter_bar
        long_filter = "from:ns=otel-demo verdict=dropped to:port=53"
        await pilot.press("slash", *"ns=otel-demo", "enter")
        await pilot.press("slash", "ctrl+u", *long_filter, "enter")
        await wait_until(lambda: flows(app).filter_state.text == long_filter, pilot)
        shown = len(flows(app).table.rows)

        await pilot.press("escape")  # on the flow list: clears the filter
        await wait_until(lambda: flows(app).filter_state.text == "" and len(flows(app).table.rows) == 120, pilot)
        # One line on the footer's row (see test_notices): title, what was cleared, how to get it back.
        await wait_until(lambda: any(n.message.startswith("Filter cleared: ") for n in app._notifications), pilot)
        note = next(n for n in app._notifications if n.message.startswith("Filter cleared: "))
        assert note.message == f"Filter cleared: {long_filter} · / then ↑ brings it back"

        await pilot.press("slash", *"dns")  # a draft, then browse the history
        await pilot.press("up")
        assert bar.text == long_filter
        await pilot.press("up")
        assert bar.text == "ns=otel-demo"
        await pilot.press("up")  # nothing older
        assert bar.text == "ns=otel-demo"
        await pilot.press("down", "down")  # past the newest: the draft again
        assert bar.text == "dns"
        await pilot.press("up", "enter")
        await wait_until(lambda: flows(app).filter_state.text == long_filter and len(flows(app).table.rows) == shown, pilot)
        assert bar.history == ["ns=otel-demo", long_filter]  # re-applying does not repeat it


async def test_history_is_empty_at_first_and_keys_do_nothing(capture: Path, tmp_path: Path) -> None:  # noqa: F811
    app = make_app(capture, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("slash", *"abc", "up", "down")
        assert flows(app).filter_bar.text == "abc" and flows(app).filter_bar.history == []
