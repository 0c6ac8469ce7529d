"""Reconcile one Notebook: keep its token and working files, run or stop its Pod, report ``Serving``.

A :class:`reconciler.Reconciler`, called with the Notebook as the view holds it; its Pod and its
Model and Dataset come from the view too (the token Secret, which is not on the bus, from the
API, only before a Pod is created). The Pod is a bare Pod, not a Deployment: a Pod that is
deleted (suspend, its node lost, a user's ``kubectl delete``) is seen through its change event
and created again unless the Notebook is suspended; its files live on the PVC, which outlives
the Pod.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterable
from typing import Any

from substratus_common import errors
from substratus_common.api.resources import Notebook
from substratus_common.api.types import ConditionType, Reason
from substratus_common.events import payloads
from substratus_common.events.subjects import ResourceKey
from substratus_common.kube import errors as kube_errors
from substratus_common.kube import resources as kinds
from substratus_common.runtime import reconciler, report
from substratus_common.workloads import contract, ownership, pod_status
from substratus_notebook_manager import pods

log = logging.getLogger(__name__)

Object = dict[str, Any]
SPEC = reconciler.Spec(
    "notebook-manager", ("notebooks",), ("pod",), ("models", "datasets"), ConditionType.SERVING, watches=()
)
serving = functools.partial(report.condition, ConditionType.SERVING)
DEPENDENCIES = (reconciler.MODEL, reconciler.DATASET)


class NotebookManager(reconciler.Service):
    spec = SPEC

    # ---- what the runtime asks -----------------------------------------------------------------

    def dependencies(self, obj: Object) -> Iterable[ResourceKey]:
        return reconciler.depends(obj, DEPENDENCIES)

    def baseline(self, obj: Object) -> reconciler.Outcome:
        return reconciler.Outcome((), self._artifacts_url(obj))  # every report carries the URL

    async def reconcile(self, obj: Object) -> reconciler.Outcome:
        url = self._artifacts_url(obj)
        notebook = reconciler.parse(obj, Notebook, "notebook-manager")
        key = reconciler.key_of(obj)
        namespace, name = key.namespace, key.name
        pod_name = pods.pod_name(name)
        pod = await self.child(key, "Pod", pod_name)

        if notebook.spec.suspend is True:
            if pod is not None and not pod["metadata"].get("deletionTimestamp"):
                await self.kube.delete(kinds.POD, namespace, pod_name, uid=pod["metadata"].get("uid"))
                log.info("suspended: Pod deleted, PVC and Secret kept", extra=_fields(obj, pod=pod_name))
            message = f"suspended: Pod {pod_name} stopped, /content kept; set spec.suspend to false to resume"
            return reconciler.Outcome([serving(False, Reason.SUSPENDED, message)], url)

        wanted = pods.spec_hash(obj)
        if pod is not None:
            if pod["metadata"].get("deletionTimestamp"):
                # Its deletion is an event on the Notebook's child subject: the new Pod follows it.
                message = f"Pod {pod_name} is terminating; a new one starts once it is gone"
                return reconciler.Outcome([serving(False, Reason.POD_NOT_READY, message)], url)
            why = self._replace_because(obj, pod, wanted)
            if why is None:
                return reconciler.Outcome([self._pod_condition(pod, name)], url)
            log.info("replacing the Pod", extra=_fields(obj, pod=pod_name, why=why))
            await self.kube.delete(kinds.POD, namespace, pod_name, uid=pod["metadata"].get("uid"))
            message = f"Pod {pod_name} is being replaced ({why}); the new one starts once it is gone"
            return reconciler.Outcome([serving(False, Reason.POD_NOT_READY, message)], url)

        if notebook.spec.image is None:
            message = "waiting for the image: spec.build runs first and sets spec.image"
            return reconciler.Outcome([serving(False, Reason.POD_NOT_READY, message)], url)
        waiting = reconciler.waiting_for(self.view, obj, DEPENDENCIES, "the notebook starts by itself")
        if waiting is not None:
            return reconciler.Outcome([serving(False, *waiting)], url)

        with reconciler.refused_specs():
            workload = pods.build(obj, notebook, self.settings, self.runtime.gpu_table.current(), wanted)
        await self._ensure_token(obj)
        await self._ensure_content(workload)
        log.info("creating the Pod", extra=_fields(obj, pod=pod_name, spec_hash=wanted))
        children = workload.children()
        return reconciler.Outcome([self._pod_condition(workload.pod, name)], url, children=children)

    # ---- steps ---------------------------------------------------------------------------------

    def _artifacts_url(self, obj: Object) -> str:
        meta = obj["metadata"]
        return pods.artifacts_url(self.settings, str(meta["namespace"]), str(meta["name"]))

    def _replace_because(self, obj: Object, pod: Object, wanted: str) -> str | None:
        """Why the existing Pod cannot stay, or None when it is the one this spec asks for. A Pod
        no Notebook of this name controls is someone else's: a condition, never deleted."""
        owners = [r.get("uid") for r in pod["metadata"].get("ownerReferences") or []]
        if obj["metadata"].get("uid") not in owners:
            ownership.refuse_foreign(pod, obj, "Pod")
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

    async def _ensure_token(self, obj: Object) -> None:
        """The token Secret, created once with a new random token; never rewritten (clients hold it)."""
        meta = obj["metadata"]
        namespace, name = str(meta["namespace"]), pods.secret_name(str(meta["name"]))
        existing = await self.kube.get(kinds.SECRET, namespace, name)
        if existing is not None:
            owners = [r.get("uid") for r in existing["metadata"].get("ownerReferences") or []]
            if meta.get("uid") in owners:
                return
            # Someone else's Secret is never re-keyed or taken over (its data may be anything).
            ownership.refuse_foreign(existing, obj, "Secret")
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

    async def _ensure_content(self, workload: pods.Workload) -> None:
        """The ``/content`` PVC, applied here (not among the children): a PVC of an earlier Notebook of
        this name that is still being deleted must be waited for, not written to."""
        content = await self.kube.apply(workload.content_claim, self.field_manager)
        if content["metadata"].get("deletionTimestamp"):
            raise errors.TemporaryError(
                f"waiting for the earlier PVC {content['metadata']['name']} to be deleted", delay_s=2.0
            )


def _fields(obj: Object, **extra: object) -> dict[str, object]:
    meta = obj.get("metadata", {})
    return {"kind": obj.get("kind"), "namespace": meta.get("namespace"), "object": meta.get("name"), **extra}
