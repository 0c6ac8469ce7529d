"""How a workload Pod sees artifacts in the bucket, per cloud (DESIGN.md, "Artifacts"; docs/adr/032).

- **GCS FUSE CSI** (``cloud: gcp`` with a ``gs://`` bucket): an inline CSI volume per mount,
  ``only-dir`` set to the artifacts prefix, and the Pod annotation that injects the FUSE sidecar.
- **Mountpoint for S3 CSI** (``cloud: aws`` with an ``s3://`` bucket): the driver supports static
  provisioning only, so each mount is a PersistentVolume (cluster-scoped, ``prefix`` mount option)
  bound to a PersistentVolumeClaim owned by the resource. The PV's ``claimRef.uid`` is filled in
  once the PVC exists (see :func:`bind_claim`).
- **Portable** (any other cluster, or a bucket of another scheme): ``emptyDir`` volumes; an init
  container of ``settings.storage_image`` downloads the read-only inputs, and a native sidecar of
  the same image uploads the read-write artifacts when the workload ends (it receives SIGTERM
  once the main container has exited). The image's entrypoint takes the arguments
  ``download <url> <dir> [<url> <dir> ...]`` and ``upload-on-exit <dir> <url>`` and moves data with
  the S3 or GCS backend of ``substratus_common.storage``; settings reach it as ``SUBSTRATUS_*`` env
  and credentials from the optional Secret ``substratus-storage`` of the namespace.

Pure functions: :func:`plan` gives volumes, mounts, init containers, Pod annotations and the
objects (PVCs, PVs) to apply before the Pod.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

from substratus_common import config
from substratus_common.api import labels

Object = dict[str, Any]
Mode = Literal["gcsfuse", "mountpoint-s3", "portable"]

GCSFUSE_DRIVER = "gcsfuse.csi.storage.gke.io"
GCSFUSE_ANNOTATION = "gke-gcsfuse/volumes"
MOUNTPOINT_DRIVER = "s3.csi.aws.com"
MOUNTPOINT_CAPACITY = "1200Gi"  # required by the API, ignored by the driver
STORAGE_SECRET = "substratus-storage"
"""Optional Secret in the workload's namespace with the helper's credentials (e.g. AWS_ACCESS_KEY_ID)."""
DOWNLOAD_CONTAINER = "download"
UPLOAD_CONTAINER = "upload"
READY_FILE = "/tmp/substratus-storage-ready"
"""Written by ``upload-on-exit`` once it handles SIGTERM; the sidecar's startup probe reads it."""
UPLOAD_GRACE_S = 1800
"""Termination grace of a portable Pod: the time the upload-on-exit sidecar has to finish."""
PV_NAMESPACE_LABEL = "substratus.ai/namespace"


@dataclass(frozen=True)
class Mount:
    """One bucket location seen by the workload at ``path``."""

    volume: str
    """Volume name in the Pod, e.g. ``artifacts``, ``model``, ``data``."""
    url: str
    """``s3://bucket/<prefix>`` or ``gs://bucket/<prefix>``."""
    path: str
    read_only: bool
    download: bool = False
    """Portable mode: fetch the contents before the workload starts (inputs)."""
    upload: bool = False
    """Portable mode: store the contents when the workload ends (the workload's own artifacts)."""


@dataclass
class PodStorage:
    """What :func:`plan` adds to a Pod spec, and what must exist before the Pod."""

    mode: Mode
    volumes: list[Object] = field(default_factory=list)
    mounts: list[Object] = field(default_factory=list)
    """volumeMounts of the workload container."""
    init_containers: list[Object] = field(default_factory=list)
    pod_annotations: dict[str, str] = field(default_factory=dict)
    termination_grace_s: int | None = None
    claims: list[Object] = field(default_factory=list)
    """PersistentVolumeClaims owned by the resource (Mountpoint S3)."""
    volumes_to_bind: list[Object] = field(default_factory=list)
    """Cluster-scoped PersistentVolumes, each naming its claim (Mountpoint S3)."""


def split_url(url: str) -> tuple[str, str, str]:
    """``s3://bucket/a/b`` → (``s3``, ``bucket``, ``a/b``)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("s3", "gs", "file") or (parsed.scheme != "file" and not parsed.netloc):
        raise ValueError(f"not a bucket URL: {url!r} (expected s3://bucket/…, gs://bucket/… or file:///…)")
    return parsed.scheme, parsed.netloc, parsed.path.strip("/")


def mode_for(cloud: config.Cloud, bucket_url: str) -> Mode:
    """The CSI driver of the cloud when the bucket is that cloud's; the portable helper otherwise."""
    scheme = split_url(bucket_url)[0]
    if cloud == "gcp" and scheme == "gs":
        return "gcsfuse"
    if cloud == "aws" and scheme == "s3":
        return "mountpoint-s3"
    return "portable"


def plan(
    mounts: Sequence[Mount],
    settings: config.Settings,
    *,
    namespace: str,
    claim_prefix: str,
    owner: Mapping[str, Any] | None = None,
    owner_labels: Mapping[str, str] | None = None,
) -> PodStorage:
    """Volumes, mounts and helpers for ``mounts`` on the configured cloud.

    ``claim_prefix`` names PVCs (``<claim_prefix>-<volume>``); ``owner`` is the ownerReference of
    the PVCs and ``owner_labels`` their labels (Mountpoint S3 only).
    """
    mode = mode_for(settings.cloud, settings.bucket_url)
    out = PodStorage(mode=mode)
    for m in mounts:
        out.mounts.append({"name": m.volume, "mountPath": m.path, "readOnly": m.read_only})
    if mode == "gcsfuse":
        out.pod_annotations[GCSFUSE_ANNOTATION] = "true"
        for m in mounts:
            out.volumes.append(_gcsfuse_volume(m))
    elif mode == "mountpoint-s3":
        for m in mounts:
            claim = f"{claim_prefix}-{m.volume}"
            out.volumes.append(
                {"name": m.volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": m.read_only}}
            )
            out.claims.append(_claim(m, claim, namespace, owner, owner_labels))
            out.volumes_to_bind.append(_mountpoint_volume(m, claim, namespace, settings, owner_labels))
    else:
        for m in mounts:
            out.volumes.append({"name": m.volume, "emptyDir": {}})
        out.init_containers.extend(_portable_helpers(mounts, settings))
        if any(m.upload for m in mounts):
            out.termination_grace_s = UPLOAD_GRACE_S
    return out


def _gcsfuse_volume(m: Mount) -> Object:
    _, bucket, prefix = split_url(m.url)
    options = ["implicit-dirs"]
    if prefix:
        options.append(f"only-dir={prefix}")
    return {
        "name": m.volume,
        "csi": {
            "driver": GCSFUSE_DRIVER,
            "readOnly": m.read_only,
            "volumeAttributes": {"bucketName": bucket, "mountOptions": ",".join(options)},
        },
    }


def pv_name(namespace: str, claim: str) -> str:
    """A cluster-unique, deterministic PV name for the claim ``namespace/claim``."""
    digest = hashlib.sha256(f"{namespace}/{claim}".encode()).hexdigest()[:20]
    return f"substratus-{digest}"


def _claim(
    m: Mount, claim: str, namespace: str, owner: Mapping[str, Any] | None, owner_labels: Mapping[str, str] | None
) -> Object:
    meta: Object = {"name": claim, "namespace": namespace, "labels": dict(owner_labels or {})}
    if owner is not None:
        meta["ownerReferences"] = [dict(owner)]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta,
        "spec": {
            "accessModes": ["ReadOnlyMany" if m.read_only else "ReadWriteMany"],
            "storageClassName": "",
            "volumeName": pv_name(namespace, claim),
            "resources": {"requests": {"storage": MOUNTPOINT_CAPACITY}},
        },
    }


def _mountpoint_volume(
    m: Mount, claim: str, namespace: str, settings: config.Settings, owner_labels: Mapping[str, str] | None
) -> Object:
    _, bucket, prefix = split_url(m.url)
    options = [f"region {settings.s3_region}"]
    if prefix:
        options.append(f"prefix {prefix}/")
    if settings.s3_endpoint_url:
        options.append(f"endpoint-url {settings.s3_endpoint_url}")
    options += ["read-only"] if m.read_only else ["allow-delete", "allow-overwrite"]
    pv_labels = {**dict(owner_labels or {}), labels.MANAGED_BY: labels.MANAGED_BY_VALUE, PV_NAMESPACE_LABEL: namespace}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name(namespace, claim), "labels": pv_labels},
        "spec": {
            "capacity": {"storage": MOUNTPOINT_CAPACITY},
            "accessModes": ["ReadOnlyMany" if m.read_only else "ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "mountOptions": options,
            "claimRef": {"namespace": namespace, "name": claim},
            "csi": {
                "driver": MOUNTPOINT_DRIVER,
                "volumeHandle": f"{bucket}/{prefix}" if prefix else bucket,
                "volumeAttributes": {"bucketName": bucket},
            },
        },
    }


def bind_claim(volume: Object, claim: Mapping[str, Any]) -> Object:
    """The PV with ``claimRef.uid`` of the claim as created, so it binds that PVC (and, after the
    resource was deleted and applied again, the new PVC of the same name rather than the old one)."""
    uid = claim.get("metadata", {}).get("uid")
    spec = dict(volume["spec"])
    spec["claimRef"] = {**spec["claimRef"], **({"uid": uid} if uid else {})}
    return {**volume, "spec": spec}


def helper_env(settings: config.Settings) -> list[Object]:
    """Settings the storage helper needs, as ``SUBSTRATUS_*`` env (sorted)."""
    values = {
        "SUBSTRATUS_BUCKET_URL": settings.bucket_url,
        "SUBSTRATUS_CLOUD": settings.cloud,
        "SUBSTRATUS_S3_REGION": settings.s3_region,
    }
    if settings.s3_endpoint_url:
        values["SUBSTRATUS_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    if settings.gcs_endpoint_url:
        values["SUBSTRATUS_GCS_ENDPOINT_URL"] = settings.gcs_endpoint_url
    return [{"name": k, "value": values[k]} for k in sorted(values)]


def _portable_helpers(mounts: Sequence[Mount], settings: config.Settings) -> list[Object]:
    base: Object = {
        "image": settings.storage_image,
        "env": helper_env(settings),
        "envFrom": [{"secretRef": {"name": STORAGE_SECRET, "optional": True}}],
    }
    helpers: list[Object] = []
    downloads = [m for m in mounts if m.download]
    if downloads:
        args = ["download"]
        for m in downloads:
            args += [m.url, m.path]
        helpers.append(
            {
                "name": DOWNLOAD_CONTAINER,
                **base,
                "args": args,
                "volumeMounts": [{"name": m.volume, "mountPath": m.path} for m in downloads],
            }
        )
    for i, m in enumerate(m for m in mounts if m.upload):
        helpers.append(
            {
                "name": UPLOAD_CONTAINER if i == 0 else f"{UPLOAD_CONTAINER}-{m.volume}",
                **base,
                "args": ["upload-on-exit", m.path, m.url],
                # A native sidecar: started before the workload, stopped (SIGTERM) after it exits.
                "restartPolicy": "Always",
                # The workload starts only once the helper handles SIGTERM: as PID 1 it would drop
                # a SIGTERM that came before (seen on the real node: a quick workload, no upload).
                "startupProbe": {
                    "exec": {"command": ["cat", READY_FILE]},
                    "periodSeconds": 1,
                    "failureThreshold": 120,
                },
                "volumeMounts": [{"name": m.volume, "mountPath": m.path}],
            }
        )
    return helpers
