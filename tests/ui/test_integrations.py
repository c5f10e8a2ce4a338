"""Policy data feeds as the status bar reports them (no screen needed)."""

import shutil
import time
from argparse import Namespace
from pathlib import Path

from kcockpit.application.integrations import Notices
from kcockpit.cli_options import policy_feed_from_args
from polling import wait_until

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
