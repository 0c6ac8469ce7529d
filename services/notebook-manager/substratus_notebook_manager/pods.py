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
from dataclasses import dataclass
from typing import Any

from substratus_common import config
from substratus_common.api import artifacts, labels, resources
from substratus_common.api.resources import Notebook
from substratus_common.workloads import contract, gpus, plan

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
class Workload(plan.Workload):
    """Everything to apply for the Notebook's Pod; the Secret is created separately (once), and the
    content claim is applied before the others (an earlier Notebook's may still be terminating)."""

    content_claim: Object
    pod: Object

    def own(self) -> list[Object]:
        return [self.pod]


def build(obj: Object, notebook: Notebook, settings: config.Settings, table: gpus.GPUTable, spec_hash: str) -> Workload:
    """The children of ``notebook`` (``obj`` is the same object, as the view holds it).

    Raises ``gpus.UnknownGPUType`` and ``contract.ContractError`` for specs that cannot run.
    """
    meta = obj["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    spec = notebook.spec
    # Its own artifacts are downloaded too (portable mode), so what was written before a suspend is there again.
    storage = plan.mounts(
        settings,
        namespace,
        own=("notebooks", name),
        keep_own=True,
        model=spec.model.name if spec.model is not None else None,
        dataset=spec.dataset.name if spec.dataset is not None else None,
    )
    content_volume = {"name": CONTENT_VOLUME, "persistentVolumeClaim": {"claimName": claim_name(name)}}
    content_mount = {"name": CONTENT_VOLUME, "mountPath": contract.CONTENT}
    pod_labels = labels.for_child("notebooks", name, ROLE)
    planned = plan.pod(
        obj,
        spec,
        settings,
        table,
        role=ROLE,
        pod_labels=pod_labels,
        claim_prefix=f"{name}-notebook",
        storage=storage,
        volumes=[content_volume],
        volume_mounts=[content_mount],
    )
    token_ref = contract.env_var(TOKEN_ENV, f"${{{{ secrets.{secret_name(name)}.{TOKEN_KEY} }}}}")
    env = [e for e in planned.container["env"] if e["name"] != TOKEN_ENV]
    planned.container.update(
        {
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
        }
    )
    pod_spec: Object = {
        "restartPolicy": "Always",
        # Not runAsUser: the image decides (Jupyter images run as jovyan); the group makes /content writable.
        "securityContext": {"fsGroup": USERS_GID, "fsGroupChangePolicy": "OnRootMismatch"},
        **planned.spec,
    }
    pod_meta = plan.workload_metadata(obj, pod_name(name), ROLE, spec_hash, **planned.annotations)
    pod: Object = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}
    return Workload(planned, content_claim(obj), pod)


def spec_hash(obj: Object) -> str:
    """The hash of the spec fields that shape the Pod: ``suspend`` and ``build`` do not."""
    return contract.spec_hash(obj.get("spec") or {}, ignore=("build", "suspend"))
