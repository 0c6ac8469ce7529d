"""The local stack provides PersistentVolumes: a PVC of the default StorageClass binds at once, a
Pod mounting it runs, and deleting the PVC deletes its volume."""

from __future__ import annotations

import json
from typing import Any

from substratus_local import volumes
from substratus_local.stack import Stack
from substratus_local.testing import eventually

CLAIM = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: work}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
"""

POD = """
apiVersion: v1
kind: Pod
metadata: {name: uses-work}
spec:
  containers: [{name: main, image: busybox, volumeMounts: [{name: work, mountPath: /content}]}]
  volumes: [{name: work, persistentVolumeClaim: {claimName: work}}]
"""


def _get(stack: Stack, namespace: str, *what: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(stack.kubectl("get", *what, "-n", namespace, "-o", "json").stdout)
    return got


def _phase(stack: Stack, namespace: str, *what: str) -> str:
    return str(_get(stack, namespace, *what).get("status", {}).get("phase"))


def test_a_claim_binds_and_its_pod_runs(stack: Stack, namespace: str) -> None:
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=CLAIM + "---\n" + POD)
    eventually(lambda: _phase(stack, namespace, "pvc", "work") == "Bound", 30, "PVC bound")
    claim = _get(stack, namespace, "pvc", "work")
    assert claim["spec"]["storageClassName"] == volumes.STORAGE_CLASS
    volume = str(claim["spec"]["volumeName"])
    eventually(lambda: _phase(stack, namespace, "pod", "uses-work") == "Running", 60, "Pod with the PVC running")

    stack.kubectl("delete", "pod", "uses-work", "-n", namespace, "--wait=true")
    stack.kubectl("delete", "pvc", "work", "-n", namespace, "--wait=true")
    eventually(
        lambda: stack.kubectl("get", "pv", volume, check=False).returncode != 0,
        30,
        "the PV deleted with its claim",
    )
