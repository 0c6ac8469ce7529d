"""Reconcile one Server: wait for its image and Model, declare its children, report ``Serving``.

A :class:`reconciler.Reconciler`, called with the Server as the view holds it; its Deployment,
Pods and Model come from the view too. The Deployment carries the hash of the spec it was built
from: the children are returned (the runtime applies them) when the Deployment is missing or its
hash differs (a spec change rolls the Pods); otherwise they are only read, so reconciling an
unchanged Server writes nothing and never changes the pod template (docs/adr/060).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from substratus_common.api import resources
from substratus_common.api.resources import Server
from substratus_common.api.types import ConditionType, Reason
from substratus_common.events import payloads
from substratus_common.events.subjects import ResourceKey
from substratus_common.runtime import reconciler, report
from substratus_common.workloads import contract, ownership
from substratus_server_manager import deployments, pods

log = logging.getLogger(__name__)

Object = dict[str, Any]
# Deployment changes carry readiness; Pod changes carry why a Pod cannot be scheduled or start. A
# Server waiting for its Model says ModelNotFound, then ModelNotReady once the Model appears.
SPEC = reconciler.Spec(
    "server-manager", ("servers",), ("deployment", "pod"), ("models",), ConditionType.SERVING, watches=()
)
serving = functools.partial(report.condition, ConditionType.SERVING)


class ServerManager(reconciler.Service):
    spec = SPEC

    def __init__(self, runtime: reconciler.Runtime, on_apply: Callable[[], None] = lambda: None) -> None:
        super().__init__(runtime)
        self.on_apply = on_apply

    # ---- what the runtime asks -----------------------------------------------------------------

    def dependencies(self, obj: Object) -> Iterable[ResourceKey]:
        return reconciler.refs(obj, models="model")

    def applied(self, child: Object, *, created: bool) -> None:
        if child.get("kind") == "Deployment":
            self.on_apply()

    async def reconcile(self, obj: Object) -> reconciler.Outcome:
        server = reconciler.parse(obj, Server, "server-manager")
        if server.spec.image is None:
            message = "waiting for the image: spec.build runs first and sets spec.image"
            return reconciler.Outcome([serving(False, Reason.DEPLOYMENT_NOT_READY, message)])

        key = reconciler.key_of(obj)
        namespace = key.namespace
        deployment_name = resources.kind_info("Server").workload_name(key.name)
        wanted = contract.spec_hash(obj.get("spec") or {})
        deployment = await self.child(key, "Deployment", deployment_name)
        if deployment is not None:
            check_owner(deployment, obj)
        if deployment is not None and _spec_hash(deployment) == wanted:
            return reconciler.Outcome([self._serving(key, deployment)])
        rolling = deployment is not None
        waiting = self._waiting_for_model(server, namespace, updating=rolling)
        if waiting is not None:
            return reconciler.Outcome([serving(False, *waiting)])
        with reconciler.refused_specs():
            workload = deployments.build(obj, server, self.settings, self.runtime.gpu_table.current(), wanted)
        log.info(
            "spec changed; rolling the Deployment" if rolling else "applying the Deployment",
            extra=_fields(obj, deployment=deployment_name, spec_hash=wanted),
        )
        children = workload.children()
        shown = self._serving(key, deployment if deployment is not None else workload.deployment)
        return reconciler.Outcome([shown], children=children)

    # ---- steps ---------------------------------------------------------------------------------

    def _waiting_for_model(self, server: Server, namespace: str, *, updating: bool) -> tuple[str, str] | None:
        """(reason, message) while the served Model (in the view) is missing or not ready, else None."""
        ref = server.spec.model.name
        then = "the Deployment is updated" if updating else "the Server starts"
        model = self.view.get("models", namespace, ref)
        if model is None:
            return (
                Reason.MODEL_NOT_FOUND,
                f"Model {ref} not found in namespace {namespace}; {then} by itself once it exists and is ready",
            )
        if (model.get("status") or {}).get("ready") is not True:
            return Reason.MODEL_NOT_READY, f"Model {ref} is not ready; {then} by itself once it is"
        return None

    def _serving(self, key: ResourceKey, deployment: Object) -> payloads.ConditionReport:
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
        why = self._why_not_ready(key, deployment)
        return serving(False, Reason.DEPLOYMENT_NOT_READY, f"Deployment {name} has no ready replica: {why}")

    def _why_not_ready(self, key: ResourceKey, deployment: Object) -> str:
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        matching = [
            pod
            for pod in self.view.children_of(key, "pod")
            if all(((pod.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in selector.items())
        ]
        reason = pods.reason(matching)
        if reason:
            return reason
        for condition in (deployment.get("status") or {}).get("conditions") or []:
            failing = condition.get("type") == "ReplicaFailure" and condition.get("status") == "True"
            stuck = condition.get("type") == "Progressing" and condition.get("status") == "False"
            if failing or stuck:
                return f"{condition.get('reason')}: {condition.get('message', '')}".strip()
        return "waiting for its Pods to be created and become ready"


def check_owner(deployment: Object, server: Object) -> None:
    """Raise unless ``deployment`` is this Server's and not being deleted (``workloads.ownership``):
    one of a deleted Server of the same name is waited for, anyone else's is a condition."""
    ownership.check(deployment, server, "Deployment")


def _spec_hash(obj: Object) -> str | None:
    found = (obj["metadata"].get("annotations") or {}).get(contract.SPEC_HASH)
    return None if found is None else str(found)


def _fields(obj: Object, **extra: object) -> dict[str, object]:
    meta = obj.get("metadata", {})
    return {"kind": obj.get("kind"), "namespace": meta.get("namespace"), "object": meta.get("name"), **extra}
