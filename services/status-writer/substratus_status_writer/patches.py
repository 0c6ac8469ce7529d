"""What the status writer applies: pure functions from the current object and a report.

Each service's report is applied with server-side apply under that service's field manager
(``substratus-<service>``), so a report is the service's whole view of the fields it owns: its
condition types (the conditions list is a map keyed by ``type``) and, for some, ``artifacts`` or
``buildUpload``. ``ready`` and ``observedGeneration`` are derived from all conditions and travel
in the same apply (one write per report); the status writer applies them under its own manager
only when they alone are out of date (e.g. after ``spec.image`` moved the generation).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from substratus_common.api import resources

Object = dict[str, Any]

STATUS_WRITER_MANAGER = "substratus-status-writer"


def manager(service: str) -> str:
    return f"substratus-{service}"


@dataclass(frozen=True)
class ReportedCondition:
    type: str
    status: str
    reason: str
    message: str = ""


def _format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _identity(obj: Object) -> Object:
    meta = obj.get("metadata", {})
    return {
        "apiVersion": obj.get("apiVersion", resources.API_VERSION),
        "kind": obj["kind"],
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace")},
    }


def is_stale(current: Object, types: Sequence[str], generation: int) -> bool:
    """A report computed from an older generation than what is already written for its types."""
    for condition in current.get("status", {}).get("conditions") or []:
        if condition.get("type") in types and int(condition.get("observedGeneration") or 0) > generation:
            return True
    return False


def status_body(
    current: Object,
    conditions: Sequence[ReportedCondition],
    generation: int,
    extra: Mapping[str, Any],
    now: dt.datetime,
) -> Object | None:
    """The apply body for one service's report, or None when the report is stale.

    ``lastTransitionTime`` moves only when a condition's status changes, as Kubernetes expects.
    """
    if is_stale(current, [c.type for c in conditions], generation):
        return None
    existing = {c.get("type"): c for c in current.get("status", {}).get("conditions") or []}
    applied = []
    for condition in sorted(conditions, key=lambda c: c.type):
        before = existing.get(condition.type)
        if before is None or before.get("status") != condition.status or not before.get("lastTransitionTime"):
            transition = _format_time(now)
        else:
            transition = str(before["lastTransitionTime"])
        applied.append(
            {
                "type": condition.type,
                "status": condition.status,
                "reason": condition.reason,
                "message": condition.message,
                "lastTransitionTime": transition,
                "observedGeneration": generation,
            }
        )
    body = _identity(current)
    body["status"] = {"conditions": applied, **extra}
    return body


def with_readiness(current: Object, body: Object) -> Object:
    """``body`` plus ``ready`` and ``observedGeneration`` as they will be once it is applied.

    Folding them into the service's own apply makes a report one API write instead of two; both
    are computed here from every condition (the report's replacing the written ones of its types),
    so whichever service's apply carries them, they are the status writer's verdict.
    """
    reported = {c["type"]: c for c in body["status"]["conditions"]}
    written = [c for c in current.get("status", {}).get("conditions") or [] if c.get("type") not in reported]
    merged = {**current, "status": {**current.get("status", {}), "conditions": [*written, *reported.values()]}}
    ready, observed = readiness(merged)
    status = {**body["status"], "ready": ready}
    if observed is not None:
        status["observedGeneration"] = observed
    return {**body, "status": status}


def unchanged(current: Object, body: Object) -> bool:
    """Whether applying ``body`` would change nothing the service owns (saves an API write)."""
    status = current.get("status", {})
    have = {c.get("type"): c for c in status.get("conditions") or []}
    for condition in body["status"]["conditions"]:
        if have.get(condition["type"]) != condition:
            return False
    return all(status.get(k) == v for k, v in body["status"].items() if k != "conditions")


def readiness(current: Object) -> tuple[bool, int | None]:
    """``ready`` and ``observedGeneration`` from the conditions of the current generation.

    Ready needs the kind's main condition (Complete or Serving) True, and with ``spec.build``
    also Built True (and Uploaded True for an upload), all observed at the current generation.
    """
    info = resources.kind_info(current["kind"])
    generation = int(current.get("metadata", {}).get("generation") or 0)
    conditions = {c.get("type"): c for c in current.get("status", {}).get("conditions") or []}
    required = [info.ready_condition]
    build = current.get("spec", {}).get("build")
    if build:
        required.append("Built")
        if build.get("upload"):
            required.append("Uploaded")

    def holds(type_: str) -> bool:
        c = conditions.get(type_)
        return c is not None and c.get("status") == "True" and int(c.get("observedGeneration") or 0) == generation

    observed = [int(c.get("observedGeneration") or 0) for c in conditions.values()]
    return all(holds(t) for t in required), (min(observed) if observed else None)


def readiness_body(current: Object) -> Object | None:
    """The status writer's own apply body, or None when ready and observedGeneration are current."""
    ready, observed = readiness(current)
    status = current.get("status", {})
    if status.get("ready") == ready and status.get("observedGeneration") == observed:
        return None
    body = _identity(current)
    body["status"] = {"ready": ready}
    if observed is not None:
        body["status"]["observedGeneration"] = observed
    return body


def image_body(current: Object, image: str) -> Object | None:
    """``spec.image`` set by the builder after a build, or None when it already is that image."""
    if current.get("spec", {}).get("image") == image:
        return None
    body = _identity(current)
    body["spec"] = {"image": image}
    return body
