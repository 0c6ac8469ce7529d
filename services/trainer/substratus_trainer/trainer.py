"""Reconcile one Dataset or Model: wait for the image and the dependencies, run the Job, report.

A :class:`reconciler.Reconciler` (``substratus_common.runtime.reconciler``): called with the
resource as the service's view holds it, it reads the Job and the dependencies from the view too
and returns the ``Complete`` condition, the artifacts URL and the children to apply. A Job
carries the hash of the spec it was built from: a spec with another hash replaces it (a new run,
deleted with a uid precondition by the runtime), the same hash only reads its state.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any, cast

from substratus_common.api import resources
from substratus_common.api.resources import Dataset, Model
from substratus_common.api.types import ConditionType, Reason
from substratus_common.events import payloads
from substratus_common.events.subjects import ResourceKey
from substratus_common.runtime import reconciler, report
from substratus_common.workloads import contract, job_status, ownership, plan
from substratus_trainer import jobs

log = logging.getLogger(__name__)

Object = dict[str, Any]
SPEC = reconciler.Spec(
    "trainer", ("models", "datasets"), ("job",), ("models", "datasets"), ConditionType.COMPLETE, watches=()
)
complete = functools.partial(report.condition, ConditionType.COMPLETE)
DEPENDENCIES = (reconciler.BASE_MODEL, reconciler.DATASET)
"""What a fine-tune Model waits for (a Dataset waits for nothing)."""


class Trainer(reconciler.Service):
    spec = SPEC

    # ---- what the runtime asks -----------------------------------------------------------------

    def dependencies(self, obj: Object) -> Iterable[ResourceKey]:
        return reconciler.depends(obj, DEPENDENCIES) if obj.get("kind") == "Model" else []

    def baseline(self, obj: Object) -> reconciler.Outcome:
        return reconciler.Outcome((), self._artifacts_url(obj))

    def applied(self, child: Object, *, created: bool) -> None:
        if child.get("kind") == "Job" and created:
            meta = child["metadata"]
            annotations = meta.get("annotations") or {}
            log.info(
                "Job created",
                extra={
                    "namespace": meta.get("namespace"),
                    "job": meta.get("name"),
                    "spec_hash": annotations.get(contract.SPEC_HASH),
                },
            )

    def summary(self, kind: str, child: Object) -> object:
        """A Job wakes its owner when its run state changes, not on each Pod it counts."""
        state = job_status.state_of(child)
        meta = child.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        deleting = bool(meta.get("deletionTimestamp"))
        return meta.get("uid"), annotations.get(contract.SPEC_HASH), deleting, state.phase, state.failed_attempts

    async def reconcile(self, obj: Object) -> reconciler.Outcome:
        url = self._artifacts_url(obj)
        resource = cast("Model | Dataset", reconciler.parse(obj, (Model, Dataset), "trainer"))
        if resource.spec.image is None:
            message = "waiting for the image: spec.build runs first and sets spec.image"
            return reconciler.Outcome([complete(False, Reason.JOB_NOT_COMPLETE, message)], url)

        key = reconciler.key_of(obj)
        info = resources.kind_info(resource.kind)
        job_name = info.workload_name(key.name)
        wanted = contract.spec_hash(obj.get("spec") or {})
        # From the view only: a Job it does not show yet is created with a plain create, which
        # finds one that exists and checks who controls it (no GET before each create).
        job = self.view.child(key, "job", job_name)
        if job is not None:
            ownership.check(job, obj, "Job")  # never a Job this Model does not control
        replace = plan.replace_if_changed(job, contract.SPEC_HASH, wanted)
        if job is not None and replace is None:
            return reconciler.Outcome([await self._job_condition(job)], url)

        waiting = None
        if isinstance(resource, Model):
            waiting = reconciler.waiting_for(self.view, obj, DEPENDENCIES, "the Job starts by itself")
        if waiting is not None:
            return reconciler.Outcome([complete(False, *waiting)], url)

        with reconciler.refused_specs():
            workload = jobs.build(obj, resource, self.settings, self.runtime.gpu_table.current(), wanted)
        if replace is not None:
            # The spec changed: the Job template is immutable, so the old run is replaced.
            log.info("spec changed; replacing the Job", extra=_fields(obj, job=job_name))
        children = workload.children()
        running = complete(False, Reason.JOB_NOT_COMPLETE, _running(job_name))
        return reconciler.Outcome([running], url, children=children, replace=replace)

    # ---- steps ---------------------------------------------------------------------------------

    def _artifacts_url(self, obj: Object) -> str:
        meta = obj["metadata"]
        plural = resources.kind_info(str(obj["kind"])).plural
        return jobs.artifacts_url(self.settings, plural, str(meta["namespace"]), str(meta["name"]))

    async def _job_condition(self, job: Object) -> payloads.ConditionReport:
        name = job["metadata"]["name"]
        state = job_status.state_of(job)
        if state.phase == "complete":
            return complete(True, Reason.JOB_COMPLETE, f"Job {name} completed")
        if state.phase == "failed":
            message = f"Job {name} failed ({state.detail})"
            pod = await reconciler.failed_pod_message(self.kube, job)
            if pod:
                message += f"; {pod}"
            message += "; change the spec to run it again"
            return complete(False, Reason.JOB_FAILED, message)
        message = _running(name)
        if state.failed_attempts:
            message += f" ({state.failed_attempts} failed attempt(s) of {state.attempts})"
        return complete(False, Reason.JOB_NOT_COMPLETE, message)


def _running(job_name: str) -> str:
    """The message while a Job runs; the same from creation to completion, so it is reported once."""
    return f"Job {job_name} has not completed; follow it with: kubectl logs -f job/{job_name}"


def _fields(obj: Object, **extra: object) -> dict[str, object]:
    meta = obj.get("metadata", {})
    return {"kind": obj.get("kind"), "namespace": meta.get("namespace"), "object": meta.get("name"), **extra}
