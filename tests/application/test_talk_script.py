"""Talk scripts: the built-in story, and the exact error a speaker gets for each mistake
(file, step, field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kcockpit.application.talk import TalkError, built_in_script, load_talk, parse_talk

PHASES = ("healthy", "broken", "fixed")


def test_the_built_in_script_tells_the_story_in_eight_steps() -> None:
    script = built_in_script()
    assert len(script.steps) == 8
    assert [s.tab for s in script.steps] == ["flows", "flows", "services", "dns", "policies", "flows", "flows", "services"]
    assert [s.phase for s in script.steps] == ["healthy", "broken", "broken", "broken", "broken", "broken", "fixed", "fixed"]
    assert script.caption(2).startswith("3/8 · Services:")
    assert all(len(script.caption(i)) <= 80 for i in range(8))  # one line at 80 columns
    opened = [s for s in script.steps if s.open]
    assert len(opened) == 1 and opened[0].select == "coredns"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: [{caption: a, tab: servces}]", "x.yaml: step 1: tab: 'servces' is not a tab (expected one of: flows, services, dns, policies)"),
        ("steps: [{caption: a}, {phase: broken}]", "x.yaml: step 2: caption: required"),
        ("steps: [{caption: a, phase: borken}]", "x.yaml: step 1: phase: 'borken' is not a demo phase (expected one of: healthy, broken, fixed)"),
        ("steps: [{caption: a, filter: 'verdict=dropd'}]", "x.yaml: step 1: filter: column 1: unknown verdict 'dropd': did you mean 'dropped'?"),
        ("steps: [{caption: a, open: true}]", "x.yaml: step 1: open: needs 'select'"),
        ("steps: [{caption: a, colour: red}]", "x.yaml: step 1: unknown field 'colour'"),
        ("steps: [{caption: a, open: yes please}]", "x.yaml: step 1: open: expected true or false"),
        ("steps: []", "x.yaml: steps: expected a list of at least one step"),
        ("title: t\nsteps: [{caption: a}]\nextra: 1", "x.yaml: unknown key 'extra'"),
        ("steps: [{caption: a\n", "x.yaml: not YAML at line"),
        (f"steps: [{{caption: {'x' * 80}}}]", "x.yaml: step 1: caption: one line of at most 72 characters, got 80"),
    ],
)
def test_every_mistake_names_the_file_the_step_and_the_field(text: str, message: str) -> None:
    with pytest.raises(TalkError) as raised:
        parse_talk(text, "x.yaml", PHASES)
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_script_of_your_own_is_read_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("title: My talk\nsteps:\n  - caption: First\n    tab: dns\n")
    script = load_talk(path, PHASES)
    assert script.title == "My talk" and script.caption(0) == "1/1 · First" and script.steps[0].tab == "dns"
    with pytest.raises(TalkError, match="cannot read the talk script"):
        load_talk(tmp_path / "missing.yaml", PHASES)
