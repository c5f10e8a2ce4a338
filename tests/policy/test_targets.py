"""Review 2: `kcockpit policy explain --to 10.0.0.0/8` says what is wrong.

Found by hand: a CIDR was read as NAMESPACE/NAME, so the answer was "10.0.0.0/8: no such
pod, workload or Service (the data has no pods in namespace 10.0.0.0)"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kcockpit.policy.cluster import Cluster
from kcockpit.policy.targets import TargetError, resolve

TALK = Path(__file__).resolve().parents[1] / "data" / "policies" / "talk"


@pytest.mark.parametrize(
    ("text", "example"), [("10.0.0.0/8", "10.0.0.1"), ("10.1.2.3/32", "10.1.2.3"), ("fd00::/64", "fd00::1")]
)
def test_a_cidr_is_refused_with_an_ip_to_use_instead(text: str, example: str) -> None:
    with pytest.raises(TargetError) as caught:
        resolve(Cluster(), text, 53)
    assert str(caught.value) == f"{text!r} is a CIDR: a connection has one address, give one IP (e.g. {example})"


def test_policy_explain_to_a_cidr_is_one_line_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kcockpit", "policy", "explain", "--manifests", str(TALK),
         "--from", "otel-demo/frontend", "--to", "10.0.0.0/8", "--port", "53/udp"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "kcockpit policy: error: '10.0.0.0/8' is a CIDR: a connection has one address, give one IP (e.g. 10.0.0.1)"
    )


def test_a_single_ip_and_a_pod_still_resolve() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kcockpit", "policy", "explain", "--manifests", str(TALK),
         "--from", "otel-demo/frontend", "--to", "8.8.8.8", "--port", "53/udp"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode in (0, 1), done.stderr
    assert done.stdout.startswith(("ALLOWED", "DENIED"))
