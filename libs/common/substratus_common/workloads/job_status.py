"""What a Job's status says, and why its newest failed Pod failed: pure functions over API objects.

Any service that runs a Job (the builder's build Jobs, the trainer's modeller and data-loader Jobs)
turns these into its condition; the Pods are listed by the caller with :data:`POD_SELECTOR_LABEL`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Object = dict[str, Any]

POD_SELECTOR_LABEL = "batch.kubernetes.io/controller-uid"
"""The label the Job controller puts on its Pods: ``<label>=<job uid>`` selects them."""

Phase = Literal["running", "complete", "failed"]


@dataclass(frozen=True)
class JobState:
    phase: Phase
    detail: str = ""
    """For a failed Job: the Job's ``Failed`` reason and message."""
    failed_attempts: int = 0
    """Pods that failed so far (a running Job may retry up to its backoffLimit)."""
    attempts: int = 1
    """Pods the Job may run in all: backoffLimit + 1."""


def state_of(job: Object) -> JobState:
    """Whether the Job completed, failed for good, or still runs (or retries)."""
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    attempts = int((job.get("spec") or {}).get("backoffLimit", 6)) + 1
    failed_attempts = int(status.get("failed") or 0)
    if (conditions.get("Complete") or {}).get("status") == "True":
        return JobState("complete", failed_attempts=failed_attempts, attempts=attempts)
    failed = conditions.get("Failed") or {}
    if failed.get("status") == "True":
        detail = ": ".join(str(p) for p in (failed.get("reason"), failed.get("message")) if p)
        return JobState("failed", detail, failed_attempts, attempts)
    return JobState("running", failed_attempts=failed_attempts, attempts=attempts)


def failed_pod_summary(pods: Sequence[Object]) -> str:
    """Why the newest failed Pod failed: each failed container's exit code, reason and message.

    Empty when no Pod failed. Ends with the ``kubectl logs`` command that shows the rest.
    """
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    if not failed:
        return ""
    pod = max(failed, key=lambda p: str(p["metadata"].get("creationTimestamp", "")))
    status = pod.get("status") or {}
    parts = []
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        term = (cs.get("state") or {}).get("terminated") or {}
        if term and int(term.get("exitCode") or 0) != 0:
            detail = f"container {cs.get('name')} exited with code {term.get('exitCode')}"
            if term.get("reason"):
                detail += f" ({term['reason']})"
            if term.get("message"):
                detail += f": {str(term['message']).strip()}"
            parts.append(detail)
    if not parts and status.get("reason"):
        parts.append(f"{status.get('reason')}: {status.get('message', '')}".strip())
    name = pod["metadata"]["name"]
    return f"Pod {name}: " + "; ".join(parts or ["failed"]) + f" (kubectl logs {name})"
