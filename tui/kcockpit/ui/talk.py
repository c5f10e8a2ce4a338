"""Talk mode (`kcockpit --demo --talk`): a presentation clicker walks through the story.

PageDown/PageUp (what clickers send; right/left too, when no widget wants them) step
through the script (`application.talk`): each step sets the demo's phase, the tab, the
Flows filter and the selection itself, and a one-line caption says where the story is,
in a bar of its own that covers nothing. `b` blanks the screen to a title card and back,
`home` starts again. Steps whose data is not there yet (the drops appear a moment after
the policy) keep trying to select their row for a few seconds.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Static

from kcockpit.application.talk import TalkScript

SELECT_RETRY_S = 0.5
SELECT_GIVE_UP_S = 10.0
TALK_BINDINGS = (
    Binding("pagedown", "talk_step(1)", "Next step", key_display="PgDn", priority=True, id="talk.next"),
    Binding("pageup", "talk_step(-1)", "Previous step", key_display="PgUp", priority=True, id="talk.previous"),
    Binding("right", "talk_step(1)", "Next step", show=False, id="talk.next_arrow"),
    Binding("left", "talk_step(-1)", "Previous step", show=False, id="talk.previous_arrow"),
    Binding("home", "talk_restart", "Restart the talk", show=False, priority=True, id="talk.restart"),
    Binding("b", "talk_blank", "Blank", id="talk.blank"),
)


class CaptionBar(Static):
    """The step's caption, on a line of its own under the tab bar."""

    DEFAULT_CSS = """
    CaptionBar {
        height: 1;
        padding: 0 1;
        background: $accent;
        color: $text;
        text-style: bold;
    }
    """


class TitleCard(Screen):
    """A blank screen with the talk's title (`b` brings the cockpit back)."""

    BINDINGS = [
        Binding("b,escape", "app.pop_screen", "Back to the cockpit", id="talk.unblank"),
    ]
    DEFAULT_CSS = """
    TitleCard { background: $background; }
    TitleCard #title { text-style: bold; color: $text-primary; width: auto; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Middle(), Center():
            yield Static(self.title_text, id="title", markup=False)


class TalkController:
    """Runs the script on the app: `go(index)` puts the cockpit in that step's state."""

    def __init__(self, app, script: TalkScript) -> None:
        self.app = app
        self.script = script
        self.index = 0
        self._selecting = None  # the timer retrying a step's selection

    @property
    def step(self):
        return self.script.steps[self.index]

    def go(self, index: int) -> None:
        from kcockpit.ui.tabs.flows import FlowsTab

        app = self.app
        self.index = max(0, min(index, len(self.script.steps) - 1))
        step = self.step
        while len(app.screen_stack) > 1 and app.screen is not app.main:  # the detail, help, a title card
            app.pop_screen()
        demo = app.session.demo
        if step.phase is not None and demo is not None and demo.phase != step.phase:
            demo.set_phase(step.phase)
        if step.filter is not None:
            flows = app.tab(FlowsTab)
            if flows.filter_state.text != step.filter:
                flows.apply_filter(step.filter)
        if step.tab is not None:
            app.action_show_tab(step.tab)
        app.main.query_one(CaptionBar).update(self.script.caption(self.index))
        if self._selecting is not None:
            self._selecting.stop()
            self._selecting = None
        if step.select is not None:
            self._try_select(self.index, 0.0)

    def _try_select(self, index: int, waited: float) -> None:
        if index != self.index or self.app.screen is not self.app.main:
            return
        tab = self.app.current_tab
        if tab.select_text(self.step.select):
            if self.step.open:
                tab.open_selected()
            return
        if waited < SELECT_GIVE_UP_S:
            self._selecting = self.app.set_timer(SELECT_RETRY_S, lambda: self._try_select(index, waited + SELECT_RETRY_S))
