"""The trainer's children of a Dataset or Model, as pure functions (no I/O).

Dataset → ConfigMap ``<name>-dataset-params`` and Job ``<name>-data-loader`` writing its artifacts.
Model → ConfigMap ``<name>-model-params`` and Job ``<name>-modeller``: an import with no
``model``/``dataset``, a fine-tune with the base Model at ``/content/model`` and the Dataset at
``/content/data`` (read-only). The container contract, placement and storage mounts come from
``substratus_common.workloads`` so the other managers build the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from substratus_common import config
from substratus_common.api import artifacts, labels, resources
from substratus_common.api.resources import Dataset, Model
from substratus_common.workloads import contract, gpus, pod_template, scheduling, storage_mounts

Object = dict[str, Any]

ROLES = {"Model": "modeller", "Dataset": "data-loader"}
SERVICE_ACCOUNT_PREFIX = "substratus-"


def role_of(kind: str) -> str:
    return ROLES[kind]


def service_account_name(kind: str) -> str:
    """One ServiceAccount per workload role and namespace, e.g. ``substratus-modeller``."""
    return SERVICE_ACCOUNT_PREFIX + role_of(kind)


def artifacts_url(settings: config.Settings, plural: str, namespace: str, name: str) -> str:
    return artifacts.artifacts_url(settings.bucket_url, settings.cluster_name, namespace, plural, name)


@dataclass
class Workload:
    """Everything to apply for one run, in order: ServiceAccount, claims/volumes, ConfigMap, Job."""

    service_account: Object
    configmap: Object
    job: Object
    claims: list[Object] = field(default_factory=list)
    volumes_to_bind: list[Object] = field(default_factory=list)


def service_account(kind: str, namespace: str) -> Object:
    """Shared by every workload of the role in the namespace, so not owned by any one resource;
    operators add workload-identity annotations to it (we only own our labels)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": service_account_name(kind),
            "namespace": namespace,
            "labels": {labels.MANAGED_BY: labels.MANAGED_BY_VALUE, labels.ROLE: role_of(kind)},
        },
    }


def build(
    obj: Object, resource: Model | Dataset, settings: config.Settings, table: gpus.GPUTable, spec_hash: str
) -> Workload:
    """The children of one run of ``resource`` (``obj`` is the same object as read from the API).

    Raises ``gpus.UnknownGPUType`` and ``contract.ContractError`` for specs that cannot run.
    """
    info = resources.kind_info(resource.kind)
    meta = obj["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    role = role_of(resource.kind)
    spec = resource.spec
    if spec.image is None:
        raise ValueError("a workload needs spec.image")

    mounts = [
        storage_mounts.Mount(
            "artifacts",
            artifacts_url(settings, info.plural, namespace, name),
            contract.ARTIFACTS_PATH,
            read_only=False,
            upload=True,
        )
    ]
    if isinstance(resource, Model) and resource.spec.model is not None:
        base = artifacts_url(settings, "models", namespace, resource.spec.model.name)
        mounts.append(storage_mounts.Mount("model", base, contract.MODEL_PATH, read_only=True, download=True))
    if isinstance(resource, Model) and resource.spec.dataset is not None:
        data = artifacts_url(settings, "datasets", namespace, resource.spec.dataset.name)
        mounts.append(storage_mounts.Mount("data", data, contract.DATA_PATH, read_only=True, download=True))

    child_labels = labels.for_child(info.plural, name, role)
    storage = storage_mounts.plan(
        mounts,
        settings,
        namespace=namespace,
        claim_prefix=f"{name}-{info.singular}",
        owner=contract.owner_reference(obj),
        owner_labels=child_labels,
    )

    placed = scheduling.placement_for(spec.resources, cloud=settings.cloud, table=table)

    container: Object = {
        "name": role,
        "image": spec.image,
        "env": contract.container_env(spec),
        "volumeMounts": contract.sorted_by_name([contract.params_mount(), *storage.mounts]),
    }
    if spec.command:
        container["command"] = list(spec.command)
    if placed.resources:
        container["resources"] = placed.resources

    pod_spec: Object = {
        "restartPolicy": "Never",
        "serviceAccountName": service_account_name(resource.kind),
        "containers": [container],
        "volumes": contract.sorted_by_name([contract.params_volume(obj), *storage.volumes]),
    }
    pod_template.add_storage_and_placement(pod_spec, storage, placed)

    pod_annotations = {
        contract.DEFAULT_CONTAINER: role,
        **storage.pod_annotations,
        **contract.pass_through_annotations(obj),
    }
    job_meta = contract.child_metadata(obj, info.workload_name(name), role)
    job_meta["annotations"] = {
        contract.SPEC_HASH: spec_hash,
        contract.GENERATION: str(meta.get("generation") or 0),
    }
    job: Object = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_meta,
        "spec": {
            "backoffLimit": settings.job_backoff_limit,
            "template": {
                "metadata": {"labels": child_labels, "annotations": pod_annotations},
                "spec": pod_spec,
            },
        },
    }
    return Workload(
        service_account=service_account(resource.kind, namespace),
        configmap=contract.params_configmap(obj, spec.params, role),
        job=job,
        claims=storage.claims,
        volumes_to_bind=storage.volumes_to_bind,
    )
