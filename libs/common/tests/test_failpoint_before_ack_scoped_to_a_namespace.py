"""``before-ack`` ends the process like ``kill -9`` (exit 137), and with
``SUBSTRATUS_FAILPOINT_NAMESPACE`` set only for a pass over that namespace."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HIT = "from substratus_common import failpoints; failpoints.hit('before-ack', {namespace!r}); print('alive')"


def _run(namespace: str | None, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SUBSTRATUS_FAILPOINT")}
    code = HIT.format(namespace=namespace)
    return subprocess.run(
        [sys.executable, "-c", code], check=False, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "namespace", "ends"),
    [
        ({}, "a", False),
        ({"SUBSTRATUS_FAILPOINTS": "before-ack"}, "a", True),
        ({"SUBSTRATUS_FAILPOINTS": "slow-reconcile"}, "a", False),
        ({"SUBSTRATUS_FAILPOINTS": "before-ack", "SUBSTRATUS_FAILPOINT_NAMESPACE": "a"}, "a", True),
        ({"SUBSTRATUS_FAILPOINTS": "before-ack", "SUBSTRATUS_FAILPOINT_NAMESPACE": "a"}, "b", False),
        ({"SUBSTRATUS_FAILPOINTS": "before-ack", "SUBSTRATUS_FAILPOINT_NAMESPACE": "a"}, None, False),
    ],
)
def test_before_ack_ends_the_process_only_where_switched_on(
    env: dict[str, str], namespace: str | None, ends: bool
) -> None:
    done = _run(namespace, env)
    if ends:
        assert done.returncode == 137, done.stderr
        assert "alive" not in done.stdout
    else:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "alive"
