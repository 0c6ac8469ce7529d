"""The notebook-manager's children of a Notebook, as pure functions (no I/O).

Notebook ``<name>`` →

- ConfigMap ``<name>-notebook-params`` (``/content/params.json``);
- Secret ``<name>-notebook-token`` with a generated Jupyter token (created once, never rewritten);
- PersistentVolumeClaim ``<name>-notebook-content``: the working files under ``/content``, kept
  while the Notebook is suspended;
- Pod ``<name>-notebook``: Jupyter on 8888 with ``JUPYTER_TOKEN`` from the Secret, ready when its
  ``/api`` answers; the Model at ``/content/model`` and the Dataset at ``/content/data`` read-only,
  its own artifacts at ``/content/artifacts`` read-write (mounted per cloud by
  ``workloads.storage_mounts``), params, env, resources and GPUs from ``workloads`` as every
  manager does.

The Pod carries the hash of the spec it was built from; a Pod of another hash is replaced.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

from substratus_common import config
from substratus_common.api import artifacts, labels, resources
from substratus_common.api.resources import Notebook
from substratus_common.workloads import contract, gpus, pod_template, scheduling, service_accounts, storage_mounts

Object = dict[str, Any]

ROLE = "notebook"
CONTAINER = "notebook"
PORT = 8888
PORT_NAME = "notebook"
READINESS_PATH = "/api"
CONTENT_VOLUME = "content"
CONTENT_SIZE = "10Gi"
TOKEN_KEY = "token"
TOKEN_ENV = "JUPYTER_TOKEN"
USERS_GID = 100
"""``users``, the group of the non-root user of the Jupyter images (jovyan): /content is writable by it."""
DEFAULT_COMMAND = (
    "jupyter",
    "lab",
    "--ip=0.0.0.0",
    f"--port={PORT}",
    "--no-browser",
    f"--ServerApp.root_dir={contract.CONTENT}",
)
"""Jupyter when ``spec.command`` is unset; it reads its token from ``JUPYTER_TOKEN``."""


def pod_name(name: str) -> str:
    return resources.kind_info("Notebook").workload_name(name)


def secret_name(name: str) -> str:
    return f"{name}-notebook-token"


def claim_name(name: str) -> str:
    return f"{name}-notebook-{CONTENT_VOLUME}"


def artifacts_url(settings: config.Settings, namespace: str, name: str) -> str:
    return artifacts.artifacts_url(settings.bucket_url, settings.cluster_name, namespace, "notebooks", name)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_secret(obj: Object, token: str) -> Object:
    """The Secret holding the Jupyter token; owned by the Notebook, so it goes with it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": contract.child_metadata(obj, secret_name(obj["metadata"]["name"]), ROLE),
        "type": "Opaque",
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def content_claim(obj: Object) -> Object:
    """The PVC of ``/content``: the cluster's default StorageClass, owned by the Notebook."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": contract.child_metadata(obj, claim_name(obj["metadata"]["name"]), ROLE),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": CONTENT_SIZE}}},
    }


@dataclass
class Workload:
    """Everything to apply for the Notebook's Pod, in order; the Secret is created separately (once)."""

    service_account: Object
    configmap: Object
    content_claim: Object
    pod: Object
    claims: list[Object] = field(default_factory=list)
    volumes_to_bind: list[Object] = field(default_factory=list)


def build(obj: Object, notebook: Notebook, settings: config.Settings, table: gpus.GPUTable, spec_hash: str) -> Workload:
    """The children of ``notebook`` (``obj`` is the same object as read from the API).

    Raises ``gpus.UnknownGPUType`` and ``contract.ContractError`` for specs that cannot run.
    """
    meta = obj["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    spec = notebook.spec
    if spec.image is None:
        raise ValueError("a notebook needs spec.image")

    mounts = [
        # Downloaded too (portable mode), so the artifacts written before a suspend are there again.
        storage_mounts.Mount(
            "artifacts",
            artifacts_url(settings, namespace, name),
            contract.ARTIFACTS_PATH,
            read_only=False,
            download=True,
            upload=True,
        )
    ]
    if spec.model is not None:
        url = artifacts.artifacts_url(settings.bucket_url, settings.cluster_name, namespace, "models", spec.model.name)
        mounts.append(storage_mounts.Mount("model", url, contract.MODEL_PATH, read_only=True, download=True))
    if spec.dataset is not None:
        url = artifacts.artifacts_url(
            settings.bucket_url, settings.cluster_name, namespace, "datasets", spec.dataset.name
        )
        mounts.append(storage_mounts.Mount("data", url, contract.DATA_PATH, read_only=True, download=True))

    child_labels = labels.for_child("notebooks", name, ROLE)
    storage = storage_mounts.plan(
        mounts,
        settings,
        namespace=namespace,
        claim_prefix=f"{name}-notebook",
        owner=contract.owner_reference(obj),
        owner_labels=child_labels,
    )
    placed = scheduling.placement_for(spec.resources, cloud=settings.cloud, table=table)

    token_ref = contract.env_var(TOKEN_ENV, f"${{{{ secrets.{secret_name(name)}.{TOKEN_KEY} }}}}")
    env = [e for e in contract.container_env(spec) if e["name"] != TOKEN_ENV]
    content_mount = {"name": CONTENT_VOLUME, "mountPath": contract.CONTENT}
    container: Object = {
        "name": CONTAINER,
        "image": spec.image,
        "command": list(spec.command) if spec.command else list(DEFAULT_COMMAND),
        "workingDir": contract.CONTENT,
        "env": contract.sorted_by_name([*env, token_ref]),
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": READINESS_PATH, "port": PORT_NAME},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "securityContext": {"allowPrivilegeEscalation": False},
        "volumeMounts": contract.sorted_by_name([content_mount, contract.params_mount(), *storage.mounts]),
    }
    if placed.resources:
        container["resources"] = placed.resources

    content_volume = {"name": CONTENT_VOLUME, "persistentVolumeClaim": {"claimName": claim_name(name)}}
    pod_spec: Object = {
        "restartPolicy": "Always",
        "serviceAccountName": service_accounts.name_for(ROLE),
        # Not runAsUser: the image decides (Jupyter images run as jovyan); the group makes /content writable.
        "securityContext": {"fsGroup": USERS_GID, "fsGroupChangePolicy": "OnRootMismatch"},
        "containers": [container],
        "volumes": contract.sorted_by_name([content_volume, contract.params_volume(obj), *storage.volumes]),
    }
    pod_template.add_storage_and_placement(pod_spec, storage, placed)

    pod_meta = contract.child_metadata(obj, pod_name(name), ROLE)
    pod_meta["annotations"] = {
        contract.DEFAULT_CONTAINER: CONTAINER,
        contract.SPEC_HASH: spec_hash,
        contract.GENERATION: str(meta.get("generation") or 0),
        **storage.pod_annotations,
        **contract.pass_through_annotations(obj),
    }
    pod: Object = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}
    return Workload(
        service_account=service_accounts.service_account(ROLE, namespace),
        configmap=contract.params_configmap(obj, spec.params, ROLE),
        content_claim=content_claim(obj),
        pod=pod,
        claims=storage.claims,
        volumes_to_bind=storage.volumes_to_bind,
    )


def spec_hash(obj: Object) -> str:
    """The hash of the spec fields that shape the Pod: ``suspend`` and ``build`` do not."""
    return contract.spec_hash(obj.get("spec") or {}, ignore=("build", "suspend"))
