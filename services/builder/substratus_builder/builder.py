"""Reconcile one resource's ``spec.build``: build its image once per build, report ``Built`` and the image.

Called by the manager loop (``substratus_common.runtime.manager``) for every kind, with the
resource as read from the API. What to build, the image name and the Kaniko Job come from
``substratus_common.workloads.builds``; only the last step differs between the executors:

- ``job`` (default): the Job ``<name>-<kind>-bld`` builds and pushes; its state becomes ``Built``.
  A Job with another build's hash is replaced; one with this hash is only read.
- ``local``: buildah builds on this machine inside the handler (the runtime heartbeats the
  message); ``Built=False/JobNotComplete`` is reported before it starts.

A build runs once per build identity (the resource's uid and the hash of ``spec.build``,
docs/adr/106): a finished build is remembered in this process and recorded in the ``Built``
message (``[build <hash>]``), so it runs again only when ``spec.build`` changes — never on a
resync, a restart, a deleted Job, or events that arrive before its report is written. On success
the report carries ``image`` (which the status writer sets as ``spec.image``) with
``Built=False/JobNotComplete`` "pushed …"; ``Built=True`` is reported from the generation whose
``spec.image`` is the built image, so it is never seen at an older generation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from substratus_builder import local
from substratus_common import config, errors
from substratus_common.api.types import ConditionType, Reason
from substratus_common.events import payloads
from substratus_common.kube import client
from substratus_common.kube import resources as kinds
from substratus_common.runtime import manager, report
from substratus_common.storage import errors as storage_errors
from substratus_common.workloads import builds, job_status

log = logging.getLogger(__name__)

Object = dict[str, Any]
FIELD_MANAGER = "substratus-builder"
Progress = Callable[[Object, manager.Outcome], Awaitable[object]]
"""Publishes an outcome before a long step (the local executor's build)."""


def built(status: bool, reason: str, message: str) -> payloads.ConditionReport:
    return report.condition(ConditionType.BUILT, status, reason, message)


async def _no_progress(obj: Object, outcome: manager.Outcome) -> None:
    return None


class Builder:
    def __init__(
        self,
        kube: client.Kube,
        settings: config.Settings,
        executor: local.LocalExecutor | None = None,
        progress: Progress = _no_progress,
    ) -> None:
        self.kube, self.settings, self.executor, self.progress = kube, settings, executor, progress
        self.jobs_created = 0
        self._finished: dict[tuple[str, str], tuple[bool, str]] = {}
        """(uid, build hash) → (ok, message) of builds finished in this process."""

    async def reconcile(self, obj: Object) -> manager.Outcome:
        try:
            plan = builds.plan(obj, self.settings)
        except builds.BuildError as error:
            raise errors.PermanentError(str(error), reason=Reason.INVALID) from None
        if plan is None:
            return manager.Outcome(())
        identity = (str(obj["metadata"].get("uid")), plan.build_hash)
        done = self._finished.get(identity) or builds.recorded(obj, plan)
        if done is None:
            outcome = await (
                self._build_locally(obj, plan) if self.executor is not None else self._build_in_job(obj, plan)
            )
            done = _finished(outcome)
            if done is None:
                return outcome
        self._finished[identity] = done
        return _recorded(obj, plan, done)

    # ---- the Job executor ----------------------------------------------------------------------

    async def _build_in_job(self, obj: Object, plan: builds.Plan) -> manager.Outcome:
        job = await self.kube.get(kinds.JOB, plan.namespace, plan.job_name)
        if job is not None and job["metadata"].get("deletionTimestamp"):
            raise errors.TemporaryError(f"waiting for the previous Job {plan.job_name} to be deleted", delay_s=1.0)
        if job is not None and (job["metadata"].get("annotations") or {}).get(builds.BUILD_HASH) == plan.build_hash:
            return await self._from_job(plan, job)
        waiting = builds.upload_waiting(obj, plan)
        if waiting is not None:
            return manager.Outcome([built(False, Reason.AWAITING_UPLOAD, waiting)])
        try:
            manifest = builds.kaniko_job(obj, plan, self.settings)
        except builds.BuildError as error:
            raise errors.PermanentError(str(error), reason=Reason.INVALID) from None
        if job is not None:
            # Another build: the Job template is immutable, so the old build's Job is replaced.
            log.info("build changed; replacing the Job", extra=_fields(plan))
            # Only the Job read above (uid precondition): another replica's new Job is never deleted.
            await self.kube.delete(
                kinds.JOB, plan.namespace, plan.job_name, propagation="Background", uid=job["metadata"].get("uid")
            )
            if await self.kube.get(kinds.JOB, plan.namespace, plan.job_name) is not None:
                raise errors.TemporaryError(f"waiting for the previous Job {plan.job_name} to be deleted", delay_s=1.0)
        await self.kube.apply(builds.service_account(plan.namespace), FIELD_MANAGER)
        await self.kube.apply(manifest, FIELD_MANAGER)
        self.jobs_created += 1
        log.info("build Job created", extra=_fields(plan))
        return manager.Outcome([built(False, Reason.JOB_NOT_COMPLETE, _job_running(plan))])

    async def _from_job(self, plan: builds.Plan, job: Object) -> manager.Outcome:
        state = job_status.state_of(job)
        if state.phase == "complete":
            return manager.Outcome([built(True, Reason.JOB_COMPLETE, builds.built_message(plan))], image=plan.image)
        if state.phase == "failed":
            why = f"build Job {plan.job_name} failed ({state.detail})"
            pods = await self._failed_pods(job)
            if pods:
                why += f"; {pods}"
            return manager.Outcome([built(False, Reason.JOB_FAILED, builds.failed_message(plan, why))])
        return manager.Outcome([built(False, Reason.JOB_NOT_COMPLETE, _job_running(plan))])

    async def _failed_pods(self, job: Object) -> str:
        uid = job["metadata"].get("uid")
        if not uid:
            return ""
        selector = f"{job_status.POD_SELECTOR_LABEL}={uid}"
        listed = await self.kube.list(kinds.POD, job["metadata"]["namespace"], label_selector=selector)
        return job_status.failed_pod_summary(listed.items)

    # ---- the local executor --------------------------------------------------------------------

    async def _build_locally(self, obj: Object, plan: builds.Plan) -> manager.Outcome:
        assert self.executor is not None
        waiting = builds.upload_waiting(obj, plan)
        if waiting is not None:
            return manager.Outcome([built(False, Reason.AWAITING_UPLOAD, waiting)])
        running = builds.running_message(plan, self.executor.where(plan))
        await self.progress(obj, manager.Outcome([built(False, Reason.JOB_NOT_COMPLETE, running)]))
        log.info("building locally", extra=_fields(plan))
        try:
            result = await self.executor.build(plan)
        except storage_errors.StorageError as error:
            if error.retryable:
                raise
            raise errors.PermanentError(
                f"storage refused the builder ({error.message}); an operator must fix the bucket or its credentials",
                reason=Reason.FORBIDDEN,
            ) from error
        if result.ok:
            log.info("built locally", extra=_fields(plan))
            return manager.Outcome([built(True, Reason.JOB_COMPLETE, builds.built_message(plan))], image=plan.image)
        log.warning("local build failed", extra={**_fields(plan), "detail": result.detail})
        message = builds.failed_message(plan, f"the build failed: {result.detail}")
        return manager.Outcome([built(False, Reason.JOB_FAILED, message)])


def _finished(outcome: manager.Outcome) -> tuple[bool, str] | None:
    """(ok, message) when the outcome is a finished build; None while it waits or runs."""
    for c in outcome.conditions:
        if c.type == ConditionType.BUILT and c.reason in (Reason.JOB_COMPLETE, Reason.JOB_FAILED):
            return c.reason == Reason.JOB_COMPLETE, c.message
    return None


def _recorded(obj: Object, plan: builds.Plan, done: tuple[bool, str]) -> manager.Outcome:
    """A finished build's outcome at this generation: ``Built=True`` only once ``spec.image`` is its
    image; before that "pushed" and the image, which the status writer sets (a new generation)."""
    ok, message = done
    if not ok:
        return manager.Outcome([built(False, Reason.JOB_FAILED, message)])
    if (obj.get("spec") or {}).get("image") == plan.image:
        return manager.Outcome([built(True, Reason.JOB_COMPLETE, message)], image=plan.image)
    return manager.Outcome([built(False, Reason.JOB_NOT_COMPLETE, builds.pushed_message(plan))], image=plan.image)


def _job_running(plan: builds.Plan) -> str:
    where = f"in Job {plan.job_name}; follow it with: kubectl logs -f job/{plan.job_name}"
    return builds.running_message(plan, where)


def _fields(plan: builds.Plan) -> dict[str, object]:
    return {
        "kind": plan.kind,
        "namespace": plan.namespace,
        "object": plan.name,
        "image": plan.image,
        "build_hash": plan.build_hash,
    }
