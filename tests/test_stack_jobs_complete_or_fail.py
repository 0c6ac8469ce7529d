"""kwok runs Job Pods to completion, and fails those annotated to fail."""

from __future__ import annotations

import json

from substratus_local.stack import Stack
from substratus_local.testing import eventually


def _job(name: str, annotations: dict[str, str] | None = None) -> str:
    return json.dumps(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"annotations": annotations or {}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
                },
            },
        }
    )


def _conditions(stack: Stack, namespace: str, name: str) -> dict[str, str]:
    job = json.loads(stack.kubectl("get", "job", name, "-n", namespace, "-o", "json").stdout)
    return {c["type"]: c["status"] for c in job.get("status", {}).get("conditions", [])}


def test_job_runs_to_complete(stack: Stack, namespace: str) -> None:
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=_job("ok"))
    eventually(lambda: _conditions(stack, namespace, "ok").get("Complete") == "True", 60, "Job ok Complete")
    assert "Failed" not in _conditions(stack, namespace, "ok")


def test_job_annotated_to_fail_ends_failed(stack: Stack, namespace: str) -> None:
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=_job("bad", {"substratus.dev/simulate": "fail"}))
    eventually(lambda: _conditions(stack, namespace, "bad").get("Failed") == "True", 60, "Job bad Failed")
    assert _conditions(stack, namespace, "bad").get("Complete") != "True"
