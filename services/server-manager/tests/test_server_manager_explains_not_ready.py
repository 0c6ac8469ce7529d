"""Why a Server's Deployment has no ready replica, from its Pods: an unschedulable Pod first, with
what to check; else the newest Pod that waits."""

from __future__ import annotations

from typing import Any

from substratus_server_manager import pods

SCHEDULER = "0/6 nodes are available: 6 node(s) didn't match Pod's node affinity/selector."


def _pod(name: str, created: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


UNSCHEDULABLE = _pod(
    "old",
    "2024-01-01T00:00:00Z",
    phase="Pending",
    conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": SCHEDULER}],
)
PULLING = _pod(
    "new",
    "2024-01-02T00:00:00Z",
    phase="Pending",
    containerStatuses=[{"name": "server", "state": {"waiting": {"reason": "ImagePullBackOff"}}}],
)
READY = _pod("ready", "2024-01-03T00:00:00Z", phase="Running", conditions=[{"type": "Ready", "status": "True"}])


def test_an_unschedulable_pod_is_named_with_what_to_check() -> None:
    reason = pods.reason([PULLING, UNSCHEDULABLE, READY])
    assert reason is not None
    assert reason.startswith("Pod old is not scheduled: " + SCHEDULER)
    assert "spec.resources" in reason


def test_else_the_newest_waiting_pod() -> None:
    reason = pods.reason([PULLING, READY])
    assert reason is not None
    assert "new" in reason
    assert "ImagePullBackOff" in reason


def test_no_reason_without_waiting_pods() -> None:
    done = _pod("done", "2024-01-01T00:00:00Z", phase="Succeeded")
    assert pods.reason([READY, done]) is None
    assert pods.reason([]) is None
