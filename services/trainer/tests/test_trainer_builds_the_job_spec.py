"""The Job and ConfigMap the trainer builds for a Dataset, an import Model and a fine-tune Model."""

from __future__ import annotations

from typing import Any

import pytest

from substratus_common import config
from substratus_common.api import artifacts, labels, resources
from substratus_common.api.resources import Dataset, Model
from substratus_common.workloads import gpus
from substratus_trainer import jobs

TABLE = gpus.GPUTable.load()
SETTINGS = config.Settings.model_validate({"service": "trainer", "cloud": "local", "bucket_url": "s3://bkt"})


def _obj(kind: str, spec: dict[str, Any], name: str = "opt", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "substratus.ai/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns", "uid": "u-1", "generation": 2, **meta},
        "spec": spec,
    }


def _build(obj: dict[str, Any], settings: config.Settings = SETTINGS) -> jobs.Workload:
    resource = resources.parse(obj)
    assert isinstance(resource, Model | Dataset)
    return jobs.build(obj, resource, settings, TABLE, "hash1")


def _main(w: jobs.Workload) -> dict[str, Any]:
    container: dict[str, Any] = w.job["spec"]["template"]["spec"]["containers"][0]
    return container


def test_an_import_model_runs_its_image_with_params_and_writable_artifacts() -> None:
    obj = _obj(
        "Model",
        {
            "image": "loader:1",
            "command": ["python", "load.py"],
            "params": {"name": "facebook/opt-125m"},
            "resources": {"cpu": 2, "memory": 4, "disk": 10},
        },
    )
    w = _build(obj)
    job = w.job
    assert job["metadata"]["name"] == "opt-modeller"
    assert job["metadata"]["annotations"]["substratus.ai/spec-hash"] == "hash1"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert labels.owner_of(job["metadata"]["labels"]) == ("models", "opt")
    assert job["spec"]["backoffLimit"] == SETTINGS.job_backoff_limit
    template = job["spec"]["template"]
    assert labels.owner_of(template["metadata"]["labels"]) == ("models", "opt")
    assert template["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "modeller"
    pod = template["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "substratus-modeller"
    main = _main(w)
    assert main["name"] == "modeller"
    assert main["image"] == "loader:1"
    assert main["command"] == ["python", "load.py"]
    assert main["env"] == [{"name": "PARAM_NAME", "value": "facebook/opt-125m"}]
    assert main["resources"] == {"requests": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"}}
    assert main["volumeMounts"] == [
        {"name": "artifacts", "mountPath": "/content/artifacts", "readOnly": False},
        {"name": "params", "mountPath": "/content/params.json", "subPath": "params.json", "readOnly": True},
    ]
    assert {"name": "params", "configMap": {"name": "opt-model-params"}} in pod["volumes"]
    own = artifacts.artifacts_url("s3://bkt", "local", "ns", "models", "opt")
    upload = next(c for c in pod["initContainers"] if c["name"] == "upload")
    assert upload["args"] == ["upload-on-exit", "/content/artifacts", own]
    assert w.configmap["metadata"]["name"] == "opt-model-params"
    assert w.service_account["metadata"]["name"] == "substratus-modeller"


def test_a_fine_tune_mounts_base_model_and_dataset_read_only() -> None:
    obj = _obj("Model", {"image": "trainer:1", "model": {"name": "base"}, "dataset": {"name": "squad"}})
    w = _build(obj)
    mounts = {m["mountPath"]: m for m in _main(w)["volumeMounts"]}
    assert mounts["/content/model"]["readOnly"] is True
    assert mounts["/content/data"]["readOnly"] is True
    assert mounts["/content/artifacts"]["readOnly"] is False
    download = w.job["spec"]["template"]["spec"]["initContainers"][0]
    assert download["args"] == [
        "download",
        artifacts.artifacts_url("s3://bkt", "local", "ns", "models", "base"),
        "/content/model",
        artifacts.artifacts_url("s3://bkt", "local", "ns", "datasets", "squad"),
        "/content/data",
    ]


def test_a_dataset_runs_a_data_loader() -> None:
    w = _build(_obj("Dataset", {"image": "dl:1", "params": {"name": "squad"}}, name="squad"))
    assert w.job["metadata"]["name"] == "squad-data-loader"
    assert _main(w)["name"] == "data-loader"
    assert w.configmap["metadata"]["name"] == "squad-dataset-params"
    assert w.service_account["metadata"]["name"] == "substratus-data-loader"
    assert "command" not in _main(w)


@pytest.mark.parametrize(
    ("cloud", "selector"),
    [
        ("gcp", {"cloud.google.com/gke-accelerator": "nvidia-l4"}),
        ("aws", {"k8s.amazonaws.com/accelerator": "nvidia-l4"}),
        ("other", {"nvidia.com/gpu.product": "NVIDIA-L4"}),
        ("local", {"nvidia.com/gpu.product": "NVIDIA-L4"}),
    ],
)
def test_gpus_are_requests_equal_limits_with_the_clouds_selector(cloud: str, selector: dict[str, str]) -> None:
    settings = SETTINGS.model_copy(update={"cloud": cloud})
    w = _build(_obj("Model", {"image": "i", "resources": {"gpu": {"type": "nvidia-l4", "count": 2}}}), settings)
    pod = w.job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == selector
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert _main(w)["resources"] == {"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}


def test_pass_through_annotations_reach_the_pod() -> None:
    obj = _obj("Model", {"image": "i"}, annotations={"substratus.dev/simulate": "fail", "other": "x"})
    annotations = _build(obj).job["spec"]["template"]["metadata"]["annotations"]
    assert annotations["substratus.dev/simulate"] == "fail"
    assert "other" not in annotations


def test_an_unknown_gpu_type_names_the_known_ones() -> None:
    with pytest.raises(gpus.UnknownGPUType, match="nvidia-l4"):
        _build(_obj("Model", {"image": "i", "resources": {"gpu": {"type": "tpu-v5", "count": 1}}}))
