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

import datetime as dt
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

    def status_column() -> dict[str, str]:
        columns = _columns(stack, namespace)
        assert (columns["READY"], columns["STATUS"]) == ("false", "JobFailed"), columns
        return columns

    eventually(status_column, 30, "kubectl get datasets: STATUS JobFailed")
    wide = _columns(stack, namespace, "-o", "wide")
    assert wide["MESSAGE"].startswith("the build failed: git clone exited with code 128"), wide
    assert wide["STATUS"] == "JobFailed"

    def described() -> list[tuple[str, str]]:
        text = stack.kubectl("describe", "dataset", "broken", "-n", namespace).stdout
        rows = [line.split() for line in text.split("\nEvents:", 1)[1].splitlines()]
        story = [(r[0], r[1]) for r in rows if r and r[0] in ("Normal", "Warning")]
        # In the order they began: building, then the failure (a repeat counts, adds no line).
        assert story == [("Normal", "JobNotComplete"), ("Warning", "JobFailed")], text
        failure = next(line for line in text.splitlines() if "JobFailed" in line and "Warning" in line)
        assert "substratus-status-writer" in failure
        assert "Built: the build failed: git clone exited with code 128" in failure
        return story

    eventually(described, 30, "kubectl describe: building, then the Warning JobFailed")
    by_reason = {e["reason"]: e for e in _events(stack, namespace)}
    assert by_reason["JobNotComplete"]["eventTime"] < by_reason["JobFailed"]["eventTime"]
    assert by_reason["JobNotComplete"]["type"] == "Normal"
    assert by_reason["JobNotComplete"]["note"].startswith("Built: building ")

    def failures() -> dict[str, Any]:
        found = [e for e in _events(stack, namespace) if e["reason"] == "JobFailed"]
        assert len(found) == 1, found
        return found[0]

    first = eventually(failures, 30, "one JobFailed Event")
    count = int((first.get("series") or {}).get("count") or 1)
    again_at = dt.datetime.now(dt.UTC)

    # The same failure again: a new tag builds once more and fails once more.
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=DATASET.format(url=url, tag="v2"))
    eventually(lambda: _failed(stack, namespace, "v2"), 90, "Built=False/JobFailed for v2")

    def counted() -> dict[str, Any]:
        event = failures()  # still one object
        series = event.get("series") or {}
        assert int(series.get("count") or 1) > count, event
        # Counted by the v2 failure itself, not by a late echo of v1's.
        assert dt.datetime.fromisoformat(series["lastObservedTime"].replace("Z", "+00:00")) > again_at, event
        return event

    event = eventually(counted, 30, "the JobFailed Event counted again")
    assert event["metadata"]["name"] == first["metadata"]["name"]
    assert event["type"] == "Warning"
    assert event["action"] == "Built"
    assert event["regarding"]["kind"] == "Dataset"
    assert event["note"] == first["note"]  # the first failure's words stay, as in client-go
    text = stack.kubectl("describe", "dataset", "broken", "-n", namespace).stdout
    assert any("JobFailed" in line and f"(x{event['series']['count']} over" in line for line in text.splitlines()), text
    print(text)  # what a user sees (pytest -s)
