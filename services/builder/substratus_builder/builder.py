"""Reconcile one resource's ``spec.build``: build its image once per build, report ``Built`` and the image.

A :class:`reconciler.Reconciler` for every kind, called with the resource as the view holds it.
What to build, the image name and the Kaniko Job come from ``substratus_common.workloads.builds``;
only the last step differs between the executors:

- ``job`` (default): the Job ``<name>-<kind>-bld`` builds and pushes; its state (from the view)
  becomes ``Built``. A Job with another build's hash is replaced (uid precondition); one with this
  hash is only read.
- ``local``: buildah builds on this machine in the root task ``local-builds``, not inside a pass:
  the pass hands the build over and reports ``Built=False/JobNotComplete``; the finished build
  enqueues its key, and the next pass reports the result.

A build runs once per build identity (the resource's uid and the hash of ``spec.build``,
docs/adr/106): a finished build is remembered in this process and recorded in the ``Built``
message (``[build <hash>]``), so it runs again only when ``spec.build`` changes — never on a
resync, a restart, a deleted Job, or events that arrive before its report is written. On success
the report carries ``image`` (which the status writer sets as ``spec.image``) with
``Built=False/JobNotComplete`` "pushed …"; ``Built=True`` is reported from the generation whose
``spec.image`` is the built image, so it is never seen at an older generation.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from typing import Any

from substratus_builder import local
from substratus_common import errors
from substratus_common.api import labels
from substratus_common.api.types import ConditionType, Reason
from substratus_common.events.subjects import ResourceKey
from substratus_common.kube import resources as kube_resources
from substratus_common.runtime import reconciler, report, service
from substratus_common.storage import errors as storage_errors
from substratus_common.workloads import builds, job_status, ownership, plan, pod_security

log = logging.getLogger(__name__)

Object = dict[str, Any]
Identity = tuple[str, str]
"""(uid, build hash): one build."""

SPEC = reconciler.Spec(
    "builder",
    ("models", "datasets", "servers", "notebooks"),
    ("job",),
    condition=ConditionType.BUILT,
    watches=(ConditionType.UPLOADED,),  # an upload build waits for the uploader's verdict
)
built = functools.partial(report.condition, ConditionType.BUILT)


class Builder(reconciler.Reconciler):
    spec = SPEC

    def __init__(self, runtime: reconciler.Runtime, executor: local.LocalExecutor | None = None) -> None:
        self.runtime, self.executor = runtime, executor
        self._finished: dict[Identity, tuple[bool, str]] = {}
        """Builds finished in this process: (ok, message)."""
        self._handed: dict[Identity, ResourceKey] = {}
        """Builds handed to the local executor and not finished yet."""
        self._todo: asyncio.Queue[tuple[ResourceKey, Identity, builds.Plan]] = asyncio.Queue()

    def summary(self, kind: str, child: Object) -> object:
        meta = child.get("metadata") or {}
        if (meta.get("labels") or {}).get(labels.ROLE) != builds.ROLE:
            return reconciler.UNWATCHED  # the trainer's Jobs of the same Model: nothing of them matters here
        state = job_status.state_of(child)
        return meta.get("uid"), (meta.get("annotations") or {}).get(builds.BUILD_HASH), state.phase

    def applied(self, child: Object, *, created: bool) -> None:
        if child.get("kind") == "Job" and created:
            meta = child["metadata"]
            build_hash = (meta.get("annotations") or {}).get(builds.BUILD_HASH)
            log.info(
                "build Job created",
                extra={"namespace": meta.get("namespace"), "job": meta.get("name"), "build_hash": build_hash},
            )

    def root_tasks(self) -> Mapping[str, service.RootTask]:
        return {"local-builds": self._run_local_builds} if self.executor is not None else {}

    async def reconcile(self, obj: Object) -> reconciler.Outcome:
        try:
            wanted = builds.plan(obj, self.runtime.settings)
        except builds.BuildError as error:
            raise errors.PermanentError(str(error), reason=Reason.INVALID) from None
        if wanted is None:
            return reconciler.Outcome(())
        identity = (str(obj["metadata"].get("uid")), wanted.build_hash)
        done = self._finished.get(identity) or builds.recorded(obj, wanted)
        if done is None:
            outcome = await (
                self._build_locally(obj, wanted, identity)
                if self.executor is not None
                else self._build_in_job(obj, wanted)
            )
            done = _finished(outcome)
            if done is None:
                return outcome
        self._finished[identity] = done
        return _recorded(obj, wanted, done)

    # ---- the Job executor ----------------------------------------------------------------------

    async def _build_in_job(self, obj: Object, wanted: builds.Plan) -> reconciler.Outcome:
        key = reconciler.key_of(obj)
        job = self.runtime.view.child(key, "job", wanted.job_name)
        if job is None:
            # Not in the view: make sure no Job of that name exists (someone else's is not adopted).
            job = await self.runtime.kube.get(kube_resources.JOB, key.namespace, wanted.job_name)
        if job is not None:
            ownership.check(job, obj, "Job")
        replace = plan.replace_if_changed(job, builds.BUILD_HASH, wanted.build_hash)
        if job is not None and replace is None:
            return await self._from_job(wanted, job)
        waiting = builds.upload_waiting(obj, wanted)
        if waiting is not None:
            return reconciler.Outcome([built(False, Reason.AWAITING_UPLOAD, waiting)])
        if await self.runtime.pod_security(wanted.namespace) == pod_security.RESTRICTED:
            refused = pod_security.refusal("a Kaniko build runs as root", wanted.namespace)
            raise errors.PermanentError(refused, reason=Reason.FORBIDDEN)
        try:
            manifest = builds.kaniko_job(obj, wanted, self.runtime.settings)
        except builds.BuildError as error:
            raise errors.PermanentError(str(error), reason=Reason.INVALID) from None
        if replace is not None:
            log.info("build changed; replacing the Job", extra=_fields(wanted))
        running = built(False, Reason.JOB_NOT_COMPLETE, _job_running(wanted))
        return reconciler.Outcome(
            [running], children=[builds.service_account(wanted.namespace), manifest], replace=replace
        )

    async def _from_job(self, wanted: builds.Plan, job: Object) -> reconciler.Outcome:
        state = job_status.state_of(job)
        if state.phase == "complete":
            return reconciler.Outcome([built(True, Reason.JOB_COMPLETE, builds.built_message(wanted))])
        if state.phase == "failed":
            why = f"build Job {wanted.job_name} failed ({state.detail})"
            pods = await reconciler.failed_pod_message(self.runtime.kube, job)
            if pods:
                why += f"; {pods}"
            return reconciler.Outcome([built(False, Reason.JOB_FAILED, builds.failed_message(wanted, why))])
        return reconciler.Outcome([built(False, Reason.JOB_NOT_COMPLETE, _job_running(wanted))])

    # ---- the local executor --------------------------------------------------------------------

    async def _build_locally(self, obj: Object, wanted: builds.Plan, identity: Identity) -> reconciler.Outcome:
        assert self.executor is not None
        waiting = builds.upload_waiting(obj, wanted)
        if waiting is not None:
            return reconciler.Outcome([built(False, Reason.AWAITING_UPLOAD, waiting)])
        if identity not in self._handed:
            key = reconciler.key_of(obj)
            self._handed[identity] = key
            self._todo.put_nowait((key, identity, wanted))
        running = builds.running_message(wanted, self.executor.where(wanted))
        return reconciler.Outcome([built(False, Reason.JOB_NOT_COMPLETE, running)])

    async def _run_local_builds(self, ctx: service.Context) -> None:
        """Root task: run the handed-over builds one at a time; each finished one enqueues its key.

        First, every resource whose ``Built`` says a build was running (this process died during
        it) is enqueued, so its build is handed over again: its message was acked long ago."""
        for obj in [o for p in SPEC.owned for o in self.runtime.view.find(p, _was_building)]:
            self.runtime.enqueue(reconciler.key_of(obj))
        stop = asyncio.create_task(ctx.stop.wait())
        try:
            while not ctx.stop.is_set():
                getter = asyncio.create_task(self._todo.get())
                await asyncio.wait([getter, stop], return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                key, identity, wanted = getter.result()
                try:
                    self._finished[identity] = await self._build_one(wanted)
                except storage_errors.StorageError as error:
                    # Storage is away (or refuses us): nothing is recorded; the next pass hands it over again.
                    log.warning("could not read the build context", extra={**_fields(wanted), "error": str(error)})
                finally:
                    self._handed.pop(identity, None)
                self.runtime.enqueue(key)
        finally:
            stop.cancel()

    async def _build_one(self, wanted: builds.Plan) -> tuple[bool, str]:
        assert self.executor is not None
        log.info("building locally", extra=_fields(wanted))
        result = await self.executor.build(wanted)
        if result.ok:
            log.info("built locally", extra=_fields(wanted))
            return True, builds.built_message(wanted)
        log.warning("local build failed", extra={**_fields(wanted), "detail": result.detail})
        return False, builds.failed_message(wanted, f"the build failed: {result.detail}")


def _was_building(obj: Object) -> bool:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ConditionType.BUILT:
            return c.get("reason") == Reason.JOB_NOT_COMPLETE and str(c.get("message", "")).startswith("building ")
    return False


def _finished(outcome: reconciler.Outcome) -> tuple[bool, str] | None:
    """(ok, message) when the outcome is a finished build; None while it waits or runs."""
    for c in outcome.conditions:
        if c.type == ConditionType.BUILT and c.reason in (Reason.JOB_COMPLETE, Reason.JOB_FAILED):
            return c.reason == Reason.JOB_COMPLETE, c.message
    return None


def _recorded(obj: Object, wanted: builds.Plan, done: tuple[bool, str]) -> reconciler.Outcome:
    """A finished build's outcome at this generation: ``Built=True`` only once ``spec.image`` is its
    image; before that "pushed" and the image, which the status writer sets (a new generation)."""
    ok, message = done
    if not ok:
        return reconciler.Outcome([built(False, Reason.JOB_FAILED, message)])
    if (obj.get("spec") or {}).get("image") == wanted.image:
        return reconciler.Outcome([built(True, Reason.JOB_COMPLETE, message)], image=wanted.image)
    pushed = built(False, Reason.JOB_NOT_COMPLETE, builds.pushed_message(wanted))
    return reconciler.Outcome([pushed], image=wanted.image)


def _job_running(wanted: builds.Plan) -> str:
    where = f"in Job {wanted.job_name}; follow it with: kubectl logs -f job/{wanted.job_name}"
    return builds.running_message(wanted, where)


def _fields(wanted: builds.Plan) -> dict[str, object]:
    where = {"kind": wanted.kind, "namespace": wanted.namespace, "object": wanted.name}
    return {**where, "image": wanted.image, "build_hash": wanted.build_hash}
