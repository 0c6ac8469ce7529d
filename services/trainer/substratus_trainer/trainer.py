"""Reconcile one Dataset or Model: wait for the image and the dependencies, run the Job, report.

A :class:`reconciler.Reconciler` (``substratus_common.runtime.reconciler``): called with the
resource as the service's view holds it, it reads the Job and the dependencies from the view too
and returns the ``Complete`` condition, the artifacts URL and the children to apply. A Job
carries the hash of the spec it was built from: a spec with another hash replaces it (a new run,
deleted with a uid precondition by the runtime), the same hash only reads its state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from substratus_common import config, errors
from substratus_common.api import resources
from substratus_common.api.resources import Dataset, Model
from substratus_common.api.types import ConditionType, Reason
from substratus_common.events import payloads
from substratus_common.events.subjects import ResourceKey
from substratus_common.kube import client
from substratus_common.runtime import reconciler, report, view
from substratus_common.workloads import contract, gpu_table_file, gpus, job_status, plan
from substratus_trainer import jobs

log = logging.getLogger(__name__)

Object = dict[str, Any]
FIELD_MANAGER = "substratus-trainer"

SPEC = reconciler.Spec(
    durable="trainer",
    owned=("models", "datasets"),
    child_kinds=("job",),
    depends_on=("models", "datasets"),
    condition=ConditionType.COMPLETE,
)


def complete(status: bool, reason: str, message: str) -> payloads.ConditionReport:
    return report.condition(ConditionType.COMPLETE, status, reason, message)


class Trainer(reconciler.Reconciler):
    spec = SPEC
    field_manager = FIELD_MANAGER

    def __init__(
        self, kube: client.Kube, settings: config.Settings, table: gpu_table_file.TableFile, found: view.View
    ) -> None:
        self.kube, self.settings, self.table, self.view = kube, settings, table, found

    # ---- what the runtime asks -----------------------------------------------------------------

    def dependencies(self, obj: Object) -> Iterable[ResourceKey]:
        if obj.get("kind") != "Model":
            return []
        spec = obj.get("spec") or {}
        keys = [
            reconciler.ref_key(obj, "models", spec.get("model")),
            reconciler.ref_key(obj, "datasets", spec.get("dataset")),
        ]
        return [k for k in keys if k is not None]

    def baseline(self, obj: Object) -> reconciler.Outcome:
        return reconciler.Outcome((), self._artifacts_url(obj))

    def applied(self, child: Object) -> None:
        if child.get("kind") == "Job":
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
        try:
            resource = resources.parse(obj)
        except ValidationError as error:
            raise errors.PermanentError(resources.validation_message(error), reason=Reason.INVALID) from None
        if not isinstance(resource, Model | Dataset):
            raise errors.PermanentError(f"the trainer does not run {resource.kind}s", reason=Reason.INVALID)
        if resource.spec.image is None:
            message = "waiting for the image: spec.build runs first and sets spec.image"
            return reconciler.Outcome([complete(False, Reason.JOB_NOT_COMPLETE, message)], url)

        key = reconciler.key_of(obj)
        info = resources.kind_info(resource.kind)
        job_name = info.workload_name(key.name)
        wanted = contract.spec_hash(obj.get("spec") or {})
        job = self.view.child(key, "job", job_name)
        if job is not None and job["metadata"].get("deletionTimestamp"):
            raise errors.TemporaryError(f"waiting for the previous Job {job_name} to be deleted", delay_s=1.0)
        replace = plan.replace_if_changed(job, contract.SPEC_HASH, wanted)
        if job is not None and replace is None:
            return reconciler.Outcome([await self._job_condition(job)], url)

        waiting = self._waiting_for(resource, key.namespace)
        if waiting is not None:
            return reconciler.Outcome([complete(False, *waiting)], url)

        try:
            workload = jobs.build(obj, resource, self.settings, self.table.current(), wanted)
        except (gpus.UnknownGPUType, contract.ContractError) as error:
            raise errors.PermanentError(str(error), reason=Reason.INVALID) from None
        if replace is not None:
            # The spec changed: the Job template is immutable, so the old run is replaced.
            log.info("spec changed; replacing the Job", extra=_fields(obj, job=job_name))
        children = plan.ordered(
            workload.service_account, workload.claims, workload.volumes_to_bind, workload.configmap, [workload.job]
        )
        running = complete(False, Reason.JOB_NOT_COMPLETE, _running(job_name))
        return reconciler.Outcome([running], url, children=children, replace=replace)

    # ---- steps ---------------------------------------------------------------------------------

    def _artifacts_url(self, obj: Object) -> str:
        meta = obj["metadata"]
        plural = resources.kind_info(str(obj["kind"])).plural
        return jobs.artifacts_url(self.settings, plural, str(meta["namespace"]), str(meta["name"]))

    def _waiting_for(self, resource: Model | Dataset, namespace: str) -> tuple[str, str] | None:
        """(reason, message) naming every dependency that is missing or not ready, or None."""
        if not isinstance(resource, Model):
            return None
        deps = []
        if resource.spec.model is not None:
            deps.append(
                reconciler.Dependency(
                    "base Model",
                    "models",
                    resource.spec.model.name,
                    Reason.BASE_MODEL_NOT_FOUND,
                    Reason.BASE_MODEL_NOT_READY,
                )
            )
        if resource.spec.dataset is not None:
            deps.append(
                reconciler.Dependency(
                    "Dataset",
                    "datasets",
                    resource.spec.dataset.name,
                    Reason.DATASET_NOT_FOUND,
                    Reason.DATASET_NOT_READY,
                )
            )
        return reconciler.waiting_for(self.view, namespace, deps, "the Job starts by itself")

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
