"""A Server's children, as pure functions (no I/O).

Server → ConfigMap ``<name>-server-params``, Deployment ``<name>-server`` and Service
``<name>-server`` (ClusterIP, port 8080 named ``http``). The container listens on 8080; readiness
is ``GET /``; a startup probe gives a large model time to load before readiness counts. The served
Model's artifacts are read-only at ``/content/model``. The pod (container contract, placement,
storage mounts) is ``workloads.plan.pod``, as for the trainer's Jobs.

Two rules keep rollouts to real spec changes (docs/adr/060):

- the pod template is a function of the Server's spec (and its ``substratus.dev/*`` annotations)
  only: no hash, generation or time in it; env and volumes are sorted;
- ``spec.replicas`` is never sent, so ``kubectl scale`` and autoscalers own it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from substratus_common import config
from substratus_common.api import labels, resources
from substratus_common.api.resources import Server
from substratus_common.workloads import contract, gpus, plan

Object = dict[str, Any]

ROLE = "server"
CONTAINER = "server"
PORT = 8080
PORT_NAME = "http"
READINESS_PATH = "/"
READINESS_PERIOD_S = 10
STARTUP_PERIOD_S = 10
STARTUP_FAILURES = 360
"""The startup probe may fail for STARTUP_PERIOD_S * STARTUP_FAILURES = one hour while a model loads."""


@dataclass
class Workload(plan.Workload):
    """The pod's companions (ServiceAccount, claims/volumes, ConfigMap), the Deployment, the Service."""

    deployment: Object
    service: Object

    def own(self) -> list[Object]:
        return [self.deployment, self.service]


def selector(name: str) -> dict[str, str]:
    """Labels of the Server's Pods: the Deployment's (immutable) selector and the Service's."""
    return labels.for_child("servers", name, ROLE)


def _probe(period_s: int, failures: int) -> Object:
    return {
        "httpGet": {"path": READINESS_PATH, "port": PORT_NAME},
        "periodSeconds": period_s,
        "failureThreshold": failures,
    }


def build(obj: Object, server: Server, settings: config.Settings, table: gpus.GPUTable, spec_hash: str) -> Workload:
    """The children of ``server`` (``obj`` is the same object, as the view holds it).

    Raises ``gpus.UnknownGPUType`` and ``contract.ContractError`` for specs that cannot run.
    """
    info = resources.kind_info("Server")
    meta = obj["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    spec = server.spec
    pod_labels = selector(name)
    storage = plan.mounts(settings, namespace, model=spec.model.name)
    claims = f"{name}-{info.singular}"
    planned = plan.pod(
        obj, spec, settings, table, role=ROLE, pod_labels=pod_labels, claim_prefix=claims, storage=storage
    )
    planned.container.update(
        {
            "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
            "readinessProbe": _probe(READINESS_PERIOD_S, 3),
            "startupProbe": _probe(STARTUP_PERIOD_S, STARTUP_FAILURES),
        }
    )
    workload_name = info.workload_name(name)
    deployment: Object = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        # The hash on the Deployment, never in its template: a new hash alone must not roll the Pods.
        "metadata": plan.workload_metadata(obj, workload_name, ROLE, spec_hash),
        # No "replicas": the API server defaults it to 1 at creation; after that it belongs to
        # `kubectl scale` or an autoscaler (docs/adr/060).
        "spec": {
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": planned.annotations},
                "spec": planned.spec,
            },
        },
    }
    service: Object = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": contract.child_metadata(obj, workload_name, ROLE),
        "spec": {
            "type": "ClusterIP",
            "selector": pod_labels,
            "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }
    return Workload(planned, deployment, service)
