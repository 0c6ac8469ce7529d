"""The trainer's children of a Dataset or Model, as pure functions (no I/O).

Dataset → ConfigMap ``<name>-dataset-params`` and Job ``<name>-data-loader`` writing its artifacts.
Model → ConfigMap ``<name>-model-params`` and Job ``<name>-modeller``: an import with no
``model``/``dataset``, a fine-tune with the base Model at ``/content/model`` and the Dataset at
``/content/data`` (read-only). The pod (container contract, placement, storage mounts) is
``workloads.plan.pod``, as for the other managers; this module adds only the Job around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from substratus_common import config
from substratus_common.api import artifacts, labels, resources
from substratus_common.api.resources import Dataset, Model
from substratus_common.workloads import gpus, plan, service_accounts

Object = dict[str, Any]

ROLES = {"Model": "modeller", "Dataset": "data-loader"}


def role_of(kind: str) -> str:
    return ROLES[kind]


def service_account_name(kind: str) -> str:
    """One ServiceAccount per workload role and namespace, e.g. ``substratus-modeller``."""
    return service_accounts.name_for(role_of(kind))


def artifacts_url(settings: config.Settings, plural: str, namespace: str, name: str) -> str:
    return artifacts.artifacts_url(settings.bucket_url, settings.cluster_name, namespace, plural, name)


@dataclass
class Workload(plan.Workload):
    """Everything to apply for one run: the pod's companions (ServiceAccount, claims/volumes,
    ConfigMap) and the Job."""

    job: Object

    def own(self) -> list[Object]:
        return [self.job]


def build(
    obj: Object, resource: Model | Dataset, settings: config.Settings, table: gpus.GPUTable, spec_hash: str
) -> Workload:
    """The children of one run of ``resource`` (``obj`` is the same object, as the view holds it).

    Raises ``gpus.UnknownGPUType`` and ``contract.ContractError`` for specs that cannot run.
    """
    info = resources.kind_info(resource.kind)
    meta = obj["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    role = role_of(resource.kind)
    spec = resource.spec
    tuned = resource.spec if isinstance(resource, Model) else None
    storage = plan.mounts(
        settings,
        namespace,
        own=(info.plural, name),
        model=tuned.model.name if tuned is not None and tuned.model is not None else None,
        dataset=tuned.dataset.name if tuned is not None and tuned.dataset is not None else None,
    )
    child_labels = labels.for_child(info.plural, name, role)
    claims = f"{name}-{info.singular}"
    pod = plan.pod(obj, spec, settings, table, role=role, pod_labels=child_labels, claim_prefix=claims, storage=storage)
    job: Object = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": plan.workload_metadata(obj, info.workload_name(name), role, spec_hash),
        "spec": {
            "backoffLimit": settings.job_backoff_limit,
            "template": {
                "metadata": {"labels": child_labels, "annotations": pod.annotations},
                "spec": {"restartPolicy": "Never", **pod.spec},
            },
        },
    }
    return Workload(pod, job)
