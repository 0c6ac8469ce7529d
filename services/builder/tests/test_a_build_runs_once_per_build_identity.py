"""A build runs once per build identity, whatever events arrive: the local executor (as ``make up``
runs it) builds a good and a failing git source once each, although every report it publishes and
three later edits of each Model make new change events; the failed one says how to build again.

Builds are counted from the builder's own log ("building locally", one line per build started)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .builder_platform import BuilderPlatform, builder_platform_fixture, git_repository  # noqa: F401

LOCAL = {"SUBSTRATUS_BUILDER_EXECUTOR": "local", "SUBSTRATUS_REGISTRY_INSECURE": "true"}


def _builds_started(p: BuilderPlatform, name: str) -> int:
    count = 0
    for line in p.builder.log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == "building locally" and entry.get("object") == name:
            count += 1
    return count


def test_a_build_runs_once_per_build_identity(builder_platform: Callable[..., BuilderPlatform], tmp_path: Path) -> None:
    good = git_repository(
        tmp_path / "good", {"Containerfile": "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a\n"}, "v1"
    )
    bad = git_repository(tmp_path / "bad", {"Containerfile": "FROM scratch\nCOPY missing.txt /x\n"}, "v1")
    p = builder_platform(builder_env=LOCAL)
    p.apply(
        f"""
apiVersion: substratus.ai/v1
kind: Model
metadata: {{name: good}}
spec:
  build:
    git: {{url: "{good}", tag: v1}}
---
apiVersion: substratus.ai/v1
kind: Model
metadata: {{name: bad}}
spec:
  build:
    git: {{url: "{bad}", tag: v1}}
"""
    )
    built = p.wait_condition("model", "good", "JobComplete", timeout=180)
    failed = p.wait_condition("model", "bad", "JobFailed", timeout=180)
    assert built["status"] == "True"
    assert "change spec.build to build again" in failed["message"]

    for round_ in range(3):  # events that do not change spec.build
        for name in ("good", "bad"):
            p.patch("model", name, {"metadata": {"annotations": {"example.com/poke": str(round_)}}})
    for name in ("good", "bad"):
        p.wait_builder_handled("models", name, timeout=120)

    assert _builds_started(p, "good") == 1
    assert _builds_started(p, "bad") == 1
    assert p.condition("model", "bad")["reason"] == "JobFailed"
    good_model = p.get("model", "good")
    assert good_model is not None
    assert p.condition("model", "good")["observedGeneration"] == good_model["metadata"]["generation"]
