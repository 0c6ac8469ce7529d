"""A Dataset whose git build fails (a local repository that does not exist; the builder's local
executor really runs git) tells the user through kubectl alone, on the real stack with the
watcher, status writer and builder running as processes:

- ``kubectl get datasets`` shows ``STATUS JobFailed`` (the Ready condition names the failing
  Built condition, not the Complete one that waits), and ``-o wide`` the message;
- ``kubectl describe dataset`` lists the Events of the transitions in order (building, then the
  Warning with the reason and message);
- a repeated failure (a new tag builds again and fails again) increments one Event's count
  instead of adding one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

DATASET = """
apiVersion: substratus.ai/v1
kind: Dataset
metadata: {{name: broken}}
spec:
  build:
    git: {{url: "{url}", tag: "{tag}"}}
"""


def _events(stack: Stack, namespace: str) -> list[dict[str, Any]]:
    listed = stack.kubectl("get", "events.events.k8s.io", "-n", namespace, "-o", "json")
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return [e for e in items if e.get("regarding", {}).get("name") == "broken"]


def _failed(stack: Stack, namespace: str, tag: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(stack.kubectl("get", "dataset", "broken", "-n", namespace, "-o", "json").stdout)
    built: dict[str, Any] = next((c for c in obj.get("status", {}).get("conditions") or [] if c["type"] == "Built"), {})
    assert built.get("reason") == "JobFailed", f"Built: {built}"
    assert f"--branch={tag}" in built.get("message", "") or tag in built.get("message", ""), built
    return obj


def _columns(stack: Stack, namespace: str, *extra: str) -> dict[str, str]:
    text = stack.kubectl("get", "datasets", "-n", namespace, *extra).stdout
    header, row = text.splitlines()[:2]
    starts = [header.index(name) for name in header.split()]
    cells = [row[a:b].strip() for a, b in zip(starts, [*starts[1:], len(row) + 1], strict=True)]
    return dict(zip(header.split(), cells, strict=True))


def test_failed_build_is_told_by_kubectl(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    run_service("watcher")
    run_service("status-writer")
    run_service(
        "builder",
        env={
            "SUBSTRATUS_BUILDER_EXECUTOR": "local",
            "SUBSTRATUS_REGISTRY_INSECURE": "true",
            "SUBSTRATUS_BUILDER_LOCAL_DIR": str(tmp_path / "builder"),
        },
    )
    url = (tmp_path / "no-such-repository").as_uri()
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=DATASET.format(url=url, tag="v1"))
    eventually(lambda: _failed(stack, namespace, "v1"), 90, "Built=False/JobFailed for v1")

    columns = eventually(lambda: _columns(stack, namespace), 30, "kubectl get datasets")
    assert columns["READY"] == "false"
    assert columns["STATUS"] == "JobFailed"
    wide = _columns(stack, namespace, "-o", "wide")
    assert "no-such-repository" in wide["MESSAGE"]

    def described() -> list[str]:
        text = stack.kubectl("describe", "dataset", "broken", "-n", namespace).stdout
        events = text.split("\nEvents:", 1)[1].splitlines()
        rows = [line.split() for line in events if line.strip() and not line.strip().startswith(("Type", "----"))]
        assert any(r[:2] == ["Warning", "JobFailed"] for r in rows), text
        return events

    lines = eventually(described, 30, "the JobFailed Event in kubectl describe")
    rows = [line.split() for line in lines if line.strip().startswith(("Normal", "Warning"))]
    story = [(r[0], r[1]) for r in rows]
    assert ("Normal", "JobNotComplete") in story, lines
    assert story.index(("Normal", "JobNotComplete")) < story.index(("Warning", "JobFailed")), lines
    failure = next(line for line in lines if "JobFailed" in line)
    assert "substratus-status-writer" in failure
    assert "Built: the build failed" in failure
    assert "no-such-repository" in failure

    # The same failure again: a new tag builds once more and fails once more.
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=DATASET.format(url=url, tag="v2"))
    eventually(lambda: _failed(stack, namespace, "v2"), 90, "Built=False/JobFailed for v2")

    def counted() -> dict[str, Any]:
        failures = [e for e in _events(stack, namespace) if e["reason"] == "JobFailed"]
        assert len(failures) == 1, failures
        assert (failures[0].get("series") or {}).get("count") == 2, failures[0]
        return failures[0]

    event = eventually(counted, 30, "one JobFailed Event counted twice")
    assert event["type"] == "Warning"
    assert event["action"] == "Built"
    assert event["regarding"]["kind"] == "Dataset"
    text = stack.kubectl("describe", "dataset", "broken", "-n", namespace).stdout
    assert any("JobFailed" in line and "(x2 over" in line for line in text.splitlines()), text
