"""What `make up` adds for real workloads on the real node (issue 18): `kubectl apply -f
examples/local/` then runs the whole lifecycle with nothing done by hand.

- the storage helper image and the reference images (``images/``) built with ``tools/images.sh``
  and pushed to the stack's registry, skipped when the registry already has them;
- ``SUBSTRATUS_STORAGE_IMAGE`` for the services (``storage_image``, ADR 028's alias, so Pods
  with it stay on the real node);
- the ``substratus-storage`` Secret in ``default`` with the stack's S3 keys;
- Notebook ``/content`` volumes the notebook can write (``ensure_content_volumes``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from substratus_local.stack import Stack

REPO_ROOT = Path(__file__).resolve().parents[3]
ALIAS = "registry.substratus.local"
SERVICES_REPOSITORY = f"{ALIAS}/substratusai"
WORKLOADS_REPOSITORY = f"{ALIAS}/substratus"
SECRET = "substratus-storage"
NAMESPACE = "default"
IMAGES_TIMEOUT_S = 3600  # cold: the Debian bases take minutes each on 2 cores (README)

# The group the Notebook Pod's fsGroup names (notebook-manager's USERS_GID, Jupyter's "users").
NOTEBOOK_GID = 100
CONTENT_VOLUMES = 2
CONTENT_SIZE = "10Gi"  # the notebook-manager's PVC request


class WorkloadsError(Exception):
    pass


def version() -> str:
    text = (REPO_ROOT / "services" / "watcher" / "pyproject.toml").read_text()
    found = re.search(r'^version = "(.+)"', text, re.M)
    return found.group(1) if found else "latest"


def storage_image() -> str:
    return f"{SERVICES_REPOSITORY}/substratus-storage:{version()}"


def workload_names() -> list[str]:
    return sorted(p.parent.name for p in (REPO_ROOT / "images").glob("*/Containerfile"))


def _in_registry(stack: Stack, image: str) -> bool:
    path, tag = image.removeprefix(f"{ALIAS}/").rsplit(":", 1)
    url = f"http://{stack.registry}/v2/{path}/manifests/{tag}"
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    try:
        return httpx.head(url, headers={"Accept": accept}, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def push_images(stack: Stack, log: Callable[[str], None]) -> None:
    """``tools/images.sh storage`` and ``workloads`` into this stack's registry, each only when
    one of its images is missing there (buildah's layer cache and the cached Debian bases make a
    rebuild cheap; a changed service tree rebuilds the storage image)."""
    steps = {
        "storage": [storage_image()],
        "workloads": [f"{WORKLOADS_REPOSITORY}/{name}:latest" for name in workload_names()],
    }
    env = {**os.environ, "REGISTRY": stack.registry, "PUSH": "1", "IMAGE_REPOSITORY": SERVICES_REPOSITORY}
    env.pop("LOCAL", None)
    for what, images in steps.items():
        if all(_in_registry(stack, image) for image in images):
            log(f"images {what}: already in the registry")
            continue
        log(f"images {what}: building with tools/images.sh (cached bases: ~/.cache/substratus/images)")
        result = subprocess.run(
            [str(REPO_ROOT / "tools" / "images.sh"), what],
            env=env,
            capture_output=True,
            text=True,
            timeout=IMAGES_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise WorkloadsError(f"tools/images.sh {what} failed:\n{result.stderr[-3000:]}")


def ensure_storage_secret(stack: Stack) -> None:
    """The Secret the storage helper reads its S3 keys from (applied: a second `up` keeps it)."""
    manifest = stack.kubectl(
        "create", "secret", "generic", SECRET, "-n", NAMESPACE, "--dry-run=client", "-o", "yaml",
        f"--from-literal=AWS_ACCESS_KEY_ID={stack.env['AWS_ACCESS_KEY_ID']}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={stack.env['AWS_SECRET_ACCESS_KEY']}",
    ).stdout  # fmt: skip
    stack.kubectl("apply", "-f", "-", input=manifest)


def _pv_yaml(name: str, path: Path) -> str:
    return f"""apiVersion: v1
kind: PersistentVolume
metadata:
  name: {name}
  labels: {{substratus.ai/local-content: "true"}}
spec:
  storageClassName: standard
  capacity: {{storage: {CONTENT_SIZE}}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {{path: "{path}", type: Directory}}
"""


def ensure_content_volumes(stack: Stack) -> None:
    """Pre-made PVs of the default StorageClass, which a Notebook's PVC binds before the hostPath
    provisioner would make one: that provisioner makes root-owned 0750 directories and the kubelet
    applies no fsGroup to hostPath, so Jupyter (uid 1000, gid 100) could not write /content.
    These directories are setgid, group NOTEBOOK_GID, group-writable. A Released one (its
    Notebook deleted) is emptied and made Available again."""
    base = stack.root / "volumes"
    for i in range(CONTENT_VOLUMES):
        name = f"substratus-local-content-{i}"
        path = base / name
        phase = stack.kubectl("get", "pv", name, "-o", "jsonpath={.status.phase}", check=False).stdout.strip()
        if phase in ("Bound", "Available", "Pending"):
            continue
        if phase:  # Released or Failed: a new Notebook must not see the old one's files
            stack.kubectl("delete", "pv", name, "--wait=true", "--timeout=30s")
        shutil.rmtree(path, ignore_errors=True)  # no PV (or an old one's): start empty
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, -1, NOTEBOOK_GID)
        path.chmod(0o2775)
        stack.kubectl("apply", "-f", "-", input=_pv_yaml(name, path))
