"""Why the Pods of a Server's Deployment are not ready, in words a user can act on (no I/O).

Each Pod's own reason comes from the shared ``workloads.pod_status``; this picks the Pod to tell
about: an unschedulable one first, with what to check in ``spec.resources`` (the likeliest fix:
a GPU type or count no node has); else the newest Pod that is neither ready nor finished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from substratus_common.workloads import pod_status

Object = Mapping[str, Any]

UNSCHEDULABLE_HINT = (
    "no node has what spec.resources asks for (GPU type and count, cpu, memory): "
    "`kubectl get nodes --show-labels` lists what the cluster has"
)


def is_waiting(pod: Object) -> bool:
    """Neither ready, nor finished, nor being deleted."""
    deleted = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    return not (pod_status.is_ready(pod) or pod_status.is_finished(pod) or deleted)


def unschedulable(pod: Object) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "PodScheduled" and c.get("status") == "False" for c in conditions)


def reason(pods: Sequence[Object]) -> str | None:
    """Why the Deployment's Pods are not ready; None when none waits."""
    waiting = sorted(
        (p for p in pods if is_waiting(p)),
        key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp", "")),
        reverse=True,
    )
    if not waiting:
        return None
    unscheduled = [p for p in waiting if unschedulable(p)]
    if unscheduled:
        return f"{pod_status.not_ready_message(unscheduled[0])}; {UNSCHEDULABLE_HINT}"
    return pod_status.not_ready_message(waiting[0])
