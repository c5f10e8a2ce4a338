"""Talk mode on the embedded demo: a clicker's PageDown walks the story (phase, tab, filter,
selection, caption), `b` blanks the screen, `home` starts again, and the same seed gives the
same talk."""

from __future__ import annotations

import subprocess
import sys

from ui_support import wait_until

from kcockpit.application.session import DemoSession
from kcockpit.application.talk import built_in_script
from kcockpit.model.store import FlowStore
from kcockpit.sim.embedded import DemoCluster
from kcockpit.ui.app import CockpitApp
from kcockpit.ui.screens.detail import FlowDetailScreen
from kcockpit.ui.talk import CaptionBar, TitleCard
from kcockpit.ui.tabs.flows import FlowsTab


async def walk(seed: int) -> list[tuple]:
    cluster = DemoCluster(seed=seed, rate=300)
    app = CockpitApp(DemoSession(cluster, FlowStore(50_000)), theme="high-contrast", talk=built_in_script())
    seen = []
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        caption = app.main.query_one(CaptionBar)
        for index in range(8):
            await wait_until(lambda: str(caption.render()).startswith(f"{index + 1}/8 · "), pilot)
            if app.talk.steps[index].open:
                await wait_until(lambda: isinstance(app.screen, FlowDetailScreen), pilot)
                assert app.screen.record.verdict_name == "DROPPED" and app.screen.record.destination.port == 53
            seen.append((str(caption.render()), app.current_tab.TAB_ID, app.session.demo.phase,
                         app.tab(FlowsTab).filter_state.text))
            assert not app._notifications  # no notices over the data during a talk
            await pilot.press("pagedown")
        assert caption.region.y == 1 and caption.region.height == 1  # under the tab bar, covering nothing
        await pilot.press("b")
        await wait_until(lambda: isinstance(app.screen, TitleCard), pilot)
        await pilot.press("b")
        await wait_until(lambda: app.screen is app.main, pilot)
        await pilot.press("home")
        await wait_until(lambda: app._talk.index == 0 and app.session.demo.phase == "healthy", pilot)
        await pilot.press("pageup")  # before the first step: stays there
        assert app._talk.index == 0
    return seen


async def test_pagedown_walks_the_story_and_the_same_seed_gives_the_same_talk() -> None:
    first = await walk(1)
    assert [(tab, phase) for _, tab, phase, _ in first] == [
        ("flows", "healthy"), ("flows", "broken"), ("services", "broken"), ("dns", "broken"),
        ("policies", "broken"), ("flows", "broken"), ("flows", "fixed"), ("services", "fixed")]
    assert first[5][3] == "verdict=dropped from:app=frontend to:port=53"
    assert first == await walk(1)


def test_talk_mode_needs_the_demo_for_a_script_with_phases(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "kcockpit", "--input-file", str(tmp_path / "x.json"), "--talk"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "kcockpit: error: --talk: the script sets demo phases; run it with --demo (kcockpit --demo --talk)"
    bad = tmp_path / "talk.yaml"
    bad.write_text("steps: [{caption: a, tab: nope}]")
    done = subprocess.run([sys.executable, "-m", "kcockpit", "--demo", "--talk", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"--talk: {bad}: step 1: tab: 'nope' is not a tab" in done.stderr and "Traceback" not in done.stderr
