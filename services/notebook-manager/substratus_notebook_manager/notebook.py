"""Reconcile one Notebook: keep its token and working files, run or stop its Pod, report ``Serving``.

Called by the manager loop (``substratus_common.runtime.manager``) with the Notebook as read from
the API. The Pod is a bare Pod, not a Deployment: a Pod that is deleted (suspend, its node lost,
a user's ``kubectl delete``) is seen through its change event and created again unless the
Notebook is suspended; its files live on the PVC, which outlives the Pod.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from pydantic import ValidationError

from substratus_common import config, errors
from substratus_common.api import resources
from substratus_common.api.resources import Notebook
from substratus_common.api.types import ConditionType, Reason
from substratus_common.events import payloads
from substratus_common.kube import client
from substratus_common.kube import errors as kube_errors
from substratus_common.kube import resources as kinds
from substratus_common.runtime import manager, report
from substratus_common.workloads import contract, gpu_table_file, gpus, pod_status, storage_mounts
from substratus_notebook_manager import pods

log = logging.getLogger(__name__)

Object = dict[str, Any]
FIELD_MANAGER = "substratus-notebook-manager"


def serving(status: bool, reason: str, message: str) -> payloads.ConditionReport:
    return report.condition(ConditionType.SERVING, status, reason, message)


class NotebookManager:
    def __init__(self, kube: client.Kube, settings: config.Settings, table: gpu_table_file.TableFile) -> None:
        self.kube, self.settings, self.table = kube, settings, table
        self.pods_created = 0

    # ---- what the manager asks -----------------------------------------------------------------

    def dependencies(self, obj: Object) -> list[manager.Key]:
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
            notebook = resources.parse(obj)
        except ValidationError as error:
            raise errors.PermanentError(resources.validation_message(error), reason=Reason.INVALID) from None
        if not isinstance(notebook, Notebook):
            raise errors.PermanentError(f"the notebook-manager does not run {notebook.kind}s", reason=Reason.INVALID)
        meta = obj["metadata"]
        namespace, name = str(meta["namespace"]), str(meta["name"])
        pod_name = pods.pod_name(name)
        pod = await self.kube.get(kinds.POD, namespace, pod_name)

        if notebook.spec.suspend is True:
            if pod is not None and not pod["metadata"].get("deletionTimestamp"):
                await self.kube.delete(kinds.POD, namespace, pod_name)
                log.info("suspended: Pod deleted, PVC and Secret kept", extra=_fields(obj, pod=pod_name))
            message = f"suspended: Pod {pod_name} stopped, /content kept; set spec.suspend to false to resume"
            return manager.Outcome([serving(False, Reason.SUSPENDED, message)], url)

        wanted = pods.spec_hash(obj)
        if pod is not None:
            if pod["metadata"].get("deletionTimestamp"):
                # Its deletion is an event on the Notebook's child subject: the new Pod follows it.
                message = f"Pod {pod_name} is terminating; a new one starts once it is gone"
                return manager.Outcome([serving(False, Reason.POD_NOT_READY, message)], url)
            why = self._replace_because(obj, pod, wanted)
            if why is None:
                return manager.Outcome([self._pod_condition(pod, name)], url)
            log.info("replacing the Pod", extra=_fields(obj, pod=pod_name, why=why))
            await self.kube.delete(kinds.POD, namespace, pod_name)
            message = f"Pod {pod_name} is being replaced ({why}); the new one starts once it is gone"
            return manager.Outcome([serving(False, Reason.POD_NOT_READY, message)], url)

        if notebook.spec.image is None:
            message = "waiting for the image: spec.build runs first and sets spec.image"
            return manager.Outcome([serving(False, Reason.POD_NOT_READY, message)], url)
        waiting = await self._waiting_for(notebook, namespace)
        if waiting is not None:
            return manager.Outcome([serving(False, *waiting)], url)

        try:
            workload = pods.build(obj, notebook, self.settings, self.table.current(), wanted)
        except (gpus.UnknownGPUType, contract.ContractError) as error:
            raise errors.PermanentError(str(error), reason=Reason.INVALID) from None
        await self._ensure_token(obj)
        created = await self._apply(obj, workload)
        self.pods_created += 1
        log.info("Pod created", extra=_fields(obj, pod=pod_name, spec_hash=wanted))
        return manager.Outcome([self._pod_condition(created, name)], url)

    # ---- steps ---------------------------------------------------------------------------------

    def _artifacts_url(self, obj: Object) -> str:
        meta = obj["metadata"]
        return pods.artifacts_url(self.settings, str(meta["namespace"]), str(meta["name"]))

    def _replace_because(self, obj: Object, pod: Object, wanted: str) -> str | None:
        """Why the existing Pod cannot stay, or None when it is the one this spec asks for."""
        owners = [r.get("uid") for r in pod["metadata"].get("ownerReferences") or []]
        if obj["metadata"].get("uid") not in owners:
            return "it belongs to an earlier Notebook of this name"
        if (pod["metadata"].get("annotations") or {}).get(contract.SPEC_HASH) != wanted:
            return "the spec changed"
        if pod_status.is_finished(pod):
            return f"it ended ({pod.get('status', {}).get('phase')})"
        return None

    def _pod_condition(self, pod: Object, name: str) -> payloads.ConditionReport:
        if pod_status.is_ready(pod):
            message = f"Pod {pod['metadata']['name']} is ready; open it with: kubectl notebook {name}"
            return serving(True, Reason.POD_READY, message)
        return serving(False, Reason.POD_NOT_READY, pod_status.not_ready_message(pod))

    async def _waiting_for(self, notebook: Notebook, namespace: str) -> tuple[str, str] | None:
        """(reason, message) naming every dependency that is missing or not ready, or None."""
        deps = []
        if notebook.spec.model is not None:
            deps.append(
                manager.Dependency(
                    "Model", notebook.spec.model.name, kinds.MODEL, Reason.MODEL_NOT_FOUND, Reason.MODEL_NOT_READY
                )
            )
        if notebook.spec.dataset is not None:
            deps.append(
                manager.Dependency(
                    "Dataset",
                    notebook.spec.dataset.name,
                    kinds.DATASET,
                    Reason.DATASET_NOT_FOUND,
                    Reason.DATASET_NOT_READY,
                )
            )
        return await manager.waiting_for(self.kube, namespace, deps, "the notebook starts by itself")

    async def _ensure_token(self, obj: Object) -> None:
        """The token Secret, created once with a new random token; never rewritten (clients hold it)."""
        meta = obj["metadata"]
        namespace, name = str(meta["namespace"]), pods.secret_name(str(meta["name"]))
        existing = await self.kube.get(kinds.SECRET, namespace, name)
        if existing is not None:
            owners = [r.get("uid") for r in existing["metadata"].get("ownerReferences") or []]
            if meta.get("uid") in owners:
                return
            # Left by an earlier Notebook of this name: make it this one's, with a new token (a merge
            # patch replaces the owner list; garbage collection keeps an object whose owner exists).
            fresh = pods.token_secret(obj, pods.new_token())
            patch = {"metadata": {"ownerReferences": fresh["metadata"]["ownerReferences"]}, "data": fresh["data"]}
            try:
                await self.kube.patch(kinds.SECRET, namespace, name, patch)
            except kube_errors.NotFound:
                raise errors.TemporaryError(f"the earlier Secret {name} was just deleted", delay_s=0.5) from None
            return
        # Another replica may have created it first: that token stands.
        with contextlib.suppress(kube_errors.Conflict):
            await self.kube.create(pods.token_secret(obj, pods.new_token()))

    async def _apply(self, obj: Object, workload: pods.Workload) -> Object:
        await self.kube.apply(workload.service_account, FIELD_MANAGER)
        content = await self.kube.apply(workload.content_claim, FIELD_MANAGER)
        if content["metadata"].get("deletionTimestamp"):
            raise errors.TemporaryError(
                f"waiting for the earlier PVC {content['metadata']['name']} to be deleted", delay_s=2.0
            )
        claims = {}
        for claim in workload.claims:
            applied = await self.kube.apply(claim, FIELD_MANAGER)
            claims[claim["metadata"]["name"]] = applied
        for volume in workload.volumes_to_bind:
            claim = claims.get(volume["spec"]["claimRef"]["name"], {})
            await self.kube.apply(storage_mounts.bind_claim(volume, claim), FIELD_MANAGER)
        await self.kube.apply(workload.configmap, FIELD_MANAGER)
        return await self.kube.apply(workload.pod, FIELD_MANAGER)


def _fields(obj: Object, **extra: object) -> dict[str, object]:
    meta = obj.get("metadata", {})
    return {"kind": obj.get("kind"), "namespace": meta.get("namespace"), "object": meta.get("name"), **extra}
