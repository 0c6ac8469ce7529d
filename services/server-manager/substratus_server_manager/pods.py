"""Why the Pods of a Server's Deployment are not ready, in words a user can act on (no I/O).

An unschedulable Pod comes first, with the scheduler's verdict and what to check in
``spec.resources`` (the likeliest fix: a GPU type or count no node has); else the newest Pod
that is neither ready nor finished, with the container that waits or failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Object = Mapping[str, Any]

UNSCHEDULABLE_HINT = (
    "no node has what spec.resources asks for (GPU type and count, cpu, memory): "
    "`kubectl get nodes --show-labels` lists what the cluster has"
)


def _condition(pod: Object, type_: str) -> Mapping[str, Any]:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return {}


def is_ready(pod: Object) -> bool:
    return _condition(pod, "Ready").get("status") == "True"


def is_waiting(pod: Object) -> bool:
    """Neither ready, nor finished, nor being deleted."""
    finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    deleted = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    return not (is_ready(pod) or finished or deleted)


def unschedulable(pod: Object) -> bool:
    return _condition(pod, "PodScheduled").get("status") == "False"


def _container_problem(cs: Mapping[str, Any]) -> str:
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    if waiting and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
        message = str(waiting.get("message") or "").strip()
        return f"is waiting ({waiting['reason']}{': ' + message if message else ''})"
    terminated = state.get("terminated") or {}
    if terminated and int(terminated.get("exitCode") or 0) != 0:
        detail = f"exited with code {terminated.get('exitCode')}"
        return detail + (f" ({terminated['reason']})" if terminated.get("reason") else "")
    return ""


def message(pod: Object) -> str:
    """Why one waiting Pod is not ready."""
    name = (pod.get("metadata") or {}).get("name", "")
    status = pod.get("status") or {}
    if unschedulable(pod):
        scheduled = _condition(pod, "PodScheduled")
        detail = scheduled.get("message") or scheduled.get("reason") or "no node fits it yet"
        return f"Pod {name} is not scheduled: {detail}; {UNSCHEDULABLE_HINT}"
    for kind, statuses in (
        ("init container", status.get("initContainerStatuses") or []),
        ("container", status.get("containerStatuses") or []),
    ):
        for cs in statuses:
            problem = _container_problem(cs)
            if problem:
                return f"Pod {name}: {kind} {cs.get('name')} {problem} (kubectl describe pod {name})"
    if (status.get("phase") or "Pending") == "Pending":
        return f"Pod {name} is starting"
    return f"Pod {name} is running but not ready (its readiness probe GET / on port 8080 has not passed)"


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
    return message(unscheduled[0] if unscheduled else waiting[0])
