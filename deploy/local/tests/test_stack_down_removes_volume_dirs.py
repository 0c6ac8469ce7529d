"""``down`` removes the directories the hostPath provisioner made for PVCs still there, and only those."""

from __future__ import annotations

import json
from pathlib import Path

from substratus_local import stack as stack_mod
from substratus_local import volumes
from substratus_local.testing import eventually

CLAIM = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: left, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
"""


def test_only_provisioned_dirs_count() -> None:
    assert volumes.is_provisioned_dir("/tmp/hostpath_pv/0c1d2e3f")
    assert not volumes.is_provisioned_dir("/tmp/hostpath_pv/")
    assert not volumes.is_provisioned_dir("/tmp/hostpath_pv/../etc")
    assert not volumes.is_provisioned_dir("/tmp/hostpath_pv/a/b")
    assert not volumes.is_provisioned_dir("/srv/data")


def test_down_removes_the_directories_of_claims_left(tmp_path: Path) -> None:
    with stack_mod.running(tmp_path / "stack") as s:
        s.kubectl("apply", "-f", "-", input=CLAIM)

        def bound() -> str:
            claim = json.loads(s.kubectl("get", "pvc", "left", "-n", "default", "-o", "json").stdout)
            return str(claim["spec"].get("volumeName") or "") if claim["status"].get("phase") == "Bound" else ""

        volume = eventually(bound, 30, "PVC bound")
        pv = json.loads(s.kubectl("get", "pv", volume, "-o", "json").stdout)
        directory = Path(pv["spec"]["hostPath"]["path"])
        assert volumes.is_provisioned_dir(str(directory))
        assert directory.is_dir()
    assert not directory.exists()
