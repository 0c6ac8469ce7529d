"""A fine-tune Model applied while its Dataset still loads: ``kubectl get``, ``kubectl describe``,
``kubectl events --for`` and ``substratus status`` tell the story a user needs, first while it waits
for the Dataset (``DatasetNotReady``, no Job yet), then once it is ready (the Job created, complete,
and ``Ready``), with the Events in the order they happened.

On the real stack with the watcher, status writer and trainer as processes; the Pods are simulated
by kwok. Run with ``-s`` to see the outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

BASE = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: opt-125m}
spec:
  image: substratusai/model-loader-huggingface
  params: {name: facebook/opt-125m}
"""
DATASET = """
apiVersion: substratus.ai/v1
kind: Dataset
metadata:
  name: squad
  annotations: {substratus.dev/simulate-delay: 15s}
spec:
  image: substratusai/dataset-loader-huggingface
  params: {name: squad}
"""
FINETUNE = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {name: opt-125m-squad}
spec:
  image: substratusai/model-trainer-huggingface
  model: {name: opt-125m}
  dataset: {name: squad}
  params: {epochs: 1}
"""


def substratus(stack: Stack, *args: str) -> str:
    env = {**os.environ, **stack.env}
    done = subprocess.run(
        [sys.executable, "-m", "substratus_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def event_rows(describe: str) -> list[tuple[str, str]]:
    rows = [line.split() for line in describe.split("\nEvents:", 1)[1].splitlines()]
    return [(r[0], r[1]) for r in rows if r and r[0] in ("Normal", "Warning")]


def test_finetune_story_in_describe_and_status(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("watcher")
    run_service("status-writer")
    run_service("trainer")
    ns = ["-n", namespace]
    stack.kubectl("apply", *ns, "-f", "-", input=BASE)
    stack.kubectl("apply", *ns, "-f", "-", input=DATASET)

    def base_ready() -> bool:
        return stack.kubectl("get", "model", "opt-125m", *ns, "-o", "jsonpath={.status.ready}").stdout == "true"

    eventually(base_ready, 60, "the base Model ready")  # so the fine-tune waits for the Dataset alone
    stack.kubectl("apply", *ns, "-f", "-", input=FINETUNE)

    def waiting() -> str:
        text = stack.kubectl("describe", "model", "opt-125m-squad", *ns).stdout
        assert ("Normal", "DatasetNotReady") in event_rows(text), text
        return text

    describe_waiting = eventually(waiting, 30, "the fine-tune waiting for its Dataset")
    get_waiting = stack.kubectl("get", "models", *ns, "-o", "wide").stdout
    status_waiting = substratus(stack, "status", "model/opt-125m-squad", *ns)
    row = next(line for line in get_waiting.splitlines() if line.startswith("opt-125m-squad "))
    assert row.split()[1:3] == ["false", "DatasetNotReady"], get_waiting
    assert "Dataset squad is not ready" in row
    assert "Not ready  DatasetNotReady: " in status_waiting.splitlines()[0]
    assert "Job opt-125m-squad-modeller" not in status_waiting  # no Job while it waits

    def ready() -> str:
        text = stack.kubectl("describe", "model", "opt-125m-squad", *ns).stdout
        assert event_rows(text)[-1:] == [("Normal", "Ready")], text
        return text

    describe_ready = eventually(ready, 120, "the fine-tune ready")
    story = [reason for _, reason in event_rows(describe_ready)]
    assert story[0] == "DatasetNotReady", describe_ready
    assert story.index("DatasetNotReady") < story.index("JobNotComplete") < story.index("JobComplete"), story
    assert story[-1] == "Ready"
    assert "Job opt-125m-squad-modeller" in describe_ready  # the JobNotComplete note names the Job
    events = stack.kubectl("events", *ns, "--for", "model/opt-125m-squad").stdout
    assert "DatasetNotReady" in events
    assert "Ready" in events
    get_ready = stack.kubectl("get", "models", *ns).stdout
    status_ready = substratus(stack, "status", "model/opt-125m-squad", *ns)
    assert status_ready.splitlines()[0].startswith(f"Model {namespace}/opt-125m-squad  Ready  JobComplete")
    assert "Job opt-125m-squad-modeller  Complete" in status_ready

    for title, text in (
        ("kubectl get models -o wide (waiting)", get_waiting),
        ("kubectl describe model opt-125m-squad (waiting)", describe_waiting),
        ("substratus status model/opt-125m-squad (waiting)", status_waiting),
        ("kubectl get models (ready)", get_ready),
        ("kubectl describe model opt-125m-squad (ready)", describe_ready),
        ("kubectl events --for model/opt-125m-squad", events),
        ("substratus status model/opt-125m-squad (ready)", status_ready),
    ):
        print(f"\n$ {title}\n{text}")
