"""Reconcile one Dataset or Model: wait for the image and the dependencies, run the Job, report.

Called by the manager loop (``substratus_common.runtime.manager``) with the resource as read from
the API; returns the ``Complete`` condition and the artifacts URL to report. A Job carries the
hash of the spec it was built from: a spec with another hash replaces it (a new run), the same
hash only reads its state.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from substratus_common import config, errors
from substratus_common.api import resources
from substratus_common.api.resources import Dataset, Model
from substratus_common.api.types import ConditionType, Reason
from substratus_common.events import payloads
from substratus_common.kube import client
from substratus_common.kube import resources as kinds
from substratus_common.runtime import manager, report
from substratus_common.workloads import contract, gpu_table_file, gpus, job_status, storage_mounts
from substratus_trainer import jobs

log = logging.getLogger(__name__)

Object = dict[str, Any]
FIELD_MANAGER = "substratus-trainer"


def complete(status: bool, reason: str, message: str) -> payloads.ConditionReport:
    return report.condition(ConditionType.COMPLETE, status, reason, message)


class Trainer:
    def __init__(self, kube: client.Kube, settings: config.Settings, table: gpu_table_file.TableFile) -> None:
        self.kube, self.settings, self.table = kube, settings, table
        self.jobs_created = 0

    # ---- what the manager asks -----------------------------------------------------------------

    def dependencies(self, obj: Object) -> list[manager.Key]:
        if obj.get("kind") != "Model":
            return []
        spec = obj.get("spec") or {}
        keys = [
            manager.ref_key(obj, "models", spec.get("model")),
            manager.ref_key(obj, "datasets", spec.get("dataset")),
        ]
        return [k for k in keys if k is not None]

    def baseline(self, obj: Object) -> manager.Outcome:
        return manager.Outcome((), self._artifacts_url(obj))

    async def reconcile(self, obj: Object) -> manager.Outcome:
        url = self._artifacts_url(obj)
        try:
            resource = resources.parse(obj)
        except ValidationError as error:
            raise errors.PermanentError(resources.validation_message(error), reason=Reason.INVALID) from None
        if not isinstance(resource, Model | Dataset):
            raise errors.PermanentError(f"the trainer does not run {resource.kind}s", reason=Reason.INVALID)
        if resource.spec.image is None:
            message = "waiting for the image: spec.build runs first and sets spec.image"
            return manager.Outcome([complete(False, Reason.JOB_NOT_COMPLETE, message)], url)

        meta = obj["metadata"]
        namespace, name = str(meta["namespace"]), str(meta["name"])
        info = resources.kind_info(resource.kind)
        job_name = info.workload_name(name)
        wanted = contract.spec_hash(obj.get("spec") or {})
        job = await self.kube.get(kinds.JOB, namespace, job_name)
        if job is not None and job["metadata"].get("deletionTimestamp"):
            raise errors.TemporaryError(f"waiting for the previous Job {job_name} to be deleted", delay_s=1.0)
        if job is not None and (job["metadata"].get("annotations") or {}).get(contract.SPEC_HASH) == wanted:
            return manager.Outcome([await self._job_condition(job)], url)

        waiting = await self._waiting_for(resource, namespace)
        if waiting is not None:
            return manager.Outcome([complete(False, *waiting)], url)

        try:
            workload = jobs.build(obj, resource, self.settings, self.table.current(), wanted)
        except (gpus.UnknownGPUType, contract.ContractError) as error:
            raise errors.PermanentError(str(error), reason=Reason.INVALID) from None
        if job is not None:
            # The spec changed: the Job template is immutable, so the old run is replaced.
            log.info("spec changed; replacing the Job", extra=_fields(obj, job=job_name))
            # Only the Job read above: if another replica replaced it meanwhile, this is a Conflict
            # (retried, and the next read finds the new Job) rather than deleting the new run.
            await self.kube.delete(
                kinds.JOB, namespace, job_name, propagation="Background", uid=job["metadata"].get("uid")
            )
            if await self.kube.get(kinds.JOB, namespace, job_name) is not None:
                raise errors.TemporaryError(f"waiting for the previous Job {job_name} to be deleted", delay_s=1.0)
        await self._apply(workload)
        self.jobs_created += 1
        log.info("Job created", extra=_fields(obj, job=job_name, spec_hash=wanted))
        return manager.Outcome([complete(False, Reason.JOB_NOT_COMPLETE, _running(job_name))], url)

    # ---- steps ---------------------------------------------------------------------------------

    def _artifacts_url(self, obj: Object) -> str:
        meta = obj["metadata"]
        plural = resources.kind_info(str(obj["kind"])).plural
        return jobs.artifacts_url(self.settings, plural, str(meta["namespace"]), str(meta["name"]))

    async def _waiting_for(self, resource: Model | Dataset, namespace: str) -> tuple[str, str] | None:
        """(reason, message) naming every dependency that is missing or not ready, or None."""
        if not isinstance(resource, Model):
            return None
        deps = []
        if resource.spec.model is not None:
            deps.append(
                manager.Dependency(
                    "base Model",
                    resource.spec.model.name,
                    kinds.MODEL,
                    Reason.BASE_MODEL_NOT_FOUND,
                    Reason.BASE_MODEL_NOT_READY,
                )
            )
        if resource.spec.dataset is not None:
            deps.append(
                manager.Dependency(
                    "Dataset",
                    resource.spec.dataset.name,
                    kinds.DATASET,
                    Reason.DATASET_NOT_FOUND,
                    Reason.DATASET_NOT_READY,
                )
            )
        return await manager.waiting_for(self.kube, namespace, deps, "the Job starts by itself")

    async def _apply(self, workload: jobs.Workload) -> None:
        await self.kube.apply(workload.service_account, FIELD_MANAGER)
        claims = {}
        for claim in workload.claims:
            applied = await self.kube.apply(claim, FIELD_MANAGER)
            claims[claim["metadata"]["name"]] = applied
        for volume in workload.volumes_to_bind:
            claim = claims.get(volume["spec"]["claimRef"]["name"], {})
            bound = storage_mounts.bind_claim(volume, claim)
            await self.kube.apply(bound, FIELD_MANAGER)
        await self.kube.apply(workload.configmap, FIELD_MANAGER)
        await self.kube.apply(workload.job, FIELD_MANAGER)

    async def _job_condition(self, job: Object) -> payloads.ConditionReport:
        name = job["metadata"]["name"]
        state = job_status.state_of(job)
        if state.phase == "complete":
            return complete(True, Reason.JOB_COMPLETE, f"Job {name} completed")
        if state.phase == "failed":
            message = f"Job {name} failed ({state.detail})"
            pod = await self._failed_pod_message(job)
            if pod:
                message += f"; {pod}"
            message += "; change the spec to run it again"
            return complete(False, Reason.JOB_FAILED, message)
        message = _running(name)
        if state.failed_attempts:
            message += f" ({state.failed_attempts} failed attempt(s) of {state.attempts})"
        return complete(False, Reason.JOB_NOT_COMPLETE, message)

    async def _failed_pod_message(self, job: Object) -> str:
        """Why the newest failed Pod of the Job failed (exit codes, reasons, messages)."""
        uid = job["metadata"].get("uid")
        if not uid:
            return ""
        selector = f"{job_status.POD_SELECTOR_LABEL}={uid}"
        listed = await self.kube.list(kinds.POD, job["metadata"]["namespace"], label_selector=selector)
        return job_status.failed_pod_summary(listed.items)


def _running(job_name: str) -> str:
    """The message while a Job runs; the same from creation to completion, so it is reported once."""
    return f"Job {job_name} has not completed; follow it with: kubectl logs -f job/{job_name}"


def _fields(obj: Object, **extra: object) -> dict[str, object]:
    meta = obj.get("metadata", {})
    return {"kind": obj.get("kind"), "namespace": meta.get("namespace"), "object": meta.get("name"), **extra}
