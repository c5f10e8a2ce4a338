"""Talk mode's script: the steps a speaker walks through with a presentation clicker.

A script is YAML: a `title` (the blank screen's card) and `steps`, each a mapping of
  caption: one line the audience reads (required; shown as "3/8 · caption")
  phase:   the demo scenario phase to be in (healthy, broken, fixed, ...)
  tab:     the tab to show (flows, services, dns, policies)
  filter:  the Flows tab's filter (text as typed in the filter bar; "" clears it)
  select:  text of the row to select in that tab (the first row that contains it)
  open:    true to open the selected row (the flow detail, a policy verdict, ...)
Every mistake is reported with the file, the step and the field, and what was expected.
The built-in script (`talk.yaml` beside this module) tells the talk's story.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from kcockpit.model.filterlang import FilterSyntaxError, parse_filter

BUILT_IN = "talk.yaml"
TABS = ("flows", "services", "dns", "policies")
_FIELDS = {"caption", "phase", "tab", "filter", "select", "open"}
MAX_CAPTION = 72  # one line at 80 columns, after "NN/NN · "


class TalkError(ValueError):
    """A script that cannot be used; the message names the file, the step and the field."""


@dataclass(frozen=True, slots=True)
class TalkStep:
    caption: str
    phase: str | None = None
    tab: str | None = None
    filter: str | None = None
    select: str | None = None
    open: bool = False


@dataclass(frozen=True, slots=True)
class TalkScript:
    source: str
    title: str
    steps: tuple[TalkStep, ...]

    def caption(self, index: int) -> str:
        return f"{index + 1}/{len(self.steps)} · {self.steps[index].caption}"


def built_in_script() -> TalkScript:
    text = resources.files("kcockpit.application").joinpath(BUILT_IN).read_text(encoding="utf-8")
    return parse_talk(text, f"built-in {BUILT_IN}")


def load_talk(path: str | Path, phases: tuple[str, ...]) -> TalkScript:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise TalkError(f"{path}: cannot read the talk script: {error.strerror or error}") from None
    return parse_talk(text, str(path), phases)


def parse_talk(text: str, source: str, phases: tuple[str, ...] | None = None) -> TalkScript:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise TalkError(f"{source}: not YAML{where}: {getattr(error, 'problem', None) or error}") from None
    if not isinstance(document, dict):
        raise TalkError(f"{source}: expected a mapping with 'title' and 'steps', got {type(document).__name__}")
    unknown = set(document) - {"title", "steps"}
    if unknown:
        raise TalkError(f"{source}: unknown key {sorted(unknown)[0]!r} (expected: title, steps)")
    title = document.get("title", "kcockpit")
    if not isinstance(title, str):
        raise TalkError(f"{source}: title: expected text")
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise TalkError(f"{source}: steps: expected a list of at least one step")
    steps = tuple(_step(raw, f"{source}: step {number}", phases) for number, raw in enumerate(raw_steps, start=1))
    return TalkScript(source, title, steps)


def _step(raw, where: str, phases: tuple[str, ...] | None) -> TalkStep:
    if not isinstance(raw, dict):
        raise TalkError(f"{where}: expected a mapping of {', '.join(sorted(_FIELDS))}")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise TalkError(f"{where}: unknown field {sorted(map(str, unknown))[0]!r} (expected: {', '.join(sorted(_FIELDS))})")
    caption = raw.get("caption")
    if not isinstance(caption, str) or not caption.strip():
        raise TalkError(f"{where}: caption: required, one line of text")
    if "\n" in caption.strip() or len(caption) > MAX_CAPTION:
        raise TalkError(f"{where}: caption: one line of at most {MAX_CAPTION} characters, got {len(caption)}")
    phase = raw.get("phase")
    if phase is not None and (not isinstance(phase, str) or (phases is not None and phase not in phases)):
        raise TalkError(f"{where}: phase: {phase!r} is not a demo phase (expected one of: {', '.join(phases or ())})")
    tab = raw.get("tab")
    if tab is not None and tab not in TABS:
        raise TalkError(f"{where}: tab: {tab!r} is not a tab (expected one of: {', '.join(TABS)})")
    text = raw.get("filter")
    if text is not None:
        if not isinstance(text, str):
            raise TalkError(f"{where}: filter: expected the filter bar's text")
        try:
            parse_filter(text)
        except FilterSyntaxError as error:
            raise TalkError(f"{where}: filter: {error}") from None
    select = raw.get("select")
    if select is not None and not isinstance(select, str):
        raise TalkError(f"{where}: select: expected text of the row to select")
    opened = raw.get("open", False)
    if not isinstance(opened, bool):
        raise TalkError(f"{where}: open: expected true or false")
    if opened and select is None:
        raise TalkError(f"{where}: open: needs 'select' (which row to open)")
    return TalkStep(caption.strip(), phase, tab, text, select, opened)
