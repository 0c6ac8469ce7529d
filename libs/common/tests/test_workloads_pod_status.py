"""Why a workload Pod is not ready, in words a user can act on."""

from __future__ import annotations

from typing import Any

from substratus_common.workloads import pod_status


def _pod(status: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "nb-notebook", **meta}, "status": status}


def test_a_ready_pod() -> None:
    pod = _pod({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})
    assert pod_status.is_ready(pod)
    assert not pod_status.is_ready({**pod, "metadata": {"name": "x", "deletionTimestamp": "2025-01-01T00:00:00Z"}})


def test_unschedulable_names_the_scheduler_message() -> None:
    message = "0/6 nodes are available: 6 Insufficient nvidia.com/gpu."
    pod = _pod({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "message": message}]})
    assert pod_status.not_ready_message(pod) == f"Pod nb-notebook is not scheduled: {message}"


def test_an_image_pull_and_a_crash_are_named() -> None:
    waiting = {"name": "notebook", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}
    pod = _pod({"phase": "Pending", "containerStatuses": [waiting]})
    assert pod_status.not_ready_message(pod) == (
        "Pod nb-notebook: container notebook is waiting (ImagePullBackOff: not found)"
    )
    crashed = {"name": "download", "restartCount": 2, "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}
    pod = _pod({"phase": "Pending", "initContainerStatuses": [crashed]})
    assert pod_status.not_ready_message(pod) == (
        "Pod nb-notebook: init container download exited with code 3 (Error) and restarted 2 time(s)"
    )


def test_ended_terminating_starting_and_probing() -> None:
    assert pod_status.is_finished(_pod({"phase": "Failed"}))
    assert pod_status.not_ready_message(_pod({"phase": "Failed", "reason": "Evicted"})) == (
        "Pod nb-notebook ended (Failed: Evicted)"
    )
    assert pod_status.not_ready_message(_pod({}, deletionTimestamp="t")) == "Pod nb-notebook is terminating"
    assert pod_status.not_ready_message(_pod({"phase": "Pending"})) == "Pod nb-notebook is starting"
    running = _pod({"phase": "Running", "containerStatuses": [{"name": "notebook", "state": {"running": {}}}]})
    assert pod_status.not_ready_message(running) == "Pod nb-notebook is running but not ready (readiness probe)"
