"""``substratus status model/NAME`` on the real stack lists the Model's children with their states:
its params ConfigMap, its modeller Job (running) and, under the Job, the Job's Pod (running and
ready), and the last events from the bus; ``--json`` carries the same tree.

The Pod is simulated by kwok (Running and Ready, and kept running by
``substratus.dev/simulate-delay``); the watcher, status writer and trainer run as processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

MODEL = """
apiVersion: substratus.ai/v1
kind: Model
metadata:
  name: opt
  annotations: {substratus.dev/simulate-delay: 120s}
spec:
  image: substratusai/model-loader-huggingface
  params: {name: facebook/opt-125m}
"""


def substratus(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, with its output piped (so: plain text)."""
    env = {**os.environ, **stack.env}
    return subprocess.run(
        [sys.executable, "-m", "substratus_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_status_lists_the_job_and_its_pod_with_their_states(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("watcher")
    run_service("status-writer")
    run_service("trainer")
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=MODEL)

    def running() -> str:
        done = substratus(stack, "status", "model/opt", "-n", namespace)
        assert done.returncode == 0, done.stderr
        assert "Job opt-modeller  Running (1 active)" in done.stdout, done.stdout
        assert "Running, ready 1/1" in done.stdout, done.stdout
        # The Job can be seen running before the trainer's report of it is written.
        assert done.stdout.startswith(f"Model {namespace}/opt  Not ready  JobNotComplete"), done.stdout
        return done.stdout

    text = eventually(running, 60, "substratus status shows the running Job and Pod")
    lines = text.splitlines()
    job = next(i for i, line in enumerate(lines) if "── Job opt-modeller " in line)
    pod = lines[job + 1]
    assert "── Pod opt-modeller-" in pod
    assert pod.index("Pod") > lines[job].index("Job")  # the Pod hangs under its Job
    assert "ConfigMap opt-model-params  1 key (params.json)" in text
    assert any("Complete  False JobNotComplete" in line for line in lines), text
    assert "Events (bus, last" in text
    assert f"models/{namespace}/opt" in text  # a bus event line names the resource
    assert "\x1b[" not in text  # piped: no colour codes

    done = substratus(stack, "status", "model/opt", "-n", namespace, "--json")
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    assert (doc["kind"], doc["name"], doc["ready"]) == ("Model", "opt", False)
    jobs = [c for c in doc["children"] if c["kind"] == "Job"]
    assert [(j["name"], j["state"]) for j in jobs] == [("opt-modeller", "Running (1 active)")]
    (pod_doc,) = jobs[0]["children"]
    assert pod_doc["kind"] == "Pod"
    assert pod_doc["state"] == "Running, ready 1/1"
    assert doc["events"], doc
