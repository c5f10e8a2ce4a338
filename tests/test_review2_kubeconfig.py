"""Review 2: a kubeconfig that exists but is not one.

Found by hand: `kcockpit policy explain --kubeconfig F ...` with F not valid YAML printed a
yaml.ParserError traceback (exit 1, not 2); the TUI then showed `k8s …` for ever (the
opener thread died). With F = /etc/passwd the message was the client's "'str' object does
not support item assignment", and the status bar said `k8s ✗ no kubeconfig` for a file
that is there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kcockpit.sources.kubernetes import KubernetesConfigError, load_api_client
from kcockpit.sources.kubernetes import KubernetesSource
from kcockpit.application.integrations import Notices, PolicyFeed

NOT_YAML = "a: [\n"
NOT_A_MAPPING = "root:x:0:0:root:/root:/bin/bash\n"
WRONG_TYPES = "clusters: 5\ncontexts: 7\ncurrent-context: x\n"
A_LIST = "[1, 2]\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (NOT_YAML, "not valid YAML at line 2"),
        (NOT_A_MAPPING, "not a kubeconfig (expected a mapping with clusters, contexts and users"),
        (WRONG_TYPES, "not a kubeconfig"),
        (A_LIST, "not a kubeconfig"),
    ],
)
def test_a_broken_kubeconfig_is_a_config_error_that_names_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "kc"
    path.write_text(text)
    with pytest.raises(KubernetesConfigError) as caught:
        load_api_client(str(path))
    assert str(caught.value).startswith(f"cannot use kubeconfig {path}: ")
    assert fragment in str(caught.value)


def test_policy_explain_with_a_kubeconfig_that_is_not_yaml_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    path.write_text(NOT_YAML)
    done = subprocess.run(
        [sys.executable, "-m", "kcockpit", "policy", "explain", "--kubeconfig", str(path),
         "--from", "a/b", "--to", "a/c", "--port", "53"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == f"kcockpit policy: error: cannot use kubeconfig {path}: not valid YAML at line 2"


@pytest.mark.parametrize(
    ("text", "status"),
    [(NOT_YAML, "k8s ✗ bad kubeconfig"), (NOT_A_MAPPING, "k8s ✗ bad kubeconfig"), (None, "k8s ✗ no kubeconfig")],
)
def test_status_bar_says_bad_kubeconfig_for_a_file_that_exists(tmp_path: Path, text: str | None, status: str) -> None:
    path = tmp_path / "kc"
    if text is not None:
        path.write_text(text)
    feed = PolicyFeed(lambda: KubernetesSource.from_kubeconfig(str(path)))
    notices = Notices()
    feed.start(notices)
    feed._thread.join(timeout=30)
    try:
        assert feed.open_error.startswith(f"cannot use kubeconfig {path}")
        assert feed.status_part().text == status
        (notice,) = notices.take()
        assert notice.text == f"no policy data: {feed.open_error}"
    finally:
        feed.stop()
