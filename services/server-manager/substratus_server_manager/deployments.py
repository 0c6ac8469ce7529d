"""A Server's children, as pure functions (no I/O).

Server → ConfigMap ``<name>-server-params``, Deployment ``<name>-server`` and Service
``<name>-server`` (ClusterIP, port 8080 named ``http``). The container listens on 8080; readiness
is ``GET /``; a startup probe gives a large model time to load before readiness counts. The served
Model's artifacts are read-only at ``/content/model``. The container contract, placement and
storage mounts come from ``substratus_common.workloads``, as for the trainer's Jobs.

Two rules keep rollouts to real spec changes (docs/adr/060):

- the pod template is a function of the Server's spec (and its ``substratus.dev/*`` annotations)
  only: no hash, generation or time in it; env and volumes are sorted;
- ``spec.replicas`` is never sent, so ``kubectl scale`` and autoscalers own it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from substratus_common import config
from substratus_common.api import artifacts, labels, resources
from substratus_common.api.resources import Server
from substratus_common.workloads import contract, gpus, pod_template, scheduling, service_accounts, storage_mounts

Object = dict[str, Any]

ROLE = "server"
CONTAINER = "server"
SERVICE_ACCOUNT = service_accounts.name_for(ROLE)
PORT = 8080
PORT_NAME = "http"
READINESS_PATH = "/"
READINESS_PERIOD_S = 10
STARTUP_PERIOD_S = 10
STARTUP_FAILURES = 360
"""The startup probe may fail for STARTUP_PERIOD_S * STARTUP_FAILURES = one hour while a model loads."""


@dataclass
class Workload:
    """Everything to apply, in order: ServiceAccount, claims/volumes, ConfigMap, Deployment, Service."""

    service_account: Object
    configmap: Object
    deployment: Object
    service: Object
    claims: list[Object] = field(default_factory=list)
    volumes_to_bind: list[Object] = field(default_factory=list)


def selector(name: str) -> dict[str, str]:
    """Labels of the Server's Pods: the Deployment's (immutable) selector and the Service's."""
    return labels.for_child("servers", name, ROLE)


def model_url(settings: config.Settings, namespace: str, model: str) -> str:
    return artifacts.artifacts_url(settings.bucket_url, settings.cluster_name, namespace, "models", model)


def _probe(period_s: int, failures: int) -> Object:
    return {
        "httpGet": {"path": READINESS_PATH, "port": PORT_NAME},
        "periodSeconds": period_s,
        "failureThreshold": failures,
    }


def build(obj: Object, server: Server, settings: config.Settings, table: gpus.GPUTable, spec_hash: str) -> Workload:
    """The children of ``server`` (``obj`` is the same object as read from the API).

    Raises ``gpus.UnknownGPUType`` and ``contract.ContractError`` for specs that cannot run.
    """
    info = resources.kind_info("Server")
    meta = obj["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    spec = server.spec
    if spec.image is None:
        raise ValueError("a Server needs spec.image")

    pod_labels = selector(name)
    storage = storage_mounts.plan(
        [
            storage_mounts.Mount(
                "model",
                model_url(settings, namespace, spec.model.name),
                contract.MODEL_PATH,
                read_only=True,
                download=True,
            )
        ],
        settings,
        namespace=namespace,
        claim_prefix=f"{name}-{info.singular}",
        owner=contract.owner_reference(obj),
        owner_labels=pod_labels,
    )

    placed = scheduling.placement_for(spec.resources, cloud=settings.cloud, table=table)

    container: Object = {
        "name": CONTAINER,
        "image": spec.image,
        "env": contract.container_env(spec),
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": _probe(READINESS_PERIOD_S, 3),
        "startupProbe": _probe(STARTUP_PERIOD_S, STARTUP_FAILURES),
        "volumeMounts": contract.sorted_by_name([contract.params_mount(), *storage.mounts]),
    }
    if spec.command:
        container["command"] = list(spec.command)
    if placed.resources:
        container["resources"] = placed.resources

    pod_spec: Object = {
        "serviceAccountName": SERVICE_ACCOUNT,
        "containers": [container],
        "volumes": contract.sorted_by_name([contract.params_volume(obj), *storage.volumes]),
    }
    pod_template.add_storage_and_placement(pod_spec, storage, placed)

    pod_annotations = {
        contract.DEFAULT_CONTAINER: CONTAINER,
        **storage.pod_annotations,
        **contract.pass_through_annotations(obj),
    }
    workload_name = info.workload_name(name)
    deployment_meta = contract.child_metadata(obj, workload_name, ROLE)
    # On the Deployment, never in its template: a new hash alone must not roll the Pods.
    deployment_meta["annotations"] = {
        contract.SPEC_HASH: spec_hash,
        contract.GENERATION: str(meta.get("generation") or 0),
    }
    deployment: Object = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": deployment_meta,
        # No "replicas": the API server defaults it to 1 at creation; after that it belongs to
        # `kubectl scale` or an autoscaler (docs/adr/060).
        "spec": {
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": pod_spec,
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
    return Workload(
        service_account=service_accounts.service_account(ROLE, namespace),
        configmap=contract.params_configmap(obj, spec.params, ROLE),
        deployment=deployment,
        service=service,
        claims=storage.claims,
        volumes_to_bind=storage.volumes_to_bind,
    )
