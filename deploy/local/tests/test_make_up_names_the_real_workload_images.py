"""What `make up` hands the real node (workloads.py): the storage helper image the lifecycle test
uses, every reference image folder, and Notebook PVs a PVC of the notebook-manager binds."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from substratus_local import workloads

REPO = Path(__file__).resolve().parents[3]


def test_storage_image_is_the_alias_and_the_services_version() -> None:
    text = (REPO / "services" / "watcher" / "pyproject.toml").read_text()
    found = re.search(r'^version = "(.+)"', text, re.M)
    assert found
    assert workloads.storage_image() == f"registry.substratus.local/substratusai/substratus-storage:{found.group(1)}"


def test_every_reference_image_is_pushed() -> None:
    assert workloads.workload_names() == ["dataset-loader", "model-loader", "model-server", "model-trainer", "notebook"]


def test_content_pv_fits_the_notebook_pvc() -> None:
    pv = yaml.safe_load(workloads._pv_yaml("x", Path("/tmp/x")))
    assert pv["spec"]["storageClassName"] == "standard"
    assert pv["spec"]["capacity"]["storage"] == "10Gi"
    assert pv["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pv["spec"]["hostPath"] == {"path": "/tmp/x", "type": "Directory"}
