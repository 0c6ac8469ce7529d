"""What the status writer applies: pure functions from the current object and a report.

Each service's report is applied with server-side apply under that service's field manager
(``substratus-<service>``), so a report is the service's whole view of the fields it owns: its
condition types (the conditions list is a map keyed by ``type``) and, for some, ``artifacts`` or
``buildUpload``. ``ready`` and ``observedGeneration`` are derived from all conditions and travel
in the same apply (one write per report); the status writer applies them under its own manager
only when they alone are out of date (e.g. after ``spec.image`` moved the generation).

The ``Ready`` condition is the status writer's verdict in condition form (docs/adr/120): its
status is ``ready``, and its reason and message are those of the condition that blocks readiness
(a failure first, else the first unmet step of build → run), or of the main condition once ready.
It travels with ``ready`` in the same apply, and ``kubectl get`` prints it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from substratus_common.api import readiness as words
from substratus_common.api import resources
from substratus_common.api.types import ConditionType

Object = dict[str, Any]

STATUS_WRITER_MANAGER = "substratus-status-writer"

# One vocabulary with the CRD columns, the reference and the CLI.
READY = words.READY
PENDING = words.PENDING
RECONCILING = words.RECONCILING
FAILURE_REASONS = words.FAILURE_REASONS


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


def with_readiness(current: Object, body: Object, now: dt.datetime | None = None) -> Object:
    """``body`` plus ``ready``, ``observedGeneration`` and ``Ready`` as they will be once it is applied.

    Folding them into the service's own apply makes a report one API write instead of two; both
    are computed here from every condition (the report's replacing the written ones of its types),
    so whichever service's apply carries them, they are the status writer's verdict.
    """
    reported = {c["type"]: c for c in body["status"]["conditions"]}
    written = [c for c in current.get("status", {}).get("conditions") or [] if c.get("type") not in reported]
    merged = {**current, "status": {**current.get("status", {}), "conditions": [*written, *reported.values()]}}
    ready, observed = readiness(merged)
    conditions = [*body["status"]["conditions"], ready_condition(merged, now)]
    status = {**body["status"], "conditions": conditions, "ready": ready}
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


@dataclass(frozen=True)
class Verdict:
    """Whether a resource is ready, and why not: what ``ready`` and the ``Ready`` condition say."""

    ready: bool
    observed_generation: int | None
    reason: str
    message: str


def _required(current: Object) -> list[str]:
    """The conditions ready needs, in the order the work happens: upload, build, then run."""
    required = []
    build = current.get("spec", {}).get("build")
    if build:
        if build.get("upload"):
            required.append(ConditionType.UPLOADED.value)
        required.append(ConditionType.BUILT.value)
    required.append(resources.kind_info(current["kind"]).ready_condition)
    return required


def verdict(current: Object) -> Verdict:
    """Ready needs the kind's main condition (Complete or Serving) True, and with ``spec.build``
    also Built True (and Uploaded True for an upload), all observed at the current generation.

    When not ready, the reason is the first blocking condition's that is a failure (the user must
    act), else the first unmet one in work order; once ready, the main condition's.
    """
    generation = int(current.get("metadata", {}).get("generation") or 0)
    conditions = {c.get("type"): c for c in current.get("status", {}).get("conditions") or [] if c.get("type") != READY}
    required = _required(current)
    blocking: list[tuple[str, str]] = []
    for type_ in required:
        c = conditions.get(type_)
        if c is None:
            blocking.append((PENDING, f"waiting for the {type_} condition"))
        elif int(c.get("observedGeneration") or 0) != generation:
            blocking.append(
                (RECONCILING, f"{type_} is from generation {c.get('observedGeneration')}, not {generation}")
            )
        elif c.get("status") != "True":
            blocking.append((str(c.get("reason") or PENDING), str(c.get("message") or "")))
    observed = [int(c.get("observedGeneration") or 0) for c in conditions.values()]
    observed_generation = min(observed) if observed else None
    if not blocking:
        main = conditions[required[-1]]
        return Verdict(True, observed_generation, str(main.get("reason")), str(main.get("message") or ""))
    failing = [b for b in blocking if b[0] in FAILURE_REASONS]
    reason, message = (failing or blocking)[0]
    return Verdict(False, observed_generation, reason, message)


def readiness(current: Object) -> tuple[bool, int | None]:
    """``ready`` and ``observedGeneration`` from the conditions of the current generation."""
    found = verdict(current)
    return found.ready, found.observed_generation


def ready_condition(current: Object, now: dt.datetime | None = None) -> Object:
    """The ``Ready`` condition for ``current``; its transition time moves only with its status."""
    found = verdict(current)
    status = "True" if found.ready else "False"
    before = next((c for c in current.get("status", {}).get("conditions") or [] if c.get("type") == READY), None)
    if before is not None and before.get("status") == status and before.get("lastTransitionTime"):
        transition = str(before["lastTransitionTime"])
    else:
        transition = _format_time(now or dt.datetime.now(dt.UTC))
    return {
        "type": READY,
        "status": status,
        "reason": found.reason,
        "message": found.message,
        "lastTransitionTime": transition,
        "observedGeneration": int(current.get("metadata", {}).get("generation") or 0),
    }


def readiness_body(current: Object, now: dt.datetime | None = None) -> Object | None:
    """The status writer's own apply body, or None when ready, observedGeneration and Ready are current."""
    ready, observed = readiness(current)
    status = current.get("status", {})
    condition = ready_condition(current, now)
    have = next((c for c in status.get("conditions") or [] if c.get("type") == READY), None)
    if status.get("ready") == ready and status.get("observedGeneration") == observed and have == condition:
        return None
    body = _identity(current)
    body["status"] = {"ready": ready, "conditions": [condition]}
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
