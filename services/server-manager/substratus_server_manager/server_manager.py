"""Reconcile one Server: wait for its image and Model, apply its children, report ``Serving``.

Called by the manager loop (``substratus_common.runtime.manager``) with the Server as read from
the API; returns the ``Serving`` condition to report. The Deployment carries the hash of the spec
it was built from: the children are applied when the Deployment is missing or its hash differs
(a spec change rolls the Pods); otherwise they are only read, so reconciling an unchanged Server
writes nothing and never changes the pod template (docs/adr/060).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from substratus_common import config, errors
from substratus_common.api import resources
from substratus_common.api.resources import Server
from substratus_common.api.types import ConditionType, Reason
from substratus_common.events import payloads
from substratus_common.kube import client
from substratus_common.kube import resources as kinds
from substratus_common.runtime import manager, report
from substratus_common.workloads import contract, gpus, storage_mounts
from substratus_server_manager import deployments, pods

log = logging.getLogger(__name__)

Object = dict[str, Any]
FIELD_MANAGER = "substratus-server-manager"


def serving(status: bool, reason: str, message: str) -> payloads.ConditionReport:
    return report.condition(ConditionType.SERVING, status, reason, message)


class ServerManager:
    def __init__(
        self,
        kube: client.Kube,
        settings: config.Settings,
        table: Callable[[], gpus.GPUTable],
        on_apply: Callable[[], None] = lambda: None,
    ) -> None:
        self.kube, self.settings, self.table = kube, settings, table
        self.on_apply = on_apply
        self.deployments_applied = 0

    # ---- what the manager asks -----------------------------------------------------------------

    def dependencies(self, obj: Object) -> list[manager.Key]:
        key = manager.ref_key(obj, "models", (obj.get("spec") or {}).get("model"))
        return [key] if key is not None else []

    async def reconcile(self, obj: Object) -> manager.Outcome:
        try:
            server = resources.parse(obj)
        except ValidationError as error:
            raise errors.PermanentError(resources.validation_message(error), reason=Reason.INVALID) from None
        if not isinstance(server, Server):
            raise errors.PermanentError(f"the server-manager does not run {server.kind}s", reason=Reason.INVALID)
        if server.spec.image is None:
            message = "waiting for the image: spec.build runs first and sets spec.image"
            return manager.Outcome([serving(False, Reason.DEPLOYMENT_NOT_READY, message)])

        meta = obj["metadata"]
        namespace, name = str(meta["namespace"]), str(meta["name"])
        deployment_name = resources.kind_info("Server").workload_name(name)
        wanted = contract.spec_hash(obj.get("spec") or {})
        deployment = await self.kube.get(kinds.DEPLOYMENT, namespace, deployment_name)
        if deployment is not None:
            check_owner(deployment, obj)
        if deployment is None or _spec_hash(deployment) != wanted:
            rolling = deployment is not None
            waiting = await self._waiting_for_model(server, namespace, updating=rolling)
            if waiting is not None:
                return manager.Outcome([serving(False, *waiting)])
            try:
                workload = deployments.build(obj, server, self.settings, self.table(), wanted)
            except (gpus.UnknownGPUType, contract.ContractError) as error:
                raise errors.PermanentError(str(error), reason=Reason.INVALID) from None
            deployment = await self._apply(workload)
            log.info(
                "spec changed; Deployment rolled" if rolling else "Deployment applied",
                extra=_fields(obj, deployment=deployment_name, spec_hash=wanted),
            )
        return manager.Outcome([await self._serving(deployment)])

    # ---- steps ---------------------------------------------------------------------------------

    async def _waiting_for_model(self, server: Server, namespace: str, *, updating: bool) -> tuple[str, str] | None:
        """(reason, message) while the served Model is missing or not ready, else None."""
        ref = server.spec.model.name
        then = "the Deployment is updated" if updating else "the Server starts"
        model = await self.kube.get(kinds.MODEL, namespace, ref)
        if model is None:
            return (
                Reason.MODEL_NOT_FOUND,
                f"Model {ref} not found in namespace {namespace}; {then} by itself once it exists and is ready",
            )
        if (model.get("status") or {}).get("ready") is not True:
            return Reason.MODEL_NOT_READY, f"Model {ref} is not ready; {then} by itself once it is"
        return None

    async def _apply(self, workload: deployments.Workload) -> Object:
        await self.kube.apply(workload.service_account, FIELD_MANAGER)
        claims = {}
        for claim in workload.claims:
            claims[claim["metadata"]["name"]] = await self.kube.apply(claim, FIELD_MANAGER)
        for volume in workload.volumes_to_bind:
            claim = claims.get(volume["spec"]["claimRef"]["name"], {})
            await self.kube.apply(storage_mounts.bind_claim(volume, claim), FIELD_MANAGER)
        await self.kube.apply(workload.configmap, FIELD_MANAGER)
        applied = await self.kube.apply(workload.deployment, FIELD_MANAGER)
        await self.kube.apply(workload.service, FIELD_MANAGER)
        self.deployments_applied += 1
        self.on_apply()
        return applied

    async def _serving(self, deployment: Object) -> payloads.ConditionReport:
        meta = deployment["metadata"]
        name, namespace = str(meta["name"]), str(meta["namespace"])
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        replicas = int(spec.get("replicas", 1))
        ready = int(status.get("readyReplicas") or 0)
        if ready > 0:
            # During a rollout the surge Pods count too; the message stays "n of n" meanwhile.
            shown = min(ready, replicas) if replicas else ready
            message = f"Deployment {name} has {shown} of {replicas} replicas ready; Service {name} port 8080"
            return serving(True, Reason.DEPLOYMENT_READY, message)
        if replicas == 0:
            message = (
                f"Deployment {name} is scaled to 0 replicas; "
                f"kubectl scale deployment {name} --replicas=1 -n {namespace} serves again"
            )
            return serving(False, Reason.DEPLOYMENT_NOT_READY, message)
        why = await self._why_not_ready(deployment)
        return serving(False, Reason.DEPLOYMENT_NOT_READY, f"Deployment {name} has no ready replica: {why}")

    async def _why_not_ready(self, deployment: Object) -> str:
        meta = deployment["metadata"]
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        listed = await self.kube.list(
            kinds.POD, str(meta["namespace"]), label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        )
        reason = pods.reason(listed.items)
        if reason:
            return reason
        for condition in (deployment.get("status") or {}).get("conditions") or []:
            failing = condition.get("type") == "ReplicaFailure" and condition.get("status") == "True"
            stuck = condition.get("type") == "Progressing" and condition.get("status") == "False"
            if failing or stuck:
                return f"{condition.get('reason')}: {condition.get('message', '')}".strip()
        return "waiting for its Pods to be created and become ready"


def check_owner(deployment: Object, server: Object) -> None:
    """Raise unless ``deployment`` is this Server's and not being deleted.

    A Deployment of a deleted Server of the same name is removed by the garbage collector: wait
    for it. One that no Server controls is someone else's: say so rather than take it over.
    """
    meta = deployment["metadata"]
    name = meta["name"]
    if meta.get("deletionTimestamp"):
        raise errors.TemporaryError(f"waiting for Deployment {name} to be deleted", delay_s=1.0)
    owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    if owner is None or owner.get("kind") != "Server" or owner.get("name") != server["metadata"]["name"]:
        raise errors.PermanentError(
            f"Deployment {name} exists and does not belong to this Server; delete or rename it",
            reason=Reason.INVALID,
        )
    if owner.get("uid") != server["metadata"].get("uid"):
        raise errors.TemporaryError(
            f"waiting for Deployment {name} of a deleted Server of the same name to be deleted", delay_s=1.0
        )


def _spec_hash(obj: Object) -> str | None:
    found = (obj["metadata"].get("annotations") or {}).get(contract.SPEC_HASH)
    return None if found is None else str(found)


def _fields(obj: Object, **extra: object) -> dict[str, object]:
    meta = obj.get("metadata", {})
    return {"kind": obj.get("kind"), "namespace": meta.get("namespace"), "object": meta.get("name"), **extra}
