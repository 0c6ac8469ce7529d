"""The Pod, PVC, Secret and ConfigMap the notebook-manager builds for a Notebook (no cluster)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from substratus_common import config
from substratus_common.api import labels, resources
from substratus_common.api.resources import Notebook
from substratus_common.workloads import gpus
from substratus_notebook_manager import pods

TABLE = gpus.GPUTable.load()
SETTINGS = config.Settings.model_validate({"service": "notebook-manager", "cloud": "local", "bucket_url": "s3://bkt"})


def _obj(spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "substratus.ai/v1",
        "kind": "Notebook",
        "metadata": {"name": "nb", "namespace": "ns", "uid": "u-1", "generation": 4, **meta},
        "spec": spec,
    }


def _build(obj: dict[str, Any], settings: config.Settings = SETTINGS) -> pods.Workload:
    notebook = resources.parse(obj)
    assert isinstance(notebook, Notebook)
    return pods.build(obj, notebook, settings, TABLE, pods.spec_hash(obj))


def _main(w: pods.Workload) -> dict[str, Any]:
    container: dict[str, Any] = w.pod["spec"]["containers"][0]
    return container


def test_jupyter_on_8888_with_the_token_from_the_secret_and_content_on_the_claim() -> None:
    w = _build(_obj({"image": "jupyter:1", "env": {"JUPYTER_TOKEN": "fixed", "A": "1"}, "params": {"x": 2}}))
    pod = w.pod
    assert pod["metadata"]["name"] == "nb-notebook"
    assert labels.owner_of(pod["metadata"]["labels"]) == ("notebooks", "nb")
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "notebook"
    main = _main(w)
    assert main["command"][:2] == ["jupyter", "lab"]
    assert "--port=8888" in main["command"]
    assert main["ports"] == [{"name": "notebook", "containerPort": 8888, "protocol": "TCP"}]
    assert main["readinessProbe"]["httpGet"] == {"path": "/api", "port": "notebook"}
    # The generated token wins over a fixed one in spec.env: the CLI prints the Secret's.
    assert main["env"] == [
        {"name": "A", "value": "1"},
        {"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {"name": "nb-notebook-token", "key": "token"}}},
        {"name": "PARAM_X", "value": "2"},
    ]
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert mounts["/content"]["name"] == "content"
    assert mounts["/content/params.json"]["subPath"] == "params.json"
    assert mounts["/content/artifacts"]["readOnly"] is False
    assert "/content/model" not in mounts
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["content"] == {"name": "content", "persistentVolumeClaim": {"claimName": "nb-notebook-content"}}
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["spec"]["serviceAccountName"] == "substratus-notebook"
    assert pod["spec"]["securityContext"]["fsGroup"] == 100
    assert main["securityContext"] == {"allowPrivilegeEscalation": False}
    assert w.service_account["metadata"]["name"] == "substratus-notebook"
    assert w.configmap["metadata"]["name"] == "nb-notebook-params"
    assert w.content_claim["metadata"]["name"] == "nb-notebook-content"
    assert w.content_claim["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert "storageClassName" not in w.content_claim["spec"]  # the cluster's default class


def test_model_and_dataset_are_read_only_and_the_artifacts_come_back_after_a_suspend() -> None:
    w = _build(_obj({"image": "jupyter:1", "model": {"name": "opt"}, "dataset": {"name": "squad"}}))
    mounts = {m["mountPath"]: m for m in _main(w)["volumeMounts"]}
    assert mounts["/content/model"]["readOnly"] is True
    assert mounts["/content/data"]["readOnly"] is True
    (download, upload) = w.pod["spec"]["initContainers"]
    assert download["args"][0] == "download"
    assert "/content/artifacts" in download["args"]  # portable mode: what was uploaded on suspend
    assert any(a.endswith("/artifacts") and "models" not in a for a in download["args"][1::2])
    assert upload["args"][:2] == ["upload-on-exit", "/content/artifacts"]


def test_a_user_command_and_gpus_as_every_manager_places_them() -> None:
    obj = _obj({"image": "img", "command": ["notebook.sh"], "resources": {"gpu": {"type": "nvidia-l4", "count": 1}}})
    w = _build(obj)
    assert _main(w)["command"] == ["notebook.sh"]
    assert _main(w)["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert w.pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    with pytest.raises(gpus.UnknownGPUType):
        _build(_obj({"image": "img", "resources": {"gpu": {"type": "nvidia-nope", "count": 1}}}))


def test_suspend_does_not_change_the_spec_hash_but_the_image_does() -> None:
    base = pods.spec_hash(_obj({"image": "a"}))
    assert pods.spec_hash(_obj({"image": "a", "suspend": True})) == base
    assert pods.spec_hash(_obj({"image": "a", "suspend": False})) == base
    assert pods.spec_hash(_obj({"image": "b"})) != base


def test_each_secret_gets_a_new_random_token() -> None:
    obj = _obj({"image": "a"})
    first, second = pods.token_secret(obj, pods.new_token()), pods.token_secret(obj, pods.new_token())
    assert first["metadata"]["name"] == "nb-notebook-token"
    assert first["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert first["data"]["token"] != second["data"]["token"]
    assert len(base64.b64decode(first["data"]["token"])) >= 32
