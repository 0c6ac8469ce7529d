"""``substratus status`` on a resource that does not exist exits 1 and says which one, where; an
unknown kind is refused by the argument parser (exit 2) naming the kinds it knows."""

from __future__ import annotations

import os
import subprocess
import sys

from substratus_local.stack import Stack


def substratus(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env}
    return subprocess.run(
        [sys.executable, "-m", "substratus_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_missing_resource_exits_non_zero_with_a_clear_message(stack: Stack, namespace: str) -> None:
    done = substratus(stack, "status", "model/nothing-here", "-n", namespace)
    assert done.returncode == 1
    assert done.stderr.strip() == f'substratus status: model "nothing-here" not found in namespace "{namespace}"'
    assert done.stdout == ""

    everywhere = substratus(stack, "status", "dataset/nothing-here", "-A")
    assert everywhere.returncode == 1
    assert everywhere.stderr.strip() == 'substratus status: dataset "nothing-here" not found in any namespace'


def test_an_unknown_kind_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "substratus_cli", "status", "pizza/margherita"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown kind 'pizza'" in done.stderr
    assert "models, datasets, servers, notebooks" in done.stderr
