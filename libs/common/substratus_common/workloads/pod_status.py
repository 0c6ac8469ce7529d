"""Why a workload Pod is or is not ready, in words a user can act on (no I/O).

Used for a Notebook's Pod and for the Pods behind a Server's Deployment: the message names what
the Pod waits for — scheduling, an image pull, an init container, a crashing container, a
readiness probe — and stays the same while the reason does, so it is reported once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Object = Mapping[str, Any]


def is_ready(pod: Object) -> bool:
    """The Pod's ``Ready`` condition is True (and it is not being deleted)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return _condition(pod, "Ready").get("status") == "True"


def is_finished(pod: Object) -> bool:
    """The Pod ended (``Succeeded`` or ``Failed``, e.g. evicted): it will not become ready again."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def not_ready_message(pod: Object) -> str:
    """Why the Pod is not ready, e.g. ``Pod nb-notebook is not scheduled: 0/6 nodes are available: …``."""
    meta = pod.get("metadata") or {}
    name = meta.get("name", "")
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return f"Pod {name} is terminating"
    phase = status.get("phase") or "Pending"
    if phase in ("Succeeded", "Failed"):
        why = ": ".join(str(p) for p in (status.get("reason"), status.get("message")) if p)
        return f"Pod {name} ended ({phase}{': ' + why if why else ''})"
    scheduled = _condition(pod, "PodScheduled")
    if scheduled.get("status") == "False":
        detail = scheduled.get("message") or scheduled.get("reason") or "no node fits it yet"
        return f"Pod {name} is not scheduled: {detail}"
    for kind, statuses in (
        ("init container", status.get("initContainerStatuses") or []),
        ("container", status.get("containerStatuses") or []),
    ):
        for cs in statuses:
            problem = _container_problem(cs)
            if problem:
                return f"Pod {name}: {kind} {cs.get('name')} {problem}"
    if phase == "Pending":
        return f"Pod {name} is starting"
    return f"Pod {name} is running but not ready (readiness probe)"


def _container_problem(cs: Mapping[str, Any]) -> str:
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    if waiting:
        reason = str(waiting.get("reason") or "waiting")
        message = str(waiting.get("message") or "").strip()
        return f"is waiting ({reason}{': ' + message if message else ''})"
    terminated = state.get("terminated") or {}
    if terminated and int(terminated.get("exitCode") or 0) != 0:
        detail = f"exited with code {terminated.get('exitCode')}"
        if terminated.get("reason"):
            detail += f" ({terminated['reason']})"
        restarts = int(cs.get("restartCount") or 0)
        return detail + (f" and restarted {restarts} time(s)" if restarts else "")
    return ""


def _condition(pod: Object, type_: str) -> Mapping[str, Any]:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return {}
