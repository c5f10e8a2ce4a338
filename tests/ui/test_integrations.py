"""Policy data feeds as the status bar reports them (no screen needed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from argparse import Namespace
from pathlib import Path

import pytest
from polling import wait_until

from kcockpit.application.integrations import Notices, PolicyFeed
from kcockpit.cli_options import policy_feed_from_args
from kcockpit.sources.kubernetes import KubernetesConfigError, KubernetesSource, load_api_client

DATA = Path(__file__).parents[1] / "data" / "policies"


def started_feed(directory: Path):
    feed = policy_feed_from_args(Namespace(no_kubernetes=False, policies=str(directory), kubeconfig=None, context=None))
    notices = Notices()
    feed.start(notices)
    deadline = time.monotonic() + 10
    while feed.snapshot() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return feed, notices


def test_malformed_document_is_a_warning_beside_what_loaded(tmp_path: Path) -> None:
    shutil.copytree(DATA / "talk", tmp_path / "policies")
    (tmp_path / "policies" / "zz-broken.yaml").write_text("kind: NetworkPolicy\nmetadata: [unclosed\n")
    feed, notices = started_feed(tmp_path / "policies")
    try:
        part = feed.status_part()
        assert part.text.startswith("files ✓ ") and part.text.endswith(", 1 bad document"), part.text
        assert feed.data().cluster is not None  # the good policies are in use
        # The feed's thread publishes the snapshot first, then adds a notice per problem.
        taken = []
        wait_until(lambda: taken.extend(notices.take()) or any("zz-broken.yaml" in n.text for n in taken))
    finally:
        feed.stop()


def test_clean_manifests_report_the_policy_count() -> None:
    feed, _ = started_feed(DATA / "talk")
    try:
        assert feed.status_part().text.startswith("files ✓ ")
        assert "bad" not in feed.status_part().text
    finally:
        feed.stop()


def test_blast_radius_line_names_every_reason_a_fix_is_not_verified() -> None:
    from kcockpit.policy.fix import NEW_NETWORKPOLICY, FixProposal, Opening
    from kcockpit.ui.policy_view import opens_text

    dns = Opening("otel-demo/frontend", "kube-system/coredns", "UDP 53")
    job = Opening("otel-demo/loadgenerator", "otel-demo/frontend", "TCP 8080")
    good = FixProposal("egress", NEW_NETWORKPOLICY, "t", opens=[dns], allows_flow=True)
    assert opens_text(good).endswith("(verified: allows this flow, nothing unrelated)")
    closing = FixProposal("egress", NEW_NETWORKPOLICY, "t", opens=[dns], closes=[job], allows_flow=True)
    assert opens_text(closing).endswith(f"(NOT verified: closes {job})")
    useless = FixProposal("egress", NEW_NETWORKPOLICY, "t", allows_flow=False)
    assert opens_text(useless) == "opens: nothing else (NOT verified: does not allow this flow)"


# ===== Folded from test_review2_kubeconfig.py =====================================================
# Review 2: a kubeconfig that exists but is not one.
#
# Found by hand: `kcockpit policy explain --kubeconfig F ...` with F not valid YAML printed a
# yaml.ParserError traceback (exit 1, not 2); the TUI then showed `k8s …` for ever (the
# opener thread died). With F = /etc/passwd the message was the client's "'str' object does
# not support item assignment", and the status bar said `k8s ✗ no kubeconfig` for a file
# that is there.


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


class SlowStartingSource:
    """Starts its threads one after the other, as KubernetesSource does; stop() joins them
    (which raises for a thread not started yet)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.starting = threading.Event()

    def start(self, on_change=None) -> None:
        for _ in range(3):
            thread = threading.Thread(target=time.sleep, args=(0.01,))
            self.threads.append(thread)
            self.starting.set()
            time.sleep(0.1)
            thread.start()

    def stop(self) -> None:
        for thread in self.threads:
            thread.join(5)


def test_stopping_while_the_policy_source_starts_waits_for_it_instead_of_failing() -> None:
    """Quitting while the source started (the demo's first seconds) raised "cannot join
    thread before it is started": the session's other parts were then never stopped and
    the cockpit hung at exit, a process left behind."""
    source = SlowStartingSource()
    feed = PolicyFeed(lambda: source)
    feed.start(Notices())
    assert source.starting.wait(10)
    feed.stop()
    assert all(not thread.is_alive() for thread in source.threads)
