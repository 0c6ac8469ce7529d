"""PersistentVolumes for PVCs on the local stack (kwok simulates Pods, not storage).

kube-controller-manager runs with ``--enable-hostpath-provisioner``: its in-tree hostPath
provisioner, meant for single-machine development clusters, creates a PV for each PVC of the
default StorageClass below (a directory under ``/tmp/hostpath_pv/`` on this machine, removed
again when the PVC is deleted, or by ``make down`` for PVCs still there). Binding is immediate,
so a Pod that mounts a PVC (a Notebook's ``/content``) is scheduled at once; kwok mounts nothing,
so the directory stays empty.
"""

from __future__ import annotations

import yaml

STORAGE_CLASS = "standard"
PROVISIONED_ROOT = "/tmp/hostpath_pv/"
"""Where kube-controller-manager's hostPath provisioner makes each PV's directory."""
PROVISIONER = "kubernetes.io/host-path"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def default_storage_class_yaml() -> str:
    doc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }
    return yaml.safe_dump(doc, sort_keys=False)


def is_provisioned_dir(path: str) -> bool:
    """Whether ``path`` is a directory the provisioner made (``make down`` removes those of its PVs)."""
    rest = path.removeprefix(PROVISIONED_ROOT)
    return rest != path and bool(rest) and "/" not in rest.strip("/") and ".." not in rest
