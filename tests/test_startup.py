"""Start-up: what `kcockpit --demo` loads before its first frame (see benchmarks/startup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Heavy modules the first frame does without: each is imported where it is first used.
NOT_BEFORE_THE_FIRST_FRAME = (
    "httpx",  # Prometheus's client: the background starts it
    "kubernetes",  # the policy source, opened on a thread after the first frame
    "kcockpit.application.policy_insights",  # the policy engine, once the Policies tab computes
    "kcockpit.application.talk",  # talk mode only
    "playwright",
)


def test_the_first_frame_path_imports_nothing_heavy_it_does_not_need() -> None:
    probe = (
        "import sys\n"
        "import kcockpit.cli, kcockpit.ui.cli, kcockpit.ui.app, kcockpit.sim.embedded, kcockpit.application.session\n"
        f"print(' '.join(m for m in {NOT_BEFORE_THE_FIRST_FRAME!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "tui")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def test_the_policies_tab_styles_every_check_of_the_insights() -> None:
    from kcockpit.application import policy_insights
    from kcockpit.ui.tabs import policies

    assert set(policies._CHECK_STYLE) == set(policy_insights.CHECK_MARK)
